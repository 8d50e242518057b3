// bench/sites_bench.cpp: what recording allocation sites costs. Sites mode (every allocation
// with a 16-frame stack in the live table) against the same pair in a program without memlens,
// and sampled mode against counters mode, on single pairs and on a container workload; per-block
// mode with and without block lifetimes on single pairs; and on a
// JSON-like parse, whose strings grow inside libstdc++ (no frame pointers there), the hybrid
// stack walk against the frame-pointer walk.
#include <memlens/sources/new.hpp>

#include <memlens/observe/sites.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
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

using memlens_bench::at_depth;

constexpr int call_depth = 20;

void set_mode(memlens::tracking_mode mode, memlens::stack_method method = memlens::stack_method::hybrid) {
    memlens::tracking_config c;
    c.mode = mode;
    c.method = method;
    c.stack_depth = 16;
    if (!memlens::configure(c)) std::abort();
}

void sites_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::sites); }
// Per-block mode, and per-block mode timing every block (tracking_config::lifetimes).
void blocks_mode(bool lifetimes) {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.stack_depth = 16;
    c.blocks = true;
    c.lifetimes = lifetimes;
    if (!memlens::configure(c)) std::abort();
}
void blocks_mode(const benchmark::State&) { blocks_mode(false); }
void lifetimes_mode(const benchmark::State&) { blocks_mode(true); }
void sites_mode_frame_pointers(const benchmark::State&) {
    set_mode(memlens::tracking_mode::sites, memlens::stack_method::frame_pointers);
}
void sampled_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::sampled); }
void counters_mode(const benchmark::State&) { set_mode(memlens::tracking_mode::counters); }




// A JSON-like document of 200 records, each with a name, a text and a list of tags longer than
// std::string's inline buffer.
const std::string& json_text() {
    static const std::string text = [] {
        std::string t = "[";
        for (int i = 0; i < 200; ++i) {
            t += "{\"name\":\"record number " + std::to_string(i) + " of the document\",";
            t += "\"text\":\"" + std::string(40 + i % 50, 'a' + i % 26) + "\",";
            t += "\"tags\":[\"first tag of the record\",\"second tag of the record\",\"third one\"]},";
        }
        t.back() = ']';
        return t;
    }();
    return text;
}

using json_record = std::map<std::string, std::vector<std::string>>;

// Reads every string of the document character by character, as a tokenizer does: each string
// grows in libstdc++'s out-of-line code, and each record is a map of vectors.
__attribute__((noinline)) std::vector<json_record> parse_json_like(const std::string& text) {
    std::vector<json_record> records;
    std::string key, token;
    bool in_string = false, have_key = false;
    int depth = 0;  // 1 in the list of records, 2 in a record, 3 in a list of tags
    for (char c : text) {
        if (in_string) {
            if (c != '"') {
                token.push_back(c);
                continue;
            }
            in_string = false;
            if (depth == 2 && !have_key) {
                key = token;
                have_key = true;
            } else {
                records.back()[key].push_back(token);
                have_key = depth == 3;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
            token.clear();
            token.shrink_to_fit();
        } else if (c == '{') {
            records.emplace_back();
            ++depth;
        } else if (c == '[') {
            ++depth;
        } else if (c == '}' || c == ']') {
            --depth;
            have_key = false;
        }
    }
    return records;
}

void json_workload(benchmark::State& state) {
    const std::string& text = json_text();
    std::size_t allocations = 0;
    {
        const memlens::memory_stats before = memlens::stats();
        benchmark::DoNotOptimize(parse_json_like(text));
        allocations = memlens::stats().allocs - before.allocs;
    }
    for (auto _ : state) benchmark::DoNotOptimize(parse_json_like(text));
    state.counters[memlens_bench::pairs_counter] =
        benchmark::Counter(static_cast<double>(allocations), benchmark::Counter::kAvgThreads);
}

// What the live table costs per live allocation, as it grows through 100k to 1M blocks: the
// table is kept between 75% and 90% full, so the figure moves with the fill.
void BM_live_table_bytes(benchmark::State& state) {
    std::vector<char*> blocks;
    blocks.reserve(1'000'000);
    double sum = 0, worst = 0;
    int samples = 0;
    for (auto _ : state) {
        for (int i = 0; i < 1'000'000; ++i) {
            blocks.push_back(new char[32]);
            if (i >= 100'000 && i % 9973 == 0) {
                const memlens::live_table_stats u = memlens::live_table_usage();
                const double per = static_cast<double>(u.table_bytes) / static_cast<double>(u.allocations);
                sum += per;
                worst = per > worst ? per : worst;
                ++samples;
            }
        }
        for (char* p : blocks) delete[] p;
        blocks.clear();
    }
    state.counters["table_bytes_per_live_mean"] = sum / samples;
    state.counters["table_bytes_per_live_max"] = worst;
}

void BM_untracked_malloc_free(benchmark::State& state) { at_depth(call_depth, state, malloc_free_pairs); }
void BM_counters_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_sites_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_sampled_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_blocks_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_lifetimes_new_delete(benchmark::State& state) { at_depth(call_depth, state, new_delete_pairs); }
void BM_counters_map(benchmark::State& state) { at_depth(call_depth, state, map_workload); }
void BM_sampled_map(benchmark::State& state) { at_depth(call_depth, state, map_workload); }
void BM_sites_map(benchmark::State& state) { at_depth(call_depth, state, map_workload); }
void BM_counters_json(benchmark::State& state) { at_depth(call_depth, state, json_workload); }
void BM_sites_json_frame_pointers(benchmark::State& state) { at_depth(call_depth, state, json_workload); }
void BM_sites_json_hybrid(benchmark::State& state) { at_depth(call_depth, state, json_workload); }

}  // namespace

BENCHMARK(BM_untracked_malloc_free)->UseRealTime()->ThreadRange(1, 2);
BENCHMARK(BM_counters_new_delete)->Setup(counters_mode)->UseRealTime()->ThreadRange(1, 2);
BENCHMARK(BM_sites_new_delete)->Setup(sites_mode)->Teardown(counters_mode)->UseRealTime()->ThreadRange(1, 2);
BENCHMARK(BM_sampled_new_delete)->Setup(sampled_mode)->Teardown(counters_mode)->UseRealTime()->ThreadRange(1, 2);
BENCHMARK(BM_blocks_new_delete)->Setup(blocks_mode)->Teardown(counters_mode)->UseRealTime()->ThreadRange(1, 2);
BENCHMARK(BM_lifetimes_new_delete)->Setup(lifetimes_mode)->Teardown(counters_mode)->UseRealTime()->ThreadRange(1, 2);
BENCHMARK(BM_counters_map)->Setup(counters_mode)->UseRealTime();
BENCHMARK(BM_sampled_map)->Setup(sampled_mode)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_sites_map)->Setup(sites_mode)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_counters_json)->Setup(counters_mode)->UseRealTime();
BENCHMARK(BM_sites_json_frame_pointers)->Setup(sites_mode_frame_pointers)->Teardown(counters_mode)->UseRealTime();
BENCHMARK(BM_sites_json_hybrid)->Setup(sites_mode)->Teardown(counters_mode)->UseRealTime();
// Once: the table keeps its size after its live blocks are freed, so a second run would start full.
BENCHMARK(BM_live_table_bytes)->Setup(sites_mode)->Teardown(counters_mode)->Iterations(1)->Repetitions(1)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_counters_new_delete", "BM_untracked_malloc_free"},
                               {"BM_sites_new_delete", "BM_untracked_malloc_free"},
                               {"BM_sampled_new_delete", "BM_counters_new_delete"},
                               {"BM_blocks_new_delete", "BM_untracked_malloc_free"},
                               {"BM_lifetimes_new_delete", "BM_untracked_malloc_free"},
                               // What timing each block adds to per-block mode.
                               {"BM_lifetimes_new_delete", "BM_blocks_new_delete"},
                               {"BM_sampled_map", "BM_counters_map"},
                               {"BM_sites_map", "BM_counters_map"},
                               {"BM_sites_json_frame_pointers", "BM_counters_json"},
                               // The hybrid walk's cost over the frame-pointer walk it replaced.
                               {"BM_sites_json_hybrid", "BM_sites_json_frame_pointers"}});
}
