// bench/stack_bench.cpp: what an allocation-site hook pays for a call stack: capture of 16
// frames by frame pointers, by the hybrid walk (warm and cold) and by the unwinder, and
// interning a stack already in the table. Meaningful only when built with
// -fno-omit-frame-pointer: otherwise the frame-pointer walk stops early and measures less work.
#include <memlens/core/stacks.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <streambuf>
#include <vector>

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

// The hybrid walk where frame pointers suffice: every rule it looks up is a frame record's.
void BM_capture_hybrid_pure(benchmark::State& state) { capture(state, unwind_method::hybrid); }

// A stack with one frame of libstdc++.so, which Debian builds without frame pointers: the
// timing loop runs inside a stream buffer's xsputn, called by std::ostream::write, an out-of-line
// member of libstdc++. The frame-pointer walk loses that frame's caller there.
template <class Body>
struct relay_buffer : std::streambuf {
    int levels;
    Body* body;
    relay_buffer(int l, Body& b) : levels(l), body(&b) {}
    std::streamsize xsputn(const char*, std::streamsize n) override {
        at_depth(levels, *body);
        return n;
    }
};

template <class Body>
__attribute__((noinline)) void through_libstdcxx(int above, int below, Body& body) {
    relay_buffer<Body> relay(below, body);
    std::ostream out(&relay);
    auto go = [&] { out.write("x", 1); };
    at_depth(above, go);
}

enum class warmth { warm, cold };

void capture_mixed(benchmark::State& state, unwind_method how, warmth w) {
    memlens::detail::warm_up_unwinder();
    std::uintptr_t frames[depth];
    std::size_t size = 0;
    // The cache slots this stack's walk uses, found by walking once with the cache empty.
    std::vector<std::size_t> used;
    auto& cache = memlens::detail::rule_cache;
    auto body = [&] {
        for (std::size_t pass = 0; pass < 2; ++pass) {
            if (w == warmth::cold && pass == 0) {
                for (auto& slot : cache) slot.rule.store(0), slot.check.store(0);
            }
            size = capture_stack(frames, depth, how);
        }
        for (std::size_t i = 0; w == warmth::cold && i < memlens::detail::rule_cache_slots; ++i) {
            if (cache[i].check.load() != 0) used.push_back(i);
        }
        for (auto _ : state) {
            // Every rule of the stack is parsed again: the .eh_frame lookups a new stack costs.
            for (const std::size_t i : used) {
                cache[i].check.store(0, std::memory_order_relaxed);
                cache[i].rule.store(0, std::memory_order_relaxed);
            }
            size = capture_stack(frames, depth, how);
            benchmark::DoNotOptimize(frames);
        }
    };
    through_libstdcxx(depth / 2, depth / 2, body);
    if (size != depth) state.SkipWithError("fewer frames than asked for");
    per_frame(state);
}

void BM_capture_hybrid_warm(benchmark::State& state) {
    capture_mixed(state, unwind_method::hybrid, warmth::warm);
}

void BM_capture_hybrid_cold(benchmark::State& state) {
    capture_mixed(state, unwind_method::hybrid, warmth::cold);
}

void BM_capture_unwinder_mixed(benchmark::State& state) {
    capture_mixed(state, unwind_method::unwinder, warmth::warm);
}

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
BENCHMARK(BM_capture_hybrid_pure);
BENCHMARK(BM_capture_hybrid_warm);
BENCHMARK(BM_capture_hybrid_cold);
BENCHMARK(BM_capture_unwinder_mixed);
BENCHMARK(BM_capture_and_intern);
BENCHMARK(BM_intern_existing);

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_capture_unwinder", "BM_capture_frame_pointers"},
                               {"BM_capture_hybrid_pure", "BM_capture_frame_pointers"},
                               {"BM_capture_hybrid_warm", "BM_capture_frame_pointers"},
                               {"BM_capture_hybrid_cold", "BM_capture_frame_pointers"},
                               {"BM_capture_unwinder_mixed", "BM_capture_frame_pointers"},
                               {"BM_capture_and_intern", "BM_capture_frame_pointers"}},
                              "16-frame capture");
}
