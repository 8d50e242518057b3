// memlens/helpers/footprint.hpp: the real heap cost of a value, deep (every block it holds once
// built, as requested and as the allocator really gave it), and a table comparing candidates.
//
// What it sees: everything the calling thread allocates while the value is built, through the
// global operator new hooks (sources/new.hpp must be linked into the program, or only what
// tracking sources count is seen) and through tracking sources. Slack, the usable bytes the
// allocator gave beyond those requested, is measured with glibc's malloc_usable_size on each
// block the hooks handed out that the value holds, found in the live table.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#define MEMLENS_DETAIL_USABLE_SIZE() 1
#else
#define MEMLENS_DETAIL_USABLE_SIZE() 0
#endif

#include "../detail/format.hpp"
#include "../observe/scope.hpp"
#include "../observe/sites.hpp"
#include "../sources/heap.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What a value costs once built. Sizes are requested sizes unless said otherwise.
struct footprint {
    std::size_t object_bytes = 0;  ///< sizeof the value itself
    std::size_t heap_bytes = 0;    ///< bytes the value holds on the heap: allocated less freed
    std::uint64_t allocations = 0; ///< blocks it holds: allocations less frees
    /// Usable bytes the allocator gave beyond the requested ones, over the blocks it holds that
    /// the global operator new hooks handed out (their own 16-byte header is not counted).
    std::size_t slack_bytes = 0;
    std::uint64_t slack_blocks = 0; ///< how many of `allocations` slack_bytes covers
    block_usage build;              ///< everything building it did, temporaries and peak included

    /// object_bytes + heap_bytes: the deep size.
    std::size_t bytes() const noexcept { return object_bytes + heap_bytes; }
};

/// A value together with its footprint, as measure_footprint returns them.
template <class R>
struct measured_footprint {
    R value;           ///< the value built
    footprint figures; ///< what it holds and what building it cost
};

namespace detail {

// The usable bytes of a block of `requested` bytes at p, past the hooks' header; 0 where the C
// library cannot tell. Only for blocks of the "heap" domain, which the hooks handed out.
inline std::size_t usable_bytes(const void* p, std::size_t requested) noexcept {
#if MEMLENS_DETAIL_USABLE_SIZE()
    // Hidden from the optimizer, which would otherwise warn that the header lies before the
    // array it saw allocated.
    __asm__("" : "+r"(p));
    const heap_header h = read_header(p);
    if (!header_valid(h) || header_size(h) != requested) return 0;
    const std::size_t offset = header_offset(h);
    const void* base = static_cast<const unsigned char*>(p) - offset;
    return ::malloc_usable_size(const_cast<void*>(base)) - offset;
#else
    (void)p;
    (void)requested;
    return 0;
#endif
}

struct slack_sum {
    std::size_t bytes = 0;
    std::uint64_t blocks = 0;
};

// The slack of every block the hooks handed out among `held`, block by block.
inline slack_sum slack_of(const snapshot& held) noexcept {
    slack_sum out;
    for (const live_allocation& a : held.allocations) {
        if (a.domain != heap_slot) continue;
        const std::size_t usable = usable_bytes(reinterpret_cast<const void*>(a.address),
                                                static_cast<std::size_t>(a.size));
        if (usable == 0) continue;
        out.bytes += usable > a.size ? usable - static_cast<std::size_t>(a.size) : 0;
        ++out.blocks;
    }
    return out;
}

inline std::string pad(const std::string& text, std::size_t width, bool right) {
    const std::string fill(width > text.size() ? width - text.size() : 0, ' ');
    return right ? fill + text : text + fill;
}

inline footprint make_footprint(const block_usage& u, const slack_sum& slack,
                                std::size_t object_bytes) noexcept {
    footprint f;
    f.object_bytes = object_bytes;
    f.heap_bytes = u.net > 0 ? static_cast<std::size_t>(u.net) : 0;
    f.allocations = u.allocs > u.frees ? u.allocs - u.frees : 0;
    f.slack_bytes = slack.bytes;
    f.slack_blocks = slack.blocks;
    f.build = u;
    return f;
}

}  // namespace detail

/// Runs `build` in a thread scope and returns the value it built with its footprint: what the
/// value holds once built (allocated less freed while it was built), the slack of those blocks,
/// and the whole build's usage. The build runs under a leak_check, so that the blocks the value
/// holds are known one by one; that costs what sites mode costs, while it runs. Exceptions from
/// `build` propagate. Allocates only what `build` does.
template <class F>
auto measure_footprint(F&& build) -> measured_footprint<std::invoke_result_t<F&&>> {
    using result = std::invoke_result_t<F&&>;
    static_assert(!std::is_void_v<result> && !std::is_reference_v<result>,
                  "measure_footprint needs a callable that returns the value it built");
    const leak_check held;
    scope block;
    measured_footprint<result> out{std::forward<F>(build)(), footprint{}};
    const block_usage usage = block.usage();
    out.figures = detail::make_footprint(usage, detail::slack_of(held.leaked()), sizeof(result));
    return out;
}

/// A named way of building a value, for compare_footprints; see candidate().
template <class F>
struct footprint_candidate {
    const char* name;  ///< the row's name; must outlive compare_footprints
    F build;           ///< called with no arguments; returns the value to measure
};

/// Names a callable that builds one candidate value.
template <class F>
footprint_candidate<std::decay_t<F>> candidate(const char* name, F&& build) {
    return {name, std::forward<F>(build)};
}

/// One candidate's measured footprint, as compare_footprints lists it.
struct footprint_row {
    std::string name;   ///< the candidate's name
    footprint figures;  ///< its measured footprint
};

/// Builds each candidate in turn, measures it with measure_footprint and destroys it before
/// the next one is built, so that they do not share memory. Returns the rows in the order
/// given; the rows are allocated outside the caller's scopes.
template <class... F>
std::vector<footprint_row> compare_footprints(footprint_candidate<F>... candidates) {
    std::vector<footprint_row> rows;
    {
        detail::guard quiet;
        rows.reserve(sizeof...(F));
    }
    const auto run = [&rows](auto& c) {
        auto measured = measure_footprint(c.build);
        // The value is dropped unread: without this, a compiler may leave out its allocations.
        asm volatile("" : : "r"(&measured.value) : "memory");
        const footprint figures = measured.figures;
        detail::guard quiet;
        rows.push_back({c.name, figures});
    };
    (run(candidates), ...);
    return rows;
}

/// The rows as a text table: name, bytes (deep), bytes per element, allocations held, slack
/// (with how many blocks it covers when not all), and the ratio of bytes to the smallest.
/// Allocates the text outside the caller's scopes.
inline std::string format_footprints(const std::vector<footprint_row>& rows, std::size_t elements) {
    using namespace detail;
    guard quiet;
    std::size_t smallest = 0;
    for (const footprint_row& r : rows) {
        if (smallest == 0 || r.figures.bytes() < smallest) smallest = r.figures.bytes();
    }
    const auto fixed = [](double value, const char* suffix) {
        char text[48];
        std::snprintf(text, sizeof text, "%.2f%s", value, suffix);
        return std::string(text);
    };
    struct cells {
        std::string name, bytes, per, allocs, slack, ratio;
    };
    std::vector<cells> table{{"candidate", "bytes", "per element", "allocations", "slack", "ratio"}};
    for (const footprint_row& r : rows) {
        const footprint& f = r.figures;
        std::string slack = group_digits(f.slack_bytes);
        if (f.slack_blocks < f.allocations) {
            slack += " (" + group_digits(f.slack_blocks) + " of " + group_digits(f.allocations) +
                     detail::plural(f.allocations, " block)", " blocks)");
        }
        table.push_back(
            {r.name, group_digits(f.bytes()),
             elements ? fixed(static_cast<double>(f.bytes()) / static_cast<double>(elements), "")
                      : "-",
             group_digits(f.allocations), slack,
             smallest ? fixed(static_cast<double>(f.bytes()) / static_cast<double>(smallest), "x")
                      : "-"});
    }
    std::size_t w[6] = {};
    for (const cells& c : table) {
        const std::string* col[6] = {&c.name, &c.bytes, &c.per, &c.allocs, &c.slack, &c.ratio};
        for (int i = 0; i < 6; ++i) w[i] = std::max(w[i], col[i]->size());
    }
    std::string out;
    for (const cells& c : table) {
        out += pad(c.name, w[0], false) + "  " + pad(c.bytes, w[1], true) + "  " +
               pad(c.per, w[2], true) + "  " + pad(c.allocs, w[3], true) + "  " +
               pad(c.slack, w[4], true) + "  " + pad(c.ratio, w[5], true) + "\n";
    }
    return out;
}

MEMLENS_NAMESPACE_END
