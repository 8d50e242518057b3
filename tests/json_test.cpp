// Snapshot files: the golden file that pins the schema, the JSON round trip, the reader's
// refusals with their positions, diffs across runs, and the baseline gate.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <memlens/observe/sites.hpp>
#include <memlens/testing/baseline.hpp>
#include <memlens/view/json.hpp>

#include "support.hpp"
#include "tracking_support.hpp"

using memlens_test::tracking_as;

namespace {

void require_same_frame(const memlens::frame_info& a, const memlens::frame_info& b) {
    REQUIRE(a.address == b.address);
    REQUIRE(a.function == b.function);
    REQUIRE(a.file == b.file);
    REQUIRE(a.line == b.line);
    REQUIRE(a.module == b.module);
    REQUIRE(a.offset == b.offset);
    REQUIRE(a.inline_call == b.inline_call);
    REQUIRE(a.inlined.size() == b.inlined.size());
    for (std::size_t i = 0; i < a.inlined.size(); ++i) require_same_frame(a.inlined[i], b.inlined[i]);
}

void require_same_stats(const memlens::memory_stats& a, const memlens::memory_stats& b) {
    REQUIRE(a.current == b.current);
    REQUIRE(a.peak == b.peak);
    REQUIRE(a.total == b.total);
    REQUIRE(a.allocs == b.allocs);
    REQUIRE(a.frees == b.frees);
}

void require_same(const memlens::snapshot& a, const memlens::snapshot& b) {
    REQUIRE(a.allocations.size() == b.allocations.size());
    for (std::size_t i = 0; i < a.allocations.size(); ++i) {
        const memlens::live_allocation &x = a.allocations[i], &y = b.allocations[i];
        REQUIRE(x.address == y.address);
        REQUIRE(x.size == y.size);
        REQUIRE(x.domain == y.domain);
        REQUIRE(x.stack == y.stack);
        REQUIRE(x.thread == y.thread);
        REQUIRE(x.sequence == y.sequence);
        REQUIRE(x.sampled == y.sampled);
        REQUIRE(x.count == y.count);
        REQUIRE(x.kind == y.kind);
    }
    REQUIRE(a.classified == b.classified);
    REQUIRE(a.suppressed.size() == b.suppressed.size());
    for (std::size_t i = 0; i < a.suppressed.size(); ++i) {
        const memlens::suppressed_site &x = a.suppressed[i], &y = b.suppressed[i];
        REQUIRE(x.rule == y.rule);
        REQUIRE(x.stack == y.stack);
        REQUIRE(x.domain == y.domain);
        REQUIRE(x.count == y.count);
        REQUIRE(x.bytes == y.bytes);
    }
    REQUIRE(a.backref_chains.size() == b.backref_chains.size());
    for (std::size_t i = 0; i < a.backref_chains.size(); ++i) {
        const memlens::backref_chain &x = a.backref_chains[i], &y = b.backref_chains[i];
        REQUIRE(x.root == y.root);
        REQUIRE(x.name == y.name);
        REQUIRE(x.thread == y.thread);
        REQUIRE(x.address == y.address);
    }
    REQUIRE(a.backref_links.size() == b.backref_links.size());
    for (std::size_t i = 0; i < a.backref_links.size(); ++i) {
        const memlens::backref_link &x = a.backref_links[i], &y = b.backref_links[i];
        REQUIRE(x.chain == y.chain);
        REQUIRE(x.address == y.address);
        REQUIRE(x.size == y.size);
        REQUIRE(x.stack == y.stack);
        REQUIRE(x.kind == y.kind);
        REQUIRE(x.offset == y.offset);
    }
    REQUIRE(a.stacks == b.stacks);
    REQUIRE(a.sites.size() == b.sites.size());
    for (std::size_t i = 0; i < a.sites.size(); ++i) {
        REQUIRE(a.sites[i].stack == b.sites[i].stack);
        REQUIRE(a.sites[i].allocs == b.sites[i].allocs);
        REQUIRE(a.sites[i].bytes == b.sites[i].bytes);
        REQUIRE(a.sites[i].temporaries == b.sites[i].temporaries);
        REQUIRE(a.sites[i].peak_allocs == b.sites[i].peak_allocs);
        REQUIRE(a.sites[i].peak_bytes == b.sites[i].peak_bytes);
    }
    REQUIRE(a.peak_kept == b.peak_kept);
    REQUIRE(a.peak_current == b.peak_current);
    REQUIRE(a.domain_names == b.domain_names);
    REQUIRE(a.sample_bytes == b.sample_bytes);
    REQUIRE(a.temporary_window == b.temporary_window);
    require_same_stats(a.totals, b.totals);
    REQUIRE(a.domains.size() == b.domains.size());
    for (std::size_t i = 0; i < a.domains.size(); ++i) {
        REQUIRE(a.domains[i].name == b.domains[i].name);
        require_same_stats(a.domains[i].figures, b.domains[i].figures);
    }
    REQUIRE(a.scopes.size() == b.scopes.size());
    for (std::size_t i = 0; i < a.scopes.size(); ++i) {
        const memlens::named_scope_stats &x = a.scopes[i], &y = b.scopes[i];
        REQUIRE(x.name == y.name);
        REQUIRE(x.file == y.file);
        REQUIRE(x.line == y.line);
        REQUIRE(x.function == y.function);
        REQUIRE(x.calls == y.calls);
        REQUIRE(x.allocated == y.allocated);
        REQUIRE(x.allocs == y.allocs);
        REQUIRE(x.net == y.net);
        REQUIRE(x.max_peak == y.max_peak);
    }
    REQUIRE(a.types.size() == b.types.size());
    for (std::size_t i = 0; i < a.types.size(); ++i) {
        const memlens::type_stats &x = a.types[i], &y = b.types[i];
        REQUIRE(x.name == y.name);
        REQUIRE(x.size == y.size);
        REQUIRE(x.instances == y.instances);
        REQUIRE(x.bytes == y.bytes);
        REQUIRE(x.peak == y.peak);
        REQUIRE(x.constructed == y.constructed);
    }
    REQUIRE(a.timeline.size() == b.timeline.size());
    for (std::size_t i = 0; i < a.timeline.size(); ++i) {
        const memlens::timeline_point &x = a.timeline[i], &y = b.timeline[i];
        REQUIRE((x.seconds == y.seconds || (std::isnan(x.seconds) && std::isnan(y.seconds))));
        REQUIRE(x.current == y.current);
        REQUIRE(x.peak == y.peak);
        REQUIRE(x.label == y.label);
        REQUIRE(x.rss == y.rss);
    }
    REQUIRE(a.pools.size() == b.pools.size());
    for (std::size_t i = 0; i < a.pools.size(); ++i) {
        REQUIRE(a.pools[i].name == b.pools[i].name);
        require_same_stats(a.pools[i].figures, b.pools[i].figures);
    }
    REQUIRE(a.collector.size() == b.collector.size());
    for (std::size_t i = 0; i < a.collector.size(); ++i) {
        const memlens::collector_generation &x = a.collector[i], &y = b.collector[i];
        REQUIRE(x.generation == y.generation);
        REQUIRE(x.collections == y.collections);
        REQUIRE(x.collected == y.collected);
        REQUIRE(x.uncollectable == y.uncollectable);
        REQUIRE(x.threshold == y.threshold);
        REQUIRE(x.seconds == y.seconds);
        REQUIRE(x.longest_seconds == y.longest_seconds);
    }
    REQUIRE(a.run.unix_time_ms == b.run.unix_time_ms);
    REQUIRE(a.run.pid == b.run.pid);
    REQUIRE(a.run.command_line == b.run.command_line);
    REQUIRE(a.run.build == b.run.build);
    REQUIRE(a.run.mode == b.run.mode);
    REQUIRE(a.symbols.size() == b.symbols.size());
    for (const auto& entry : a.symbols) {
        const auto found = b.symbols.find(entry.first);
        REQUIRE(found != b.symbols.end());
        require_same_frame(entry.second, found->second);
    }
}

memlens::frame_info frame(std::uintptr_t address, std::string function, std::string file,
                          unsigned line, std::string module) {
    memlens::frame_info f;
    f.address = address;
    f.function = std::move(function);
    f.file = std::move(file);
    f.line = line;
    f.module = std::move(module);
    f.offset = address - 0x400000;
    return f;
}

memlens::snapshot hand_built() {
    memlens::snapshot s;
    s.run = {1700000000123, 4242, "./app --flag \"quoted\" \\ tab\there", "g++ 12, C++17", "sampled"};
    s.totals = {1000, 2000, 3000, 40, 30};
    s.domains = {{"process", {1000, 2000, 3000, 40, 30}}, {"heap", {900, 1900, 2900, 39, 29}},
                 {"ünïcode \xff\xfe raw", {1, 2, 3, 4, 5}}};
    s.domain_names = {"process", "untracked", "heap", "ünïcode \xff\xfe raw"};
    s.sample_bytes = 524288;
    s.temporary_window = 7;
    s.scopes.push_back({"parse", "src/parse.cpp", 42, "void parse(std::string_view)", 3, 4096,
                        12, -128, 2048});
    s.types.push_back({"order", 16, 10, 160, 12, 99});
    s.timeline.push_back({0.0, 0, 0, ""});
    s.timeline.push_back({1.2345678901234567, 1000, 2000, "line\nbreak \x01 control"});
    s.timeline.push_back({1e-300, UINT64_MAX, 1, "\xf0\x9f\x98\x80 emoji"});
    s.symbols.emplace(0x401000, frame(0x401000, "main", "main.cpp", 10, "/bin/app"));
    s.symbols.emplace(0x402000, frame(0x402000, "f<int>(int)", "", 0, "/bin/app"));
    s.symbols.emplace(0x7f0000001000, frame(0x7f0000001000, "", "", 0, ""));
    s.symbols.emplace(UINTPTR_MAX, frame(UINTPTR_MAX, "edge", "", UINT32_MAX, "/lib/edge.so"));
    s.stacks[1] = {0x402000, 0x401000};
    s.stacks[2] = {0x7f0000001000};
    s.stacks[UINT32_MAX] = {UINTPTR_MAX, 0x401000, 0x402000};
    s.stacks[5] = {};
    s.sites = {{1, 30, 2000, 4, 3, 300},
               {2, 1, 16, 0, 0, 0},
               {UINT32_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}};
    s.peak_kept = true;
    s.peak_current = UINT64_MAX;
    s.allocations = {{0x10000, 64, 2, 1, 1, 1, false},
                     {0x20000, 100000, 3, 0, 0, UINT64_MAX, true},
                     {UINTPTR_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX, 7, true}};
    return s;
}

// Every field of a snapshot, none at its default, with values a reader of tests/golden/
// snapshot.json can follow: three stacks over five frames (one unmapped, one in a library
// without debug information), one sampled allocation, one allocation without a stack, a
// timeline point that was not finite, strings that need escapes, figures at the peak, and one
// row standing for the live blocks of a site (version 3), two garbage collector generations and
// a runtime's pool (version 4), leak kinds, a suppressed site and two back-reference chains
// (version 5). Without the kinds it is what tests/golden/snapshot_v4.json holds; without the
// collector and pool too, what tests/golden/snapshot_v3.json holds; without the site
// row too, what tests/golden/snapshot_v2.json holds; without the peak figures and inlined calls too, what
// tests/golden/snapshot_v1.json (the version 1 schema) holds.
memlens::snapshot golden_snapshot(bool with_peak = true, bool with_site_row = true, bool with_collector = true,
                                  bool with_kinds = true) {
    memlens::snapshot s;
    s.run = {1700000000123, 4242, "./app --input \"data set\" C:\\tmp\tlast\x01",
             "g++ 12.2, C++17, optimized, memlens 0.1.0", "sampled"};
    s.totals = {4200, 9000, 123456, 321, 300};
    s.domains = {{"process", {4136, 8936, 123392, 319, 299}}, {"cache", {64, 64, 64, 2, 1}}};
    s.domain_names = {"process", "untracked", "cache"};
    s.sample_bytes = 4096;
    s.temporary_window = 8;
    s.scopes = {{"load", "src/load.cpp", 42, "load(std::string_view)", 3, 4096, 12, -128, 2048}};
    s.types = {{"order", 24, 10, 240, 12, 15}};
    s.timeline = {{0.0, 0, 0, ""},
                  {0.1, 4096, 8192, "loaded \"index\"\nline two"},
                  {std::nan(""), 4200, 9000, "clock lost"}};
    memlens::frame_info frames[] = {
        frame(0x401000, "main", "src/main.cpp", 12, "/usr/bin/app"),
        frame(0x402000, "load(std::string_view)", "src/load.cpp", 45, "/usr/bin/app"),
        frame(0x403000, "parse<int>(char const*)", "src/parse.hpp", 7, "/usr/bin/app"),
        frame(0x7f0000001000, "malloc", "", 0, "/lib/libc.so.6"),
        frame(0x7fff00000000, "", "", 0, ""),
    };
    frames[3].offset = 0x1000;
    frames[4].offset = 0;
    // Two calls inlined into load(), innermost first, and one whose function is unknown.
    for (memlens::frame_info call : {frame(0x402000, "std::vector<int, std::allocator<int> >::push_back(int const&)",
                                           "/usr/include/c++/12/bits/stl_vector.h", 1287, "/usr/bin/app"),
                                     frame(0x402000, "read_all(std::string_view)", "src/load.hpp", 30, "/usr/bin/app")}) {
        call.inline_call = true;
        frames[1].inlined.push_back(std::move(call));
    }
    memlens::frame_info unknown = frame(0x403000, "", "src/parse.hpp", 3, "/usr/bin/app");
    unknown.inline_call = true;
    frames[2].inlined.push_back(std::move(unknown));
    for (const memlens::frame_info& f : frames) s.symbols.emplace(f.address, f);
    s.stacks[1] = {0x403000, 0x402000, 0x401000};
    s.stacks[2] = {0x7fff00000000, 0x401000};
    s.stacks[7] = {0x7f0000001000, 0x402000, 0x401000};
    s.sites = {{1, 12, 4096, 3}, {2, 1, 64, 0}, {7, 5, 500, 5}};
    if (with_peak) {
        s.peak_kept = true;
        s.peak_current = 9000;
        s.sites[0].peak_allocs = 10;
        s.sites[0].peak_bytes = 8000;
        s.sites[2].peak_allocs = 1;
        s.sites[2].peak_bytes = 100;
    }
    s.allocations = {{0x5000, 64, 0, 1, 1, 17, false},
                     {0x5100, 1000, 2, 7, 2, 3, true},
                     {0x5200, 16, 1, 0, 0, 1, false}};
    if (with_site_row) s.allocations.push_back({0, 4000, 0, 1, 0, 0, false, 5});
    if (with_collector) {
        s.timeline[1].rss = 6000000;
        s.collector = {{0, 120, 3500, 0, 700, 0.25, 0.0125}, {1, 10, 40, 2, 10, 0.5, 0.125}};
        s.pools = {{"python.arenas", {3145728, 5242880, 9437184, 9, 6}}};
    }
    if (with_kinds) {
        using memlens::leak_kind;
        s.classified = true;
        s.allocations[0].kind = leak_kind::definitely_lost;
        s.allocations[1].kind = leak_kind::indirectly_lost;
        s.allocations[2].kind = leak_kind::possibly_lost;
        s.suppressed = {{"leak:^malloc$ (/etc/memlens.supp:3)", 7, 2, 1, 1000}};
        s.backref_chains = {{"global", "global table+8 in /usr/bin/app", 0, 0x601008},
                            {"stack", "", 4243, 0x7ffc0000fff8}};
        s.backref_links = {{0, 0x5200, 16, 0, leak_kind::still_reachable, 0},
                           {0, 0x5000, 64, 1, leak_kind::still_reachable, 24},
                           {1, 0x5100, 1000, 7, leak_kind::still_reachable, 0}};
    }
    return s;
}

// Golden files live in tests/golden beside this file: the tests are compiled from the source
// tree, so __FILE__ names it.
std::string golden_path(const char* name) {
    std::string path = __FILE__;
    path.erase(path.find_last_of('/') + 1);
    return path + "golden/" + name;
}

bool read_whole_file(const std::string& path, std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
    std::fclose(f);
    return true;
}

// The line of `text` that holds byte `at`.
std::string line_at(const std::string& text, std::size_t at) {
    const std::size_t begin = at == 0 ? 0 : text.rfind('\n', at - 1) + 1;
    return text.substr(begin, text.find('\n', begin) - begin);
}

// Checks `actual` against the golden file `name` byte for byte. With MEMLENS_UPDATE_GOLDEN=1 a
// file that differs is rewritten, and the test still fails, so that no run passes on a file it
// has just written.
void check_golden(const char* name, const std::string& actual) {
    const std::string path = golden_path(name);
    std::string expected;
    const bool found = read_whole_file(path, expected);
    if (found && expected == actual) {
        SUCCEED(path << " matches");
        return;
    }
    const char* update = std::getenv("MEMLENS_UPDATE_GOLDEN");
    if (update && std::strcmp(update, "1") == 0) {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        REQUIRE(f);
        REQUIRE(std::fwrite(actual.data(), 1, actual.size(), f) == actual.size());
        REQUIRE(std::fclose(f) == 0);
        FAIL("rewrote " << path << "; review the change with git diff, and run the tests again "
             "without MEMLENS_UPDATE_GOLDEN");
    }
    std::size_t at = 0;
    while (at < expected.size() && at < actual.size() && expected[at] == actual[at]) ++at;
    const auto end = actual.begin() + static_cast<std::ptrdiff_t>(at);
    const std::size_t line = 1 + static_cast<std::size_t>(std::count(actual.begin(), end, '\n'));
    FAIL((found ? path + " differs from the output at byte " + std::to_string(at) + ", line " +
                      std::to_string(line) + ":\n  golden: " + line_at(expected, at) +
                      "\n  output: " + line_at(actual, at)
                : path + " cannot be read")
         << "\nIf the change is meant (a schema change also raises the version), rewrite the file "
            "with MEMLENS_UPDATE_GOLDEN=1, then review and commit it.");
}

// The message and position of the json_error that `text` raises.
memlens::json_error refusal(const std::string& text) {
    try {
        memlens::from_json(text);
    } catch (const memlens::json_error& e) {
        return e;
    }
    FAIL("accepted: " << text.substr(0, 200));
    throw std::logic_error("unreachable");
}

// A small valid document to corrupt.
std::string small_document() {
    memlens::snapshot s;
    s.domain_names = {"process", "heap"};
    s.symbols.emplace(0x1000, frame(0x401000, "main", "m.cpp", 3, "/bin/app"));
    s.symbols[0x1000].address = 0x1000;
    s.stacks[1] = {0x1000};
    s.sites = {{1, 2, 64, 0}};
    s.allocations = {{0x5000, 32, 1, 1, 1, 1, false}};
    return memlens::to_json(s);
}

char* grown_blocks[256];
constexpr unsigned grow_line = __LINE__ + 6;
int grown_count = 0;

// Allocations made here are told apart from everything else by this function's name.
__attribute__((noinline)) void json_test_grow(int blocks) {
    for (int i = 0; i < blocks; ++i) {
        grown_blocks[grown_count] = new char[100];  // the line grow_line names
        memlens_test::keep(grown_blocks[grown_count]);
        ++grown_count;
    }
}

void release_grown() {
    while (grown_count > 0) delete[] grown_blocks[--grown_count];
}

const memlens::statistic_diff* diff_naming(const std::vector<memlens::statistic_diff>& diffs,
                                           const char* function) {
    for (const memlens::statistic_diff& d : diffs) {
        if (d.key.find(function) != std::string::npos) return &d;
    }
    return nullptr;
}

std::vector<memlens::snapshot_filter> only_grown() {
    memlens::snapshot_filter f;
    f.function = "*json_test_grow*";
    f.all_frames = true;
    return {f};
}

}  // namespace

TEST_CASE("the writer writes the golden snapshot byte for byte", "[json][golden]") {
    check_golden("snapshot.json", memlens::to_json(golden_snapshot()));
}

TEST_CASE("the golden file reads back as the hand-built snapshot in every field", "[json][golden]") {
    require_same(golden_snapshot(), memlens::read_json(golden_path("snapshot.json")));
}

TEST_CASE("a version 4 file reads back without leak kinds", "[json][golden]") {
    const memlens::snapshot s = memlens::read_json(golden_path("snapshot_v4.json"));
    require_same(golden_snapshot(true, true, true, false), s);
    CHECK_FALSE(s.classified);
}

TEST_CASE("a version 3 file reads back without collector figures", "[json][golden]") {
    require_same(golden_snapshot(true, true, false, false), memlens::read_json(golden_path("snapshot_v3.json")));
}

TEST_CASE("a version 2 file reads back with one block per allocation row", "[json][golden]") {
    require_same(golden_snapshot(true, false, false, false), memlens::read_json(golden_path("snapshot_v2.json")));
}

TEST_CASE("a version 1 file reads back without peak figures and inlined calls", "[json][golden]") {
    const memlens::snapshot s = memlens::read_json(golden_path("snapshot_v1.json"));
    memlens::snapshot expected = golden_snapshot(false, false, false, false);
    for (auto& entry : expected.symbols) entry.second.inlined.clear();
    require_same(expected, s);
    CHECK_FALSE(s.peak_kept);
}

TEST_CASE("a hand-built snapshot reads back equal in every field", "[json]") {
    const memlens::snapshot s = hand_built();
    const std::string text = memlens::to_json(s);
    CAPTURE(text);
    REQUIRE(text.rfind("{\"format\":\"memlens.snapshot\",\"version\":5,", 0) == 0);
    const memlens::snapshot back = memlens::from_json(text);
    require_same(s, back);
    // The same snapshot always gives the same text.
    REQUIRE(memlens::to_json(back) == text);
}

TEST_CASE("a snapshot with no allocations and no stacks reads back", "[json]") {
    const memlens::snapshot s;
    require_same(s, memlens::from_json(memlens::to_json(s)));
}

TEST_CASE("a real snapshot in sites mode reads back with every frame symbolized", "[json]") {
    memlens::snapshot s;
    {
        tracking_as sites(memlens::tracking_mode::sites);
        json_test_grow(5);
        s = memlens::take_snapshot();
    }
    release_grown();
    std::uint64_t blocks = 0;
    for (const memlens::live_allocation& a : s.allocations) blocks += a.count;
    REQUIRE(blocks >= 5);
    REQUIRE(!s.stacks.empty());
    memlens::snapshot symbolized = s;
    memlens::symbolize(symbolized);
    // The file records what the active rules suppressed (the runtime's own blocks, if any).
    symbolized.suppressed = memlens::suppressed_sites(symbolized);
    const memlens::snapshot back = memlens::from_json(memlens::to_json(s));
    require_same(symbolized, back);
    for (const auto& entry : back.stacks) {
        for (std::uintptr_t a : entry.second) REQUIRE(back.symbols.count(a) == 1);
    }
    const auto stats = memlens::statistics(back, memlens::group_by::function, only_grown());
    REQUIRE(!stats.empty());
    CHECK(stats.front().key.find("json_test_grow") != std::string::npos);
    CHECK(stats.front().bytes == 500);
    CHECK(stats.front().count == 5);
}

TEST_CASE("every truncation of a document is refused at its end", "[json]") {
    const std::string text = small_document();
    REQUIRE_NOTHROW(memlens::from_json(text));
    for (std::size_t n = 0; n + 1 < text.size(); ++n) {
        const std::string cut = text.substr(0, n);
        // Trailing white space is not truncation of content; everything else must be refused.
        INFO("cut at " << n);
        const memlens::json_error e = refusal(cut);
        REQUIRE(e.offset() <= n);
        REQUIRE(std::string(e.what()).find("(byte " + std::to_string(e.offset()) + ")") != std::string::npos);
    }
}

TEST_CASE("refusals name the line, the column, the byte offset and what was expected", "[json]") {
    const std::string text = small_document();

    SECTION("a corrupt byte") {
        std::string bad = text;
        const std::size_t at = bad.find("\"sites\":[\n[1,") + 13;
        bad[at] = 'x';
        const memlens::json_error e = refusal(bad);
        CHECK(e.offset() == at);
        CHECK(e.line() == static_cast<std::size_t>(std::count(bad.begin(), bad.begin() + static_cast<std::ptrdiff_t>(at), '\n')) + 1);
        CHECK(std::string(e.what()).find("a site's allocation count, found 'x'") != std::string::npos);
        CHECK(std::string(e.what()).find("line " + std::to_string(e.line()) + ", column " + std::to_string(e.column())) != std::string::npos);
    }
    SECTION("another format") {
        std::string bad = text;
        bad.replace(bad.find("memlens.snapshot"), 16, "memlens.profile!");
        const memlens::json_error e = refusal(bad);
        CHECK(e.line() == 1);
        CHECK(e.column() == 11);
        CHECK(std::string(e.what()).find("expected the format \"memlens.snapshot\", found \"memlens.profile!\"") != std::string::npos);
    }
    SECTION("another version") {
        std::string bad = text;
        bad.replace(bad.find("\"version\":5") + 10, 1, "6");
        const memlens::json_error e = refusal(bad);
        CHECK(std::string(e.what()).find("expected version 5, 4, 3, 2 or 1") != std::string::npos);
        CHECK(std::string(e.what()).find("found 6") != std::string::npos);
    }
    SECTION("a leak kind above definitely lost") {
        memlens::snapshot s;
        s.domain_names = {"process"};
        s.classified = true;
        s.allocations = {{0x5000, 32, 0, 0, 1, 1, false}};
        std::string bad = memlens::to_json(s);
        bad.replace(bad.find(",1,0]]}"), 7, ",1,4]]}");
        const memlens::json_error e = refusal(bad);
        CHECK(std::string(e.what()).find("expected a whole number from 0 to 3 for an allocation's leak kind, found 4") !=
              std::string::npos);
    }
    SECTION("a back-reference link of a chain that is not there") {
        memlens::snapshot s;
        s.backref_chains = {{"none", "", 0, 0}};
        s.backref_links = {{0, 0x5000, 32, 0, memlens::leak_kind::definitely_lost, 0}};
        std::string bad = memlens::to_json(s);
        bad.replace(bad.find("\n[0,20480,"), 10, "\n[1,20480,");
        CHECK(std::string(refusal(bad).what()).find("expected a chain index below 1 in back-reference link 0 (it names 1)") !=
              std::string::npos);
    }
    SECTION("a member the schema does not have is named") {
        std::string bad = text;
        bad.insert(bad.find("\"run\":"), "\"bogus_member\":3,");
        const memlens::json_error e = refusal(bad);
        CHECK(std::string(e.what()).find("expected member \"run\" (members come in the order of the version 5 "
                                         "schema), found member \"bogus_member\"") != std::string::npos);
    }
    SECTION("not JSON at all, or empty") {
        CHECK(std::string(refusal("").what()).find("line 1, column 1 (byte 0): expected '{'") != std::string::npos);
        CHECK(std::string(refusal("\x89PNG").what()).find("found byte 0x89") != std::string::npos);
        CHECK(std::string(refusal("[]").what()).find("found '['") != std::string::npos);
    }
    SECTION("deep nesting") {
        std::string bad = text;
        const std::size_t at = bad.find("\"run\":") + 6;
        bad.insert(at, std::string(100000, '['));
        const memlens::json_error e = refusal(bad);
        CHECK(e.offset() == at);
        CHECK(std::string(e.what()).find("expected '{' to open \"run\", found '['") != std::string::npos);
        const memlens::json_error deep = refusal(std::string(1000000, '{'));
        CHECK(deep.offset() == 1);
    }
    SECTION("numbers out of range") {
        std::string bad = text;
        const std::size_t at = bad.find("\"allocations\":[\n[") + 17;
        bad.insert(at, "99999999999999999999999");
        const memlens::json_error e = refusal(bad);
        CHECK(e.offset() == at);
        CHECK(std::string(e.what()).find("expected a whole number from 0 to 18446744073709551615 for an allocation's address, found 99999") != std::string::npos);

        std::string wide = text;
        const std::size_t domain = wide.find("\"allocations\":[\n[") + 17;
        wide.replace(wide.find(',', wide.find(',', domain) + 1) + 1, 1, "4294967296");
        CHECK(std::string(refusal(wide).what()).find("0 to 4294967295 for an allocation's domain") != std::string::npos);

        std::string fraction = text;
        fraction.replace(fraction.find("\"sample_bytes\":0") + 15, 1, "1.5");
        CHECK(std::string(refusal(fraction).what()).find("a whole number from 0 to 18446744073709551615 for \"sample_bytes\", found '1'") != std::string::npos);

        std::string negative = text;
        negative.replace(negative.find("\"sample_bytes\":0") + 15, 1, "-1");
        CHECK(std::string(refusal(negative).what()).find("found '-'") != std::string::npos);

        memlens::snapshot timed;
        timed.timeline.push_back({1.5, 1, 1, "x"});
        std::string huge = memlens::to_json(timed);
        huge.replace(huge.find("1.5"), 3, "1e999");
        CHECK(std::string(refusal(huge).what()).find("within the range of a double, found 1e999") != std::string::npos);
        std::string leading = memlens::to_json(timed);
        leading.replace(leading.find("1.5"), 3, "01");
        CHECK(std::string(refusal(leading).what()).find("expected ',' and member \"current\", found '1'") != std::string::npos);
    }
    SECTION("bad escapes and raw control characters") {
        std::string bad = text;
        const std::size_t at = bad.find("\"main\"") + 1;
        bad.insert(at, "\\q");
        CHECK(refusal(bad).offset() == at + 1);
        CHECK(std::string(refusal(bad).what()).find("an escape") != std::string::npos);

        std::string hex = text;
        hex.insert(at, "\\u12G4");
        CHECK(std::string(refusal(hex).what()).find("four hexadecimal digits after \\u, found 'G'") != std::string::npos);

        std::string lone = text;
        lone.insert(at, "\\ud800x");
        CHECK(std::string(refusal(lone).what()).find("low surrogate") != std::string::npos);

        std::string control = text;
        control.insert(at, "\n");
        CHECK(std::string(refusal(control).what()).find("control characters must be escaped") != std::string::npos);

        std::string good = text;
        good.insert(at, "\\ud83d\\ude00\\u00e9\\/");
        CHECK(memlens::from_json(good).symbols.at(0x1000).function == "\xf0\x9f\x98\x80\xc3\xa9/main");
    }
    SECTION("references the file cannot keep") {
        std::string stack = text;
        stack.replace(stack.find("\"sites\":[\n[1") + 11, 1, "9");
        CHECK(std::string(refusal(stack).what()).find("expected 0 or an id from \"stacks\" for a site's stack id, found 9") != std::string::npos);

        std::string frame = text;
        frame.replace(frame.find("\"stacks\":[\n[1,[4096") + 15, 4, "4097");
        CHECK(std::string(refusal(frame).what()).find("4097 of stack 1 is not there") != std::string::npos);

        std::string module = text;
        module.replace(module.find(",3,0,4096]"), 10, ",3,1,4096]");
        CHECK(std::string(refusal(module).what()).find("an index into \"modules\" (1 entries)") != std::string::npos);
    }
    SECTION("members out of order, unknown or trailing") {
        std::string order = text;
        order.replace(order.find("\"totals\""), 8, "\"totalz\"");
        CHECK(std::string(refusal(order).what()).find("member \"totals\"") != std::string::npos);
        CHECK(std::string(refusal(text + "{}").what()).find("the end of the input after the snapshot object, found '{'") != std::string::npos);
        REQUIRE_NOTHROW(memlens::from_json(text + " \n\t"));
    }
}

TEST_CASE("files written by two processes compare by symbolized site", "[json]") {
    memlens_test::temporary_directory dir;
    const std::string older = dir.path + "/older.json", newer = dir.path + "/newer.json";
    {
        tracking_as sites(memlens::tracking_mode::sites);
        json_test_grow(10);
        const pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            int status = 0;
            try {
                json_test_grow(15);
                memlens::write_json(memlens::take_snapshot(), newer);
            } catch (...) {
                status = 1;
            }
            ::_exit(status);
        }
        memlens::write_json(memlens::take_snapshot(), older);
        int status = -1;
        REQUIRE(::waitpid(child, &status, 0) == child);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
    }
    release_grown();
    const memlens::snapshot before = memlens::read_json(older);
    memlens::snapshot after = memlens::read_json(newer);
    REQUIRE(before.run.pid != after.run.pid);
    // Not by traceback: the two runs reached json_test_grow from different lines.
    for (const memlens::group_by by : {memlens::group_by::site, memlens::group_by::function}) {
        const auto diffs = memlens::compare(before, after, by, only_grown());
        const memlens::statistic_diff* d = diff_naming(diffs, "json_test_grow");
        REQUIRE(d != nullptr);
        CHECK(d->bytes == 2500);
        CHECK(d->bytes_diff == 1500);
        CHECK(d->count_diff == 15);
    }

    // Another run loads its modules elsewhere: the same functions at other addresses.
    memlens::snapshot moved = after;
    const std::uintptr_t shift = 0x10000000;
    moved.symbols.clear();
    for (auto& entry : after.symbols) {
        memlens::frame_info f = entry.second;
        f.address += shift;
        moved.symbols.emplace(f.address, f);
    }
    for (auto& entry : moved.stacks) {
        for (std::uintptr_t& a : entry.second) a += shift;
    }
    const auto diffs = memlens::compare(before, memlens::from_json(memlens::to_json(moved)),
                                        memlens::group_by::site, only_grown());
    const memlens::statistic_diff* d = diff_naming(diffs, "json_test_grow");
    REQUIRE(d != nullptr);
    CHECK(d->bytes_diff == 1500);
}

TEST_CASE("the baseline gate passes within tolerance and names the sites that grew", "[json]") {
    memlens_test::temporary_directory dir;
    const std::string path = dir.path + "/baseline.json";
    memlens::baseline_options options;
    options.filters = only_grown();
    ::unsetenv("MEMLENS_UPDATE_BASELINES");
    ::unsetenv("MEMLENS_BASELINE_STRICT");
    tracking_as sites(memlens::tracking_mode::sites);
    json_test_grow(20);

    const memlens::snapshot first = memlens::take_snapshot();
    ::setenv("MEMLENS_BASELINE_STRICT", "1", 1);
    const memlens::check_result strict = memlens::check_against_baseline(first, path, options);
    ::unsetenv("MEMLENS_BASELINE_STRICT");
    CHECK_FALSE(strict.passed);
    CHECK(strict.message.find("is missing, and MEMLENS_BASELINE_STRICT=1") != std::string::npos);

    const memlens::check_result written = memlens::check_against_baseline(first, path, options);
    CHECK(written.passed);
    CHECK(written.message == "memlens: wrote the baseline " + path);

    json_test_grow(10);  // 1,000 bytes more: under 4 KiB
    const memlens::check_result within = memlens::check_against_baseline(memlens::take_snapshot(), path, options);
    CAPTURE(within.message);
    CHECK(within.passed);
    CHECK(within.message.find("no group grew") != std::string::npos);

    json_test_grow(60);  // 7,000 bytes more than the baseline's 2,000
    const memlens::check_result grown = memlens::check_against_baseline(memlens::take_snapshot(), path, options);
    CAPTURE(grown.message);
    CHECK_FALSE(grown.passed);
    CHECK(grown.message.find("1 group and the total grew by more than 10% and more than 4,096 bytes") != std::string::npos);
    CHECK(grown.message.find("json_test_grow") != std::string::npos);
    CHECK(grown.message.find(":" + std::to_string(grow_line) + ": 2,000 bytes (1.95 KiB) -> 9,000 bytes (8.79 KiB), +7,000 bytes (6.84 KiB)") != std::string::npos);

    ::setenv("MEMLENS_UPDATE_BASELINES", "1", 1);
    const memlens::check_result updated = memlens::check_against_baseline(memlens::take_snapshot(), path, options);
    ::unsetenv("MEMLENS_UPDATE_BASELINES");
    CHECK(updated.passed);
    CHECK(updated.message == "memlens: updated the baseline " + path);
    CHECK(memlens::check_against_baseline(memlens::take_snapshot(), path, options).passed);
    release_grown();

    {
        std::FILE* f = std::fopen(path.c_str(), "w");
        REQUIRE(f);
        std::fputs("{\"format\":\"memlens.snapshot\",\"version\":6}", f);
        std::fclose(f);
    }
    const memlens::check_result corrupt = memlens::check_against_baseline(first, path, options);
    CHECK_FALSE(corrupt.passed);
    CHECK(corrupt.message.find("the baseline cannot be used: " + path + ": memlens snapshot JSON, line 1, column 40 (byte 39): expected version 5, 4, 3, 2 or 1") != std::string::npos);
}

TEST_CASE("unwritable and unreadable paths are errors that name the path", "[json]") {
    const memlens::snapshot s = hand_built();
    const std::string nowhere = "/nonexistent-memlens-directory/snapshot.json";
    try {
        memlens::write_json(s, nowhere);
        FAIL("written");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).rfind("memlens: cannot write " + nowhere + ": cannot create ", 0) == 0);
        CHECK(std::string(e.what()).find("No such file or directory") != std::string::npos);
    }
    try {
        memlens::read_json(nowhere);
        FAIL("read");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "memlens: cannot open " + nowhere + ": No such file or directory");
    }
    const memlens::check_result r = memlens::check_against_baseline(s, nowhere);
    CHECK_FALSE(r.passed);
    CHECK(r.message.find("memlens: cannot write " + nowhere + ": cannot create ") != std::string::npos);
}
