// A failed check's profile written next to the test's output: file names, contents, and the
// Catch2 adapter writing them for a failing assertion (in a child process, whose failure is its own).
#include <memlens/testing/catch2.hpp>
#include <memlens/testing/failure_files.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Whether a snapshot's JSON lists one live allocation of 2048 bytes ([address, size, ...] rows).
bool lists_2048(const std::string& json) {
    const std::size_t rows = json.find("\"allocations\":[");
    return rows != std::string::npos && json.find(",2048,", rows) != std::string::npos;
}

std::vector<std::unique_ptr<char[]>>& held() {
    static std::vector<std::unique_ptr<char[]>> blocks;
    return blocks;
}

MEMLENS_TEST_NOINLINE void leak_2048() {
    held().emplace_back(new char[2048]);
    memlens_test::keep(held().back().get());
}

}  // namespace

TEST_CASE("failure file names come from the test's name, sanitized", "[failure_files]") {
    using memlens::detail::failure_file_stem;
    CHECK(failure_file_stem("parser frees what it allocates") == "parser_frees_what_it_allocates");
    CHECK(failure_file_stem("Suite.Test/3") == "Suite.Test_3");
    CHECK(failure_file_stem("../../etc/passwd") == "etc_passwd");
    CHECK(failure_file_stem("***") == "test");
    CHECK(failure_file_stem(std::string(300, 'a')).size() == 100);
}

TEST_CASE("a failed leak check's profile is written as JSON and HTML", "[failure_files]") {
    memlens_test::temporary_directory dir;
    auto failure_dir = std::make_unique<memlens_test::scoped_environment>("MEMLENS_FAILURE_DIR", dir.path);
    held().reserve(4);
    const memlens::check_result r = memlens::check_no_leaks(leak_2048);
    REQUIRE_FALSE(r.passed);
    REQUIRE(r.profile);
    CHECK(r.profile->allocations.size() == 1);
    CHECK(r.profile->allocations[0].size == 2048);
    const std::string line = memlens::write_failure_profile(r, "leaks: on purpose");
    const std::string again = memlens::write_failure_profile(r, "leaks: on purpose");
    failure_dir.reset();
    const std::string stem = dir.path + "/leaks_on_purpose.memlens";
    CHECK(line == "\nmemlens: the failure's profile: " + stem + ".json and " + stem + ".html");
    CHECK(again == "\nmemlens: the failure's profile: " + stem + "-2.json and " + stem + "-2.html");
    const std::string json = read_text(stem + ".json");
    CHECK(lists_2048(json));
    CHECK(json.find("leak_2048") != std::string::npos);
    CHECK(read_text(stem + ".html").find("<html") != std::string::npos);

    const memlens::check_result passed = memlens::check_no_leaks([] {});
    CHECK_FALSE(passed.profile);
    CHECK(memlens::write_failure_profile(passed, "x").empty());
    held().clear();
}

TEST_CASE("the Catch2 adapter writes a failing check's profile and names it", "[failure_files][catch2]") {
    memlens_test::temporary_directory dir;
    const std::string out_path = dir.path + "/child.out";
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The child's own Catch2 records the failure; its report goes to a file, not the log.
        const int fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::setenv("MEMLENS_FAILURE_DIR", dir.path.c_str(), 1);
        held().reserve(4);
        MEMLENS_CHECK_NO_LEAKS(leak_2048);
        std::fflush(nullptr);
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    const std::string stem = dir.path + "/the_Catch2_adapter_writes_a_failing_check_s_profile_and_names_it.memlens";
    const std::string json = read_text(stem + ".json");
    CHECK(lists_2048(json));
    CHECK(read_text(stem + ".html").find("<html") != std::string::npos);
    // Catch2 wraps the message's long lines, the file names among them.
    CHECK(read_text(out_path).find("memlens: the failure's profile: " + dir.path) != std::string::npos);
}
