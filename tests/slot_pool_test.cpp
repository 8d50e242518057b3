// slot_pool and pool_allocator: exact block, slot and slack figures, the blocks in the pool's
// domain (and not in "heap"), reuse of every slot, no overlap, alignment, thread safety.
#include <memlens/helpers/slot_pool.hpp>
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <list>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

template <class T>
std::uintptr_t address(T* p) {
    return reinterpret_cast<std::uintptr_t>(p);
}

struct triple {
    std::uint64_t a, b, c;
};

struct alignas(64) wide_slot {
    char c[3];
};

struct alignas(128) wider_slot {
    std::uint32_t tag;
};

struct odd {
    char c[12];
};

struct counted {
    static inline int alive = 0;
    explicit counted(int v) : value(v) {
        if (v < 0) throw std::runtime_error("negative");
        ++alive;
    }
    ~counted() { --alive; }
    int value;
};

}  // namespace

TEST_CASE("slot_pool figures and its domain are exact", "[slot_pool]") {
    const auto d = memlens::domain::named("test.pool.exact");
    const memlens::domain heap = memlens::domain::heap();
    using pool_t = memlens::slot_pool<std::uint64_t>;
    STATIC_REQUIRE(pool_t::slot_size == 8);
    std::array<std::uint64_t*, 1000> slots{};
    {
        pool_t pool(d, 4096);
        // 4096 bytes, an 8-byte block header at the end: 511 slots, 8 bytes of slack.
        CHECK(pool.block_bytes() == 4096);
        CHECK(pool.slots_per_block() == 511);
        CHECK(pool.stats().blocks == 0);
        CHECK(memlens::stats(d).current == 0);

        const memlens::memory_stats heap_before = memlens::stats(heap);
        for (auto& p : slots) {
            p = pool.allocate();
            memlens_test::keep(p);
        }
        const memlens::memory_stats heap_after = memlens::stats(heap);
        CHECK(heap_after.allocs == heap_before.allocs);
        CHECK(heap_after.current == heap_before.current);

        const memlens::pool_stats s = pool.stats();
        CHECK(s.blocks == 2);
        CHECK(s.block_bytes == 8192);
        CHECK(s.slots_total == 1022);
        CHECK(s.slots_in_use == 1000);
        CHECK(s.slack_bytes == 16);
        const memlens::memory_stats in_use = memlens::stats(d);
        CHECK(in_use.current == 8192);
        CHECK(in_use.total == 8192);
        CHECK(in_use.allocs == 2);
        CHECK(in_use.frees == 0);

        CHECK_FALSE(pool.release());
        CHECK(pool.stats().blocks == 2);

        for (auto* p : slots) pool.deallocate(p);
        pool.deallocate(nullptr);
        CHECK(pool.stats().slots_in_use == 0);
        // Free slots stay in the pool: the blocks are still its footprint.
        CHECK(pool.stats().blocks == 2);
        CHECK(memlens::stats(d).current == 8192);

        CHECK(pool.release());
        CHECK(pool.stats().blocks == 0);
        CHECK(pool.stats().slack_bytes == 0);
        CHECK(memlens::stats(d).current == 0);
        CHECK(memlens::stats(d).frees == 2);

        // After release() the pool starts over with one new block.
        std::uint64_t* again = pool.allocate();
        memlens_test::keep(again);
        CHECK(pool.stats().blocks == 1);
        CHECK(memlens::stats(d).current == 4096);
        CHECK(memlens::stats(d).allocs == 3);
    }
    // The destructor gives every block back, in use or not.
    CHECK(memlens::stats(d).current == 0);
    CHECK(memlens::stats(d).frees == 3);
    CHECK(memlens::stats(d).peak == 8192);
}

TEST_CASE("a scope sees the pool's blocks, not its slots", "[slot_pool]") {
    const auto d = memlens::default_pool_domain();
    memlens::slot_pool<triple> pool(d, 1024);
    // 24-byte slots: (1024 - 8) / 24 = 42 slots, 1024 - 42 * 24 = 16 bytes of slack.
    REQUIRE(pool.slots_per_block() == 42);
    std::array<triple*, 100> slots{};
    memlens::scope block;
    for (auto& p : slots) {
        p = pool.allocate();
        memlens_test::keep(p);
    }
    const memlens::block_usage u = block.usage();
    CHECK(u.allocated == 3 * 1024);
    CHECK(u.allocs == 3);
    CHECK(pool.stats().slack_bytes == 3 * 16);
    for (auto* p : slots) pool.deallocate(p);
}

TEST_CASE("every slot given back is handed out again before a new block", "[slot_pool]") {
    memlens::slot_pool<triple> pool(memlens::default_pool_domain(), 1024);
    const std::size_t n = 3 * pool.slots_per_block();
    std::vector<triple*> first(n), second(n);
    for (auto& p : first) p = pool.allocate();
    CHECK(pool.stats().blocks == 3);
    CHECK(pool.stats().slots_in_use == n);
    for (auto* p : first) pool.deallocate(p);
    for (auto& p : second) p = pool.allocate();
    CHECK(pool.stats().blocks == 3);
    std::sort(first.begin(), first.end());
    std::sort(second.begin(), second.end());
    CHECK(first == second);
    // One more than the blocks hold takes a fourth block.
    triple* extra = pool.allocate();
    CHECK(pool.stats().blocks == 4);
    CHECK(std::find(first.begin(), first.end(), extra) == first.end());
    pool.deallocate(extra);
    for (auto* p : second) pool.deallocate(p);
    CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("slots do not overlap", "[slot_pool]") {
    memlens::slot_pool<triple> pool(memlens::default_pool_domain(), 1024);
    std::vector<triple*> slots;
    for (std::uint64_t i = 0; i < 500; ++i) {
        slots.push_back(pool.create(triple{i, ~i, i * 3}));
        // Free some as we go, so that the free list and fresh slots interleave.
        if (i % 5 == 4) {
            pool.destroy(slots[slots.size() - 3]);
            slots.erase(slots.end() - 3);
        }
    }
    for (std::size_t k = 0; k < slots.size(); ++k) {
        const std::uint64_t i = slots[k]->a;
        CHECK(slots[k]->b == ~i);
        CHECK(slots[k]->c == i * 3);
    }
    std::vector<std::uintptr_t> at;
    for (auto* p : slots) at.push_back(address(p));
    std::sort(at.begin(), at.end());
    std::size_t overlaps = 0;
    for (std::size_t k = 1; k < at.size(); ++k) overlaps += at[k] - at[k - 1] < sizeof(triple);
    CHECK(overlaps == 0);
    CHECK(pool.stats().slots_in_use == slots.size());
    for (auto* p : slots) pool.destroy(p);
    CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("over-aligned types get aligned slots", "[slot_pool]") {
    SECTION("64") {
        memlens::slot_pool<wide_slot> pool(memlens::default_pool_domain(), 4096);
        STATIC_REQUIRE(memlens::slot_pool<wide_slot>::slot_size == 64);
        // The header goes at the end, so one 64-byte slot is lost to it, not two.
        CHECK(pool.slots_per_block() == 63);
        std::vector<wide_slot*> slots(200);
        std::size_t misaligned = 0;
        for (auto& p : slots) {
            p = pool.allocate();
            misaligned += address(p) % 64 != 0;
        }
        CHECK(misaligned == 0);
        CHECK(pool.stats().blocks == 4);
        CHECK(pool.stats().slack_bytes == 4 * 64);
        for (auto* p : slots) pool.deallocate(p);
    }
    SECTION("128, with a block size that is not a multiple of it") {
        memlens::slot_pool<wider_slot> pool(memlens::domain::named("test.pool.align128"), 1000);
        CHECK(pool.block_bytes() == 1024);
        CHECK(pool.slots_per_block() == 7);
        std::vector<wider_slot*> slots(50);
        std::size_t misaligned = 0;
        for (auto& p : slots) {
            p = pool.create(wider_slot{7});
            misaligned += address(p) % 128 != 0;
        }
        CHECK(misaligned == 0);
        CHECK(memlens::stats(memlens::domain::named("test.pool.align128")).current == 8 * 1024);
        for (auto* p : slots) pool.destroy(p);
    }
    SECTION("under-aligned slots still chain their free list") {
        memlens::slot_pool<odd> pool(memlens::default_pool_domain(), 4096);
        STATIC_REQUIRE(memlens::slot_pool<odd>::slot_size == 12);
        CHECK(pool.slots_per_block() == 340);
        CHECK(pool.stats().slack_bytes == 0);
        std::vector<odd*> slots(700);
        for (auto& p : slots) p = pool.allocate();
        CHECK(pool.stats().slack_bytes == 3 * 16);
        for (auto* p : slots) pool.deallocate(p);
        std::vector<odd*> again(700);
        for (auto& p : again) p = pool.allocate();
        CHECK(pool.stats().blocks == 3);
        std::sort(slots.begin(), slots.end());
        std::sort(again.begin(), again.end());
        CHECK(slots == again);
        for (auto* p : again) pool.deallocate(p);
    }
}

TEST_CASE("a tiny block size still holds one slot", "[slot_pool]") {
    memlens::slot_pool<triple> pool(memlens::default_pool_domain(), 1);
    CHECK(pool.block_bytes() == 32);
    CHECK(pool.slots_per_block() == 1);
    triple* a = pool.allocate();
    triple* b = pool.allocate();
    CHECK(a != b);
    CHECK(pool.stats().blocks == 2);
    CHECK(pool.stats().slack_bytes == 2 * 8);
    pool.deallocate(a);
    pool.deallocate(b);
}

TEST_CASE("create gives the slot back when the constructor throws", "[slot_pool]") {
    memlens::slot_pool<counted> pool;
    counted* one = pool.create(1);
    CHECK(counted::alive == 1);
    CHECK_THROWS_AS(pool.create(-1), std::runtime_error);
    CHECK(pool.stats().slots_in_use == 1);
    counted* two = pool.create(2);
    CHECK(two->value == 2);
    CHECK(counted::alive == 2);
    pool.destroy(one);
    pool.destroy(two);
    pool.destroy(nullptr);
    CHECK(counted::alive == 0);
    CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("pool_allocator puts list nodes in a pool", "[pool_allocator]") {
    const auto d = memlens::domain::named("test.pool.list");
    using alloc = memlens::pool_allocator<int>;
    {
        std::list<int, alloc> l(alloc(d, 4096));
        const memlens::memory_stats heap_before = memlens::stats(memlens::domain::heap());
        for (int i = 0; i < 1000; ++i) l.push_back(i);
        const memlens::memory_stats heap_after = memlens::stats(memlens::domain::heap());
        // The only heap allocation is the family's record of the node's pool, made on first use.
        CHECK(heap_after.allocs - heap_before.allocs == 1);

        const memlens::pool_stats s = l.get_allocator().stats();
        CHECK(s.slots_in_use == 1000);
        REQUIRE(s.blocks > 0);
        const std::size_t per_block = s.slots_total / s.blocks;
        CHECK(s.slots_total == s.blocks * per_block);
        // The fewest blocks that hold 1000 nodes.
        CHECK(s.blocks == (1000 + per_block - 1) / per_block);
        CHECK(s.block_bytes == s.blocks * 4096);
        CHECK(memlens::stats(d).current == s.block_bytes);
        CHECK(memlens::stats(d).allocs == s.blocks);

        l.clear();
        CHECK(l.get_allocator().stats().slots_in_use == 0);
        const memlens::memory_stats heap_again = memlens::stats(memlens::domain::heap());
        for (int i = 0; i < 1000; ++i) l.push_front(i);
        CHECK(memlens::stats(memlens::domain::heap()).allocs == heap_again.allocs);
        CHECK(l.get_allocator().stats().blocks == s.blocks);
        CHECK(memlens::stats(d).allocs == s.blocks);
    }
    CHECK(memlens::stats(d).current == 0);
    CHECK(memlens::stats(d).frees == memlens::stats(d).allocs);
}

TEST_CASE("pool_allocator in a map and a set, rebinding to their nodes", "[pool_allocator]") {
    const auto d = memlens::domain::named("test.pool.map");
    using pair_alloc = memlens::pool_allocator<std::pair<const int, int>>;
    pair_alloc shared(d, 8192);
    {
        std::map<int, int, std::less<int>, pair_alloc> m(shared);
        std::set<int, std::less<int>, memlens::pool_allocator<int>> s(shared);
        for (int i = 0; i < 500; ++i) {
            m.emplace(i, i);
            s.insert(i);
        }
        CHECK(m.get_allocator() == shared);
        CHECK(s.get_allocator() == shared);
        // One family, two node shapes: 1000 slots in use across its pools.
        CHECK(shared.stats().slots_in_use == 1000);
        CHECK(memlens::stats(d).current == shared.stats().block_bytes);
        for (int i = 0; i < 500; i += 2) m.erase(i);
        CHECK(shared.stats().slots_in_use == 750);
    }
    CHECK(shared.stats().slots_in_use == 0);
    // The family, and so its blocks, lives while any allocator shares it.
    CHECK(memlens::stats(d).current == shared.stats().block_bytes);
    CHECK(shared.stats().blocks > 0);
}

TEST_CASE("pool_allocator equality follows the family", "[pool_allocator]") {
    using A = memlens::pool_allocator<int>;
    using B = memlens::pool_allocator<double>;
    A a;
    A b;
    A a2(a);
    B rebound(a);
    CHECK(a == a2);
    CHECK(a == rebound);
    CHECK(rebound == a);
    CHECK(a != b);
    CHECK_FALSE(a == b);
    CHECK(rebound != b);
    a2 = b;
    CHECK(a2 == b);
    CHECK(a2 != a);
    using traits = std::allocator_traits<A>;
    STATIC_REQUIRE_FALSE(traits::is_always_equal::value);
    STATIC_REQUIRE(traits::propagate_on_container_swap::value);
    STATIC_REQUIRE(std::is_same_v<traits::rebind_alloc<double>, B>);

    // Memory from one allocator is freed through an equal one of another type.
    int* p = a.allocate(1);
    *p = 5;
    A(rebound).deallocate(p, 1);
    CHECK(a.stats().slots_in_use == 0);
}

TEST_CASE("containers on different families swap and move", "[pool_allocator]") {
    using alloc = memlens::pool_allocator<int>;
    alloc fa(memlens::default_pool_domain());
    alloc fb(memlens::default_pool_domain());
    std::list<int, alloc> x(fa), y(fb);
    for (int i = 0; i < 10; ++i) x.push_back(i);
    for (int i = 0; i < 20; ++i) y.push_back(i);
    x.swap(y);
    CHECK(x.get_allocator() == fb);
    CHECK(y.get_allocator() == fa);
    CHECK(fa.stats().slots_in_use == 10);
    CHECK(fb.stats().slots_in_use == 20);
    x = std::move(y);
    CHECK(x.get_allocator() == fa);
    CHECK(x.size() == 10);
    CHECK(fb.stats().slots_in_use == 0);
    std::list<int, alloc> z(x);
    CHECK(z.get_allocator() == fa);
    CHECK(fa.stats().slots_in_use == 20);
}

TEST_CASE("pool_allocator sends n != 1 to the heap", "[pool_allocator]") {
    memlens::pool_allocator<std::uint32_t> a(memlens::default_pool_domain());
    const memlens::memory_stats before = memlens::stats(memlens::domain::heap());
    std::uint32_t* p = a.allocate(10);
    memlens_test::keep(p);
    const memlens::memory_stats during = memlens::stats(memlens::domain::heap());
    a.deallocate(p, 10);
    CHECK(during.current - before.current == 40);
    CHECK(a.stats().blocks == 0);
}

TEST_CASE("a thread_safe pool is shared by threads", "[slot_pool][threads]") {
    const auto d = memlens::domain::named("test.pool.threads");
    memlens::slot_pool<triple, memlens::thread_safe> pool(d, 2048);
    constexpr int threads = 4;
    constexpr int rounds = 2000;
    std::array<int, threads> bad{};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&pool, &bad, t] {
            std::vector<triple*> mine;
            for (int r = 0; r < rounds; ++r) {
                const auto v = static_cast<std::uint64_t>(t * rounds + r);
                mine.push_back(pool.create(triple{v, v, v}));
                if (r % 3 == 2) {
                    for (auto* p : mine) {
                        bad[static_cast<std::size_t>(t)] += p->a != p->b || p->b != p->c;
                        pool.destroy(p);
                    }
                    mine.clear();
                }
            }
            for (auto* p : mine) pool.destroy(p);
        });
    }
    for (auto& w : workers) w.join();
    for (int b : bad) CHECK(b == 0);
    const memlens::pool_stats s = pool.stats();
    CHECK(s.slots_in_use == 0);
    CHECK(memlens::stats(d).current == s.block_bytes);
    CHECK(s.block_bytes == s.blocks * 2048);
}

TEST_CASE("a thread_safe pool_allocator family is shared by threads", "[pool_allocator][threads]") {
    using alloc = memlens::pool_allocator<int, memlens::thread_safe>;
    alloc shared(memlens::default_pool_domain(), 4096);
    std::vector<std::thread> workers;
    for (int t = 0; t < 2; ++t) {
        workers.emplace_back([shared] {
            for (int r = 0; r < 50; ++r) {
                std::list<int, alloc> l(shared);
                std::map<int, int, std::less<int>,
                         memlens::pool_allocator<std::pair<const int, int>, memlens::thread_safe>>
                    m(shared);
                for (int i = 0; i < 100; ++i) {
                    l.push_back(i);
                    m.emplace(i, i);
                }
            }
        });
    }
    for (auto& w : workers) w.join();
    CHECK(shared.stats().slots_in_use == 0);
}
