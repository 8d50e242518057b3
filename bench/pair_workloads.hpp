// bench/pair_workloads.hpp: the bodies that the per-allocation benchmarks time in every mode: a
// malloc + free pair (the untracked baseline), a new + delete pair, and a map of 256 strings
// built and dropped.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <map>
#include <new>
#include <string>

#include "ratio_reporter.hpp"

namespace memlens_bench {

constexpr std::size_t pair_size = 64;

inline void malloc_free_pairs(benchmark::State& state) {
    for (auto _ : state) {
        void* p = std::malloc(pair_size);
        if (!p) throw std::bad_alloc();
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}

inline void new_delete_pairs(benchmark::State& state) {
    for (auto _ : state) {
        void* p = ::operator new(pair_size);
        benchmark::DoNotOptimize(p);
        ::operator delete(p);
    }
}

// Strings longer than std::string's inline buffer: 512 allocations a map.
inline void map_workload(benchmark::State& state) {
    for (auto _ : state) {
        std::map<int, std::string> m;
        for (int i = 0; i < 256; ++i) m.emplace(i, std::string(40, 'x'));
        benchmark::DoNotOptimize(m);
    }
    state.counters[pairs_counter] = benchmark::Counter(512, benchmark::Counter::kAvgThreads);
}

}  // namespace memlens_bench
