// bench/type_bench.cpp: what memlens::counted_type adds to constructing and destroying an
// object, against the same type without the base, on one thread and on two threads counting
// the same type at once. One pair is one construction and one destruction.
//
// BM_*_pair: construct and destroy one object per pair, so the live count stays put (the common
// steady state). BM_*_batch: construct 1,000, then destroy them all, so each pass climbs back
// to the same peak; the counters only look at the other threads when a new peak is possible.
// BM_*_rise: construct without ever destroying (each object in the storage of the last), so
// every construction sets a new peak: the worst case, which sums every thread's table each time.
#include <memlens/observe/types.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "ratio_reporter.hpp"

namespace {

struct plain_point {
    std::int64_t x = 0;
    std::int64_t y = 0;
};

struct counted_point : memlens::counted_type<counted_point> {
    std::int64_t x = 0;
    std::int64_t y = 0;
};

static_assert(sizeof(plain_point) == sizeof(counted_point), "the base adds no bytes");

template <class T>
void pair(benchmark::State& state) {
    std::aligned_storage_t<sizeof(T), alignof(T)> storage;
    for (auto _ : state) {
        T* p = new (&storage) T;
        benchmark::DoNotOptimize(p);
        p->~T();
        benchmark::ClobberMemory();
    }
}

constexpr std::size_t batch = 1000;

template <class T>
void climb(benchmark::State& state) {
    static_assert(std::is_trivially_destructible_v<plain_point>, "no work in the baseline's dtor");
    auto* storage = new std::aligned_storage_t<sizeof(T), alignof(T)>[batch];
    for (auto _ : state) {
        for (std::size_t i = 0; i < batch; ++i) {
            T* p = new (&storage[i]) T;
            benchmark::DoNotOptimize(p);
        }
        benchmark::ClobberMemory();
        for (std::size_t i = 0; i < batch; ++i) std::launder(reinterpret_cast<T*>(&storage[i]))->~T();
        benchmark::ClobberMemory();
    }
    delete[] storage;
    state.counters[memlens_bench::pairs_counter] =
        benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kAvgThreads);
}

template <class T>
void rise(benchmark::State& state) {
    std::aligned_storage_t<sizeof(T), alignof(T)> storage;
    for (auto _ : state) {
        // Reusing the storage ends the last object's life without its destructor: the live
        // count only grows.
        T* p = new (&storage) T;
        benchmark::DoNotOptimize(p);
        benchmark::ClobberMemory();
    }
}

void BM_plain_pair(benchmark::State& state) { pair<plain_point>(state); }
void BM_counted_pair(benchmark::State& state) { pair<counted_point>(state); }
void BM_plain_batch(benchmark::State& state) { climb<plain_point>(state); }
void BM_counted_batch(benchmark::State& state) { climb<counted_point>(state); }
void BM_plain_rise(benchmark::State& state) { rise<plain_point>(state); }
void BM_counted_rise(benchmark::State& state) { rise<counted_point>(state); }

}  // namespace

BENCHMARK(BM_plain_pair)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_counted_pair)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_plain_batch)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_counted_batch)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_plain_rise)->UseRealTime()->Threads(1)->Threads(2);
BENCHMARK(BM_counted_rise)->UseRealTime()->Threads(1)->Threads(2);

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_counted_pair", "BM_plain_pair"},
                               {"BM_counted_batch", "BM_plain_batch"},
                               {"BM_counted_rise", "BM_plain_rise"}},
                              "construction + destruction");
}
