// A test program that forgot <memlens/hooks.hpp>: nothing counts its heap, so its heap checks
// must fail and say how to install the hooks, rather than pass on code that leaks.
#include <catch2/catch.hpp>

#include <memlens/sources/record.hpp>
#include <memlens/testing/checks.hpp>

#include <string>

namespace {
int* leaked = nullptr;
}  // namespace

TEST_CASE("without the hooks, hooks_installed says so", "[no_hooks]") {
    CHECK_FALSE(memlens::hooks_installed());
}

TEST_CASE("without the hooks, a leaking block fails the heap checks with the remedy", "[no_hooks]") {
    const memlens::check_result leak = memlens::check_no_leaks([] {
        leaked = new int(42);
        memlens::keep_observable(leaked);
    });
    CHECK_FALSE(leak.passed);
    CHECK(leak.message.find("nothing could count this block's heap allocations") != std::string::npos);
    CHECK(leak.message.find("include <memlens/hooks.hpp> in exactly one source file") != std::string::npos);
    CHECK_FALSE(memlens::check_no_allocs([] {
                    int* p = new int(1);
                    memlens::keep_observable(p);
                    delete p;
                }).passed);
    delete leaked;
}

TEST_CASE("without the hooks, checks of what other sources count still work", "[no_hooks]") {
    const memlens::domain pool = memlens::domain::named("no_hooks.pool");
    CHECK(memlens::check_allocs(1, [&] { memlens::record_alloc(nullptr, 64, pool); }).passed);
    const memlens::check_result leak =
        memlens::check_no_leaks([&] { memlens::record_alloc(nullptr, 32, pool); });
    CHECK_FALSE(leak.passed);
    CHECK(leak.message.find("expected no leak") != std::string::npos);
}
