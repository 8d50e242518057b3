// Per-type counters: exact instance and byte counts across copies, moves, throwing constructors,
// tracking_allocator containers and threads; peaks; the listings; no allocation on any path.
#include <memlens/observe/types.hpp>
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

template <class T>
std::uint64_t live() {
    return memlens::type_stats_of<T>().instances;
}

template <class T>
std::uint64_t made() {
    return memlens::type_stats_of<T>().constructed;
}

struct widget : memlens::counted_type<widget> {
    explicit widget(int v = 0) : value(v) {}
    int value;
    std::uint64_t pad[3] = {};
};

struct fragile : memlens::counted_type<fragile> {
    explicit fragile(bool fail) : name("a name long enough to need the heap, for sure") {
        if (fail) throw std::runtime_error("fragile");
    }
    fragile(const fragile& other) : memlens::counted_type<fragile>(other), name(other.name) {
        if (copies_left-- == 0) throw std::runtime_error("copy");
    }
    static inline int copies_left = 1 << 30;
    std::string name;
};

struct member_throws {
    member_throws() { throw std::logic_error("member"); }
};

struct holder : memlens::counted_type<holder> {
    member_throws m;
};

// A type the test pretends it cannot change.
class legacy {
public:
    legacy() = default;
    legacy(int a, int b) : sum_(a + b) {}
    int sum() const { return sum_; }

private:
    int sum_ = 0;
};

struct record {
    double x, y, z;
};

struct early_counted : memlens::counted_type<early_counted> {};
// Constructed before main: counted, with the tables created on this first event.
const early_counted early_instance;

}  // namespace

TEST_CASE("counted_type counts constructions, copies and moves exactly", "[types]") {
    REQUIRE(sizeof(widget) == sizeof(int) * 2 + sizeof(std::uint64_t) * 3);
    {
        widget a(1);
        widget b(2);
        widget c = a;
        widget d = std::move(b);
        REQUIRE(live<widget>() == 4);
        a = c;
        d = std::move(c);
        REQUIRE(live<widget>() == 4);
        const memlens::type_stats s = memlens::type_stats_of<widget>();
        CHECK(s.bytes == 4 * sizeof(widget));
        CHECK(s.size == sizeof(widget));
        CHECK(s.constructed == 4);
        CHECK(s.peak == 4);
        CHECK(s.name == "(anonymous namespace)::widget");
        {
            std::vector<widget> many(10);
            std::vector<widget> copy = many;
            REQUIRE(live<widget>() == 24);
        }
        REQUIRE(live<widget>() == 4);
    }
    const memlens::type_stats s = memlens::type_stats_of<widget>();
    CHECK(s.instances == 0);
    CHECK(s.bytes == 0);
    CHECK(s.constructed == 24);
    CHECK(s.peak == 24);
}

TEST_CASE("constructors that throw leave the counts exact", "[types]") {
    const std::uint64_t before = made<fragile>();
    REQUIRE_THROWS_AS(fragile(true), std::runtime_error);
    CHECK(live<fragile>() == 0);
    CHECK(made<fragile>() == before + 1);

    REQUIRE_THROWS_AS(holder(), std::logic_error);
    CHECK(live<holder>() == 0);
    CHECK(made<holder>() == 1);

    std::vector<fragile> source;
    source.reserve(5);
    for (int i = 0; i < 5; ++i) source.emplace_back(false);
    REQUIRE(live<fragile>() == 5);
    fragile::copies_left = 3;
    REQUIRE_THROWS_AS(std::vector<fragile>(source), std::runtime_error);
    fragile::copies_left = 1 << 30;
    CHECK(live<fragile>() == 5);
    source.clear();
    CHECK(live<fragile>() == 0);
}

TEST_CASE("counted<T> counts a type that cannot be changed", "[types]") {
    {
        memlens::counted<legacy> a(2, 3);
        memlens::counted<legacy> b;
        memlens::counted<legacy> c = a;
        const legacy plain(4, 4);
        memlens::counted<legacy> d = plain;
        CHECK(a.sum() == 5);
        CHECK(d.sum() == 8);
        STATIC_REQUIRE(sizeof(memlens::counted<legacy>) == sizeof(legacy));
        const memlens::type_stats s = memlens::type_stats_of<legacy>();
        CHECK(s.instances == 4);
        CHECK(s.bytes == 4 * sizeof(legacy));
        CHECK(s.name == "(anonymous namespace)::legacy");
    }
    CHECK(live<legacy>() == 0);
    CHECK(made<legacy>() == 4);
}

TEST_CASE("tracking_allocator counts n instances of T per allocation", "[types]") {
    using alloc = memlens::tracking_allocator<record>;
    {
        std::vector<record, alloc> v;
        v.reserve(10);
        const memlens::type_stats s = memlens::type_stats_of<record>();
        CHECK(s.instances == 10);
        CHECK(s.bytes == 10 * sizeof(record));
        CHECK(s.constructed == 10);
        v.resize(10);
        v.push_back({});
        CHECK(live<record>() == 20);
        CHECK(made<record>() == 30);
        CHECK(memlens::type_stats_of<record>().peak == 30);
        v.shrink_to_fit();
        CHECK(live<record>() == 11);
    }
    CHECK(live<record>() == 0);

    // A type that counts itself is counted once, by construction, not by the room for it.
    const std::uint64_t widgets = live<widget>();
    {
        std::vector<widget, memlens::tracking_allocator<widget>> w;
        w.reserve(16);
        w.emplace_back(1);
        w.emplace_back(2);
        CHECK(live<widget>() == widgets + 2);
    }
    CHECK(live<widget>() == widgets);
}

TEST_CASE("node containers are counted under their node type", "[types]") {
    std::list<record, memlens::tracking_allocator<record>> nodes;
    for (int i = 0; i < 37; ++i) nodes.push_back({1, 2, 3});
    bool found = false;
    for (const memlens::type_stats& s : memlens::most_common_types(1000)) {
        if (s.name.find("_List_node<(anonymous namespace)::record>") == std::string::npos) continue;
        found = true;
        CHECK(s.instances == 37);
        CHECK(s.bytes == 37 * s.size);
        CHECK(s.size >= sizeof(record) + 2 * sizeof(void*));
    }
    CHECK(found);
    nodes.clear();
    // Types with no live instance are left out of the listing.
    for (const memlens::type_stats& s : memlens::most_common_types(1000)) {
        CHECK(s.name.find("_List_node<(anonymous namespace)::record>") == std::string::npos);
    }
}

namespace {
struct threaded : memlens::counted_type<threaded> {
    std::uint32_t tag = 7;
};
struct handed : memlens::counted_type<handed> {};
}  // namespace

TEST_CASE("counts are exact across threads, after they exit, and with reused records", "[types]") {
    constexpr int per_thread = 20000;
    std::vector<std::unique_ptr<threaded>> kept[4];
    for (int round = 0; round < 2; ++round) {
        std::vector<std::thread> workers;
        for (auto& out : kept) {
            workers.emplace_back([&out] {
                std::vector<std::unique_ptr<threaded>> mine;
                for (int i = 0; i < per_thread; ++i) mine.push_back(std::make_unique<threaded>());
                // Half die here; half outlive the thread and die on another.
                for (int i = 0; i < per_thread / 2; ++i) out.push_back(std::move(mine[static_cast<std::size_t>(i)]));
                thread_local threaded last_words;
                memlens_test::keep(&last_words);
            });
        }
        for (std::thread& t : workers) t.join();
        CHECK(live<threaded>() == static_cast<std::uint64_t>((round + 1) * 4 * per_thread / 2));
        CHECK(made<threaded>() == static_cast<std::uint64_t>((round + 1) * 4 * (per_thread + 1)));
    }
    for (auto& out : kept) out.clear();
    CHECK(live<threaded>() == 0);
    CHECK(memlens::type_stats_of<threaded>().peak >= 4 * per_thread / 2);
}

TEST_CASE("the peak is exact while threads take turns", "[types]") {
    std::vector<std::unique_ptr<handed>> items;
    for (int i = 0; i < 7; ++i) items.push_back(std::make_unique<handed>());
    items.resize(4);
    for (int i = 0; i < 2; ++i) items.push_back(std::make_unique<handed>());
    CHECK(memlens::type_stats_of<handed>().peak == 7);
    // Another thread adds to what this one holds: the new high is seen across tables.
    std::thread([&items] {
        for (int i = 0; i < 5; ++i) items.push_back(std::make_unique<handed>());
    }).join();
    CHECK(live<handed>() == 11);
    CHECK(memlens::type_stats_of<handed>().peak == 11);
    // Freed here, then made again there: no new peak until the count passes 11 again.
    items.clear();
    std::thread([&items] {
        for (int i = 0; i < 11; ++i) items.push_back(std::make_unique<handed>());
    }).join();
    CHECK(memlens::type_stats_of<handed>().peak == 11);
    items.push_back(std::make_unique<handed>());
    CHECK(memlens::type_stats_of<handed>().peak == 12);
    items.clear();
}

namespace {
struct alpha : memlens::counted_type<alpha> {};
struct beta : memlens::counted_type<beta> {};
struct gamma_t : memlens::counted_type<gamma_t> {};
struct shrinking : memlens::counted_type<shrinking> {};

template <class T>
const memlens::type_stats* find_stats(const std::vector<memlens::type_stats>& rows) {
    const std::string name = memlens::type_stats_of<T>().name;
    for (const memlens::type_stats& r : rows) {
        if (r.name == name) return &r;
    }
    return nullptr;
}

template <class T>
const memlens::type_growth* find_growth(const std::vector<memlens::type_growth>& rows) {
    const std::string name = memlens::type_stats_of<T>().name;
    for (const memlens::type_growth& r : rows) {
        if (r.name == name) return &r;
    }
    return nullptr;
}
}  // namespace

TEST_CASE("most_common_types and growth list exact figures", "[types]") {
    std::vector<shrinking> old(50);
    memlens::type_checkpoint checkpoint;
    std::vector<alpha> a(3000);
    std::vector<beta> b(2000);
    std::vector<gamma_t> c(1000);
    old.resize(10);

    const std::vector<memlens::type_stats> all = memlens::most_common_types(1000);
    REQUIRE(std::is_sorted(all.begin(), all.end(), [](const auto& x, const auto& y) {
        return x.instances > y.instances;
    }));
    const memlens::type_stats* sa = find_stats<alpha>(all);
    const memlens::type_stats* sb = find_stats<beta>(all);
    const memlens::type_stats* sc = find_stats<gamma_t>(all);
    REQUIRE(sa);
    REQUIRE(sb);
    REQUIRE(sc);
    CHECK(sa->instances == 3000);
    CHECK(sb->instances == 2000);
    CHECK(sc->instances == 1000);
    CHECK(sa < sb);
    CHECK(sb < sc);
    CHECK(memlens::most_common_types(2).size() == 2);

    const std::vector<memlens::type_growth> grown = checkpoint.growth(1000);
    REQUIRE(grown.size() >= 3);
    const memlens::type_growth* ga = find_growth<alpha>(grown);
    const memlens::type_growth* gb = find_growth<beta>(grown);
    const memlens::type_growth* gc = find_growth<gamma_t>(grown);
    REQUIRE(ga);
    REQUIRE(gb);
    REQUIRE(gc);
    CHECK(ga->growth == 3000);
    CHECK(gb->growth == 2000);
    CHECK(gc->instances == 1000);
    CHECK(ga < gb);
    CHECK(find_growth<shrinking>(grown) == nullptr);
    CHECK(checkpoint.growth(1).size() == 1);

    checkpoint.reset();
    a.resize(3100);
    const std::vector<memlens::type_growth> again = checkpoint.growth(1000);
    REQUIRE(find_growth<alpha>(again));
    CHECK(find_growth<alpha>(again)->growth == 100);
    CHECK(find_growth<beta>(again) == nullptr);
}

TEST_CASE("type_growth_since_last_call reports rises above earlier highs", "[types]") {
    struct delta : memlens::counted_type<delta> {};
    memlens::type_growth_since_last_call(100000);
    std::vector<delta> d(4);
    auto rows = memlens::type_growth_since_last_call(100000);
    REQUIRE(find_growth<delta>(rows));
    CHECK(find_growth<delta>(rows)->growth == 4);
    CHECK(find_growth<delta>(memlens::type_growth_since_last_call(100000)) == nullptr);
    d.resize(2);
    d.resize(3);
    CHECK(find_growth<delta>(memlens::type_growth_since_last_call(100000)) == nullptr);
    d.resize(6);
    rows = memlens::type_growth_since_last_call(100000);
    REQUIRE(find_growth<delta>(rows));
    CHECK(find_growth<delta>(rows)->growth == 2);
    CHECK(find_growth<delta>(rows)->instances == 6);
}

TEST_CASE("the text tables show every figure", "[types]") {
    std::vector<memlens::type_stats> rows(1);
    rows[0].name = "demo::thing";
    rows[0].size = 16;
    rows[0].instances = 1234;
    rows[0].bytes = 19744;
    rows[0].peak = 2000;
    rows[0].constructed = 1234567;
    CHECK(memlens::format_types(rows) ==
          "type           instances         bytes       peak  constructed\n"
          "demo::thing        1,234        19,744      2,000    1,234,567\n");
    std::vector<memlens::type_growth> grown(1);
    grown[0].name = "x";
    grown[0].instances = 1500;
    grown[0].growth = 1000;
    CHECK(memlens::format_growth(grown) ==
          "type    instances     growth\n"
          "x           1,500     +1,000\n");
}

TEST_CASE("counting and reading allocate nothing in the caller's scopes", "[types]") {
    struct fresh : memlens::counted_type<fresh> {};
    memlens::scope s;
    for (int i = 0; i < 100; ++i) {
        fresh f;
        memlens_test::keep(&f);
    }
    const auto rows = memlens::most_common_types();
    const auto stats = memlens::type_stats_of<fresh>();
    const memlens::type_checkpoint checkpoint;
    const auto text = memlens::format_types(rows) + memlens::format_growth(checkpoint.growth());
    CHECK(stats.constructed == 100);
    CHECK(s.usage().allocs == 0);
    CHECK(s.usage().allocated == 0);
}

TEST_CASE("objects made before main are counted", "[types]") {
    const memlens::type_stats s = memlens::type_stats_of<early_counted>();
    CHECK(s.instances == 1);
    CHECK(s.constructed == 1);
    CHECK(s.peak == 1);
}
