// memlens/testing/failure_files.hpp: a failed check's profile (check_result::profile) written as
// JSON and HTML next to the test's output, for the Catch2 and GoogleTest adapters.
#pragma once

#include <cstdlib>
#include <exception>
#include <string>

#include <sys/stat.h>

#include "../view/report.hpp"
#include "checks.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Where failed checks' profiles go: the directory MEMLENS_FAILURE_DIR names, else the current
/// directory (".").
inline std::string failure_directory() {
    const char* dir = std::getenv("MEMLENS_FAILURE_DIR");
    return dir && *dir ? std::string(dir) : std::string(".");
}

namespace detail {

// `test_name` as a file name: letters, digits, '.', '-' and '_' kept, every other run of
// characters one '_', at most 100 characters, "test" when nothing is left.
inline std::string failure_file_stem(const std::string& test_name) {
    std::string out;
    for (char c : test_name) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                           c == '.' || c == '-' || c == '_';
        if (plain) {
            out += c;
        } else if (out.empty() || out.back() != '_') {
            out += '_';
        }
        if (out.size() == 100) break;
    }
    while (!out.empty() && (out.front() == '.' || out.front() == '_')) out.erase(out.begin());
    while (!out.empty() && out.back() == '_') out.pop_back();
    return out.empty() ? std::string("test") : out;
}

inline bool path_exists(const std::string& path) noexcept {
    struct ::stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

}  // namespace detail

/// Writes `result.profile` as `<dir>/<test>.memlens.json` and `.html` (dir: failure_directory();
/// test: `test_name` sanitized; "-2", "-3"... added when the test failed before), and returns a
/// line for the failure message naming the two files, or saying why they could not be written.
/// Returns "" when the result has no profile. Allocates; never throws but std::bad_alloc.
inline std::string write_failure_profile(const check_result& result, const std::string& test_name) {
    if (!result.profile) return "";
    const std::string base = failure_directory() + "/" + detail::failure_file_stem(test_name) + ".memlens";
    std::string stem = base;
    for (int n = 2; detail::path_exists(stem + ".json") && n < 1000; ++n) stem = base + "-" + std::to_string(n);
    try {
        write_report(*result.profile, stem + ".json", "memlens: " + test_name);
        write_report(*result.profile, stem + ".html", "memlens: " + test_name);
    } catch (const std::exception& e) {
        return std::string("\nmemlens: the failure's profile could not be written: ") + e.what();
    }
    return "\nmemlens: the failure's profile: " + stem + ".json and " + stem + ".html";
}

MEMLENS_NAMESPACE_END
