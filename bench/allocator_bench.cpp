// bench/allocator_bench.cpp: what tracking_allocator and tracking_resource add to an
// allocate+free pair and to container workloads, against the allocator or resource they wrap.
// Global operator new is the system's here, so the baselines are the plain system allocator.
#include <memlens/core/counters.hpp>
#include <memlens/sources/allocator.hpp>
#include <memlens/sources/resource.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <utility>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

// The size of the blocks hook_bench measures in its middle row.
struct block {
    std::uint64_t words[8];
};

template <class Allocator>
void allocator_pair(benchmark::State& state) {
    Allocator allocator;
    for (auto _ : state) {
        auto* p = allocator.allocate(1);
        benchmark::DoNotOptimize(p);
        allocator.deallocate(p, 1);
    }
}

void BM_std_allocator_pair(benchmark::State& state) { allocator_pair<std::allocator<block>>(state); }

void BM_tracking_allocator_pair(benchmark::State& state) {
    allocator_pair<memlens::tracking_allocator<block>>(state);
}

// A map that keeps about the same size: every iteration inserts a key above the others and
// erases the lowest one, so it is one node allocated and one freed, among the tree work a
// real program does around them.
constexpr int map_size = 1024;

template <class Allocator>
void map_churn(benchmark::State& state) {
    std::map<int, int, std::less<int>, Allocator> map;
    for (int k = 0; k < map_size; ++k) map.emplace(k, k);
    int low = 0;
    for (auto _ : state) {
        map.emplace(low + map_size, low);
        map.erase(low);
        ++low;
    }
    benchmark::DoNotOptimize(map);
}

void BM_std_allocator_map(benchmark::State& state) {
    map_churn<std::allocator<std::pair<const int, int>>>(state);
}

void BM_tracking_allocator_map(benchmark::State& state) {
    map_churn<memlens::tracking_allocator<std::pair<const int, int>>>(state);
}

// Forwards to std::allocator and counts nothing. With GCC 12 a std::map over any allocator
// other than std::allocator itself runs slower, so this row tells how much of the tracking
// map's cost is that and how much is memlens's counting.
template <class T>
struct forwarding_allocator {
    using value_type = T;
    forwarding_allocator() = default;
    template <class U>
    forwarding_allocator(const forwarding_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
    void deallocate(T* p, std::size_t n) noexcept { std::allocator<T>().deallocate(p, n); }
    friend bool operator==(const forwarding_allocator&, const forwarding_allocator&) { return true; }
    friend bool operator!=(const forwarding_allocator&, const forwarding_allocator&) { return false; }
};

void BM_forwarding_allocator_map(benchmark::State& state) {
    map_churn<forwarding_allocator<std::pair<const int, int>>>(state);
}

std::pmr::memory_resource* tracked_resource() {
    static memlens::tracking_resource resource(memlens::domain::named("bench.resource"),
                                               std::pmr::new_delete_resource());
    return &resource;
}

void resource_pair(benchmark::State& state, std::pmr::memory_resource* resource) {
    for (auto _ : state) {
        void* p = resource->allocate(sizeof(block), alignof(block));
        benchmark::DoNotOptimize(p);
        resource->deallocate(p, sizeof(block), alignof(block));
    }
}

void BM_new_delete_resource_pair(benchmark::State& state) {
    resource_pair(state, std::pmr::new_delete_resource());
}

void BM_tracking_resource_pair(benchmark::State& state) { resource_pair(state, tracked_resource()); }

// Fills a vector from empty, as code that builds a result does: the pairs are its
// reallocations, counted from the capacity so that the figure follows the library's growth.
constexpr int vector_size = 1000;

void vector_fill(benchmark::State& state, std::pmr::memory_resource* resource) {
    int reallocations = 0;
    {
        std::pmr::vector<int> v(resource);
        std::size_t capacity = 0;
        for (int i = 0; i < vector_size; ++i) {
            v.push_back(i);
            if (v.capacity() != capacity) ++reallocations;
            capacity = v.capacity();
        }
    }
    for (auto _ : state) {
        std::pmr::vector<int> v(resource);
        for (int i = 0; i < vector_size; ++i) v.push_back(i);
        benchmark::DoNotOptimize(v.data());
        benchmark::ClobberMemory();
    }
    state.counters[memlens_bench::pairs_counter] =
        benchmark::Counter(reallocations, benchmark::Counter::kAvgThreads);
}

void BM_new_delete_resource_vector(benchmark::State& state) {
    vector_fill(state, std::pmr::new_delete_resource());
}

void BM_tracking_resource_vector(benchmark::State& state) { vector_fill(state, tracked_resource()); }

void pair_threads(benchmark::internal::Benchmark* b) { b->Threads(1)->Threads(2)->UseRealTime(); }

}  // namespace

BENCHMARK(BM_std_allocator_pair)->Apply(pair_threads);
BENCHMARK(BM_tracking_allocator_pair)->Apply(pair_threads);
BENCHMARK(BM_std_allocator_map)->UseRealTime();
BENCHMARK(BM_tracking_allocator_map)->UseRealTime();
BENCHMARK(BM_forwarding_allocator_map)->UseRealTime();
BENCHMARK(BM_new_delete_resource_pair)->Apply(pair_threads);
BENCHMARK(BM_tracking_resource_pair)->Apply(pair_threads);
BENCHMARK(BM_new_delete_resource_vector)->UseRealTime();
BENCHMARK(BM_tracking_resource_vector)->UseRealTime();

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_tracking_allocator_pair", "BM_std_allocator_pair"},
                               {"BM_tracking_allocator_map", "BM_std_allocator_map"},
                               {"BM_forwarding_allocator_map", "BM_std_allocator_map"},
                               {"BM_tracking_resource_pair", "BM_new_delete_resource_pair"},
                               {"BM_tracking_resource_vector", "BM_new_delete_resource_vector"}});
}
