// Block lifetimes in per-block mode (tracking_config::lifetimes, core/lifetimes.hpp): blocks of
// known sizes allocated and freed in a known order at three stacks give exact summed lifetimes,
// maxima, figures at the timed blocks' highest and at the end, in bytes allocated; the DHAT
// file carries them with bklt true. The settings validator refuses lifetimes outside per-block
// mode; MEMLENS_LIFETIMES=1 turns per-block mode on.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <memlens/observe/sites.hpp>
#include <memlens/observe/symbols.hpp>
#include <memlens/view/dhat.hpp>
#include <memlens/view/snapshot.hpp>

#include "support.hpp"
#include "tracking_support.hpp"

namespace lifetimes_test {

// Each keeps its block after the call, so that an optimized build makes no tail call and the
// function stays a frame of the stack.
MEMLENS_TEST_NOINLINE char* lifetime_at_a(std::size_t n) {
    char* p = new char[n];
    memlens_test::keep(p);
    return p;
}
MEMLENS_TEST_NOINLINE char* lifetime_at_b(std::size_t n) {
    char* p = new char[n];
    memlens_test::keep(p);
    return p;
}
MEMLENS_TEST_NOINLINE char* lifetime_at_c(std::size_t n) {
    char* p = new char[n];
    memlens_test::keep(p);
    return p;
}
MEMLENS_TEST_NOINLINE char* lifetime_at_d(std::size_t n) {
    char* p = new char[n];
    memlens_test::keep(p);
    return p;
}

// One step of the script: allocate `size` bytes at site 0, 1, 2 or 3 into block `slot`, or free
// block `slot` (size 0).
struct step {
    int site;
    std::size_t size;
    int slot;
};

// Every allocation of one site comes from one call here, so each site is one stack.
MEMLENS_TEST_NOINLINE void run(const step* steps, std::size_t count, char** slots) {
    for (std::size_t i = 0; i < count; ++i) {
        const step& s = steps[i];
        if (s.size == 0) {
            delete[] slots[s.slot];
            slots[s.slot] = nullptr;
            continue;
        }
        char* p = s.site == 0   ? lifetime_at_a(s.size)
                  : s.site == 1 ? lifetime_at_b(s.size)
                  : s.site == 2 ? lifetime_at_c(s.size)
                                : lifetime_at_d(s.size);
        memlens_test::keep(p);
        slots[s.slot] = p;
    }
}

// The site record whose stack names `function`.
const memlens::site_record* site_named(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    const memlens::site_record* found = nullptr;
    for (const memlens::site_record& r : s.sites) {
        for (const memlens::frame_info& f : resolved.frames(r.stack)) {
            if (f.function.find(function) == std::string::npos) continue;
            CHECK(found == nullptr);  // one stack per site, as run() makes them
            found = &r;
            break;
        }
    }
    return found;
}

TEST_CASE("lifetimes: exact per-site lifetimes, maxima, at the highest and at the end, in bytes allocated",
          "[lifetimes][dhat]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.blocks = true;
    c.lifetimes = true;
    memlens::snapshot s;
    std::uint64_t start = 0;
    {
        memlens_test::tracking_as timed(c);
        // The clock runs for the process; this test reads it relative to its start. No other
        // test times blocks, so none is alive now and the highest below is this test's.
        start = memlens::take_snapshot().lifetime_clock;
        // Clock after each step (relative to start) and bytes alive in timed blocks:
        static const step steps[] = {
            {0, 100, 0},  // a at A: 100, alive 100
            {1, 200, 1},  // b at B: 300, alive 300
            {0, 50, 2},   // c at A: 350, alive 350
            {0, 0, 0},    // a freed at 350 (lived 250), alive 250
            {2, 300, 3},  // d at C: 650, alive 550, the highest: A 50 in 1, B 200 in 1, C 300 in 1
            {0, 0, 3},    // d freed at 650 (lived 0), alive 250
            {0, 0, 1},    // b freed at 650 (lived 350), alive 50
            {1, 10, 4},   // e at B: 660, alive 60
        };
        char* slots[5] = {};
        run(steps, sizeof steps / sizeof steps[0], slots);
        s = memlens::take_snapshot();
        for (char* p : slots) delete[] p;
    }
    memlens::symbolize(s);
    REQUIRE(s.lifetimes_kept);
    CHECK(s.lifetime_clock - start == 660);
    CHECK(s.lifetime_peak_clock - start == 650);
    CHECK(s.lifetime_peak_bytes == 550);
    const memlens::site_record* a = site_named(s, "lifetime_at_a");
    const memlens::site_record* b = site_named(s, "lifetime_at_b");
    const memlens::site_record* cs = site_named(s, "lifetime_at_c");
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(cs);
    // A: a lived 350 - 100, c from 350 to the snapshot at 660.
    CHECK(a->life.allocs == 2);
    CHECK(a->life.bytes == 150);
    CHECK(a->life.lifetimes == 250 + 310);
    CHECK(a->life.max_bytes == 150);
    CHECK(a->life.max_allocs == 2);
    CHECK(a->life.peak_bytes == 50);
    CHECK(a->life.peak_allocs == 1);
    CHECK(a->life.live_bytes == 50);
    CHECK(a->life.live_allocs == 1);
    // B: b from 300 to 650, e born at the snapshot's clock.
    CHECK(b->life.allocs == 2);
    CHECK(b->life.bytes == 210);
    CHECK(b->life.lifetimes == 350);
    CHECK(b->life.max_bytes == 200);
    CHECK(b->life.max_allocs == 1);
    CHECK(b->life.peak_bytes == 200);
    CHECK(b->life.peak_allocs == 1);
    CHECK(b->life.live_bytes == 10);
    CHECK(b->life.live_allocs == 1);
    // C: d freed with nothing allocated in between.
    CHECK(cs->life.allocs == 1);
    CHECK(cs->life.bytes == 300);
    CHECK(cs->life.lifetimes == 0);
    CHECK(cs->life.max_bytes == 300);
    CHECK(cs->life.max_allocs == 1);
    CHECK(cs->life.peak_bytes == 300);
    CHECK(cs->life.peak_allocs == 1);
    CHECK(cs->life.live_bytes == 0);
    CHECK(cs->life.live_allocs == 0);

    // DHAT's file: bklt true, the clock as te and tg, each point's figures.
    const std::string file = memlens::dhat_json(s);
    CHECK(file.find("\"bklt\":true,\"bkacc\":false,") != std::string::npos);
    CHECK(file.find(",\"te\":" + std::to_string(start + 660) + ",\"tg\":" + std::to_string(start + 650) +
                    ",\"tuth\":4096,\"pps\":[") != std::string::npos);
    CHECK(file.find("{\"tb\":150,\"tbk\":2,\"tl\":560,\"mb\":150,\"mbk\":2,\"gb\":50,\"gbk\":1,\"eb\":50,"
                    "\"ebk\":1,\"fs\":[") != std::string::npos);
    CHECK(file.find("{\"tb\":210,\"tbk\":2,\"tl\":350,\"mb\":200,\"mbk\":1,\"gb\":200,\"gbk\":1,\"eb\":10,"
                    "\"ebk\":1,\"fs\":[") != std::string::npos);
    CHECK(file.find("{\"tb\":300,\"tbk\":1,\"tl\":0,\"mb\":300,\"mbk\":1,\"gb\":300,\"gbk\":1,\"eb\":0,"
                    "\"ebk\":0,\"fs\":[") != std::string::npos);
}

TEST_CASE("lifetimes: a block timed before they were turned off dies when freed, one born after is not timed",
          "[lifetimes]") {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.blocks = true;
    c.lifetimes = true;
    static const step born[] = {{3, 64, 0}};
    static const step freed[] = {{3, 0, 0}};
    char* slots[1] = {};
    memlens_test::tracking_as timed(c);
    memlens::snapshot before = memlens::take_snapshot();
    // One call of run() for all three, so that both blocks have one stack.
    const step* phases[] = {born, freed, born};
    for (int phase = 0; phase < 3; ++phase) {
        if (phase == 1) {
            // The block born in phase 0 was timed; its death counts, the next birth does not.
            c.lifetimes = false;
            REQUIRE(memlens::configure(c));
        }
        run(phases[phase], 1, slots);
    }
    c.lifetimes = true;
    REQUIRE(memlens::configure(c));
    memlens::snapshot after = memlens::take_snapshot();
    delete[] slots[0];  // not timed: no death
    memlens::snapshot last = memlens::take_snapshot();
    for (memlens::snapshot* s : {&before, &after, &last}) memlens::symbolize(*s);
    const memlens::site_record* was = site_named(before, "lifetime_at_d");
    const memlens::site_lifetimes start = was ? was->life : memlens::site_lifetimes{};
    const memlens::site_record* now = site_named(after, "lifetime_at_d");
    const memlens::site_record* end = site_named(last, "lifetime_at_d");
    REQUIRE(now);
    REQUIRE(end);
    CHECK(after.lifetime_clock - before.lifetime_clock == 64);
    CHECK(now->life.allocs == start.allocs + 1);
    CHECK(now->life.live_allocs == start.live_allocs);
    CHECK(now->life.live_bytes == start.live_bytes);
    CHECK(end->life.allocs == start.allocs + 1);
    CHECK(end->life.live_allocs == start.live_allocs);
    CHECK(last.lifetime_clock == after.lifetime_clock);
}

TEST_CASE("lifetimes: the settings validator refuses them outside per-block mode", "[lifetimes]") {
    memlens_test::errors_remembered errors;
    memlens::tracking_config c;
    c.lifetimes = true;
    CHECK_FALSE(memlens::configure(c));
    CHECK(memlens_test::last_error ==
          "configure: lifetimes needs mode = sites and blocks = true: lifetimes are kept for the blocks of "
          "the live table; the configuration is unchanged");
    c.mode = memlens::tracking_mode::sites;
    CHECK_FALSE(memlens::configure(c));
    CHECK_FALSE(memlens::current_config().lifetimes);
    c.blocks = true;
    {
        memlens_test::tracking_as timed(c);
        CHECK(memlens::current_config().lifetimes);
    }
    CHECK_FALSE(memlens::current_config().lifetimes);
}

TEST_CASE("MEMLENS_LIFETIMES=1 sets per-block sites mode, a bad value is refused clearly", "[lifetimes][config]") {
    memlens_test::errors_remembered errors;
    ::setenv("MEMLENS_LIFETIMES", "1", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK(s.lifetimes);
        CHECK(s.blocks);
        CHECK(s.mode == memlens::detail::live_mode::sites);
    }
    CHECK(memlens_test::last_error.empty());
    ::setenv("MEMLENS_LIFETIMES", "yes", 1);
    {
        memlens::detail::live_settings s;
        memlens::detail::read_environment(s);
        CHECK_FALSE(s.lifetimes);
        CHECK_FALSE(s.blocks);
        CHECK(s.mode == memlens::detail::live_mode::counters);
    }
    CHECK(memlens_test::last_error == "MEMLENS_LIFETIMES=\"yes\" is not valid; accepted: 0, 1; not timing blocks");
    ::unsetenv("MEMLENS_LIFETIMES");
}

}  // namespace lifetimes_test
