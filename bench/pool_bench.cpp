// bench/pool_bench.cpp: memlens::pool_allocator against std::allocator for node-based
// containers: the time per node of filling a std::list / std::map with N elements and erasing
// them all, and the memory each node takes, measured with memlens.
//
// bytes_per_node: for std::allocator, the bytes the container asks for per node (counted by a
// tracking_allocator in an untimed pass); malloc_bytes_per_node adds what glibc's malloc really
// sets aside for each (usable size plus its chunk header). For pool_allocator, the bytes of
// the pool's blocks in its memlens domain divided by the nodes: its real footprint, slack and
// the unused tail of the last block included.
#include <memlens/core/counters.hpp>
#include <memlens/helpers/slot_pool.hpp>
#include <memlens/sources/allocator.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "ratio_reporter.hpp"

namespace {

// What malloc sets aside for the blocks std::allocator hands out, summed over every rebind.
std::size_t malloc_footprint = 0;

template <class T>
struct footprint_allocator {
    using value_type = T;
    footprint_allocator() = default;
    template <class U>
    footprint_allocator(const footprint_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        T* p = std::allocator<T>().allocate(n);
#if defined(__GLIBC__)
        malloc_footprint += ::malloc_usable_size(p) + sizeof(std::size_t);
#else
        malloc_footprint += n * sizeof(T);
#endif
        return p;
    }
    void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
    friend bool operator==(const footprint_allocator&, const footprint_allocator&) { return true; }
    friend bool operator!=(const footprint_allocator&, const footprint_allocator&) { return false; }
};

struct std_nodes_domain {
    static constexpr const char* name = "bench.std.nodes";
};

template <class T>
using measured_std = memlens::tracking_allocator<T, std_nodes_domain, footprint_allocator<T>>;

std::vector<int> shuffled_keys(std::size_t n) {
    std::vector<int> keys(n);
    for (std::size_t i = 0; i < n; ++i) keys[i] = static_cast<int>(i);
    std::shuffle(keys.begin(), keys.end(), std::mt19937(0x5eed));
    return keys;
}

template <class Container>
void fill(Container& c, const std::vector<int>& keys) {
    if constexpr (std::is_same_v<typename Container::value_type, int>) {
        for (int k : keys) c.push_back(k);
    } else {
        for (int k : keys) c.emplace(k, k);
    }
}

// The timed loop: insert N, erase all. Every node is one allocate+free pair.
template <class Container>
void churn(benchmark::State& state, Container& c, const std::vector<int>& keys) {
    for (auto _ : state) {
        fill(c, keys);
        benchmark::DoNotOptimize(c);
        c.clear();
        benchmark::ClobberMemory();
    }
    state.counters[memlens_bench::pairs_counter] =
        benchmark::Counter(static_cast<double>(keys.size()), benchmark::Counter::kAvgThreads);
}

template <template <class> class Container>
void std_nodes(benchmark::State& state) {
    const std::vector<int> keys = shuffled_keys(static_cast<std::size_t>(state.range(0)));
    const double n = static_cast<double>(keys.size());
    {
        const memlens::domain d = memlens::domain::named(std_nodes_domain::name);
        const std::size_t before = memlens::stats(d).current;
        malloc_footprint = 0;
        Container<measured_std<int>> measured;
        fill(measured, keys);
        state.counters["bytes_per_node"] =
            static_cast<double>(memlens::stats(d).current - before) / n;
        state.counters["malloc_bytes_per_node"] = static_cast<double>(malloc_footprint) / n;
    }
    Container<std::allocator<int>> c;
    churn(state, c, keys);
}

template <template <class> class Container, class Policy>
void pool_nodes(benchmark::State& state) {
    const std::vector<int> keys = shuffled_keys(static_cast<std::size_t>(state.range(0)));
    const memlens::domain d = memlens::domain::named("bench.pool.nodes");
    const std::size_t before = memlens::stats(d).current;
    Container<memlens::pool_allocator<int, Policy>> c{memlens::pool_allocator<int, Policy>(d)};
    // An untimed first fill makes the blocks, as a container that has run for a while has them.
    fill(c, keys);
    state.counters["bytes_per_node"] = static_cast<double>(memlens::stats(d).current - before) /
                                       static_cast<double>(keys.size());
    c.clear();
    churn(state, c, keys);
}

// Both containers take an allocator of int and rebind it to their nodes (and the map to its
// pair), as the containers themselves do.
template <class Alloc>
using list_of = std::list<int, Alloc>;

template <class Alloc>
using map_of = std::map<int, int, std::less<int>,
                        typename std::allocator_traits<Alloc>::template rebind_alloc<
                            std::pair<const int, int>>>;

void BM_std_list(benchmark::State& state) { std_nodes<list_of>(state); }
void BM_pool_list(benchmark::State& state) { pool_nodes<list_of, memlens::single_thread>(state); }
void BM_pool_ts_list(benchmark::State& state) { pool_nodes<list_of, memlens::thread_safe>(state); }
void BM_std_map(benchmark::State& state) { std_nodes<map_of>(state); }
void BM_pool_map(benchmark::State& state) { pool_nodes<map_of, memlens::single_thread>(state); }
void BM_pool_ts_map(benchmark::State& state) { pool_nodes<map_of, memlens::thread_safe>(state); }

void sizes(benchmark::internal::Benchmark* b) { b->Arg(1000)->Arg(100000)->UseRealTime(); }

}  // namespace

BENCHMARK(BM_std_list)->Apply(sizes);
BENCHMARK(BM_pool_list)->Apply(sizes);
BENCHMARK(BM_pool_ts_list)->Apply(sizes);
BENCHMARK(BM_std_map)->Apply(sizes);
BENCHMARK(BM_pool_map)->Apply(sizes);
BENCHMARK(BM_pool_ts_map)->Apply(sizes);

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_pool_list", "BM_std_list"},
                               {"BM_pool_ts_list", "BM_std_list"},
                               {"BM_pool_map", "BM_std_map"},
                               {"BM_pool_ts_map", "BM_std_map"}});
}
