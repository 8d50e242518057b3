// memlens/core/site_table.hpp: per-site totals (allocations, bytes, temporaries, and the blocks
// alive whose header names the site) indexed by interned stack id, in lanes so that threads
// recording one stack do not share a cache line.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../detail/sys.hpp"
#include "state.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Everything ever recorded at one stack, alive or not, as one lane counts it. Sampled
// allocations add their weights.
struct site_totals {
    std::atomic<std::uint64_t> allocs{0};
    std::atomic<std::uint64_t> bytes{0};
    // Freed by the allocating thread before `temporary_window` further allocations of its own.
    std::atomic<std::uint64_t> temporaries{0};
    // Blocks whose heap header names this site (sites mode without per-block records), less
    // those freed, and their bytes. A lane counts the allocations and frees of its own threads,
    // so one lane alone may wrap below zero; the sum over the lanes is exact.
    std::atomic<std::uint64_t> live_allocs{0};
    std::atomic<std::uint64_t> live_bytes{0};
    // The domain of the blocks whose headers name this site, when it is not "heap" (0 then): a
    // stack ends in one call to one allocation function, so one domain per site.
    std::atomic<std::uint32_t> domain{0};
};

constexpr std::uint32_t stack_id_bits = 24;
constexpr std::uint32_t site_chunk_bits = 14;
constexpr std::uint32_t site_chunk_count = 1u << (stack_id_bits - site_chunk_bits);
// Threads add to one of several lanes, by their record's number, so that two threads recording
// the same stack do not fight over one cache line; a read adds the lanes up.
constexpr std::uint32_t site_lane_count = 4;

struct site_chunk {
    site_totals lanes[site_lane_count][std::size_t{1} << site_chunk_bits];
};

struct site_directory {
    std::atomic<site_chunk*> chunks[site_chunk_count] = {};
    spin_lock lock;
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline site_directory site_table{};

inline bool valid_stack_id(std::uint32_t stack) noexcept {
    return stack != 0 && stack < (1u << stack_id_bits);
}

inline site_totals* find_site(std::uint32_t stack, std::uint32_t lane) noexcept {
    if (!valid_stack_id(stack)) return nullptr;
    site_chunk* chunk = site_table.chunks[stack >> site_chunk_bits].load(std::memory_order_acquire);
    if (!chunk) return nullptr;
    return &chunk->lanes[lane % site_lane_count][stack & ((1u << site_chunk_bits) - 1)];
}

inline site_totals* site_for(std::uint32_t stack, std::uint32_t lane) noexcept {
    if (site_totals* s = find_site(stack, lane)) return s;
    if (!valid_stack_id(stack)) return nullptr;
    lock_guard hold(site_table.lock);
    std::atomic<site_chunk*>& slot = site_table.chunks[stack >> site_chunk_bits];
    if (!slot.load(relaxed)) {
        // Zeroed pages are valid site_totals: all counters start at zero. The kernel backs
        // only the pages that sites are counted in.
        void* raw = map_pages(sizeof(site_chunk));
        if (!raw) return nullptr;
        slot.store(static_cast<site_chunk*>(raw), std::memory_order_release);
    }
    return find_site(stack, lane);
}

// Bytes mapped for site chunks; the kernel backs only the pages that sites were counted in.
inline std::size_t site_table_bytes() noexcept {
    std::size_t chunks = 0;
    for (const std::atomic<site_chunk*>& c : site_table.chunks) chunks += c.load(relaxed) != nullptr;
    return chunks * sizeof(site_chunk);
}

struct site_sum {
    std::uint64_t allocs = 0;
    std::uint64_t bytes = 0;
    std::uint64_t temporaries = 0;
    std::uint64_t live_allocs = 0;
    std::uint64_t live_bytes = 0;
    std::uint32_t domain = 0;
};

inline site_sum read_site(std::uint32_t stack) noexcept {
    site_sum out;
    for (std::uint32_t lane = 0; lane < site_lane_count; ++lane) {
        const site_totals* t = find_site(stack, lane);
        if (!t) break;
        out.allocs += t->allocs.load(relaxed);
        out.bytes += t->bytes.load(relaxed);
        out.temporaries += t->temporaries.load(relaxed);
        out.live_allocs += t->live_allocs.load(relaxed);
        out.live_bytes += t->live_bytes.load(relaxed);
        if (const std::uint32_t d = t->domain.load(relaxed)) out.domain = d;
    }
    return out;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
