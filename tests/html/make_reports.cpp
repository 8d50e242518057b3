// tests/html/make_reports.cpp: writes the HTML reports that check_report.mjs opens in Chromium:
// one from a real run in sites mode that keeps the peak, whose live blocks and peak come from
// known functions and whose timeline has labelled points, one built by hand with 100,000
// sites, and one of a program state with every leak kind, classified by classify_leaks(), with
// a block that a rule set in code suppresses. Beside each report,
// <name>.figures.json holds figures the page must show, computed from the snapshot by other
// means than the report's own code (statistics(), recommend(), sums over the allocations).
//
//   make_reports <run report.html> <100k-site report.html> [<leak-kinds report.html>]
#include <memlens/hooks.hpp>

#include <memlens/detail/files.hpp>
#include <memlens/detail/json_text.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/testing/checks.hpp>
#include <memlens/track.hpp>
#include <memlens/view/analysis.hpp>
#include <memlens/view/html.hpp>
#include <memlens/view/leak_kinds.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
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

// The leak-kinds state: a dropped list head (definitely lost, its two other nodes indirectly
// lost), a block held through its middle (possibly lost), a table held by a global whose word
// at offset 16 holds a leaf (still reachable), and a cache block held by a global that a rule
// suppresses.
void write_figures(const memlens::snapshot& s, const std::string& report, const std::string& more = "");

struct kinds_node {
    kinds_node* next;
    long payload[5];
};
char* volatile kinds_table = nullptr;
char* volatile kinds_interior = nullptr;
char* volatile kinds_cache = nullptr;
std::uintptr_t kinds_dropped = 0;  // scrambled, so that no word holds the head

__attribute__((noinline)) void kinds_dropped_list() {
    kinds_node* head = nullptr;
    for (int i = 0; i < 3; ++i) {
        head = new kinds_node{head, {}};
        memlens::keep_observable(head);  // the compiler may not drop what it sees never read
    }
    kinds_dropped = reinterpret_cast<std::uintptr_t>(head) ^ 0x5a5a5a5a5a5a5a5aull;
}

__attribute__((noinline)) void kinds_interior_block() { kinds_interior = new char[80] + 16; }

__attribute__((noinline)) char* kinds_leaf_block() { return new char[1 << 19](); }

__attribute__((noinline)) void kinds_global_table() {
    char* table = new char[1 << 20]();
    char* leaf = kinds_leaf_block();
    std::memcpy(table + 16, &leaf, sizeof leaf);
    kinds_table = table;
}

__attribute__((noinline)) void kinds_cache_block() { kinds_cache = new char[4000](); }

// The kinds report's expected figures: the scan's own totals (not the snapshot's rows), what
// leaks() lists as suppressed, and the snapshot's longest back-reference chain.
std::string kinds_figures(const memlens::snapshot& s, const memlens::leak_kinds& r) {
    using memlens::detail::append_json_string;
    using memlens::detail::append_json_uint;
    std::string out = ",\"leak_kinds\":{\"summary\":[";
    const memlens::leak_kind order[] = {memlens::leak_kind::definitely_lost, memlens::leak_kind::indirectly_lost,
                                        memlens::leak_kind::possibly_lost, memlens::leak_kind::still_reachable};
    for (std::size_t k = 0; k < 4; ++k) {
        if (k) out += ',';
        out += "{\"kind\":";
        append_json_string(out, memlens::leak_kind_name(order[k]));
        out += ",\"bytes\":";
        append_json_uint(out, r[order[k]].bytes);
        out += ",\"blocks\":";
        append_json_uint(out, r[order[k]].blocks);
        out += '}';
    }
    out += "],\"suppressed\":[";
    const memlens::leak_report leaks = memlens::leaks(s);
    for (std::size_t i = 0; i < leaks.suppressed.size(); ++i) {
        if (i) out += ',';
        out += "{\"rule\":";
        append_json_string(out, leaks.suppressed[i].suppressed_by);
        out += ",\"bytes\":";
        append_json_uint(out, leaks.suppressed[i].bytes);
        out += ",\"blocks\":";
        append_json_uint(out, leaks.suppressed[i].count);
        out += '}';
    }
    // The longest chain: the leaf's, through the table, to the global.
    std::vector<std::size_t> length(s.backref_chains.size());
    for (const memlens::backref_link& l : s.backref_links) ++length.at(l.chain);
    if (length.empty()) throw std::runtime_error("the leak-kinds snapshot has no back-reference chain");
    const auto longest = static_cast<std::uint32_t>(std::max_element(length.begin(), length.end()) - length.begin());
    out += "],\"chain\":{\"root\":";
    append_json_string(out, s.backref_chains[longest].root);
    out += ",\"links\":[";
    bool first = true;
    for (const memlens::backref_link& l : s.backref_links) {
        if (l.chain != longest) continue;
        if (!first) out += ',';
        first = false;
        out += "{\"address\":";
        append_json_string(out, memlens::detail::hex_address(l.address));
        out += ",\"size\":";
        append_json_uint(out, l.size);
        out += ",\"offset\":";
        append_json_uint(out, l.offset);
        out += '}';
    }
    out += "]}}";
    return out;
}

void write_kinds_report(const std::string& path) {
    memlens::tracking_config config = memlens::current_config();
    config.blocks = true;
    if (!memlens::configure(config)) throw std::runtime_error("per-block mode could not be turned on");
    memlens::set_suppressions(memlens::suppressions::parse("leak:kinds_cache_block\n", "(in code)"));
    kinds_dropped_list();
    kinds_interior_block();
    kinds_global_table();
    kinds_cache_block();
    const memlens::leak_kinds r = memlens::classify_leaks();
    memlens::snapshot s = memlens::take_snapshot();
    memlens::set_leak_kinds(s, r, 4);
    memlens::write_html(s, path, {"memlens report: leak kinds", 200});
    write_figures(s, path, kinds_figures(s, r));
}

// "run.html" -> "run.figures.json", in the same directory.
std::string figures_path(const std::string& report) {
    const std::string extension = ".html";
    const bool html = report.size() > extension.size() &&
                      report.compare(report.size() - extension.size(), extension.size(), extension) == 0;
    return (html ? report.substr(0, report.size() - extension.size()) : report) + ".figures.json";
}

// Every allocation here is exact (no sampling), so the sums are whole numbers of bytes.
// `more` holds further members of the figures object, each after a comma.
void write_figures(const memlens::snapshot& s, const std::string& report, const std::string& more) {
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
    out += ']';
    out += more;
    out += "}\n";
    std::string error;
    if (!memlens::detail::write_output_file(figures_path(report), out, error)) {
        throw std::runtime_error("cannot write the expected figures: " + error);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: %s <run report.html> <100k-site report.html> [<leak-kinds report.html>]\n",
                     argv[0]);
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
        // Before the synthetic snapshot, whose building would become the peak it shows.
        if (argc == 4) write_kinds_report(argv[3]);

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
