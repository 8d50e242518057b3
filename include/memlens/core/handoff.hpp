// memlens/core/handoff.hpp: allocation events handed to another tracer that may only be called
// under a lock the allocating thread cannot take (CPython's tracemalloc, under the GIL). The
// event path queues them here and never calls the tracer; the tracer's side takes them out where
// it holds that lock. Everything here may run inside an allocation hook: no allocation through
// one, the queue lives in pages of its own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "state.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// A freed block is queued with this size: the tracer forgets the address.
constexpr std::uint64_t handoff_freed = ~std::uint64_t{0};
// 1 MiB of events: a tracer that drains at each pending call keeps far below it; past it the
// events are dropped and counted.
constexpr std::size_t handoff_capacity = std::size_t{1} << 16;
// Domains whose events another path hands over already (CPython's own domains, numpy's).
constexpr std::size_t handoff_skip_limit = 8;

struct handoff_event {
    std::uintptr_t address;
    std::uint64_t size;  // handoff_freed for a free
};

struct handoff_queue {
    std::atomic<bool> on;
    spin_lock lock;
    handoff_event* ring;  // handoff_capacity events, mapped at the first start; under lock
    std::uint64_t head;   // under lock: the next event to take
    std::uint64_t tail;   // under lock: the next place to fill
    std::atomic<std::uint64_t> queued;
    std::atomic<std::uint64_t> dropped;
    std::atomic<std::uint32_t> skipped[handoff_skip_limit];  // domain slots, 0 for none
    // Called once when the queue stops being empty, so that the tracer's side can arrange a drain
    // (CPython: Py_AddPendingCall); it must not allocate.
    std::atomic<void (*)()> wake;
    std::atomic<bool> wake_pending;
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline handoff_queue handoff{};
// Set on the thread that hands events over, so that what the tracer allocates meanwhile is not
// queued for it again.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline thread_local bool handing_off = false;

inline bool handoff_skips(std::uint32_t d) noexcept {
    for (const std::atomic<std::uint32_t>& s : handoff.skipped) {
        if (s.load(relaxed) == d) return true;
    }
    return false;
}

// Leaves domain slot `d` out of every handoff: its events reach the tracer by a path of their own.
inline void handoff_skip_domain(std::uint32_t d) noexcept {
    for (std::atomic<std::uint32_t>& s : handoff.skipped) {
        std::uint32_t expected = 0;
        if (s.load(relaxed) == d || s.compare_exchange_strong(expected, d, relaxed)) return;
    }
}

// Queues one event for the tracer, when a handoff is on and the domain is not skipped.
MEMLENS_NOINLINE inline void hand_off(std::uintptr_t address, std::uint64_t size, std::uint32_t d) noexcept {
    if (handing_off || handoff_skips(d)) return;
    bool was_empty = false;
    {
        lock_guard hold(handoff.lock);
        if (!handoff.on.load(relaxed) || !handoff.ring) return;
        if (handoff.tail - handoff.head == handoff_capacity) {
            handoff.dropped.fetch_add(1, relaxed);
            return;
        }
        was_empty = handoff.tail == handoff.head;
        handoff.ring[handoff.tail % handoff_capacity] = handoff_event{address, size};
        ++handoff.tail;
        handoff.queued.fetch_add(1, relaxed);
    }
    if (was_empty && !handoff.wake_pending.exchange(true, std::memory_order_acq_rel)) {
        if (void (*wake)() = handoff.wake.load(std::memory_order_acquire)) wake();
    }
}

MEMLENS_ALWAYS_INLINE void note_handoff(std::uintptr_t address, std::uint64_t size, std::uint32_t d) noexcept {
    if (MEMLENS_UNLIKELY(handoff.on.load(relaxed))) hand_off(address, size, d);
}

// Takes up to `limit` events into `out`, oldest first; returns how many.
inline std::size_t take_handoff(handoff_event* out, std::size_t limit) noexcept {
    lock_guard hold(handoff.lock);
    std::size_t n = 0;
    while (n < limit && handoff.head != handoff.tail) {
        out[n++] = handoff.ring[handoff.head % handoff_capacity];
        ++handoff.head;
    }
    return n;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
