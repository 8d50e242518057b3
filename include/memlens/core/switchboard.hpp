// memlens/core/switchboard.hpp: the one word every event reads to learn which observers are on,
// and what a heap block's header remembers about its own event.
#pragma once

#include <atomic>
#include <cstdint>

#include "../detail/abi.hpp"
#include "settings.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Read by every event: zero means "count, nothing else", the common case.
constexpr std::uint32_t sw_unstarted = 1u << 0;  // the environment has not been read yet
constexpr std::uint32_t sw_heap_off = 1u << 1;    // mode off: the global hooks count nothing
constexpr std::uint32_t sw_recording = 1u << 2;   // every allocation goes into the live table
constexpr std::uint32_t sw_sites = 1u << 6;       // heap blocks carry their site in their header
constexpr std::uint32_t sw_sampling = 1u << 3;    // allocations are sampled by bytes
constexpr std::uint32_t sw_lookups = 1u << 4;     // the table may hold blocks without a header
constexpr std::uint32_t sw_refused = 1u << 5;     // another layout owns the program: count nothing

MEMLENS_DETAIL_SHARED inline std::atomic<std::uint32_t> switchboard{sw_unstarted};
// Leak checks and snapshots that need every allocation recorded while they run.
MEMLENS_DETAIL_SHARED inline std::atomic<int> recorders{0};
MEMLENS_DETAIL_SHARED inline std::atomic<bool> table_has_headerless{false};
// Under settings_lock: units built with other layout options started first; see claim_layout.
MEMLENS_DETAIL_SHARED inline bool layout_refused = false;

// What a block of the global hooks remembers in its header; see sources/heap.hpp.
constexpr std::uint32_t block_counted = 1u;
constexpr std::uint32_t block_recorded = 2u;  // in the live table
constexpr std::uint32_t block_sited = 4u;     // its header names its site

// Whether sites mode needs a record of every block rather than a site in each header: a
// thread remembers only its newest recent_block_count blocks for telling temporaries.
inline bool blocks_needed(const live_settings& s) noexcept {
    return s.blocks || s.temporary_window.load(std::memory_order_relaxed) > recent_block_count;
}

// Called under settings_lock whenever an input changes.
inline void update_switchboard() noexcept {
    std::uint32_t sw = live_started ? 0 : sw_unstarted;
    const live_mode mode = settings.mode;
    if (mode == live_mode::off) sw |= sw_heap_off;
    if (recorders.load(std::memory_order_acquire) > 0 ||
        (mode == live_mode::sites && blocks_needed(settings))) {
        sw |= sw_recording;
    } else if (mode == live_mode::sites) {
        sw |= sw_sites;
    } else if (mode == live_mode::sampled) {
        sw |= sw_sampling;
    }
    if (table_has_headerless.load(std::memory_order_acquire)) sw |= sw_lookups;
    if (layout_refused) sw |= sw_refused;
    switchboard.store(sw, std::memory_order_release);
}

}  // namespace detail
MEMLENS_NAMESPACE_END
