// bench/hook_bench.cpp: what the global operator new / delete hooks of sources/new.hpp add to an
// allocate+free pair, against what the same pair costs a program without memlens.
#include <memlens/sources/new.hpp>

#include <memlens/core/counters.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

// libstdc++'s operator new is malloc plus this check, and its operator delete is free: with
// the hooks in this program, malloc and free are how to measure the pair without memlens.
void* plain_new(std::size_t size) {
    void* p = std::malloc(size);
    if (!p) throw std::bad_alloc();
    return p;
}

std::size_t size_arg(const benchmark::State& state) {
    return static_cast<std::size_t>(state.range(0));
}

void BM_untracked_malloc_free(benchmark::State& state) {
    const std::size_t size = size_arg(state);
    for (auto _ : state) {
        void* p = plain_new(size);
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}

void BM_tracked_new_delete(benchmark::State& state) {
    const std::size_t size = size_arg(state);
    for (auto _ : state) {
        void* p = ::operator new(size);
        benchmark::DoNotOptimize(p);
        ::operator delete(p);
    }
}

// std::allocator and most containers free through the sized form.
void BM_tracked_new_sized_delete(benchmark::State& state) {
    const std::size_t size = size_arg(state);
    for (auto _ : state) {
        void* p = ::operator new(size);
        benchmark::DoNotOptimize(p);
        ::operator delete(p, size);
    }
}

// Setup and Teardown run once per run, outside the threads, so the mode holds for the
// whole of this benchmark and for no other.
void exact_peak(const benchmark::State&) { memlens::set_peak_mode(memlens::peak_mode::exact); }
void batched_peak(const benchmark::State&) { memlens::set_peak_mode(memlens::peak_mode::batched); }

void BM_tracked_new_delete_exact(benchmark::State& state) { BM_tracked_new_delete(state); }

// Growth: blocks pile up before any is freed, as when a container or a cache fills. With
// new_peak:1 the peak is reset before every round, so each allocation of the round sets a new
// peak and takes memlens's slow path; new_peak:0 climbs back to a peak already recorded.
constexpr int growth_blocks = 1000;
constexpr std::size_t growth_size = 64;

template <class Allocate, class Free, class Between>
void growth(benchmark::State& state, Allocate allocate, Free release, Between between) {
    std::vector<void*> blocks(growth_blocks);
    const bool new_peak = state.range(0) != 0;
    for (auto _ : state) {
        if (new_peak) {
            // The pause costs the same in both programs; what runs inside it is not counted.
            state.PauseTiming();
            between();
            state.ResumeTiming();
        }
        for (void*& p : blocks) {
            p = allocate(growth_size);
            benchmark::DoNotOptimize(p);
        }
        for (void* p : blocks) release(p);
        benchmark::ClobberMemory();
    }
    state.counters[memlens_bench::pairs_counter] =
        benchmark::Counter(growth_blocks, benchmark::Counter::kAvgThreads);
}

void BM_untracked_growth(benchmark::State& state) {
    growth(state, plain_new, [](void* p) { std::free(p); }, [] {});
}

void BM_tracked_growth(benchmark::State& state) {
    growth(
        state, [](std::size_t n) { return ::operator new(n); },
        [](void* p) { ::operator delete(p, growth_size); }, [] { memlens::reset_peak(); });
}

void pair_sizes(benchmark::internal::Benchmark* b) {
    b->Arg(16)->Arg(64)->Arg(256)->Threads(1)->Threads(2)->UseRealTime();
}

void growth_modes(benchmark::internal::Benchmark* b) {
    b->ArgName("new_peak")->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_untracked_malloc_free)->Apply(pair_sizes);
BENCHMARK(BM_tracked_new_delete)->Apply(pair_sizes);
BENCHMARK(BM_tracked_new_sized_delete)->Apply(pair_sizes);
BENCHMARK(BM_tracked_new_delete_exact)
    ->Setup(exact_peak)
    ->Teardown(batched_peak)
    ->Arg(64)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK(BM_untracked_growth)->Apply(growth_modes);
BENCHMARK(BM_tracked_growth)->Apply(growth_modes);

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_tracked_new_delete", "BM_untracked_malloc_free"},
                               {"BM_tracked_new_sized_delete", "BM_untracked_malloc_free"},
                               {"BM_tracked_new_delete_exact", "BM_untracked_malloc_free"},
                               {"BM_tracked_growth", "BM_untracked_growth"}});
}
