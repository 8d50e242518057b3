// Events before main and after static destruction.
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

namespace {

// Constructed before `early`, so destroyed after it: memlens must still answer then.
struct late_check {
    ~late_check() {
        const memlens::memory_stats s = memlens::stats(memlens::domain::named("lifetime.early"));
        if (s.current != 0 || s.allocs != 1 || s.frees != 1) std::_Exit(3);
    }
};
late_check late;

// Allocated by a static initializer, before main; freed by a static destructor, after it.
struct early_user {
    std::string* text;
    memlens::domain d;
    early_user() : text(new std::string(200, 'e')), d(memlens::domain::named("lifetime.early")) {
        memlens::record_alloc(text, 200, d);
    }
    ~early_user() {
        memlens::record_free(text, 200, d);
        delete text;
    }
};

early_user early;

}  // namespace

TEST_CASE("allocations before main are counted", "[lifetime]") {
    const memlens::memory_stats s = memlens::stats(early.d);
    CHECK(s.current == 200);
    CHECK(s.allocs == 1);
}
