// Peaks while threads take turns, free what others saw as pending, or count after exiting.
#include <memlens/core/counters.hpp>
#include <memlens/sources/record.hpp>

#include <catch2/catch.hpp>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace {

// Steps of a scenario that two or three threads walk through in turn.
class turns {
public:
    void reach(int step) { at_.store(step); }
    void await(int step) const {
        while (at_.load() < step) std::this_thread::yield();
    }

private:
    std::atomic<int> at_{0};
};

memlens::domain late_domain = memlens::domain::heap();
std::size_t late_bytes = 0;
turns* late_turns = nullptr;

// Runs as a thread-exit destructor after memlens has retired the thread's record, so its
// allocation is one of the late events that threads make while they exit.
void allocate_late(void*) {
    if (late_turns) {
        late_turns->reach(1);
        late_turns->await(2);
    }
    memlens::record_alloc(nullptr, late_bytes, late_domain);
    if (late_turns) late_turns->reach(3);
}

// A thread that allocates 70,000 bytes and frees 60,000: a peak of 70,000 was folded into the
// shared figures while -60,000 stay pending in its record until step 2.
std::thread holding_freed_bytes(memlens::domain d, turns& t) {
    return std::thread([d, &t] {
        memlens::record_alloc(nullptr, 70'000, d);
        memlens::record_free(nullptr, 60'000, d);
        t.reach(1);
        t.await(2);
    });
}

void exit_allocating(std::size_t bytes) {
    pthread_key_t key;
    pthread_key_create(&key, &allocate_late);
    late_bytes = bytes;
    pthread_setspecific(key, &late_bytes);
}

}  // namespace

TEST_CASE("a peak is not inflated by bytes another thread freed meanwhile", "[peak][threads]") {
    const auto d = memlens::domain::named("peak.freed-meanwhile");
    turns t;
    memlens::record_alloc(nullptr, 1, d);
    std::thread other([&] {
        memlens::record_alloc(nullptr, 60'000, d);
        t.reach(1);
        t.await(2);
        memlens::record_free(nullptr, 60'000, d);
        t.reach(3);
        t.await(4);
    });
    t.await(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    memlens::record_alloc(nullptr, 1, d);  // this thread's turn: it sees the other's 60,000
    t.reach(2);
    t.await(3);
    memlens::record_alloc(nullptr, 50'000, d);
    CHECK(memlens::stats(d).current == 50'002);
    CHECK(memlens::stats(d).peak == 60'002);
    t.reach(4);
    other.join();
    memlens::record_free(nullptr, 50'002, d);
}

TEST_CASE("bytes counted by an exiting thread are seen by later peaks", "[peak][threads]") {
    late_domain = memlens::domain::named("peak.late-rise");
    const auto d = late_domain;
    memlens::record_alloc(nullptr, 100'000, d);
    memlens::record_free(nullptr, 100'000, d);
    turns t;
    late_turns = &t;
    std::thread exiting([] {
        memlens::record_alloc(nullptr, 1, late_domain);
        memlens::record_free(nullptr, 1, late_domain);
        exit_allocating(60'000);
    });
    t.await(1);
    memlens::record_alloc(nullptr, 1, d);
    t.reach(2);
    t.await(3);
    memlens::record_alloc(nullptr, 50'000, d);
    CHECK(memlens::stats(d).peak == 110'001);
    exiting.join();
    late_turns = nullptr;
    memlens::record_free(nullptr, 110'001, d);
}

TEST_CASE("an exiting thread's bytes do not lift the peak past the truth", "[peak][threads]") {
    late_domain = memlens::domain::named("peak.late-low");
    const auto d = late_domain;
    turns t;
    std::thread holder = holding_freed_bytes(d, t);
    t.await(1);
    std::thread exiting([] { exit_allocating(30'000); });
    exiting.join();
    const memlens::memory_stats s = memlens::stats(d);
    CHECK(s.current == 40'000);
    CHECK(s.peak == 70'000);
    t.reach(2);
    holder.join();
    memlens::record_free(nullptr, 40'000, d);
}

TEST_CASE("exact peak mode counts what idle threads held from batched mode", "[peak][threads]") {
    const auto d = memlens::domain::named("peak.exact-switch");
    turns t;
    std::thread holder = holding_freed_bytes(d, t);
    t.await(1);
    memlens::set_peak_mode(memlens::peak_mode::exact);
    memlens::record_alloc(nullptr, 50'000, d);
    const memlens::memory_stats s = memlens::stats(d);
    memlens::set_peak_mode(memlens::peak_mode::batched);
    CHECK(s.current == 60'000);
    CHECK(s.peak == 70'000);
    t.reach(2);
    holder.join();
    memlens::record_free(nullptr, 60'000, d);
}
