// weak_cache: sharing while alive, expiry and purging, failing factories, concurrency.
#include <memlens/helpers/weak_cache.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct counted_value {
    explicit counted_value(int v) : value(v) { ++alive; }
    ~counted_value() { --alive; }
    counted_value(const counted_value&) = delete;
    counted_value& operator=(const counted_value&) = delete;
    int value;
    static inline int alive = 0;
};

using cache_t = memlens::weak_cache<int, counted_value>;

}  // namespace

TEST_CASE("weak_cache: one value per key while it lives, made once", "[weak_cache]") {
    cache_t cache;
    int made = 0;
    auto make = [&](int v) {
        return [&made, v] {
            ++made;
            return std::make_shared<counted_value>(v);
        };
    };
    std::shared_ptr<counted_value> a = cache.get_or_create(1, make(10));
    std::shared_ptr<counted_value> again = cache.get_or_create(1, make(99));
    std::shared_ptr<counted_value> b = cache.get_or_create(2, make(20));
    CHECK(a.get() == again.get());
    CHECK(a->value == 10);
    CHECK(b->value == 20);
    CHECK(made == 2);
    CHECK(cache.size() == 2);
    CHECK(cache.find(1).get() == a.get());
    CHECK(cache.find(3) == nullptr);
    const memlens::weak_cache_stats s = cache.stats();
    CHECK(s.hits == 1);
    CHECK(s.misses == 2);
    CHECK(s.creations == 2);
    CHECK(s.purged == 0);
}

TEST_CASE("weak_cache: does not keep values alive, and expired keys are made again", "[weak_cache]") {
    cache_t cache;
    int made = 0;
    auto make = [&] {
        ++made;
        return std::make_shared<counted_value>(made);
    };
    const int before = counted_value::alive;
    {
        std::shared_ptr<counted_value> a = cache.get_or_create(7, make);
        CHECK(counted_value::alive == before + 1);
    }
    CHECK(counted_value::alive == before);
    CHECK(cache.find(7) == nullptr);
    CHECK(cache.size() == 1);  // expired, not yet purged
    std::shared_ptr<counted_value> b = cache.get_or_create(7, make);
    CHECK(b->value == 2);
    CHECK(made == 2);
    CHECK(cache.size() == 1);  // the expired entry was reused, not duplicated
    b.reset();
    CHECK(cache.purge() == 1);
    CHECK(cache.size() == 0);
    CHECK(cache.stats().purged == 1);
}

TEST_CASE("weak_cache: expired entries are purged once the map doubles", "[weak_cache]") {
    cache_t cache;
    auto make = [] { return std::make_shared<counted_value>(0); };
    // 16 expired entries: the 17th key finds the map at its first threshold (16) and purges.
    for (int k = 0; k < 16; ++k) cache.get_or_create(k, make);
    CHECK(cache.size() == 16);
    std::shared_ptr<counted_value> kept = cache.get_or_create(100, make);
    CHECK(cache.size() == 1);
    CHECK(cache.stats().purged == 16);

    // Live entries survive a purge and raise the threshold to twice what remains.
    std::vector<std::shared_ptr<counted_value>> live{std::move(kept)};
    for (int k = 1; k < 16; ++k) live.push_back(cache.get_or_create(100 + k, make));
    CHECK(cache.size() == 16);
    live.push_back(cache.get_or_create(200, make));  // purges at 16: nothing expired
    CHECK(cache.size() == 17);
    CHECK(cache.stats().purged == 16);
    for (std::size_t i = 0; i < 8; ++i) live[i].reset();
    for (int k = 0; k < 15; ++k) live.push_back(cache.get_or_create(300 + k, make));
    CHECK(cache.size() == 32);  // below the new threshold of 32: nothing purged yet
    CHECK(cache.stats().purged == 16);
    live.push_back(cache.get_or_create(400, make));  // at 32: the 8 expired go
    CHECK(cache.size() == 25);
    CHECK(cache.stats().purged == 24);
}

TEST_CASE("weak_cache: a throwing factory leaves the key free", "[weak_cache]") {
    cache_t cache;
    CHECK_THROWS_AS(cache.get_or_create(5, []() -> std::shared_ptr<counted_value> {
        throw std::runtime_error("no");
    }),
                    std::runtime_error);
    CHECK(cache.size() == 0);
    std::shared_ptr<counted_value> v =
        cache.get_or_create(5, [] { return std::make_shared<counted_value>(5); });
    REQUIRE(v);
    CHECK(v->value == 5);
    const memlens::weak_cache_stats s = cache.stats();
    CHECK(s.misses == 2);
    CHECK(s.creations == 1);
}

TEST_CASE("weak_cache: a null result is returned, not cached", "[weak_cache]") {
    cache_t cache;
    CHECK(cache.get_or_create(1, [] { return std::shared_ptr<counted_value>(); }) == nullptr);
    CHECK(cache.size() == 0);
    CHECK(cache.stats().creations == 0);
}

TEST_CASE("weak_cache: a factory asking for its own key is refused", "[weak_cache]") {
    cache_t cache;
    bool refused = false;
    auto outer = cache.get_or_create(1, [&] {
        try {
            cache.get_or_create(1, [] { return std::make_shared<counted_value>(0); });
        } catch (const std::logic_error&) {
            refused = true;
        }
        return std::make_shared<counted_value>(1);
    });
    CHECK(refused);
    CHECK(outer->value == 1);
}

TEST_CASE("weak_cache: concurrent callers make each key exactly once", "[weak_cache][threads]") {
    constexpr int threads = 8;
    constexpr int keys = 32;
    constexpr int rounds = 4;
    memlens::weak_cache<int, int> cache;
    std::vector<std::atomic<int>> made(keys);
    std::vector<std::vector<std::shared_ptr<int>>> got(threads);
    std::atomic<int> ready{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < threads) std::this_thread::yield();
            for (int r = 0; r < rounds; ++r) {
                for (int i = 0; i < keys; ++i) {
                    const int k = (i * (t + 1) + r) % keys;  // each thread its own order
                    got[static_cast<std::size_t>(t)].push_back(cache.get_or_create(k, [&, k] {
                        made[static_cast<std::size_t>(k)].fetch_add(1);
                        std::this_thread::yield();  // widens the window for others to wait
                        return std::make_shared<int>(k);
                    }));
                }
            }
        });
    }
    for (std::thread& th : pool) th.join();
    for (int k = 0; k < keys; ++k) CHECK(made[static_cast<std::size_t>(k)].load() == 1);
    std::vector<int*> first(keys, nullptr);
    for (const auto& results : got) {
        REQUIRE(results.size() == static_cast<std::size_t>(keys * rounds));
        for (const std::shared_ptr<int>& p : results) {
            REQUIRE(p);
            int*& seen = first[static_cast<std::size_t>(*p)];
            if (!seen) seen = p.get();
            CHECK(seen == p.get());
        }
    }
    const memlens::weak_cache_stats s = cache.stats();
    CHECK(s.creations == static_cast<std::uint64_t>(keys));
    CHECK(s.misses == static_cast<std::uint64_t>(keys));
    CHECK(s.hits == static_cast<std::uint64_t>(threads * keys * rounds - keys));
    CHECK(cache.size() == static_cast<std::size_t>(keys));
}

TEST_CASE("weak_cache: after a concurrent failure one waiter makes the value",
          "[weak_cache][threads]") {
    constexpr int threads = 8;
    constexpr int keys = 16;
    memlens::weak_cache<int, int> cache;
    std::vector<std::atomic<int>> runs(keys);
    std::vector<std::vector<std::shared_ptr<int>>> got(threads);
    std::atomic<int> ready{0};
    std::atomic<int> caught{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < threads) std::this_thread::yield();
            for (int k = 0; k < keys; ++k) {
                for (;;) {
                    try {
                        got[static_cast<std::size_t>(t)].push_back(cache.get_or_create(k, [&, k] {
                            // The first run of every key fails; later runs succeed.
                            if (runs[static_cast<std::size_t>(k)].fetch_add(1) == 0) {
                                std::this_thread::yield();
                                throw std::runtime_error("first run fails");
                            }
                            return std::make_shared<int>(k);
                        }));
                        break;
                    } catch (const std::runtime_error&) {
                        caught.fetch_add(1);
                    }
                }
            }
        });
    }
    for (std::thread& th : pool) th.join();
    for (int k = 0; k < keys; ++k) CHECK(runs[static_cast<std::size_t>(k)].load() == 2);
    CHECK(caught.load() == keys);  // only the thread whose factory threw sees the exception
    std::vector<int*> first(keys, nullptr);
    for (const auto& results : got) {
        REQUIRE(results.size() == static_cast<std::size_t>(keys));
        for (const std::shared_ptr<int>& p : results) {
            int*& seen = first[static_cast<std::size_t>(*p)];
            if (!seen) seen = p.get();
            CHECK(seen == p.get());
        }
    }
    const memlens::weak_cache_stats s = cache.stats();
    CHECK(s.misses == static_cast<std::uint64_t>(2 * keys));
    CHECK(s.creations == static_cast<std::uint64_t>(keys));
    CHECK(s.hits == static_cast<std::uint64_t>(threads * keys - keys));
}
