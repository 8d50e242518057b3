// bench/ratio_reporter.hpp: a console reporter that also prints what each tracked benchmark
// costs per allocate+free pair next to the untracked baseline measured in the same run, as a
// difference in ns and a ratio. Absolute figures move from machine to machine and run to run;
// the ratio to a baseline measured in the same process on the same machine is what compares.
//
// On a busy machine, --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
// steadies the table: the median of each benchmark is used, and interleaving spreads a burst of
// load over the tracked runs and their baselines alike.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <unistd.h>

namespace memlens_bench {

/// Benchmarks whose function name is `tracked` are compared with the run of `baseline` that
/// has the same arguments and thread count, e.g. "BM_tracked_new/64/real_time/threads:2" with
/// "BM_untracked_malloc_free/64/real_time/threads:2".
struct pairing {
    std::string tracked;
    std::string baseline;
};

/// A benchmark that does more than one allocate+free pair per iteration says how many in this
/// counter (flags benchmark::Counter::kAvgThreads, so that threads do not add theirs up).
constexpr const char* pairs_counter = "pairs";

class ratio_reporter : public benchmark::ConsoleReporter {
public:
    ratio_reporter(std::vector<pairing> pairs, OutputOptions options,
                   std::string unit = "allocate+free pair")
        : ConsoleReporter(options), pairs_(std::move(pairs)), unit_(std::move(unit)) {}

    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if (run.error_occurred || (run.run_type != Run::RT_Iteration && !median)) continue;
            measured& m = measured_[run.run_name.str()];
            // The median of repetitions, once there is one, stands for all of them.
            if (m.median && !median) continue;
            m = {run.run_name, run.family_index, run.per_family_instance_index, ns_per_pair(run),
                 median};
        }
    }

    void Finalize() override {
        std::vector<const measured*> tracked;
        for (const auto& entry : measured_) {
            if (baseline_of(entry.second.name.function_name)) tracked.push_back(&entry.second);
        }
        if (tracked.empty()) return;
        // In the order the benchmarks were registered, whatever order they ran in.
        std::sort(tracked.begin(), tracked.end(), [](const measured* a, const measured* b) {
            return std::tie(a->family, a->instance) < std::tie(b->family, b->instance);
        });

        std::vector<row> rows;
        for (const measured* t : tracked) {
            benchmark::BenchmarkName baseline_name = t->name;
            baseline_name.function_name = *baseline_of(t->name.function_name);
            const auto base = measured_.find(baseline_name.str());
            if (base == measured_.end()) {
                rows.push_back({t->name.str(), number(t->ns), "-", "-", "-"});
                continue;
            }
            const double b = base->second.ns;
            rows.push_back({t->name.str(), number(t->ns), number(b), number(t->ns - b),
                            b > 0 ? number(t->ns / b) + "x" : "-"});
        }

        std::size_t width = 0;
        for (const row& r : rows) width = std::max(width, r.name.size());
        std::ostream& out = GetOutputStream();
        out << "\nmemlens cost per " << unit_
            << " (ns of real time each, as the thread doing it sees it)\n";
        print(out, width, {"benchmark", "ns", "baseline", "+ns", "ratio"});
        for (const row& r : rows) print(out, width, r);
        out.flush();
    }

private:
    struct measured {
        benchmark::BenchmarkName name;
        std::int64_t family = 0;
        std::int64_t instance = 0;
        double ns = 0;
        bool median = false;
    };

    struct row {
        std::string name, ns, baseline, delta, ratio;
    };

    // Google Benchmark divides the wall time by the iterations of all threads together, which
    // is a throughput; times the thread count it is what one pair cost the thread that did it,
    // so one-thread and two-thread rows read alike and contention shows as a larger figure.
    static double ns_per_pair(const Run& run) {
        double ns = run.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
        ns *= static_cast<double>(run.threads);
        const auto pairs = run.counters.find(pairs_counter);
        if (pairs != run.counters.end() && pairs->second.value > 0) ns /= pairs->second.value;
        return ns;
    }

    const std::string* baseline_of(const std::string& function) const {
        for (const pairing& p : pairs_) {
            if (p.tracked == function) return &p.baseline;
        }
        return nullptr;
    }

    static std::string number(double value) {
        char text[32];
        std::snprintf(text, sizeof text, "%.2f", value);
        return text;
    }

    static void print(std::ostream& out, std::size_t width, const row& r) {
        char figures[64];
        std::snprintf(figures, sizeof figures, " %10s %10s %10s %8s\n", r.ns.c_str(),
                      r.baseline.c_str(), r.delta.c_str(), r.ratio.c_str());
        out << r.name << std::string(width > r.name.size() ? width - r.name.size() : 0, ' ')
            << figures;
    }

    std::vector<pairing> pairs_;
    std::string unit_;
    std::map<std::string, measured> measured_;
};

/// The whole main of a benchmark program: flags, the runs, and the ratio table at the end.
/// The table needs this reporter on the console, so --benchmark_format is not honoured; use
/// --benchmark_out with --benchmark_out_format for JSON or CSV. `unit` names what one
/// iteration (or one count of the "pairs" counter) does.
inline int run(int argc, char** argv, std::vector<pairing> pairs,
               std::string unit = "allocate+free pair") {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    // Like the stock console reporter's default: escape codes only for a terminal.
    const auto options = ::isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                 : benchmark::ConsoleReporter::OO_Tabular;
    ratio_reporter reporter(std::move(pairs), options, std::move(unit));
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}

}  // namespace memlens_bench
