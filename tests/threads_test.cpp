// Exact figures under threads: concurrent events, frees crossing threads, many events.
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace {
constexpr int events_per_thread = 1'000'000;
}

TEST_CASE("counters stay exact with threads allocating at once", "[threads]") {
    const auto d = memlens::domain::named("threads.concurrent");
    auto work = [d](int seed) {
        for (int i = 0; i < events_per_thread / 2; ++i) {
            const std::size_t size = 16 + static_cast<std::size_t>((i * 7 + seed) % 512);
            memlens::record_alloc(nullptr, size, d);
            memlens::record_free(nullptr, size, d);
        }
        memlens::record_alloc(nullptr, 1000, d);
    };
    std::thread a(work, 1);
    std::thread b(work, 2);
    work(3);
    a.join();
    b.join();
    const memlens::memory_stats s = memlens::stats(d);
    CHECK(s.current == 3000);
    CHECK(s.allocs == 3 * (events_per_thread / 2) + 3);
    CHECK(s.frees == 3 * (events_per_thread / 2));
    // Every thread's own pair peaks at 1,000 + 527 at most; three at once cannot exceed this.
    CHECK(s.peak >= 3000);
    CHECK(s.peak <= 3 * (1000 + 527));
    for (int i = 0; i < 3; ++i) memlens::record_free(nullptr, 1000, d);
}

TEST_CASE("frees crossing threads keep the figures exact", "[threads]") {
    const auto d = memlens::domain::named("threads.crossing");
    std::vector<int*> handoff;
    std::mutex m;
    std::condition_variable ready;
    bool done = false;
    constexpr int blocks = 200'000;
    std::thread producer([&] {
        for (int i = 0; i < blocks; ++i) {
            int* p = new int(i);
            memlens::record_alloc(p, sizeof(int), d);
            std::lock_guard<std::mutex> hold(m);
            handoff.push_back(p);
        }
        std::lock_guard<std::mutex> hold(m);
        done = true;
        ready.notify_one();
    });
    std::size_t freed = 0;
    std::vector<int*> batch;
    for (;;) {
        {
            std::unique_lock<std::mutex> hold(m);
            ready.wait_for(hold, std::chrono::milliseconds(1));
            batch.swap(handoff);
            if (done && batch.empty()) break;
        }
        for (int* p : batch) {
            memlens::record_free(p, sizeof(int), d);
            delete p;
            ++freed;
        }
        batch.clear();
    }
    producer.join();
    const memlens::memory_stats s = memlens::stats(d);
    CHECK(freed == blocks);
    CHECK(s.current == 0);
    CHECK(s.allocs == blocks);
    CHECK(s.frees == blocks);
    CHECK(s.total == blocks * sizeof(int));
}

TEST_CASE("the process peak is exact while threads take turns", "[threads][peak]") {
    const auto d = memlens::domain::named("threads.turns");
    // A thread that stays alive holding memory: its bytes count towards later peaks.
    std::mutex m;
    std::condition_variable cv;
    int stage = 0;
    std::thread holder([&] {
        memlens::record_alloc(nullptr, 10'000, d);
        {
            std::unique_lock<std::mutex> hold(m);
            stage = 1;
            cv.notify_all();
            cv.wait(hold, [&] { return stage == 2; });
        }
        memlens::record_free(nullptr, 10'000, d);
    });
    {
        std::unique_lock<std::mutex> hold(m);
        cv.wait(hold, [&] { return stage == 1; });
    }
    memlens::record_alloc(nullptr, 5'000, d);
    memlens::record_alloc(nullptr, 7, d);
    CHECK(memlens::stats(d).peak == 15'007);
    memlens::record_free(nullptr, 5'000, d);
    memlens::record_free(nullptr, 7, d);
    {
        std::lock_guard<std::mutex> hold(m);
        stage = 2;
        cv.notify_all();
    }
    holder.join();
    CHECK(memlens::stats(d).current == 0);
    CHECK(memlens::stats(d).peak == 15'007);
}

TEST_CASE("exact peak mode keeps the peak exact under concurrency", "[threads][peak]") {
    const auto d = memlens::domain::named("threads.exact");
    memlens::set_peak_mode(memlens::peak_mode::exact);
    std::atomic<int> go{0};
    auto work = [&] {
        ++go;
        while (go.load() < 2) {
        }
        for (int i = 0; i < 100'000; ++i) {
            memlens::record_alloc(nullptr, 64, d);
            memlens::record_free(nullptr, 64, d);
        }
    };
    std::thread a(work);
    std::thread b(work);
    a.join();
    b.join();
    memlens::set_peak_mode(memlens::peak_mode::batched);
    const memlens::memory_stats s = memlens::stats(d);
    CHECK(s.current == 0);
    CHECK(s.peak >= 64);
    CHECK(s.peak <= 128);
}

TEST_CASE("threads that exit hand their figures back", "[threads]") {
    const auto d = memlens::domain::named("threads.exit");
    for (int round = 0; round < 20; ++round) {
        std::thread t([d] { memlens::record_alloc(nullptr, 100, d); });
        t.join();
    }
    const memlens::memory_stats s = memlens::stats(d);
    CHECK(s.current == 2000);
    CHECK(s.peak == 2000);
    for (int round = 0; round < 20; ++round) memlens::record_free(nullptr, 100, d);
    CHECK(memlens::stats(d).current == 0);
}

TEST_CASE("the batched peak lags by at most one batch per other thread", "[threads][peak]") {
    const auto d = memlens::domain::named("threads.lag");
    std::atomic<int> go{0};
    auto work = [&] {
        ++go;
        while (go.load() < 2) {
        }
        for (int i = 0; i < 1000; ++i) memlens::record_alloc(nullptr, 1000, d);
        for (int i = 0; i < 1000; ++i) memlens::record_free(nullptr, 1000, d);
    };
    std::thread a(work);
    std::thread b(work);
    a.join();
    b.join();
    // Each thread alone reaches 1,000,000 bytes; together somewhere up to 2,000,000.
    const memlens::memory_stats s = memlens::stats(d);
    CHECK(s.peak >= 1'000'000);
    CHECK(s.peak <= 2'000'000);
    CHECK(s.current == 0);
}
