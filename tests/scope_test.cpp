// Thread and process scopes, nesting, measure().
#include <memlens/observe/scope.hpp>
#include <memlens/core/errors.hpp>
#include <memlens/sources/record.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace {
const memlens::domain blocks = memlens::domain::named("scope.blocks");
void take(std::size_t n) { memlens::record_alloc(nullptr, n, blocks); }
void give(std::size_t n) { memlens::record_free(nullptr, n, blocks); }
}  // namespace

TEST_CASE("a thread scope measures exactly its block", "[scope]") {
    take(1000);  // from before the scope: freeing it inside counts as freed, not as a leak
    memlens::scope s;
    take(100);
    take(300);
    give(100);
    give(1000);
    take(50);
    const memlens::block_usage u = s.usage();
    CHECK(u.allocated == 450);
    CHECK(u.freed == 1100);
    CHECK(u.net == -650);
    CHECK(u.peak == 400);
    CHECK(u.allocs == 3);
    CHECK(u.frees == 2);
    give(300);
    give(50);
}

TEST_CASE("a parent's peak accounts exactly for its children", "[scope]") {
    memlens::scope parent;
    take(100);
    {
        memlens::scope child;
        take(500);
        {
            memlens::scope grandchild;
            take(1000);
            // While children are open, the parent already sees their events.
            CHECK(parent.usage().peak == 1600);
            give(1000);
            CHECK(grandchild.usage().peak == 1000);
            CHECK(grandchild.usage().net == 0);
        }
        give(500);
        CHECK(child.usage().peak == 1500);
        CHECK(child.usage().net == 0);
    }
    take(200);
    const memlens::block_usage u = parent.usage();
    CHECK(u.peak == 1600);
    CHECK(u.net == 300);
    CHECK(u.allocated == 1800);
    CHECK(u.freed == 1500);
    CHECK(u.allocs == 4);
    CHECK(u.frees == 2);
    give(100);
    give(200);
}

TEST_CASE("a closed scope keeps its final figures", "[scope]") {
    auto outer = std::make_unique<memlens::block_usage>();
    {
        memlens::scope s;
        take(64);
        give(64);
        *outer = s.usage();
    }
    CHECK(outer->allocated == 64);
    CHECK(outer->peak == 64);
}

TEST_CASE("a thread scope ignores other threads", "[scope][threads]") {
    // std::thread allocates its start-up state on the creating thread, so the scope opens after.
    std::thread other([] {
        take(4096);
        give(4096);
    });
    memlens::scope s;
    other.join();
    take(8);
    give(8);
    CHECK(s.usage().allocated == 8);
    CHECK(s.usage().allocs == 1);
}

TEST_CASE("a process scope counts every thread", "[scope][threads]") {
    memlens::scope s(memlens::scope_kind::process);
    std::thread other([] {
        take(4096);
        give(4096);
    });
    other.join();
    const memlens::block_usage u = s.usage();
    // Catch2 and std::thread may allocate too; the worker's block must be there in full.
    CHECK(u.allocated >= 4096);
    CHECK(u.allocs >= 1);
    CHECK(u.peak >= 4096);
    CHECK(s.kind() == memlens::scope_kind::process);
}

TEST_CASE("a process scope's peak is the process's high-water mark during the block",
          "[scope]") {
    memlens::scope s(memlens::scope_kind::process);
    memlens::scope mine;
    take(1 << 20);
    give(1 << 20);
    take(1000);
    const memlens::block_usage u = s.usage();
    const memlens::block_usage t = mine.usage();
    CHECK(t.peak == (1u << 20));
    CHECK(u.peak >= (1u << 20));
    CHECK(u.peak < (1u << 20) + 64 * 1024);
    give(1000);
}

TEST_CASE("measure returns the result and what building it took", "[scope]") {
    auto m = memlens::measure([] {
        take(10);
        take(20);
        give(10);
        return 42;
    });
    CHECK(m.value == 42);
    CHECK(m.usage.allocated == 30);
    CHECK(m.usage.net == 20);
    CHECK(m.usage.peak == 30);
    give(20);

    auto v = memlens::measure([] { take(5); give(5); });
    CHECK(v.usage.allocs == 1);
    CHECK(v.usage.frees == 1);
}

TEST_CASE("measure lets exceptions through and closes its scope", "[scope]") {
    memlens::scope outer;
    // An int, because a std::runtime_error would allocate its message in the scope.
    CHECK_THROWS_AS(memlens::measure([]() -> int {
                        take(16);
                        throw 42;
                    }),
                    int);
    take(1);
    CHECK(outer.usage().allocated == 17);
    CHECK(outer.usage().peak == 17);
    give(16);
    give(1);
}

TEST_CASE("unscoped hides events from open scopes but not from the counters", "[scope]") {
    const memlens::memory_stats before = memlens::stats(blocks);
    memlens::scope s;
    {
        memlens::unscoped u;
        take(500);
        give(500);
    }
    take(3);
    give(3);
    CHECK(s.usage().allocated == 3);
    CHECK(memlens::stats(blocks).total - before.total == 503);
}

namespace {

// A thread that runs one job at a time without allocating in between, so that what the tested
// thread counts is only what the test does.
class worker {
public:
    worker() : thread_([this] { run(); }) {}
    ~worker() {
        state_.store(-1);
        thread_.join();
    }
    template <class F>
    void run_and_wait(F f) {
        job_ = f;
        state_.store(1);
        while (state_.load() != 0) std::this_thread::yield();
    }

private:
    void run() {
        for (;;) {
            const int s = state_.load();
            if (s == -1) return;
            if (s == 1) {
                job_();
                state_.store(0);
            }
            std::this_thread::yield();
        }
    }
    std::function<void()> job_;
    std::atomic<int> state_{0};
    std::thread thread_;
};

std::atomic<int> scope_errors{0};
void count_scope_error(const char*) noexcept { scope_errors.fetch_add(1); }

}  // namespace

TEST_CASE("a thread scope destroyed on another thread keeps its figures and its thread safe", "[scope]") {
    worker other;
    auto outer = std::make_unique<memlens::scope>();
    auto inner = std::make_unique<memlens::scope>();
    take(100);
    other.run_and_wait([&] { inner.reset(); });
    // The ended scope's thread goes on counting into memory memlens owns, not into the freed
    // scope; the outer scope gets what the ended one saw and what came after.
    take(40);
    give(40);
    take(7);
    const memlens::block_usage u = outer->usage();
    // The inner scope object itself comes from operator new inside the outer scope; it is
    // deleted on the other thread, which the outer scope does not watch.
    const std::uint64_t inner_object = sizeof(memlens::scope);
    CHECK(u.allocated == inner_object + 147);
    CHECK(u.allocs == 4);
    CHECK(u.frees == 1);
    CHECK(u.net == static_cast<std::int64_t>(inner_object) + 107);
    CHECK(u.peak == inner_object + 140);
    give(100);
    give(7);
}

TEST_CASE("an open thread scope can be read from another thread", "[scope]") {
    worker other;
    auto s = std::make_unique<memlens::scope>();
    take(64);
    take(36);
    memlens::block_usage seen{};
    other.run_and_wait([&] {
        seen = s->usage();
        s.reset();
    });
    CHECK(seen.allocated == 100);
    CHECK(seen.allocs == 2);
    CHECK(seen.net == 100);
    give(64);
    give(36);
}

TEST_CASE("frames of scopes ended elsewhere are reused, and the 65th open scope says so", "[scope]") {
    worker other;
    scope_errors.store(0);
    memlens::set_error_handler(&count_scope_error);
    for (int i = 0; i < 200; ++i) {
        auto s = std::make_unique<memlens::scope>();
        take(1);
        other.run_and_wait([&] { s.reset(); });
        give(1);
    }
    const int errors_after_reuse = scope_errors.load();
    {
        std::vector<std::unique_ptr<memlens::scope>> open;
        open.reserve(64);
        for (int i = 0; i < 64; ++i) open.push_back(std::make_unique<memlens::scope>());
        const int errors_at_64 = scope_errors.load();
        memlens::scope one_too_many;
        const int errors_at_65 = scope_errors.load();
        take(5);
        const memlens::block_usage extra = one_too_many.usage();
        const memlens::block_usage innermost = open.back()->usage();
        give(5);
        CHECK(errors_at_64 == 0);
        CHECK(errors_at_65 == 1);
        CHECK(extra.allocated == 0);
        CHECK(innermost.allocated == 5);
        while (!open.empty()) open.pop_back();
    }
    CHECK(errors_after_reuse == 0);
    memlens::set_error_handler(nullptr);
}

TEST_CASE("a thread scope that outlives its thread ends safely on another", "[scope]") {
    for (int round = 0; round < 4; ++round) {
        std::unique_ptr<memlens::scope> s;
        std::thread([&] {
            s = std::make_unique<memlens::scope>();
            take(10);
            give(10);
            take(10);
        }).join();
        // A later thread may take the exited thread's record, and with it the open frame.
        std::thread([] { take(1); give(1); }).join();
        s.reset();
        give(10);
    }
    memlens::scope after;
    take(3);
    CHECK(after.usage().allocated == 3);
    give(3);
}
