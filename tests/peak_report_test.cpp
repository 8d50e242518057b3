// The peak in snapshots and in the reports at exit: each stack's figures at the peak, the
// settings that keep the peak for MEMLENS_OUTPUT, and the folded and text reports of it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include <memlens/view/exit_report.hpp>
#include <memlens/view/html.hpp>

#include "support.hpp"
#include "tracking_support.hpp"

using memlens_test::errors_remembered;
using memlens_test::last_error;
using memlens_test::tracking_as;

namespace {

// Site A allocates three blocks from one call site (a bound the compiler cannot see keeps the
// loop from being unrolled into three sites); site B one block.
volatile int peak_report_blocks = 3;
constexpr std::size_t site_a_size = 1000;
char* site_a_blocks[3];
char* site_b_block = nullptr;

MEMLENS_TEST_NOINLINE void peak_report_site_a() {
    for (int i = 0; i < peak_report_blocks; ++i) {
        site_a_blocks[i] = new char[site_a_size];
        memlens_test::keep(site_a_blocks[i]);
    }
}

MEMLENS_TEST_NOINLINE void peak_report_site_b(std::size_t size) {
    site_b_block = new char[size];
    memlens_test::keep(site_b_block);
}

void free_sites() {
    for (char* p : site_a_blocks) delete[] p;
    delete[] site_b_block;
}

// Site B's size, large enough that its allocation raises the process peak past the next copy
// (10% above the last copy's peak, at least 64 KiB): the copy then holds A's three blocks and
// B's, exactly. Read with peak_mode::exact, so that the peak it is computed from is current.
std::size_t site_b_size() {
    const memlens::memory_stats now = memlens::stats();
    return now.peak / 5 + (now.peak - now.current) + 256 * 1024;
}

// The three blocks at A and the one at B reach the peak, then everything is freed.
MEMLENS_TEST_NOINLINE std::size_t reach_peak_then_free_all() {
    peak_report_site_a();
    const std::size_t b = site_b_size();
    peak_report_site_b(b);
    free_sites();
    return b;
}

// The site whose stack names `function` below reach_peak_then_free_all: other tests call the
// same functions from other stacks.
const memlens::site_record* site_naming(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    for (const memlens::site_record& r : s.sites) {
        bool named = false, reached = false;
        for (const memlens::frame_info& f : resolved.frames(r.stack)) {
            named = named || f.function.find(function) != std::string::npos;
            reached = reached || f.function.find("reach_peak_then_free_all") != std::string::npos;
        }
        if (named && reached) return &r;
    }
    return nullptr;
}

memlens::frame_info frame(std::uintptr_t address, const char* function) {
    memlens::frame_info f;
    f.address = address;
    f.function = function;
    f.module = "/bin/app";
    return f;
}

// main calls load and parse; load's blocks were freed before exit, parse's one block leaked.
memlens::snapshot hand_built(bool peak_kept) {
    memlens::snapshot s;
    s.run.mode = "sites";
    s.domain_names = {"process"};
    for (const auto& f : {frame(0x1000, "main"), frame(0x2000, "load()"), frame(0x3000, "parse()")}) {
        s.symbols.emplace(f.address, f);
    }
    s.stacks[1] = {0x2000, 0x1000};
    s.stacks[2] = {0x3000, 0x1000};
    s.sites = {{1, 5, 5000, 2}, {2, 1, 64, 0}};
    if (peak_kept) {
        s.peak_kept = true;
        s.peak_current = 4064;
        s.sites[0].peak_allocs = 3;
        s.sites[0].peak_bytes = 4000;
        s.sites[1].peak_allocs = 1;
        s.sites[1].peak_bytes = 64;
    }
    s.allocations = {{0x9000, 64, 0, 2, 1, 6, false}};
    return s;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The value on the line of folded `text` whose stack names `function`; -1 when none does.
long long folded_value(const std::string& text, const char* function) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.find(function) == std::string::npos) continue;
        return std::atoll(line.c_str() + line.rfind(' ') + 1);
    }
    return -1;
}

}  // namespace

TEST_CASE("take_snapshot gives each stack's figures at the peak", "[peak][sites]") {
    memlens::set_peak_mode(memlens::peak_mode::exact);
    memlens::reset_peak();
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.capture_peak = true;
    std::size_t b = 0;
    memlens::snapshot s;
    {
        tracking_as peak(c);
        b = reach_peak_then_free_all();
        s = memlens::take_snapshot();
    }
    memlens::set_peak_mode(memlens::peak_mode::batched);
    REQUIRE(s.peak_kept);
    CHECK(s.peak_current >= 3 * site_a_size + b);
    const memlens::site_record* a = site_naming(s, "peak_report_site_a");
    REQUIRE(a);
    CHECK(a->allocs == 3);
    CHECK(a->bytes == 3 * site_a_size);
    CHECK(a->peak_allocs == 3);
    CHECK(a->peak_bytes == 3 * site_a_size);
    const memlens::site_record* bs = site_naming(s, "peak_report_site_b");
    REQUIRE(bs);
    CHECK(bs->allocs == 1);
    CHECK(bs->peak_allocs == 1);
    CHECK(bs->peak_bytes == b);
    CHECK(std::is_sorted(s.sites.begin(), s.sites.end(),
                         [](const memlens::site_record& x, const memlens::site_record& y) { return x.stack < y.stack; }));
}

TEST_CASE("without a peak copy the snapshot says no peak was kept", "[peak][sites]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    tracking_as sites(c);
    peak_report_site_a();
    const memlens::snapshot s = memlens::take_snapshot();
    for (char* p : site_a_blocks) delete[] p;
    CHECK_FALSE(s.peak_kept);
    CHECK(s.peak_current == 0);
    for (const memlens::site_record& r : s.sites) {
        CHECK(r.peak_allocs == 0);
        CHECK(r.peak_bytes == 0);
    }
}

TEST_CASE("MEMLENS_OUTPUT in sites mode keeps the peak unless MEMLENS_CAPTURE_PEAK=0", "[peak][config]") {
    errors_remembered errors;
    ::setenv("MEMLENS_MODE", "sites", 1);
    ::setenv("MEMLENS_OUTPUT", "report.folded", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK(s.capture_peak);
        CHECK(s.output_kind == memlens::detail::folded_exit::peak);
    }
    ::setenv("MEMLENS_CAPTURE_PEAK", "0", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK_FALSE(s.capture_peak);
    }
    ::unsetenv("MEMLENS_CAPTURE_PEAK");
    ::setenv("MEMLENS_MODE", "sampled", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK_FALSE(s.capture_peak);
    }
    ::setenv("MEMLENS_MODE", "sites", 1);
    ::unsetenv("MEMLENS_OUTPUT");
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK_FALSE(s.capture_peak);
    }
    CHECK(last_error.empty());
    ::unsetenv("MEMLENS_MODE");
}

TEST_CASE("MEMLENS_OUTPUT_KIND names the folded exit report's stacks, with clear refusals", "[peak][config]") {
    errors_remembered errors;
    ::setenv("MEMLENS_OUTPUT_KIND", "temporaries", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK(s.output_kind == memlens::detail::folded_exit::temporaries);
    }
    ::setenv("MEMLENS_OUTPUT_KIND", "leak", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK(s.output_kind == memlens::detail::folded_exit::peak);
    }
    CHECK(last_error == "MEMLENS_OUTPUT_KIND=\"leak\" is not valid; accepted: peak, leaks, allocations, "
                        "temporaries; using peak");
    ::unsetenv("MEMLENS_OUTPUT_KIND");

    memlens::tracking_config c;
    c.output_kind = memlens::exit_kind::allocations;
    {
        tracking_as kind(c);
        CHECK(memlens::current_config().output_kind == memlens::exit_kind::allocations);
    }
    c.output_kind = static_cast<memlens::exit_kind>(7);
    CHECK_FALSE(memlens::configure(c));
    CHECK(last_error == "configure: output_kind = 7 is not an exit_kind; accepted: peak, leaks, allocations, "
                        "temporaries; the configuration is unchanged");
}

TEST_CASE("folded stacks of the peak and of the temporaries", "[peak][folded]") {
    const memlens::snapshot s = hand_built(true);
    memlens::folded_options o;
    o.source = memlens::folded_source::peak;
    CHECK(memlens::folded_stacks(s, o) == "main;load() 4000\nmain;parse() 64\n");
    o.weight = memlens::folded_weight::count;
    CHECK(memlens::folded_stacks(s, o) == "main;load() 3\nmain;parse() 1\n");
    o.source = memlens::folded_source::temporaries;
    o.weight = memlens::folded_weight::bytes;
    CHECK(memlens::folded_stacks(s, o) == "main;load() 2\n");
    o.source = memlens::folded_source::peak;
    CHECK(memlens::folded_stacks(hand_built(false), o).empty());
}

TEST_CASE("the folded exit report holds the kind asked for, else the leaks with a word why", "[peak][folded][exit]") {
    errors_remembered errors;
    using memlens::detail::folded_exit;
    CHECK(memlens::detail::exit_folded(hand_built(true), folded_exit::peak) == "main;load() 4000\nmain;parse() 64\n");
    CHECK(memlens::detail::exit_folded(hand_built(true), folded_exit::leaks) == "main;parse() 64\n");
    CHECK(memlens::detail::exit_folded(hand_built(true), folded_exit::allocations) ==
          "main;load() 5000\nmain;parse() 64\n");
    CHECK(memlens::detail::exit_folded(hand_built(true), folded_exit::temporaries) == "main;load() 2\n");
    CHECK(last_error.empty());
    CHECK(memlens::detail::exit_folded(hand_built(false), folded_exit::peak) == "main;parse() 64\n");
    CHECK(last_error == "no copy of the live table was kept at the peak (it is kept in sites mode unless "
                        "MEMLENS_CAPTURE_PEAK=0), so the .folded exit report holds what is still alive at exit");
}

TEST_CASE("the text exit report lists the peak's sites before the leaks", "[peak][text][exit]") {
    const std::string text = memlens::detail::exit_text(hand_built(true), true);
    CAPTURE(text);
    const std::size_t peak = text.find("memlens: at the peak (4,064 bytes (3.97 KiB) live, every domain), "
                                       "4 allocations, 4,064 bytes (3.97 KiB) recorded, from 2 sites\n"
                                       "  3 allocations, 4,000 bytes (3.91 KiB), from:\n"
                                       "    #0 load()");
    const std::size_t second = text.find("  1 allocation, 64 bytes, from:\n    #0 parse()");
    const std::size_t leaks = text.find("memlens: 1 allocation still alive, 64 bytes");
    REQUIRE(peak != std::string::npos);
    REQUIRE(second != std::string::npos);
    REQUIRE(leaks != std::string::npos);
    CHECK(peak < second);
    CHECK(second < leaks);

    const std::string without = memlens::detail::exit_text(hand_built(false), true);
    CHECK(without.find("at the peak") == std::string::npos);
    CHECK(without.rfind("memlens: 1 allocation still alive", 0) == 0);
}

TEST_CASE("a program run with MEMLENS_OUTPUT=*.folded writes the peak's stacks", "[peak][folded][exit]") {
    memlens_test::temporary_directory dir;
    const std::string path = dir / "exit.folded";
    // Written by the child before it exits, read here: B's size depends on the child's figures.
    const std::string size_path = dir / "b-size";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        memlens::set_peak_mode(memlens::peak_mode::exact);
        memlens::reset_peak();
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        c.capture_peak = true;
        c.output = path;
        if (!memlens::configure(c)) ::_exit(2);
        const std::size_t b = reach_peak_then_free_all();
        std::ofstream(size_path) << b;
        std::exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const std::string text = read_file(path);
    const long long b = std::atoll(read_file(size_path).c_str());
    CAPTURE(text);
    CHECK(folded_value(text, "peak_report_site_a") == static_cast<long long>(3 * site_a_size));
    CHECK(folded_value(text, "peak_report_site_b") == b);
}

TEST_CASE("the HTML report carries one weight column per flamegraph kind over the same stacks", "[peak][html]") {
    const std::string page = memlens::detail::html_document(hand_built(true), {});
    CHECK(page.find("\"peak\":{\"kept\":true,\"current\":4064,\"bytes\":4064,\"count\":4}") != std::string::npos);
    CHECK(page.find("\"weights\":{\"live\":{\"bytes\":[0,64],\"count\":[0,1]},"
                    "\"peak\":{\"bytes\":[4000,64],\"count\":[3,1]},"
                    "\"allocated\":{\"bytes\":[5000,64],\"count\":[5,1]},"
                    "\"temporaries\":{\"count\":[2,0]}}") != std::string::npos);
    CHECK(page.find("\"peak_stacks\":[{\"site\":\"load() (app+0x0)\",\"bytes\":4000,\"count\":3,") != std::string::npos);
    CHECK(page.find("\"temporaries\":[{\"site\":\"load() (app+0x0)\",\"temporaries\":2,") != std::string::npos);

    const std::string without = memlens::detail::html_document(hand_built(false), {});
    CHECK(without.find("\"peak\":{\"kept\":false,\"current\":0,\"bytes\":0,\"count\":0}") != std::string::npos);
    CHECK(without.find("\"peak\":null,") != std::string::npos);
    CHECK(without.find("\"peak_stacks\":[],\"peak_stack_count\":0") != std::string::npos);
}

// For the next test, in a process of its own that reads its settings from the environment:
// reaches the peak, frees everything and leaves B's size where it is asked to. A tag filter
// selects hidden cases too (meson runs each file's cases by tag): without the variable that
// the next test sets, there is nothing to do.
TEST_CASE("peak report child reaches the peak and frees everything", "[.peak-child]") {
    const char* size_path = std::getenv("PEAK_REPORT_TEST_SIZE_FILE");
    if (!size_path) return;
    memlens::set_peak_mode(memlens::peak_mode::exact);
    const std::size_t b = reach_peak_then_free_all();
    std::ofstream(size_path) << b;
}

TEST_CASE("MEMLENS_MODE=sites MEMLENS_OUTPUT=*.folded keeps the peak and writes its stacks", "[peak][folded][exit]") {
    memlens_test::temporary_directory dir;
    const std::string path = dir / "exit.folded";
    const std::string size_path = dir / "b-size";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::setenv("MEMLENS_MODE", "sites", 1);
        ::setenv("MEMLENS_OUTPUT", path.c_str(), 1);
        ::unsetenv("MEMLENS_CAPTURE_PEAK");
        ::unsetenv("MEMLENS_OUTPUT_KIND");
        ::setenv("PEAK_REPORT_TEST_SIZE_FILE", size_path.c_str(), 1);
        if (!std::freopen("/dev/null", "w", stdout)) ::_exit(3);
        ::execl("/proc/self/exe", "memlens_tests", "peak report child reaches the peak and frees everything",
                static_cast<char*>(nullptr));
        ::_exit(4);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    const std::string text = read_file(path);
    const long long b = std::atoll(read_file(size_path).c_str());
    CAPTURE(text);
    REQUIRE(b > 0);
    CHECK(folded_value(text, "peak_report_site_a") == static_cast<long long>(3 * site_a_size));
    CHECK(folded_value(text, "peak_report_site_b") == b);
}
