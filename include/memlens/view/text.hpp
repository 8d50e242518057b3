// memlens/view/text.hpp: a snapshot as text for a terminal: a summary (totals, top sites,
// domains, named scopes, counted types), a table of functions by own or total bytes, a call
// tree, and the stacks that held the most at the peak. Pure functions of the snapshot; colour only when asked for, or when printing to a terminal.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <unistd.h>

#include "../detail/format.hpp"
#include "../detail/rank.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What format_summary() shows.
struct summary_options {
    /// The largest sites listed, by live bytes.
    std::size_t top_sites = 5;
    /// Functions named briefly ("std::vector<>::push_back") or whole, parameters included.
    name_form names = name_form::brief;
    /// ANSI bold headings; print_summary() decides this itself.
    bool colour = false;
};

/// The figure a site table is sorted by, largest first.
enum class site_order {
    /// Bytes whose site (first frame outside memlens and the standard library) is the function.
    own_bytes,
    /// Bytes with the function anywhere in their stack, each allocation counted once.
    total_bytes,
    /// Allocations whose site is the function.
    count,
};

/// What format_site_table() shows.
struct table_options {
    /// Which figure ranks the rows, largest first.
    site_order order = site_order::own_bytes;
    /// Rows below this many bytes in the sorted figure (own bytes when sorted by count) are left out.
    std::uint64_t min_bytes = 0;
    /// Rows below this share (0 to 1) of the snapshot's live bytes in that figure are left out.
    double min_share = 0;
    /// At most this many rows; 0 for all.
    std::size_t limit = 20;
    /// Functions named briefly, instantiations of a template on one row, or whole, each
    /// overload and instantiation on its own.
    name_form names = name_form::brief;
    /// ANSI bold headings; print_site_table() decides this itself.
    bool colour = false;
};

/// What format_tree() shows.
struct tree_options {
    /// Branches below this share (0 to 1) of all live bytes fold into one "smaller branches" line.
    double min_share = 0.01;
    /// Frames shown below the root; deeper ones are summed into their ancestor.
    std::size_t max_depth = 32;
    /// "|--" and "`--" instead of box-drawing characters.
    bool ascii = false;
    /// Functions named briefly, instantiations of a template on one branch, or whole.
    name_form names = name_form::brief;
    /// ANSI bold headings and dim connectors; print_tree() decides this itself.
    bool colour = false;
};

namespace detail {

inline std::string text_signed_bytes(std::int64_t bytes) {
    if (bytes < 0) return concat({"-", compact(static_cast<std::uint64_t>(-(bytes + 1)) + 1)});
    return concat({"+", compact(static_cast<std::uint64_t>(bytes))});
}

// The ANSI escapes that start and end bold text, when in colour.
inline const char* text_bold_on(bool colour) { return colour ? "\x1b[1m" : ""; }
inline const char* text_style_off(bool colour) { return colour ? "\x1b[0m" : ""; }

// A tree line's connectors, dim when in colour.
inline void text_connector(std::string& out, bool colour, const std::string& prefix, const char* branch) {
    append_all(out, {colour ? "\x1b[2m" : "", prefix, branch, text_style_off(colour)});
}

// Colour for a terminal only, and never when NO_COLOR is set to anything (no-color.org).
inline bool text_colour_for(std::FILE* f) {
    const char* no_colour = std::getenv("NO_COLOR");
    if (no_colour && *no_colour) return false;
    return ::isatty(::fileno(f)) == 1;
}

// A frame's function without return type, parameters and template arguments, which the terminal
// has no room for: overloads and instantiations share a row or a branch, as memray's views merge
// them; or the whole name, when asked.
inline std::string text_frame_name(const frame_info& f, name_form names) {
    if (f.function.empty()) return f.describe();
    return names == name_form::brief ? short_name(f.function) : f.function;
}

inline std::string text_location(const frame_info& f) {
    if (f.file.empty() || f.line == 0) return f.file;
    return concat({f.file, ":", number(f.line)});
}

struct text_row {
    std::string name;
    live_sum own;
    live_sum total;
    std::string location;  // shared by every frame of this function seen, as far as they agree
    bool location_set = false;
};

inline void text_merge_location(text_row& row, const frame_info& f) {
    const std::string where = text_location(f);
    if (!row.location_set) {
        row.location = where;
        row.location_set = true;
    } else if (row.location != where) {
        const std::size_t n = f.file.size();
        const bool same_file = n != 0 && (row.location == f.file ||
                                          (row.location.size() > n && row.location[n] == ':' &&
                                           row.location.compare(0, n, f.file) == 0));
        row.location = same_file ? f.file : std::string();
    }
}


struct text_node {
    std::string name;
    live_sum weight;
    std::vector<text_node> children;
};

inline text_node& text_child(text_node& parent, const std::string& name) {
    for (text_node& c : parent.children) {
        if (c.name == name) return c;
    }
    parent.children.push_back({name, {}, {}});
    return parent.children.back();
}

inline void text_tree_lines(const text_node& node, const std::string& prefix, std::size_t depth,
                            double root_bytes, const tree_options& o, std::string& out) {
    const char* branch = o.ascii ? "|-- " : "\u251c\u2500\u2500 ";
    const char* last_branch = o.ascii ? "`-- " : "\u2514\u2500\u2500 ";
    const char* through = o.ascii ? "|   " : "\u2502   ";
    auto figures = [&](const live_sum& w) {
        const std::uint64_t count = rounded(w.count);
        const char* about = w.estimated ? "~" : "";
        append_all(out, {about, compact(rounded(w.bytes)), "  ", share(w.bytes, root_bytes), "  ",
                         about, digits(count), count == 1 ? " allocation" : " allocations"});
    };
    if (depth >= o.max_depth) {
        if (!node.children.empty()) {
            text_connector(out, o.colour, prefix, last_branch);
            out += "... deeper frames not shown\n";
        }
        return;
    }
    std::vector<rank_entry> ranks;
    live_sum folded;
    std::size_t folded_count = 0;
    for (std::size_t i = 0; i < node.children.size(); ++i) {
        const text_node& c = node.children[i];
        if (c.weight.bytes < o.min_share * root_bytes) {
            folded.add(c.weight);
            ++folded_count;
        } else {
            // Siblings have distinct names, so the order is total.
            ranks.push_back({rank_of_real(c.weight.bytes), rank_of_real(c.weight.count), 0, c.name, i});
        }
    }
    const std::vector<std::uint32_t> order = ranked_rows(ranks);
    for (std::size_t i = 0; i < order.size(); ++i) {
        const text_node& shown = node.children[ranks[order[i]].last];
        const bool last = i + 1 == order.size() && folded_count == 0;
        text_connector(out, o.colour, prefix, last ? last_branch : branch);
        figures(shown.weight);
        append_all(out, {"  ", shown.name, "\n"});
        text_tree_lines(shown, concat({prefix, last ? "    " : through}), depth + 1, root_bytes, o, out);
    }
    if (folded_count != 0) {
        text_connector(out, o.colour, prefix, last_branch);
        append_all(out, {digits(folded_count),
                         folded_count == 1 ? " smaller branch: " : " smaller branches: "});
        figures(folded);
        out += '\n';
    }
}

}  // namespace detail

/// The snapshot in a few sections, each only when it has something to say: the process totals,
/// the live allocations the snapshot holds, its largest sites by live bytes, domains, named
/// scopes and counted types. Figures from sampling are marked "~" / "about". Allocates.
inline std::string format_summary(const snapshot& s, const summary_options& options = {}) {
    using namespace detail;
    guard quiet;
    const bool colour = options.colour;
    std::string out;
    auto section = [&](const char* title) {
        if (!out.empty()) out += '\n';
        append_all(out, {text_bold_on(colour), title, text_style_off(colour), "\n"});
    };
    const memory_stats& t = s.totals;
    if (t.allocs != 0 || t.current != 0 || t.total != 0) {
        section("Totals (every domain)");
        append_all(out, {"  current ", compact(t.current), ", peak ", compact(t.peak), ", total ",
                         compact(t.total), " in ", digits(t.allocs),
                         t.allocs == 1 ? " allocation, " : " allocations, ", digits(t.frees),
                         t.frees == 1 ? " free\n" : " frees\n"});
    }
    if (!s.allocations.empty()) {
        const bool estimated = s.estimated();
        double bytes = 0, count = 0;
        for (const live_allocation& a : s.allocations) {
            bytes += s.bytes(a);
            count += s.weight(a);
        }
        const char* about = estimated ? "about " : "";
        section("Live allocations in this snapshot");
        append_all(out, {"  ", about, digits(rounded(count)),
                         rounded(count) == 1 ? " allocation, " : " allocations, ", about,
                         compact(rounded(bytes)), estimated ? " (estimated from sampling)\n" : "\n"});
        const std::vector<statistic> sites = statistics(s, group_by::site);
        if (options.top_sites != 0 && !sites.empty()) {
            section("Top sites by live bytes");
            std::vector<std::string> cells;
            for (std::size_t i = 0; i < sites.size() && i < options.top_sites; ++i) {
                const statistic& st = sites[i];
                std::string site = st.key;
                if (!st.traceback.empty()) {
                    const frame_info& f = st.traceback.front();
                    site = text_frame_name(f, options.names);
                    if (!f.file.empty()) append_all(site, {" at ", text_location(f)});
                }
                append_cells(cells, {estimate(st.estimated, compact(st.bytes)),
                                           share(static_cast<double>(st.bytes), bytes),
                                           estimate(st.estimated, digits(st.count)), site});
            }
            out += format_table({{"bytes", true}, {"share", true}, {"allocations", true}, {"site"}},
                                cells, "  ", colour);
            if (sites.size() > options.top_sites) {
                append_all(out, {"  ... ", digits(sites.size() - options.top_sites), " more sites\n"});
            }
        }
    }
    std::vector<std::string> cells;
    for (const domain_figures& d : s.domains) {
        const memory_stats& f = d.figures;
        if (f.allocs == 0 && f.current == 0 && f.total == 0) continue;
        append_cells(cells, {d.name, compact(f.current), compact(f.peak),
                                   compact(f.total), digits(f.allocs), digits(f.frees)});
    }
    if (!cells.empty()) {
        section("Domains");
        out += format_table({{"domain"}, {"current", true}, {"peak", true}, {"total", true},
                             {"allocations", true}, {"frees", true}},
                            cells, "  ", colour);
    }
    cells.clear();
    for (const named_scope_stats& n : s.scopes) {
        std::string site = n.file;
        if (!site.empty() && n.line != 0) append_all(site, {":", number(n.line)});
        append_cells(cells, {n.name, digits(n.calls), compact(n.allocated),
                                   digits(n.allocs), compact(n.max_peak),
                                   text_signed_bytes(n.net), site});
    }
    if (!cells.empty()) {
        section("Named scopes");
        out += format_table({{"scope"}, {"calls", true}, {"allocated", true}, {"allocations", true},
                             {"max peak", true}, {"net", true}, {"site"}},
                            cells, "  ", colour);
    }
    cells.clear();
    for (const type_stats& ty : s.types) {
        append_cells(cells, {ty.name, digits(ty.instances), compact(ty.bytes),
                                   digits(ty.peak)});
    }
    if (!cells.empty()) {
        section("Counted types");
        out += format_table({{"type"}, {"instances", true}, {"bytes", true}, {"peak", true}}, cells,
                            "  ", colour);
    }
    cells.clear();
    for (const domain_figures& d : s.pools) {
        const memory_stats& f = d.figures;
        append_cells(cells, {d.name, compact(f.current), compact(f.peak), compact(f.total),
                             digits(f.allocs), digits(f.frees)});
    }
    if (!cells.empty()) {
        section("Runtime pools (the domains' blocks are carved from these; not in the totals)");
        out += format_table({{"pool"}, {"current", true}, {"peak", true}, {"total", true},
                             {"pieces", true}, {"frees", true}},
                            cells, "  ", colour);
    }
    cells.clear();
    for (const collector_generation& g : s.collector) {
        append_cells(cells, {number(g.generation), digits(g.collections), digits(g.collected),
                             digits(g.uncollectable), g.threshold < 0 ? std::string("-") : concat({number(static_cast<std::uint64_t>(g.threshold))}),
                             concat({tenths(g.seconds * 1e3), " ms"}),
                             concat({tenths(g.longest_seconds * 1e3), " ms"})});
    }
    if (!cells.empty()) {
        section("Garbage collector");
        out += format_table({{"generation", true}, {"collections", true}, {"collected", true},
                             {"uncollectable", true}, {"threshold", true}, {"time", true},
                             {"longest", true}},
                            cells, "  ", colour);
    }
    return out;
}

/// The live allocations of `s` by function, as memray's table and tracemalloc's statistics
/// show them: own bytes (the function is the site), total bytes (the function is anywhere in
/// the stack, once per allocation), shares of all live bytes, allocations, and where the
/// function's frames are (file:line when they agree). Sorted and cut as `options` say; the
/// heading says how many rows were left out. Allocates.
inline std::string format_site_table(const snapshot& s, const table_options& options = {}) {
    using namespace detail;
    guard quiet;
    const resolved_stacks resolved(s);
    string_index names;
    std::vector<text_row> by_name;
    auto row_named = [&](std::string name) -> text_row& {
        const std::uint32_t row = names.insert(name).first;
        if (row == by_name.size()) by_name.push_back({std::move(name), {}, {}, {}, false});
        return by_name[row];
    };
    live_sum all;
    for (const live_sum& w : live_by_stack(s, false)) {
        all.add(w);
        const frame_range frames = resolved.frames(w.stack);
        if (frames.empty()) {
            text_row& row = row_named("(no stack)");
            row.own.add(w);
            row.total.add(w);
            continue;
        }
        const frame_info* site = resolved.site(w.stack);
        std::vector<std::string> seen;
        for (const frame_info& f : frames) {
            std::string name = text_frame_name(f, options.names);
            text_row& row = row_named(name);
            text_merge_location(row, f);
            if (&f == site) row.own.add(w);
            if (std::find(seen.begin(), seen.end(), name) == seen.end()) {
                row.total.add(w);
                seen.push_back(std::move(name));
            }
        }
    }
    auto figure = [&](const text_row& r) {
        return options.order == site_order::total_bytes ? r.total.bytes : r.own.bytes;
    };
    std::vector<rank_entry> ranks;
    for (std::size_t i = 0; i < by_name.size(); ++i) {
        const text_row& r = by_name[i];
        const double key = options.order == site_order::count ? r.own.count : figure(r);
        if (key <= 0 || figure(r) < static_cast<double>(options.min_bytes) ||
            figure(r) < options.min_share * all.bytes) {
            continue;
        }
        // Names are distinct, so the order is total.
        const std::int64_t by_figure = rank_of_real(figure(r));
        const std::int64_t by_total = rank_of_real(r.total.bytes);
        if (options.order == site_order::count) {
            ranks.push_back({rank_of_real(r.own.count), by_figure, by_total, r.name, i});
        } else {
            ranks.push_back({by_figure, by_total, 0, r.name, i});
        }
    }
    std::vector<std::uint32_t> rows = ranked_rows(ranks);
    const std::size_t total_rows = rows.size();
    if (options.limit != 0 && rows.size() > options.limit) rows.resize(options.limit);
    const char* order = options.order == site_order::own_bytes     ? "own bytes"
                        : options.order == site_order::total_bytes ? "total bytes"
                                                                   : "allocations";
    const std::uint64_t count = rounded(all.count);
    const char* about = all.estimated ? "~" : "";
    std::string out;
    append_all(out, {text_bold_on(options.colour), "Live allocations by function, by ", order,
                     text_style_off(options.colour), ": ", about, digits(count),
                     count == 1 ? " allocation, " : " allocations, ", about, compact(rounded(all.bytes)),
                     "; ", digits(rows.size()), " of ", digits(by_name.size()), " functions shown"});
    if (total_rows > rows.size()) append_all(out, {" (row limit ", digits(options.limit), ")"});
    out += all.estimated ? "; ~ marks estimates from sampling\n" : "\n";
    std::vector<std::string> cells;
    for (const std::uint32_t n : rows) {
        const text_row* r = &by_name[ranks[n].last];
        append_cells(cells, {estimate(r->own.estimated, compact(rounded(r->own.bytes))),
                                   share(r->own.bytes, all.bytes),
                                   estimate(r->total.estimated, compact(rounded(r->total.bytes))),
                                   share(r->total.bytes, all.bytes),
                                   estimate(r->own.estimated, digits(rounded(r->own.count))),
                                   r->name, r->location});
    }
    out += format_table({{"own", true}, {"share", true}, {"total", true}, {"share", true},
                         {"allocations", true}, {"function"}, {"where"}},
                        cells, "  ", options.colour);
    return out;
}

/// The live allocations of `s` as a call tree from the outermost frame down, as memray's tree
/// shows them: each line a function's bytes, share of all live bytes and allocations below it;
/// children largest first; branches under `options.min_share` folded into one line. A snapshot
/// taken at the peak gives the peak's tree; leak_check::leaked() gives the leaks'. Allocates.
inline std::string format_tree(const snapshot& s, const tree_options& options = {}) {
    using namespace detail;
    guard quiet;
    const resolved_stacks resolved(s);
    text_node root;
    for (const live_sum& w : live_by_stack(s, false)) {
        root.weight.add(w);
        const frame_range frames = resolved.frames(w.stack);
        text_node* at = &root;
        if (frames.empty()) {
            at = &text_child(*at, "(no stack)");
            at->weight.add(w);
        }
        for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
            at = &text_child(*at, text_frame_name(*f, options.names));
            at->weight.add(w);
        }
    }
    const std::uint64_t count = rounded(root.weight.count);
    const char* about = root.weight.estimated ? "~" : "";
    std::string out;
    append_all(out, {text_bold_on(options.colour), "Live allocations by call path: ", about, digits(count),
                     count == 1 ? " allocation, " : " allocations, ", about,
                     compact(rounded(root.weight.bytes)), text_style_off(options.colour), "\n"});
    text_tree_lines(root, "", 0, root.weight.bytes, options, out);
    return out;
}

/// What was alive at the process's highest peak, by stack, most bytes first: the totals, then
/// the `top` largest stacks (site_record::peak_bytes and peak_allocs) with up to `depth` frames
/// each. Says so in one line when `s` kept no peak (snapshot::peak_kept). Allocates.
inline std::string format_peak_sites(const snapshot& s, std::size_t top = 10, std::size_t depth = 12) {
    using namespace detail;
    guard quiet;
    if (!s.peak_kept) {
        return "memlens: no copy of the live table was kept at the peak (sites mode with "
               "capture_peak or MEMLENS_CAPTURE_PEAK=1 keeps one)\n";
    }
    std::vector<std::uint32_t> held;
    std::uint64_t allocs = 0, bytes = 0;
    for (std::size_t i = 0; i < s.sites.size(); ++i) {
        const site_record& r = s.sites[i];
        if (r.peak_allocs == 0) continue;
        held.push_back(static_cast<std::uint32_t>(i));
        allocs += r.peak_allocs;
        bytes += r.peak_bytes;
    }
    // A total order: the same on every run.
    sort_numbers(held, {s.sites.data(), peak_bytes_before});
    const resolved_stacks resolved(s);
    std::string out;
    append_all(out, {"memlens: at the peak (", described(s.peak_current), " live, every domain), ",
                     digits(allocs), plural(allocs, " allocation, ", " allocations, "), described(bytes),
                     " recorded, from ", digits(held.size()), held.size() == 1 ? " site\n" : " sites\n"});
    const std::size_t shown = std::min(top, held.size());
    for (std::size_t i = 0; i < shown; ++i) {
        const site_record& r = s.sites[held[i]];
        const frame_range frames = resolved.frames(r.stack);
        append_all(out, {"  ", digits(r.peak_allocs), plural(r.peak_allocs, " allocation, ", " allocations, "),
                         described(r.peak_bytes), frames.empty() ? ", no stack recorded\n" : ", from:\n"});
        std::size_t f = 0;
        for (auto frame = frames.begin(); frame != frames.end() && f < depth; ++frame, ++f) {
            append_all(out, {"    #", number(f), " ", frame->describe(), "\n"});
        }
        if (frames.size() > depth) {
            const std::uint64_t more = frames.size() - depth;
            append_all(out, {"    ... ", number(more), plural(more, " more frame\n", " more frames\n")});
        }
    }
    if (shown < held.size()) append_all(out, {"  ... and ", digits(held.size() - shown), " more sites\n"});
    return out;
}

namespace detail {

// The root of back-reference chain `c` as the text report names it.
inline std::string root_text(const backref_chain& c) {
    if (c.root == "global") return "root: " + c.name;
    if (c.root == "stack") return concat({"root: the stack of thread ", number(c.thread), " at ", hex_address(c.address)});
    if (c.root == "registers") return concat({"root: a register of thread ", number(c.thread)});
    if (c.root == "tls") {
        return concat({"root: the static TLS or thread control block of thread ", number(c.thread), " at ",
                       hex_address(c.address)});
    }
    if (c.root == "none") return "nothing: no root and no other block points at it";
    return "... (followed no further)";
}

inline std::string leak_kinds_text(const snapshot& s, std::size_t top, std::size_t depth, bool with_reachable,
                                   const std::vector<int>& unstopped) {
    guard quiet;
    static const leak_kind order[] = {leak_kind::definitely_lost, leak_kind::indirectly_lost,
                                      leak_kind::possibly_lost, leak_kind::still_reachable};
    std::string out = "memlens: LEAK SUMMARY\n";
    for (const leak_kind k : order) {
        const kind_figures f = leak_kind_figures(s, k);
        const std::string name = leak_kind_name(k);
        append_all(out, {std::string(17 - name.size(), ' '), name, ": ", digits(f.bytes), " bytes in ",
                         digits(f.blocks), " blocks\n"});
    }
    for (const int tid : unstopped) {
        append_all(out, {"  thread ", number(static_cast<std::uint64_t>(tid)),
                         " did not stop (it blocks the signal): its stack was read while it ran, its "
                         "registers and TLS were not\n"});
    }
    for (const leak_kind k : order) {
        if (k == leak_kind::still_reachable && !with_reachable) continue;
        if (leak_kind_figures(s, k).blocks == 0) continue;
        const leak_report sites = leaks_of_kind(s, k);
        append_all(out, {leak_kind_name(k), ", by site:\n"});
        const std::size_t shown = std::min(top, sites.sites.size());
        for (std::size_t i = 0; i < shown; ++i) {
            const leak_site& site = sites.sites[i];
            append_all(out, {"  ", digits(site.bytes), " bytes in ", digits(site.count), " blocks in \"", site.domain,
                             site.traceback.empty() ? "\", no stack recorded\n" : "\", from:\n"});
            for (std::size_t f = 0; f < site.traceback.size() && f < depth; ++f) {
                append_all(out, {"    #", number(f), " ", site.traceback[f].describe(name_form::brief), "\n"});
            }
        }
        if (shown < sites.sites.size()) {
            append_all(out, {"  ... and ", digits(sites.sites.size() - shown), " more stacks\n"});
        }
        for (const leak_site& site : sites.suppressed) {
            append_all(out, {"  suppressed: ", digits(site.bytes), " bytes in ", digits(site.count), " blocks by ",
                             site.suppressed_by, "\n"});
        }
    }
    if (!s.backref_chains.empty()) {
        const resolved_stacks resolved(s);
        out += "what keeps the largest still-reachable sites alive:\n";
        std::size_t link = 0;
        for (std::uint32_t c = 0; c < s.backref_chains.size(); ++c) {
            bool first = true;
            for (; link < s.backref_links.size() && s.backref_links[link].chain == c; ++link) {
                const backref_link& l = s.backref_links[link];
                const frame_info* site = l.stack ? resolved.site(l.stack) : nullptr;
                append_all(out, {first ? "  block " : concat({"    <- at offset ", number(l.offset), " of block "}),
                                 hex_address(l.address), " (", digits(l.size), " bytes, ", leak_kind_name(l.kind),
                                 "), from ", site ? site->describe(name_form::brief) : std::string("(no stack)"),
                                 "\n"});
                first = false;
            }
            append_all(out, {"    <- ", root_text(s.backref_chains[c]), "\n"});
        }
    }
    return out;
}

}  // namespace detail

/// The leak kinds of a classified snapshot (see set_leak_kinds) as memcheck prints them: the
/// LEAK SUMMARY (bytes and blocks of each kind), the `top` largest sites of each lost kind with
/// up to `depth` frames (still reachable too with `with_reachable`) and the blocks of each that
/// a suppression rule matched, then the back-reference chains the snapshot carries. Allocates.
inline std::string format_leak_kinds(const snapshot& s, std::size_t top = 10, std::size_t depth = 12,
                                     bool with_reachable = false) {
    return detail::leak_kinds_text(s, top, depth, with_reachable, {});
}

/// Writes format_summary(s, options) to `f`, in colour exactly when `f` is a terminal and
/// NO_COLOR is unset or empty. Returns whether the whole text was written.
inline bool print_summary(std::FILE* f, const snapshot& s, summary_options options = {}) {
    options.colour = detail::text_colour_for(f);
    return std::fputs(format_summary(s, options).c_str(), f) != EOF;
}

/// Writes format_site_table(s, options) to `f`, in colour exactly when `f` is a terminal and
/// NO_COLOR is unset or empty. Returns whether the whole text was written.
inline bool print_site_table(std::FILE* f, const snapshot& s, table_options options = {}) {
    options.colour = detail::text_colour_for(f);
    return std::fputs(format_site_table(s, options).c_str(), f) != EOF;
}

/// Writes format_tree(s, options) to `f`, in colour exactly when `f` is a terminal and
/// NO_COLOR is unset or empty. Returns whether the whole text was written.
inline bool print_tree(std::FILE* f, const snapshot& s, tree_options options = {}) {
    options.colour = detail::text_colour_for(f);
    return std::fputs(format_tree(s, options).c_str(), f) != EOF;
}

MEMLENS_NAMESPACE_END
