// The GoogleTest runner of the memlens adapter tests, with memlens's hooks installed (without the
// exit report's writers, which these tests do not use).
#include <gtest/gtest.h>
#include <memlens/sources/new.hpp>

#include <cstdio>
#include <cstdlib>

#include "../support.hpp"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    // The tests fail leak and growth checks on purpose, and each such failure writes its profile
    // into MEMLENS_FAILURE_DIR, the working directory by default. Unless the variable names a
    // directory, the profiles go to one of the run's own: removed when every test passed, kept
    // and named when one failed.
    const char* named = std::getenv("MEMLENS_FAILURE_DIR");
    if (named && *named) return RUN_ALL_TESTS();
    memlens_test::temporary_directory dir;
    const memlens_test::scoped_environment failure_dir("MEMLENS_FAILURE_DIR", dir.path);
    const int result = RUN_ALL_TESTS();
    if (result != 0) {
        dir.kept = true;
        std::printf("memlens: the failed checks' profiles are in %s\n", dir.path.c_str());
    }
    return result;
}
