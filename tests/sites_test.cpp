// Allocation sites: configuration, leak checks, snapshots and their views, temporary
// allocations, sampling, and the report at exit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory_resource>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <memlens/observe/sites.hpp>
#include <memlens/view/json.hpp>
#include <memlens/sources/resource.hpp>

#include "support.hpp"
#include "tracking_support.hpp"

using memlens_test::errors_remembered;
using memlens_test::last_error;
using memlens_test::tracking_as;

namespace {

bool names(const memlens::leak_site& site, const char* function) {
    return std::any_of(site.traceback.begin(), site.traceback.end(),
                       [&](const memlens::frame_info& f) {
                           return f.function.find(function) != std::string::npos;
                       });
}

const memlens::leak_site* site_naming(const memlens::leak_report& r, const char* function) {
    for (const memlens::leak_site& s : r.sites) {
        if (names(s, function)) return &s;
    }
    return nullptr;
}

std::vector<void*> leaked_blocks;

}  // namespace

// Leak sites at different depths: each function's name must appear in its site's stack.
// Loop bounds the compiler cannot see: an unrolled loop would allocate from several call
// sites, and the tests count sites.
volatile int sites_test_three = 3;
volatile int sites_test_two = 2;
volatile int sites_test_ten = 10;

__attribute__((noinline)) void sites_test_leak_shallow() {
    for (int i = 0; i < sites_test_three; ++i) {
        leaked_blocks.push_back(new char[40]);
        memlens_test::keep(leaked_blocks.back());
    }
}

__attribute__((noinline)) void sites_test_leak_deep(int depth) {
    if (depth > 0) {
        sites_test_leak_deep(depth - 1);
        memlens_test::keep(&depth);
        return;
    }
    for (int i = 0; i < sites_test_two; ++i) {
        leaked_blocks.push_back(new char[1000]);
        memlens_test::keep(leaked_blocks.back());
    }
}

__attribute__((noinline)) void sites_test_leak_in_vector() {
    auto* v = new std::vector<int>(250);
    leaked_blocks.push_back(v);
    memlens_test::keep(v);
}

__attribute__((noinline)) void sites_test_churn() {
    for (int i = 0; i < 10000; ++i) {
        auto* p = new char[static_cast<std::size_t>(16 + i % 200)];
        memlens_test::keep(p);
        delete[] p;
    }
    std::vector<std::string> kept(100, std::string(50, 'x'));
    memlens_test::keep(kept.data());
}

void free_leaked_blocks() {
    for (std::size_t i = 0; i < leaked_blocks.size(); ++i) {
        if (i == leaked_blocks.size() - 1) {
            delete static_cast<std::vector<int>*>(leaked_blocks[i]);
        } else {
            delete[] static_cast<char*>(leaked_blocks[i]);
        }
    }
    leaked_blocks.clear();
    leaked_blocks.shrink_to_fit();
}

TEST_CASE("a leak check names exactly the leaking sites with exact counts and bytes", "[sites]") {
    leaked_blocks.reserve(16);
    memlens::leak_report r = memlens::find_leaks([] {
        sites_test_churn();
        sites_test_leak_shallow();
        sites_test_churn();
        sites_test_leak_deep(6);
        sites_test_leak_in_vector();
        sites_test_churn();
    });
    free_leaked_blocks();

    REQUIRE(r.sites.size() == 4);
    CHECK(r.count == 7);
    CHECK(r.bytes == 3 * 40 + 2 * 1000 + 250 * sizeof(int) + sizeof(std::vector<int>));
    CHECK_FALSE(r.estimated);

    const memlens::leak_site* shallow = site_naming(r, "sites_test_leak_shallow");
    const memlens::leak_site* deep = site_naming(r, "sites_test_leak_deep");
    REQUIRE(shallow);
    REQUIRE(deep);
    CHECK(shallow->count == 3);
    CHECK(shallow->bytes == 120);
    CHECK(deep->count == 2);
    CHECK(deep->bytes == 2000);
    CHECK(shallow->domain == "heap");
    // The recursion shows in the deep site's stack: seven frames of the same function.
    const auto depth = std::count_if(deep->traceback.begin(), deep->traceback.end(),
                                     [](const memlens::frame_info& f) {
                                         return f.function.find("sites_test_leak_deep") !=
                                                std::string::npos;
                                     });
    CHECK(depth == 7);
    // The vector: the object and its buffer are two allocations from two stacks.
    const auto in_vector = std::count_if(r.sites.begin(), r.sites.end(), [](const auto& s) {
        return names(s, "sites_test_leak_in_vector");
    });
    CHECK(in_vector == 2);
    CHECK(r.sites.front().bytes == 2000);

    const std::string text = r.describe();
    CHECK(text.find("7 allocations still alive") != std::string::npos);
    CHECK(text.find("sites_test_leak_deep") != std::string::npos);
}

TEST_CASE("a leak check sees only its thread's allocations, or every thread's", "[sites]") {
    std::vector<char*> from_other(4);
    std::atomic<bool> go{false};
    char* mine = nullptr;
    memlens::leak_report thread_only, process;
    {
        memlens::leak_check process_check(memlens::scope_kind::process);
        memlens::leak_check thread_check;
        std::thread other([&] {
            while (!go.load()) std::this_thread::yield();
            for (auto& p : from_other) p = new char[64];
        });
        mine = new char[32];
        memlens_test::keep(mine);
        go = true;
        other.join();
        thread_only = memlens::leaks(thread_check);
        process = memlens::leaks(process_check);
    }
    CHECK(thread_only.count == 1);
    CHECK(thread_only.bytes == 32);
    // The other thread's std::thread start-up may allocate too; its four blocks are there.
    CHECK(process.count >= 5);
    CHECK(process.bytes >= 32 + 4 * 64);
    delete[] mine;
    for (char* p : from_other) delete[] p;
}

TEST_CASE("blocks freed on another thread leave the live table", "[sites]") {
    tracking_as sites(memlens::tracking_mode::sites);
    std::vector<char*> blocks(1000);
    memlens::leak_report r = memlens::find_leaks(
        [&] {
            for (auto& p : blocks) p = new char[24];
            std::thread other([&] {
                for (char* p : blocks) delete[] p;
            });
            other.join();
        },
        memlens::scope_kind::process);
    CHECK(r.count == 0);
    CHECK(r.sites.empty());
}

__attribute__((noinline)) std::vector<char*> sites_test_grow_a(int n) {
    std::vector<char*> out;
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back(new char[100]);
    return out;
}

__attribute__((noinline)) std::vector<char*> sites_test_grow_b(int n) {
    std::vector<char*> out;
    out.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) out.push_back(new char[10]);
    return out;
}

const memlens::statistic* stat_naming(const std::vector<memlens::statistic>& stats,
                                      const char* function) {
    for (const auto& s : stats) {
        if (s.key.find(function) != std::string::npos) return &s;
    }
    return nullptr;
}

TEST_CASE("snapshots group by site, function, file and line, and compare", "[sites]") {
    tracking_as sites(memlens::tracking_mode::sites);
    auto a1 = sites_test_grow_a(10);
    const memlens::snapshot before = memlens::take_snapshot();
    auto a2 = sites_test_grow_a(30);
    auto b = sites_test_grow_b(50);
    const memlens::snapshot after = memlens::take_snapshot();

    const auto by_function = memlens::statistics(after, memlens::group_by::function);
    const memlens::statistic* a = stat_naming(by_function, "sites_test_grow_a");
    const memlens::statistic* bs = stat_naming(by_function, "sites_test_grow_b");
    REQUIRE(a);
    REQUIRE(bs);
    // Each function also allocated its vector's buffer: 10 and 30 pointers, and 50.
    CHECK(a->count == 40 + 2);
    CHECK(a->bytes == 40 * 100 + 40 * sizeof(char*));
    CHECK(bs->count == 50 + 1);
    CHECK(bs->bytes == 50 * 10 + 50 * sizeof(char*));

    const auto diff = memlens::compare(before, after, memlens::group_by::site);
    REQUIRE_FALSE(diff.empty());
    // Largest growth first: grow_a's 30 new blocks of 100 bytes.
    CHECK(diff.front().key.find("sites_test_grow_a") != std::string::npos);
    CHECK(diff.front().bytes_diff == 30 * 100);
    CHECK(diff.front().count_diff == 30);

    const auto by_line = memlens::statistics(after, memlens::group_by::line);
    const memlens::statistic* line = stat_naming(by_line, "sites_test.cpp:");
    if (memlens::symbolize({reinterpret_cast<std::uintptr_t>(&sites_test_grow_a) + 1})
            .front()
            .file.empty()) {
        WARN("no external symbolizer: file:line grouping falls back to function names");
    } else {
        REQUIRE(line);
        CHECK(line->traceback.size() == 1);
    }

    memlens::snapshot_filter only_b;
    only_b.function = "*sites_test_grow_b*";
    const auto filtered = memlens::statistics(after, memlens::group_by::function, {only_b});
    REQUIRE(filtered.size() == 1);
    CHECK(filtered.front().count == 51);

    memlens::snapshot_filter not_b = only_b;
    not_b.include = false;
    const auto without_b = memlens::statistics(after, memlens::group_by::function, {not_b});
    CHECK(stat_naming(without_b, "sites_test_grow_b") == nullptr);
    CHECK(stat_naming(without_b, "sites_test_grow_a") != nullptr);

    for (auto* v : {&a1, &a2}) for (char* p : *v) delete[] p;
    for (char* p : b) delete[] p;
}

TEST_CASE("snapshots group by domain and filter by domain", "[sites]") {
    tracking_as sites(memlens::tracking_mode::sites);
    const memlens::domain d = memlens::domain::named("sites.resource");
    memlens::tracking_resource tracked(d);
    void* p = tracked.allocate(777, 8);
    void* q = tracked.allocate(223, 8);
    const memlens::snapshot s = memlens::take_snapshot();
    memlens::snapshot_filter in_d;
    in_d.domain = "sites.resource";
    const auto stats = memlens::statistics(s, memlens::group_by::domain, {in_d});
    REQUIRE(stats.size() == 1);
    CHECK(stats.front().key == "sites.resource");
    CHECK(stats.front().bytes == 1000);
    CHECK(stats.front().count == 2);
    tracked.deallocate(p, 777, 8);
    tracked.deallocate(q, 223, 8);
    memlens::snapshot_filter none = in_d;
    const auto after = memlens::statistics(memlens::take_snapshot(), memlens::group_by::domain, {none});
    CHECK(after.empty());
}

__attribute__((noinline)) void sites_test_temporaries() {
    for (int i = 0; i < 100; ++i) {
        char* p = new char[8];
        memlens_test::keep(p);
        delete[] p;
    }
}

__attribute__((noinline)) void sites_test_overlapping() {
    char* a = new char[8];
    char* b = new char[8];
    memlens_test::keep(a);
    memlens_test::keep(b);
    delete[] a;  // one allocation came after it: not temporary with a window of 1
    delete[] b;  // none came after it: temporary
}

TEST_CASE("temporary allocations are counted per site", "[sites]") {
    tracking_as sites(memlens::tracking_mode::sites);
    sites_test_temporaries();
    for (int i = 0; i < sites_test_ten; ++i) sites_test_overlapping();
    const auto temporaries = memlens::temporaries(memlens::take_snapshot());
    auto find = [&](const char* function) -> const memlens::temporary_site* {
        for (const auto& t : temporaries) {
            for (const auto& f : t.traceback) {
                if (f.function.find(function) != std::string::npos) return &t;
            }
        }
        return nullptr;
    };
    const memlens::temporary_site* loop = find("sites_test_temporaries");
    REQUIRE(loop);
    CHECK(loop->temporaries % 100 == 0);
    CHECK(loop->allocs == loop->temporaries);
    // Only the second allocation of each pair is temporary.
    const memlens::temporary_site* second = find("sites_test_overlapping");
    REQUIRE(second);
    CHECK(second->temporaries == second->allocs);
    CHECK(second->temporaries % 10 == 0);
    CHECK(std::count_if(temporaries.begin(), temporaries.end(), [](const auto& t) {
              return std::any_of(t.traceback.begin(), t.traceback.end(), [](const auto& f) {
                  return f.function.find("sites_test_overlapping") != std::string::npos;
              });
          }) == 1);
}

// Five sites holding 40%, 30%, 17%, 8% and 5% of the bytes, in sizes drawn from a seeded generator.
__attribute__((noinline)) void sites_test_sample_0(std::vector<char*>& out, std::size_t n) { out.push_back(new char[n]); }
__attribute__((noinline)) void sites_test_sample_1(std::vector<char*>& out, std::size_t n) { out.push_back(new char[n]); }
__attribute__((noinline)) void sites_test_sample_2(std::vector<char*>& out, std::size_t n) { out.push_back(new char[n]); }
__attribute__((noinline)) void sites_test_sample_3(std::vector<char*>& out, std::size_t n) { out.push_back(new char[n]); }
__attribute__((noinline)) void sites_test_sample_4(std::vector<char*>& out, std::size_t n) { out.push_back(new char[n]); }

TEST_CASE("sampled mode estimates every large site's bytes within 10%", "[sites][sampled]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sampled;
    c.sample_bytes = 4096;
    c.sample_seed = 12345;
    std::vector<char*> blocks;
    blocks.reserve(400000);
    const double shares[] = {0.40, 0.30, 0.17, 0.08, 0.05};
    void (*const site[])(std::vector<char*>&, std::size_t) = {
        sites_test_sample_0, sites_test_sample_1, sites_test_sample_2, sites_test_sample_3,
        sites_test_sample_4};
    std::uint64_t exact[5] = {};
    const std::uint64_t total = 48u << 20;
    std::mt19937_64 random(7);
    std::discrete_distribution<int> pick(std::begin(shares), std::end(shares));
    std::uniform_int_distribution<std::size_t> size(16, 1024);
    memlens::snapshot s;
    {
        tracking_as sampled(c);
        std::uint64_t done = 0;
        while (done < total) {
            const int i = pick(random);
            const std::size_t n = size(random);
            site[i](blocks, n);
            exact[i] += n;
            done += n;
        }
        s = memlens::take_snapshot();
    }
    REQUIRE(s.estimated());
    CHECK(s.sample_bytes == 4096);
    const auto stats = memlens::statistics(s, memlens::group_by::function);
    for (int i = 0; i < 5; ++i) {
        const std::string name = "sites_test_sample_" + std::to_string(i);
        const memlens::statistic* st = stat_naming(stats, name.c_str());
        REQUIRE(st);
        CHECK(st->estimated);
        INFO(name << ": estimated " << st->bytes << " bytes, exact " << exact[i]);
        CHECK(static_cast<double>(st->bytes) >= 0.9 * static_cast<double>(exact[i]));
        CHECK(static_cast<double>(st->bytes) <= 1.1 * static_cast<double>(exact[i]));
    }
    // The counters stay exact whatever is sampled.
    for (char* p : blocks) delete[] p;
}

TEST_CASE("counters stay exact in sites and sampled modes", "[sites]") {
    for (auto mode : {memlens::tracking_mode::sites, memlens::tracking_mode::sampled}) {
        tracking_as m(mode);
        memlens::scope sc;
        {
            std::vector<char*> blocks;
            blocks.reserve(1000);
            for (int i = 0; i < 1000; ++i) {
                blocks.push_back(new char[static_cast<std::size_t>(i + 1)]);
            }
            for (char* p : blocks) delete[] p;
        }
        const auto u = sc.usage();
        CHECK(u.allocs == 1001);
        CHECK(u.allocated == 1000 * 1001 / 2 + 1000 * sizeof(char*));
        CHECK(u.net == 0);
    }
}

TEST_CASE("recording an allocation allocates nothing through the hooks", "[sites]") {
    tracking_as sites(memlens::tracking_mode::sites);
    const auto before = memlens::stats(memlens::domain::heap());
    memlens::scope sc;
    char* p = new char[10];
    memlens_test::keep(p);
    delete[] p;
    CHECK(sc.usage().allocs == 1);
    CHECK(memlens::stats(memlens::domain::heap()).allocs - before.allocs == 1);
}

TEST_CASE("configure refuses values out of range and changes nothing", "[sites][config]") {
    errors_remembered errors;
    const memlens::tracking_config before = memlens::current_config();
    memlens::tracking_config bad;
    bad.mode = memlens::tracking_mode::sites;
    bad.stack_depth = 0;
    CHECK_FALSE(memlens::configure(bad));
    CHECK(last_error.find("stack_depth = 0") != std::string::npos);
    CHECK(last_error.find("1 to 128") != std::string::npos);
    bad.stack_depth = 16;
    bad.sample_bytes = 0;
    CHECK_FALSE(memlens::configure(bad));
    CHECK(last_error.find("sample_bytes = 0") != std::string::npos);
    bad.sample_bytes = 1024;
    bad.temporary_window = 0;
    CHECK_FALSE(memlens::configure(bad));
    CHECK(last_error.find("temporary_window") != std::string::npos);
    bad.temporary_window = 3;
    bad.output = "report.pdf";
    CHECK_FALSE(memlens::configure(bad));
    CHECK(last_error == "configure: output \"report.pdf\" has an extension memlens does not write; accepted: "
                        "none, .txt, .text or .log for text, .json, .html or .htm, .folded; the "
                        "configuration is unchanged");
    bad.output.clear();
    bad.temporary_window = 0;
    CHECK(memlens::current_config().mode == before.mode);
    CHECK(memlens::current_config().stack_depth == before.stack_depth);

    bad.temporary_window = 3;
    {
        tracking_as good(bad);
        const auto now = memlens::current_config();
        CHECK(now.mode == memlens::tracking_mode::sites);
        CHECK(now.stack_depth == 16);
        CHECK(now.sample_bytes == 1024);
        CHECK(now.temporary_window == 3);
    }
}

TEST_CASE("the environment is read with clear refusals", "[sites][config]") {
    errors_remembered errors;
    memlens::detail::live_settings s;
    ::setenv("MEMLENS_MODE", "sitez", 1);
    ::setenv("MEMLENS_STACK_DEPTH", "12", 1);
    ::setenv("MEMLENS_SAMPLE_BYTES", "64k", 1);
    ::setenv("MEMLENS_LEAKS_AT_EXIT", "1", 1);
    ::setenv("MEMLENS_OUTPUT", "leaks.txt", 1);
    memlens::detail::read_environment(s);
    CHECK(last_error == "MEMLENS_MODE=\"sitez\" is not valid; accepted: off, counters, sites, "
                        "sampled; using counters");
    CHECK(s.mode == memlens::detail::live_mode::counters);
    CHECK(s.stack_depth == 12);
    CHECK(s.sample_bytes == 65536);
    CHECK(s.leaks_at_exit);
    CHECK(std::string(s.output) == "leaks.txt");

    ::setenv("MEMLENS_MODE", "sampled", 1);
    ::setenv("MEMLENS_STACK_DEPTH", "500", 1);
    ::setenv("MEMLENS_SAMPLE_BYTES", "-3", 1);
    memlens::detail::live_settings t;
    memlens::detail::read_environment(t);
    // A bad interval keeps the mode asked for, at the default interval the refusal names.
    CHECK(t.mode == memlens::detail::live_mode::sampled);
    CHECK(t.sample_bytes == 512 * 1024);
    CHECK(t.stack_depth == 32);
    CHECK(last_error == "MEMLENS_SAMPLE_BYTES=\"-3\" is not valid; accepted: a whole number of bytes from 1 "
                        "to 1T (1,099,511,627,776), with an optional k, m or g suffix; using 512k");

    ::setenv("MEMLENS_OUTPUT", "leaks.pdf", 1);
    memlens::detail::live_settings u;
    memlens::detail::read_environment(u);
    CHECK(std::string(u.output).empty());
    CHECK(last_error == "MEMLENS_OUTPUT=\"leaks.pdf\" is not valid; accepted: none, .txt, .text or .log "
                        "for text, .json, .html or .htm, .folded; writing no output");
    for (const char* v : {"MEMLENS_MODE", "MEMLENS_STACK_DEPTH", "MEMLENS_SAMPLE_BYTES",
                          "MEMLENS_LEAKS_AT_EXIT", "MEMLENS_OUTPUT"}) {
        ::unsetenv(v);
    }
}

// Still reachable at exit, so that LeakSanitizer leaves the child alone.
char* volatile sites_test_kept_at_exit = nullptr;

__attribute__((noinline)) void sites_test_leak_at_exit() {
    sites_test_kept_at_exit = new char[4321];
}

namespace {
int error_pipe = -1;
void error_to_pipe(const char* message) noexcept {
    const auto n = ::write(error_pipe, message, std::strlen(message));
    (void)n;
}
}  // namespace

// Runs a child in sites mode that leaks 4,321 bytes and exits, writing its exit report to
// `path`; returns the child's pid once it has exited cleanly.
pid_t run_leaking_child(const char* path) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        c.output = path;
        if (!memlens::configure(c)) ::_exit(2);
        sites_test_leak_at_exit();
        std::exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    return child;
}

TEST_CASE("the exit report lists what is still alive, written whole", "[sites][exit]") {
    char path[] = "/tmp/memlens-exit-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    run_leaking_child(path);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    ::unlink(path);
    CHECK(text.str().find("still alive") != std::string::npos);
    CHECK(text.str().find("4,321 bytes") != std::string::npos);
    CHECK(text.str().find("sites_test_leak_at_exit") != std::string::npos);
}

TEST_CASE("the exit report takes the format its file name asks for", "[sites][exit]") {
    char path[] = "/tmp/memlens-exit-XXXXXX.json";
    const int fd = ::mkstemps(path, 5);
    REQUIRE(fd >= 0);
    ::close(fd);
    const pid_t child = run_leaking_child(path);
    const memlens::snapshot s = memlens::read_json(path);
    ::unlink(path);
    CHECK(s.run.mode == "sites");
    CHECK(s.run.pid == child);
    const auto stats = memlens::statistics(s, memlens::group_by::function);
    const memlens::statistic* site = stat_naming(stats, "sites_test_leak_at_exit");
    REQUIRE(site);
    CHECK(site->bytes == 4321);
    CHECK(site->count == 1);
}

TEST_CASE("an unwritable exit report path is reported, not fatal", "[sites][exit]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(fds[0]);
        error_pipe = fds[1];
        memlens::set_error_handler(&error_to_pipe);
        memlens::tracking_config c;
        c.output = "/nonexistent-dir/report.txt";
        if (!memlens::configure(c)) ::_exit(2);
        std::exit(0);
    }
    ::close(fds[1]);
    std::string message;
    char buffer[256];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(message.find("the exit report is lost") != std::string::npos);
    CHECK(message.find("/nonexistent-dir/report.txt") != std::string::npos);
}

TEST_CASE("sites mode keeps working in a forked child", "[sites][fork]") {
    tracking_as sites(memlens::tracking_mode::sites);
    std::atomic<bool> stop{false};
    // Another thread allocating at the moment of fork() is the point: memlens's locks must not
    // be left held in the child. The sanitizers' own allocators do not survive that (their
    // locks can be held by the thread that is gone), so under them the child forks alone.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    const bool allocate_while_forking = false;
#else
    const bool allocate_while_forking = true;
#endif
    std::thread busy;
    if (allocate_while_forking) {
        busy = std::thread([&] {
            while (!stop.load()) {
                auto* p = new char[32];
                memlens_test::keep(p);
                delete[] p;
            }
        });
    }
    for (int i = 0; i < 10; ++i) {
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            leaked_blocks.reserve(16);
            std::uint64_t count = 0, bytes = 0;
            {
                // The snapshot rather than the report: symbolizing in every child is slow.
                const memlens::leak_check check;
                sites_test_leak_shallow();
                for (const auto& a : check.leaked().allocations) {
                    ++count;
                    bytes += a.size;
                }
            }
            ::_exit(count == 3 && bytes == 120 ? 0 : 1);
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    stop = true;
    if (busy.joinable()) busy.join();
}

// Not tail calls: each function keeps a frame of its own while operator new runs.
__attribute__((noinline)) char* sites_test_peak_big() {
    char* p = new char[3 << 20];
    memlens_test::keep(p);
    return p;
}
__attribute__((noinline)) char* sites_test_after_peak() {
    char* p = new char[1 << 20];
    memlens_test::keep(p);
    return p;
}

TEST_CASE("the snapshot at the peak holds what was alive at the peak", "[sites][peak]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.capture_peak = true;
    tracking_as peak(c);
    memlens::reset_peak();
    char* big = sites_test_peak_big();
    memlens_test::keep(big);
    delete[] big;
    // Smaller than the peak: no new copy, so the peak's view keeps the big block.
    char* later = sites_test_after_peak();
    memlens_test::keep(later);
    const memlens::snapshot at_peak = memlens::peak_snapshot();
    delete[] later;
    const auto stats = memlens::statistics(at_peak, memlens::group_by::function);
    const memlens::statistic* b = stat_naming(stats, "sites_test_peak_big");
    REQUIRE(b);
    CHECK(b->bytes == (3u << 20));
    CHECK(stat_naming(stats, "sites_test_after_peak") == nullptr);
    CHECK(at_peak.totals.peak >= (3u << 20));
}
