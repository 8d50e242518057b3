// bench/sites_scale_bench.cpp: whether what sites mode adds to a new + delete pair stays flat
// while the program holds 10k, 1M or 5M live blocks recorded in sites mode, against the same
// pair untracked and in counters mode; and, where each event touches a different block, the cost
// of freeing one held block chosen at random and allocating its replacement.
#include <memlens/hooks.hpp>

#include <memlens/observe/sites.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "call_depth.hpp"
#include "ratio_reporter.hpp"

namespace {

using memlens_bench::at_depth;

constexpr int call_depth = 20;
constexpr std::size_t block_size = 32;
constexpr std::int64_t live_counts[] = {10'000, 1'000'000, 5'000'000};

void set_mode(memlens::tracking_mode mode) {
    memlens::tracking_config c;
    c.mode = mode;
    c.stack_depth = 16;
    if (!memlens::configure(c)) std::abort();
}

void* plain_new(std::size_t size) {
    void* p = std::malloc(size);
    if (!p) throw std::bad_alloc();
    return p;
}

// The blocks the program holds while a benchmark runs: from operator new in sites mode, so that
// each is recorded with its stack, or from malloc for the untracked replacement loop. Kept from
// one benchmark to the next while they ask for the same kind and count, which they do in the order
// main registers them.
enum class held_kind { none, recorded, untracked };

struct held_blocks {
    held_kind kind = held_kind::none;
    std::vector<void*> blocks;
};

held_blocks held;

void release_held() {
    for (void* p : held.blocks) {
        if (held.kind == held_kind::untracked) {
            std::free(p);
        } else {
            ::operator delete(p);
        }
    }
    held.blocks = std::vector<void*>();
    held.kind = held_kind::none;
}

void hold(held_kind kind, std::size_t count) {
    if (held.kind == kind && held.blocks.size() == count) return;
    release_held();
    held.blocks.reserve(count);  // before sites mode: the list is not one of the blocks held
    if (kind == held_kind::recorded) set_mode(memlens::tracking_mode::sites);
    for (std::size_t i = 0; i < count; ++i) {
        held.blocks.push_back(kind == held_kind::recorded ? ::operator new(block_size)
                                                          : plain_new(block_size));
    }
    held.kind = kind;
}

std::size_t live_arg(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

// Setups: the blocks to hold, then the mode of the measured loop (counters mode also for the
// untracked loops, which call malloc and free). Every teardown goes back to counters mode.
void recorded_counters(const benchmark::State& state) {
    hold(held_kind::recorded, live_arg(state));
    set_mode(memlens::tracking_mode::counters);
}
void recorded_sites(const benchmark::State& state) {
    hold(held_kind::recorded, live_arg(state));
    set_mode(memlens::tracking_mode::sites);
}
void untracked_held(const benchmark::State& state) {
    hold(held_kind::untracked, live_arg(state));
    set_mode(memlens::tracking_mode::counters);
}
void counters_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::counters); }

void malloc_free_pairs(benchmark::State& state) {
    for (auto _ : state) {
        void* p = plain_new(block_size);
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}

void new_delete_pairs(benchmark::State& state) {
    for (auto _ : state) {
        void* p = ::operator new(block_size);
        benchmark::DoNotOptimize(p);
        ::operator delete(p);
    }
}

// A held block chosen at random (xorshift, scaled to the count) is freed and replaced by a new
// one of the same size: each pair touches a different block, and in sites mode a different place
// of the live table, as a program that frees old blocks does.
template <bool Tracked>
void replace_held(benchmark::State& state) {
    std::vector<void*>& blocks = held.blocks;
    const std::uint64_t count = blocks.size();
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto _ : state) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const std::size_t i =
            static_cast<std::size_t>((static_cast<unsigned __int128>(x) * count) >> 64);
        if (Tracked) {
            ::operator delete(blocks[i]);
            blocks[i] = ::operator new(block_size);
        } else {
            std::free(blocks[i]);
            blocks[i] = plain_new(block_size);
        }
        benchmark::DoNotOptimize(blocks[i]);
    }
}

void BM_untracked_malloc_free(benchmark::State& state) { at_depth(call_depth, state, malloc_free_pairs); }
void BM_counters_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_sites_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_untracked_replace_held(benchmark::State& state) {
    at_depth(call_depth, state, replace_held<false>);
}
void BM_sites_replace_held(benchmark::State& state) { at_depth(call_depth, state, replace_held<true>); }

}  // namespace

int main(int argc, char** argv) {
    // By count first, so that each set of blocks is allocated once: the recorded blocks serve the
    // first four, malloc's the last. The live table keeps its size once its blocks are freed, so
    // a run filtered to the larger counts first, or interleaved, measures the smaller counts in a
    // table sized for the larger.
    for (const std::int64_t live : live_counts) {
        const auto add = [live](const char* name, void (*body)(benchmark::State&),
                                void (*setup)(const benchmark::State&)) {
            benchmark::RegisterBenchmark(name, body)
                ->ArgName("live")
                ->Arg(live)
                ->Setup(setup)
                ->Teardown(counters_mode)
                ->UseRealTime();
        };
        add("BM_untracked_malloc_free", BM_untracked_malloc_free, recorded_counters);
        add("BM_counters_new_delete", BM_counters_new_delete, recorded_counters);
        add("BM_sites_new_delete", BM_sites_new_delete, recorded_sites);
        add("BM_sites_replace_held", BM_sites_replace_held, recorded_sites);
        add("BM_untracked_replace_held", BM_untracked_replace_held, untracked_held);
    }
    const int status = memlens_bench::run(argc, argv,
                                          {{"BM_counters_new_delete", "BM_untracked_malloc_free"},
                                           {"BM_sites_new_delete", "BM_untracked_malloc_free"},
                                           {"BM_sites_replace_held", "BM_untracked_replace_held"}});
    release_held();
    return status;
}
