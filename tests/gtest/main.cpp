// The GoogleTest runner of the memlens adapter tests, with memlens's hooks installed (without the
// exit report's writers, which these tests do not use).
#include <gtest/gtest.h>
#include <memlens/sources/new.hpp>

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
