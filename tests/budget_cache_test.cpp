// budget_cache: LRU eviction order, the budget after every insertion, exact accounting against a
// reference model, refusal of oversized entries, and measured costs.
#include <memlens/helpers/budget_cache.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

// Each entry costs the length of its string: the figures below are the test's own.
using sized_cache = memlens::budget_cache<int, std::string>;
sized_cache::cost_function by_length() {
    return [](const int&, const std::string& s) { return s.size(); };
}

}  // namespace

TEST_CASE("budget_cache: evicts the least recently used first", "[budget_cache]") {
    sized_cache cache(30, by_length());
    CHECK(cache.put(1, std::string(10, 'a')) == memlens::budget_insert::inserted);
    CHECK(cache.put(2, std::string(10, 'b')) == memlens::budget_insert::inserted);
    CHECK(cache.put(3, std::string(10, 'c')) == memlens::budget_insert::inserted);
    CHECK(cache.held_bytes() == 30);
    REQUIRE(cache.get(1) != nullptr);  // 1 is now the most recent; 2 the least
    CHECK(cache.put(4, std::string(10, 'd')) == memlens::budget_insert::inserted);
    CHECK_FALSE(cache.contains(2));
    CHECK(cache.contains(1));
    CHECK(cache.put(5, std::string(20, 'e')) == memlens::budget_insert::inserted);
    CHECK_FALSE(cache.contains(3));  // 3 then 1 go, not 4, the most recent
    CHECK_FALSE(cache.contains(1));
    CHECK(cache.contains(4));
    CHECK(cache.contains(5));
    CHECK(cache.size() == 2);
    CHECK(cache.held_bytes() == 30);
    CHECK(*cache.get(4) == std::string(10, 'd'));
    CHECK(cache.get(2) == nullptr);
    const memlens::budget_cache_stats s = cache.stats();
    CHECK(s.hits == 2);
    CHECK(s.misses == 1);
    CHECK(s.inserted == 5);
    CHECK(s.evictions == 3);
    CHECK(s.rejected == 0);
}

TEST_CASE("budget_cache: an entry bigger than the budget is refused, the rest kept",
          "[budget_cache]") {
    sized_cache cache(25, by_length());
    cache.put(1, std::string(10, 'a'));
    cache.put(2, std::string(10, 'b'));
    CHECK(cache.put(3, std::string(26, 'c')) == memlens::budget_insert::rejected);
    CHECK(cache.size() == 2);
    CHECK(cache.held_bytes() == 20);
    CHECK(cache.stats().rejected == 1);
    CHECK(cache.stats().evictions == 0);
    CHECK(cache.put(4, std::string(25, 'd')) == memlens::budget_insert::inserted);  // exactly fits
    CHECK(cache.size() == 1);
    CHECK(cache.held_bytes() == 25);
    // A refused replacement drops the old value: the cache must not serve what was replaced.
    CHECK(cache.put(4, std::string(30, 'e')) == memlens::budget_insert::rejected);
    CHECK_FALSE(cache.contains(4));
    CHECK(cache.held_bytes() == 0);
    CHECK(cache.stats().rejected == 2);
}

TEST_CASE("budget_cache: replacing a key re-charges it and makes it most recent",
          "[budget_cache]") {
    sized_cache cache(30, by_length());
    cache.put(1, std::string(10, 'a'));
    cache.put(2, std::string(10, 'b'));
    CHECK(cache.put(1, std::string(15, 'A')) == memlens::budget_insert::replaced);
    CHECK(cache.held_bytes() == 25);
    CHECK(cache.cost_of(1) == 15);
    CHECK(cache.put(3, std::string(10, 'c')) == memlens::budget_insert::inserted);
    CHECK_FALSE(cache.contains(2));
    CHECK(*cache.get(1) == std::string(15, 'A'));
    CHECK(cache.stats().evictions == 1);
    CHECK(cache.erase(1));
    CHECK_FALSE(cache.erase(1));
    CHECK(cache.held_bytes() == 10);
    cache.clear();
    CHECK(cache.held_bytes() == 0);
    CHECK(cache.empty());
}

TEST_CASE("budget_cache: matches a reference LRU and never exceeds its budget",
          "[budget_cache]") {
    constexpr std::size_t budget = 1000;
    sized_cache cache(budget, by_length());
    std::list<std::pair<int, std::size_t>> model;  // most recent first: key, cost
    std::uint64_t evictions = 0;
    std::uint64_t rejected = 0;
    std::uint32_t x = 12345;
    auto next = [&x] {
        x = x * 1103515245u + 12345u;
        return (x >> 8) & 0xffffu;
    };
    auto model_find = [&](int key) {
        return std::find_if(model.begin(), model.end(),
                            [key](const std::pair<int, std::size_t>& e) { return e.first == key; });
    };
    for (int step = 0; step < 20000; ++step) {
        const int key = static_cast<int>(next() % 64);
        if (next() % 3 == 0) {
            const std::string* v = cache.get(key);
            const auto m = model_find(key);
            REQUIRE((v != nullptr) == (m != model.end()));
            if (m != model.end()) {
                CHECK(v->size() == m->second);
                model.splice(model.begin(), model, m);
            }
            continue;
        }
        // Mostly small entries, now and then one bigger than the whole budget.
        const std::size_t cost = next() % 50 == 0 ? budget + 1 + next() % 100 : next() % 300;
        const memlens::budget_insert result = cache.put(key, std::string(cost, 'x'));
        const auto m = model_find(key);
        if (m != model.end()) model.erase(m);
        if (cost > budget) {
            ++rejected;
            CHECK(result == memlens::budget_insert::rejected);
        } else {
            std::size_t held = 0;
            for (const auto& e : model) held += e.second;
            while (held + cost > budget) {
                held -= model.back().second;
                model.pop_back();
                ++evictions;
            }
            model.emplace_front(key, cost);
        }
        std::size_t held = 0;
        for (const auto& e : model) {
            REQUIRE(cache.contains(e.first));
            REQUIRE(cache.cost_of(e.first) == e.second);
            held += e.second;
        }
        REQUIRE(cache.held_bytes() <= budget);
        REQUIRE(cache.held_bytes() == held);
        REQUIRE(cache.size() == model.size());
    }
    CHECK(cache.stats().evictions == evictions);
    CHECK(cache.stats().rejected == rejected);
    CHECK(rejected > 0);
    CHECK(evictions > 0);
}

TEST_CASE("budget_cache: a throwing cost function leaves the cache as it was",
          "[budget_cache]") {
    bool fail = false;
    sized_cache cache(100, [&fail](const int&, const std::string& s) -> std::size_t {
        if (fail) throw std::runtime_error("cost");
        return s.size();
    });
    cache.put(1, "abc");
    fail = true;
    CHECK_THROWS_AS(cache.put(1, "abcdef"), std::runtime_error);
    CHECK_THROWS_AS(cache.put(2, "abcdef"), std::runtime_error);
    CHECK(cache.size() == 1);
    CHECK(cache.held_bytes() == 3);
    fail = false;
    CHECK(*cache.get(1) == "abc");
}

// The suite runs with memlens's global operator new hooks, so measuring sees the heap.
TEST_CASE("budget_cache: measured costs are what the entry holds", "[budget_cache]") {
    using vec = std::vector<char>;
    memlens::budget_cache<int, vec> cache(1 << 20);
    CHECK(cache.emplace(0, vec()) == memlens::budget_insert::inserted);
    const std::size_t base = cache.cost_of(0);
    // The list node and the index node at least, plus the stated bucket share.
    CHECK(base >= sizeof(vec) + 2 * sizeof(int) + 3 * sizeof(void*) +
                      memlens::budget_cache<int, vec>::index_overhead);

    cache.emplace(1, std::size_t{1000});  // built in place: vec(1000)
    CHECK(cache.cost_of(1) == base + 1000);
    const vec copied(500);
    cache.put(2, copied);  // copied inside the measured block
    CHECK(cache.cost_of(2) == base + 500);
    cache.emplace_with(3, [] { return vec(300); });
    CHECK(cache.cost_of(3) == base + 300);
    vec moved(700);
    cache.emplace(4, std::move(moved));  // its memory was made before: only the node counts
    CHECK(cache.cost_of(4) == base);

    // Many entries of one shape cost the same: no entry is charged for the index growing.
    for (int k = 10; k < 400; ++k) {
        cache.emplace(k, std::size_t{64});
        REQUIRE(cache.cost_of(k) == base + 64);
    }
    std::size_t held = 0;
    for (int k : {0, 1, 2, 3, 4}) held += cache.cost_of(k);
    held += 390 * (base + 64);
    CHECK(cache.held_bytes() == held);
}

TEST_CASE("budget_cache: measured eviction keeps the budget", "[budget_cache]") {
    using vec = std::vector<char>;
    memlens::budget_cache<int, vec> probe(1 << 20);
    probe.emplace(0, vec());
    const std::size_t base = probe.cost_of(0);

    // Room for exactly three entries of 100 bytes.
    memlens::budget_cache<int, vec> cache(3 * (base + 100));
    for (int k = 0; k < 10; ++k) {
        CHECK(cache.emplace(k, std::size_t{100}) == memlens::budget_insert::inserted);
        CHECK(cache.held_bytes() <= cache.budget());
    }
    CHECK(cache.size() == 3);
    CHECK(cache.held_bytes() == cache.budget());
    CHECK(cache.stats().evictions == 7);
    CHECK(cache.contains(7));
    CHECK(cache.contains(8));
    CHECK(cache.contains(9));
    CHECK(cache.emplace(20, 4 * (base + 100)) == memlens::budget_insert::rejected);
    CHECK(cache.size() == 3);
    CHECK(cache.stats().rejected == 1);
}
