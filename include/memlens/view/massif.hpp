// memlens/view/massif.hpp: snapshots in the text format of valgrind's massif (massif.out.N), which
// ms_print and massif-visualizer read: memory over time from the timeline, and the heap trees of
// live bytes and of the peak, each from the allocation functions down to main.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../detail/files.hpp"
#include "../detail/format.hpp"
#include "../detail/index.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What massif_text() writes.
struct massif_options {
    /// A tree's entries below this percentage of their snapshot's bytes are summed into one
    /// "in N places, all below massif's threshold" line, as massif's --threshold (default 1.0).
    double threshold = 1.0;
    /// Frames shown below the allocation functions, as massif's --depth (default 30).
    std::size_t depth = 30;
};

namespace detail {

struct massif_node {
    std::uint32_t label = 0;  // index into massif_tree::labels_
    std::uint64_t bytes = 0;
    std::vector<std::uint32_t> children;  // indexes into massif_tree::nodes_
};

// ms_print drops everything after a '#' as a comment, and reads a line as one node: a name
// (a lambda's "{lambda()#1}") must keep neither.
inline std::string massif_clean(std::string text) {
    for (char& c : text) {
        if (c == '#') c = '_';
        else if (c == '\n' || c == '\r') c = ' ';
    }
    return text;
}

// As valgrind's tools name a code location: "0x4005E4: main (prog.c:20)",
// "0x4005E4: f (in /lib/x.so)", "0x4005E4: ???".
inline std::string valgrind_frame_label(const frame_info& f) {
    char address[2 + 2 * sizeof(std::uintptr_t) + 3];
    std::snprintf(address, sizeof address, "0x%" PRIXPTR ": ", f.address);
    std::string out = address;
    out += f.function.empty() ? std::string("???") : f.function;
    if (!f.file.empty()) {
        append_all(out, {" (", f.file});
        if (f.line != 0) append_all(out, {":", number(f.line)});
        out += ')';
    } else if (!f.module.empty()) {
        append_all(out, {" (in ", f.module, ")"});
    }
    return out;
}

inline std::string massif_label(const frame_info& f) { return massif_clean(valgrind_frame_label(f)); }

class massif_tree {
public:
    massif_tree() {
        labels_.push_back("(heap allocation functions) malloc/new/new[], --alloc-fns, etc.");
        labels_.push_back("(no stack)");
        nodes_.push_back({0, 0, {}});
    }

    // Adds `bytes` along a stack's frames, innermost first: massif's trees run from the
    // allocation functions out to main.
    void add(const frame_range& frames, std::uint64_t bytes, std::size_t depth) {
        std::uint32_t at = 0;
        nodes_[0].bytes += bytes;
        if (frames.empty()) {
            at = child(at, 1);
            nodes_[at].bytes += bytes;
            return;
        }
        std::size_t level = 0;
        for (const frame_info& f : frames) {
            if (level++ == depth) break;
            at = child(at, label(f));
            nodes_[at].bytes += bytes;
        }
    }

    std::uint64_t bytes() const noexcept { return nodes_[0].bytes; }

    void write(std::string& out, double threshold) const { write_node(out, 0, 0, threshold); }

private:
    // Each frame of the resolved stacks is one address's, so its label is made once.
    std::uint32_t label(const frame_info& f) {
        const auto [at, fresh] = label_of_frame_.emplace(&f, 0);
        if (fresh) {
            std::string text = massif_label(f);
            const auto [row, added] = label_rows_.insert(text);
            if (added) labels_.push_back(std::move(text));
            at->second = row + 2;
        }
        return at->second;
    }

    std::uint32_t child(std::uint32_t parent, std::uint32_t label_id) {
        const auto [row, added] = children_.insert((std::uint64_t{parent} << 32) | label_id);
        if (!added) return node_of_child_[row];
        const auto id = static_cast<std::uint32_t>(nodes_.size());
        nodes_.push_back({label_id, 0, {}});
        nodes_[parent].children.push_back(id);
        node_of_child_.push_back(id);
        return id;
    }

    void write_node(std::string& out, std::uint32_t id, std::size_t level, double threshold) const {
        const massif_node& n = nodes_[id];
        std::vector<std::uint32_t> shown;
        std::uint64_t below = 0;
        std::size_t below_count = 0;
        const double total = static_cast<double>(nodes_[0].bytes);
        for (const std::uint32_t c : n.children) {
            if (total > 0 && static_cast<double>(nodes_[c].bytes) * 100 < threshold * total) {
                below += nodes_[c].bytes;
                ++below_count;
            } else {
                shown.push_back(c);
            }
        }
        // Largest first, then by label: the order is total.
        std::sort(shown.begin(), shown.end(), [&](std::uint32_t a, std::uint32_t b) {
            return nodes_[a].bytes != nodes_[b].bytes ? nodes_[a].bytes > nodes_[b].bytes
                                                      : labels_[nodes_[a].label] < labels_[nodes_[b].label];
        });
        out.append(level, ' ');
        append_all(out, {"n", number(shown.size() + (below_count != 0 ? 1 : 0)), ": ", number(n.bytes), " ",
                         labels_[n.label], "\n"});
        for (const std::uint32_t c : shown) write_node(out, c, level + 1, threshold);
        if (below_count != 0) {
            char limit[32];
            std::snprintf(limit, sizeof limit, "%.2f%%", threshold);
            out.append(level + 1, ' ');
            append_all(out, {"n0: ", number(below), " in ", number(below_count),
                             below_count == 1 ? " place, below massif's threshold ("
                                              : " places, all below massif's threshold (",
                             limit, ")\n"});
        }
    }

    std::vector<massif_node> nodes_;
    std::vector<std::string> labels_;  // 0 the root's, 1 "(no stack)", then the frames'
    string_index label_rows_;          // the frames' labels, from 2 on
    std::unordered_map<const frame_info*, std::uint32_t> label_of_frame_;
    key_index children_;                        // (parent, label) pairs
    std::vector<std::uint32_t> node_of_child_;  // the node of each pair
};

// One massif snapshot: a point of memory over time, or a heap tree.
struct massif_entry {
    std::uint64_t time = 0;  // milliseconds
    std::uint64_t heap = 0;
    const snapshot* tree_of = nullptr;  // the snapshot whose tree this is; null for a point
    bool peak_tree = false;             // the tree of what was alive at the peak
    bool peak = false;                  // marked as the peak ("heap_tree=peak")
};

inline std::uint64_t massif_milliseconds(double seconds) {
    return seconds > 0 ? static_cast<std::uint64_t>(std::llround(seconds * 1000)) : 0;
}

inline massif_tree massif_tree_of(const snapshot& s, bool peak, std::size_t depth) {
    const resolved_stacks resolved(s);
    massif_tree tree;
    if (peak) {
        for (const site_record& site : s.sites) {
            if (site.peak_bytes != 0) tree.add(resolved.frames(site.stack), site.peak_bytes, depth);
        }
    } else {
        for (const live_sum& w : live_by_stack(s, false)) {
            const std::uint64_t bytes = rounded(w.bytes);
            if (bytes != 0) tree.add(resolved.frames(w.stack), bytes, depth);
        }
    }
    return tree;
}

inline std::string massif_document(const std::vector<massif_entry>& entries, const snapshot& first,
                                   const massif_options& options) {
    guard quiet;
    std::string out;
    append_all(out, {"desc: memlens", first.run.mode.empty() ? "" : ", ", first.run.mode,
                     first.run.mode.empty() ? "" : " mode", "\n", "cmd: ",
                     first.run.command_line.empty() ? std::string("(unknown)") : massif_clean(first.run.command_line),
                     "\ntime_unit: ms\n"});
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const massif_entry& e = entries[i];
        massif_tree tree;
        if (e.tree_of) tree = massif_tree_of(*e.tree_of, e.peak_tree, options.depth);
        append_all(out, {"#-----------\nsnapshot=", number(i), "\n#-----------\ntime=", number(e.time),
                         "\nmem_heap_B=", number(e.tree_of ? tree.bytes() : e.heap),
                         "\nmem_heap_extra_B=0\nmem_stacks_B=0\nheap_tree=",
                         !e.tree_of ? "empty" : e.peak ? "peak" : "detailed", "\n"});
        if (e.tree_of) tree.write(out, options.threshold);
    }
    return out;
}

}  // namespace detail

/// `s` as massif's output file: the snapshot's timeline points as snapshots without a tree
/// (their live bytes, every domain together), then, when the peak was kept
/// (snapshot::peak_kept), the tree of what each stack held at the peak, marked as massif's peak
/// and placed at the first point that had reached it; last the tree of the snapshot's live
/// allocations, at the last point's time. A tree's mem_heap_B is the bytes the tree holds; heap
/// extra and stacks are 0, which memlens does not measure. Times are in milliseconds
/// ("time_unit: ms"). memlens's own frames are left out; sampled allocations count by their
/// weight. Allocates.
inline std::string massif_text(const snapshot& s, const massif_options& options = {}) {
    std::vector<detail::massif_entry> entries;
    std::uint64_t highest = 0;
    for (const timeline_point& p : s.timeline) highest = std::max(highest, p.peak);
    bool peak_placed = !s.peak_kept;
    for (const timeline_point& p : s.timeline) {
        const std::uint64_t time = std::max(detail::massif_milliseconds(p.seconds),
                                            entries.empty() ? 0 : entries.back().time);
        if (!peak_placed && p.peak == highest) {
            entries.push_back({time, 0, &s, true, true});
            peak_placed = true;
        }
        entries.push_back({time, p.current, nullptr, false, false});
    }
    const std::uint64_t end = entries.empty() ? 0 : entries.back().time;
    if (!peak_placed) entries.push_back({end, 0, &s, true, true});
    entries.push_back({end, 0, &s, false, false});
    return detail::massif_document(entries, s, options);
}

/// `series` as massif's output file: each snapshot the tree of its live allocations, timed in
/// milliseconds since the first one was taken (run_info::unix_time_ms), the one holding the
/// most bytes marked as massif's peak (the first of equals). Each tree's mem_heap_B is the
/// bytes it holds. An empty series is a file with no snapshot. Allocates.
inline std::string massif_text(const std::vector<snapshot>& series, const massif_options& options = {}) {
    if (series.empty()) return detail::massif_document({}, snapshot{}, options);
    std::vector<detail::massif_entry> entries;
    std::size_t peak = 0;
    std::uint64_t most = 0;
    for (std::size_t i = 0; i < series.size(); ++i) {
        const std::int64_t since = series[i].run.unix_time_ms - series.front().run.unix_time_ms;
        const std::uint64_t time = std::max(since > 0 ? static_cast<std::uint64_t>(since) : std::uint64_t{0},
                                            entries.empty() ? 0 : entries.back().time);
        entries.push_back({time, 0, &series[i], false, false});
        double bytes = 0;
        for (const live_allocation& a : series[i].allocations) bytes += series[i].bytes(a);
        if (i == 0 || detail::rounded(bytes) > most) {
            most = detail::rounded(bytes);
            peak = i;
        }
    }
    entries[peak].peak = true;
    return detail::massif_document(entries, series.front(), options);
}

/// Writes massif_text(s, options) to `path` by the rule of detail/files.hpp (as write_report
/// does); throws std::runtime_error naming the path and the reason when it cannot be written.
/// Not one of write_report's formats: the exit report does not compile it.
inline void write_massif(const snapshot& s, const std::string& path, const massif_options& options = {}) {
    const std::string text = massif_text(s, options);
    std::string error;
    if (!detail::write_output_file(path, text, error)) throw std::runtime_error("memlens: " + error);
}

/// Writes massif_text(series, options) to `path`, as write_massif(const snapshot&, ...) does.
inline void write_massif(const std::vector<snapshot>& series, const std::string& path,
                         const massif_options& options = {}) {
    const std::string text = massif_text(series, options);
    std::string error;
    if (!detail::write_output_file(path, text, error)) throw std::runtime_error("memlens: " + error);
}

MEMLENS_NAMESPACE_END
