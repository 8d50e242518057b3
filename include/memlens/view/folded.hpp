// memlens/view/folded.hpp: folded stacks ("outer;inner;site value" per line), the input of
// flamegraph.pl, inferno and speedscope, from a snapshot's live allocations, its site totals, or
// what its sites held at the peak.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What a folded stack's value counts.
enum class folded_weight {
    bytes,  ///< bytes
    count,  ///< allocations
};

/// Which allocations the folded stacks cover.
enum class folded_source {
    /// The snapshot's live allocations: the peak's stacks for a snapshot taken at the peak, the
    /// leaks' for leak_check::leaked(). Sampled allocations count by their weight.
    live,
    /// Everything ever recorded at each stack up to the snapshot, freed or not (snapshot::sites).
    allocated,
    /// What each stack held at the process's highest peak (site_record::peak_allocs and
    /// peak_bytes); nothing when the snapshot kept no peak (snapshot::peak_kept).
    peak,
    /// Temporary allocations per stack (site_record::temporaries). Their bytes are not kept,
    /// so the value counts allocations whatever folded_options::weight says.
    temporaries,
};

/// What folded_stacks() writes.
struct folded_options {
    /// Live allocations, everything ever allocated, the peak's or the temporaries at each stack.
    folded_source source = folded_source::live;
    /// What each line's value counts.
    folded_weight weight = folded_weight::bytes;
};

namespace detail {

// A frame name that the folded format cannot misread: ';' separates frames and a line is one
// stack, so neither may appear inside a name.
inline std::string folded_frame_name(const frame_info& f) {
    std::string name = frame_name(f);
    for (char& c : name) {
        if (c == ';') c = ':';
        else if (c == '\n' || c == '\r') c = ' ';
    }
    return name;
}

inline bool path_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const std::string* const paths = static_cast<const std::string*>(rows);
    return paths[a] < paths[b];
}

inline std::string folded_path(const resolved_stacks& resolved, std::uint32_t stack) {
    const frame_range frames = resolved.frames(stack);
    if (frames.empty()) return "(no stack)";
    std::string path;
    for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
        if (!path.empty()) path += ';';
        path += folded_frame_name(*f);
    }
    return path;
}

}  // namespace detail

/// Folded stacks of `s`, outermost frame first, one line per distinct stack with a non-zero
/// value, sorted by stack; stacks whose frames have the same names are merged. memlens's own
/// frames are left out. Allocations without a stack fold into "(no stack)". Allocates.
inline std::string folded_stacks(const snapshot& s, const folded_options& options = {}) {
    detail::guard quiet;
    const detail::resolved_stacks resolved(s);
    const bool bytes = options.weight == folded_weight::bytes;
    detail::string_index index;
    std::vector<std::string> paths;
    std::vector<detail::live_sum> values;  // the value in `bytes`, whatever it counts
    auto add = [&](std::uint32_t stack, double value) {
        std::string path = detail::folded_path(resolved, stack);
        const auto [row, added] = index.insert(path);
        if (added) {
            paths.push_back(std::move(path));
            values.emplace_back();
        }
        values[row].bytes += value;
    };
    if (options.source == folded_source::live) {
        for (const live_allocation& a : s.allocations) {
            add(a.stack, bytes ? s.bytes(a) : s.weight(a));
        }
    } else {
        for (const site_record& site : s.sites) {
            std::uint64_t value = 0;
            switch (options.source) {
            case folded_source::allocated: value = bytes ? site.bytes : site.allocs; break;
            case folded_source::peak: value = bytes ? site.peak_bytes : site.peak_allocs; break;
            case folded_source::temporaries: value = site.temporaries; break;
            case folded_source::live: break;
            }
            add(site.stack, static_cast<double>(value));
        }
    }
    std::string out;
    for (const std::uint32_t row : detail::sorted_rows(paths.size(), {paths.data(), detail::path_before})) {
        const std::uint64_t v = detail::rounded(values[row].bytes);
        if (v == 0) continue;
        out += paths[row];
        out += ' ';
        detail::append_number(out, v);
        out += '\n';
    }
    return out;
}

MEMLENS_NAMESPACE_END
