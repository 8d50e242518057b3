// memlens/view/html.hpp: a snapshot as one self-contained HTML file: an interactive flamegraph of
// the bytes at the peak, the live bytes, the bytes allocated or the temporary allocations,
// memory over time, tables of sites, scopes, domains, types, the peak's, live and temporary
// allocations, suppressed sites, leak kinds with back-reference chains, and recommendations that each name the figure behind them. It works offline: the
// style and script (tools/html, embedded by html_assets.hpp) are inline and the data is embedded
// as JSON.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/files.hpp"
#include "../detail/format.hpp"
#include "../detail/index.hpp"
#include "../detail/json_text.hpp"
#include "../detail/rank.hpp"
#include "analysis.hpp"
#include "html_assets.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What to_html and write_html put in the report.
struct html_options {
    /// The page title and heading.
    std::string title = "memlens report";
    /// Rows listed per table, largest first; the rest are counted, not listed.
    std::size_t table_rows = 200;
};

namespace detail {

// A JSON string literal that can sit inside a <script> element: '<' is written as \u003c, so
// that no "</script>" in a name ends the element early. Most names need no escape at all and
// are copied whole.
inline void append_script_string(std::string& out, std::string_view text) {
    const bool plain = std::none_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\' || c == '<';
    });
    if (plain) {
        out += '"';
        out += text;
        out += '"';
        return;
    }
    std::string escaped;
    append_json_string(escaped, text);
    for (const char c : escaped) {
        if (c == '<') out += "\\u003c";
        else out += c;
    }
}

inline std::string file_name(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A frame as people read it: the function, else module+offset, else the bare address.
inline std::string frame_label(const frame_info& f) {
    if (!f.function.empty()) return f.function;
    if (f.module.empty()) return hex_address(f.address);
    return file_name(f.module) + "+" + hex_address(f.offset);
}

// Frames interned twice over: each return address once (names are computed once per address,
// not once per use), and each readable name once, which is what the flamegraph merges on. A
// name's place is the file (else the module) and line of the first address seen with it; files
// are interned too, since thousands of names share a few.
class frame_names {
public:
    explicit frame_names(std::size_t addresses) {
        by_address_.reserve(addresses);
        by_label_.reserve(addresses);
    }

    std::uint32_t id(const frame_info& f) {
        const auto [row, added] = by_address_.insert(f.address);
        if (!added) return address_label_[row];
        const std::size_t before = labels_.size();
        const std::uint32_t named = id_of_label(frame_label(f));
        if (labels_.size() != before) {
            const std::string place = f.file.empty() ? file_name(f.module) : f.file;
            where_[2 * named] = place.empty() ? -1 : file_id(place);
            where_[2 * named + 1] = f.file.empty() ? 0 : static_cast<std::int64_t>(f.line);
        }
        address_label_.push_back(named);
        return named;
    }

    std::uint32_t id_of_label(std::string label) {
        const auto [known, added] = by_label_.insert(label);
        if (added) {
            labels_.push_back(std::move(label));
            where_.push_back(-1);
            where_.push_back(0);
        }
        return known;
    }

    // Writes `id` as the page numbers names: in the order they are first written, so that the
    // names the stacks bring in need no number at all (-1: the next new name, when `stack`), and
    // neighbours in the sorted stacks have neighbouring labels.
    void append_id(std::string& out, std::uint32_t id, bool stack) {
        if (written_.size() < labels_.size()) written_.resize(labels_.size(), -1);
        if (written_[id] < 0) {
            written_[id] = static_cast<std::int64_t>(order_.size());
            order_.push_back(id);
            if (stack) {
                out += "-1";
                return;
            }
        }
        append_json_number(out, written_[id]);
    }

    // The labels written so far, as columns indexed by the page's name number: the length of
    // the prefix each shares with the one before (ASCII only, so that bytes and the page's UTF-16
    // units agree), the rest of it, and where it is (a file number, -1 for none, and a line).
    void append_json(std::string& out) const {
        out += "{\"shared_prefix\":[";
        std::vector<std::size_t> shared(order_.size());
        std::string_view previous;
        for (std::size_t i = 0; i < order_.size(); ++i) {
            const std::string_view label = labels_[order_[i]];
            while (shared[i] < label.size() && shared[i] < previous.size() &&
                   label[shared[i]] == previous[shared[i]] &&
                   static_cast<unsigned char>(label[shared[i]]) < 0x80) {
                ++shared[i];
            }
            if (i) out += ',';
            append_json_uint(out, shared[i]);
            previous = label;
        }
        out += "],\"suffix\":[";
        for (std::size_t i = 0; i < order_.size(); ++i) {
            if (i) out += ',';
            append_script_string(out, std::string_view(labels_[order_[i]]).substr(shared[i]));
        }
        out += "],\"file\":[";
        for (std::size_t i = 0; i < order_.size(); ++i) {
            if (i) out += ',';
            append_json_number(out, where_[2 * order_[i]]);
        }
        out += "],\"line\":[";
        for (std::size_t i = 0; i < order_.size(); ++i) {
            if (i) out += ',';
            append_json_number(out, where_[2 * order_[i] + 1]);
        }
        out += "],\"files\":[";
        for (std::size_t i = 0; i < files_.size(); ++i) {
            if (i) out += ',';
            append_script_string(out, files_[i]);
        }
        out += "]}";
    }

private:
    std::int64_t file_id(const std::string& file) {
        const auto [known, added] = by_file_.insert(file);
        if (added) files_.push_back(file);
        return known;
    }

    key_index by_address_;
    std::vector<std::uint32_t> address_label_;  // per row of by_address_
    string_index by_label_;
    string_index by_file_;
    std::vector<std::string> labels_;
    std::vector<std::string> files_;
    std::vector<std::int64_t> where_;         // file id (-1 for none) and line, per label
    std::vector<std::int64_t> written_;       // per label, its number in the page; -1 until written
    std::vector<std::uint32_t> order_;        // labels in the order they were written
};

inline void append_json_frames(std::string& out, frame_names& names, frame_range frames) {
    out += '[';
    for (auto f = frames.first; f != frames.last; ++f) {
        if (f != frames.first) out += ',';
        names.append_id(out, names.id(**f), false);
    }
    out += ']';
}

// Stacks as name ids back to back, each ending where `ends` says.
struct flame_ids {
    const std::uint32_t* ids;
    const std::size_t* ends;

    std::size_t begin(std::uint32_t n) const noexcept { return n == 0 ? 0 : ends[n - 1]; }

    // Stack `a` before stack `b` in the order of their ids.
    static bool before(const void* rows, std::uint32_t a, std::uint32_t b) {
        const flame_ids& s = *static_cast<const flame_ids*>(rows);
        return std::lexicographical_compare(s.ids + s.begin(a), s.ids + s.ends[a], s.ids + s.begin(b),
                                            s.ids + s.ends[b]);
    }
};

// A memory_stats' figures as the members of an object, without its braces.
inline void append_json_figures(std::string& out, const memory_stats& m) {
    out += "\"current\":";
    append_json_uint(out, m.current);
    out += ",\"peak\":";
    append_json_uint(out, m.peak);
    out += ",\"total\":";
    append_json_uint(out, m.total);
    out += ",\"allocs\":";
    append_json_uint(out, m.allocs);
    out += ",\"frees\":";
    append_json_uint(out, m.frees);
}

// The report's data as one JSON object; every figure the page shows comes from here, and
// tools/html/report.js reads it by these names:
//   title, run {unix_time_ms, pid, command_line, build, mode}, estimated, sample_bytes,
//   temporary_window, totals {current, peak, total, allocs, frees}, live {bytes, count},
//   peak {kept, current, bytes, count}  (the copy of the live table kept at the peak),
//   stacks {shared[], added[], frames[],  (columns, one entry per stack)
//           weights {live, peak, allocated, temporaries}}: per kind of flamegraph, {bytes[],
//           count[]} over the same stacks, or null when the snapshot has none of that kind;
//           temporaries has count[] alone (their bytes are not kept),
//   sites [{name, bytes, count}], site_count,
//   live_stacks [{site, domain, bytes, count, frames}], live_stack_count,
//   peak_stacks [{site, bytes, count, frames}], peak_stack_count,
//   temporaries [{site, temporaries, allocs, bytes, frames}], temporary_count,
//   scopes [{name, place, calls, allocated, allocs, max_peak, net}],
//   domains [{name, current, peak, total, allocs, frees}],
//   types [{name, size, instances, bytes, peak, constructed}],
//   timeline [{seconds, current, peak, label, rss}], recommendations [{rule, figure, advice}],
//   collector [{generation, collections, collected, uncollectable, threshold, seconds,
//               longest_seconds}], pools [{name, current, peak, total, allocs, frees}],
//   names {shared_prefix[], suffix[], file[], line[], files[]}  (columns, one entry per name).
// Frames are name numbers; in stacks.frames, -1 stands for the next name not seen before.
// `key` (with its separator) and a value: out of line, as the many members of the leak tables
// would otherwise each inline an append of their own.
MEMLENS_NOINLINE inline void put_uint(std::string& out, const char* key, std::uint64_t value) {
    out += key;
    append_json_uint(out, value);
}

MEMLENS_NOINLINE inline void put_string(std::string& out, const char* key, std::string_view value) {
    out += key;
    append_script_string(out, value);
}

// The leak kinds of a classified snapshot: memcheck's summary, the largest sites of each kind,
// the back-reference chains; and the sites that suppression rules matched, classified or not.
inline void append_html_leak_kinds(std::string& out, const snapshot& s, const resolved_stacks& resolved,
                                   frame_names& names, std::size_t rows) {
    static const leak_kind order[] = {leak_kind::definitely_lost, leak_kind::indirectly_lost,
                                      leak_kind::possibly_lost, leak_kind::still_reachable};
    const suppressions rules = active_suppressions();
    out += "\"leak_kinds\":{\"classified\":";
    out += s.classified ? "true" : "false";
    out += ",\"summary\":[";
    for (std::size_t k = 0; k < 4 && s.classified; ++k) {
        const kind_figures f = leak_kind_figures(s, order[k]);
        if (k) out += ',';
        put_string(out, "{\"kind\":", leak_kind_name(order[k]));
        put_uint(out, ",\"bytes\":", f.bytes);
        put_uint(out, ",\"blocks\":", f.blocks);
        out += '}';
    }
    out += "],\"sites\":[";
    std::size_t listed = 0, all = 0;
    for (std::size_t k = 0; k < 4 && s.classified; ++k) {
        // This kind's blocks by stack and domain, most bytes first.
        key_index index;
        std::vector<live_sum> sums;
        for (const live_allocation& a : s.allocations) {
            if (a.kind != order[k]) continue;
            const auto [row, added] = index.insert((std::uint64_t{a.stack} << 32) | a.domain);
            if (added) sums.push_back({a.stack, a.domain, 0, 0, false});
            sums[row].add(s, a);
        }
        all += sums.size();
        const std::size_t shown = std::min(rows, sums.size());
        std::vector<std::uint32_t> sum_order = row_numbers(sums.size());
        partial_sort_numbers(sum_order, shown, {sums.data(), bytes_before});
        for (std::size_t i = 0; i < shown; ++i) {
            const live_sum& g = sums[sum_order[i]];
            const frame_range frames = resolved.frames(g.stack);
            const suppression* rule = rules.empty() ? nullptr : rules.match(frames.copy());
            if (listed++) out += ',';
            put_string(out, "{\"kind\":", leak_kind_name(order[k]));
            put_string(out, ",\"site\":", describe_frame(resolved.site(g.stack)));
            put_string(out, ",\"domain\":", s.domain_name(g.domain));
            put_uint(out, ",\"bytes\":", rounded(g.bytes));
            put_uint(out, ",\"blocks\":", rounded(g.count));
            put_string(out, ",\"suppressed_by\":", rule ? rule->describe() : std::string());
            out += ",\"frames\":";
            append_json_frames(out, names, frames);
            out += '}';
        }
    }
    put_uint(out, "],\"site_count\":", all);
    out += ",\"backrefs\":[";
    std::size_t link = 0;
    for (std::uint32_t c = 0; c < s.backref_chains.size(); ++c) {
        const backref_chain& chain = s.backref_chains[c];
        if (c) out += ',';
        put_string(out, "{\"root\":", chain.root);
        put_string(out, ",\"name\":", chain.name);
        put_uint(out, ",\"thread\":", chain.thread);
        put_string(out, ",\"address\":", hex_address(chain.address));
        out += ",\"links\":[";
        for (bool first = true; link < s.backref_links.size() && s.backref_links[link].chain == c; ++link) {
            const backref_link& l = s.backref_links[link];
            if (!first) out += ',';
            first = false;
            put_string(out, "{\"address\":", hex_address(l.address));
            put_uint(out, ",\"size\":", l.size);
            put_string(out, ",\"kind\":", leak_kind_name(l.kind));
            put_uint(out, ",\"offset\":", l.offset);
            put_string(out, ",\"site\":", describe_frame(l.stack ? resolved.site(l.stack) : nullptr));
            out += '}';
        }
        out += "]}";
    }
    out += "]},\"suppressed\":[";
    const std::vector<suppressed_site> suppressed = suppressed_sites(s, rules);
    for (std::size_t i = 0; i < suppressed.size() && i < rows; ++i) {
        const suppressed_site& r = suppressed[i];
        if (i) out += ',';
        put_string(out, "{\"rule\":", r.rule);
        put_string(out, ",\"site\":", describe_frame(resolved.site(r.stack)));
        put_string(out, ",\"domain\":", s.domain_name(r.domain));
        put_uint(out, ",\"bytes\":", r.bytes);
        put_uint(out, ",\"blocks\":", r.count);
        out += ",\"frames\":";
        append_json_frames(out, names, resolved.frames(r.stack));
        out += '}';
    }
    put_uint(out, "],\"suppressed_count\":", suppressed.size());
}

inline void append_html_data(std::string& out, const snapshot& s, const html_options& options) {
    guard quiet;
    const resolved_stacks resolved(s);
    frame_names names(s.symbols.size());
    const std::uint32_t no_stack = names.id_of_label("(no stack)");

    // Live allocations by stack and domain: the flamegraph sums them over domains. Stacks are
    // taken in the hash tables' order (names are numbered in the order they are first seen),
    // and sums of sampled weights depend on the order of their terms: both as they always were.
    key_index stack_domains;
    stack_domains.reserve(s.stacks.size());
    std::vector<live_sum> by_stack_domain;
    live_sum live;
    for (const live_allocation& a : s.allocations) {
        const auto [row, added] = stack_domains.insert((std::uint64_t{a.stack} << 32) | a.domain);
        if (added) by_stack_domain.push_back({a.stack, a.domain, 0, 0, false});
        by_stack_domain[row].add(s, a);
        live.add(s, a);
    }
    key_index stack_rows;
    stack_rows.reserve(s.stacks.size() + 1);
    std::vector<live_sum> by_stack;
    for (const auto& [key, row] : stack_domains) {
        const auto [stack, added] = stack_rows.insert(key >> 32);
        if (added) by_stack.push_back({by_stack_domain[row].stack, 0, 0, 0, false});
        by_stack[stack].add(by_stack_domain[row]);
    }
    // The flamegraph's other kinds draw on the site records: one tree over every stack, with
    // the weights of each kind per stack. Rows from here on hold no live allocation.
    const std::size_t live_rows = by_stack.size();
    std::vector<const site_record*> site_of(live_rows, nullptr);
    bool any_allocated = false, any_temporary = false;
    live_sum at_peak;
    for (const site_record& r : s.sites) {
        const auto [row, added] = stack_rows.insert(r.stack);
        if (added) {
            by_stack.push_back({r.stack, 0, 0, 0, false});
            site_of.push_back(nullptr);
        }
        site_of[row] = &r;
        any_allocated = any_allocated || r.allocs != 0;
        any_temporary = any_temporary || r.temporaries != 0;
        at_peak.bytes += static_cast<double>(r.peak_bytes);
        at_peak.count += static_cast<double>(r.peak_allocs);
    }

    out.reserve(out.size() + 24 * by_stack.size() + 8 * resolved.frame_count() + 65536);
    out += "{\"title\":";
    append_script_string(out, options.title);
    out += ",\"run\":{\"unix_time_ms\":";
    append_json_number(out, s.run.unix_time_ms);
    out += ",\"pid\":";
    append_json_number(out, s.run.pid);
    out += ",\"command_line\":";
    append_script_string(out, s.run.command_line);
    out += ",\"build\":";
    append_script_string(out, s.run.build);
    out += ",\"mode\":";
    append_script_string(out, s.run.mode);
    out += "},\"estimated\":";
    out += s.estimated() ? "true" : "false";
    out += ",\"sample_bytes\":";
    append_json_uint(out, s.sample_bytes);
    out += ",\"temporary_window\":";
    append_json_uint(out, s.temporary_window);
    out += ",\"totals\":{";
    append_json_figures(out, s.totals);
    out += "},\"live\":{\"bytes\":";
    append_json_uint(out, rounded(live.bytes));
    out += ",\"count\":";
    append_json_uint(out, rounded(live.count));
    out += "},\"peak\":{\"kept\":";
    out += s.peak_kept ? "true" : "false";
    out += ",\"current\":";
    append_json_uint(out, s.peak_current);
    out += ",\"bytes\":";
    append_json_uint(out, rounded(at_peak.bytes));
    out += ",\"count\":";
    append_json_uint(out, rounded(at_peak.count));

    // Flamegraph input: each stack as name ids, outermost first, sorted so that stacks sharing a
    // prefix are neighbours, then written as columns: bytes, count, how many frames it shares
    // with the stack before, how many follow, and (all stacks' together) those. The page
    // rebuilds the tree in one pass without a lookup, and shared prefixes are written once.
    // Columns rather than one object per stack: for 100,000 stacks the field names would
    // outweigh the figures.
    std::vector<std::uint32_t> ids;
    ids.reserve(resolved.frame_count() + by_stack.size());
    // Per stack, in the index's order: where its ids end, and its row of by_stack.
    std::vector<std::size_t> ends;
    std::vector<std::uint32_t> weight_rows;
    ends.reserve(by_stack.size());
    weight_rows.reserve(by_stack.size());
    for (const auto& [stack, row] : stack_rows) {
        const auto [first, last] = resolved.frames(static_cast<std::uint32_t>(stack));
        if (first == last) ids.push_back(no_stack);
        for (auto f = last; f != first;) ids.push_back(names.id(**--f));
        ends.push_back(ids.size());
        weight_rows.push_back(row);
    }
    const flame_ids flame_context{ids.data(), ends.data()};
    const std::vector<std::uint32_t> flame = sorted_rows(ends.size(), {&flame_context, flame_ids::before});
    // Per stack in flame order: its leading ids equal to the stack before's.
    std::vector<std::size_t> shared(flame.size());
    for (std::size_t k = 1; k < flame.size(); ++k) {
        const std::size_t begin = flame_context.begin(flame[k]);
        const std::size_t length = ends[flame[k]] - begin;
        const std::size_t previous = flame_context.begin(flame[k - 1]);
        const std::size_t previous_length = ends[flame[k - 1]] - previous;
        while (shared[k] < length && shared[k] < previous_length &&
               ids[begin + shared[k]] == ids[previous + shared[k]]) {
            ++shared[k];
        }
    }
    out += "},\"stacks\":{\"shared\":[";
    for (std::size_t k = 0; k < flame.size(); ++k) {
        if (k) out += ',';
        append_json_uint(out, shared[k]);
    }
    out += "],\"added\":[";
    for (std::size_t k = 0; k < flame.size(); ++k) {
        if (k) out += ',';
        append_json_uint(out, ends[flame[k]] - flame_context.begin(flame[k]) - shared[k]);
    }
    out += "],\"frames\":[";
    bool first_frame = true;
    for (std::size_t k = 0; k < flame.size(); ++k) {
        for (std::size_t i = flame_context.begin(flame[k]) + shared[k]; i < ends[flame[k]]; ++i) {
            if (!first_frame) out += ',';
            first_frame = false;
            names.append_id(out, ids[i], true);
        }
    }
    // One column of a kind's weights over the stacks in flame order, from `figures` by row.
    std::vector<std::uint64_t> figures(by_stack.size());
    auto weights = [&](const char* field) {
        out += field;
        out += '[';
        for (std::size_t k = 0; k < flame.size(); ++k) {
            if (k) out += ',';
            append_json_uint(out, figures[weight_rows[flame[k]]]);
        }
        out += ']';
    };
    // A site record's figure for each row, 0 for a row without one.
    auto site_weights = [&](const char* field, std::uint64_t site_record::*figure) {
        for (std::size_t row = 0; row < figures.size(); ++row) {
            figures[row] = site_of[row] ? site_of[row]->*figure : 0;
        }
        weights(field);
    };
    out += "],\"weights\":{\"live\":{";
    for (std::size_t row = 0; row < figures.size(); ++row) figures[row] = rounded(by_stack[row].bytes);
    weights("\"bytes\":");
    for (std::size_t row = 0; row < figures.size(); ++row) figures[row] = rounded(by_stack[row].count);
    weights(",\"count\":");
    out += "},\"peak\":";
    if (s.peak_kept) {
        site_weights("{\"bytes\":", &site_record::peak_bytes);
        site_weights(",\"count\":", &site_record::peak_allocs);
        out += '}';
    } else {
        out += "null";
    }
    out += ",\"allocated\":";
    if (any_allocated) {
        site_weights("{\"bytes\":", &site_record::bytes);
        site_weights(",\"count\":", &site_record::allocs);
        out += '}';
    } else {
        out += "null";
    }
    out += ",\"temporaries\":";
    if (any_temporary) {
        site_weights("{\"count\":", &site_record::temporaries);
        out += '}';
    } else {
        out += "null";
    }
    out += '}';

    // Sites are merged by function and line (two calls on one line are one site) through
    // numeric keys; only the listed ones are described.
    key_index site_keys;
    site_keys.reserve(by_stack.size());
    std::vector<site_weight> top_sites;
    for (const auto& [stack, row] : stack_rows) {
        if (row >= live_rows) continue;
        const frame_info* site = resolved.site(static_cast<std::uint32_t>(stack));
        const std::uint64_t key = site ? (std::uint64_t{names.id(*site)} << 32) | site->line : no_stack;
        const auto [at, added] = site_keys.insert(key);
        if (added) top_sites.push_back({site, {}});
        top_sites[at].second.bytes += by_stack[row].bytes;
        top_sites[at].second.count += by_stack[row].count;
    }
    const std::size_t rows = options.table_rows;
    const std::size_t sites_shown = std::min(rows, top_sites.size());
    // The largest one is sorted into place even when no row is listed: the advice needs it.
    // listed_before is a total order, so the sorted ones do not depend on the rows' order.
    const std::size_t sites_sorted = std::min(std::max<std::size_t>(rows, 1), top_sites.size());
    std::vector<std::uint32_t> site_order = row_numbers(top_sites.size());
    partial_sort_numbers(site_order, sites_sorted, {top_sites.data(), site_listed_before});
    out += "},\"sites\":[";
    for (std::size_t i = 0; i < sites_shown; ++i) {
        const site_weight& site = top_sites[site_order[i]];
        if (i) out += ',';
        out += "{\"name\":";
        append_script_string(out, describe_frame(site.first));
        out += ",\"bytes\":";
        append_json_uint(out, rounded(site.second.bytes));
        out += ",\"count\":";
        append_json_uint(out, rounded(site.second.count));
        out += '}';
    }
    out += "],\"site_count\":";
    append_json_uint(out, top_sites.size());

    // Live allocations by whole stack and domain, as leaks() groups them: most bytes first, then
    // by stack and domain, a total order.
    const std::size_t live_shown = std::min(rows, by_stack_domain.size());
    std::vector<std::uint32_t> live_order = row_numbers(by_stack_domain.size());
    partial_sort_numbers(live_order, live_shown, {by_stack_domain.data(), bytes_before});
    out += ",\"live_stacks\":[";
    for (std::size_t i = 0; i < live_shown; ++i) {
        if (i) out += ',';
        const live_sum& g = by_stack_domain[live_order[i]];
        const std::uint32_t stack = g.stack;
        out += "{\"site\":";
        append_script_string(out, describe_frame(resolved.site(stack)));
        out += ",\"domain\":";
        append_script_string(out, s.domain_name(g.domain));
        out += ",\"bytes\":";
        append_json_uint(out, rounded(g.bytes));
        out += ",\"count\":";
        append_json_uint(out, rounded(g.count));
        out += ",\"frames\":";
        append_json_frames(out, names, resolved.frames(stack));
        out += '}';
    }
    out += "],\"live_stack_count\":";
    append_json_uint(out, by_stack_domain.size());

    // Stacks by their bytes at the peak, as the text report lists them: most bytes, then most
    // allocations, then by stack.
    std::vector<std::uint32_t> held;
    for (std::size_t i = 0; i < s.sites.size(); ++i) {
        if (s.sites[i].peak_allocs != 0) held.push_back(static_cast<std::uint32_t>(i));
    }
    const std::size_t held_shown = std::min(rows, held.size());
    partial_sort_numbers(held, held_shown, {s.sites.data(), peak_bytes_before});
    out += ",\"peak_stacks\":[";
    for (std::size_t i = 0; i < held_shown; ++i) {
        const site_record& r = s.sites[held[i]];
        if (i) out += ',';
        out += "{\"site\":";
        append_script_string(out, describe_frame(resolved.site(r.stack)));
        out += ",\"bytes\":";
        append_json_uint(out, r.peak_bytes);
        out += ",\"count\":";
        append_json_uint(out, r.peak_allocs);
        out += ",\"frames\":";
        append_json_frames(out, names, resolved.frames(r.stack));
        out += '}';
    }
    out += "],\"peak_stack_count\":";
    append_json_uint(out, held.size());

    std::vector<std::uint32_t> temporary;
    for (std::size_t i = 0; i < s.sites.size(); ++i) {
        if (s.sites[i].temporaries != 0) temporary.push_back(static_cast<std::uint32_t>(i));
    }
    const std::size_t temporary_shown = std::min(rows, temporary.size());
    partial_sort_numbers(temporary, temporary_shown, {s.sites.data(), temporaries_before});
    out += ",\"temporaries\":[";
    for (std::size_t i = 0; i < temporary_shown; ++i) {
        const site_record& r = s.sites[temporary[i]];
        if (i) out += ',';
        out += "{\"site\":";
        append_script_string(out, describe_frame(resolved.site(r.stack)));
        out += ",\"temporaries\":";
        append_json_uint(out, r.temporaries);
        out += ",\"allocs\":";
        append_json_uint(out, r.allocs);
        out += ",\"bytes\":";
        append_json_uint(out, r.bytes);
        out += ",\"frames\":";
        append_json_frames(out, names, resolved.frames(r.stack));
        out += '}';
    }
    out += "],\"temporary_count\":";
    append_json_uint(out, temporary.size());

    out += ",\"scopes\":[";
    for (std::size_t i = 0; i < s.scopes.size(); ++i) {
        const named_scope_stats& n = s.scopes[i];
        if (i) out += ',';
        out += "{\"name\":";
        append_script_string(out, n.name);
        out += ",\"place\":";
        append_script_string(out, n.file.empty() ? std::string()
                                                 : concat({file_name(n.file), ":", number(n.line)}));
        out += ",\"calls\":";
        append_json_uint(out, n.calls);
        out += ",\"allocated\":";
        append_json_uint(out, n.allocated);
        out += ",\"allocs\":";
        append_json_uint(out, n.allocs);
        out += ",\"max_peak\":";
        append_json_uint(out, n.max_peak);
        out += ",\"net\":";
        append_json_number(out, n.net);
        out += '}';
    }
    out += "],\"domains\":[";
    for (std::size_t i = 0; i < s.domains.size(); ++i) {
        const domain_figures& d = s.domains[i];
        if (i) out += ',';
        out += "{\"name\":";
        append_script_string(out, d.name);
        out += ',';
        append_json_figures(out, d.figures);
        out += '}';
    }
    out += "],\"types\":[";
    for (std::size_t i = 0; i < s.types.size(); ++i) {
        const type_stats& t = s.types[i];
        if (i) out += ',';
        out += "{\"name\":";
        append_script_string(out, t.name);
        out += ",\"size\":";
        append_json_uint(out, t.size);
        out += ",\"instances\":";
        append_json_uint(out, t.instances);
        out += ",\"bytes\":";
        append_json_uint(out, t.bytes);
        out += ",\"peak\":";
        append_json_uint(out, t.peak);
        out += ",\"constructed\":";
        append_json_uint(out, t.constructed);
        out += '}';
    }
    out += "],\"timeline\":[";
    for (std::size_t i = 0; i < s.timeline.size(); ++i) {
        const timeline_point& p = s.timeline[i];
        if (i) out += ',';
        out += "{\"seconds\":";
        append_json_number(out, p.seconds);
        out += ",\"current\":";
        append_json_uint(out, p.current);
        out += ",\"peak\":";
        append_json_uint(out, p.peak);
        out += ",\"label\":";
        append_script_string(out, p.label);
        out += ",\"rss\":";
        append_json_uint(out, p.rss);
        out += '}';
    }
    out += "],\"collector\":[";
    for (std::size_t i = 0; i < s.collector.size(); ++i) {
        const collector_generation& g = s.collector[i];
        if (i) out += ',';
        out += "{\"generation\":";
        append_json_uint(out, g.generation);
        out += ",\"collections\":";
        append_json_uint(out, g.collections);
        out += ",\"collected\":";
        append_json_uint(out, g.collected);
        out += ",\"uncollectable\":";
        append_json_uint(out, g.uncollectable);
        out += ",\"threshold\":";
        append_json_number(out, static_cast<double>(g.threshold));
        out += ",\"seconds\":";
        append_json_number(out, g.seconds);
        out += ",\"longest_seconds\":";
        append_json_number(out, g.longest_seconds);
        out += '}';
    }
        out += "],\"pools\":[";
    for (std::size_t i = 0; i < s.pools.size(); ++i) {
        if (i) out += ',';
        out += "{\"name\":";
        append_script_string(out, s.pools[i].name);
        out += ',';
        append_json_figures(out, s.pools[i].figures);
        out += '}';
    }
    out += "],";
    append_html_leak_kinds(out, s, resolved, names, rows);
    out += ",\"recommendations\":[";
    const std::vector<recommendation> advice =
        recommend(s, resolved, top_sites.empty() ? nullptr : &top_sites[site_order.front()], live.bytes);
    for (std::size_t i = 0; i < advice.size(); ++i) {
        if (i) out += ',';
        out += "{\"rule\":";
        append_script_string(out, rule_name(advice[i].rule));
        out += ",\"figure\":";
        append_script_string(out, advice[i].figure);
        out += ",\"advice\":";
        append_script_string(out, advice[i].advice);
        out += '}';
    }
    // Last: the tables above add the names their stacks use.
    out += "],\"names\":";
    names.append_json(out);
    out += '}';
}

inline void append_html_text(std::string& out, std::string_view text) {
    for (const char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
}

// The page; frames that s.symbols lacks are resolved on the way, without copying the snapshot.
inline std::string html_document(const snapshot& s, const html_options& options) {
    guard quiet;
    std::string out;
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n<title>";
    detail::append_html_text(out, options.title);
    out += "</title>\n<style>";
    for (const std::string_view piece : html_style) out += piece;
    out += "</style>\n</head>\n<body>\n<header>\n<h1>";
    detail::append_html_text(out, options.title);
    out += "</h1>\n<div class=\"meta\" id=\"meta\"></div>\n<div class=\"cards\" id=\"cards\"></div>\n"
           "</header>\n<main>\n"
           "<h2>Recommendations</h2>\n<p class=\"note\" id=\"estimate-note\"></p>\n"
           "<ul class=\"advice\" id=\"advice\"></ul>\n"
           "<h2 id=\"flame-title\">Live bytes by call stack</h2>\n"
           "<div class=\"toolbar kinds\" id=\"kinds\" role=\"group\" aria-label=\"what the "
           "flamegraph shows\"></div>\n"
           "<p class=\"note\"><span id=\"kind-note\"></span> Outermost frame at the top. Click a "
           "frame to zoom, a name in the path or Escape to go back.</p>\n"
           "<div class=\"toolbar\"><input id=\"search\" type=\"search\" placeholder=\"Highlight "
           "frames containing&hellip;\" aria-label=\"search frames\"><span id=\"matched\" "
           "class=\"note\"></span><button id=\"reset\" type=\"button\">Reset zoom</button></div>\n"
           "<div class=\"toolbar\" id=\"crumbs\"></div>\n"
           "<div id=\"flame-box\"><canvas id=\"flame\" height=\"0\"></canvas></div>\n"
           "<section id=\"timeline-section\" hidden><h2>Memory over time</h2>"
           "<div id=\"timeline\"></div></section>\n"
           "<h2>Stacks at the peak</h2><div id=\"peak\"></div>\n"
           "<h2>Top sites by live bytes</h2><div id=\"sites\"></div>\n"
           "<h2>Live allocations by stack and domain</h2>"
           "<p class=\"note\">What is still alive: the leaks, when the snapshot holds what a block "
           "left behind.</p><div id=\"live\"></div>\n"
           "<section id=\"suppressed-section\" hidden><h2>Suppressed</h2><p class=\"note\">Live "
           "blocks that a suppression rule matched (the runtime's own, MEMLENS_SUPPRESSIONS, rules set "
           "in code): not leaks.</p><div id=\"suppressed\"></div></section>\n"
           "<section id=\"leak-kinds-section\" hidden><h2>Leak kinds</h2><p class=\"note\">How "
           "classify_leaks() reached each live block, in memcheck's words.</p>"
           "<div id=\"leak-summary\"></div><h3>Sites by kind</h3><div id=\"leak-sites\"></div>"
           "<h3>What keeps the largest still-reachable sites alive</h3><div id=\"backrefs\"></div>"
           "</section>\n"
           "<h2>Temporary allocations by site</h2><p class=\"note\" id=\"temporary-note\"></p>"
           "<div id=\"temporaries\"></div>\n"
           "<h2>Named scopes</h2><div id=\"scopes\"></div>\n"
           "<h2>Domains</h2><div id=\"domains\"></div>\n"
           "<h2>Counted types</h2><div id=\"types\"></div>\n"
           "<section id=\"pools-section\" hidden><h2>Runtime pools</h2><p class=\"note\">Memory "
           "that runtimes keep and carve the domains' blocks from: not in the totals.</p>"
           "<div id=\"pools\"></div></section>\n"
           "<section id=\"collector-section\" hidden><h2>Garbage collector</h2>"
           "<div id=\"collector\"></div></section>\n"
           "</main>\n<div id=\"tip\"></div>\n"
           "<script type=\"application/json\" id=\"memlens-data\">";
    append_html_data(out, s, options);
    out += "</script>\n<script>";
    for (const std::string_view piece : html_script) out += piece;
    out += "</script>\n</body>\n</html>\n";
    return out;
}

}  // namespace detail

/// The report for `s` as one self-contained HTML page (nothing fetched from a network): a
/// flamegraph led by the bytes at the peak when `s` kept them (snapshot::peak_kept), else by the
/// live bytes, switchable to the bytes allocated and the temporaries; memory over time, tables
/// and recommendations. Resolves every
/// frame into `s.symbols` first. Allocates; the report's own allocations are not recorded.
inline std::string to_html(snapshot s, const html_options& options = {}) {
    detail::guard quiet;
    symbolize(s);
    return detail::html_document(s, options);
}

/// Writes to_html(s, options) to `path` by the rule of detail/files.hpp: `path` holds the whole
/// report or what it held before, and is never replaced by something of another kind. Throws
/// std::runtime_error naming the path and the reason when it cannot be written.
inline void write_html(const snapshot& s, const std::string& path, const html_options& options = {}) {
    detail::guard quiet;
    const std::string text = detail::html_document(s, options);
    std::string error;
    if (!detail::write_output_file(path, text, error)) {
        throw std::runtime_error("memlens: " + error);
    }
}

MEMLENS_NAMESPACE_END
