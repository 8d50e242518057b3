// The hybrid stack walk (core/unwind.hpp): through code built without frame pointers, from the
// allocation hooks, with the rule cache cold and warm, across dlclose and dlopen, from threads,
// and on stacks that make no sense.
#include <memlens/core/settings.hpp>
#include <memlens/core/stacks.hpp>
#include <memlens/core/unwind.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/view/snapshot.hpp>

#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

using memlens::detail::capture_stack;
using memlens::detail::max_stack_depth;
using memlens::detail::unwind_method;

namespace {

std::uintptr_t address_of(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// memlens_unwind_call of tests/unwind/frames.cpp, built with -fomit-frame-pointer.
using library_call = void (*)(void (*)(void*), void*, std::uintptr_t*);

class test_library {
public:
    explicit test_library(const char* path) : handle_(::dlopen(path, RTLD_NOW | RTLD_LOCAL)) {
        INFO(path << ": " << (handle_ ? "" : ::dlerror()));
        REQUIRE(handle_);
        call_ = reinterpret_cast<library_call>(::dlsym(handle_, "memlens_unwind_call"));
        REQUIRE(call_);
    }
    ~test_library() { close(); }
    test_library(const test_library&) = delete;
    test_library& operator=(const test_library&) = delete;

    library_call call() const { return call_; }

    void close() {
        if (handle_) ::dlclose(handle_);
        handle_ = nullptr;
    }

private:
    void* handle_;
    library_call call_ = nullptr;
};

struct walk_result {
    unwind_method how = unwind_method::hybrid;
    std::uintptr_t into_library = 0;  // where the callback returns to, inside the library
    std::uintptr_t into_caller = 0;   // where the library returns to, in through_library
    std::uintptr_t into_test = 0;     // where through_library returns to, in the test case
    std::uintptr_t frames[max_stack_depth] = {};
    std::size_t size = 0;
    // Captured by the unwinder at the same call, when asked.
    bool with_unwinder = false;
    std::uintptr_t unwound[max_stack_depth] = {};
    std::size_t unwound_size = 0;
};

MEMLENS_TEST_NOINLINE void capture_in_callback(void* arg) {
    auto& r = *static_cast<walk_result*>(arg);
    r.into_library = address_of(__builtin_return_address(0));
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    r.size = capture_stack(r.frames, max_stack_depth, r.how);
    if (r.with_unwinder) r.unwound_size = capture_stack(r.unwound, max_stack_depth, unwind_method::unwinder);
    asm volatile("" ::: "memory");
}

// Built with frame pointers, like the whole test binary; calls into the library, which calls
// back into capture_in_callback.
MEMLENS_TEST_NOINLINE void through_library(library_call call, walk_result& r) {
    r.into_test = address_of(__builtin_return_address(0));
    asm volatile("" : : "r"(__builtin_frame_address(0)) : "memory");
    call(&capture_in_callback, &r, &r.into_caller);
    asm volatile("" ::: "memory");
}

walk_result walk_through(library_call call, unwind_method how, bool with_unwinder = false) {
    walk_result r;
    r.how = how;
    r.with_unwinder = with_unwinder;
    through_library(call, r);
    return r;
}

bool holds(const walk_result& r, std::uintptr_t address) {
    return std::find(r.frames, r.frames + r.size, address) != r.frames + r.size;
}

// The callback, the library function, through_library and the test case, in that order.
void check_callers(const walk_result& r) {
    REQUIRE(r.size >= 3);
    CHECK(r.frames[0] == r.into_library);
    CHECK(r.frames[1] == r.into_caller);
    CHECK(r.frames[2] == r.into_test);
}

// Empties the rule cache, so that the next walk parses every rule again.
void forget_all_rules() {
    for (memlens::detail::rule_slot& slot : memlens::detail::rule_cache) {
        slot.check.store(0);
        slot.rule.store(0);
    }
}

}  // namespace

TEST_CASE("the hybrid walk finds the caller of a function without frame pointers", "[unwind]") {
    memlens::detail::warm_up_unwinder();
    test_library lib(MEMLENS_UNWIND_LIBRARY_A);
    const walk_result r = walk_through(lib.call(), unwind_method::hybrid, true);
    check_callers(r);
    // All the way down, frame for frame what libgcc's unwinder finds.
    REQUIRE(r.unwound_size >= 3);
    CHECK(r.size == r.unwound_size);
    CHECK(std::equal(r.frames, r.frames + std::min(r.size, r.unwound_size), r.unwound));
}

TEST_CASE("the frame-pointer walk misses that caller, which the test would notice", "[unwind]") {
    test_library lib(MEMLENS_UNWIND_LIBRARY_A);
    const walk_result r = walk_through(lib.call(), unwind_method::frame_pointers);
    REQUIRE(r.size >= 1);
    CHECK(r.frames[0] == r.into_library);
    CHECK_FALSE(holds(r, r.into_caller));
}

TEST_CASE("libraries loaded at start-up are known without a loader lookup", "[unwind]") {
    // libstdc++ is one of this program's DT_NEEDED libraries: its addresses are start-up ones.
    void* in_libstdcxx = ::dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
    REQUIRE(in_libstdcxx);
    const memlens::detail::cfi_module* m = memlens::detail::startup_module(address_of(in_libstdcxx) + 1);
    REQUIRE(m != nullptr);
    CHECK(m->header != 0);
    CHECK(memlens::detail::startup_module(0x10) == nullptr);
    const std::vector<int> heap(16);
    CHECK(memlens::detail::startup_module(address_of(heap.data())) == nullptr);
}

// A loop bound the compiler cannot see, read on every pass: an unrolled or peeled loop would
// walk from several call sites, whose stacks differ in the test case's own return address.
volatile int unwind_test_three = 3;

TEST_CASE("a cold and a warm rule cache give the same stack", "[unwind]") {
    test_library lib(MEMLENS_UNWIND_LIBRARY_A);
    // From one call site, so that all three walks see the same return addresses.
    walk_result runs[3];
    for (int i = 0; i < unwind_test_three; ++i) {
        if (i == 0) forget_all_rules();
        runs[i] = walk_through(lib.call(), unwind_method::hybrid);
    }
    const walk_result& cold = runs[0];
    const walk_result& warm = runs[1];
    const walk_result& warmer = runs[2];
    check_callers(cold);
    REQUIRE(warm.size == cold.size);
    CHECK(std::equal(warm.frames, warm.frames + warm.size, cold.frames));
    REQUIRE(warmer.size == cold.size);
    CHECK(std::equal(warmer.frames, warmer.frames + warmer.size, cold.frames));

    // Forgetting one more return address's rule before each walk changes nothing either.
    walk_result first;
    for (std::size_t i = 0; i == 0 || i <= first.size; ++i) {
        if (i > 0) memlens::detail::forget_rule(first.frames[i - 1]);
        const walk_result again = walk_through(lib.call(), unwind_method::hybrid);
        if (i == 0) {
            first = again;
            check_callers(first);
            continue;
        }
        INFO("forgotten: " << i);
        REQUIRE(again.size == first.size);
        CHECK(std::equal(again.frames, again.frames + again.size, first.frames));
    }
}

TEST_CASE("a library unloaded and another loaded in its place are walked by their own rules",
          "[unwind][dlopen]") {
    memlens::detail::warm_up_unwinder();
    // The two differ only in the size of the frame, so a rule of one misreads the other.
    const char* const paths[] = {MEMLENS_UNWIND_LIBRARY_A, MEMLENS_UNWIND_LIBRARY_B,
                                 MEMLENS_UNWIND_LIBRARY_A, MEMLENS_UNWIND_LIBRARY_B};
    std::uintptr_t previous_return = 0;
    int same_address = 0;
    for (const char* path : paths) {
        INFO(path);
        test_library lib(path);
        for (int round = 0; round < 2; ++round) {
            const walk_result r = walk_through(lib.call(), unwind_method::hybrid, true);
            check_callers(r);
            CHECK(r.size == r.unwound_size);
            CHECK(std::equal(r.frames, r.frames + std::min(r.size, r.unwound_size), r.unwound));
            // Loaded by dlopen, so looked up afresh by every walk, never taken for a library
            // loaded at start-up.
            CHECK(memlens::detail::startup_module(r.into_library) == nullptr);
            if (round == 0 && r.into_library == previous_return) ++same_address;
            previous_return = r.into_library;
        }
        lib.close();
    }
    // Not required (the loader may choose other addresses), but it is what makes this test
    // bite: the same return address, now in a frame of another size.
    WARN("loaded at the address of the one before: " << same_address << " of 3");
}

TEST_CASE("threads walking while the cache is cleared all see the whole stack", "[unwind][threads]") {
    test_library lib(MEMLENS_UNWIND_LIBRARY_A);
    const library_call call = lib.call();
    std::atomic<bool> stop{false};
    std::atomic<int> wrong{0};
    std::vector<std::thread> walkers;
    for (int t = 0; t < 3; ++t) {
        walkers.emplace_back([&] {
            for (int i = 0; i < 2000; ++i) {
                const walk_result r = walk_through(call, unwind_method::hybrid);
                if (r.size < 3 || r.frames[0] != r.into_library || r.frames[1] != r.into_caller ||
                    r.frames[2] != r.into_test) {
                    ++wrong;
                }
            }
        });
    }
    std::thread clearer([&] {
        while (!stop.load()) {
            for (std::size_t slot = 0; slot < memlens::detail::rule_cache_slots; ++slot) {
                memlens::detail::rule_cache[slot].rule.store(0, std::memory_order_relaxed);
            }
            std::this_thread::yield();
        }
    });
    for (std::thread& w : walkers) w.join();
    stop = true;
    clearer.join();
    CHECK(wrong.load() == 0);
}

TEST_CASE("a walk from a corrupt or unknown return address stops without a fault", "[unwind]") {
    using memlens::detail::hybrid_walk;
    // A stack of our own: the walk may read only inside it.
    std::uintptr_t stack[64] = {};
    const std::uintptr_t low = address_of(&stack[0]);
    const std::uintptr_t last = address_of(&stack[62]);
    const auto slot = [&](int i) { return address_of(&stack[i]); };
    std::uintptr_t out[16] = {};
    static const char not_code[64] = {};
    static std::vector<int> heap(64);
    // An address in the test binary that no call-frame information covers: its frame is read
    // as a frame record at fp.
    const std::uintptr_t data = address_of(&not_code[8]);

    // In no module at all.
    for (std::uintptr_t pc : {std::uintptr_t{0x10}, std::uintptr_t{0x1000}, ~std::uintptr_t{15},
                              std::uintptr_t{1} << 47, address_of(heap.data()) + 1}) {
        INFO("pc " << pc);
        CHECK(hybrid_walk(out, 16, 0, {pc, slot(0), slot(4)}, low, last) == 1);
        CHECK(out[0] == pc);
    }

    // A frame pointer off the stack, misaligned, or below the stack pointer.
    for (std::uintptr_t fp : {std::uintptr_t{0}, address_of(heap.data()), slot(4) + 3,
                              low + 70 * sizeof(std::uintptr_t), low - 16, slot(4)}) {
        INFO("fp " << fp);
        CHECK(hybrid_walk(out, 16, 0, {data, slot(8), fp}, low, last) == 1);
    }

    // A record whose return address is garbage: one more frame, then the end.
    stack[10] = slot(20);
    stack[11] = 0x20;
    CHECK(hybrid_walk(out, 16, 0, {data, slot(0), slot(10)}, low, last) == 2);
    CHECK(out[1] == 0x20);

    // Records that loop, or point down, end the walk: it only climbs.
    stack[10] = slot(10);
    stack[11] = data;
    CHECK(hybrid_walk(out, 16, 0, {data, slot(0), slot(10)}, low, last) == 2);
    stack[20] = slot(10);
    stack[21] = data;
    stack[10] = slot(20);
    CHECK(hybrid_walk(out, 16, 0, {data, slot(0), slot(10)}, low, last) == 3);

    // A real return address with a stack pointer that makes its rule read past the top.
    walk_result r;
    {
        test_library lib(MEMLENS_UNWIND_LIBRARY_A);
        r = walk_through(lib.call(), unwind_method::hybrid);
        check_callers(r);
    }
    const std::uintptr_t in_test = r.frames[2];
    CHECK(hybrid_walk(out, 16, 0, {in_test, last, 0}, low, last) == 1);
    CHECK(hybrid_walk(out, 16, 0, {in_test, last - 8, slot(60)}, low, last) <= 2);
    // Nothing asked for, or everything skipped.
    CHECK(hybrid_walk(out, 0, 0, {in_test, slot(0), slot(4)}, low, last) == 0);
    CHECK(hybrid_walk(out, 16, 100000, {data, slot(0), slot(10)}, low, last) == 0);
}

// Kept where the compiler cannot see it die, so that the allocations happen.
std::runtime_error* volatile unwind_test_kept = nullptr;

// Debian's libstdc++ has no frame pointers: std::runtime_error's constructor copies the message
// into a block it allocates inside libstdc++.so, whose caller only the call-frame information
// finds. It is not a template, so no compiler inlines it (std::string's members are constexpr
// in C++20, and Clang inlines them into the caller).
__attribute__((noinline)) void unwind_test_new_error() {
    unwind_test_kept = new std::runtime_error("a message copied by libstdc++");
    memlens_test::keep(unwind_test_kept);
}

TEST_CASE("an allocation made inside libstdc++ is traced to its caller by the hybrid walk",
          "[unwind][sites]") {
    for (unwind_method how : {unwind_method::hybrid, unwind_method::frame_pointers}) {
        const bool hybrid = how == unwind_method::hybrid;
        INFO((hybrid ? "hybrid" : "frame pointers"));
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        c.method = hybrid ? memlens::stack_method::hybrid : memlens::stack_method::frame_pointers;
        REQUIRE(memlens::configure(c));
        const memlens::leak_report r = memlens::find_leaks([] { unwind_test_new_error(); });
        memlens::configure(memlens::tracking_config{});
        delete unwind_test_kept;
        unwind_test_kept = nullptr;

        // The message's block, not the exception object.
        const auto buffer = std::find_if(r.sites.begin(), r.sites.end(), [](const memlens::leak_site& s) {
            return s.bytes != sizeof(std::runtime_error);
        });
        REQUIRE(buffer != r.sites.end());
        const auto in = [&](const char* text, std::string memlens::frame_info::*field) {
            return std::any_of(buffer->traceback.begin(), buffer->traceback.end(),
                               [&](const memlens::frame_info& f) {
                                   return (f.*field).find(text) != std::string::npos;
                               });
        };
        std::string described;
        for (const memlens::frame_info& f : buffer->traceback) described += f.describe() + "\n";
        INFO(described);
        // The setting this test is about: the buffer comes from inside libstdc++.so.
        REQUIRE(in("libstdc++", &memlens::frame_info::module));
        if (hybrid) {
            CHECK(in("unwind_test_new_error", &memlens::frame_info::function));
        } else {
#if defined(__x86_64__)
            // Debian builds libstdc++ for x86-64 without frame pointers (for aarch64 it keeps
            // frame records, and both walks find the caller there).
            CHECK_FALSE(in("unwind_test_new_error", &memlens::frame_info::function));
#endif
        }
    }
}

TEST_CASE("MEMLENS_STACK_METHOD=hybrid is read, and is the default", "[unwind][config]") {
    memlens::detail::live_settings defaults;
    CHECK(defaults.method.load() == unwind_method::hybrid);
    CHECK(memlens::tracking_config{}.method == memlens::stack_method::hybrid);
    ::setenv("MEMLENS_STACK_METHOD", "frame-pointers", 1);
    memlens::detail::live_settings s;
    memlens::detail::read_environment(s);
    CHECK(s.method.load() == unwind_method::frame_pointers);
    ::setenv("MEMLENS_STACK_METHOD", "hybrid", 1);
    memlens::detail::read_environment(s);
    CHECK(s.method.load() == unwind_method::hybrid);
    ::unsetenv("MEMLENS_STACK_METHOD");
}
