// The host programs' one assertion: they run without a test framework, as plain programs that a
// plugin is loaded into, and exit non-zero when an expectation failed.
#pragma once

#include <cstdio>

namespace host_test {

inline int failures = 0;

inline void expect(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stdout, "FAILED: %s\n", what);
        ++failures;
    }
}

}  // namespace host_test
