// Failure injection: fail_allocations, failing_resource and for_each_allocation_failure.
#include <memlens/testing/catch2.hpp>
#include <memlens/testing/failures.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Three allocations, owned as they are made: exception safe.
void three_owned() {
    std::unique_ptr<int> a(new int(1));
    std::unique_ptr<long> b(new long(2));
    std::unique_ptr<char[]> c(new char[24]);
    memlens_test::keep(a.get());
    memlens_test::keep(b.get());
    memlens_test::keep(c.get());
}

// The block's first allocation, kept reachable so that LeakSanitizer does not report the leak
// this test makes on purpose.
int* first_block = nullptr;

// The first block is lost to the block when the second allocation throws.
MEMLENS_TEST_NOINLINE void leaks_on_second_failure() {
    int* a = new int(1);
    first_block = a;
    memlens_test::keep(a);
    auto* b = new double(2);
    memlens_test::keep(b);
    delete b;
    delete a;
}

}  // namespace

TEST_CASE("fail_allocations fails the Nth allocation only", "[failures]") {
    bool threw[4] = {};
    std::uint64_t seen = 0, failed = 0, first = 0;
    std::size_t size = 0;
    {
        memlens::fail_allocations f(memlens::failure_policy::nth(2));
        for (bool& t : threw) {
            try {
                auto* p = new long(7);
                memlens_test::keep(p);
                delete p;
            } catch (const std::bad_alloc&) {
                t = true;
            }
        }
        seen = f.allocations();
        failed = f.failures();
        first = f.first_failure();
        size = f.first_failure_size();
    }
    CHECK_FALSE(threw[0]);
    CHECK(threw[1]);
    CHECK_FALSE(threw[2]);
    CHECK_FALSE(threw[3]);
    CHECK(seen == 4);
    CHECK(failed == 1);
    CHECK(first == 2);
    CHECK(size == sizeof(long));
    // Out of the scope nothing fails.
    auto* p = new long(1);
    memlens_test::keep(p);
    delete p;
}

TEST_CASE("from_nth fails every later allocation, and nothrow forms return null", "[failures]") {
    void* got[5] = {};
    std::uint64_t failed = 0;
    {
        memlens::fail_allocations f(memlens::failure_policy::from_nth(3));
        for (void*& g : got) g = ::operator new(16, std::nothrow);
        failed = f.failures();
    }
    CHECK(got[0] != nullptr);
    CHECK(got[1] != nullptr);
    CHECK(got[2] == nullptr);
    CHECK(got[3] == nullptr);
    CHECK(got[4] == nullptr);
    CHECK(failed == 3);
    for (void* g : got) ::operator delete(g);
}

TEST_CASE("failed allocations are not counted, and the others are, exactly", "[failures]") {
    memlens::scope s(memlens::scope_kind::thread);
    {
        memlens::fail_allocations f(memlens::failure_policy::nth(1));
        void* a = ::operator new(100, std::nothrow);
        void* b = ::operator new(40, std::nothrow);
        CHECK(a == nullptr);
        memlens_test::keep(b);
        ::operator delete(b);
    }
    const memlens::block_usage u = s.usage();
    CHECK(u.allocs == 1);
    CHECK(u.allocated == 40);
    CHECK(u.net == 0);
}

TEST_CASE("a random policy fails the same allocations for the same seed", "[failures]") {
    const auto pattern = [](double p, std::uint64_t seed) {
        std::uint64_t bits = 0;
        memlens::fail_allocations f(memlens::failure_policy::random(p, seed));
        for (int i = 0; i < 64; ++i) {
            void* q = ::operator new(8, std::nothrow);
            if (!q) bits |= std::uint64_t{1} << i;
            ::operator delete(q);
        }
        return bits;
    };
    const std::uint64_t a = pattern(0.5, 42);
    CHECK(a == pattern(0.5, 42));
    CHECK(a != pattern(0.5, 43));
    CHECK(a != 0);
    CHECK(a != ~std::uint64_t{0});
    CHECK(pattern(0.0, 1) == 0);
    CHECK(pattern(1.0, 1) == ~std::uint64_t{0});
}

TEST_CASE("the innermost scope decides, and the outer one resumes", "[failures]") {
    std::uint64_t outer_seen = 0, inner_seen = 0;
    bool inner_null = false, outer_null = false;
    {
        memlens::fail_allocations outer(memlens::failure_policy::none());
        {
            memlens::fail_allocations inner(memlens::failure_policy::nth(1));
            void* p = ::operator new(8, std::nothrow);
            inner_null = p == nullptr;
            inner_seen = inner.allocations();
        }
        void* q = ::operator new(8, std::nothrow);
        outer_null = q == nullptr;
        ::operator delete(q);
        outer_seen = outer.allocations();
    }
    CHECK(inner_null);
    CHECK_FALSE(outer_null);
    CHECK(inner_seen == 1);
    CHECK(outer_seen == 1);
}

TEST_CASE("failing_resource fails its own Nth allocation over an upstream", "[failures]") {
    memlens::failing_resource r(memlens::failure_policy::nth(2));
    std::pmr::vector<int> v(&r);
    v.reserve(4);
    bool threw = false;
    try {
        v.reserve(64);
    } catch (const std::bad_alloc&) {
        threw = true;
    }
    CHECK(threw);
    CHECK(v.capacity() == 4);
    v.reserve(128);
    CHECK(v.capacity() == 128);
    CHECK(r.allocations() == 3);
    CHECK(r.failures() == 1);
    CHECK(r.first_failure() == 2);
    CHECK(r.upstream_resource() == std::pmr::get_default_resource());
    CHECK(r.is_equal(r));
}

TEST_CASE("for_each_allocation_failure fails each allocation once and verifies after each run", "[failures]") {
    std::vector<std::uint64_t> verified;
    const memlens::failure_sweep s = memlens::for_each_allocation_failure(
        three_owned, [&](std::uint64_t n) {
            memlens::detail::guard quiet;
            verified.push_back(n);
        });
    CHECK(s.passed);
    CHECK(s.allocations == 3);
    CHECK(s.runs == 3);
    CHECK(s.escaped == 3);
    CHECK(s.handled == 0);
    CHECK(s.missed == 0);
    CHECK(s.leaking == 0);
    CHECK(verified == std::vector<std::uint64_t>{0, 1, 2, 3});
    CHECK(s.message.find("3 allocations, 3 failing runs: 3 threw std::bad_alloc") != std::string::npos);
}

TEST_CASE("for_each_allocation_failure counts failures the block handles", "[failures]") {
    const memlens::failure_sweep s = memlens::for_each_allocation_failure([] {
        for (int i = 0; i < 2; ++i) {
            void* p = ::operator new(32, std::nothrow);
            ::operator delete(p);
        }
    });
    CHECK(s.passed);
    CHECK(s.allocations == 2);
    CHECK(s.handled == 2);
    CHECK(s.escaped == 0);
}

TEST_CASE("for_each_allocation_failure names a leak on an exception path and its stack", "[failures]") {
    const memlens::failure_sweep s = memlens::for_each_allocation_failure(leaks_on_second_failure);
    CHECK_FALSE(s.passed);
    CHECK(s.allocations == 2);
    CHECK(s.runs == 2);
    CHECK(s.escaped == 2);
    CHECK(s.leaking == 1);
    CHECK(s.message.find("run 2 of 2 (allocation 2, of 8 bytes, failed at") != std::string::npos);
    CHECK(s.message.find("leaks_on_second_failure") != std::string::npos);
    CHECK(s.message.find("the block leaked 4 bytes in 1 allocation") != std::string::npos);
    delete first_block;
}

TEST_CASE("for_each_allocation_failure reports another exception escaping", "[failures]") {
    const memlens::failure_sweep s = memlens::for_each_allocation_failure([] {
        try {
            auto p = std::make_unique<int>(3);
            memlens_test::keep(p.get());
        } catch (const std::bad_alloc&) {
            throw std::runtime_error("out of memory, said differently");
        }
    });
    CHECK_FALSE(s.passed);
    CHECK(s.runs == 1);
    CHECK(s.message.find("std::exception (out of memory, said differently) escaped the block instead "
                         "of std::bad_alloc") != std::string::npos);
}

TEST_CASE("max_runs stops the sweep early", "[failures]") {
    memlens::failure_sweep_options o;
    o.max_runs = 2;
    const memlens::failure_sweep s = memlens::for_each_allocation_failure(three_owned, o);
    CHECK(s.passed);
    CHECK(s.allocations == 3);
    CHECK(s.runs == 2);
}

TEST_CASE("Catch2 assertions inside a swept block neither count nor fail", "[failures][catch2]") {
    std::uint64_t allocations = 0;
    {
        memlens::catch2::framework_excluded excluded;
        const memlens::failure_sweep s = memlens::for_each_allocation_failure([] {
            std::unique_ptr<int> a(new int(4));
            CHECK(*a == 4);
            std::string text(100, 'x');
            CHECK(text.size() == 100);
        });
        allocations = s.allocations;
    }
    CHECK(allocations == 2);
    MEMLENS_REQUIRE_FAILURE_SAFE(three_owned);
}
