// bench/stack_bench.cpp: what an allocation-site hook pays for a call stack: capture of 16
// frames by frame pointers and by the unwinder, and interning a stack already in the table.
// Meaningful only when built with -fno-omit-frame-pointer: otherwise the frame-pointer walk
// stops early and measures less work.
#include <memlens/core/stacks.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>

#include "ratio_reporter.hpp"

namespace {

using memlens::detail::capture_stack;
using memlens::detail::unwind_method;

constexpr std::size_t depth = 16;

// Runs the timing loop `levels` calls deeper than the benchmark, so that every capture finds
// at least `depth` frames above it.
template <class Body>
__attribute__((noinline)) void at_depth(int levels, Body& body) {
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    if (levels == 0) {
        body();
    } else {
        at_depth(levels - 1, body);
    }
    asm volatile("" ::: "memory");
}

void per_frame(benchmark::State& state) {
    // Seconds per frame, shown as ns.
    state.counters["per_frame"] = benchmark::Counter(
        static_cast<double>(depth), benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void capture(benchmark::State& state, unwind_method how) {
    memlens::detail::warm_up_unwinder();
    std::uintptr_t frames[depth];
    std::size_t size = 0;
    auto body = [&] {
        for (auto _ : state) {
            size = capture_stack(frames, depth, how);
            benchmark::DoNotOptimize(frames);
        }
    };
    at_depth(depth, body);
    if (size != depth) state.SkipWithError("fewer frames than asked for: build with frame pointers");
    per_frame(state);
}

void BM_capture_frame_pointers(benchmark::State& state) { capture(state, unwind_method::frame_pointers); }

void BM_capture_unwinder(benchmark::State& state) { capture(state, unwind_method::unwinder); }

// The cost a hook adds over the capture for a stack seen before: one hash, one probe, one
// comparison, no lock.
void BM_capture_and_intern(benchmark::State& state) {
    std::uintptr_t frames[depth];
    std::uint32_t id = 0;
    auto body = [&] {
        for (auto _ : state) {
            const std::size_t size = capture_stack(frames, depth, unwind_method::frame_pointers);
            id = memlens::detail::stacks.intern(frames, size);
            benchmark::DoNotOptimize(id);
        }
    };
    at_depth(depth, body);
    if (id == 0) state.SkipWithError("the stack was not interned");
}

// Interning alone, among many stored stacks, so that the probe misses the cache as in a
// program with many allocation sites.
void BM_intern_existing(benchmark::State& state) {
    constexpr std::size_t stored = 1 << 16;
    static std::uintptr_t stacks[stored][depth];
    for (std::size_t i = 0; i < stored; ++i) {
        for (std::size_t f = 0; f < depth; ++f) stacks[i][f] = 0x400000 + i * 4096 + f * 16;
        memlens::detail::stacks.intern(stacks[i], depth);
    }
    std::size_t i = 0;
    for (auto _ : state) {
        // A stride that is odd, so that every stack is visited, and large, so that neighbours
        // in the walk are not neighbours in memory.
        i = (i + 40503) & (stored - 1);
        benchmark::DoNotOptimize(memlens::detail::stacks.intern(stacks[i], depth));
    }
}

}  // namespace

BENCHMARK(BM_capture_frame_pointers);
BENCHMARK(BM_capture_unwinder);
BENCHMARK(BM_capture_and_intern);
BENCHMARK(BM_intern_existing);

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_capture_unwinder", "BM_capture_frame_pointers"},
                               {"BM_capture_and_intern", "BM_capture_frame_pointers"}},
                              "16-frame capture");
}
