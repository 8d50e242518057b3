// Helpers of the tests that hand memlens's files to the tools that read them (go tool pprof,
// ms_print): running a tool, and whether it is there at all.
#pragma once

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace memlens_test {

// Whether `tool` is on PATH. Where the suite must run every test (MEMLENS_REQUIRE_TESTS, the
// tools then being installed), a missing tool fails the test; elsewhere it is a warning, and the
// test checks nothing more.
inline bool tool_present(const std::string& tool, const std::string& package) {
    const std::string probe = "command -v '" + tool + "' >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return true;
#if defined(MEMLENS_TEST_REQUIRE_TOOLS)
    FAIL(tool + " is not installed (Debian: " + package + "), and every test must run");
#else
    WARN(tool + " is not installed (Debian: " + package + "): the test is skipped");
#endif
    return false;
}

// What `command` (a shell command line) writes to stdout and stderr.
inline std::string run_tool(const std::string& command) {
    std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) return "cannot run " + command;
    std::string out;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) != 0;) out.append(buffer, n);
    ::pclose(pipe);
    return out;
}

// The "flat" figure of `go tool pprof -top` on the line naming `function`, with any unit
// suffix ("B") dropped; -1 when no line names it.
inline long long top_flat(const std::string& top, const std::string& function) {
    std::istringstream lines(top);
    for (std::string line; std::getline(lines, line);) {
        if (line.find(function) == std::string::npos) continue;
        std::istringstream fields(line);
        std::string flat;
        fields >> flat;
        char* end = nullptr;
        const long long value = std::strtoll(flat.c_str(), &end, 10);
        if (end != flat.c_str() && (*end == '\0' || std::string(end) == "B")) return value;
    }
    return -1;
}

}  // namespace memlens_test
