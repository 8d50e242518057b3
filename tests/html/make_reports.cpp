// tests/html/make_reports.cpp: writes the HTML reports that check_report.mjs opens in Chromium:
// one from a real run in sites mode, whose live blocks come from known functions and whose
// timeline has labelled points, and one built by hand with 100,000 sites.
//
//   make_reports <run report.html> <100k-site report.html>
#include <memlens/sources/new.hpp>

#include <memlens/observe/sites.hpp>
#include <memlens/track.hpp>
#include <memlens/view/html.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "synthetic_snapshot.hpp"

namespace {

std::vector<std::unique_ptr<char[]>> kept;
std::vector<memlens::timeline_point> timeline;
const auto started = std::chrono::steady_clock::now();

void mark(const char* label) {
    const memlens::memory_stats now = memlens::stats();
    const std::chrono::duration<double> since = std::chrono::steady_clock::now() - started;
    timeline.push_back({since.count(), now.current, now.peak, label});
}

// The names check_report.mjs expects in the flamegraph: these hold the live bytes.
__attribute__((noinline)) void load_documents() {
    MEMLENS_SCOPE("load");
    for (int i = 0; i < 200; ++i) kept.emplace_back(new char[4096]);
}

__attribute__((noinline)) void build_index() {
    MEMLENS_SCOPE("index");
    for (int i = 0; i < 100; ++i) kept.emplace_back(new char[1024]);
    // A scratch buffer far larger than what the pass keeps: the scope's peak.
    std::vector<char> scratch(1 << 20, 'x');
    asm volatile("" : : "r"(scratch.data()) : "memory");
}

// Thousands of small blocks freed at once: temporaries at one site.
__attribute__((noinline)) void churn_small_strings() {
    MEMLENS_SCOPE("churn");
    for (int i = 0; i < 5000; ++i) {
        std::unique_ptr<char[]> p(new char[32]);
        asm volatile("" : : "r"(p.get()) : "memory");
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <run report.html> <100k-site report.html>\n", argv[0]);
        return 2;
    }
    try {
        memlens::tracking_config config;
        config.mode = memlens::tracking_mode::sites;
        if (!memlens::configure(config)) return 1;
        kept.reserve(1000);
        mark("start");
        load_documents();
        mark("loaded");
        build_index();
        mark("indexed");
        churn_small_strings();
        mark("churned");
        memlens::snapshot run = memlens::take_snapshot();
        run.timeline = timeline;
        memlens::write_html(run, argv[1], {"memlens report: make_reports run", 200});

        const auto before = std::chrono::steady_clock::now();
        memlens::write_html(memlens_test::synthetic_snapshot(100'000, 300'000), argv[2],
                            {"memlens report: 100,000 synthetic sites", 200});
        const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - before;
        std::printf("wrote %s and %s (the 100k-site one in %.0f ms, building the snapshot included)\n",
                    argv[1], argv[2], took.count());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_reports: %s\n", e.what());
        return 1;
    }
    return 0;
}
