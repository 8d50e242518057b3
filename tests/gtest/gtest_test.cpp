// Memory checks through the GoogleTest adapter.
#include <memlens/testing/gtest.hpp>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "../support.hpp"

TEST(MemlensGtest, PassingChecks) {
    MEMLENS_EXPECT_NO_LEAKS([] {
        std::string s(1000, 'a');
        memlens_test::keep(s.data());
    });
    MEMLENS_ASSERT_NO_LEAKS([] {
        std::vector<int> v(64);
        memlens_test::keep(v.data());
    });
    MEMLENS_EXPECT_PEAK_BELOW(64 * 1024, [] {
        std::vector<char> v(32 * 1024);
        memlens_test::keep(v.data());
    });
    MEMLENS_EXPECT_ALLOCS(2, [] {
        std::vector<int> a(3), b(4);
        memlens_test::keep(a.data());
        memlens_test::keep(b.data());
    });
    int sum = 0;
    MEMLENS_EXPECT_NO_ALLOCS([&] {
        for (int i = 0; i < 10; ++i) sum += i;
    });
    EXPECT_EQ(sum, 45);
}

TEST(MemlensGtest, PassingExpectationsInsideABlockAllocateNothing) {
    int value = 3;
    MEMLENS_EXPECT_NO_ALLOCS([&] {
        EXPECT_EQ(value, 3);
        EXPECT_TRUE(value > 2);
        ASSERT_NE(value, 4);
    });
}

namespace {

// A block whose expectation fails, measured with and without holding failures back.
memlens::check_result measure_failing_block(bool hold) {
    memlens::gtest::held_failures held;
    memlens::check_result r;
    {
        std::unique_ptr<memlens::gtest::failure_interceptor> interceptor;
        if (hold) interceptor = std::make_unique<memlens::gtest::failure_interceptor>(held);
        r = memlens::check_no_leaks([] { ADD_FAILURE() << "reported from the block"; });
    }
    held.replay();
    return r;
}

}  // namespace

TEST(MemlensGtest, FailuresInsideABlockAreRecordedOutsideIt) {
    memlens::check_result held;
    memlens::check_result direct;
    EXPECT_NONFATAL_FAILURE(held = measure_failing_block(true), "reported from the block");
    EXPECT_NONFATAL_FAILURE(direct = measure_failing_block(false), "reported from the block");
    // GoogleTest formats the message in the block either way (that stays counted); storing the
    // result is what the adapter keeps out of it.
    EXPECT_LT(held.usage.allocs, direct.usage.allocs);
    EXPECT_LT(held.usage.net, direct.usage.net);
}

TEST(MemlensGtest, AFailingCheckNamesTheFigures) {
    std::unique_ptr<char[]> kept;
    EXPECT_NONFATAL_FAILURE(MEMLENS_EXPECT_NO_LEAKS([&] {
                                kept.reset(new char[2048]);
                                memlens_test::keep(kept.get());
                            }),
                            "net 2,048 bytes (2.00 KiB)");
    // The profiles of the checks failed on purpose go to the run's directory (main.cpp), not
    // to the working directory.
    EXPECT_NE(memlens::failure_directory(), ".");
    EXPECT_NONFATAL_FAILURE(MEMLENS_EXPECT_NO_LEAKS([&] {
                                kept.reset(new char[1024]);
                                memlens_test::keep(kept.get());
                            }),
                            "memlens: the failure's profile: " + memlens::failure_directory() + "/");
    EXPECT_FATAL_FAILURE(MEMLENS_ASSERT_ALLOCS(0, [] {
                             std::vector<int> used(1, 1);
                             memlens_test::keep(used.data());
                         }),
                         "exactly 0 allocations");
}

namespace {

// The block's first allocation, reachable, so that LeakSanitizer does not report the leak made
// on purpose below.
int* first_block = nullptr;

std::vector<std::unique_ptr<char[]>>& gtest_kept() {
    static std::vector<std::unique_ptr<char[]>> kept;
    return kept;
}

}  // namespace

TEST(MemlensGtest, GrowthAndFailureChecks) {
    MEMLENS_EXPECT_FAILURE_SAFE([] {
        auto a = std::make_unique<int>(1);
        auto b = std::make_unique<long>(2);
        memlens_test::keep(a.get());
        memlens_test::keep(b.get());
    });
    MEMLENS_EXPECT_NO_GROWTH(3, [] {
        std::vector<int> v(8);
        memlens_test::keep(v.data());
    });
    MEMLENS_EXPECT_NO_LEAKS_AFTER_WARM_UP([] {
        static std::vector<int> once(16);
        memlens_test::keep(once.data());
    });
    gtest_kept().reserve(8);
    EXPECT_NONFATAL_FAILURE(MEMLENS_EXPECT_NO_GROWTH(3, [] { gtest_kept().emplace_back(new char[64]); }),
                            "live 64 bytes, 128 bytes, 192 bytes after runs 1..3 (+64 bytes a run)");
    gtest_kept().clear();
    EXPECT_FATAL_FAILURE(MEMLENS_ASSERT_FAILURE_SAFE([] {
                             int* a = new int(1);
                             first_block = a;
                             memlens_test::keep(a);
                             auto b = std::make_unique<long>(2);
                             memlens_test::keep(b.get());
                             delete a;
                         }),
                         "the block leaked 4 bytes in 1 allocation");
    delete first_block;
}

TEST(MemlensGtest, AFailingLeakCheckWritesItsProfile) {
    memlens_test::temporary_directory dir;
    auto failure_dir = std::make_unique<memlens_test::scoped_environment>("MEMLENS_FAILURE_DIR", dir.path);
    std::unique_ptr<char[]> kept;
    EXPECT_NONFATAL_FAILURE(MEMLENS_EXPECT_NO_LEAKS([&] {
                                kept.reset(new char[3000]);
                                memlens_test::keep(kept.get());
                            }),
                            "memlens: the failure's profile: " + dir.path +
                                "/MemlensGtest.AFailingLeakCheckWritesItsProfile.memlens.json and ");
    failure_dir.reset();
    std::ifstream in(dir.path + "/MemlensGtest.AFailingLeakCheckWritesItsProfile.memlens.json");
    const std::string json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t rows = json.find("\"allocations\":[");
    ASSERT_NE(rows, std::string::npos);
    EXPECT_NE(json.find(",3000,", rows), std::string::npos);
    std::ifstream html(dir.path + "/MemlensGtest.AFailingLeakCheckWritesItsProfile.memlens.html");
    EXPECT_TRUE(html.good());
}

namespace {
std::unique_ptr<char[]> gtest_cache;  // a global: what it holds stays reachable
}

TEST(MemlensGtest, NothingLostPassesWhatStaysReachable) {
    MEMLENS_EXPECT_NOTHING_LOST([] {
        gtest_cache.reset(new char[128]);
        memlens_test::keep(gtest_cache.get());
    });
    gtest_cache.reset();
}

namespace {

// A registry that only grows (a global holds its nodes), and a cache of two entries that the
// first run fills.
std::vector<std::unique_ptr<char[]>>* gtest_registry = nullptr;
std::unique_ptr<char[]> gtest_bounded[2];

void grow_gtest_registry() {
    if (!gtest_registry) gtest_registry = new std::vector<std::unique_ptr<char[]>>();
    gtest_registry->reserve(8);
    gtest_registry->emplace_back(new char[24]);
}

void free_gtest_registry() {
    delete gtest_registry;
    gtest_registry = nullptr;
}

void fill_gtest_bounded() {
    for (auto& e : gtest_bounded) {
        if (!e) e.reset(new char[16]);
    }
}

}  // namespace

TEST(MemlensGtest, NothingNewReachableFailsWhatOnlyGrows) {
    memlens_test::temporary_directory dir;  // where the failures' profiles go
    ::setenv("MEMLENS_FAILURE_DIR", dir.path.c_str(), 1);
    MEMLENS_EXPECT_NOTHING_NEW_REACHABLE(3, [] { fill_gtest_bounded(); });
    EXPECT_NONFATAL_FAILURE(MEMLENS_EXPECT_NOTHING_NEW_REACHABLE(3, [] { grow_gtest_registry(); }),
                            "still reachable 24 bytes in 1 block, 48 bytes in 2 blocks, 72 bytes in 3 blocks "
                            "after runs 1..3 (+24 bytes a run)");
    free_gtest_registry();
    // The newest entry is the third in the vector's buffer, which the vector holds.
    EXPECT_FATAL_FAILURE(MEMLENS_ASSERT_NOTHING_NEW_REACHABLE(3, [] { grow_gtest_registry(); }),
                         "<- at offset 16 of block");
    ::unsetenv("MEMLENS_FAILURE_DIR");
    free_gtest_registry();
    for (auto& e : gtest_bounded) e.reset();
}
