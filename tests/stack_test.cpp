// Stack capture by frame pointers and by the unwinder, and the stack-interning table.
#include <memlens/core/counters.hpp>
#include <memlens/core/stacks.hpp>

#include <catch2/catch.hpp>

#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <thread>
#include <vector>

#include "support.hpp"

using memlens::detail::capture_stack;
using memlens::detail::unwind_method;

namespace {

// Each function of the chain records where it returns to, so that captured addresses can be
// compared exactly; __builtin_frame_address(0) makes each keep a frame pointer whatever the
// build flags. The empty asm after each call keeps it from becoming a tail call.
struct chain_result {
    std::uintptr_t returns[3];  // into chain_b, chain_a, and chain_a's caller
    std::uintptr_t frames[memlens::detail::max_stack_depth];
    std::size_t size;
    // When asked, chain_c also captures by the unwinder, at the same call.
    bool both;
    std::uintptr_t unwound[memlens::detail::max_stack_depth];
    std::size_t unwound_size;
};

std::uintptr_t address_of(void* p) { return reinterpret_cast<std::uintptr_t>(p); }

MEMLENS_TEST_NOINLINE void chain_c(chain_result& r, unwind_method how, std::size_t max, std::size_t skip) {
    r.returns[0] = address_of(__builtin_return_address(0));
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    r.size = capture_stack(r.frames, max, how, skip);
    if (r.both) r.unwound_size = capture_stack(r.unwound, max, unwind_method::unwinder, skip);
    asm volatile("" ::: "memory");
}

MEMLENS_TEST_NOINLINE void chain_b(chain_result& r, unwind_method how, std::size_t max, std::size_t skip) {
    r.returns[1] = address_of(__builtin_return_address(0));
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    chain_c(r, how, max, skip);
    asm volatile("" ::: "memory");
}

MEMLENS_TEST_NOINLINE void chain_a(chain_result& r, unwind_method how, std::size_t max, std::size_t skip) {
    r.returns[2] = address_of(__builtin_return_address(0));
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    chain_b(r, how, max, skip);
    asm volatile("" ::: "memory");
}

chain_result run_chain(unwind_method how, std::size_t max = memlens::detail::max_stack_depth,
                       std::size_t skip = 0, bool both = false) {
    chain_result r{};
    r.both = both;
    chain_a(r, how, max, skip);
    return r;
}

struct warm_unwinder {
    warm_unwinder() { memlens::detail::warm_up_unwinder(); }
};

}  // namespace

TEST_CASE("frame pointers give the callers' return addresses, innermost first", "[stack]") {
    const chain_result r = run_chain(unwind_method::frame_pointers);
    REQUIRE(r.size >= 3);
    CHECK(r.frames[0] == r.returns[0]);
    CHECK(r.frames[1] == r.returns[1]);
    CHECK(r.frames[2] == r.returns[2]);
}

TEST_CASE("the unwinder gives the same frames", "[stack]") {
    warm_unwinder warm;
    const chain_result r = run_chain(unwind_method::frame_pointers,
                                     memlens::detail::max_stack_depth, 0, true);
    REQUIRE(r.unwound_size >= 3);
    CHECK(r.unwound[0] == r.returns[0]);
    CHECK(r.unwound[1] == r.returns[1]);
    CHECK(r.unwound[2] == r.returns[2]);
    // Past the chain, the frame-pointer walk ends or goes astray at the first caller built
    // without frame pointers (libc's, or all of them without -fno-omit-frame-pointer); until
    // then it sees what the unwinder sees.
    std::size_t common = 0;
    while (common < std::min(r.size, r.unwound_size) && r.frames[common] == r.unwound[common]) {
        ++common;
    }
    INFO("frame pointers: " << r.size << " frames, unwinder: " << r.unwound_size << ", same: " << common);
    CHECK(common >= 3);
}

TEST_CASE("the depth limit and skip are honoured", "[stack]") {
    warm_unwinder warm;
    for (unwind_method how : {unwind_method::frame_pointers, unwind_method::unwinder}) {
        const chain_result two = run_chain(how, 2);
        REQUIRE(two.size == 2);
        CHECK(two.frames[0] == two.returns[0]);
        CHECK(two.frames[1] == two.returns[1]);

        const chain_result skipped = run_chain(how, 2, 1);
        REQUIRE(skipped.size == 2);
        CHECK(skipped.frames[0] == skipped.returns[1]);
        CHECK(skipped.frames[1] == skipped.returns[2]);

        CHECK(run_chain(how, 0).size == 0);
        CHECK(run_chain(how, memlens::detail::max_stack_depth, 100000).size == 0);
    }
}

#if defined(__x86_64__) || defined(__aarch64__)
// A function without a frame record that leaves a chosen value in the frame-pointer register
// while it calls fn: what code built with -fomit-frame-pointer may do with it.
extern "C" void memlens_test_call_with_fp(void (*fn)(), std::uintptr_t fp);
#if defined(__x86_64__)
asm(R"(
    .text
    .globl memlens_test_call_with_fp
    .type memlens_test_call_with_fp, @function
memlens_test_call_with_fp:
    push %rbp
    mov %rsi, %rbp
    call *%rdi
    pop %rbp
    ret
    .size memlens_test_call_with_fp, .-memlens_test_call_with_fp
)");
#else
asm(R"(
    .text
    .globl memlens_test_call_with_fp
    .type memlens_test_call_with_fp, %function
memlens_test_call_with_fp:
    stp x29, x30, [sp, #-16]!
    mov x29, x1
    blr x0
    ldp x29, x30, [sp], #16
    ret
    .size memlens_test_call_with_fp, .-memlens_test_call_with_fp
)");
#endif

namespace {

std::uintptr_t garbage_frames[memlens::detail::max_stack_depth];
std::size_t garbage_size;

MEMLENS_TEST_NOINLINE void capture_below_garbage() {
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    garbage_size = capture_stack(garbage_frames, memlens::detail::max_stack_depth,
                                 unwind_method::frame_pointers);
    asm volatile("" ::: "memory");
}

std::size_t capture_with_fp(std::uintptr_t fp) {
    memlens_test_call_with_fp(&capture_below_garbage, fp);
    return garbage_size;
}

}  // namespace

TEST_CASE("a frame without a frame pointer ends the walk without a fault", "[stack]") {
    int on_stack = 0;
    const auto here = address_of(&on_stack);
    std::vector<int> heap(64);
    static int in_data = 0;
    // The walk gets one frame (the return into the function without a record), then meets
    // the value it left in the register.
    for (std::uintptr_t bad : {std::uintptr_t{0}, std::uintptr_t{8}, std::uintptr_t{0x1000},
                               here + 1, here - 4096, address_of(heap.data()),
                               address_of(&in_data), ~std::uintptr_t{15},
                               std::uintptr_t{1} << 47}) {
        INFO("frame pointer " << bad);
        CHECK(capture_with_fp(bad) == 1);
    }

    // Records that look valid (above, on the stack, aligned) are followed; one that points
    // down, or off the stack, ends the walk.
    // On the real stack even where AddressSanitizer moves locals to a fake stack of its own.
    auto* records = static_cast<std::uintptr_t*>(__builtin_alloca(8 * sizeof(std::uintptr_t)));
    std::fill(records, records + 8, 0);
    const auto record = [&](int i) { return address_of(&records[2 * i]); };
    records[0] = record(1);
    records[1] = 0x1111;
    records[2] = record(3);
    records[3] = 0x2222;
    records[6] = record(0);  // down again
    records[7] = 0x3333;
    CHECK(capture_with_fp(record(0)) == 4);
    CHECK(garbage_frames[1] == 0x1111);
    CHECK(garbage_frames[2] == 0x2222);
    CHECK(garbage_frames[3] == 0x3333);

    records[2] = address_of(heap.data());
    CHECK(capture_with_fp(record(0)) == 3);
}
#endif

namespace {

std::vector<std::uintptr_t> synthetic_stack(std::size_t index) {
    std::vector<std::uintptr_t> frames(1 + index % 24);
    for (std::size_t i = 0; i < frames.size(); ++i) frames[i] = 0x400000 + index * 64 + i * 8;
    return frames;
}

}  // namespace

TEST_CASE("interning gives one id per distinct stack", "[stack]") {
    static memlens::detail::stack_table table;
    const std::uintptr_t a[] = {1, 2, 3};
    const std::uintptr_t b[] = {1, 2, 4};
    const std::uintptr_t prefix[] = {1, 2};
    const std::uint32_t ia = table.intern(a, 3);
    const std::uint32_t ib = table.intern(b, 3);
    const std::uint32_t ip = table.intern(prefix, 2);
    const std::uint32_t empty = table.intern(nullptr, 0);
    CHECK(ia == 1);
    CHECK(ib != ia);
    CHECK(ip != ia);
    CHECK(ip != ib);
    CHECK(empty != 0);
    CHECK(table.intern(a, 3) == ia);
    CHECK(table.intern(a, 0) == empty);
    CHECK(table.count() == 4);

    const memlens::detail::stack_span s = table.frames(ib);
    REQUIRE(s.size == 3);
    CHECK(std::equal(s.frames, s.frames + 3, b));
    CHECK(table.frames(empty).size == 0);
    CHECK(table.frames(0).frames == nullptr);
    CHECK(table.frames(5).frames == nullptr);
    CHECK(table.frames(UINT32_MAX).frames == nullptr);
    CHECK(table.memory_bytes() > 0);
}

TEST_CASE("threads interning at once agree on every id", "[stack][threads]") {
    static memlens::detail::stack_table table;
    // Enough stacks to grow the hash slots and the directory, and to fill several chunks.
    constexpr std::size_t stacks = 20000;
    constexpr int threads = 4;
    std::vector<std::vector<std::uintptr_t>> inputs;
    for (std::size_t i = 0; i < stacks; ++i) inputs.push_back(synthetic_stack(i));
    std::vector<std::vector<std::uint32_t>> ids(threads, std::vector<std::uint32_t>(stacks));
    std::atomic<int> ready{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            ++ready;
            while (ready.load() != threads) std::this_thread::yield();
            // Odd threads go backwards, so that some meet new stacks at the same moment.
            for (std::size_t k = 0; k < stacks; ++k) {
                const std::size_t i = t % 2 ? stacks - 1 - k : k;
                ids[t][i] = table.intern(inputs[i].data(), inputs[i].size());
            }
        });
    }
    for (std::thread& w : workers) w.join();

    CHECK(table.count() == stacks);
    std::vector<std::uint32_t> seen(ids[0]);
    std::sort(seen.begin(), seen.end());
    CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
    CHECK(seen.front() == 1);
    bool agree = true;
    bool round_trip = true;
    for (std::size_t i = 0; i < stacks; ++i) {
        for (int t = 1; t < threads; ++t) agree = agree && ids[t][i] == ids[0][i];
        const memlens::detail::stack_span s = table.frames(ids[0][i]);
        round_trip = round_trip && s.size == inputs[i].size() &&
                     std::equal(s.frames, s.frames + s.size, inputs[i].begin());
        round_trip = round_trip && table.intern(inputs[i].data(), inputs[i].size()) == ids[0][i];
    }
    CHECK(agree);
    CHECK(round_trip);
}

namespace {

std::atomic<int> handler_runs{0};
std::atomic<int> handler_misses{0};

void capture_in_handler(int) {
    const int saved = errno;
    std::uintptr_t frames[memlens::detail::max_stack_depth];
    const std::size_t n = capture_stack(frames, 64, unwind_method::frame_pointers);
    const std::uint32_t id = memlens::detail::stacks.intern(frames, n);
    const memlens::detail::stack_span s = memlens::detail::stacks.frames(id);
    if (id == 0 || s.size != n || !std::equal(frames, frames + n, s.frames)) ++handler_misses;
    ++handler_runs;
    errno = saved;
}

}  // namespace

TEST_CASE("a signal handler that captures and interns while the thread does", "[stack][signal]") {
    struct sigaction action {};
    struct sigaction previous {};
    action.sa_handler = &capture_in_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    REQUIRE(::sigaction(SIGPROF, &action, &previous) == 0);
    itimerval timer{};
    timer.it_interval.tv_usec = 200;
    timer.it_value.tv_usec = 200;
    REQUIRE(::setitimer(ITIMER_PROF, &timer, nullptr) == 0);

    bool same = true;
    std::uint32_t first = 0;
    // New stacks now and then keep the locked insert path under the signals too.
    for (std::uintptr_t i = 0; handler_runs.load() < 200 && i < 50'000'000; ++i) {
        const chain_result r = run_chain(unwind_method::frame_pointers);
        const std::uint32_t id = memlens::detail::stacks.intern(r.frames, r.size);
        if (first == 0) first = id;
        same = same && id == first;
        if (i % 64 == 0) {
            const std::uintptr_t fresh[] = {0xdead0000 + i, i};
            same = same && memlens::detail::stacks.intern(fresh, 2) != first;
        }
    }
    timer = {};
    ::setitimer(ITIMER_PROF, &timer, nullptr);
    ::sigaction(SIGPROF, &previous, nullptr);
    CHECK(same);
    CHECK(handler_runs.load() >= 200);
    CHECK(handler_misses.load() == 0);
}

TEST_CASE("a handler on an alternate signal stack captures without a fault", "[stack][signal]") {
    static char alt_memory[64 * 1024];
    stack_t alt{};
    stack_t previous{};
    alt.ss_sp = alt_memory;
    alt.ss_size = sizeof alt_memory;
    REQUIRE(::sigaltstack(&alt, &previous) == 0);
    struct sigaction action {};
    struct sigaction old_action {};
    action.sa_handler = &capture_in_handler;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_ONSTACK;
    REQUIRE(::sigaction(SIGUSR1, &action, &old_action) == 0);
    const int before = handler_runs.load();
    for (int i = 0; i < 100; ++i) ::pthread_kill(::pthread_self(), SIGUSR1);
    ::sigaction(SIGUSR1, &old_action, nullptr);
    ::sigaltstack(&previous, nullptr);
    CHECK(handler_runs.load() == before + 100);
    CHECK(handler_misses.load() == 0);
}

TEST_CASE("capture and interning work in a forked child", "[stack][fork]") {
    warm_unwinder warm;
    // Two frames: inside the chain only, the same whichever call site runs it.
    const chain_result parent = run_chain(unwind_method::frame_pointers, 2);
    const std::uint32_t id = memlens::detail::stacks.intern(parent.frames, parent.size);
    // Another thread inserts new stacks all along, so that some forks find the lock held.
    std::atomic<bool> stop{false};
    std::thread inserter([&] {
        for (std::uintptr_t i = 1; !stop.load() && i < 200000; ++i) {
            const std::uintptr_t fresh[] = {0xf0f00000 + i, i, i};
            memlens::detail::stacks.intern(fresh, 3);
        }
    });
    for (int round = 0; round < 20; ++round) {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // Only this thread lives here: no Catch2 assertions, an exit code; a hang fails.
            ::alarm(10);
            bool ok = true;
            for (unwind_method how : {unwind_method::frame_pointers, unwind_method::unwinder}) {
                const chain_result r = run_chain(how);
                ok = ok && r.size >= 3 && r.frames[0] == r.returns[0] &&
                     r.frames[2] == r.returns[2];
            }
            const chain_result child = run_chain(unwind_method::frame_pointers, 2);
            ok = ok && memlens::detail::stacks.intern(child.frames, child.size) == id;
            const std::uintptr_t fresh[] = {0xc41d, static_cast<std::uintptr_t>(round)};
            const std::uint32_t added = memlens::detail::stacks.intern(fresh, 2);
            ok = ok && added != 0 && memlens::detail::stacks.frames(added).size == 2 &&
                 memlens::detail::stacks.intern(fresh, 2) == added;
            ::_exit(ok ? 0 : 1);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        INFO("round " << round);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    stop = true;
    inserter.join();
}

TEST_CASE("capture and interning never call operator new", "[stack]") {
    warm_unwinder warm;
    const auto heap = memlens::domain::heap();
    // The first capture of a thread looks its stack up: a fresh thread shows that costs nothing.
    std::uint64_t allocs = 0;
    std::thread fresh([&] {
        const std::uint64_t before = memlens::stats(heap).allocs;
        chain_result r = run_chain(unwind_method::frame_pointers);
        r = run_chain(unwind_method::unwinder);
        std::uintptr_t frames[] = {0x5eed, 0, 0};
        for (std::uintptr_t i = 0; i < 3000; ++i) {
            frames[1] = i;
            memlens::detail::stacks.intern(frames, 3);
            memlens::detail::stacks.intern(r.frames, r.size);
        }
        allocs = memlens::stats(heap).allocs - before;
    });
    fresh.join();
    CHECK(allocs == 0);
}
