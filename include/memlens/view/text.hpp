// memlens/view/text.hpp: a snapshot as text for a terminal: a summary (totals, top sites,
// domains, named scopes, counted types), a table of functions by own or total bytes, and a call
// tree. Pure functions of the snapshot; colour only when asked for, or when printing to a terminal.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "../detail/format.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What format_summary() shows.
struct summary_options {
    /// The largest sites listed, by live bytes.
    std::size_t top_sites = 5;
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
    site_order order = site_order::own_bytes;
    /// Rows below this many bytes in the sorted figure (own bytes when sorted by count) are left out.
    std::uint64_t min_bytes = 0;
    /// Rows below this share (0 to 1) of the snapshot's live bytes in that figure are left out.
    double min_share = 0;
    /// At most this many rows; 0 for all.
    std::size_t limit = 20;
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
    /// ANSI bold headings and dim connectors; print_tree() decides this itself.
    bool colour = false;
};

namespace detail {

inline std::string text_signed_bytes(std::int64_t bytes) {
    if (bytes < 0) return "-" + compact_bytes(static_cast<std::uint64_t>(-(bytes + 1)) + 1);
    return "+" + compact_bytes(static_cast<std::uint64_t>(bytes));
}

inline std::string text_share(double part, double whole) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
    return buffer;
}

// Sampled figures are estimates, and say so in every cell.
inline std::string text_about(bool estimated, const std::string& figure) {
    return estimated ? "~" + figure : figure;
}

inline std::string text_bold(bool colour, const std::string& text) {
    return colour ? "\x1b[1m" + text + "\x1b[0m" : text;
}

inline std::string text_dim(bool colour, const std::string& text) {
    return colour ? "\x1b[2m" + text + "\x1b[0m" : text;
}

// Colour for a terminal only, and never when NO_COLOR is set to anything (no-color.org).
inline bool text_colour_for(std::FILE* f) {
    const char* no_colour = std::getenv("NO_COLOR");
    if (no_colour && *no_colour) return false;
    return ::isatty(::fileno(f)) == 1;
}

// A frame's function without return type and parameters, which the terminal has no room for:
// overloads share a row or a branch, as memray's views merge them.
inline std::string text_frame_name(const frame_info& f) {
    return f.function.empty() ? f.describe() : qualified_name(f.function);
}

inline std::string text_location(const frame_info& f) {
    if (f.file.empty()) return {};
    return f.line != 0 ? f.file + ":" + std::to_string(f.line) : f.file;
}

// Live bytes and allocations per stack: views look up each stack's frames once, not once per
// allocation.
struct text_weight {
    double bytes = 0;
    double count = 0;
    bool estimated = false;
};

inline std::map<std::uint32_t, text_weight> text_weights_by_stack(const snapshot& s) {
    std::map<std::uint32_t, text_weight> out;
    for (const live_allocation& a : s.allocations) {
        text_weight& w = out[a.stack];
        const double weight = s.weight(a);
        w.bytes += weight * static_cast<double>(a.size);
        w.count += weight;
        w.estimated = w.estimated || a.sampled;
    }
    return out;
}

struct text_row {
    std::string name;
    text_weight own;
    text_weight total;
    std::string location;  // shared by every frame of this function seen, as far as they agree
    bool location_set = false;
};

inline void text_merge_location(text_row& row, const frame_info& f) {
    const std::string where = text_location(f);
    if (!row.location_set) {
        row.location = where;
        row.location_set = true;
    } else if (row.location != where) {
        const bool same_file = !f.file.empty() && (row.location == f.file ||
                                                   starts_with(row.location, (f.file + ":").c_str()));
        row.location = same_file ? f.file : std::string();
    }
}

inline void text_add(text_weight& to, const text_weight& w) {
    to.bytes += w.bytes;
    to.count += w.count;
    to.estimated = to.estimated || w.estimated;
}

struct text_node {
    std::string name;
    text_weight weight;
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
    auto figures = [&](const text_weight& w) {
        const std::uint64_t count = rounded(w.count);
        return text_about(w.estimated, compact_bytes(rounded(w.bytes))) + "  " +
               text_share(w.bytes, root_bytes) + "  " +
               text_about(w.estimated, group_digits(count)) +
               (count == 1 ? " allocation" : " allocations");
    };
    if (depth >= o.max_depth) {
        if (!node.children.empty()) {
            out += text_dim(o.colour, prefix + last_branch) + "... deeper frames not shown\n";
        }
        return;
    }
    std::vector<const text_node*> shown;
    text_weight folded;
    std::size_t folded_count = 0;
    for (const text_node& c : node.children) {
        if (c.weight.bytes < o.min_share * root_bytes) {
            text_add(folded, c.weight);
            ++folded_count;
        } else {
            shown.push_back(&c);
        }
    }
    std::stable_sort(shown.begin(), shown.end(), [](const text_node* a, const text_node* b) {
        if (a->weight.bytes != b->weight.bytes) return a->weight.bytes > b->weight.bytes;
        if (a->weight.count != b->weight.count) return a->weight.count > b->weight.count;
        return a->name < b->name;
    });
    for (std::size_t i = 0; i < shown.size(); ++i) {
        const bool last = i + 1 == shown.size() && folded_count == 0;
        out += text_dim(o.colour, prefix + (last ? last_branch : branch)) + figures(shown[i]->weight) +
               "  " + shown[i]->name + "\n";
        text_tree_lines(*shown[i], prefix + (last ? "    " : through), depth + 1, root_bytes, o, out);
    }
    if (folded_count != 0) {
        out += text_dim(o.colour, prefix + last_branch) + group_digits(folded_count) +
               (folded_count == 1 ? " smaller branch: " : " smaller branches: ") + figures(folded) +
               "\n";
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
    auto section = [&](const std::string& title) {
        if (!out.empty()) out += "\n";
        out += text_bold(colour, title) + "\n";
    };
    const memory_stats& t = s.totals;
    if (t.allocs != 0 || t.current != 0 || t.total != 0) {
        section("Totals (every domain)");
        out += "  current " + compact_bytes(t.current) + ", peak " + compact_bytes(t.peak) + ", total " +
               compact_bytes(t.total) + " in " + group_digits(t.allocs) +
               (t.allocs == 1 ? " allocation, " : " allocations, ") + group_digits(t.frees) +
               (t.frees == 1 ? " free\n" : " frees\n");
    }
    if (!s.allocations.empty()) {
        const bool estimated = s.estimated();
        double bytes = 0, count = 0;
        for (const live_allocation& a : s.allocations) {
            const double w = s.weight(a);
            bytes += w * static_cast<double>(a.size);
            count += w;
        }
        const char* about = estimated ? "about " : "";
        section("Live allocations in this snapshot");
        out += "  " + std::string(about) + group_digits(rounded(count)) +
               (rounded(count) == 1 ? " allocation, " : " allocations, ") + about +
               compact_bytes(rounded(bytes)) + (estimated ? " (estimated from sampling)" : "") + "\n";
        const std::vector<statistic> sites = statistics(s, group_by::site);
        if (options.top_sites != 0 && !sites.empty()) {
            section("Top sites by live bytes");
            std::vector<std::string> cells;
            for (std::size_t i = 0; i < sites.size() && i < options.top_sites; ++i) {
                const statistic& st = sites[i];
                std::string site = st.key;
                if (!st.traceback.empty()) {
                    const frame_info& f = st.traceback.front();
                    site = text_frame_name(f);
                    if (!f.file.empty()) site += " at " + text_location(f);
                }
                cells.insert(cells.end(), {text_about(st.estimated, compact_bytes(st.bytes)),
                                           text_share(static_cast<double>(st.bytes), bytes),
                                           text_about(st.estimated, group_digits(st.count)), site});
            }
            out += format_table({{"bytes", true}, {"share", true}, {"allocations", true}, {"site"}},
                                cells, "  ", colour);
            if (sites.size() > options.top_sites) {
                out += "  ... " + group_digits(sites.size() - options.top_sites) + " more sites\n";
            }
        }
    }
    std::vector<std::string> cells;
    for (const domain_figures& d : s.domains) {
        const memory_stats& f = d.figures;
        if (f.allocs == 0 && f.current == 0 && f.total == 0) continue;
        cells.insert(cells.end(), {d.name, compact_bytes(f.current), compact_bytes(f.peak),
                                   compact_bytes(f.total), group_digits(f.allocs), group_digits(f.frees)});
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
        if (!site.empty() && n.line != 0) site += ":" + std::to_string(n.line);
        cells.insert(cells.end(), {n.name, group_digits(n.calls), compact_bytes(n.allocated),
                                   group_digits(n.allocs), compact_bytes(n.max_peak),
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
        cells.insert(cells.end(), {ty.name, group_digits(ty.instances), compact_bytes(ty.bytes),
                                   group_digits(ty.peak)});
    }
    if (!cells.empty()) {
        section("Counted types");
        out += format_table({{"type"}, {"instances", true}, {"bytes", true}, {"peak", true}}, cells,
                            "  ", colour);
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
    std::unordered_map<std::string, text_row> by_name;
    text_weight all;
    for (const auto& [stack, w] : text_weights_by_stack(s)) {
        text_add(all, w);
        const frame_range frames = resolved.frames(stack);
        if (frames.empty()) {
            text_row& row = by_name["(no stack)"];
            row.name = "(no stack)";
            text_add(row.own, w);
            text_add(row.total, w);
            continue;
        }
        const frame_info* site = resolved.site(stack);
        std::vector<std::string> seen;
        for (const frame_info& f : frames) {
            std::string name = text_frame_name(f);
            text_row& row = by_name[name];
            row.name = name;
            text_merge_location(row, f);
            if (&f == site) text_add(row.own, w);
            if (std::find(seen.begin(), seen.end(), name) == seen.end()) {
                text_add(row.total, w);
                seen.push_back(std::move(name));
            }
        }
    }
    auto figure = [&](const text_row& r) {
        return options.order == site_order::total_bytes ? r.total.bytes : r.own.bytes;
    };
    std::vector<const text_row*> rows;
    for (const auto& entry : by_name) {
        const text_row& r = entry.second;
        const double key = options.order == site_order::count ? r.own.count : figure(r);
        if (key <= 0 || figure(r) < static_cast<double>(options.min_bytes) ||
            figure(r) < options.min_share * all.bytes) {
            continue;
        }
        rows.push_back(&r);
    }
    std::sort(rows.begin(), rows.end(), [&](const text_row* a, const text_row* b) {
        if (options.order == site_order::count && a->own.count != b->own.count) {
            return a->own.count > b->own.count;
        }
        if (figure(*a) != figure(*b)) return figure(*a) > figure(*b);
        if (a->total.bytes != b->total.bytes) return a->total.bytes > b->total.bytes;
        return a->name < b->name;
    });
    const std::size_t total_rows = rows.size();
    if (options.limit != 0 && rows.size() > options.limit) rows.resize(options.limit);
    const char* order = options.order == site_order::own_bytes     ? "own bytes"
                        : options.order == site_order::total_bytes ? "total bytes"
                                                                   : "allocations";
    const std::uint64_t count = rounded(all.count);
    std::string out = text_bold(options.colour, "Live allocations by function, by " + std::string(order)) +
                      ": " + text_about(all.estimated, group_digits(count)) +
                      (count == 1 ? " allocation, " : " allocations, ") +
                      text_about(all.estimated, compact_bytes(rounded(all.bytes))) + "; " +
                      group_digits(rows.size()) + " of " + group_digits(by_name.size()) +
                      " functions shown";
    if (total_rows > rows.size()) out += " (row limit " + group_digits(options.limit) + ")";
    out += all.estimated ? "; ~ marks estimates from sampling\n" : "\n";
    std::vector<std::string> cells;
    for (const text_row* r : rows) {
        cells.insert(cells.end(), {text_about(r->own.estimated, compact_bytes(rounded(r->own.bytes))),
                                   text_share(r->own.bytes, all.bytes),
                                   text_about(r->total.estimated, compact_bytes(rounded(r->total.bytes))),
                                   text_share(r->total.bytes, all.bytes),
                                   text_about(r->own.estimated, group_digits(rounded(r->own.count))),
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
    for (const auto& [stack, w] : text_weights_by_stack(s)) {
        text_add(root.weight, w);
        const frame_range frames = resolved.frames(stack);
        text_node* at = &root;
        if (frames.empty()) {
            at = &text_child(*at, "(no stack)");
            text_add(at->weight, w);
        }
        for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
            at = &text_child(*at, text_frame_name(*f));
            text_add(at->weight, w);
        }
    }
    const std::uint64_t count = rounded(root.weight.count);
    std::string out =
        text_bold(options.colour,
                  "Live allocations by call path: " + text_about(root.weight.estimated, group_digits(count)) +
                      (count == 1 ? " allocation, " : " allocations, ") +
                      text_about(root.weight.estimated, compact_bytes(rounded(root.weight.bytes)))) +
        "\n";
    text_tree_lines(root, "", 0, root.weight.bytes, options, out);
    return out;
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
