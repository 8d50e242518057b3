// bench/json_bench.cpp: what writing and reading a snapshot file costs, on a large snapshot built
// by hand: 100k sites with 8-frame stacks over 50k symbolized addresses, and 1M live allocations.
// The goal is under a second for each direction.
#include <memlens/view/json.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <utility>

#include "ratio_reporter.hpp"

namespace {

constexpr std::uint32_t site_count = 100'000;
constexpr std::uint32_t address_count = 50'000;
constexpr std::uint32_t frames_per_stack = 8;
constexpr std::uint32_t allocation_count = 1'000'000;

// A fixed pseudo-random sequence, so that every run measures the same snapshot.
std::uint64_t next(std::uint64_t& state) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

memlens::snapshot large_snapshot() {
    memlens::snapshot s;
    std::uint64_t state = 0x5eed;
    const std::uintptr_t base = 0x55d1c0de0000;
    const char* const modules[] = {"/usr/bin/server", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
                                   "/usr/lib/x86_64-linux-gnu/libc.so.6", "/opt/app/lib/libindex.so"};
    for (std::uint32_t i = 0; i < address_count; ++i) {
        memlens::frame_info f;
        f.address = base + 16 * i;
        f.function = "app::subsystem_" + std::to_string(i % 97) + "::handler_" + std::to_string(i) +
                     "(std::string_view, int)";
        f.file = "src/subsystem_" + std::to_string(i % 97) + "/handler.cpp";
        f.line = 10 + i % 900;
        f.module = modules[i % 4];
        f.offset = 16 * i;
        s.symbols.emplace(f.address, std::move(f));
    }
    for (std::uint32_t id = 1; id <= site_count; ++id) {
        std::vector<std::uintptr_t>& frames = s.stacks[id];
        for (std::uint32_t f = 0; f < frames_per_stack; ++f) {
            frames.push_back(base + 16 * (next(state) % address_count));
        }
        s.sites.push_back({id, 1 + next(state) % 1000, 64 + next(state) % 100000, next(state) % 10});
    }
    s.allocations.reserve(allocation_count);
    for (std::uint32_t i = 0; i < allocation_count; ++i) {
        s.allocations.push_back({0x7f0000000000 + 64 * std::uintptr_t{i}, 16 + next(state) % 4096, 2,
                                 1 + static_cast<std::uint32_t>(next(state) % site_count),
                                 1 + i % 8, i, false});
    }
    s.domain_names = {"process", "untracked", "heap"};
    s.domains = {{"process", {1, 2, 3, 4, 5}}, {"heap", {1, 2, 3, 4, 5}}};
    s.run = {1700000000000, 1234, "./server --port 8080", "g++ 12, C++17, optimized", "sites"};
    return s;
}

const memlens::snapshot& shared_snapshot() {
    static const memlens::snapshot s = large_snapshot();
    return s;
}

// to_json takes its snapshot by value: the copy is left out of the time, as a caller that
// passes an rvalue pays none.
void BM_write_json(benchmark::State& state) {
    std::size_t bytes = 0;
    for (auto _ : state) {
        state.PauseTiming();
        memlens::snapshot copy = shared_snapshot();
        state.ResumeTiming();
        const std::string text = memlens::to_json(std::move(copy));
        bytes = text.size();
        benchmark::DoNotOptimize(text.data());
    }
    state.counters["file_MiB"] = static_cast<double>(bytes) / (1 << 20);
}

void BM_read_json(benchmark::State& state) {
    const std::string text = memlens::to_json(shared_snapshot());
    for (auto _ : state) {
        const memlens::snapshot s = memlens::from_json(text);
        benchmark::DoNotOptimize(s.allocations.data());
    }
    state.counters["file_MiB"] = static_cast<double>(text.size()) / (1 << 20);
}

}  // namespace

BENCHMARK(BM_write_json)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_read_json)->Unit(benchmark::kMillisecond)->Iterations(3);

int main(int argc, char** argv) { return memlens_bench::run(argc, argv, {}, "snapshot file"); }
