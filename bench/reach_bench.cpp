// bench/reach_bench.cpp: how long classify_leaks() stops the process: per million live blocks
// (64-byte blocks chained one to the next, so that every one is reached and scanned) and per GiB
// of heap (1 MiB blocks full of non-pointer words, held from one array). The goal is under a
// second per GiB. Each figure is the whole pause: stopping the threads, reading the mappings,
// copying and sorting the table, scanning the roots and every block, resuming.
//
// And what the mode classify_leaks() needs costs each allocation: a new + delete pair 20 calls
// deep with 16-frame stacks in per-block mode (sites mode with every block in the live table),
// beside sites mode, counters mode and the same pair with malloc + free, untracked, in the same
// run; also per allocation of a map of 256 strings built and dropped. memcheck cannot run inside
// this program: compare_tools.sh times the same pair under it.
#include <memlens/sources/new.hpp>

#include <memlens/observe/reach.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "call_depth.hpp"
#include "pair_workloads.hpp"
#include "ratio_reporter.hpp"

namespace {

using memlens_bench::malloc_free_pairs;
using memlens_bench::map_workload;
using memlens_bench::new_delete_pairs;

struct chained {
    chained* next;
    std::uint64_t words[7];
};

chained* chain_head = nullptr;
void** big_blocks = nullptr;
std::size_t big_count = 0;

void per_block_mode(bool on) {
    memlens::tracking_config c;
    c.mode = on ? memlens::tracking_mode::sites : memlens::tracking_mode::counters;
    c.blocks = on;
    c.stack_depth = 8;
    if (!memlens::configure(c)) std::abort();
}

void BM_classify_blocks(benchmark::State& state) {
    const auto count = static_cast<std::size_t>(state.range(0));
    per_block_mode(true);
    for (std::size_t i = 0; i < count; ++i) chain_head = new chained{chain_head, {i, 0, 0, 0, 0, 0, 0}};
    std::uint64_t reached = 0;
    double paused = 0;
    for (auto _ : state) {
        const memlens::leak_kinds r = memlens::classify_leaks();
        reached = r[memlens::leak_kind::still_reachable].blocks;
        paused += static_cast<double>(r.pause_ns) * 1e-9;
        benchmark::DoNotOptimize(reached);
    }
    const double pause = paused / static_cast<double>(state.iterations());
    if (reached < count) state.SkipWithError("the chain was not reached whole");
    state.counters["live_blocks"] = static_cast<double>(count);
    // The pause alone (the threads stopped), and the whole call (the result built after).
    state.counters["pause_s_per_million_blocks"] = pause * 1e6 / static_cast<double>(count);
    state.counters["call_s_per_million_blocks"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * static_cast<double>(count) / 1e6,
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    while (chain_head) {
        chained* next = chain_head->next;
        delete chain_head;
        chain_head = next;
    }
    per_block_mode(false);
}

void BM_classify_heap(benchmark::State& state) {
    constexpr std::size_t block_bytes = std::size_t{1} << 20;
    big_count = static_cast<std::size_t>(state.range(0));
    per_block_mode(true);
    big_blocks = new void*[big_count];
    std::uint64_t seed = 0x5eed;
    for (std::size_t i = 0; i < big_count; ++i) {
        auto* words = static_cast<std::uint64_t*>(::operator new(block_bytes));
        // Counts and hashes, as a heap of data holds: small values and values above any address.
        for (std::size_t w = 0; w < block_bytes / 8; ++w) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            words[w] = (w & 1) ? (seed >> 44) : (seed | (std::uint64_t{1} << 63));
        }
        big_blocks[i] = words;
    }
    std::uint64_t reached = 0;
    double paused = 0;
    for (auto _ : state) {
        const memlens::leak_kinds r = memlens::classify_leaks();
        reached = r[memlens::leak_kind::still_reachable].blocks;
        paused += static_cast<double>(r.pause_ns) * 1e-9;
        benchmark::DoNotOptimize(reached);
    }
    const double pause = paused / static_cast<double>(state.iterations());
    if (reached < big_count) state.SkipWithError("the heap was not reached whole");
    const double gib = static_cast<double>(big_count) / 1024.0;
    state.counters["heap_GiB"] = gib;
    state.counters["pause_s_per_GiB"] = pause / gib;
    state.counters["call_s_per_GiB"] = benchmark::Counter(static_cast<double>(state.iterations()) * gib,
                                                          benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    for (std::size_t i = 0; i < big_count; ++i) ::operator delete(big_blocks[i]);
    delete[] big_blocks;
    big_blocks = nullptr;
    per_block_mode(false);
}

constexpr int call_depth = 20;

void set_mode(memlens::tracking_mode mode, bool blocks) {
    memlens::tracking_config c;
    c.mode = mode;
    c.blocks = blocks;
    c.stack_depth = 16;
    if (!memlens::configure(c)) std::abort();
}

void counters_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::counters, false); }
void sites_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::sites, false); }
void blocks_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::sites, true); }




void BM_untracked_malloc_free(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, malloc_free_pairs); }
void BM_counters_new_delete(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, new_delete_pairs); }
void BM_sites_new_delete(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, new_delete_pairs); }
void BM_blocks_new_delete(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, new_delete_pairs); }
void BM_counters_map(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, map_workload); }
void BM_sites_map(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, map_workload); }
void BM_blocks_map(benchmark::State& state) { memlens_bench::at_depth(call_depth, state, map_workload); }

}  // namespace

BENCHMARK(BM_untracked_malloc_free)->UseRealTime();
BENCHMARK(BM_counters_new_delete)->Setup(counters_mode)->UseRealTime();
BENCHMARK(BM_sites_new_delete)->Setup(sites_mode)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_blocks_new_delete)->Setup(blocks_mode)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_counters_map)->Setup(counters_mode)->UseRealTime();
BENCHMARK(BM_sites_map)->Setup(sites_mode)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_blocks_map)->Setup(blocks_mode)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_classify_blocks)->ArgName("live")->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_classify_heap)->ArgName("MiB")->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
    // Each mode against the untracked pair; on the map, against counters mode, whose hooks the
    // untracked baseline would lack.
    return memlens_bench::run(argc, argv,
                              {{"BM_counters_new_delete", "BM_untracked_malloc_free"},
                               {"BM_sites_new_delete", "BM_untracked_malloc_free"},
                               {"BM_blocks_new_delete", "BM_untracked_malloc_free"},
                               {"BM_sites_map", "BM_counters_map"},
                               {"BM_blocks_map", "BM_counters_map"}});
}
