// Run-twice leak checks and growth checks: check_no_leaks_after_warm_up and check_no_growth.
#include <memlens/testing/catch2.hpp>
#include <memlens/testing/checks.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <memory>
#include <string>
#include <vector>

namespace {

std::vector<std::unique_ptr<char[]>>& kept_blocks() {
    static std::vector<std::unique_ptr<char[]>> kept;
    return kept;
}

// Keeps 100 bytes more on each call, reachable from a cache.
MEMLENS_TEST_NOINLINE void grow_kept() {
    kept_blocks().emplace_back(new char[100]);
    memlens_test::keep(kept_blocks().back().get());
}

// Fills a table on its first call only.
MEMLENS_TEST_NOINLINE std::vector<int>& lazy_once() {
    static std::vector<int> table(64, 1);
    return table;
}

}  // namespace

TEST_CASE("check_no_leaks_after_warm_up charges only the second run", "[growth]") {
    const auto fill_and_use = [] {
        std::vector<int>& t = lazy_once();
        std::vector<int> copy(t.begin(), t.begin() + 4);
        memlens_test::keep(copy.data());
    };
    const memlens::check_result warm = memlens::check_no_leaks_after_warm_up(fill_and_use);
    CHECK(warm.passed);
    CHECK(warm.usage.allocs == 1);
    CHECK(warm.usage.allocated == 16);

    std::vector<std::unique_ptr<int>> held;
    held.reserve(2);
    const memlens::check_result leak = memlens::check_no_leaks_after_warm_up([&] {
        held.emplace_back(new int(5));
        memlens_test::keep(held.back().get());
    });
    CHECK(held.size() == 2);
    CHECK_FALSE(leak.passed);
    CHECK(leak.usage.net == 4);
}

TEST_CASE("check_no_growth names a site that a cache keeps growing", "[growth]") {
    kept_blocks().reserve(16);
    const memlens::check_result r = memlens::check_no_growth(4, grow_kept);
    CHECK_FALSE(r.passed);
    CHECK(r.usage.allocs == 1);
    CHECK(r.usage.net == 100);
    INFO(r.message);
    CHECK(r.message.find("expected no site whose live bytes grow on each of 4 runs") != std::string::npos);
    CHECK(r.message.find("grow_kept") != std::string::npos);
    CHECK(r.message.find("live 100 bytes, 200 bytes, 300 bytes, 400 bytes after runs 1..4 (+100 bytes a run)") !=
          std::string::npos);
    kept_blocks().clear();
}

TEST_CASE("check_no_growth passes a one-time cache and a balanced block", "[growth]") {
    const memlens::check_result lazy = memlens::check_no_growth(3, [] {
        memlens_test::keep(lazy_once().data());
        std::string s(200, 'x');
        memlens_test::keep(s.data());
    });
    INFO(lazy.message);
    CHECK(lazy.passed);
    CHECK(lazy.usage.allocs == 1);

    const memlens::check_result few = memlens::check_no_growth(1, grow_kept);
    CHECK_FALSE(few.passed);
    CHECK(few.message == "memlens: check_no_growth needs at least 2 runs to see growth, got 1");
    CHECK(kept_blocks().empty());
}

TEST_CASE("the Catch2 growth and failure assertions pass a well-behaved block", "[growth][catch2]") {
    MEMLENS_REQUIRE_NO_GROWTH(3, [] {
        std::vector<int> v(10);
        memlens_test::keep(v.data());
    });
    MEMLENS_CHECK_NO_LEAKS_AFTER_WARM_UP([] { memlens_test::keep(lazy_once().data()); });
}
