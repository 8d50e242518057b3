// Leak kinds in a snapshot: set_leak_kinds() from a scan of a program state built here, the exact
// bytes and blocks of each kind at each site, the back-reference chain of a block held by a
// global, and the JSON round trip of all of it.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memlens/testing/checks.hpp>
#include <memlens/view/json.hpp>
#include <memlens/view/leak_kinds.hpp>
#include <memlens/view/report.hpp>
#include "tracking_support.hpp"

// As in reach_test.cpp: under the sanitizers locals live off the thread stacks and the kinds
// would be wrong for reasons that are not memlens's.
#if !defined(MEMLENS_DETAIL_SANITIZED)

namespace {

constexpr std::uintptr_t scramble = 0x5a5a5a5a5a5a5a5aull;

struct list_node {
    list_node* next;
    std::uint64_t payload[5];  // 48 bytes a node
};

// The roots of the state: a table held by a global, and a pointer into a block's middle.
char* volatile kinds_table = nullptr;
char* volatile kinds_interior = nullptr;

__attribute__((noinline)) list_node* kinds_tail_nodes() {
    auto* c = new list_node{};
    memlens::keep_observable(c);
    return new list_node{c, {}};
}

// A three-node list whose head pointer is dropped: the head definitely lost (48 bytes), the
// other two nodes indirectly lost (96 bytes, 2 blocks).
__attribute__((noinline)) std::uintptr_t kinds_dropped_head() {
    auto* head = new list_node{kinds_tail_nodes(), {}};
    memlens::keep_observable(head);
    return reinterpret_cast<std::uintptr_t>(head) ^ scramble;
}

// A block held only through a pointer 16 bytes into it: possibly lost (80 bytes).
__attribute__((noinline)) void kinds_interior_block() {
    kinds_interior = new char[80] + 16;
}

__attribute__((noinline)) char* kinds_leaf_block() { return new char[1 << 19](); }

// A global holds a 1 MiB table whose word at offset 16 holds a 512 KiB block: both still
// reachable, the two largest still-reachable sites of the process.
__attribute__((noinline)) void kinds_global_table() {
    char* table = new char[1 << 20]();
    char* leaf = kinds_leaf_block();
    std::memcpy(table + 16, &leaf, sizeof leaf);
    kinds_table = table;
}

// The figures of kind `k` at the sites whose innermost frame of this file is `function` (its
// lines together).
memlens::kind_figures site_figures(const memlens::snapshot& s, memlens::leak_kind k, const char* function) {
    memlens::kind_figures f;
    for (const memlens::leak_site& site : memlens::leaks_of_kind(s, k, memlens::suppressions()).sites) {
        // The innermost frame of this file's functions is the site.
        const memlens::frame_info* innermost = nullptr;
        for (const memlens::frame_info& frame : site.traceback) {
            if (!innermost && frame.function.find("kinds_") != std::string::npos) innermost = &frame;
        }
        if (!innermost || innermost->function.find(function) == std::string::npos) continue;
        f.bytes += site.bytes;
        f.blocks += site.count;
    }
    return f;
}

void check_state(const memlens::snapshot& s, std::uintptr_t table, std::uintptr_t leaf) {
    using memlens::leak_kind;
    REQUIRE(s.classified);
    const auto check = [&](leak_kind k, const char* function, std::uint64_t bytes, std::uint64_t blocks) {
        const memlens::kind_figures f = site_figures(s, k, function);
        INFO(memlens::leak_kind_name(k) << " from " << function);
        CHECK(f.bytes == bytes);
        CHECK(f.blocks == blocks);
    };
    check(leak_kind::definitely_lost, "kinds_dropped_head", 48, 1);
    check(leak_kind::indirectly_lost, "kinds_tail_nodes", 96, 2);
    check(leak_kind::possibly_lost, "kinds_interior_block", 80, 1);
    check(leak_kind::still_reachable, "kinds_global_table", 1 << 20, 1);
    check(leak_kind::still_reachable, "kinds_leaf_block", 1 << 19, 1);
    // Nowhere else: the dropped head is no other kind.
    check(leak_kind::still_reachable, "kinds_dropped_head", 0, 0);
    check(leak_kind::possibly_lost, "kinds_dropped_head", 0, 0);
    // Each kind's figures are its rows' sum.
    for (const leak_kind k : {leak_kind::still_reachable, leak_kind::possibly_lost, leak_kind::indirectly_lost,
                              leak_kind::definitely_lost}) {
        std::uint64_t bytes = 0, blocks = 0;
        for (const memlens::live_allocation& a : s.allocations) {
            if (a.kind != k) continue;
            bytes += a.size;
            blocks += a.count;
        }
        CHECK(memlens::leak_kind_figures(s, k).bytes == bytes);
        CHECK(memlens::leak_kind_figures(s, k).blocks == blocks);
    }

    // The leaf's chain: the leaf, the table that holds it at offset 16, the global.
    REQUIRE(s.backref_chains.size() >= 2);
    const memlens::backref_chain* leaf_chain = nullptr;
    std::vector<memlens::backref_link> links;
    for (std::size_t c = 0; c < s.backref_chains.size() && !leaf_chain; ++c) {
        links.clear();
        for (const memlens::backref_link& l : s.backref_links) {
            if (l.chain == c) links.push_back(l);
        }
        if (!links.empty() && links.front().address == leaf) leaf_chain = &s.backref_chains[c];
    }
    REQUIRE(leaf_chain);
    REQUIRE(links.size() == 2);
    CHECK(links[0].size == 1 << 19);
    CHECK(links[0].offset == 0);
    CHECK(links[0].kind == leak_kind::still_reachable);
    CHECK(links[1].address == table);
    CHECK(links[1].size == 1 << 20);
    CHECK(links[1].offset == 16);
    CHECK(leaf_chain->root == "global");
    CHECK(leaf_chain->address == reinterpret_cast<std::uintptr_t>(&kinds_table));
    CHECK_FALSE(leaf_chain->name.empty());

    // The text report ends with memcheck's summary and the chains.
    const std::string text = memlens::format_report(s, memlens::report_format::text);
    CHECK(text.find(memlens::format_leak_kinds(s)) != std::string::npos);
    CHECK(text.find("definitely lost: 48 bytes in 1 blocks") != std::string::npos);
}

// Runs a child in per-block mode with MEMLENS_LEAKS_AT_EXIT=kinds's setting that builds the
// state and exits, writing its exit report to `path`.
void run_classified_child(const std::string& path) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        c.blocks = true;
        c.leak_kinds_at_exit = true;
        c.output = path;
        if (!memlens::configure(c)) ::_exit(2);
        kinds_dropped_head();
        kinds_interior_block();
        kinds_global_table();
        std::exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
}

}  // namespace

TEST_CASE("set_leak_kinds gives each kind's exact bytes and blocks per site, and the chain to a global",
          "[reach][kinds]") {
    memlens_test::per_block_mode on;
    const std::uintptr_t head = kinds_dropped_head();
    kinds_interior_block();
    kinds_global_table();
    const auto table = reinterpret_cast<std::uintptr_t>(kinds_table);
    std::uintptr_t leaf = 0;
    std::memcpy(&leaf, kinds_table + 16, sizeof leaf);

    const memlens::leak_kinds r = memlens::classify_leaks();
    REQUIRE(r.unstopped.empty());
    REQUIRE(r.blocks.classified);
    memlens::snapshot s = memlens::take_snapshot();
    memlens::set_leak_kinds(s, r, 2);
    CHECK(s.allocations.size() == r.blocks.allocations.size());
    CHECK(s.backref_chains.size() == 2);
    check_state(s, table, leaf);

    SECTION("the JSON file carries the kinds and the chains") {
        const memlens::snapshot back = memlens::from_json(memlens::to_json(s));
        check_state(back, table, leaf);
        CHECK(back.backref_links.size() == s.backref_links.size());
    }

    // Free what was built, the lost blocks through the addresses kept aside.
    auto* dropped = reinterpret_cast<list_node*>(head ^ scramble);
    delete dropped->next->next;
    delete dropped->next;
    delete dropped;
    delete[] (kinds_interior - 16);
    kinds_interior = nullptr;
    delete[] kinds_table;
    kinds_table = nullptr;
    delete[] reinterpret_cast<char*>(leaf);
}

#endif

#if !defined(MEMLENS_DETAIL_SANITIZED)
TEST_CASE("MEMLENS_LEAKS_AT_EXIT=kinds with a .json or .html output carries the kinds and chains", "[reach][kinds][exit]") {
    char json_path[] = "/tmp/memlens-kinds-XXXXXX.json";
    int fd = ::mkstemps(json_path, 5);
    REQUIRE(fd >= 0);
    ::close(fd);
    run_classified_child(json_path);
    const memlens::snapshot s = memlens::read_json(json_path);
    ::unlink(json_path);
    REQUIRE(s.classified);
    INFO(memlens::format_leak_kinds(s, 20, 8, true));
    using memlens::leak_kind;
    CHECK(site_figures(s, leak_kind::definitely_lost, "kinds_dropped_head").bytes == 48);
    // A tail node may be held by a stale word in a frame that the exit report's calls still
    // use (as it may be for memcheck); the in-process test above asks for the exact kinds.
    std::uint64_t tail_blocks = 0;
    for (const leak_kind k : {leak_kind::indirectly_lost, leak_kind::still_reachable, leak_kind::possibly_lost}) {
        tail_blocks += site_figures(s, k, "kinds_tail_nodes").blocks;
    }
    CHECK(tail_blocks == 2);
    CHECK(site_figures(s, leak_kind::possibly_lost, "kinds_interior_block").bytes == 80);
    CHECK(site_figures(s, leak_kind::still_reachable, "kinds_global_table").bytes == 1 << 20);
    // The two largest still-reachable sites are the table's and its leaf's: the leaf's chain
    // runs through the table to a global.
    bool leaf_chain = false;
    for (std::uint32_t c = 0; c < s.backref_chains.size(); ++c) {
        std::vector<memlens::backref_link> links;
        for (const memlens::backref_link& l : s.backref_links) {
            if (l.chain == c) links.push_back(l);
        }
        leaf_chain = leaf_chain || (links.size() == 2 && links[0].size == 1 << 19 && links[1].size == 1 << 20 &&
                                    links[1].offset == 16 && s.backref_chains[c].root == "global");
    }
    CHECK(leaf_chain);

    char html_path[] = "/tmp/memlens-kinds-XXXXXX.html";
    fd = ::mkstemps(html_path, 5);
    REQUIRE(fd >= 0);
    ::close(fd);
    run_classified_child(html_path);
    std::ifstream in(html_path);
    std::stringstream page;
    page << in.rdbuf();
    ::unlink(html_path);
    const std::size_t kinds_at = page.str().find("\"leak_kinds\"");
    INFO(page.str().substr(kinds_at == std::string::npos ? 0 : kinds_at, 600));
    CHECK(page.str().find("\"leak_kinds\":{\"classified\":true") != std::string::npos);
    // The dropped head's row in the sites of its kind (the child inherits other blocks too).
    const std::size_t head = page.str().find("{\"kind\":\"definitely lost\",\"site\":\"(anonymous namespace)::kinds_dropped_head()");
    REQUIRE(head != std::string::npos);
    CHECK(page.str().substr(head, page.str().find('}', head) - head).find("\"bytes\":48,\"blocks\":1,") != std::string::npos);
    CHECK(page.str().find("\"root\":\"global\"") != std::string::npos);
}
#endif
