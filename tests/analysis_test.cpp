// The advice rules of view/analysis.hpp: each fires on a snapshot built for it, quoting its
// figures exactly, and stays silent on one just below each of its thresholds.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include <memlens/view/analysis.hpp>

namespace {

using memlens::advice_rule;

// A stack of one resolved frame, so that no symbolizer is asked.
std::uint32_t add_site(memlens::snapshot& s, const std::string& function, unsigned line) {
    const auto id = static_cast<std::uint32_t>(s.stacks.size() + 1);
    const std::uintptr_t address = 0x401000 + 0x100 * id;
    memlens::frame_info f;
    f.address = address;
    f.function = function;
    f.file = "src/app.cpp";
    f.line = line;
    f.module = "/opt/app/bin/app";
    f.offset = address - 0x400000;
    s.symbols.emplace(address, f);
    s.stacks[id] = {address};
    return id;
}

void add_live(memlens::snapshot& s, std::uint32_t stack, std::uint64_t size, int count = 1) {
    for (int i = 0; i < count; ++i) {
        memlens::live_allocation a;
        a.address = 0x10000000 + 64 * s.allocations.size();
        a.size = size;
        a.stack = stack;
        a.sequence = s.allocations.size() + 1;
        s.allocations.push_back(a);
    }
}

std::vector<std::string> figures(const memlens::snapshot& s, advice_rule rule) {
    std::vector<std::string> out;
    for (const memlens::recommendation& r : memlens::recommend(s)) {
        if (r.rule != rule) continue;
        CHECK_FALSE(r.advice.empty());
        out.push_back(r.figure);
    }
    return out;
}

using figure_list = std::vector<std::string>;

}  // namespace

TEST_CASE("an empty snapshot earns no advice") {
    CHECK(memlens::recommend(memlens::snapshot{}).empty());
}

TEST_CASE("sampled figures are flagged as estimates") {
    memlens::snapshot s;
    s.sample_bytes = 524288;
    add_live(s, add_site(s, "app::load(int)", 42), 4096);
    CHECK(figures(s, advice_rule::sampled_estimates).empty());

    s.allocations.front().sampled = true;
    CHECK(figures(s, advice_rule::sampled_estimates) ==
          figure_list{"sampled: one allocation per 524,288 bytes (512.00 KiB) on average was recorded"});
}

TEST_CASE("a site holding half of at least 64 KiB of live bytes dominates") {
    memlens::snapshot s;
    const std::uint32_t load = add_site(s, "app::load(int)", 42);
    const std::uint32_t parse = add_site(s, "app::parse(int)", 77);
    const std::uint32_t index = add_site(s, "app::index(int)", 90);
    add_live(s, load, 8192, 4);
    add_live(s, parse, 16384);
    add_live(s, index, 16384);
    CHECK(figures(s, advice_rule::dominant_site) ==
          figure_list{"app::load(int) at src/app.cpp:42 holds 50.0% of the live bytes "
                      "(32,768 bytes (32.00 KiB) in 4 allocations)"});

    SECTION("just below half of the live bytes") {
        s.allocations.front().size = 8191;
        s.allocations.back().size = 16385;
        CHECK(figures(s, advice_rule::dominant_site).empty());
    }
    SECTION("just below 64 KiB live") {
        s.allocations.back().size = 16383;
        CHECK(figures(s, advice_rule::dominant_site).empty());
    }
}

TEST_CASE("a site whose small blocks mostly die young is named") {
    memlens::snapshot s;
    s.temporary_window = 64;
    memlens::site_record r;
    r.stack = add_site(s, "app::tokenize(int)", 12);
    r.allocs = 2000;
    r.temporaries = 1000;
    r.bytes = 2000 * 256;
    s.sites.push_back(r);
    CHECK(figures(s, advice_rule::short_lived_blocks) ==
          figure_list{"app::tokenize(int) at src/app.cpp:12: 1,000 of 2,000 allocations freed within "
                      "64 further allocations, 256 bytes each on average"});

    SECTION("just below 1,000 temporaries") {
        s.sites.front().temporaries = 999;
        s.sites.front().allocs = 1998;
        s.sites.front().bytes = 1998 * 256;
        CHECK(figures(s, advice_rule::short_lived_blocks).empty());
    }
    SECTION("just below half of the allocations temporary") {
        s.sites.front().allocs = 2001;
        s.sites.front().bytes = 2001 * 256;
        CHECK(figures(s, advice_rule::short_lived_blocks).empty());
    }
    SECTION("just above 256 bytes each on average") {
        s.sites.front().bytes = 2000 * 257;
        CHECK(figures(s, advice_rule::short_lived_blocks).empty());
    }
}

TEST_CASE("a scope whose peak is far above what it keeps is named") {
    memlens::snapshot s;
    memlens::named_scope_stats scope;
    scope.name = "parse";
    scope.calls = 2;
    scope.max_peak = 327680;
    scope.net = 131072;  // 65,536 bytes kept per pass: 4 times that plus 64 KiB is the peak exactly
    s.scopes.push_back(scope);
    CHECK(figures(s, advice_rule::scope_peak) ==
          figure_list{"scope \"parse\": max peak 327,680 bytes (320.00 KiB) in one pass, net 131,072 bytes "
                      "(128.00 KiB) over 2 passes"});

    SECTION("just below 256 KiB of peak") {
        s.scopes.front().max_peak = 262143;
        s.scopes.front().net = 0;
        CHECK(figures(s, advice_rule::scope_peak).empty());
    }
    SECTION("just below four times what a pass keeps plus 64 KiB") {
        s.scopes.front().max_peak = 327679;
        CHECK(figures(s, advice_rule::scope_peak).empty());
    }
}

TEST_CASE("a domain that allocates ten times its peak churns") {
    memlens::snapshot s;
    memlens::domain_figures heap;
    heap.name = "heap";
    heap.figures.peak = 100000;
    heap.figures.total = 1000000;
    heap.figures.allocs = 1000;
    s.domains.push_back(heap);
    CHECK(figures(s, advice_rule::domain_churn) ==
          figure_list{"domain \"heap\": 1,000,000 bytes (976.56 KiB) allocated in 1,000 allocations, "
                      "10.0 times its peak of 100,000 bytes (97.66 KiB)"});

    SECTION("just below 1,000 allocations") {
        s.domains.front().figures.allocs = 999;
        CHECK(figures(s, advice_rule::domain_churn).empty());
    }
    SECTION("just below ten times the peak") {
        s.domains.front().figures.total = 999999;
        CHECK(figures(s, advice_rule::domain_churn).empty());
    }
}
