// A program built with memlens's headers but no hooks of its own, run under
// libmemlens_preload.so: fail_allocations fails each function of the malloc family the way C says
// it fails (null and ENOMEM; realloc keeps the old block; posix_memalign returns ENOMEM and leaves
// its out-pointer alone), operator new throws std::bad_alloc and its nothrow form returns null,
// the failure's stack names the caller, memlens's own allocations never fail, and
// for_each_allocation_failure drives a block that uses both malloc and new. Exits 0 when every
// expectation holds.
#include <memlens/testing/failures.hpp>

#include <malloc.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "../hosts/expect.hpp"

namespace {

using host_test::expect;

// Called through volatile pointers, so that the compiler neither drops a pair whose block does
// not escape nor assumes what the allocation functions return.
void* (*volatile call_malloc)(std::size_t) = &std::malloc;
void* (*volatile call_calloc)(std::size_t, std::size_t) = &std::calloc;
void* (*volatile call_realloc)(void*, std::size_t) = &std::realloc;
void* (*volatile call_reallocarray)(void*, std::size_t, std::size_t) = &::reallocarray;
int (*volatile call_posix_memalign)(void**, std::size_t, std::size_t) = &::posix_memalign;
void* (*volatile call_aligned_alloc)(std::size_t, std::size_t) = &::aligned_alloc;
void* (*volatile call_memalign)(std::size_t, std::size_t) = &::memalign;
void* (*volatile call_valloc)(std::size_t) = &::valloc;
void* (*volatile call_pvalloc)(std::size_t) = &::pvalloc;
void (*volatile call_free)(void*) = &std::free;

// Fails the first allocation of `call`, which must return null with errno ENOMEM, as the one
// allocation the scope saw.
template <class Call>
void expect_null_with_enomem(Call call, const char* what) {
    errno = 0;
    void* p = nullptr;
    std::uint64_t seen = 0, failed = 0;
    {
        memlens::fail_allocations failing(memlens::failure_policy::nth(1));
        p = call();
        seen = failing.allocations();
        failed = failing.failures();
    }
    const int error = errno;
    std::printf("%s: %s, errno %d, %llu seen, %llu failed\n", what, p ? "a block" : "null", error,
                static_cast<unsigned long long>(seen), static_cast<unsigned long long>(failed));
    expect(p == nullptr && error == ENOMEM && seen == 1 && failed == 1, what);
    call_free(p);
}

void check_malloc_family() {
    expect_null_with_enomem([] { return call_malloc(100); }, "malloc returns null with ENOMEM");
    expect_null_with_enomem([] { return call_calloc(10, 10); }, "calloc returns null with ENOMEM");
    expect_null_with_enomem([] { return call_realloc(nullptr, 100); }, "realloc(null) returns null with ENOMEM");
    expect_null_with_enomem([] { return call_reallocarray(nullptr, 10, 10); },
                            "reallocarray(null) returns null with ENOMEM");
    expect_null_with_enomem([] { return call_aligned_alloc(64, 128); }, "aligned_alloc returns null with ENOMEM");
    expect_null_with_enomem([] { return call_memalign(256, 100); }, "memalign returns null with ENOMEM");
    expect_null_with_enomem([] { return call_valloc(100); }, "valloc returns null with ENOMEM");
    expect_null_with_enomem([] { return call_pvalloc(100); }, "pvalloc returns null with ENOMEM");
}

// realloc and reallocarray that fail leave the old block as it was, still the caller's to use
// and free; an aligned block (memalign's) as well as a plain one.
void check_realloc_keeps_block() {
    for (int aligned = 0; aligned != 2; ++aligned) {
        for (int array = 0; array != 2; ++array) {
            auto* old = static_cast<unsigned char*>(aligned ? call_memalign(64, 100) : call_malloc(100));
            for (int i = 0; i != 100; ++i) old[i] = static_cast<unsigned char>(i);
            errno = 0;
            void* grown = nullptr;
            {
                memlens::fail_allocations failing(memlens::failure_policy::nth(1));
                grown = array ? call_reallocarray(old, 50, 100) : call_realloc(old, 5000);
            }
            const int error = errno;
            bool intact = true;
            for (int i = 0; i != 100; ++i) intact = intact && old[i] == static_cast<unsigned char>(i);
            std::printf("%s of a %s block: %s, errno %d, old block %s\n", array ? "reallocarray" : "realloc",
                        aligned ? "memalign" : "malloc", grown ? "a block" : "null", error,
                        intact ? "intact" : "changed");
            expect(grown == nullptr && error == ENOMEM, "a failed realloc returns null with ENOMEM");
            expect(intact, "a failed realloc leaves the old block's bytes alone");
            // Still the program's block: it grows once the plan is gone, and frees.
            auto* again = static_cast<unsigned char*>(call_realloc(old, 5000));
            expect(again != nullptr && again[99] == 99, "the old block grows after the failure");
            call_free(again);
        }
    }
}

void check_posix_memalign() {
    void* const untouched = reinterpret_cast<void*>(std::uintptr_t{0x1230});
    void* out = untouched;
    errno = 0;
    int result = 0;
    {
        memlens::fail_allocations failing(memlens::failure_policy::nth(1));
        result = call_posix_memalign(&out, 64, 100);
    }
    std::printf("posix_memalign: returned %d, errno %d, out-pointer %s\n", result, errno,
                out == untouched ? "untouched" : "changed");
    expect(result == ENOMEM, "posix_memalign returns ENOMEM");
    expect(out == untouched, "posix_memalign leaves its out-pointer alone");
    expect(errno == 0, "posix_memalign leaves errno alone");
}

void check_operator_new() {
    int thrown = 0;
    {
        memlens::fail_allocations failing(memlens::failure_policy::from_nth(1));
        try {
            memlens::keep_observable(new int(1));
        } catch (const std::bad_alloc&) {
            ++thrown;
        }
        try {
            memlens::keep_observable(new char[1000]);
        } catch (const std::bad_alloc&) {
            ++thrown;
        }
        struct alignas(128) wide {
            char bytes[128];
        };
        try {
            memlens::keep_observable(new wide);
        } catch (const std::bad_alloc&) {
            ++thrown;
        }
        // Observable, or the compiler may drop the pair and take the pointer for non-null.
        int* quiet = new (std::nothrow) int(2);
        memlens::keep_observable(quiet);
        expect(quiet == nullptr, "nothrow new returns null");
        delete quiet;
        expect(failing.failures() == 4, "each operator new counts as a failure");
    }
    std::printf("operator new: %d of 3 forms threw std::bad_alloc\n", thrown);
    expect(thrown == 3, "operator new throws std::bad_alloc, in every throwing form");
}

// from_nth: the first allocations pass, every one from the Nth fails, malloc and new alike.
void check_from_nth() {
    memlens::fail_allocations failing(memlens::failure_policy::from_nth(3));
    void* a = call_malloc(10);
    int* b = new (std::nothrow) int(3);
    void* c = call_malloc(10);
    int* d = new (std::nothrow) int(4);
    void* e = call_calloc(1, 10);
    expect(a && b && !c && !d && !e, "from_nth(3) passes two allocations and fails the rest");
    expect(failing.allocations() == 5 && failing.failures() == 3 && failing.first_failure() == 3,
           "from_nth(3) counts five allocations and three failures, the first the third");
    call_free(a);
    delete b;
}

MEMLENS_NOINLINE void* allocate_for_the_stack(std::size_t n) {
    void* p = call_malloc(n);
    memlens::keep_observable(p);
    return p;
}

MEMLENS_NOINLINE void* align_for_the_stack(std::size_t n) {
    void* p = call_aligned_alloc(64, n);
    memlens::keep_observable(p);
    return p;
}

void check_failure_stack() {
    for (int form = 0; form != 2; ++form) {
        memlens::fail_allocations failing(memlens::failure_policy::nth(1));
        void* p = form == 0 ? allocate_for_the_stack(777) : align_for_the_stack(777);
        expect(p == nullptr, "the stack's allocation fails");
        expect(failing.first_failure_size() == 777, "the failure's size is the size asked for");
        // Inside the failing scope, whose plan fails nothing more: memlens's own allocations
        // (symbolizing the stack) never fail and are not counted.
        const std::string text = failing.describe_first_failure();
        std::printf("the failure's stack:\n%s", text.c_str());
        const char* caller = form == 0 ? "allocate_for_the_stack" : "align_for_the_stack";
        const std::size_t at = text.find(caller);
        expect(at != std::string::npos, "the failure's stack names the function that called malloc");
        // The first frame shown is the caller's: the allocation functions are left out.
        expect(at != std::string::npos && text.find('\n') > at, "and starts at it");
        expect(failing.allocations() == 1, "memlens's own allocations are not counted");
    }
}

// Everything fails on this thread, yet memlens's own work (a snapshot, symbolizing) runs.
// Not inlined: the failure's stack must name it.
MEMLENS_NOINLINE void check_memlens_never_fails() {
    memlens::fail_allocations failing(memlens::failure_policy::from_nth(1));
    void* p = call_malloc(10);
    expect(p == nullptr, "from_nth(1) fails the program's first allocation");
    const std::string text = failing.describe_first_failure();
    expect(text.find("check_memlens_never_fails") != std::string::npos,
           "memlens symbolizes while every allocation of the program would fail");
    const std::vector<memlens::frame_info> frames = failing.first_failure_stack();
    expect(!frames.empty(), "and resolves the stack into frames");
    expect(failing.allocations() == 1 && failing.failures() == 1, "none of memlens's allocations counted");
}

struct freer {
    void operator()(void* p) const noexcept { call_free(p); }
};

void check_sweep() {
    int verified = 0;
    const memlens::failure_sweep sweep = memlens::for_each_allocation_failure(
        [] {
            std::unique_ptr<void, freer> buffer(call_malloc(64));
            if (!buffer) throw std::bad_alloc();
            auto text = std::make_unique<std::string>(100, 'x');
            std::unique_ptr<void, freer> more(call_calloc(4, 16));
            if (!more) throw std::bad_alloc();
            memlens::keep_observable(text.get());
        },
        [&verified](std::uint64_t) { ++verified; });
    std::printf("%s\n", sweep.message.c_str());
    expect(sweep.passed, "the sweep over a block of malloc and new passes");
    // malloc, new std::string, its 100 characters, calloc.
    expect(sweep.allocations == 4 && sweep.runs == 4 && sweep.escaped == 4, "four allocations, four runs, each threw");
    expect(verified == 5, "verify ran after the unfailed run and after each failing one");

    // A block whose failure path leaks its malloc'd buffer fails the sweep.
    const memlens::failure_sweep leaking = memlens::for_each_allocation_failure([] {
        void* buffer = call_malloc(64);
        if (!buffer) throw std::bad_alloc();
        int* number = new int(5);
        memlens::keep_observable(number);
        delete number;
        call_free(buffer);
    });
    expect(!leaking.passed && leaking.leaking == 1, "a malloc'd block left behind by new's failure fails the sweep");
    expect(leaking.message.find("leaked 64") != std::string::npos, "and the message says what leaked");
    std::printf("%s\n", leaking.message.c_str());
}

}  // namespace

int main() {
    if (!memlens::hooks_installed()) {
        // Nothing would fail, and the checks would go on to use blocks a realloc freed.
        std::printf("FAILED: no memlens hooks serve the program: run it with LD_PRELOAD=libmemlens_preload.so\n");
        return 1;
    }
    check_malloc_family();
    check_realloc_keeps_block();
    check_posix_memalign();
    check_operator_new();
    check_from_nth();
    check_failure_stack();
    check_memlens_never_fails();
    check_sweep();
    if (host_test::failures == 0) std::printf("all expectations hold\n");
    return host_test::failures == 0 ? 0 : 1;
}
