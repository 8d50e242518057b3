// Thread and process scopes, nesting, measure().
#include <memlens/observe/scope.hpp>
#include <memlens/sources/record.hpp>

#include <catch2/catch.hpp>

#include <memory>
#include <thread>
#include <vector>

namespace {
const memlens::domain blocks = memlens::domain::named("scope.blocks");
void take(std::size_t n) { memlens::record_alloc(nullptr, n, blocks); }
void give(std::size_t n) { memlens::record_free(nullptr, n, blocks); }
}  // namespace

TEST_CASE("a thread scope measures exactly its block", "[scope]") {
    take(1000);  // from before the scope: freeing it inside counts as freed, not as a leak
    memlens::scope s;
    take(100);
    take(300);
    give(100);
    give(1000);
    take(50);
    const memlens::block_usage u = s.usage();
    CHECK(u.allocated == 450);
    CHECK(u.freed == 1100);
    CHECK(u.net == -650);
    CHECK(u.peak == 400);
    CHECK(u.allocs == 3);
    CHECK(u.frees == 2);
    give(300);
    give(50);
}

TEST_CASE("a parent's peak accounts exactly for its children", "[scope]") {
    memlens::scope parent;
    take(100);
    {
        memlens::scope child;
        take(500);
        {
            memlens::scope grandchild;
            take(1000);
            // While children are open, the parent already sees their events.
            CHECK(parent.usage().peak == 1600);
            give(1000);
            CHECK(grandchild.usage().peak == 1000);
            CHECK(grandchild.usage().net == 0);
        }
        give(500);
        CHECK(child.usage().peak == 1500);
        CHECK(child.usage().net == 0);
    }
    take(200);
    const memlens::block_usage u = parent.usage();
    CHECK(u.peak == 1600);
    CHECK(u.net == 300);
    CHECK(u.allocated == 1800);
    CHECK(u.freed == 1500);
    CHECK(u.allocs == 4);
    CHECK(u.frees == 2);
    give(100);
    give(200);
}

TEST_CASE("a closed scope keeps its final figures", "[scope]") {
    auto outer = std::make_unique<memlens::block_usage>();
    {
        memlens::scope s;
        take(64);
        give(64);
        *outer = s.usage();
    }
    CHECK(outer->allocated == 64);
    CHECK(outer->peak == 64);
}

TEST_CASE("a thread scope ignores other threads", "[scope][threads]") {
    // std::thread allocates its start-up state on the creating thread, so the scope opens after.
    std::thread other([] {
        take(4096);
        give(4096);
    });
    memlens::scope s;
    other.join();
    take(8);
    give(8);
    CHECK(s.usage().allocated == 8);
    CHECK(s.usage().allocs == 1);
}

TEST_CASE("a process scope counts every thread", "[scope][threads]") {
    memlens::scope s(memlens::scope_kind::process);
    std::thread other([] {
        take(4096);
        give(4096);
    });
    other.join();
    const memlens::block_usage u = s.usage();
    // Catch2 and std::thread may allocate too; the worker's block must be there in full.
    CHECK(u.allocated >= 4096);
    CHECK(u.allocs >= 1);
    CHECK(u.peak >= 4096);
    CHECK(s.kind() == memlens::scope_kind::process);
}

TEST_CASE("a process scope's peak is the process's high-water mark during the block",
          "[scope]") {
    memlens::scope s(memlens::scope_kind::process);
    memlens::scope mine;
    take(1 << 20);
    give(1 << 20);
    take(1000);
    const memlens::block_usage u = s.usage();
    const memlens::block_usage t = mine.usage();
    CHECK(t.peak == (1u << 20));
    CHECK(u.peak >= (1u << 20));
    CHECK(u.peak < (1u << 20) + 64 * 1024);
    give(1000);
}

TEST_CASE("measure returns the result and what building it took", "[scope]") {
    auto m = memlens::measure([] {
        take(10);
        take(20);
        give(10);
        return 42;
    });
    CHECK(m.value == 42);
    CHECK(m.usage.allocated == 30);
    CHECK(m.usage.net == 20);
    CHECK(m.usage.peak == 30);
    give(20);

    auto v = memlens::measure([] { take(5); give(5); });
    CHECK(v.usage.allocs == 1);
    CHECK(v.usage.frees == 1);
}

TEST_CASE("measure lets exceptions through and closes its scope", "[scope]") {
    memlens::scope outer;
    // An int, because a std::runtime_error would allocate its message in the scope.
    CHECK_THROWS_AS(memlens::measure([]() -> int {
                        take(16);
                        throw 42;
                    }),
                    int);
    take(1);
    CHECK(outer.usage().allocated == 17);
    CHECK(outer.usage().peak == 17);
    give(16);
    give(1);
}

TEST_CASE("unscoped hides events from open scopes but not from the counters", "[scope]") {
    const memlens::memory_stats before = memlens::stats(blocks);
    memlens::scope s;
    {
        memlens::unscoped u;
        take(500);
        give(500);
    }
    take(3);
    give(3);
    CHECK(s.usage().allocated == 3);
    CHECK(memlens::stats(blocks).total - before.total == 503);
}
