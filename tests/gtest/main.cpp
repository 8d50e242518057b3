// The GoogleTest runner of the memlens adapter tests, with memlens's hooks installed.
#include <gtest/gtest.h>
#include <memlens/hooks.hpp>

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
