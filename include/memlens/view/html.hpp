// memlens/view/html.hpp: a snapshot as one self-contained HTML file: an interactive flamegraph of
// the live bytes, memory over time, tables of sites, scopes, domains, types, live and temporary
// allocations, and recommendations that each name the figure behind them. It works offline: the
// style and script are inline and the data is embedded as JSON.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../detail/format.hpp"
#include "../detail/json_text.hpp"
#include "../observe/sites.hpp"
#include "snapshot.hpp"

namespace memlens {

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

inline std::string percent(double part, double whole) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
    return buffer;
}

inline std::string times(double ratio) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", ratio);
    return buffer;
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
        const auto known = by_address_.find(f.address);
        if (known != by_address_.end()) return known->second;
        const std::size_t before = labels_.size();
        const std::uint32_t named = id_of_label(frame_label(f));
        if (labels_.size() != before) {
            const std::string place = f.file.empty() ? file_name(f.module) : f.file;
            where_[2 * named] = place.empty() ? -1 : file_id(place);
            where_[2 * named + 1] = f.file.empty() ? 0 : static_cast<std::int64_t>(f.line);
        }
        by_address_.emplace(f.address, named);
        return named;
    }

    std::uint32_t id_of_label(std::string label) {
        const auto [known, added] = by_label_.emplace(label, static_cast<std::uint32_t>(labels_.size()));
        if (added) {
            labels_.push_back(std::move(label));
            where_.push_back(-1);
            where_.push_back(0);
        }
        return known->second;
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

    // The labels written so far, each as the length of the prefix it shares with the one before
    // (ASCII only, so that bytes and the page's UTF-16 units agree) and the rest; then where
    // each is.
    void append_json(std::string& out) const {
        out += "{\"labels\":[";
        std::string_view previous;
        for (std::size_t i = 0; i < order_.size(); ++i) {
            const std::string_view label = labels_[order_[i]];
            std::size_t shared = 0;
            while (shared < label.size() && shared < previous.size() && label[shared] == previous[shared] &&
                   static_cast<unsigned char>(label[shared]) < 0x80) {
                ++shared;
            }
            if (i) out += ',';
            append_json_uint(out, shared);
            out += ',';
            append_script_string(out, label.substr(shared));
            previous = label;
        }
        out += "],\"files\":[";
        for (std::size_t i = 0; i < files_.size(); ++i) {
            if (i) out += ',';
            append_script_string(out, *files_[i]);
        }
        out += "],\"where\":[";
        for (std::size_t i = 0; i < order_.size(); ++i) {
            if (i) out += ',';
            append_json_number(out, where_[2 * order_[i]]);
            out += ',';
            append_json_number(out, where_[2 * order_[i] + 1]);
        }
        out += "]}";
    }

private:
    std::int64_t file_id(const std::string& file) {
        const auto [known, added] = by_file_.emplace(file, static_cast<std::int64_t>(files_.size()));
        if (added) files_.push_back(&known->first);
        return known->second;
    }

    std::unordered_map<std::uintptr_t, std::uint32_t> by_address_;
    std::unordered_map<std::string, std::uint32_t> by_label_;
    std::unordered_map<std::string, std::int64_t> by_file_;
    std::vector<std::string> labels_;
    std::vector<const std::string*> files_;  // keys of by_file_, which never move
    std::vector<std::int64_t> where_;         // file id (-1 for none) and line, per label
    std::vector<std::int64_t> written_;       // per label, its number in the page; -1 until written
    std::vector<std::uint32_t> order_;        // labels in the order they were written
};

struct weighted {
    double bytes = 0, count = 0;
};

struct recommendation {
    std::string figure;  // the measurement that triggered it
    std::string advice;
};

inline void append_json_recommendations(std::string& out, const std::vector<recommendation>& list) {
    out += '[';
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (i) out += ',';
        out += '[';
        append_script_string(out, list[i].figure);
        out += ',';
        append_script_string(out, list[i].advice);
        out += ']';
    }
    out += ']';
}

// The thresholds are where a change usually pays: below them the figure is reported in the
// tables but earns no advice.
inline std::vector<recommendation> recommend(const snapshot& s, const resolved_stacks& resolved,
                                             const std::vector<std::pair<const frame_info*, weighted>>& by_site,
                                             double live_bytes) {
    std::vector<recommendation> out;
    if (s.estimated()) {
        out.push_back({"sampled: one allocation per " + describe_bytes(s.sample_bytes) +
                           " on average was recorded",
                       "live figures are unbiased estimates, not exact counts; use sites mode for "
                       "exact figures"});
    }
    if (!by_site.empty() && live_bytes >= 64 * 1024 && by_site.front().second.bytes >= 0.5 * live_bytes) {
        const weighted& top = by_site.front().second;
        out.push_back({describe_frame(by_site.front().first) + " holds " + percent(top.bytes, live_bytes) +
                           " of the live bytes (" + (s.estimated() ? "about " : "") +
                           describe_bytes(static_cast<std::uint64_t>(top.bytes)) +
                           " in " + group_digits(static_cast<std::uint64_t>(top.count)) + " allocations)",
                       "this one site decides the footprint: shrink what it keeps (exact-size "
                       "containers, shrink_to_fit, smaller element types) or bound it"});
    }
    std::vector<const site_record*> churning;
    for (const site_record& r : s.sites) {
        if (r.temporaries < 1000 || r.allocs == 0) continue;
        if (static_cast<double>(r.temporaries) < 0.5 * static_cast<double>(r.allocs)) continue;
        if (r.bytes / r.allocs > 256) continue;
        churning.push_back(&r);
    }
    std::sort(churning.begin(), churning.end(), [](const site_record* a, const site_record* b) {
        return a->temporaries > b->temporaries;
    });
    for (std::size_t i = 0; i < churning.size() && i < 3; ++i) {
        const site_record& r = *churning[i];
        const frame_info* site = resolved.site(r.stack);
        out.push_back({describe_frame(site) + ": " + group_digits(r.temporaries) + " of " +
                           group_digits(r.allocs) + " allocations freed within " +
                           group_digits(s.temporary_window) +
                           (s.temporary_window == 1 ? " further allocation, " : " further allocations, ") +
                           group_digits(r.bytes / r.allocs) + " bytes each on average",
                       "many short-lived small blocks from one place: reserve the capacity once, "
                       "reuse one buffer across calls, or take the blocks from a memlens::slot_pool"});
    }
    std::vector<std::pair<double, const named_scope_stats*>> peaky;
    for (const named_scope_stats& scope : s.scopes) {
        if (scope.calls == 0) continue;
        const double net_per_pass = std::max(0.0, static_cast<double>(scope.net) /
                                                      static_cast<double>(scope.calls));
        const double peak = static_cast<double>(scope.max_peak);
        if (peak >= 256 * 1024 && peak >= 4 * net_per_pass + 64 * 1024) {
            peaky.emplace_back(peak - net_per_pass, &scope);
        }
    }
    std::sort(peaky.begin(), peaky.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (std::size_t i = 0; i < peaky.size() && i < 3; ++i) {
        const named_scope_stats& scope = *peaky[i].second;
        out.push_back({"scope \"" + scope.name + "\": max peak " + describe_bytes(scope.max_peak) +
                           " in one pass, net " + describe_signed_bytes(scope.net) + " over " +
                           group_digits(scope.calls) + (scope.calls == 1 ? " pass" : " passes"),
                       "most of what the scope allocates is gone when it ends: intermediate "
                       "buffers set its peak; process in smaller chunks, stream, or reuse the "
                       "buffers between passes"});
    }
    for (const domain_figures& d : s.domains) {
        const memory_stats& f = d.figures;
        if (f.peak == 0 || f.allocs < 1000 || f.total < 10 * f.peak) continue;
        out.push_back({"domain \"" + d.name + "\": " + describe_bytes(f.total) + " allocated in " +
                           group_digits(f.allocs) + " allocations, " +
                           times(static_cast<double>(f.total) / static_cast<double>(f.peak)) +
                           " times its peak of " + describe_bytes(f.peak),
                       "its blocks are allocated and freed over and over (churn): keep and reuse "
                       "them (memlens::slot_pool, pool_allocator, reserve) instead"});
    }
    return out;
}

inline void append_json_frames(std::string& out, frame_names& names, frame_range frames) {
    out += '[';
    for (auto f = frames.first; f != frames.last; ++f) {
        if (f != frames.first) out += ',';
        names.append_id(out, names.id(**f), false);
    }
    out += ']';
}

// The report's data as one JSON object. Every figure the page shows comes from here.
inline void append_html_data(std::string& out, const snapshot& s, const html_options& options) {
    guard quiet;
    const resolved_stacks resolved(s);
    frame_names names(s.symbols.size());
    const std::uint32_t no_stack = names.id_of_label("(no stack)");

    // Live allocations by stack and domain: the flamegraph sums them over domains.
    std::unordered_map<std::uint64_t, weighted> by_stack_domain;
    by_stack_domain.reserve(s.stacks.size());
    weighted live;
    for (const live_allocation& a : s.allocations) {
        const double w = s.weight(a);
        weighted& g = by_stack_domain[(std::uint64_t{a.stack} << 32) | a.domain];
        g.bytes += w * static_cast<double>(a.size);
        g.count += w;
        live.bytes += w * static_cast<double>(a.size);
        live.count += w;
    }
    std::unordered_map<std::uint32_t, weighted> by_stack;
    by_stack.reserve(s.stacks.size());
    for (const auto& entry : by_stack_domain) {
        weighted& g = by_stack[static_cast<std::uint32_t>(entry.first >> 32)];
        g.bytes += entry.second.bytes;
        g.count += entry.second.count;
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
    out += ",\"totals\":[";
    for (const std::uint64_t v : {std::uint64_t{s.totals.current}, std::uint64_t{s.totals.peak},
                                  std::uint64_t{s.totals.total}, s.totals.allocs, s.totals.frees}) {
        if (out.back() != '[') out += ',';
        append_json_uint(out, v);
    }
    out += "],\"live\":[";
    append_json_uint(out, rounded(live.bytes));
    out += ',';
    append_json_uint(out, rounded(live.count));

    // Flamegraph input: each stack as name ids, outermost first, sorted so that stacks sharing a
    // prefix are neighbours, then written flat as bytes, count, how many frames it shares with
    // the stack before, how many follow, and those. The page rebuilds the tree in one pass
    // without a lookup, and shared prefixes are written once.
    struct flame_stack {
        double bytes, count;
        std::size_t begin, end;  // into ids
    };
    std::vector<std::uint32_t> ids;
    ids.reserve(resolved.frame_count() + by_stack.size());
    std::vector<flame_stack> flame;
    flame.reserve(by_stack.size());
    for (const auto& [stack, g] : by_stack) {
        const std::size_t begin = ids.size();
        const auto [first, last] = resolved.frames(stack);
        if (first == last) ids.push_back(no_stack);
        for (auto f = last; f != first;) ids.push_back(names.id(**--f));
        flame.push_back({g.bytes, g.count, begin, ids.size()});
    }
    std::sort(flame.begin(), flame.end(), [&ids](const flame_stack& a, const flame_stack& b) {
        return std::lexicographical_compare(ids.begin() + static_cast<std::ptrdiff_t>(a.begin),
                                            ids.begin() + static_cast<std::ptrdiff_t>(a.end),
                                            ids.begin() + static_cast<std::ptrdiff_t>(b.begin),
                                            ids.begin() + static_cast<std::ptrdiff_t>(b.end));
    });
    out += "],\"stacks\":[";
    const flame_stack* previous = nullptr;
    for (const flame_stack& f : flame) {
        std::size_t shared = 0;
        if (previous) {
            while (shared < f.end - f.begin && shared < previous->end - previous->begin &&
                   ids[f.begin + shared] == ids[previous->begin + shared]) {
                ++shared;
            }
            out += ',';
        }
        previous = &f;
        append_json_uint(out, rounded(f.bytes));
        out += ',';
        append_json_uint(out, rounded(f.count));
        out += ',';
        append_json_uint(out, shared);
        out += ',';
        append_json_uint(out, f.end - f.begin - shared);
        for (std::size_t i = f.begin + shared; i < f.end; ++i) {
            out += ',';
            names.append_id(out, ids[i], true);
        }
    }

    // Sites are merged by function and line (two calls on one line are one site) through
    // numeric keys; only the listed ones are described.
    std::unordered_map<std::uint64_t, std::pair<const frame_info*, weighted>> site_sums;
    site_sums.reserve(by_stack.size());
    for (const auto& [stack, g] : by_stack) {
        const frame_info* site = resolved.site(stack);
        const std::uint64_t key = site ? (std::uint64_t{names.id(*site)} << 32) | site->line : no_stack;
        auto& sum = site_sums.emplace(key, std::make_pair(site, weighted{})).first->second.second;
        sum.bytes += g.bytes;
        sum.count += g.count;
    }
    std::vector<std::pair<const frame_info*, weighted>> top_sites;
    top_sites.reserve(site_sums.size());
    for (const auto& entry : site_sums) top_sites.push_back(entry.second);
    const std::size_t rows = options.table_rows;
    const std::size_t sites_shown = std::min(rows, top_sites.size());
    // The largest one is sorted into place even when no row is listed: the advice needs it.
    const std::size_t sites_sorted = std::min(std::max<std::size_t>(rows, 1), top_sites.size());
    std::partial_sort(top_sites.begin(), top_sites.begin() + static_cast<std::ptrdiff_t>(sites_sorted),
                      top_sites.end(), [](const auto& a, const auto& b) {
                          if (a.second.bytes != b.second.bytes) return a.second.bytes > b.second.bytes;
                          return a.first && b.first ? a.first->address < b.first->address : !a.first;
                      });
    out += "],\"sites\":[";
    for (std::size_t i = 0; i < sites_shown; ++i) {
        if (i) out += ',';
        out += '[';
        append_script_string(out, describe_frame(top_sites[i].first));
        out += ',';
        append_json_uint(out, rounded(top_sites[i].second.bytes));
        out += ',';
        append_json_uint(out, rounded(top_sites[i].second.count));
        out += ']';
    }
    out += "],\"site_count\":";
    append_json_uint(out, top_sites.size());

    // Live allocations by whole stack and domain, as leaks() groups them.
    std::vector<std::pair<std::uint64_t, weighted>> live_stacks(by_stack_domain.begin(),
                                                                 by_stack_domain.end());
    const std::size_t live_shown = std::min(rows, live_stacks.size());
    std::partial_sort(live_stacks.begin(), live_stacks.begin() + static_cast<std::ptrdiff_t>(live_shown),
                      live_stacks.end(), [](const auto& a, const auto& b) {
                          return a.second.bytes != b.second.bytes ? a.second.bytes > b.second.bytes
                                                                  : a.first < b.first;
                      });
    out += ",\"live_stacks\":[";
    for (std::size_t i = 0; i < live_shown; ++i) {
        if (i) out += ',';
        const auto stack = static_cast<std::uint32_t>(live_stacks[i].first >> 32);
        out += '[';
        append_script_string(out, describe_frame(resolved.site(stack)));
        out += ',';
        append_script_string(out, s.domain_name(static_cast<std::uint32_t>(live_stacks[i].first)));
        out += ',';
        append_json_uint(out, rounded(live_stacks[i].second.bytes));
        out += ',';
        append_json_uint(out, rounded(live_stacks[i].second.count));
        out += ',';
        append_json_frames(out, names, resolved.frames(stack));
        out += ']';
    }
    out += "],\"live_stack_count\":";
    append_json_uint(out, live_stacks.size());

    std::vector<const site_record*> temporary;
    for (const site_record& r : s.sites) {
        if (r.temporaries != 0) temporary.push_back(&r);
    }
    const std::size_t temporary_shown = std::min(rows, temporary.size());
    std::partial_sort(temporary.begin(), temporary.begin() + static_cast<std::ptrdiff_t>(temporary_shown),
                      temporary.end(), [](const site_record* a, const site_record* b) {
                          return a->temporaries != b->temporaries ? a->temporaries > b->temporaries
                                                                  : a->stack < b->stack;
                      });
    out += ",\"temporaries\":[";
    for (std::size_t i = 0; i < temporary_shown; ++i) {
        const site_record& r = *temporary[i];
        if (i) out += ',';
        out += '[';
        append_script_string(out, describe_frame(resolved.site(r.stack)));
        out += ',';
        append_json_uint(out, r.temporaries);
        out += ',';
        append_json_uint(out, r.allocs);
        out += ',';
        append_json_uint(out, r.bytes);
        out += ',';
        append_json_frames(out, names, resolved.frames(r.stack));
        out += ']';
    }
    out += "],\"temporary_count\":";
    append_json_uint(out, temporary.size());

    out += ",\"scopes\":[";
    for (std::size_t i = 0; i < s.scopes.size(); ++i) {
        const named_scope_stats& n = s.scopes[i];
        if (i) out += ',';
        out += '[';
        append_script_string(out, n.name);
        out += ',';
        append_script_string(out, n.file.empty() ? std::string() : file_name(n.file) + ":" + std::to_string(n.line));
        for (const std::uint64_t v : {n.calls, n.allocated, n.allocs, n.max_peak}) {
            out += ',';
            append_json_uint(out, v);
        }
        out += ',';
        append_json_number(out, n.net);
        out += ']';
    }
    out += "],\"domains\":[";
    for (std::size_t i = 0; i < s.domains.size(); ++i) {
        const domain_figures& d = s.domains[i];
        if (i) out += ',';
        out += '[';
        append_script_string(out, d.name);
        for (const std::uint64_t v : {std::uint64_t{d.figures.current}, std::uint64_t{d.figures.peak},
                                      std::uint64_t{d.figures.total}, d.figures.allocs, d.figures.frees}) {
            out += ',';
            append_json_uint(out, v);
        }
        out += ']';
    }
    out += "],\"types\":[";
    for (std::size_t i = 0; i < s.types.size(); ++i) {
        const type_stats& t = s.types[i];
        if (i) out += ',';
        out += '[';
        append_script_string(out, t.name);
        for (const std::uint64_t v : {std::uint64_t{t.size}, t.instances, t.bytes, t.peak, t.constructed}) {
            out += ',';
            append_json_uint(out, v);
        }
        out += ']';
    }
    out += "],\"timeline\":[";
    for (std::size_t i = 0; i < s.timeline.size(); ++i) {
        const timeline_point& p = s.timeline[i];
        if (i) out += ',';
        out += '[';
        append_json_number(out, p.seconds);
        out += ',';
        append_json_uint(out, p.current);
        out += ',';
        append_json_uint(out, p.peak);
        out += ',';
        append_script_string(out, p.label);
        out += ']';
    }
    out += "],\"recommendations\":";
    append_json_recommendations(out, recommend(s, resolved, top_sites, live.bytes));
    // Last: the tables above add the names their stacks use.
    out += ",\"names\":";
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

inline constexpr std::string_view html_style = R"css(
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#fff;--band:#f5f6f9;--accent:#2f6fdf;--hit:#d946ef}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;border-bottom:1px solid var(--line);background:var(--band)}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:28px 0 8px}
main{padding:0 24px 40px;max-width:1400px}
.meta{color:var(--muted);font-size:12px;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:6px 12px}
.card b{display:block;font-size:16px}
.card span{color:var(--muted);font-size:12px}
.note{color:var(--muted);font-size:12px;margin:4px 0}
ul.advice{padding-left:20px}
ul.advice li{margin:6px 0}
ul.advice .figure{font-weight:600}
.toolbar{display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin:8px 0}
.toolbar input{font:inherit;padding:3px 8px;border:1px solid var(--line);border-radius:4px;min-width:260px}
.toolbar button{font:inherit;padding:3px 10px;border:1px solid var(--line);border-radius:4px;background:var(--band);cursor:pointer}
#crumbs a{color:var(--accent);cursor:pointer;text-decoration:none}
#crumbs a:hover{text-decoration:underline}
#crumbs .sep{color:var(--muted);margin:0 4px}
#flame-box{position:relative;border:1px solid var(--line);border-radius:4px;overflow:hidden}
#flame{display:block;width:100%;cursor:pointer}
#tip{position:fixed;pointer-events:none;background:#1d2330;color:#fff;font-size:12px;padding:6px 8px;border-radius:4px;max-width:640px;display:none;z-index:10;word-break:break-all}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--band);cursor:pointer;user-select:none;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
details summary{cursor:pointer}
details ol{margin:4px 0;padding-left:28px;font-size:12px}
svg text{font-size:11px;fill:var(--muted)}
)css";

inline constexpr std::string_view html_script = R"js(
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("memlens-data").textContent);
  const $ = (id) => document.getElementById(id);

  function bytes(n) {
    if (Math.abs(n) < 1024) return Math.round(n) + " B";
    const units = ["KiB", "MiB", "GiB", "TiB"];
    let i = -1;
    do { n /= 1024; ++i; } while (Math.abs(n) >= 1024 && i < units.length - 1);
    return n.toFixed(1) + " " + units[i];
  }
  // Digit groups by hand: toLocaleString costs an Intl set-up that shows in the load time.
  function count(n) {
    const digits = String(Math.round(Math.abs(n)));
    let out = "";
    for (let i = 0; i < digits.length; ++i) {
      if (i && (digits.length - i) % 3 === 0) out += ",";
      out += digits[i];
    }
    return (n < 0 ? "-" : "") + out;
  }
  const share = (part, whole) => (whole > 0 ? (100 * part / whole).toFixed(1) : "0.0") + "%";
  function element(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  // ---- header ----
  const [current, peak, total, allocs, frees] = data.totals;
  const liveBytes = data.live[0];
  const run = data.run;
  $("meta").textContent = [
    run.unix_time_ms ? new Date(run.unix_time_ms).toISOString() : "",
    run.pid ? "pid " + run.pid : "", run.mode ? "mode " + run.mode : "", run.build, run.command_line,
  ].filter(Boolean).join(" \u00b7 ");
  const cards = [
    [bytes(current), "live now, every domain"], [bytes(peak), "peak"], [bytes(total), "allocated in total"],
    [count(allocs), "allocations"], [count(frees), "frees"],
    [(data.estimated ? "\u2248 " : "") + bytes(liveBytes), "in the " + count(data.live[1]) + " live allocations recorded"],
  ];
  for (const [value, what] of cards) {
    const c = element("div", undefined, "card");
    c.append(element("b", value), element("span", what));
    $("cards").append(c);
  }

  // ---- recommendations ----
  if (data.recommendations.length === 0) {
    $("advice").append(element("li", "No figure in this snapshot crosses a threshold for advice."));
  }
  for (const [figure, advice] of data.recommendations) {
    const li = element("li");
    li.append(element("span", figure, "figure"), document.createTextNode(" \u2014 " + advice));
    $("advice").append(li);
  }

  // ---- names ----
  const files = data.names.files, where = data.names.where;
  const labels = new Array(data.names.labels.length / 2);
  {
    const packed = data.names.labels;
    let previous = "";
    for (let i = 0; i < labels.length; ++i) {
      previous = previous.slice(0, packed[2 * i]) + packed[2 * i + 1];
      labels[i] = previous;
    }
  }
  function place(n) {
    const file = where[2 * n], line = where[2 * n + 1];
    return file < 0 ? "" : files[file] + (line ? ":" + line : "");
  }
  // The qualified name without return type and parameters, for narrow boxes; computed only for
  // the names that are drawn.
  const briefs = new Map();
  function briefName(n) {
    let b = briefs.get(n);
    if (b !== undefined) return b;
    const text = labels[n].split("(anonymous namespace)").join("{anonymous}");
    let depth = 0, start = 0, end = text.length;
    for (let i = 0; i < text.length; ++i) {
      const c = text[i];
      if (c === "<") ++depth;
      else if (c === ">") --depth;
      else if (depth === 0 && c === "(" && i > 0) { end = i; break; }
      else if (depth === 0 && c === " ") start = i + 1;
    }
    b = start < end ? text.slice(start, end) : text;
    briefs.set(n, b);
    return b;
  }

  // ---- flamegraph: a tree of the live bytes, outermost frame at the top ----
  // Stacks come sorted, each as the number of frames it shares with the one before and the new
  // ones after: the tree grows along one path, with no lookup.
  const flat = data.stacks;
  let capacity = 1, longest = 1;
  for (let i = 0; i < flat.length; i += 4 + flat[i + 3]) {
    capacity += flat[i + 3];
    longest = Math.max(longest, flat[i + 2] + flat[i + 3]);
  }
  const parent = new Int32Array(capacity), nameOf = new Int32Array(capacity), depth = new Int32Array(capacity);
  const weight = new Float64Array(capacity), blocks = new Float64Array(capacity);
  parent[0] = -1;
  nameOf[0] = -1;
  let nodes = 1;
  {
    const path = new Int32Array(longest + 1);
    let fresh = 0;  // -1 in the stacks is the next name not seen before
    for (let i = 0; i < flat.length;) {
      const b = flat[i], c = flat[i + 1], shared = flat[i + 2], added = flat[i + 3];
      i += 4;
      let length = shared + 1;
      for (let k = 0; k < added; ++k) {
        const child = nodes++, up = path[length - 1];
        parent[child] = up;
        nameOf[child] = flat[i + k] < 0 ? fresh++ : flat[i + k];
        depth[child] = depth[up] + 1;
        path[length++] = child;
      }
      i += added;
      for (let k = 0; k < length; ++k) {
        weight[path[k]] += b;
        blocks[path[k]] += c;
      }
    }
  }
  // Children as one array with offsets per node.
  const firstChild = new Int32Array(nodes + 1);
  for (let v = 1; v < nodes; ++v) firstChild[parent[v] + 1]++;
  for (let v = 0; v < nodes; ++v) firstChild[v + 1] += firstChild[v];
  const children = new Int32Array(Math.max(nodes - 1, 1));
  {
    const fill = firstChild.slice(0, nodes);
    for (let v = 1; v < nodes; ++v) children[fill[parent[v]]++] = v;
  }
  const label = (v) => (v === 0 ? "all" : labels[nameOf[v]]);
  const brief = (v) => (v === 0 ? "all" : briefName(nameOf[v]));

  const canvas = $("flame"), context = canvas.getContext("2d");
  const rowHeight = 18, minWidth = 0.5;
  let zoom = 0, matches = null, hover = -1;
  let shown = [];  // what the last paint drew: [node, x, width, row]
  const hues = new Map();
  function colour(v) {
    const n = nameOf[v];
    let h = hues.get(n);
    if (h === undefined) {
      const text = label(v);
      let x = 2166136261;
      for (let i = 0; i < text.length; ++i) x = Math.imul(x ^ text.charCodeAt(i), 16777619);
      h = (x >>> 0) % 1000 / 1000;
      hues.set(n, h);
    }
    return "hsl(" + (10 + 40 * h).toFixed(0) + "," + (70 + 20 * h).toFixed(0) + "%," + (62 + 10 * h).toFixed(0) + "%)";
  }
  function nameMatches(v) { return matches !== null && v > 0 && matches[nameOf[v]] === 1; }

  function layout(width) {
    const out = [];
    const path = [];
    for (let v = zoom; v > 0; v = parent[v]) path.push(v);
    path.push(0);
    path.reverse();
    for (let row = 0; row < path.length - 1; ++row) out.push([path[row], 0, width, row]);
    // Only frames at least half a pixel wide are laid out, largest first: the work follows
    // what is visible, whatever the size of the tree.
    const stack = [[zoom, 0, width, path.length - 1]];
    const visible = [];
    while (stack.length) {
      const [v, x, w, row] = stack.pop();
      out.push([v, x, w, row]);
      const scale = weight[v] > 0 ? w / weight[v] : 0;
      visible.length = 0;
      for (let i = firstChild[v], end = firstChild[v + 1]; i < end; ++i) {
        if (weight[children[i]] * scale >= minWidth) visible.push(children[i]);
      }
      visible.sort((a, b) => weight[b] - weight[a]);
      let at = x;
      for (const c of visible) {
        const cw = weight[c] * scale;
        stack.push([c, at, cw, row + 1]);
        at += cw;
      }
    }
    return out;
  }

  function paint() {
    const width = canvas.parentElement.clientWidth;
    shown = layout(width);
    let rows = 0;
    for (const r of shown) rows = Math.max(rows, r[3] + 1);
    const ratio = window.devicePixelRatio || 1;
    canvas.style.height = rows * rowHeight + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(rows * rowHeight * ratio);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.font = "12px ui-monospace, SFMono-Regular, Menlo, monospace";
    context.textBaseline = "middle";
    const charWidth = context.measureText("M").width || 7;
    const zoomRow = depth[zoom];
    for (const [v, x, w, row] of shown) {
      const y = row * rowHeight;
      context.fillStyle = nameMatches(v) ? "#d946ef" : row < zoomRow ? "#d5d9e2" : colour(v);
      context.fillRect(x, y, Math.max(w - 1, 0.5), rowHeight - 1);
      if (v === hover) {
        context.strokeStyle = "#1d2330";
        context.strokeRect(x + 0.5, y + 0.5, Math.max(w - 2, 0.5), rowHeight - 2);
      }
      const fit = Math.floor((w - 6) / charWidth);
      if (fit >= 3) {
        let text = brief(v);
        if (text.length > fit) text = text.slice(0, fit - 1) + "\u2026";
        context.fillStyle = "#1d2330";
        context.fillText(text, x + 3, y + rowHeight / 2);
      }
    }
    crumbs();
  }

  function at(event) {
    const box = canvas.getBoundingClientRect();
    const x = event.clientX - box.left, row = Math.floor((event.clientY - box.top) / rowHeight);
    for (const [v, left, w, r] of shown) {
      if (r === row && x >= left && x < left + w) return v;
    }
    return -1;
  }

  function crumbs() {
    const box = $("crumbs");
    box.textContent = "";
    const path = [];
    for (let v = zoom; v >= 0; v = parent[v]) path.push(v);
    path.reverse();
    path.forEach((v, i) => {
      if (i) box.append(element("span", "\u203a", "sep"));
      const a = element("a", brief(v));
      a.title = label(v);
      a.addEventListener("click", () => zoomTo(v));
      box.append(a);
    });
    $("reset").disabled = zoom === 0;
  }

  function zoomTo(v) {
    zoom = v;
    hover = -1;
    paint();
  }

  const tip = $("tip");
  canvas.addEventListener("mousemove", (event) => {
    const v = at(event);
    if (v !== hover) {
      hover = v;
      paint();
    }
    if (v < 0) {
      tip.style.display = "none";
      return;
    }
    const spot = v > 0 ? place(nameOf[v]) : "";
    tip.textContent = "";
    tip.append(element("div", label(v)));
    if (spot) tip.append(element("div", spot));
    tip.append(element("div", (data.estimated ? "\u2248 " : "") + bytes(weight[v]) + " in " + count(blocks[v]) +
      " allocations \u00b7 " + share(weight[v], weight[0]) + " of live bytes" +
      (zoom > 0 ? " \u00b7 " + share(weight[v], weight[zoom]) + " of the zoomed frame" : "")));
    tip.style.display = "block";
    const left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = Math.max(left, 4) + "px";
    tip.style.top = event.clientY + 16 + "px";
  });
  canvas.addEventListener("mouseleave", () => {
    tip.style.display = "none";
    if (hover >= 0) {
      hover = -1;
      paint();
    }
  });
  canvas.addEventListener("click", (event) => {
    const v = at(event);
    if (v >= 0) zoomTo(v);
  });
  $("reset").addEventListener("click", () => zoomTo(0));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && zoom !== 0) zoomTo(parent[zoom] < 0 ? 0 : parent[zoom]);
  });

  function search() {
    const query = $("search").value.trim().toLowerCase();
    if (!query) {
      matches = null;
      $("matched").textContent = "";
      paint();
      return;
    }
    matches = new Uint8Array(labels.length);
    for (let i = 0; i < labels.length; ++i) {
      if (labels[i].toLowerCase().includes(query)) matches[i] = 1;
    }
    // A matching frame counts once with everything under it: nested matches are not added twice.
    let matched = 0, frames = 0;
    const stack = [0];
    while (stack.length) {
      const v = stack.pop();
      if (nameMatches(v)) {
        matched += weight[v];
        ++frames;
        continue;
      }
      const from = firstChild[v], to = firstChild[v + 1];
      for (let i = from; i < to; ++i) stack.push(children[i]);
    }
    $("matched").textContent = frames === 0 ? "no frame matches"
      : "matched: " + share(matched, weight[0]) + " of live bytes (" + bytes(matched) + ")";
    paint();
  }
  $("search").addEventListener("input", search);
  window.addEventListener("resize", paint);

  // ---- memory over time ----
  function plot() {
    const points = data.timeline;
    if (points.length === 0) return;
    $("timeline-section").hidden = false;
    const ns = "http://www.w3.org/2000/svg";
    const W = 900, H = 280, L = 72, R = 16, T = 16, B = 34;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", "100%");
    svg.style.maxWidth = W + "px";
    const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1e-9);
    let top = 1;
    for (const p of points) top = Math.max(top, p[1], p[2]);
    const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
    const y = (b) => T + (H - T - B) * (1 - b / top);
    function add(tag, attrs, text) {
      const e = document.createElementNS(ns, tag);
      for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (text !== undefined) e.textContent = text;
      svg.append(e);
      return e;
    }
    for (let i = 0; i <= 4; ++i) {
      const b = top * i / 4, yy = y(b);
      add("line", { x1: L, x2: W - R, y1: yy, y2: yy, stroke: "#e6e9ef" });
      add("text", { x: L - 6, y: yy + 4, "text-anchor": "end" }, bytes(b));
      const t = t0 + (t1 - t0) * i / 4;
      const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10((t1 - t0) / 4))));
      add("text", { x: x(t), y: H - 14, "text-anchor": "middle" }, t.toFixed(decimals) + " s");
    }
    const line = (k) => points.map((p) => x(p[0]).toFixed(1) + "," + y(p[k]).toFixed(1)).join(" ");
    add("polyline", { points: line(2), fill: "none", stroke: "#e07a2f", "stroke-width": 1.5, "stroke-dasharray": "5 3" });
    add("polyline", { points: line(1), fill: "none", stroke: "#2f6fdf", "stroke-width": 2 });
    // Labels mark what the program was doing; crowded ones keep their marker and a hover title.
    let lastLabelX = -1e9;
    for (const p of points) {
      if (!p[3]) continue;
      const px = x(p[0]);
      const dot = add("circle", { cx: px, cy: y(p[1]), r: 3, fill: "#2f6fdf" });
      const title = document.createElementNS(ns, "title");
      title.textContent = p[3] + ": " + bytes(p[1]) + " live, peak " + bytes(p[2]) + " at " + p[0].toFixed(3) + " s";
      dot.append(title);
      if (px - lastLabelX > 70) {
        const right = px > W - R - 90;
        add("text", { x: right ? px - 4 : px + 4, y: Math.max(y(p[1]) - 6, T + 8), "text-anchor": right ? "end" : "start" }, p[3]);
        lastLabelX = px;
      }
    }
    add("text", { x: L, y: H - 2 }, "\u2014 current (live bytes)");
    add("text", { x: L + 170, y: H - 2, fill: "#e07a2f" }, "- - peak");
    $("timeline").append(svg);
  }

  // ---- tables ----
  // The frames are listed when the row is opened, not before: most rows never are.
  function stackList(frames) {
    const d = element("details");
    d.append(element("summary", frames.length + " frames"));
    d.addEventListener("toggle", () => {
      if (!d.open || d.childElementCount > 1) return;
      const list = element("ol");
      list.start = 0;
      for (const f of frames) {
        const spot = place(f);
        list.append(element("li", labels[f] + (spot ? " at " + spot : "")));
      }
      d.append(list);
    });
    return d;
  }
  // columns: [heading, kind] where kind is "name", "bytes", "count", "share" or "stack".
  function table(id, columns, rows, all) {
    const box = $(id);
    if (rows.length === 0) {
      box.append(element("p", "Nothing recorded.", "note"));
      return;
    }
    const t = element("table"), head = element("tr"), body = element("tbody");
    const numeric = (kind) => kind !== "name" && kind !== "stack" && kind !== "text";
    columns.forEach(([heading, kind], i) => {
      const th = element("th", heading, numeric(kind) ? "n" : "");
      th.addEventListener("click", () => {
        const down = th.dataset.order !== "down";
        th.dataset.order = down ? "down" : "up";
        rows.sort((a, b) => {
          const p = kind === "stack" ? a[i].length : a[i], q = kind === "stack" ? b[i].length : b[i];
          return (p < q ? -1 : p > q ? 1 : 0) * (down === numeric(kind) ? -1 : 1);
        });
        fill();
      });
      head.append(th);
    });
    // A few rows at first keep the page quick to lay out; the rest are a click away.
    let limit = Math.min(rows.length, 25);
    function fill() {
      body.textContent = "";
      for (const row of rows.slice(0, limit)) {
        const tr = element("tr");
        columns.forEach(([, kind], i) => {
          const v = row[i];
          if (kind === "stack") {
            const td = element("td");
            td.append(stackList(v));
            tr.append(td);
          } else if (kind === "bytes") tr.append(element("td", bytes(v), "n"));
          else if (kind === "count") tr.append(element("td", count(v), "n"));
          else if (kind === "share") tr.append(element("td", share(v, liveBytes), "n"));
          else if (kind === "signed") tr.append(element("td", (v > 0 ? "+" : v < 0 ? "\u2212" : "") + bytes(Math.abs(v)), "n"));
          else tr.append(element("td", v, "name"));
        });
        body.append(tr);
      }
    }
    const thead = element("thead");
    thead.append(head);
    t.append(thead, body);
    fill();
    box.append(t);
    if (limit < rows.length) {
      const more = element("button", "Show all " + count(rows.length) + " rows");
      more.type = "button";
      more.addEventListener("click", () => {
        limit = rows.length;
        fill();
        more.remove();
      });
      box.append(more);
    }
    if (all > rows.length) box.append(element("p", "The largest " + count(rows.length) + " of " + count(all) + " are listed.", "note"));
  }

  table("sites", [["site (first frame outside the standard library)", "name"], ["live bytes", "bytes"], ["allocations", "count"], ["share", "share"]],
    data.sites.map((r) => [r[0], r[1], r[2], r[1]]), data.site_count);
  table("live", [["site", "name"], ["domain", "text"], ["live bytes", "bytes"], ["allocations", "count"], ["share", "share"], ["stack", "stack"]],
    data.live_stacks.map((r) => [r[0], r[1], r[2], r[3], r[2], r[4]]), data.live_stack_count);
  table("temporaries", [["site", "name"], ["temporary", "count"], ["allocations", "count"], ["bytes allocated", "bytes"], ["stack", "stack"]],
    data.temporaries.map((r) => [r[0], r[1], r[2], r[3], r[4]]), data.temporary_count);
  table("scopes", [["scope", "name"], ["site", "text"], ["calls", "count"], ["allocated", "bytes"], ["allocations", "count"], ["max peak", "bytes"], ["net", "signed"]],
    data.scopes.slice(), data.scopes.length);
  table("domains", [["domain", "name"], ["current", "bytes"], ["peak", "bytes"], ["total", "bytes"], ["allocations", "count"], ["frees", "count"]],
    data.domains.slice(), data.domains.length);
  table("types", [["type", "name"], ["sizeof", "count"], ["instances", "count"], ["bytes", "bytes"], ["peak instances", "count"], ["constructed", "count"]],
    data.types.slice(), data.types.length);
  $("temporary-note").textContent = "An allocation is temporary when its thread frees it before making " +
    count(data.temporary_window) + " more.";
  if (data.estimated) $("estimate-note").textContent = "Sampled (one per " + bytes(data.sample_bytes) +
    " on average): live figures are estimates.";

  plot();
  paint();

  // For scripts and tests: what the flamegraph shows now.
  window.memlensReport = {
    frames: () => shown.map(([v, x, w, row]) => ({ name: label(v), x, width: w, row, y: row * rowHeight,
      highlighted: nameMatches(v), bytes: weight[v] })),
    zoomed: () => label(zoom),
    nodes: () => nodes,
    readyMs: performance.now(),
  };
  document.documentElement.dataset.ready = "true";
})();
)js";

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
    out += detail::html_style;
    out += "</style>\n</head>\n<body>\n<header>\n<h1>";
    detail::append_html_text(out, options.title);
    out += "</h1>\n<div class=\"meta\" id=\"meta\"></div>\n<div class=\"cards\" id=\"cards\"></div>\n"
           "</header>\n<main>\n"
           "<h2>Recommendations</h2>\n<p class=\"note\" id=\"estimate-note\"></p>\n"
           "<ul class=\"advice\" id=\"advice\"></ul>\n"
           "<h2>Live bytes by call stack</h2>\n"
           "<p class=\"note\">Outermost frame at the top; width is live bytes. Click a frame to "
           "zoom, a name in the path or Escape to go back.</p>\n"
           "<div class=\"toolbar\"><input id=\"search\" type=\"search\" placeholder=\"Highlight "
           "frames containing&hellip;\" aria-label=\"search frames\"><span id=\"matched\" "
           "class=\"note\"></span><button id=\"reset\" type=\"button\">Reset zoom</button></div>\n"
           "<div class=\"toolbar\" id=\"crumbs\"></div>\n"
           "<div id=\"flame-box\"><canvas id=\"flame\" height=\"0\"></canvas></div>\n"
           "<section id=\"timeline-section\" hidden><h2>Memory over time</h2>"
           "<div id=\"timeline\"></div></section>\n"
           "<h2>Top sites by live bytes</h2><div id=\"sites\"></div>\n"
           "<h2>Live allocations by stack and domain</h2>"
           "<p class=\"note\">What is still alive: the leaks, when the snapshot holds what a block "
           "left behind.</p><div id=\"live\"></div>\n"
           "<h2>Temporary allocations by site</h2><p class=\"note\" id=\"temporary-note\"></p>"
           "<div id=\"temporaries\"></div>\n"
           "<h2>Named scopes</h2><div id=\"scopes\"></div>\n"
           "<h2>Domains</h2><div id=\"domains\"></div>\n"
           "<h2>Counted types</h2><div id=\"types\"></div>\n"
           "</main>\n<div id=\"tip\"></div>\n"
           "<script type=\"application/json\" id=\"memlens-data\">";
    append_html_data(out, s, options);
    out += "</script>\n<script>";
    out += detail::html_script;
    out += "</script>\n</body>\n</html>\n";
    return out;
}

}  // namespace detail

/// The report for `s` as one self-contained HTML page (nothing fetched from a network): a
/// flamegraph of the live bytes, memory over time, tables and recommendations. Resolves every
/// frame into `s.symbols` first. Allocates; the report's own allocations are not recorded.
inline std::string to_html(snapshot s, const html_options& options = {}) {
    detail::guard quiet;
    symbolize(s);
    return detail::html_document(s, options);
}

/// Writes to_html(s, options) to `path` through a temporary file and a rename, so that `path`
/// holds the whole report or what it held before. Throws std::runtime_error naming the file
/// when it cannot be written.
inline void write_html(const snapshot& s, const std::string& path, const html_options& options = {}) {
    detail::guard quiet;
    const std::string text = detail::html_document(s, options);
    std::string error;
    if (!detail::write_file_atomically(path, text, error)) {
        throw std::runtime_error("memlens: cannot write the HTML report: " + error);
    }
}

}  // namespace memlens
