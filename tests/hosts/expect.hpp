// The host programs' one assertion: they run without a test framework, as plain programs that a
// plugin is loaded into, and exit non-zero when an expectation failed.
#pragma once

#include <cstdio>
#include <string>

namespace host_test {

inline int failures = 0;

inline void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stdout, "FAILED: %s\n", what);
        ++failures;
    }
}

// The whole of a file, empty when it cannot be read.
inline std::string read_file(const char* path) {
    std::string text;
    if (std::FILE* f = std::fopen(path, "rb")) {
        char buffer[1024];
        std::size_t n;
        while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
        std::fclose(f);
    }
    return text;
}

}  // namespace host_test
