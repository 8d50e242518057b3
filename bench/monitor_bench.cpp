// bench/monitor_bench.cpp: what the process monitor costs. One sample of the cheap figures (status,
// stat, the fd count, memlens's counters, into the ring) and each reader alone, with 64 MiB and
// with 1 GiB of touched memory; smaps_rollup, the full smaps breakdown and mallinfo2, which are
// not on the monitor's timer by default; a named scope's pass with and without a monitor taking
// its marks (the ratio table); and, after the benchmarks, the monitor thread's CPU share at its
// default 1 s interval, read from the thread's own CPU time in /proc/self/task/<tid>/schedstat
// (MEMLENS_BENCH_MONITOR_SECONDS, default 5, sets how long).
#include <memlens/monitor/monitor.hpp>
#include <memlens/observe/process.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

// The process holds `mib` MiB of touched anonymous memory (kept across benchmarks of one size).
void hold_resident(std::size_t mib) {
    static void* region = nullptr;
    static std::size_t held = 0;
    if (held == mib) return;
    if (region) ::munmap(region, held << 20);
    region = ::mmap(nullptr, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) std::abort();
    std::memset(region, 1, mib << 20);
    held = mib;
}

void BM_monitor_sample(benchmark::State& state) {
    hold_resident(static_cast<std::size_t>(state.range(0)));
    memlens::monitor_config c;
    c.interval = std::chrono::hours(1);  // the thread's first sample only; the loop takes the rest
    memlens::monitor m(c);
    for (auto _ : state) m.sample_now();
    memlens::process_figures f;
    memlens::read_status(f);
    state.counters["rss_mib"] = static_cast<double>(f.rss_bytes >> 20);
}

void BM_read_status(benchmark::State& state) {
    hold_resident(static_cast<std::size_t>(state.range(0)));
    memlens::process_figures f;
    for (auto _ : state) benchmark::DoNotOptimize(memlens::read_status(f));
}

void BM_read_stat(benchmark::State& state) {
    hold_resident(static_cast<std::size_t>(state.range(0)));
    memlens::process_figures f;
    for (auto _ : state) benchmark::DoNotOptimize(memlens::read_stat(f));
}

void BM_count_open_fds(benchmark::State& state) {
    memlens::process_figures f;
    for (auto _ : state) benchmark::DoNotOptimize(memlens::count_open_fds(f));
    state.counters["fds"] = f.open_fds;
}

void BM_read_smaps_rollup(benchmark::State& state) {
    hold_resident(static_cast<std::size_t>(state.range(0)));
    memlens::process_figures f;
    for (auto _ : state) benchmark::DoNotOptimize(memlens::read_smaps_rollup(f));
}

void BM_read_mappings(benchmark::State& state) {
    hold_resident(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(memlens::read_mappings());
}

// mallinfo2 walks the free lists: with `range(0)` free chunks kept apart by live ones.
void BM_mallinfo2(benchmark::State& state) {
    std::vector<void*> blocks(static_cast<std::size_t>(state.range(0)) * 2);
    for (void*& b : blocks) b = std::malloc(256);
    for (std::size_t i = 0; i < blocks.size(); i += 2) std::free(blocks[i]);
    for (auto _ : state) benchmark::DoNotOptimize(memlens::read_allocator_figures());
    for (std::size_t i = 1; i < blocks.size(); i += 2) std::free(blocks[i]);
}

__attribute__((noinline)) void scoped_pass() {
    MEMLENS_SCOPE("bench-scope");
    benchmark::ClobberMemory();
}

void BM_named_scope(benchmark::State& state) {
    for (auto _ : state) scoped_pass();
}

// The same pass while a monitor wants marks: each enter and leave writes one.
void BM_named_scope_monitored(benchmark::State& state) {
    memlens::monitor_config c;
    c.interval = std::chrono::milliseconds(10);
    memlens::monitor m(c);
    for (auto _ : state) scoped_pass();
}

BENCHMARK(BM_monitor_sample)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_status)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_stat)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_count_open_fds)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_smaps_rollup)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_read_mappings)->Arg(64)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_mallinfo2)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_named_scope);
BENCHMARK(BM_named_scope_monitored);

// CPU time of the thread named `name`, in ns (schedstat's first field); -1 when not found.
long long thread_cpu_ns(const char* name) {
    DIR* tasks = ::opendir("/proc/self/task");
    if (!tasks) return -1;
    long long out = -1;
    while (dirent* e = ::readdir(tasks)) {
        if (e->d_name[0] == '.') continue;
        const std::string base = std::string("/proc/self/task/") + e->d_name;
        char comm[32] = {};
        if (std::FILE* f = std::fopen((base + "/comm").c_str(), "r")) {
            if (!std::fgets(comm, sizeof comm, f)) comm[0] = '\0';
            std::fclose(f);
        }
        comm[std::strcspn(comm, "\n")] = '\0';
        if (std::strcmp(comm, name) != 0) continue;
        if (std::FILE* f = std::fopen((base + "/schedstat").c_str(), "r")) {
            if (std::fscanf(f, "%lld", &out) != 1) out = -1;
            std::fclose(f);
        }
    }
    ::closedir(tasks);
    return out;
}

// The monitor thread at its default interval, with 1 GiB resident, for a few seconds.
void report_thread_share() {
    const char* env = std::getenv("MEMLENS_BENCH_MONITOR_SECONDS");
    const int seconds = env ? std::atoi(env) : 5;
    if (seconds <= 0) return;
    hold_resident(1024);
    memlens::monitor m;  // 1 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const long long start = thread_cpu_ns("memlens-monitor");
    const auto wall_start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    const long long end = thread_cpu_ns("memlens-monitor");
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    const std::uint64_t samples = m.samples_taken();
    m.stop();
    if (start < 0 || end < 0) {
        std::printf("\nmonitor thread: not found in /proc/self/task\n");
        return;
    }
    const double cpu = static_cast<double>(end - start) / 1e9;
    std::printf("\nmonitor thread at a 1 s interval, 1 GiB resident, %.1f s: %.3f ms of CPU over %llu "
                "samples in all (%.1f us a second), %.4f%% of one core\n",
                wall, cpu * 1e3, static_cast<unsigned long long>(samples), cpu * 1e6 / wall,
                100.0 * cpu / wall);
}

}  // namespace

int main(int argc, char** argv) {
    const int status = memlens_bench::run(argc, argv, {{"BM_named_scope_monitored", "BM_named_scope"}},
                                          "named scope pass");
    report_thread_share();
    return status;
}
