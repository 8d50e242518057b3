// Leak suppressions: the LeakSanitizer syntax, matching, the runtime's rules, and leak reports.
#include <memlens/testing/checks.hpp>
#include <memlens/view/snapshot.hpp>
#include <memlens/view/suppressions.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

memlens::frame_info frame(std::string function, std::string file = {}, std::string module = {}) {
    memlens::frame_info f;
    f.function = std::move(function);
    f.file = std::move(file);
    f.module = std::move(module);
    return f;
}

std::string* error_sink = nullptr;

std::vector<std::unique_ptr<char[]>>& kept() {
    static std::vector<std::unique_ptr<char[]>> blocks;
    return blocks;
}

MEMLENS_TEST_NOINLINE void suppressed_leaker() {
    kept().emplace_back(new char[24]);
    memlens_test::keep(kept().back().get());
}

MEMLENS_TEST_NOINLINE void other_leaker() {
    kept().emplace_back(new char[40]);
    memlens_test::keep(kept().back().get());
}

}  // namespace

TEST_CASE("suppressions parse leak lines, comments and blanks, and name bad lines", "[suppressions]") {
    const memlens::suppressions s = memlens::suppressions::parse(
        "# a comment\n"
        "\n"
        "leak:first_function\n"
        "   leak:  *cache.cpp  \n"
        "bogus\n"
        "race:not_ours\n"
        "leak:\n"
        "leak:^exact$\r\n",
        "my.supp", true);
    REQUIRE(s.rules().size() == 3);
    CHECK(s.rules()[0].pattern == "first_function");
    CHECK(s.rules()[0].line == 3);
    CHECK(s.rules()[1].pattern == "*cache.cpp");
    CHECK(s.rules()[1].line == 4);
    CHECK(s.rules()[2].pattern == "^exact$");
    CHECK(s.rules()[2].line == 8);
    CHECK(s.rules()[2].describe() == "leak:^exact$ (my.supp:8)");
    REQUIRE(s.errors().size() == 3);
    CHECK(s.errors()[0] == "my.supp:5: expected \"leak:pattern\", got \"bogus\"");
    CHECK(s.errors()[1] == "my.supp:6: \"race\" is not a kind memlens suppresses (only \"leak\")");
    CHECK(s.errors()[2] == "my.supp:7: \"leak:\" has no pattern");
}

TEST_CASE("a malformed line is reported through the error handler and skipped", "[suppressions]") {
    std::string errors;
    error_sink = &errors;
    memlens::set_error_handler([](const char* m) noexcept { *error_sink += std::string(m) + "\n"; });
    const memlens::suppressions s = memlens::suppressions::parse("leak:ok\nnot a rule\n", "f.supp");
    memlens::set_error_handler(nullptr);
    CHECK(s.rules().size() == 1);
    CHECK(errors == "suppressions: f.supp:2: expected \"leak:pattern\", got \"not a rule\"; the line is skipped\n");
}

TEST_CASE("patterns match anywhere unless anchored, with * wildcards", "[suppressions]") {
    using memlens::suppressions;
    CHECK(suppressions::pattern_matches("cache", "my_cache_fill"));
    CHECK(suppressions::pattern_matches("^my_", "my_cache_fill"));
    CHECK_FALSE(suppressions::pattern_matches("^cache", "my_cache_fill"));
    CHECK(suppressions::pattern_matches("fill$", "my_cache_fill"));
    CHECK_FALSE(suppressions::pattern_matches("cache$", "my_cache_fill"));
    CHECK(suppressions::pattern_matches("^my*fill$", "my_cache_fill"));
    CHECK(suppressions::pattern_matches("c*e_f", "my_cache_fill"));
    CHECK_FALSE(suppressions::pattern_matches("c*x", "my_cache_fill"));
    CHECK(suppressions::pattern_matches("^exact$", "exact"));
    CHECK_FALSE(suppressions::pattern_matches("^exact$", "exactly"));
    CHECK(suppressions::pattern_matches("libstdc++.so*", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"));
    CHECK(suppressions::pattern_matches("*", "anything"));
    CHECK_FALSE(suppressions::pattern_matches("a", ""));
}

TEST_CASE("a rule matches a function, file or module of any frame, inlined calls too", "[suppressions]") {
    const memlens::suppressions s = memlens::suppressions::parse(
        "leak:parser::load\nleak:vendor/*.cpp\nleak:libplugin.so\nleak:inlined_helper\n", "r.supp", true);
    std::vector<memlens::frame_info> by_function{frame("main"), frame("parser::load(int)")};
    std::vector<memlens::frame_info> by_file{frame("f", "/src/vendor/zip.cpp")};
    std::vector<memlens::frame_info> by_module{frame("g", "", "/opt/lib/libplugin.so")};
    memlens::frame_info outer = frame("outer");
    outer.inlined.push_back(frame("inlined_helper()"));
    std::vector<memlens::frame_info> by_inlined{outer};
    std::vector<memlens::frame_info> none{frame("main", "/src/main.cpp", "/bin/app")};
    REQUIRE(s.match(by_function) != nullptr);
    CHECK(s.match(by_function)->line == 1);
    REQUIRE(s.match(by_file) != nullptr);
    CHECK(s.match(by_file)->line == 2);
    REQUIRE(s.match(by_module) != nullptr);
    CHECK(s.match(by_module)->line == 3);
    REQUIRE(s.match(by_inlined) != nullptr);
    CHECK(s.match(by_inlined)->line == 4);
    CHECK(s.match(none) == nullptr);
}

TEST_CASE("the runtime's own blocks are suppressed by default", "[suppressions]") {
    const memlens::suppressions rt = memlens::runtime_suppressions();
    CHECK(rt.errors().empty());
    // libstdc++'s emergency exception pool, as the loader runs libstdc++'s initialisers.
    std::vector<memlens::frame_info> pool{frame("malloc", "", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
                                          frame("", "", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"),
                                          frame("call_init", "", "/lib64/ld-linux-x86-64.so.2"),
                                          frame("_dl_init", "", "/lib64/ld-linux-x86-64.so.2")};
    // glibc's stdout buffer, at the first printf.
    std::vector<memlens::frame_info> stdout_buffer{frame("malloc"), frame("_IO_file_doallocate"),
                                                   frame("_IO_doallocbuf"), frame("printf"), frame("main")};
    // A thread's TLS vector, as pthread_create makes the thread's stack and TCB.
    std::vector<memlens::frame_info> tls{frame("calloc"), frame("allocate_dtv"), frame("_dl_allocate_tls"),
                                         frame("allocate_stack"), frame("pthread_create"), frame("main")};
    // A running thread's block for a dlopen'd library's thread-locals, at its first use.
    std::vector<memlens::frame_info> dynamic_tls{frame("malloc"), frame("tls_get_addr_tail"), frame("__tls_get_addr"),
                                                 frame("touch_thread_local"), frame("start_thread")};
    std::vector<memlens::frame_info> program{frame("operator new(unsigned long)"), frame("std::string::_M_create"),
                                             frame("main")};
    REQUIRE(rt.match(pool) != nullptr);
    CHECK(rt.match(pool)->describe() == "leak:^_dl_init$ ((built in):2)");
    REQUIRE(rt.match(stdout_buffer) != nullptr);
    CHECK(rt.match(stdout_buffer)->describe() == "leak:^_IO_file_doallocate$ ((built in):3)");
    REQUIRE(rt.match(tls) != nullptr);
    CHECK(rt.match(tls)->describe() == "leak:^_dl_allocate_tls$ ((built in):4)");
    REQUIRE(rt.match(dynamic_tls) != nullptr);
    CHECK(rt.match(dynamic_tls)->describe() == "leak:^__tls_get_addr$ ((built in):5)");
    CHECK(rt.match(program) == nullptr);
    // The active list starts with them.
    const memlens::suppressions active = memlens::active_suppressions();
    REQUIRE(active.rules().size() >= 3);
    CHECK(active.rules()[0].pattern == "^_dl_init$");
}

TEST_CASE("MEMLENS_SUPPRESSIONS names a file of rules, read when the variable changes", "[suppressions]") {
    memlens_test::temporary_directory dir;
    const std::string path = dir.path + "/leaks.supp";
    {
        std::ofstream out(path);
        out << "# project rules\nleak:from_the_file\nwrong line\n";
    }
    ::setenv("MEMLENS_SUPPRESSIONS", path.c_str(), 1);
    std::string errors;
    error_sink = &errors;
    memlens::set_error_handler([](const char* m) noexcept { *error_sink += std::string(m) + "\n"; });
    const memlens::suppressions active = memlens::active_suppressions();
    memlens::set_error_handler(nullptr);
    ::unsetenv("MEMLENS_SUPPRESSIONS");
    const std::size_t builtin = memlens::runtime_suppressions().rules().size();
    REQUIRE(active.rules().size() == builtin + 1);
    CHECK(active.rules()[builtin].describe() == "leak:from_the_file (" + path + ":2)");
    CHECK(errors == "suppressions: " + path + ":3: expected \"leak:pattern\", got \"wrong line\"; the line is skipped\n");
    CHECK(memlens::active_suppressions().rules().size() == builtin);

    const memlens::suppressions missing = memlens::suppressions::read_file(dir.path + "/none.supp", true);
    REQUIRE(missing.errors().size() == 1);
    CHECK(missing.errors()[0] == dir.path + "/none.supp: cannot read the suppressions file");
}

TEST_CASE("leak reports leave suppressed leaks out and list them with the rule", "[suppressions]") {
    kept().reserve(8);
    memlens::set_suppressions(memlens::suppressions::parse("leak:suppressed_leaker\n", "(in code)"));
    const memlens::leak_report only = memlens::find_leaks(suppressed_leaker);
    CHECK(only.count == 0);
    CHECK(only.bytes == 0);
    CHECK(only.sites.empty());
    CHECK(only.suppressed_count == 1);
    CHECK(only.suppressed_bytes == 24);
    REQUIRE(only.suppressed.size() == 1);
    CHECK(only.suppressed[0].suppressed_by == "leak:suppressed_leaker ((in code):1)");

    const memlens::check_result passes = memlens::check_no_leaks(suppressed_leaker);
    CHECK(passes.passed);
    CHECK(passes.usage.net == 24);
    CHECK(passes.message.find("suppressed: 1 allocation, 24 bytes, from 1 stack\n"
                              "    1 allocation, 24 bytes by leak:suppressed_leaker ((in code):1)") !=
          std::string::npos);

    const memlens::check_result fails = memlens::check_no_leaks([] {
        suppressed_leaker();
        other_leaker();
    });
    INFO(fails.message);
    CHECK_FALSE(fails.passed);
    CHECK(fails.usage.net == 64);
    CHECK(fails.message.find("memlens: 1 allocation still alive, 40 bytes, from 1 stack") != std::string::npos);
    CHECK(fails.message.find("suppressed: 1 allocation, 24 bytes") != std::string::npos);

    memlens::set_suppressions(memlens::suppressions());
    const memlens::check_result unsuppressed = memlens::check_no_leaks(suppressed_leaker);
    CHECK_FALSE(unsuppressed.passed);
    kept().clear();
}

TEST_CASE("fork() while other threads read and set the rules leaves every child able to use them",
          "[suppressions]") {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&stop] {
            const memlens::suppressions rules = memlens::suppressions::parse("leak:from_a_thread\n", "(in code)");
            while (!stop.load()) {
                memlens::set_suppressions(rules);
                memlens_test::keep(memlens::active_suppressions().rules().data());
            }
        });
    }
    const std::size_t builtin = memlens::runtime_suppressions().rules().size();
    int stuck = 0;
    int wrong = 0;
    for (int i = 0; i < 100 && stuck == 0; ++i) {
        const pid_t child = ::fork();
        if (child == 0) {
            // A lock left held by a thread that the child does not have never comes free.
            ::alarm(5);
            memlens::set_suppressions(memlens::suppressions());
            ::_exit(memlens::active_suppressions().rules().size() == builtin ? 0 : 1);
        }
        int status = 0;
        REQUIRE(::waitpid(child, &status, 0) == child);
        if (!WIFEXITED(status)) ++stuck;
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) ++wrong;
    }
    stop = true;
    for (std::thread& t : threads) t.join();
    memlens::set_suppressions(memlens::suppressions());
    CHECK(stuck == 0);
    CHECK(wrong == 0);
}
