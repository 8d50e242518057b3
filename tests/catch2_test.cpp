// Memory checks and their Catch2 adapter.
#include <memlens/testing/catch2.hpp>
#include <memlens/testing/checks.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <memory>
#include <string>
#include <vector>

namespace {

std::vector<int>& lazy_table() {
    static std::vector<int> table(256, 1);
    return table;
}

}  // namespace

TEST_CASE("check_no_leaks passes a balanced block and names a leak's size", "[checks]") {
    const memlens::check_result ok = memlens::check_no_leaks([] {
        std::vector<int> v(100);
        memlens_test::keep(v.data());
    });
    CHECK(ok.passed);
    CHECK(ok.usage.allocated == 400);

    std::unique_ptr<char[]> kept;
    const memlens::check_result leak = memlens::check_no_leaks([&] {
        kept.reset(new char[1536]);
        memlens_test::keep(kept.get());
    });
    CHECK_FALSE(leak.passed);
    CHECK(leak.usage.net == 1536);
    CHECK(leak.message.find("expected no leak") != std::string::npos);
    CHECK(leak.message.find("net 1,536 bytes (1.50 KiB)") != std::string::npos);
}

__attribute__((noinline)) void checks_test_leaky_helper(std::unique_ptr<char[]>& kept) {
    kept.reset(new char[700]);
    memlens_test::keep(kept.get());
}

TEST_CASE("a failing check_no_leaks lists the leaking site and its stack", "[checks]") {
    std::unique_ptr<char[]> kept;
    const memlens::check_result leak = memlens::check_no_leaks([&] {
        for (int i = 0; i < 100; ++i) {
            std::vector<int> balanced(10);
            memlens_test::keep(balanced.data());
        }
        checks_test_leaky_helper(kept);
    });
    CHECK_FALSE(leak.passed);
    CHECK(leak.message.find("1 allocation still alive, 700 bytes, from 1 stack") != std::string::npos);
    CHECK(leak.message.find("checks_test_leaky_helper") != std::string::npos);
}

TEST_CASE("check_peak_below shows the peak beside the limit", "[checks]") {
    const memlens::check_result r = memlens::check_peak_below(1024 * 1024, [] {
        std::vector<char> big(3 * 1024 * 1024);
        memlens_test::keep(big.data());
    });
    CHECK_FALSE(r.passed);
    CHECK(r.usage.peak == 3 * 1024 * 1024);
    CHECK(r.message.find("peak below 1,048,576 bytes (1.00 MiB)") != std::string::npos);
    CHECK(r.message.find("peak 3,145,728 bytes (3.00 MiB)") != std::string::npos);
    CHECK(memlens::check_peak_below(4096, [] {
              std::vector<char> small(4000);
              memlens_test::keep(small.data());
          }).passed);
}

TEST_CASE("check_allocs and check_no_allocs count allocations exactly", "[checks]") {
    CHECK(memlens::check_allocs(3, [] {
              std::vector<int> a(1), b(2), c(3);
              memlens_test::keep(a.data());
              memlens_test::keep(b.data());
              memlens_test::keep(c.data());
          }).passed);
    const memlens::check_result two = memlens::check_allocs(3, [] {
        std::vector<int> a(1), b(2);
        memlens_test::keep(a.data());
        memlens_test::keep(b.data());
    });
    CHECK_FALSE(two.passed);
    CHECK(two.message.find("exactly 3 allocations") != std::string::npos);
    CHECK(two.message.find("in 2 allocations") != std::string::npos);

    int sum = 0;
    CHECK(memlens::check_no_allocs([&] {
              for (int i = 0; i < 100; ++i) sum += i;
          }).passed);
    CHECK(sum == 4950);
}

TEST_CASE("a warm-up run keeps one-time set-up out of the measure", "[checks]") {
    // The first call builds the table; only a warmed-up check sees the steady state.
    static bool first = true;
    auto use = [] { return lazy_table()[3]; };
    if (first) {
        CHECK_FALSE(memlens::check_no_allocs(use).passed);
        first = false;
    }
    CHECK(memlens::check_no_allocs(use, memlens::check_options{}.with_warm_up()).passed);
}

namespace {

// Stands for Catch2's bookkeeping, which allocates or not depending on the reporter and the
// build: every call into the result capture allocates and keeps a string here.
std::vector<std::string> bookkeeping;
struct allocating_bookkeeping {
    allocating_bookkeeping() { bookkeeping.emplace_back(100, 'b'); }
};

}  // namespace

TEST_CASE("Catch2's own work inside a checked block is not blamed on it", "[checks][catch2]") {
    bookkeeping.reserve(64);  // no reallocation inside the measured blocks
    int value = 1;
    auto block = [&] {
        CHECK(value == 1);
        REQUIRE(value + 1 == 2);
    };
    memlens::catch2::wrapped_capture<allocating_bookkeeping> framework;
    // Without the adapter, the framework's allocations are charged to the block...
    const memlens::check_result raw = memlens::check_no_allocs(block);
    CHECK(raw.usage.allocs == 2);
    CHECK(raw.usage.net == 2 * 101);
    // ...with it, the block is seen as it is: it allocates nothing.
    MEMLENS_REQUIRE_NO_ALLOCS(block);
    MEMLENS_CHECK_NO_ALLOCS(block);
    CHECK(bookkeeping.size() >= 6);
}

TEST_CASE("the user's own expression inside REQUIRE is still measured", "[checks][catch2]") {
    const memlens::check_result r = [] {
        memlens::catch2::framework_excluded excluded;
        return memlens::check_allocs(1, [] { REQUIRE(std::string(100, 'x').size() == 100); });
    }();
    CHECK(r.passed);
}

TEST_CASE("Catch2 adapter macros pass on good blocks", "[checks][catch2]") {
    MEMLENS_REQUIRE_NO_LEAKS([] {
        std::string s(1000, 'a');
        memlens_test::keep(s.data());
    });
    MEMLENS_CHECK_NO_LEAKS(
        [] {
            std::vector<double> v(10);
            memlens_test::keep(v.data());
        },
        memlens::check_options{});
    MEMLENS_REQUIRE_PEAK_BELOW(64 * 1024, [] {
        std::vector<char> v(32 * 1024);
        memlens_test::keep(v.data());
    });
    MEMLENS_CHECK_PEAK_BELOW(64 * 1024, [] {
        std::vector<char> v(32 * 1024);
        memlens_test::keep(v.data());
    });
    MEMLENS_REQUIRE_ALLOCS(2, [] {
        std::vector<int> a(3), b(4);
        memlens_test::keep(a.data());
        memlens_test::keep(b.data());
    });
    MEMLENS_CHECK_ALLOCS(1, [] {
        std::vector<int> a(3);
        memlens_test::keep(a.data());
    });
}

TEST_CASE("process checks see other threads", "[checks]") {
    memlens::check_options process;
    process.kind = memlens::scope_kind::process;
    const memlens::check_result r = memlens::check_peak_below(
        1 << 20,
        [] {
            std::vector<char> big(2 << 20);
            memlens_test::keep(big.data());
        },
        process);
    CHECK_FALSE(r.passed);
    CHECK(r.usage.peak >= (2u << 20));
}

TEST_CASE("limit checks pass at the limit and say by how much they are over", "[checks]") {
    auto three_blocks = [] {
        std::vector<char> a(100), b(200), c(300);
        memlens::keep_observable(a.data());
        memlens::keep_observable(b.data());
        memlens::keep_observable(c.data());
    };
    CHECK(memlens::check_allocs_at_most(3, three_blocks).passed);
    const memlens::check_result two = memlens::check_allocs_at_most(2, three_blocks);
    CHECK_FALSE(two.passed);
    CHECK(two.message.find("expected at most 2 allocations;") != std::string::npos);
    CHECK(two.message.find("; 1 over the limit") != std::string::npos);

    CHECK(memlens::check_allocated_at_most(600, three_blocks).passed);
    const memlens::check_result bytes = memlens::check_allocated_at_most(512, three_blocks);
    CHECK_FALSE(bytes.passed);
    CHECK(bytes.message.find("expected at most 512 bytes allocated in total;") != std::string::npos);
    CHECK(bytes.message.find("; 88 bytes over the limit") != std::string::npos);

    CHECK(memlens::check_peak_at_most(600, three_blocks).passed);
    CHECK_FALSE(memlens::check_peak_below(600, three_blocks).passed);
    const memlens::check_result peak = memlens::check_peak_at_most(599, three_blocks);
    CHECK_FALSE(peak.passed);
    CHECK(peak.message.find("; 1 byte over the limit") != std::string::npos);
}

TEST_CASE("the suite's operator new is memlens's", "[checks]") {
    CHECK(memlens::hooks_installed());
    CHECK(memlens::hooks_installed());
}

TEST_CASE("keep_observable keeps an allocation the compiler could drop", "[checks]") {
    memlens::scope s;
    int* p = new int(7);
    memlens::keep_observable(p);
    delete p;
    const memlens::block_usage u = s.usage();
    CHECK(u.allocs == 1);
    CHECK(u.allocated == sizeof(int));
}

TEST_CASE("the limit checks have Catch2 adapters", "[checks][catch2]") {
    MEMLENS_CHECK_ALLOCS_AT_MOST(1, [] {
        std::vector<char> one(10);
        memlens::keep_observable(one.data());
    });
    MEMLENS_CHECK_ALLOCATED_AT_MOST(10, [] {
        std::vector<char> one(10);
        memlens::keep_observable(one.data());
    });
    MEMLENS_CHECK_PEAK_AT_MOST(10, [] {
        std::vector<char> one(10);
        memlens::keep_observable(one.data());
    });
}
