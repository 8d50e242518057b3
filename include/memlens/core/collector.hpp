// memlens/core/collector.hpp: the figures of a garbage collector that runs in the process (the
// Python source's gc), kept where snapshots can read them without knowing the runtime.
#pragma once

#include <atomic>
#include <cstdint>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

constexpr std::uint32_t collector_generations = 4;

// One generation's totals since the collector was first watched. The runtime's callback writes
// them (one writer at a time: CPython runs them under the GIL) while a snapshot may read them on
// any thread, hence relaxed atomics: a snapshot sees each figure whole, not all of one
// collection at once.
struct collector_generation_counters {
    std::atomic<std::uint64_t> collections{0};
    std::atomic<std::uint64_t> collected{0};
    std::atomic<std::uint64_t> uncollectable{0};
    std::atomic<std::int64_t> threshold{0};
    std::atomic<std::uint64_t> nanoseconds{0};
    std::atomic<std::uint64_t> longest_nanoseconds{0};
};

struct collector_counters {
    // How many generations the runtime has; 0 until a collector is first watched, and kept
    // after, so that snapshots still show what was counted.
    std::atomic<std::uint32_t> generations{0};
    // Whether some copy of memlens in the process has its callback in the runtime now.
    std::atomic<bool> watched{false};
    collector_generation_counters generation[collector_generations];
};

MEMLENS_DETAIL_SHARED inline collector_counters collector;

// Counts one finished collection of generation `g` that took `nanoseconds`.
inline void count_collection(std::uint32_t g, std::uint64_t collected, std::uint64_t uncollectable,
                             std::uint64_t nanoseconds) noexcept {
    if (g >= collector_generations) return;
    collector_generation_counters& c = collector.generation[g];
    const std::memory_order order = std::memory_order_relaxed;
    c.collections.fetch_add(1, order);
    c.collected.fetch_add(collected, order);
    c.uncollectable.fetch_add(uncollectable, order);
    c.nanoseconds.fetch_add(nanoseconds, order);
    if (nanoseconds > c.longest_nanoseconds.load(order)) c.longest_nanoseconds.store(nanoseconds, order);
}

}  // namespace detail
MEMLENS_NAMESPACE_END
