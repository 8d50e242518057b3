// The global operator new / delete hooks: every replaceable form, exact requested sizes.
#include <memlens/sources/heap.hpp>
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct alignas(64) wide {
    unsigned char bytes[64];
};

struct alignas(256) wider {
    unsigned char bytes[100];
};

bool aligned(const void* p, std::size_t alignment) {
    return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

}  // namespace

TEST_CASE("plain and array new count the requested size", "[new]") {
    memlens::scope s;
    int* one = new int(7);
    char* many = new char[1000];
    memlens_test::keep(one);
    memlens_test::keep(many);
    CHECK(s.usage().allocated == sizeof(int) + 1000);
    CHECK(s.usage().allocs == 2);
    delete one;
    delete[] many;
    const memlens::block_usage u = s.usage();
    CHECK(u.freed == sizeof(int) + 1000);
    CHECK(u.net == 0);
    CHECK(u.peak == sizeof(int) + 1000);
    CHECK(u.frees == 2);
}

TEST_CASE("nothrow, sized and unsized forms stay exact", "[new]") {
    memlens::scope s;
    void* a = ::operator new(123, std::nothrow);
    void* b = ::operator new[](77, std::nothrow);
    void* c = ::operator new(40);
    void* d = ::operator new[](9);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(s.usage().allocated == 123 + 77 + 40 + 9);
    ::operator delete(a, std::nothrow);
    ::operator delete[](b, std::nothrow);
#if defined(__cpp_sized_deallocation)
    ::operator delete(c, 40);
    ::operator delete[](d, 9);
#else
    // Clang before 19 leaves sized deallocation off unless asked for.
    ::operator delete(c);
    ::operator delete[](d);
#endif
    CHECK(s.usage().net == 0);
    CHECK(s.usage().frees == 4);
}

TEST_CASE("aligned forms return aligned memory and stay exact", "[new]") {
    memlens::scope s;
    auto* w = new wide;
    auto* ws = new wider[3];
    memlens_test::keep(w);
    memlens_test::keep(ws);
    void* raw = ::operator new(1000, std::align_val_t{4096});
    void* raw_nothrow = ::operator new[](10, std::align_val_t{128}, std::nothrow);
    void* small = ::operator new(24, std::align_val_t{8});
    CHECK(aligned(w, 64));
    CHECK(aligned(ws, 256));
    CHECK(aligned(raw, 4096));
    CHECK(aligned(raw_nothrow, 128));
    CHECK(aligned(small, 8));
    CHECK(s.usage().allocated == sizeof(wide) + 3 * sizeof(wider) + 1000 + 10 + 24);
    delete w;
    delete[] ws;
#if defined(__cpp_sized_deallocation)
    ::operator delete(raw, 1000, std::align_val_t{4096});
#else
    ::operator delete(raw, std::align_val_t{4096});
#endif
    ::operator delete[](raw_nothrow, std::align_val_t{128}, std::nothrow);
    ::operator delete(small, std::align_val_t{8});
    CHECK(s.usage().net == 0);
    CHECK(s.usage().frees == 5);
}

TEST_CASE("the heap domain counts what the hooks see", "[new]") {
    const memlens::memory_stats before = memlens::stats(memlens::domain::heap());
    auto* p = new std::uint64_t[512];
    memlens_test::keep(p);
    const memlens::memory_stats during = memlens::stats(memlens::domain::heap());
    delete[] p;
    CHECK(during.total - before.total >= 4096);
    CHECK(during.allocs - before.allocs >= 1);
    CHECK(during.current >= 4096);
}

TEST_CASE("a failed allocation throws or returns null and is not counted", "[new][errors]") {
    memlens::scope s;
    // Volatile so the compiler cannot see (and warn about) the impossible size.
    volatile std::size_t impossible = SIZE_MAX - 64;
    const std::size_t huge = impossible;
    CHECK_THROWS_AS(::operator new(huge), std::bad_alloc);
    CHECK(::operator new(huge, std::nothrow) == nullptr);
    CHECK(::operator new[](huge, std::align_val_t{64}, std::nothrow) == nullptr);
    CHECK(s.usage().allocs == 0);
}

TEST_CASE("the new handler is called until it gives up", "[new][errors]") {
    static int calls = 0;
    calls = 0;
    std::set_new_handler([] {
        if (++calls == 3) std::set_new_handler(nullptr);
    });
    volatile std::size_t impossible = SIZE_MAX - 64;
    CHECK_THROWS_AS(::operator new(impossible), std::bad_alloc);
    CHECK(calls == 3);
}

TEST_CASE("deleting a pointer the hooks never returned is passed on, not counted",
          "[new][errors]") {
    std::string message;
    // Reserved up front: the handler runs inside the measured scope.
    message.reserve(1024);
    static std::string* sink = nullptr;
    sink = &message;
    memlens::set_error_handler([](const char* m) noexcept { *sink += m; });
    const std::uint64_t before = memlens::foreign_frees();
    memlens::scope s;
    // Hidden from the compiler, which rightly warns about mixing malloc and delete.
    void* volatile foreign = std::malloc(64);
    ::operator delete(foreign);
    memlens::set_error_handler(nullptr);
    CHECK(memlens::foreign_frees() == before + 1);
    CHECK(s.usage().frees == 0);
    CHECK(s.usage().net == 0);
    if (before == 0) CHECK(message.find("without memlens's header: most likely it was freed twice") != std::string::npos);
}

TEST_CASE("allocations memlens makes for itself are not counted", "[new]") {
    memlens::scope s;
    int* counted_block = new int(2);
    memlens_test::keep(counted_block);
    {
        memlens::detail::guard quiet;
        int* scratch = new int(1);
        memlens_test::keep(scratch);
        delete scratch;
        // A block that was counted is uncounted when freed, whoever frees it.
        delete counted_block;
    }
    CHECK(s.usage().allocs == 1);
    CHECK(s.usage().frees == 1);
    CHECK(s.usage().net == 0);
}

TEST_CASE("blocks allocated while uncounted are freed uncounted", "[new]") {
    int* early;
    {
        memlens::detail::guard quiet;
        early = new int(3);
        memlens_test::keep(early);
    }
    memlens::scope s;
    delete early;
    CHECK(s.usage().frees == 0);
}

TEST_CASE("standard containers through the hooks are exact", "[new]") {
    memlens::scope s;
    {
        std::vector<int> v;
        v.reserve(100);
        for (int i = 0; i < 100; ++i) v.push_back(i);
        CHECK(s.usage().allocated == 100 * sizeof(int));
        auto shared = std::make_shared<std::vector<int>>(std::move(v));
        memlens_test::keep(shared.get());
        CHECK(s.usage().allocs == 2);
    }
    CHECK(s.usage().net == 0);
}

namespace {

// Runs `body` in a child process and returns what it wrote to stderr; `signalled` tells whether
// it died of a signal (the allocator's abort, or a fault in free()).
template <class Body>
std::string child_stderr(Body body, bool& signalled) {
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    const ::pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // The child's crash is the expected outcome, not a failure for Catch2's handlers to report.
        for (int sig : {SIGSEGV, SIGABRT, SIGBUS}) std::signal(sig, SIG_DFL);
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(ends[1], 2);
        ::close(ends[0]);
        body();
        ::_exit(0);
    }
    ::close(ends[1]);
    std::string text;
    char buffer[512];
    ::ssize_t n;
    while ((n = ::read(ends[0], buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
    ::close(ends[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    signalled = WIFSIGNALED(status);
    return text;
}

}  // namespace

TEST_CASE("a double delete is named before the allocator says anything", "[new][errors]") {
    bool signalled = false;
    const std::string text = child_stderr(
        [] {
            char* volatile block = new char[100];
            memlens_test::keep(block);
            delete[] block;
            delete[] block;
        },
        signalled);
    const std::size_t named = text.find("freed twice");
    REQUIRE(named != std::string::npos);
    // Either memlens knew for certain and freed nothing more, or it guessed and glibc aborted
    // after memlens's message.
    if (signalled) {
        CHECK(text.find("most likely it was freed twice") != std::string::npos);
    } else {
        CHECK(text.find("it was freed twice; it is not freed again") != std::string::npos);
    }
    // glibc's own words, when it has any: "free(): double free detected", "munmap_chunk(): ...".
    const std::size_t allocator = text.find("(): ");
    if (allocator != std::string::npos) CHECK(named < allocator);
}
