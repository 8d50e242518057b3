// bench/html_bench.cpp: what writing the HTML report costs for a large profile: a snapshot with
// 100,000 sites and 1,000,000 live allocations, built by hand with its symbols filled in, written
// to a file (write_html) and built in memory (to_html, which copies the snapshot it is given).
#include <memlens/view/html.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include <unistd.h>

#include "../tests/html/synthetic_snapshot.hpp"
#include "ratio_reporter.hpp"

namespace {

const memlens::snapshot& large_snapshot() {
    static const memlens::snapshot s = memlens_test::synthetic_snapshot(100'000, 1'000'000);
    return s;
}

void BM_write_html_100k_sites(benchmark::State& state) {
    const memlens::snapshot& s = large_snapshot();
    const std::string path = "memlens_html_bench." + std::to_string(::getpid()) + ".html";
    for (auto _ : state) memlens::write_html(s, path);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f) {
        std::fseek(f, 0, SEEK_END);
        state.counters["report_bytes"] = static_cast<double>(std::ftell(f));
        std::fclose(f);
    }
    std::remove(path.c_str());
}

void BM_to_html_100k_sites(benchmark::State& state) {
    const memlens::snapshot& s = large_snapshot();
    for (auto _ : state) {
        std::string text = memlens::to_html(s);
        benchmark::DoNotOptimize(text);
    }
}

}  // namespace

BENCHMARK(BM_write_html_100k_sites)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_to_html_100k_sites)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
    // No untracked baseline to compare with: the figure itself is the result (under 1 s).
    return memlens_bench::run(argc, argv, {}, "report");
}
