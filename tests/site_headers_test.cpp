// Sites mode without a per-block table: a heap block's header names its site, so that its free
// updates the site's figures without a lookup; tracking_config::blocks keeps every block instead.
#include <memlens/memlens.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "tracking_support.hpp"

using memlens_test::tracking_as;

namespace {

constexpr std::size_t block_size = 48;
// Each site allocates its own size, so that the linker cannot fold the three into one.
constexpr std::size_t brief_size = 40;
constexpr std::size_t kept_size = 56;

// Not tail calls: each keeps a frame of its own while operator new runs, so it is the site.
MEMLENS_TEST_NOINLINE char* site_headers_alloc() {
    char* p = new char[block_size];
    memlens_test::keep(p);
    return p;
}

MEMLENS_TEST_NOINLINE char* site_headers_brief() {
    char* p = new char[brief_size];
    memlens_test::keep(p);
    return p;
}

MEMLENS_TEST_NOINLINE char* site_headers_kept() {
    char* p = new char[kept_size];
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
    CHECK(memlens::live_table_usage().site_bytes > 0);
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
        CHECK(a.size == kept_size);
        found.push_back(a.address);
    }
    std::vector<std::uintptr_t> expected;
    for (char* p : blocks) expected.push_back(reinterpret_cast<std::uintptr_t>(p));
    std::sort(found.begin(), found.end());
    std::sort(expected.begin(), expected.end());
    CHECK(found == expected);
    free_all(blocks);
}

namespace {

using document = std::map<std::string, std::vector<int>>;

// Lines of the workload's allocations, taken on the lines themselves.
int key_line = 0, values_line = 0, node_line = 0;

// One key of 24 characters (one block of 25 bytes), one vector of `i % 7 + 1` ints, one map node.
MEMLENS_TEST_NOINLINE void insert_entry(document& d, int i) {
    std::string key(24, '-'); key_line = __LINE__;
    std::snprintf(key.data(), key.size() + 1, "entry-%018d", i);
    std::vector<int> values(static_cast<std::size_t>(i % 7 + 1), i); values_line = __LINE__;
    d.emplace(std::move(key), std::move(values)); node_line = __LINE__;
}

// What the document itself says is alive at each line: an independent count.
struct expected_figures {
    std::uint64_t keys = 0, key_bytes = 0, vectors = 0, vector_bytes = 0, nodes = 0, node_bytes = 0;
};

expected_figures count_document(const document& d) {
    expected_figures e;
    for (const auto& [key, values] : d) {
        ++e.keys;
        e.key_bytes += key.capacity() + 1;
        ++e.vectors;
        e.vector_bytes += values.capacity() * sizeof(int);
        ++e.nodes;
        e.node_bytes += sizeof(std::_Rb_tree_node<document::value_type>);
    }
    return e;
}

alive alive_at_line(const memlens::snapshot& s, int line) {
    const memlens::detail::resolved_stacks resolved(s);
    alive out;
    for (const memlens::live_allocation& a : s.allocations) {
        const memlens::frame_info* site = resolved.site(a.stack);
        if (!site || site->line != static_cast<std::uint32_t>(line) ||
            site->file.find("site_headers_test.cpp") == std::string::npos) {
            continue;
        }
        out.count += a.count;
        out.bytes += a.size;
        ++out.rows;
    }
    return out;
}

void check_against_document(const memlens::snapshot& s, const document& d) {
    const expected_figures e = count_document(d);
    const alive keys = alive_at_line(s, key_line), values = alive_at_line(s, values_line),
                nodes = alive_at_line(s, node_line);
    CHECK(keys.count == e.keys);
    CHECK(keys.bytes == e.key_bytes);
    CHECK(values.count == e.vectors);
    CHECK(values.bytes == e.vector_bytes);
    CHECK(nodes.count == e.nodes);
    CHECK(nodes.bytes == e.node_bytes);
}

// Inserts, erases every other entry, inserts those again with other values: the map workload
// of the benchmark, small.
void build_document(document& d, int n) {
    for (int i = 0; i < n; ++i) insert_entry(d, i);
    for (int i = 0; i < n; i += 2) d.erase(d.find([&] {
        char key[32];
        std::snprintf(key, sizeof key, "entry-%018d", i);
        return std::string(key);
    }()));
    for (int i = 0; i < n; i += 2) insert_entry(d, i + 3);
}

}  // namespace

TEST_CASE("per-site live blocks and bytes equal what the data structure holds, with and without per-block records", "[sites][headers][accuracy]") {
    for (const bool blocks : {false, true}) {
        CAPTURE(blocks);
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        c.blocks = blocks;
        tracking_as sites(c);
        document d;
        build_document(d, 5000);
        memlens::snapshot s = memlens::take_snapshot();
        memlens::symbolize(s);
        REQUIRE(key_line != 0);
        check_against_document(s, d);
        // Half the document freed on another thread: the figures follow.
        std::thread([&] {
            bool drop = false;
            for (auto it = d.begin(); it != d.end(); drop = !drop) it = drop ? d.erase(it) : ++it;
        }).join();
        s = memlens::take_snapshot();
        memlens::symbolize(s);
        check_against_document(s, d);
    }
}

TEST_CASE("null pointers given to record_alloc and record_free leave the live table whole", "[sites][table]") {
    tracking_as sites(memlens::tracking_mode::sites);
    const memlens::domain d = memlens::domain::named("site-headers.null");
    // A thousand recorded addresses, so that every shard of the table holds entries, the one
    // that address 0 hashes to included.
    static char blocks[1024];
    for (char& b : blocks) memlens::record_alloc(&b, 1, d);
    const std::uint64_t entries_before = memlens::live_table_usage().allocations;
    // Counted, not recorded: a free of address 0 once erased an empty slot and drove the
    // table's count below zero, after which every insert asked for a larger table.
    memlens::record_alloc(nullptr, 100, d);
    memlens::record_free(nullptr, 100, d);
    memlens::record_free(nullptr, 100, d);
    CHECK(memlens::live_table_usage().allocations == entries_before);
    CHECK(memlens::stats(d).allocs == 1025);
    CHECK(memlens::stats(d).frees == 2);
    for (char& b : blocks) memlens::record_free(&b, 1, d);
    CHECK(memlens::live_table_usage().allocations == entries_before - 1024);
}
