// Sites mode without a per-block table: a heap block's header names its site, so that its free
// updates the site's figures without a lookup; tracking_config::blocks keeps every block instead.
#include <memlens/memlens.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "tracking_support.hpp"

using memlens_test::tracking_as;

namespace {

constexpr std::size_t block_size = 48;

// Not tail calls: each keeps a frame of its own while operator new runs, so it is the site.
MEMLENS_TEST_NOINLINE char* site_headers_alloc() {
    char* p = new char[block_size];
    memlens_test::keep(p);
    return p;
}

MEMLENS_TEST_NOINLINE char* site_headers_brief() {
    char* p = new char[block_size];
    memlens_test::keep(p);
    return p;
}

MEMLENS_TEST_NOINLINE char* site_headers_kept() {
    char* p = new char[block_size];
    memlens_test::keep(p);
    return p;
}

// What a snapshot holds alive at the site whose function is `function`: blocks and bytes.
struct alive {
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
    std::uint64_t rows = 0;
};

alive alive_at(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    alive out;
    for (const memlens::live_allocation& a : s.allocations) {
        const memlens::frame_info* site = resolved.site(a.stack);
        if (!site || site->function.find(function) == std::string::npos) continue;
        out.count += a.count;
        out.bytes += a.size;
        ++out.rows;
    }
    return out;
}

// The per-site totals (alive or not) of the site whose function is `function`.
memlens::site_record record_at(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    memlens::site_record out;
    for (const memlens::site_record& r : s.sites) {
        const memlens::frame_info* site = resolved.site(r.stack);
        if (!site || site->function.find(function) == std::string::npos) continue;
        out.allocs += r.allocs;
        out.bytes += r.bytes;
        out.temporaries += r.temporaries;
    }
    return out;
}

void free_all(std::vector<char*>& blocks) {
    for (char* p : blocks) delete[] p;
    blocks.clear();
}

}  // namespace

TEST_CASE("in sites mode a heap block carries its site, not an entry in the live table", "[sites][headers]") {
    tracking_as sites(memlens::tracking_mode::sites);
    const std::uint64_t entries_before = memlens::live_table_usage().allocations;
    std::vector<char*> blocks;
    blocks.reserve(100);
    for (int i = 0; i < 100; ++i) blocks.push_back(site_headers_alloc());
    // The table holds none of them: its size does not follow the live set.
    CHECK(memlens::live_table_usage().allocations == entries_before);
    // Forty freed by another thread: each free finds its site in the block's header.
    std::thread([&] {
        for (int i = 0; i < 40; ++i) delete[] blocks[static_cast<std::size_t>(i)];
    }).join();
    blocks.erase(blocks.begin(), blocks.begin() + 40);

    const memlens::snapshot s = memlens::take_snapshot();
    const alive a = alive_at(s, "site_headers_alloc");
    CHECK(a.rows == 1);
    CHECK(a.count == 60);
    CHECK(a.bytes == 60 * block_size);
    const memlens::site_record r = record_at(s, "site_headers_alloc");
    CHECK(r.allocs == 100);
    CHECK(r.bytes == 100 * block_size);

    free_all(blocks);
    CHECK(alive_at(memlens::take_snapshot(), "site_headers_alloc").count == 0);
}

TEST_CASE("blocks from before sites mode, and sited blocks freed after it, keep the figures exact", "[sites][headers]") {
    char* before = site_headers_alloc();
    std::vector<char*> sited;
    {
        tracking_as sites(memlens::tracking_mode::sites);
        // Allocated in counters mode: its header names no site, and its free changes none.
        delete[] before;
        for (int i = 0; i < 3; ++i) sited.push_back(site_headers_alloc());
        CHECK(alive_at(memlens::take_snapshot(), "site_headers_alloc").count == 3);
    }
    const memlens::memory_stats counted = memlens::stats();
    // Freed in counters mode: the site still learns of it, and the counters stay exact.
    free_all(sited);
    CHECK(memlens::stats().current == counted.current - 3 * block_size);
    tracking_as again(memlens::tracking_mode::sites);
    CHECK(alive_at(memlens::take_snapshot(), "site_headers_alloc").count == 0);
}

TEST_CASE("temporary blocks are told without the live table within a window of 16", "[sites][headers][temporaries]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.temporary_window = 2;
    tracking_as sites(c);
    const memlens::site_record before = record_at(memlens::take_snapshot(), "site_headers_brief");
    const std::uint64_t entries_before = memlens::live_table_usage().allocations;
    // Freed at once: temporary.
    for (int i = 0; i < 10; ++i) delete[] site_headers_brief();
    // Freed after one more allocation of the thread: within a window of 2.
    char* first = site_headers_brief();
    char* second = site_headers_kept();
    delete[] first;
    // Freed after two more: outside it.
    char* third = site_headers_brief();
    char* a = site_headers_kept();
    char* b = site_headers_kept();
    delete[] third;
    // Freed by another thread: never temporary.
    char* elsewhere = site_headers_brief();
    std::thread([&] { delete[] elsewhere; }).join();
    CHECK(memlens::live_table_usage().allocations == entries_before);

    const memlens::snapshot s = memlens::take_snapshot();
    const memlens::site_record r = record_at(s, "site_headers_brief");
    CHECK(r.allocs - before.allocs == 13);
    CHECK(r.temporaries - before.temporaries == 11);
    delete[] second;
    delete[] a;
    delete[] b;
}

TEST_CASE("a temporary window above 16 keeps every block in the live table", "[sites][headers][temporaries]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.temporary_window = 17;
    tracking_as sites(c);
    // Site totals are the whole run's: other tests used this site too.
    const std::uint64_t temporaries_before = record_at(memlens::take_snapshot(), "site_headers_brief").temporaries;
    std::vector<char*> blocks;
    blocks.reserve(17);
    const std::uint64_t entries_before = memlens::live_table_usage().allocations;
    for (int i = 0; i < 17; ++i) blocks.push_back(site_headers_brief());
    CHECK(memlens::live_table_usage().allocations == entries_before + 17);
    // The first was followed by 16 more allocations: still within the window.
    delete[] blocks.front();
    blocks.erase(blocks.begin());
    CHECK(record_at(memlens::take_snapshot(), "site_headers_brief").temporaries == temporaries_before + 1);
    free_all(blocks);
}

TEST_CASE("tracking_config::blocks keeps one row per block, with its address", "[sites][headers]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.blocks = true;
    tracking_as sites(c);
    CHECK(memlens::current_config().blocks);
    std::vector<char*> blocks;
    for (int i = 0; i < 5; ++i) blocks.push_back(site_headers_kept());
    const memlens::snapshot s = memlens::take_snapshot();
    const memlens::detail::resolved_stacks resolved(s);
    std::vector<std::uintptr_t> found;
    for (const memlens::live_allocation& a : s.allocations) {
        const memlens::frame_info* site = resolved.site(a.stack);
        if (!site || site->function.find("site_headers_kept") == std::string::npos) continue;
        CHECK(a.count == 1);
        CHECK(a.size == block_size);
        found.push_back(a.address);
    }
    std::vector<std::uintptr_t> expected;
    for (char* p : blocks) expected.push_back(reinterpret_cast<std::uintptr_t>(p));
    std::sort(found.begin(), found.end());
    std::sort(expected.begin(), expected.end());
    CHECK(found == expected);
    free_all(blocks);
}
