// Domains and their exact counters.
#include <memlens/core/counters.hpp>
#include <memlens/sources/record.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace {

int dummy_block[16];

}  // namespace

TEST_CASE("record_alloc and record_free keep exact figures per domain", "[counters]") {
    const memlens::domain d = memlens::domain::named("counters.exact");
    memlens::record_alloc(&dummy_block[0], 100, d);
    memlens::record_alloc(&dummy_block[1], 250, d);
    memlens::record_free(&dummy_block[0], 100, d);
    memlens::record_alloc(&dummy_block[2], 30, d);

    const memlens::memory_stats s = memlens::stats(d);
    CHECK(s.current == 280);
    CHECK(s.peak == 350);
    CHECK(s.total == 380);
    CHECK(s.allocs == 3);
    CHECK(s.frees == 1);

    memlens::record_free(&dummy_block[1], 250, d);
    memlens::record_free(&dummy_block[2], 30, d);
    const memlens::memory_stats end = memlens::stats(d);
    CHECK(end.current == 0);
    CHECK(end.peak == 350);
    CHECK(end.allocs == end.frees);
}

TEST_CASE("reset_peak makes the peak equal to the live bytes", "[counters]") {
    const memlens::domain d = memlens::domain::named("counters.reset");
    memlens::record_alloc(nullptr, 4096, d);
    memlens::record_alloc(nullptr, 1000, d);
    memlens::record_free(nullptr, 4096, d);
    REQUIRE(memlens::stats(d).peak == 5096);
    memlens::reset_peak();
    CHECK(memlens::stats(d).peak == 1000);
    memlens::record_alloc(nullptr, 24, d);
    CHECK(memlens::stats(d).peak == 1024);
    memlens::record_free(nullptr, 1024, d);
}

TEST_CASE("a domain name always maps to the same domain", "[counters]") {
    const memlens::domain a = memlens::domain::named("counters.same");
    const memlens::domain b = memlens::domain::named(std::string("counters.") + "same");
    CHECK(a == b);
    CHECK(a.name() == "counters.same");
    CHECK(memlens::domain::heap().name() == "heap");
    CHECK(memlens::domain::named("heap") == memlens::domain::heap());
    CHECK(a != memlens::domain::heap());
}

TEST_CASE("domains() lists every named domain with its figures", "[counters]") {
    const memlens::domain d = memlens::domain::named("counters.listed");
    memlens::record_alloc(nullptr, 77, d);
    bool found = false;
    bool heap = false;
    for (const memlens::domain_stats& entry : memlens::domains()) {
        if (entry.domain == d) {
            found = true;
            CHECK(entry.stats.current == 77);
        }
        heap = heap || entry.domain == memlens::domain::heap();
    }
    CHECK(found);
    CHECK(heap);
    memlens::record_free(nullptr, 77, d);
}

TEST_CASE("process figures are the sum of the domains", "[counters]") {
    const memlens::domain d = memlens::domain::named("counters.process");
    const memlens::memory_stats before = memlens::stats();
    memlens::record_alloc(nullptr, 1 << 20, d);
    const memlens::memory_stats during = memlens::stats();
    memlens::record_free(nullptr, 1 << 20, d);
    // Catch2 may allocate between the reads, so only the domain's part is compared exactly.
    CHECK(during.total - before.total >= (1u << 20));
    CHECK(during.peak >= during.current);
    CHECK(during.current >= (1u << 20));
}

namespace {
std::string domain_error;
void remember_domain_error(const char* message) noexcept { domain_error = message; }
}  // namespace

TEST_CASE("bad domain names are reported and counted in overflow", "[counters][errors]") {
    memlens::set_error_handler(&remember_domain_error);
    const memlens::domain empty = memlens::domain::named("");
    memlens::set_error_handler(nullptr);
    CHECK(empty.name() == "overflow");
    CHECK(domain_error.find("empty name") != std::string::npos);

    memlens::set_error_handler(&remember_domain_error);
    const memlens::domain longer =
        memlens::domain::named("counters.a-name-that-is-far-too-long-for-a-domain-table-slot");
    memlens::set_error_handler(nullptr);
    CHECK(domain_error.find("longer than 47") != std::string::npos);
    CHECK(longer.name().size() == 47);
}
