// tracking_allocator with standard containers, and tracking_resource with std::pmr.
#include <memlens/sources/allocator.hpp>
#include <memlens/sources/resource.hpp>
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <deque>
#include <forward_list>
#include <list>
#include <map>
#include <memory_resource>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct vector_domain {
    static constexpr const char* name = "alloc.vector";
};
struct node_domain {
    static constexpr const char* name = "alloc.nodes";
};
struct string_domain {
    static constexpr const char* name = "alloc.strings";
};

template <class T, class Tag>
using tracked = memlens::tracking_allocator<T, Tag>;

}  // namespace

TEST_CASE("vector through tracking_allocator counts exact bytes", "[allocator]") {
    const auto d = memlens::domain::named("alloc.vector");
    const memlens::memory_stats before = memlens::stats(d);
    {
        std::vector<int, tracked<int, vector_domain>> v;
        v.reserve(1000);
        const memlens::memory_stats during = memlens::stats(d);
        CHECK(during.current - before.current == 1000 * sizeof(int));
        CHECK(during.allocs - before.allocs == 1);
    }
    const memlens::memory_stats after = memlens::stats(d);
    CHECK(after.current == before.current);
    CHECK(after.frees - before.frees == 1);
    CHECK(tracked<int, vector_domain>::domain() == d);
}

TEST_CASE("node-based containers rebind and stay exact", "[allocator]") {
    const auto d = memlens::domain::named("alloc.nodes");
    const memlens::memory_stats before = memlens::stats(d);
    {
        std::map<int, int, std::less<int>, tracked<std::pair<const int, int>, node_domain>> m;
        std::list<int, tracked<int, node_domain>> l;
        std::set<int, std::less<int>, tracked<int, node_domain>> s;
        std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                           tracked<std::pair<const int, int>, node_domain>>
            u;
        std::deque<int, tracked<int, node_domain>> q;
        std::forward_list<int, tracked<int, node_domain>> f;
        for (int i = 0; i < 500; ++i) {
            m[i] = i;
            l.push_back(i);
            s.insert(i);
            u[i] = i;
            q.push_back(i);
            f.push_front(i);
        }
        const memlens::memory_stats during = memlens::stats(d);
        CHECK(during.current > before.current + 500 * 6 * sizeof(int));
        CHECK(during.allocs - before.allocs >= 500 * 5);
        m.erase(m.begin(), m.end());
        l.clear();
    }
    const memlens::memory_stats after = memlens::stats(d);
    CHECK(after.current == before.current);
    CHECK(after.allocs - before.allocs == after.frees - before.frees);
}

TEST_CASE("the allocator counts once even when the global hooks are installed", "[allocator]") {
    memlens::scope s;
    const auto d = memlens::domain::named("alloc.strings");
    const memlens::memory_stats heap_before = memlens::stats(memlens::domain::heap());
    const memlens::memory_stats before = memlens::stats(d);
    {
        std::basic_string<char, std::char_traits<char>, tracked<char, string_domain>> text(5000, 'x');
        CHECK(memlens::stats(d).current - before.current == 5001);
    }
    const memlens::memory_stats heap_after = memlens::stats(memlens::domain::heap());
    CHECK(s.usage().allocated == 5001);
    CHECK(s.usage().allocs == 1);
    CHECK(heap_after.allocs == heap_before.allocs);
}

TEST_CASE("allocator traits follow the upstream", "[allocator]") {
    using A = tracked<int, vector_domain>;
    static_assert(std::allocator_traits<A>::is_always_equal::value, "");
    static_assert(std::is_same_v<std::allocator_traits<A>::rebind_alloc<double>,
                                 tracked<double, vector_domain>>, "");
    static_assert(std::is_empty_v<A>, "an empty upstream adds no size to containers");
    A a;
    tracked<double, vector_domain> b(a);
    CHECK(a == b);
    CHECK_FALSE(a != b);
}

TEST_CASE("tracking_resource counts pmr containers exactly", "[resource]") {
    const auto d = memlens::domain::named("alloc.pmr");
    memlens::tracking_resource tracker(d, std::pmr::new_delete_resource());
    CHECK(tracker.tracked_domain() == d);
    CHECK(tracker.upstream_resource() == std::pmr::new_delete_resource());
    const memlens::memory_stats before = memlens::stats(d);
    {
        std::pmr::vector<std::uint64_t> v(&tracker);
        v.reserve(256);
        CHECK(memlens::stats(d).current - before.current == 256 * sizeof(std::uint64_t));
        std::pmr::map<int, int> m(&tracker);
        for (int i = 0; i < 100; ++i) m[i] = i;
        CHECK(memlens::stats(d).allocs - before.allocs == 101);
    }
    CHECK(memlens::stats(d).current == before.current);
    void* p = tracker.allocate(100, 64);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
    CHECK(memlens::stats(d).current - before.current == 100);
    tracker.deallocate(p, 100, 64);
    CHECK(memlens::stats(d).current == before.current);
}

TEST_CASE("stacked tracking resources each count what passes through them", "[resource]") {
    const auto objects = memlens::domain::named("alloc.objects");
    const auto chunks = memlens::domain::named("alloc.chunks");
    memlens::tracking_resource below(chunks, std::pmr::new_delete_resource());
    {
        std::pmr::monotonic_buffer_resource arena(4096, &below);
        memlens::tracking_resource above(objects, &arena);
        void* p = above.allocate(300);
        CHECK(memlens::stats(objects).current == 300);
        CHECK(memlens::stats(chunks).current >= 4096);
        CHECK(memlens::stats(chunks).allocs == 1);
        above.deallocate(p, 300);
        CHECK(memlens::stats(objects).current == 0);
        // The arena keeps its chunk until it is destroyed, as it really does.
        CHECK(memlens::stats(chunks).current >= 4096);
    }
    CHECK(memlens::stats(chunks).current == 0);
    CHECK(memlens::stats(chunks).frees == 1);
    void* q = below.allocate(10000);
    CHECK(memlens::stats(chunks).current == 10000);
    below.deallocate(q, 10000);
}

TEST_CASE("tracking resources compare by domain and upstream", "[resource]") {
    const auto d = memlens::domain::named("alloc.equal");
    memlens::tracking_resource a(d, std::pmr::new_delete_resource());
    memlens::tracking_resource b(d, std::pmr::new_delete_resource());
    memlens::tracking_resource c(memlens::domain::named("alloc.other"), std::pmr::new_delete_resource());
    CHECK(a.is_equal(b));
    CHECK_FALSE(a.is_equal(c));
    CHECK_FALSE(a.is_equal(*std::pmr::new_delete_resource()));
}

TEST_CASE("a monotonic buffer over a tracking resource shows its real growth", "[resource]") {
    const auto d = memlens::domain::named("alloc.monotonic");
    memlens::tracking_resource tracker(d, std::pmr::new_delete_resource());
    {
        std::pmr::monotonic_buffer_resource arena(4096, &tracker);
        std::pmr::vector<int> v(&arena);
        for (int i = 0; i < 10000; ++i) v.push_back(i);
        CHECK(memlens::stats(d).current >= 10000 * sizeof(int));
    }
    CHECK(memlens::stats(d).current == 0);
    CHECK(memlens::stats(d).peak >= 10000 * sizeof(int));
}
