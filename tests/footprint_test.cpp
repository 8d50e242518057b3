// Footprints: requested bytes and blocks held, checked against the "heap" counters; slack
// checked against malloc_usable_size on the very blocks; nesting, exceptions, the comparison.
#include <memlens/helpers/footprint.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

// The usable bytes malloc gave a block the hooks returned, past their 16-byte header.
std::size_t slack_of(const void* block, std::size_t requested) {
#if defined(__GLIBC__)
    const auto* base = static_cast<const unsigned char*>(block) - 16;
    return ::malloc_usable_size(const_cast<unsigned char*>(base)) - 16 - requested;
#else
    (void)block;
    (void)requested;
    return 0;
#endif
}

}  // namespace

TEST_CASE("a reserved vector<int> holds exactly its buffer", "[footprint]") {
    const memlens::domain heap = memlens::domain::heap();
    const std::size_t before = memlens::stats(heap).current;
    auto m = memlens::measure_footprint([] {
        std::vector<int> v;
        v.reserve(1000);
        return v;
    });
    const std::size_t held = memlens::stats(heap).current - before;
    const memlens::footprint& f = m.figures;
    CHECK(f.heap_bytes == 4000);
    CHECK(held == 4000);
    CHECK(f.allocations == 1);
    CHECK(f.object_bytes == sizeof(std::vector<int>));
    CHECK(f.bytes() == 4000 + sizeof(std::vector<int>));
    CHECK(f.slack_blocks == 1);
    CHECK(f.slack_bytes == slack_of(m.value.data(), 4000));
    CHECK(f.build.allocs == 1);
    CHECK(f.build.peak == 4000);
}

TEST_CASE("slack is measured while the live table records every block", "[footprint]") {
    // Recorded blocks carry one more flag in the hooks' header word.
    memlens::leak_check recording;
    auto m = memlens::measure_footprint([] {
        std::vector<int> v;
        v.reserve(777);
        return v;
    });
    CHECK(m.figures.heap_bytes == 777 * sizeof(int));
    CHECK(m.figures.slack_blocks == 1);
    CHECK(m.figures.slack_bytes == slack_of(m.value.data(), 777 * sizeof(int)));
    CHECK(recording.leaked().allocations.size() == 1);
}

TEST_CASE("footprints are deep and leave out what building freed", "[footprint]") {
    const std::string text(40, 'x');
    auto m = memlens::measure_footprint([&] {
        std::vector<std::string> v;
        for (int i = 0; i < 100; ++i) v.push_back(text);
        return v;
    });
    const std::size_t buffer = m.value.capacity() * sizeof(std::string);
    CHECK(m.figures.heap_bytes == buffer + 100 * (text.size() + 1));
    CHECK(m.figures.allocations == 101);
    CHECK(m.figures.build.allocs > 101);
    CHECK(m.figures.build.allocated > m.figures.heap_bytes);
    CHECK(m.figures.build.peak >= m.figures.heap_bytes);
}

TEST_CASE("slack is what malloc_usable_size reports beyond the request, block by block",
          "[footprint]") {
    auto m = memlens::measure_footprint([] {
        std::vector<std::vector<char>> rows;
        rows.reserve(64);
        for (std::size_t i = 1; i <= 64; ++i) {
            rows.emplace_back();
            rows.back().reserve(i * 7);
        }
        return rows;
    });
    std::size_t requested = 64 * sizeof(std::vector<char>);
    std::size_t slack = slack_of(m.value.data(), requested);
    for (const std::vector<char>& row : m.value) {
        requested += row.capacity();
        slack += slack_of(row.data(), row.capacity());
    }
    CHECK(m.figures.heap_bytes == requested);
    CHECK(m.figures.allocations == 65);
    CHECK(m.figures.slack_blocks == 65);
    CHECK(m.figures.slack_bytes == slack);
#if defined(__GLIBC__)
    // glibc's chunks grow in 16-byte steps, so each block gets less than 16 spare bytes; a
    // sanitizer's allocator reports the requested size as usable, so it gives none.
    void* probe = std::malloc(1);
    const bool rounds = ::malloc_usable_size(probe) > 1;
    std::free(probe);
    CHECK((m.figures.slack_bytes > 0) == rounds);
    CHECK(m.figures.slack_bytes < 65 * 16);
#endif
}

TEST_CASE("nested footprints and exceptions", "[footprint]") {
    memlens::footprint inner;
    auto outer = memlens::measure_footprint([&] {
        std::vector<int> a(100);
        auto b = memlens::measure_footprint([] { return std::vector<int>(50); });
        inner = b.figures;
        return std::make_pair(std::move(a), std::move(b.value));
    });
    CHECK(inner.heap_bytes == 200);
    CHECK(inner.allocations == 1);
    CHECK(inner.slack_blocks == 1);
    CHECK(outer.figures.heap_bytes == 600);
    CHECK(outer.figures.allocations == 2);
    CHECK(outer.figures.slack_blocks == 2);
    CHECK(outer.figures.slack_bytes == slack_of(outer.value.first.data(), 400) +
                                           slack_of(outer.value.second.data(), 200));

    REQUIRE_THROWS_AS(memlens::measure_footprint([]() -> std::vector<int> {
                          std::vector<int> v(10);
                          throw std::runtime_error("no");
                      }),
                      std::runtime_error);
    auto after = memlens::measure_footprint([] { return std::vector<int>(3); });
    CHECK(after.figures.heap_bytes == 12);
    CHECK(after.figures.slack_blocks == 1);
}

TEST_CASE("compare_footprints measures each candidate and prints ratios", "[footprint]") {
    const auto rows = memlens::compare_footprints(
        memlens::candidate("small", [] {
            std::vector<int> v;
            v.reserve(1000);
            return v;
        }),
        memlens::candidate("twice", [] {
            std::vector<int> v;
            v.reserve(2000);
            return v;
        }),
        memlens::candidate("empty", [] { return 0; }));
    REQUIRE(rows.size() == 3);
    CHECK(rows[0].name == "small");
    CHECK(rows[0].figures.heap_bytes == 4000);
    CHECK(rows[1].figures.heap_bytes == 8000);
    CHECK(rows[1].figures.allocations == 1);
    CHECK(rows[2].figures.bytes() == sizeof(int));
    CHECK(rows[2].figures.allocations == 0);

    const std::vector<memlens::footprint_row> two(rows.begin(), rows.begin() + 2);
    const std::string table = memlens::format_footprints(two, 1000);
    const std::string small_bytes = std::to_string(4000 + sizeof(std::vector<int>));
    const std::string twice_ratio =
        [&] {
            char text[32];
            std::snprintf(text, sizeof text, "%.2fx",
                          (8000.0 + sizeof(std::vector<int>)) / (4000.0 + sizeof(std::vector<int>)));
            return std::string(text);
        }();
    CHECK(table.find("candidate") == 0);
    CHECK(table.find("small") != std::string::npos);
    CHECK(table.find("1.00x") != std::string::npos);
    CHECK(table.find(twice_ratio) != std::string::npos);
    CHECK(table.find("4.02") != std::string::npos);
    CHECK(small_bytes == "4024");
    CHECK(table.find("4,024") != std::string::npos);
}
