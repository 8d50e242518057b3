// MEMLENS_SCOPE: where it was opened, and totals per name over every pass.
#include <memlens/observe/named_scope.hpp>
#include <memlens/sources/record.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace {

const memlens::domain d = memlens::domain::named("named.blocks");

void parse(std::size_t keep, std::size_t temporary) {
    MEMLENS_SCOPE("named.parse");
    memlens::record_alloc(nullptr, temporary, d);
    memlens::record_alloc(nullptr, keep, d);
    memlens::record_free(nullptr, temporary, d);
}

const memlens::named_scope_stats* find(const std::vector<memlens::named_scope_stats>& all,
                                       const std::string& name) {
    for (const auto& s : all) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

}  // namespace

TEST_CASE("a named scope adds every pass to its totals", "[named]") {
    parse(10, 100);
    parse(20, 1000);
    parse(30, 50);
    const auto all = memlens::named_scopes();
    const memlens::named_scope_stats* s = find(all, "named.parse");
    REQUIRE(s != nullptr);
    CHECK(s->calls == 3);
    CHECK(s->allocated == 1210);
    CHECK(s->allocs == 6);
    CHECK(s->net == 60);
    CHECK(s->max_peak == 1020);
    CHECK(s->line > 0);
    CHECK(s->file.find("named_scope_test.cpp") != std::string::npos);
    CHECK(s->function.find("parse") != std::string::npos);
    memlens::record_free(nullptr, 60, d);
}

TEST_CASE("named scopes nest inside other scopes", "[named]") {
    memlens::scope outer;
    parse(1, 2);
    CHECK(outer.usage().allocated == 3);
    CHECK(outer.usage().peak == 3);
    memlens::record_free(nullptr, 1, d);
}

TEST_CASE("reset_named_scopes zeroes the totals", "[named]") {
    parse(5, 5);
    memlens::record_free(nullptr, 5, d);
    memlens::reset_named_scopes();
    const auto all = memlens::named_scopes();
    const memlens::named_scope_stats* s = find(all, "named.parse");
    REQUIRE(s != nullptr);
    CHECK(s->calls == 0);
    CHECK(s->allocated == 0);
}
