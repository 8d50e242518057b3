// The process monitor: the /proc parsers on files recorded from a real kernel (tests/monitor/proc,
// written by record.py there) and on cut or incomplete copies of them, the live readers against
// what the test does to the process, the monitor thread's ring, marks and alert rules, and the
// timeline's CSV and JSON.
#include <memlens/monitor/monitor.hpp>
#include <memlens/sources/record.hpp>
#include <memlens/testing/checks.hpp>
#include <memlens/view/html.hpp>
#include <memlens/view/json.hpp>
#include <memlens/view/timeline.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <malloc.h>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "support.hpp"
#include "tracking_support.hpp"

namespace {

constexpr std::uint64_t kib = 1024;
constexpr std::uint64_t mib = 1024 * 1024;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

// The recorded files live in tests/monitor/proc beside this file: the tests are compiled from
// the source tree, so __FILE__ names it.
std::string proc_path(const char* name) {
    std::string path = __FILE__;
    path.erase(path.find_last_of('/') + 1);
    return path + "monitor/proc/" + name;
}

std::string recorded(const char* name) {
    const std::string path = proc_path(name);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    std::string text;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
    std::fclose(f);
    return text;
}

bool mentions(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const memlens::mapping_figures* mapping_row(const std::vector<memlens::mapping_figures>& rows, const std::string& name) {
    for (const auto& r : rows) {
        if (r.name == name) return &r;
    }
    return nullptr;
}

// Polls `done` until it holds or ten seconds pass; the monitor's thread samples meanwhile.
template <class F>
bool within_ten_seconds(F&& done) {
    for (int i = 0; i < 2000; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
}

// A monitor whose thread takes its first sample and then sleeps for an hour: the test takes
// every other sample with sample_now(), so that each rule sees exactly the figures set.
memlens::monitor_config manual_config() {
    memlens::monitor_config c;
    c.interval = std::chrono::hours(1);
    return c;
}

}  // namespace

TEST_CASE("parse_status reads the figures of a recorded /proc/self/status", "[monitor][proc]") {
    memlens::process_figures f;
    const memlens::read_error e = memlens::parse_status(recorded("status"), f);
    CHECK_FALSE(e);
    CHECK(std::string(e.what()).empty());
    CHECK(f.has_status);
    CHECK(f.rss_bytes == 18852 * kib);
    CHECK(f.rss_peak_bytes == 18852 * kib);
    CHECK(f.vms_bytes == 251792 * kib);
    CHECK(f.swap_bytes == 0);
    CHECK(f.threads == 4);
}

TEST_CASE("parse_status keeps what a status file gives and names what it lacks", "[monitor][proc]") {
    SECTION("without VmHWM and VmSwap") {
        memlens::process_figures f;
        f.swap_bytes = 77;  // overwritten: absent reads as 0
        const memlens::read_error e = memlens::parse_status(recorded("status_missing"), f);
        REQUIRE(e);
        CHECK(std::string(e.what()) == "/proc/self/status: no VmHWM, VmSwap lines");
        CHECK(f.has_status);
        CHECK(f.rss_bytes == 18852 * kib);
        CHECK(f.rss_peak_bytes == 0);
        CHECK(f.swap_bytes == 0);
        CHECK(f.vms_bytes == 251792 * kib);
        CHECK(f.threads == 4);
    }
    SECTION("cut in the middle of the VmRSS line") {
        memlens::process_figures f;
        const memlens::read_error e = memlens::parse_status(recorded("status_truncated"), f, "status_truncated");
        REQUIRE(e);
        CHECK(std::string(e.what()) ==
              "status_truncated: no VmRSS, VmSwap, Threads lines (the file is cut short)");
        CHECK_FALSE(f.has_status);
        CHECK(f.rss_bytes == 0);
        CHECK(f.vms_bytes == 251792 * kib);
        CHECK(f.rss_peak_bytes == 18852 * kib);
    }
    SECTION("a kernel thread's, which has no memory lines") {
        memlens::process_figures f;
        const memlens::read_error e = memlens::parse_status(recorded("status_kernel_thread"), f);
        REQUIRE(e);
        CHECK(mentions(e.what(), "no VmRSS, VmHWM, VmSize, VmSwap lines"));
        CHECK_FALSE(f.has_status);
        CHECK(f.threads == 1);
    }
    SECTION("empty") {
        memlens::process_figures f;
        const memlens::read_error e = memlens::parse_status("", f);
        CHECK(mentions(e.what(), "(the file is empty)"));
        CHECK_FALSE(f.has_status);
    }
}

TEST_CASE("parse_stat counts fields from the last parenthesis", "[monitor][proc]") {
    memlens::process_figures f;
    CHECK_FALSE(memlens::parse_stat(recorded("stat"), f));
    CHECK(f.has_stat);
    CHECK(f.minor_faults == 3435);
    CHECK(f.major_faults == 2);

    // The command was "odd) name (x": spaces and both parentheses inside the parentheses.
    memlens::process_figures odd;
    CHECK_FALSE(memlens::parse_stat(recorded("stat_odd_name"), odd));
    CHECK(odd.has_stat);
    CHECK(odd.minor_faults == 121);
    CHECK(odd.major_faults == 0);

    // Cut after minflt and cmajflt: majflt never arrived.
    memlens::process_figures cut;
    const memlens::read_error e = memlens::parse_stat(recorded("stat_truncated"), cut);
    REQUIRE(e);
    CHECK(mentions(e.what(), "no majflt field"));
    CHECK_FALSE(cut.has_stat);
    CHECK(cut.minor_faults == 3435);
    CHECK(cut.major_faults == 0);

    memlens::process_figures empty;
    CHECK(mentions(memlens::parse_stat("", empty).what(), "the file is empty"));
    CHECK_FALSE(empty.has_stat);
}

TEST_CASE("parse_smaps_rollup reads PSS and the anonymous / file-backed split", "[monitor][proc]") {
    memlens::process_figures f;
    CHECK_FALSE(memlens::parse_smaps_rollup(recorded("smaps_rollup"), f));
    CHECK(f.has_rollup);
    CHECK(f.pss_bytes == 17239 * kib);
    CHECK(f.anonymous_bytes == 13120 * kib);
    CHECK(f.file_bytes == (18852 - 13120) * kib);
    CHECK(f.rss_bytes == 0);  // status's figure, left alone

    memlens::process_figures partial;
    const memlens::read_error e = memlens::parse_smaps_rollup(recorded("smaps_rollup_missing"), partial);
    CHECK(std::string(e.what()) == "/proc/self/smaps_rollup: no Pss, Anonymous lines");
    CHECK(partial.has_rollup);
    CHECK(partial.pss_bytes == 0);
    CHECK(partial.anonymous_bytes == 0);
    CHECK(partial.file_bytes == 0);
}

TEST_CASE("the smaps parser sums a recorded smaps by kind", "[monitor][proc]") {
    const std::string text = recorded("smaps");
    memlens::read_error e;
    const std::vector<memlens::mapping_figures> rows = memlens::parse_smaps(text, &e);
    CHECK_FALSE(e);

    std::uint64_t rss = 0, size = 0, mappings = 0;
    for (const auto& r : rows) {
        rss += r.rss_bytes;
        size += r.size_bytes;
        mappings += r.mappings;
    }
    // The same moment's status says VmRSS 18852 kB and VmSize 251792 kB (smaps also lists the
    // vsyscall page, 4 kB, which VmSize leaves out).
    CHECK(rss == 18852 * kib);
    CHECK(size == (251792 + 4) * kib);
    CHECK(mappings == 66);
    // Largest resident first.
    for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i - 1].rss_bytes >= rows[i].rss_bytes);

    // Three threads waited: each stack is 8 MiB over a 4 KiB guard, 8 KiB of it touched.
    const auto* stacks = mapping_row(rows, "[thread stacks]");
    REQUIRE(stacks);
    CHECK(stacks->mappings == 6);
    CHECK(stacks->size_bytes == 3 * (4 + 8192) * kib);
    CHECK(stacks->rss_bytes == 24 * kib);
    CHECK(stacks->anonymous_bytes == 24 * kib);

    const auto* heap = mapping_row(rows, "[heap]");
    REQUIRE(heap);
    CHECK(heap->mappings == 1);
    CHECK(heap->size_bytes == 1120 * kib);
    CHECK(heap->rss_bytes == 1064 * kib);

    const auto* stack = mapping_row(rows, "[stack]");
    REQUIRE(stack);
    CHECK(stack->rss_bytes == 60 * kib);

    // The other anonymous mappings: glibc's three thread arenas (each read-write part and its
    // reserve), the 8 MiB bytearray, Python's own.
    const auto* anon = mapping_row(rows, "[anon]");
    REQUIRE(anon);
    CHECK(anon->mappings == 16);
    CHECK(anon->rss_bytes == 10700 * kib);
    CHECK(anon->rss_bytes >= 8 * mib);

    const auto* python = mapping_row(rows, "/usr/bin/python3.11");
    REQUIRE(python);
    CHECK(python->mappings == 6);
    CHECK(python->rss_bytes == 4468 * kib);
    CHECK(python->pss_bytes == 4404 * kib);

    const auto* vdso = mapping_row(rows, "[vdso]");
    REQUIRE(vdso);
    CHECK(vdso->rss_bytes == 4 * kib);

    SECTION("fed in chunks of any size, it gives the same rows") {
        for (std::size_t chunk : {1u, 7u, 100u, 4096u}) {
            memlens::smaps_parser parser;
            for (std::size_t at = 0; at < text.size(); at += chunk) parser.feed(std::string_view(text).substr(at, chunk));
            const auto again = parser.finish();
            REQUIRE(again.size() == rows.size());
            for (std::size_t i = 0; i < rows.size(); ++i) {
                CHECK(again[i].name == rows[i].name);
                CHECK(again[i].rss_bytes == rows[i].rss_bytes);
                CHECK(again[i].mappings == rows[i].mappings);
            }
        }
    }
}

TEST_CASE("the smaps parser on a single-threaded process and on a cut file", "[monitor][proc]") {
    // `cat /proc/self/smaps`: no thread stack, so no such row.
    memlens::read_error e;
    const auto rows = memlens::parse_smaps(recorded("smaps_small"), &e);
    CHECK_FALSE(e);
    CHECK(mapping_row(rows, "[thread stacks]") == nullptr);
    REQUIRE(mapping_row(rows, "[heap]"));
    REQUIRE(mapping_row(rows, "/usr/bin/cat"));
    CHECK(mapping_row(rows, "/usr/bin/cat")->mappings == 5);

    // Cut after the heap's Size line: the heap is listed with what was read, and said to be cut.
    memlens::read_error cut;
    const auto partial = memlens::parse_smaps(recorded("smaps_truncated"), &cut);
    CHECK(mentions(cut.what(), "no Rss line"));
    const auto* heap = mapping_row(partial, "[heap]");
    REQUIRE(heap);
    CHECK(heap->size_bytes == 1120 * kib);
    CHECK(heap->rss_bytes == 0);

    memlens::read_error none;
    CHECK(memlens::parse_smaps("", &none).empty());
    CHECK(mentions(none.what(), "no mapping"));
}

TEST_CASE("readers of files that are not there say so and read nothing", "[monitor][proc]") {
    memlens::process_figures f;
    f.rss_bytes = 5;
    const memlens::read_error status = memlens::read_status(f, "/proc/self/no-such-status");
    CHECK(mentions(status.what(), "/proc/self/no-such-status: cannot open: No such file or directory"));
    CHECK_FALSE(f.has_status);
    CHECK(f.rss_bytes == 0);
    CHECK(memlens::read_stat(f, "/nonexistent/stat"));
    CHECK_FALSE(f.has_stat);
    CHECK(memlens::read_smaps_rollup(f, "/nonexistent/smaps_rollup"));
    CHECK_FALSE(f.has_rollup);
    CHECK(memlens::count_open_fds(f, "/nonexistent/fd"));
    CHECK_FALSE(f.has_fds);
    memlens::read_error e;
    CHECK(memlens::read_mappings(&e, "/nonexistent/smaps").empty());
    CHECK(mentions(e.what(), "cannot open"));

    // The readers read a recorded file as they read /proc.
    memlens::process_figures r;
    CHECK_FALSE(memlens::read_status(r, proc_path("status").c_str()));
    CHECK(r.rss_bytes == 18852 * kib);
    CHECK(memlens::read_mappings(nullptr, proc_path("smaps").c_str()).size() ==
          memlens::parse_smaps(recorded("smaps")).size());
}

TEST_CASE("the live figures follow what the process does", "[monitor][live]") {
    memlens::process_figures before;
    REQUIRE_FALSE(memlens::read_process_figures(before, true));
    REQUIRE(before.has_status);
    REQUIRE(before.has_stat);
    REQUIRE(before.has_fds);
    REQUIRE(before.has_rollup);
    CHECK(before.threads >= 1);
    CHECK(before.rss_bytes <= before.rss_peak_bytes);
    CHECK(before.rss_bytes <= before.vms_bytes);
    CHECK(before.pss_bytes > 0);

    SECTION("RSS and minor faults rise as pages are touched; RSS falls when they are unmapped") {
        constexpr std::size_t n = 48 * mib;
        void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        std::memset(p, 1, n);
        memlens::process_figures touched;
        REQUIRE_FALSE(memlens::read_process_figures(touched, true));
        CHECK(touched.rss_bytes >= before.rss_bytes + n);
        CHECK(touched.rss_peak_bytes >= touched.rss_bytes);
        CHECK(touched.vms_bytes >= before.vms_bytes + n);
        CHECK(touched.anonymous_bytes >= before.anonymous_bytes + n);
        // One fault per page at least, unless the kernel gave huge pages.
        CHECK(touched.minor_faults > before.minor_faults);
        ::munmap(p, n);
        memlens::process_figures after;
        REQUIRE_FALSE(memlens::read_process_figures(after));
        // The process goes on between the two reads (a sanitizer's allocator most of all): the
        // mapping's pages leave, give or take a megabyte of other pages.
        CHECK(after.rss_bytes + n <= touched.rss_bytes + mib);
        // The kernel's resident counters are summed per CPU lazily: the high-water mark kept
        // at munmap may read a few pages below the resident figure read before it.
        CHECK(after.rss_peak_bytes + mib >= touched.rss_bytes);
    }
    SECTION("open_fds counts an opened file") {
        const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        memlens::process_figures opened;
        REQUIRE_FALSE(memlens::count_open_fds(opened));
        ::close(fd);
        memlens::process_figures closed;
        REQUIRE_FALSE(memlens::count_open_fds(closed));
        CHECK(opened.open_fds == closed.open_fds + 1);
    }
    SECTION("threads counts a running thread") {
        std::atomic<bool> release{false};
        std::thread t([&] {
            while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        memlens::process_figures running;
        REQUIRE_FALSE(memlens::read_status(running));
        release = true;
        t.join();
        memlens::process_figures joined;
        REQUIRE_FALSE(memlens::read_status(joined));
        CHECK(running.threads == joined.threads + 1);
    }
    SECTION("the per-mapping breakdown sums to about the resident set") {
        memlens::read_error e;
        const auto rows = memlens::read_mappings(&e);
        CHECK_FALSE(e);
        REQUIRE(mapping_row(rows, "[stack]"));
        std::uint64_t rss = 0;
        for (const auto& r : rows) rss += r.rss_bytes;
        // Read a moment apart, with this test's own pages moving in between.
        CHECK(rss + 4 * mib >= before.rss_bytes);
        CHECK(rss <= before.rss_bytes + 4 * mib);
    }
}

TEST_CASE("untracked bytes are the resident set less memlens's live bytes", "[monitor][live]") {
    CHECK(memlens::untracked_bytes(100, 30) == 70);
    CHECK(memlens::untracked_bytes(30, 100) == 0);
    memlens::process_figures f;
    CHECK(memlens::untracked_bytes(f) == 0);  // not read
    REQUIRE_FALSE(memlens::read_status(f));
    CHECK(memlens::untracked_bytes(f) <= f.rss_bytes);
    CHECK(memlens::tracked_bytes() == memlens::stats().current);
}

TEST_CASE("mallinfo2 sees a large block and trim gives the free pages back", "[monitor][allocator]") {
    if (sanitized) {
        SUCCEED("a sanitizer's malloc is not glibc's");
        return;
    }
    const memlens::allocator_figures before = memlens::read_allocator_figures();
    // Above glibc's largest mmap threshold (32 MiB; it rises as mapped blocks are freed): a
    // block mapped on its own.
    void* big = std::malloc(64 * mib);
    memlens::keep_observable(big);
    const memlens::allocator_figures during = memlens::read_allocator_figures();
    CHECK(during.mmapped_bytes >= before.mmapped_bytes + 64 * mib);
    std::free(big);

    // 32 MiB of small blocks, touched, freed behind one block that stays at the arena's top:
    // glibc keeps the free pages until malloc_trim hands them back.
    std::vector<void*> blocks;
    blocks.reserve(32 * 1024);
    for (int i = 0; i < 32 * 1024; ++i) {
        blocks.push_back(std::malloc(1000));
        std::memset(blocks.back(), 1, 1000);
    }
    void* top = std::malloc(1000);
    memlens::keep_observable(top);
    for (void* b : blocks) std::free(b);
    const memlens::allocator_figures freed = memlens::read_allocator_figures();
    CHECK(freed.free_bytes >= 30 * mib);
    const memlens::trim_figures t = memlens::trim();
    std::free(top);
    REQUIRE(t.has_rss);
    CHECK(t.trimmed);
    CHECK(t.rss_before > 0);
    CHECK(t.released_bytes == t.rss_before - t.rss_after);
    CHECK(t.released_bytes >= 16 * mib);
}

TEST_CASE("a monitor refuses a bad configuration, saying which value and what is accepted", "[monitor]") {
    using namespace std::chrono_literals;
    memlens::monitor_config c;
    c.interval = 5ms;
    CHECK(memlens::check_monitor_config(c) ==
          "monitor_config::interval 5 ms is not valid; accepted: 10 ms to 1 hour");
    CHECK_THROWS_WITH(memlens::monitor(c), Catch::Contains("monitor_config::interval 5 ms"));
    c.interval = 2h;
    CHECK(mentions(memlens::check_monitor_config(c), "interval 7200000 ms"));
    c = {};
    c.capacity = 1;
    CHECK(mentions(memlens::check_monitor_config(c), "capacity 1 is not valid; accepted: 2 to"));
    c = {};
    c.rollup_interval = 500ms;
    CHECK(mentions(memlens::check_monitor_config(c), "rollup_interval 500 ms is not valid"));
    c = {};
    c.domain_columns = 0;
    CHECK(mentions(memlens::check_monitor_config(c), "domain_columns 0"));
    c = {};
    c.rules.push_back(memlens::rss_above(0));
    CHECK(mentions(memlens::check_monitor_config(c), "alert rule 0: the limit is 0"));
    c.rules[0] = memlens::rss_above(100);
    c.rules[0].hysteresis = 1;
    CHECK(mentions(memlens::check_monitor_config(c), "hysteresis 1.0"));
    c.rules[0] = memlens::rss_above(100);
    c.rules[0].clear_below = 100;
    CHECK(mentions(memlens::check_monitor_config(c), "clear_below 100 is not below the limit 100"));
    c.rules[0] = memlens::domain_above("", 100);
    CHECK(mentions(memlens::check_monitor_config(c), "needs a domain name"));
    c.rules[0] = memlens::growth_above(100, 1500ms);
    CHECK(mentions(memlens::check_monitor_config(c), "window 1500 ms is not valid; accepted: twice the interval"));
    c.rules[0].window = 2s;
    CHECK(memlens::check_monitor_config(c).empty());
}

TEST_CASE("a monitor at 10 ms collects samples of every cheap figure", "[monitor][thread]") {
    memlens::monitor_config c;
    c.interval = std::chrono::milliseconds(10);
    c.rollup_interval = std::chrono::milliseconds(20);
    c.allocator_interval = std::chrono::milliseconds(20);
    memlens::monitor m(c);
    REQUIRE(m.running());
    REQUIRE(within_ten_seconds([&] { return m.samples_taken() >= 8; }));
    m.stop();
    CHECK_FALSE(m.running());
    const std::uint64_t taken = m.samples_taken();
    const memlens::monitor_timeline t = m.timeline();
    REQUIRE(t.samples.size() == taken);
    CHECK(t.dropped_samples == 0);
    CHECK(t.interval_seconds == 0.01);
    CHECK(t.domain_names.at(0) == "all");
    CHECK(t.domain_names.at(1) == "heap");
    std::size_t with_rollup = 0, with_allocator = 0;
    for (std::size_t i = 0; i < t.samples.size(); ++i) {
        const memlens::monitor_sample& s = t.samples[i];
        CHECK(s.process.has_status);
        CHECK(s.process.has_stat);
        CHECK(s.process.has_fds);
        CHECK(s.process.rss_bytes > 0);
        CHECK(s.unix_time_ms >= t.start_unix_time_ms);
        CHECK(s.domain_bytes.size() >= 3);
        CHECK(s.untracked_bytes == memlens::untracked_bytes(s.process.rss_bytes, s.tracked_bytes));
        CHECK(s.tracked_peak >= s.tracked_bytes);
        if (i > 0) CHECK(s.seconds > t.samples[i - 1].seconds);
        with_rollup += s.process.has_rollup;
        with_allocator += s.has_allocator;
    }
    CHECK(t.samples.front().process.has_rollup);  // the first sample reads everything asked for
    CHECK(with_rollup >= 2);
    CHECK(with_rollup < t.samples.size());
    CHECK(with_allocator == with_rollup);
    CHECK(m.last_error().empty());
    memlens::monitor_sample newest;
    REQUIRE(m.latest(newest));
    CHECK(newest.seconds == t.samples.back().seconds);
}

TEST_CASE("the timeline ring stays bounded and counts what it let go", "[monitor]") {
    memlens::monitor_config c = manual_config();
    c.capacity = 4;
    memlens::monitor m(c);
    for (int i = 0; i < 9; ++i) m.sample_now();
    REQUIRE(within_ten_seconds([&] { return m.samples_taken() == 10; }));
    const memlens::monitor_timeline t = m.timeline();
    CHECK(t.samples.size() == 4);
    CHECK(t.dropped_samples == 6);
    for (std::size_t i = 1; i < t.samples.size(); ++i) CHECK(t.samples[i].seconds >= t.samples[i - 1].seconds);
}

TEST_CASE("the monitor's own memory is not counted in the program's figures", "[monitor]") {
    memlens::monitor_config c;
    c.interval = std::chrono::milliseconds(10);
    c.capacity = 1000;
    c.rules.push_back(memlens::rss_above(std::uint64_t{1} << 50));
    c.rules.push_back(memlens::growth_above(1, std::chrono::milliseconds(20)));
    c.nested_domains.push_back("monitor-test-nested");
    // No assertion runs between the readings: Catch2's own work would count.
    const std::uint64_t before = memlens::stats().current;
    std::uint64_t during = 0;
    std::uint64_t taken = 0;
    {
        memlens::monitor m(c);
        for (int i = 0; i < 5; ++i) m.sample_now();
        for (int i = 0; i < 2000 && m.samples_taken() < 20; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        taken = m.samples_taken();
        during = memlens::stats().current;
    }
    const std::uint64_t after = memlens::stats().current;
    CHECK(taken >= 20);
    CHECK(during == before);
    CHECK(after == before);
}

TEST_CASE("each alert rule fires once across a rise and again only after clearing", "[monitor][alerts]") {
    const memlens::domain budget = memlens::domain::named("monitor-test-budget");
    static char block;
    std::size_t recorded_bytes = 0;
    const auto set_bytes = [&](std::size_t n) {
        if (recorded_bytes != 0) memlens::record_free(&block, recorded_bytes, budget);
        if (n != 0) memlens::record_alloc(&block, n, budget);
        recorded_bytes = n;
    };
    const std::uint64_t tracked0 = memlens::stats().current;
    std::vector<memlens::alert_event> fired;
    std::vector<memlens::alert_event> fired_tracked;

    memlens::monitor_config c = manual_config();
    c.rules.push_back(memlens::domain_above("monitor-test-budget", 1000,
                                            [&](const memlens::alert_event& e) { fired.push_back(e); }));
    c.rules.push_back(memlens::tracked_above(tracked0 + 64 * mib,
                                             [&](const memlens::alert_event& e) { fired_tracked.push_back(e); }));
    c.rules.back().name = "tracked";
    c.rules.back().clear_below = tracked0 + 32 * mib;
    memlens::monitor m(c);
    REQUIRE(within_ten_seconds([&] { return m.samples_taken() == 1; }));

    SECTION("a domain above its budget, with the default 10% hysteresis") {
        const auto times = [&] { return m.alerts()[0].times_fired; };
        set_bytes(1500);
        m.sample_now();
        REQUIRE(fired.size() == 1);
        CHECK(fired[0].state.name == "domain_above");
        CHECK(fired[0].state.firing);
        CHECK(fired[0].state.times_fired == 1);
        CHECK(fired[0].state.value == 1500);
        CHECK(fired[0].state.limit == 1000);
        CHECK(fired[0].sample.domain_bytes.at(budget.id()) == 1500);
        m.sample_now();  // still above: no second call
        set_bytes(950);  // below the limit, above 900: still firing
        m.sample_now();
        CHECK(m.alerts()[0].firing);
        set_bytes(1200);
        m.sample_now();
        CHECK(fired.size() == 1);
        CHECK(times() == 1);
        CHECK(fired_tracked.empty());
        set_bytes(899);  // below limit * 0.9: cleared
        m.sample_now();
        CHECK_FALSE(m.alerts()[0].firing);
        CHECK(m.alerts()[0].value == 899);
        CHECK(fired.size() == 1);
        set_bytes(1001);
        m.sample_now();
        REQUIRE(fired.size() == 2);
        CHECK(fired[1].state.times_fired == 2);
        CHECK(times() == 2);
    }
    SECTION("tracked bytes above a limit, with a clear level of its own") {
        set_bytes(80 * mib);
        m.sample_now();
        REQUIRE(fired_tracked.size() == 1);
        CHECK(fired_tracked[0].state.name == "tracked");
        CHECK(fired_tracked[0].sample.tracked_bytes >= tracked0 + 80 * mib);
        set_bytes(40 * mib);  // below the limit, above the clear level
        m.sample_now();
        set_bytes(70 * mib);
        m.sample_now();
        CHECK(fired_tracked.size() == 1);
        set_bytes(10 * mib);
        m.sample_now();
        CHECK_FALSE(m.alerts()[1].firing);
        set_bytes(70 * mib);
        m.sample_now();
        REQUIRE(fired_tracked.size() == 2);
        CHECK(fired_tracked[1].state.times_fired == 2);
    }
    set_bytes(0);
}

TEST_CASE("an RSS rule fires when touched pages raise the resident set", "[monitor][alerts]") {
    memlens::process_figures now;
    REQUIRE_FALSE(memlens::read_status(now));
    std::vector<memlens::alert_event> fired;
    memlens::monitor_config c = manual_config();
    c.rules.push_back(memlens::rss_above(now.rss_bytes + 64 * mib,
                                         [&](const memlens::alert_event& e) { fired.push_back(e); }));
    c.rules[0].clear_below = now.rss_bytes + 32 * mib;
    memlens::monitor m(c);
    REQUIRE(within_ten_seconds([&] { return m.samples_taken() == 1; }));
    constexpr std::size_t n = 96 * mib;
    for (int round = 1; round <= 2; ++round) {
        void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(p != MAP_FAILED);
        std::memset(p, 1, n);
        m.sample_now();
        m.sample_now();
        ::munmap(p, n);
        m.sample_now();
        REQUIRE(fired.size() == static_cast<std::size_t>(round));
        CHECK(fired.back().state.times_fired == static_cast<std::uint64_t>(round));
        CHECK(fired.back().sample.process.rss_bytes > now.rss_bytes + 64 * mib);
        CHECK_FALSE(m.alerts()[0].firing);
    }
}

TEST_CASE("a growth rule fires on sustained growth, once, and again after a pause", "[monitor][alerts]") {
    // The domain's bytes follow the clock (10 MiB a second), so that the rate the rule measures
    // does not depend on when either thread runs.
    const memlens::domain growing = memlens::domain::named("monitor-test-growth");
    static char block;
    std::size_t held = 0;
    const auto set_bytes = [&](std::size_t n) {
        if (held != 0) memlens::record_free(&block, held, growing);
        if (n != 0) memlens::record_alloc(&block, n, growing);
        held = n;
    };
    std::atomic<std::uint64_t> calls{0};
    std::atomic<bool> compared{false};
    memlens::monitor_config c;
    c.interval = std::chrono::milliseconds(20);
    // 600 MiB a minute is 10 MiB a second: the rule's limit is a tenth of that. It clears only
    // when the bytes stay nearly flat for a whole window, so that this thread's being descheduled
    // for a moment (under a sanitizer, on a loaded machine) does not clear it.
    c.rules.push_back(memlens::growth_above(60 * mib, std::chrono::milliseconds(400),
                                            [&](const memlens::alert_event& e) {
                                                compared = e.sites_compared;
                                                calls.fetch_add(1);
                                            }));
    c.rules.back().hysteresis = 0.99;
    memlens::monitor m(c);
    const auto grow_for = [&](std::chrono::milliseconds span) {
        const auto start = std::chrono::steady_clock::now();
        const std::size_t base = held;
        for (;;) {
            const auto elapsed = std::chrono::steady_clock::now() - start;
            if (elapsed > span) break;
            const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
            set_bytes(base + static_cast<std::size_t>(us) * 10 * mib / 1000000);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    };
    grow_for(std::chrono::milliseconds(1200));
    REQUIRE(within_ten_seconds([&] { return calls.load() >= 1; }));
    CHECK(calls.load() == 1);
    CHECK_FALSE(compared.load());  // counters mode: no snapshot to compare
    CHECK(m.alerts()[0].firing);
    CHECK(m.alerts()[0].value > 60.0 * mib);
    // Flat for a while: the rate over the window falls to 0 and the rule clears.
    REQUIRE(within_ten_seconds([&] { return !m.alerts()[0].firing; }));
    CHECK(calls.load() == 1);
    grow_for(std::chrono::milliseconds(1200));
    REQUIRE(within_ten_seconds([&] { return calls.load() >= 2; }));
    CHECK(calls.load() == 2);
    CHECK(m.alerts()[0].times_fired == 2);
    m.stop();
    set_bytes(0);
}

namespace {

std::vector<std::vector<char>*> leaky_cache;

MEMLENS_TEST_NOINLINE void grow_leaky_cache() {
    leaky_cache.push_back(new std::vector<char>(64 * 1024, 'x'));
}

}  // namespace

TEST_CASE("a growth rule in sites mode names the site that grew", "[monitor][alerts][sites]") {
    memlens_test::tracking_as sites(memlens::tracking_mode::sites);
    std::atomic<bool> done{false};
    memlens::alert_event seen;
    memlens::monitor_config c;
    c.interval = std::chrono::milliseconds(20);
    c.rules.push_back(memlens::growth_above(mib, std::chrono::milliseconds(200),
                                            [&](const memlens::alert_event& e) {
                                                if (done) return;
                                                seen = e;
                                                done = true;
                                            }));
    memlens::monitor m(c);
    // 64 KiB every 2 ms: about 2 GiB a minute, for up to ten seconds.
    for (int i = 0; i < 5000 && !done; ++i) {
        grow_leaky_cache();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    m.stop();
    REQUIRE(done);
    CHECK(seen.sites_compared);
    CHECK(seen.window_seconds >= 0.1);
    REQUIRE_FALSE(seen.grown_sites.empty());
    bool named = false;
    for (const memlens::statistic_diff& d : seen.grown_sites) {
        CHECK(d.bytes_diff > 0);
        if (mentions(d.key, "grow_leaky_cache")) named = d.bytes_diff >= 64 * 1024;
    }
    CHECK(named);
    for (auto* v : leaky_cache) delete v;
    leaky_cache.clear();
}

namespace {

MEMLENS_TEST_NOINLINE void marked_work() {
    MEMLENS_SCOPE("monitor-test-scope");
    int* p = new int(3);
    memlens_test::keep(p);
    delete p;
}

}  // namespace

TEST_CASE("named scopes are marked on the timeline while a monitor runs, and only then", "[monitor][marks]") {
    const std::uint64_t head = memlens::detail::scope_mark_head();
    marked_work();
    CHECK(memlens::detail::scope_mark_head() == head);  // no monitor: no mark written

    {
        memlens::monitor m(manual_config());
        marked_work();
        marked_work();
        m.sample_now();
        const memlens::monitor_timeline t = m.timeline();
        std::vector<const memlens::timeline_mark*> ours;
        for (const auto& mark : t.marks) {
            if (mark.scope == "monitor-test-scope") ours.push_back(&mark);
        }
        REQUIRE(ours.size() == 4);
        CHECK(ours[0]->entered);
        CHECK_FALSE(ours[1]->entered);
        CHECK(ours[2]->entered);
        CHECK_FALSE(ours[3]->entered);
        for (std::size_t i = 1; i < ours.size(); ++i) CHECK(ours[i]->seconds >= ours[i - 1]->seconds);
        CHECK(ours[3]->seconds <= t.samples.back().seconds);
        CHECK(ours[0]->thread == ours[1]->thread);
        CHECK(t.dropped_marks == 0);
    }
    CHECK(memlens::detail::scope_marks.readers.load() == 0);
    const std::uint64_t after = memlens::detail::scope_mark_head();
    marked_work();
    CHECK(memlens::detail::scope_mark_head() == after);
}

TEST_CASE("marks written faster than the monitor reads them are counted as dropped", "[monitor][marks]") {
    memlens::monitor_config c = manual_config();
    c.mark_capacity = 100;
    memlens::monitor m(c);
    for (int i = 0; i < 5000; ++i) marked_work();  // 10,000 marks: more than the shared ring holds
    m.sample_now();
    const memlens::monitor_timeline t = m.timeline();
    CHECK(t.marks.size() == 100);
    CHECK(t.dropped_marks == 10000 - 100);
    CHECK(t.marks.back().scope == "monitor-test-scope");
    CHECK_FALSE(t.marks.back().entered);
}

namespace {

memlens::monitor_timeline small_timeline() {
    memlens::monitor_timeline t;
    t.interval_seconds = 0.5;
    t.start_unix_time_ms = 1764645000000;
    t.domain_names = {"all", "heap", "overflow", "index, v2"};
    memlens::monitor_sample a;
    a.seconds = 0;
    a.unix_time_ms = 1764645000000;
    a.process.rss_bytes = 4096000;
    a.process.rss_peak_bytes = 4096000;
    a.process.vms_bytes = 10000000;
    a.process.threads = 2;
    a.process.has_status = true;
    a.process.open_fds = 5;
    a.process.has_fds = true;
    a.process.minor_faults = 100;
    a.process.major_faults = 1;
    a.process.has_stat = true;
    a.tracked_bytes = 1000;
    a.tracked_peak = 1500;
    a.untracked_bytes = 4095000;
    a.domain_bytes = {1000, 600, 0, 400};
    memlens::monitor_sample b = a;
    b.seconds = 0.5;
    b.unix_time_ms += 500;
    b.process.has_status = false;  // not read: empty, not 0
    b.untracked_bytes = 0;
    b.process.pss_bytes = 3000000;
    b.process.anonymous_bytes = 2000000;
    b.process.file_bytes = 2096000;
    b.process.has_rollup = true;
    b.has_allocator = true;
    b.allocator.arena_bytes = 135168;
    b.allocator.in_use_bytes = 2000;
    b.allocator.free_bytes = 133168;
    b.domain_bytes = {1200, 800};
    t.samples = {a, b};
    t.marks = {{0.25, "parse \"input\"", true, 1}, {0.5, "parse \"input\"", false, 1}};
    t.dropped_marks = 3;
    return t;
}

}  // namespace

TEST_CASE("the timeline as CSV: documented columns, empty cells for figures not read", "[monitor][view]") {
    const std::string expected =
        "event,seconds,unix_time_ms,rss_bytes,rss_peak_bytes,vms_bytes,swap_bytes,threads,open_fds,"
        "minor_faults,major_faults,tracked_bytes,tracked_peak_bytes,untracked_bytes,pss_bytes,"
        "anonymous_bytes,file_bytes,malloc_arena_bytes,malloc_mmapped_bytes,malloc_in_use_bytes,"
        "malloc_free_bytes,malloc_releasable_bytes,scope,thread,domain:heap,domain:overflow,"
        "\"domain:index, v2\"\n"
        "sample,0.000000,1764645000000,4096000,4096000,10000000,0,2,5,100,1,1000,1500,4095000,,,,,,,,,,,"
        "600,0,400\n"
        "enter,0.250000,,,,,,,,,,,,,,,,,,,,,\"parse \"\"input\"\"\",1,,,\n"
        "sample,0.500000,1764645000500,,,,,,5,100,1,1000,1500,,3000000,2000000,2096000,135168,0,2000,"
        "133168,0,,,800,,\n"
        "leave,0.500000,,,,,,,,,,,,,,,,,,,,,\"parse \"\"input\"\"\",1,,,\n";
    CHECK(memlens::timeline_csv(small_timeline()) == expected);
}

TEST_CASE("the timeline as JSON: nulls for figures not read, marks after samples", "[monitor][view]") {
    const std::string json = memlens::timeline_json(small_timeline());
    const std::string expected_start =
        "{\"format\": \"memlens.timeline\", \"version\": 1, \"interval_seconds\": 0.5, "
        "\"start_unix_time_ms\": 1764645000000, \"dropped_samples\": 0, \"dropped_marks\": 3,\n"
        " \"domains\": [\"all\", \"heap\", \"overflow\", \"index, v2\"],\n"
        " \"samples\": [\n"
        "  {\"seconds\": 0, \"unix_time_ms\": 1764645000000, \"rss_bytes\": 4096000, "
        "\"rss_peak_bytes\": 4096000, \"vms_bytes\": 10000000, \"swap_bytes\": 0, \"threads\": 2, "
        "\"open_fds\": 5, \"minor_faults\": 100, \"major_faults\": 1, \"tracked_bytes\": 1000, "
        "\"tracked_peak_bytes\": 1500, \"untracked_bytes\": 4095000, \"pss_bytes\": null, "
        "\"anonymous_bytes\": null, \"file_bytes\": null, \"malloc_arena_bytes\": null, "
        "\"malloc_mmapped_bytes\": null, \"malloc_in_use_bytes\": null, \"malloc_free_bytes\": null, "
        "\"malloc_releasable_bytes\": null, \"domain_bytes\": [1000, 600, 0, 400]},\n";
    CHECK(json.compare(0, expected_start.size(), expected_start) == 0);
    CHECK(mentions(json, "{\"seconds\": 0.5, \"unix_time_ms\": 1764645000500, \"rss_bytes\": null,"));
    CHECK(mentions(json, "\"pss_bytes\": 3000000, \"anonymous_bytes\": 2000000"));
    CHECK(mentions(json, "\"domain_bytes\": [1200, 800]}\n ],\n \"marks\": [\n"
                         "  {\"seconds\": 0.25, \"event\": \"enter\", \"scope\": \"parse \\\"input\\\"\", \"thread\": 1},\n"
                         "  {\"seconds\": 0.5, \"event\": \"leave\", \"scope\": \"parse \\\"input\\\"\", \"thread\": 1}\n"
                         " ]}\n"));
    const std::string empty = memlens::timeline_json(memlens::monitor_timeline{});
    CHECK(mentions(empty, "\"samples\": [],\n \"marks\": []}\n"));
}

TEST_CASE("write_timeline writes CSV or JSON by the file's name", "[monitor][view]") {
    memlens_test::temporary_directory dir;
    const memlens::monitor_timeline t = small_timeline();
    memlens::write_timeline(t, dir / "t.csv");
    memlens::write_timeline(t, dir / "t.json");
    const auto read = [](const std::string& path) {
        std::FILE* f = std::fopen(path.c_str(), "rb");
        REQUIRE(f != nullptr);
        std::string text;
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
        std::fclose(f);
        return text;
    };
    CHECK(read(dir / "t.csv") == memlens::timeline_csv(t));
    CHECK(read(dir / "t.json") == memlens::timeline_json(t));
    CHECK_THROWS_WITH(memlens::write_timeline(t, dir / "t.txt"), Catch::Contains("as .csv or .json"));
    CHECK_THROWS_AS(memlens::write_timeline(t, dir / "missing/t.csv"), std::runtime_error);
}

TEST_CASE("a monitor's timeline becomes the snapshot's, with the resident set and scope marks", "[monitor][view]") {
    memlens::snapshot s;
    s.timeline = {{9.0, 1, 1, "from the program's own clock", 0}};
    memlens::set_timeline(s, small_timeline());
    REQUIRE(s.timeline.size() == 4);
    const memlens::timeline_point& first = s.timeline[0];
    CHECK(first.seconds == 0);
    CHECK(first.current == 1000);
    CHECK(first.peak == 1500);
    CHECK(first.rss == 4096000);
    CHECK(first.label.empty());
    // The mark at 0.25 s carries the figures of the sample before it.
    CHECK(s.timeline[1].seconds == 0.25);
    CHECK(s.timeline[1].label == "enter parse \"input\"");
    CHECK(s.timeline[1].rss == 4096000);
    CHECK(s.timeline[1].current == 1000);
    // The second sample's resident set was not read: 0, which the report leaves out of its line.
    CHECK(s.timeline[2].seconds == 0.5);
    CHECK(s.timeline[2].rss == 0);
    CHECK(s.timeline[3].label == "leave parse \"input\"");
    const std::string json = memlens::to_json(s);
    CHECK(json.find("{\"seconds\":0.25,\"current\":1000,\"peak\":1500,\"label\":\"enter parse \\\"input\\\"\",\"rss\":4096000}") != std::string::npos);
    const memlens::snapshot back = memlens::from_json(json);
    REQUIRE(back.timeline.size() == 4);
    CHECK(back.timeline[0].rss == 4096000);
    const std::string page = memlens::to_html(s);
    CHECK(page.find("\"label\":\"enter parse \\\"input\\\"\",\"rss\":4096000}") != std::string::npos);
}
