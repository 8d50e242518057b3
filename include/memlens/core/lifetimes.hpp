// memlens/core/lifetimes.hpp: block lifetimes per site in per-block mode (tracking_config::
// lifetimes): a clock of bytes allocated, and per stack the blocks' summed lifetimes, the most
// bytes alive at once, and what was alive at the highest peak of the timed blocks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../detail/sys.hpp"
#include "site_table.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// One stack's timed blocks. Plain fields: every change happens under lifetime_state::lock, so
// that a site's maximum and its figures at the global peak are exact under any threading.
struct lifetime_site {
    std::uint64_t allocs;
    std::uint64_t bytes;
    std::uint64_t live_blocks;
    std::uint64_t live_bytes;
    std::uint64_t max_bytes;   // the most bytes alive at once, first reached
    std::uint64_t max_blocks;  // the blocks alive then
    // What was alive at the last global peak this site has seen change after; see settle_peak.
    std::uint64_t peak_bytes;
    std::uint64_t peak_blocks;
    std::uint64_t last_event;  // the event that last changed this site
    // The clock at each block's birth, summed, and at each freed block's death: the lifetimes
    // are died + now * live_blocks - born, without a birth time per block. Unsigned sums may
    // wrap; the difference is right as long as the lifetimes fit in 64 bits.
    std::uint64_t born;
    std::uint64_t died;
};

struct lifetime_chunk {
    lifetime_site sites[std::size_t{1} << site_chunk_bits];
};

struct lifetime_state {
    spin_lock lock;
    std::uint64_t clock = 0;       // bytes allocated in timed blocks: the time unit
    std::uint64_t events = 0;      // timed allocations and frees, to order them against the peak
    std::uint64_t live_bytes = 0;  // alive in timed blocks
    std::uint64_t peak_bytes = 0;  // the most of them alive at once, first reached
    std::uint64_t peak_event = 0;
    std::uint64_t peak_clock = 0;
    lifetime_chunk* chunks[site_chunk_count] = {};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline lifetime_state lifetimes{};

// Under lifetimes.lock. Stack 0 (no stack captured) has a site here too.
inline lifetime_site* lifetime_site_of(std::uint32_t stack, bool make) noexcept {
    if (stack >= (1u << stack_id_bits)) return nullptr;
    lifetime_chunk*& chunk = lifetimes.chunks[stack >> site_chunk_bits];
    if (!chunk) {
        if (!make) return nullptr;
        // Zeroed pages are valid lifetime_sites; the kernel backs only the pages used.
        chunk = static_cast<lifetime_chunk*>(map_pages(sizeof(lifetime_chunk)));
        if (!chunk) return nullptr;
    }
    return &chunk->sites[stack & ((1u << site_chunk_bits) - 1)];
}

// A site's figures at the global peak are its figures after its last change before that peak:
// taken lazily, when it next changes (or is read) after a peak, so a new peak costs nothing.
inline void settle_peak(lifetime_site& s) noexcept {
    if (s.last_event <= lifetimes.peak_event) {
        s.peak_bytes = s.live_bytes;
        s.peak_blocks = s.live_blocks;
    }
}

// A block of `size` bytes is born at `stack`: the clock moves on by its size, and its birth is
// the clock after it. False when no page could be mapped for the site; the block is then not
// timed.
MEMLENS_NOINLINE inline bool time_birth(std::uint32_t stack, std::uint64_t size) noexcept {
    lifetime_state& t = lifetimes;
    lock_guard hold(t.lock);
    lifetime_site* s = lifetime_site_of(stack, true);
    if (!s) return false;
    const std::uint64_t event = ++t.events;
    t.clock += size;
    settle_peak(*s);
    s->last_event = event;
    ++s->allocs;
    s->bytes += size;
    ++s->live_blocks;
    s->live_bytes += size;
    s->born += t.clock;
    if (s->live_bytes > s->max_bytes) {
        s->max_bytes = s->live_bytes;
        s->max_blocks = s->live_blocks;
    }
    t.live_bytes += size;
    if (t.live_bytes > t.peak_bytes) {
        t.peak_bytes = t.live_bytes;
        t.peak_event = event;
        t.peak_clock = t.clock;
    }
    return true;
}

// A timed block dies: frees do not move the clock.
MEMLENS_NOINLINE inline void time_death(std::uint32_t stack, std::uint64_t size) noexcept {
    lifetime_state& t = lifetimes;
    lock_guard hold(t.lock);
    lifetime_site* s = lifetime_site_of(stack, false);
    if (!s) return;
    settle_peak(*s);
    s->last_event = ++t.events;
    --s->live_blocks;
    s->live_bytes -= size;
    s->died += t.clock;
    t.live_bytes -= size;
}

// One site's figures as a snapshot reads them.
struct lifetime_sum {
    std::uint32_t stack = 0;
    std::uint64_t allocs = 0;
    std::uint64_t bytes = 0;
    std::uint64_t lifetimes = 0;
    std::uint64_t max_bytes = 0;
    std::uint64_t max_blocks = 0;
    std::uint64_t peak_bytes = 0;
    std::uint64_t peak_blocks = 0;
    std::uint64_t live_bytes = 0;
    std::uint64_t live_blocks = 0;
};

// The clock, the global peak and its time, read with the sites in one hold of the lock.
struct lifetime_times {
    std::uint64_t clock = 0;
    std::uint64_t peak_bytes = 0;
    std::uint64_t peak_clock = 0;
};

// Calls `visit(const lifetime_sum&)` for each of stacks 0 to `last` that timed a block, under
// the lock: `visit` must not allocate through the hooks (the caller holds a guard, or reserved).
template <class Visit>
lifetime_times read_lifetimes(std::uint32_t last, Visit&& visit) {
    lifetime_state& t = lifetimes;
    lock_guard hold(t.lock);
    for (std::uint32_t stack = 0; stack <= last; ++stack) {
        lifetime_site* s = lifetime_site_of(stack, false);
        if (!s) {
            stack |= (1u << site_chunk_bits) - 1;  // a whole chunk without sites
            continue;
        }
        if (s->allocs == 0) continue;
        settle_peak(*s);
        lifetime_sum out;
        out.stack = stack;
        out.allocs = s->allocs;
        out.bytes = s->bytes;
        out.lifetimes = s->died + t.clock * s->live_blocks - s->born;
        out.max_bytes = s->max_bytes;
        out.max_blocks = s->max_blocks;
        out.peak_bytes = s->peak_bytes;
        out.peak_blocks = s->peak_blocks;
        out.live_bytes = s->live_bytes;
        out.live_blocks = s->live_blocks;
        visit(out);
    }
    return {t.clock, t.peak_bytes, t.peak_clock};
}

}  // namespace detail
MEMLENS_NAMESPACE_END
