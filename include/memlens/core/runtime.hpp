// memlens/core/runtime.hpp: what a language runtime in the process keeps beside memlens's
// domains (the Python source's gc and pymalloc's arenas), where snapshots can read it without
// knowing the runtime.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

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

// A pool is memory a runtime takes in large pieces and carves the blocks of some domain from
// (pymalloc's arenas hold what python.mem and python.obj count): shown beside the domains, never
// added to the totals, so that each byte is counted once.
constexpr std::uint32_t max_runtime_pools = 4;

struct runtime_pool_counters {
    std::atomic<const char*> name{nullptr};  // a string that lives as long as the process
    std::atomic<std::int64_t> current{0};
    std::atomic<std::int64_t> peak{0};
    std::atomic<std::uint64_t> total{0};
    std::atomic<std::uint64_t> allocs{0};
    std::atomic<std::uint64_t> frees{0};
};

MEMLENS_DETAIL_SHARED inline runtime_pool_counters runtime_pools[max_runtime_pools];

// The pool called `name` (compared by its text), claimed on first use; null when all are taken.
inline runtime_pool_counters* runtime_pool(const char* name) noexcept {
    for (runtime_pool_counters& p : runtime_pools) {
        const char* held = p.name.load(std::memory_order_acquire);
        if (!held && p.name.compare_exchange_strong(held, name, std::memory_order_acq_rel)) return &p;
        if (held && std::strcmp(held, name) == 0) return &p;
    }
    return nullptr;
}

inline void count_pool_alloc(runtime_pool_counters& p, std::uint64_t bytes) noexcept {
    const std::memory_order order = std::memory_order_relaxed;
    const std::int64_t now = p.current.fetch_add(static_cast<std::int64_t>(bytes), order) +
                             static_cast<std::int64_t>(bytes);
    p.total.fetch_add(bytes, order);
    p.allocs.fetch_add(1, order);
    std::int64_t peak = p.peak.load(order);
    while (now > peak && !p.peak.compare_exchange_weak(peak, now, order)) {
    }
}

inline void count_pool_free(runtime_pool_counters& p, std::uint64_t bytes) noexcept {
    p.current.fetch_sub(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
    p.frees.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace detail
MEMLENS_NAMESPACE_END
