// tests/html/make_reports.cpp: writes the HTML reports that check_report.mjs opens in Chromium:
// one from a real run in sites mode that keeps the peak, whose live blocks and peak come from
// known functions and whose timeline has labelled points, and one built by hand with 100,000
// sites. Beside each report,
// <name>.figures.json holds figures the page must show, computed from the snapshot by other
// means than the report's own code (statistics(), recommend(), sums over the allocations).
//
//   make_reports <run report.html> <100k-site report.html>
#include <memlens/hooks.hpp>

#include <memlens/detail/files.hpp>
#include <memlens/detail/json_text.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/track.hpp>
#include <memlens/view/analysis.hpp>
#include <memlens/view/html.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
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

// "run.html" -> "run.figures.json", in the same directory.
std::string figures_path(const std::string& report) {
    const std::string extension = ".html";
    const bool html = report.size() > extension.size() &&
                      report.compare(report.size() - extension.size(), extension.size(), extension) == 0;
    return (html ? report.substr(0, report.size() - extension.size()) : report) + ".figures.json";
}

// Every allocation here is exact (no sampling), so the sums are whole numbers of bytes.
void write_figures(const memlens::snapshot& s, const std::string& report) {
    using memlens::detail::append_json_string;
    using memlens::detail::append_json_uint;
    std::uint64_t live_bytes = 0, live_count = 0;
    for (const memlens::live_allocation& a : s.allocations) {
        live_bytes += a.size;
        live_count += a.count;
    }
    const std::vector<memlens::statistic> sites = memlens::statistics(s, memlens::group_by::site);
    if (sites.empty()) throw std::runtime_error("the snapshot for " + report + " has no live allocation");

    std::string out = "{\"live_bytes\":";
    append_json_uint(out, live_bytes);
    out += ",\"live_count\":";
    append_json_uint(out, live_count);
    out += ",\"allocations\":";
    append_json_uint(out, s.totals.allocs);
    out += ",\"peak\":";
    append_json_uint(out, s.totals.peak);
    std::uint64_t peak_bytes = 0;
    for (const memlens::site_record& r : s.sites) peak_bytes += r.peak_bytes;
    out += ",\"peak_kept\":";
    out += s.peak_kept ? "true" : "false";
    out += ",\"peak_bytes\":";
    append_json_uint(out, peak_bytes);
    out += ",\"top_site\":{\"name\":";
    append_json_string(out, sites.front().key);
    out += ",\"bytes\":";
    append_json_uint(out, sites.front().bytes);
    out += ",\"count\":";
    append_json_uint(out, sites.front().count);
    out += "},\"recommendations\":[";
    const std::vector<memlens::recommendation> advice = memlens::recommend(s);
    for (std::size_t i = 0; i < advice.size(); ++i) {
        if (i) out += ',';
        out += "{\"rule\":";
        append_json_string(out, memlens::rule_name(advice[i].rule));
        out += ",\"figure\":";
        append_json_string(out, advice[i].figure);
        out += '}';
    }
    out += "]}\n";
    std::string error;
    if (!memlens::detail::write_output_file(figures_path(report), out, error)) {
        throw std::runtime_error("cannot write the expected figures: " + error);
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
        config.capture_peak = true;
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
        write_figures(run, argv[1]);

        const auto before = std::chrono::steady_clock::now();
        const memlens::snapshot synthetic = memlens_test::synthetic_snapshot(100'000, 300'000);
        memlens::write_html(synthetic, argv[2], {"memlens report: 100,000 synthetic sites", 200});
        const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - before;
        write_figures(synthetic, argv[2]);
        std::printf("wrote %s and %s (the 100k-site one in %.0f ms, building the snapshot included)\n",
                    argv[1], argv[2], took.count());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_reports: %s\n", e.what());
        return 1;
    }
    return 0;
}
