// Helpers shared by the memlens tests.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

// A function that stays a frame of its own: not inlined, and under GCC not cloned either (a
// clone specialized for one call site would still be a frame, but keep it plain).
#if defined(__clang__)
#define MEMLENS_TEST_NOINLINE __attribute__((noinline))
#else
#define MEMLENS_TEST_NOINLINE __attribute__((noinline, noclone))
#endif

namespace memlens_test {

// The compiler may remove a new / delete pair whose memory is never used; passing the pointer
// here makes it observable, so the allocation really happens.
template <class T>
inline void keep(T* p) {
    asm volatile("" : : "r"(p) : "memory");
}

// A directory of its own under /tmp, removed with what the test left in it unless `kept`.
struct temporary_directory {
    std::string path;
    bool kept = false;
    temporary_directory() {
        char name[] = "/tmp/memlens-test-XXXXXX";
        if (::mkdtemp(name) == nullptr) throw std::runtime_error("cannot create a directory in /tmp");
        path = name;
    }
    ~temporary_directory() {
        if (kept) return;
        if (std::system(("rm -rf '" + path + "'").c_str()) != 0) {
            std::fprintf(stderr, "could not remove %s\n", path.c_str());
        }
    }
    temporary_directory(const temporary_directory&) = delete;
    temporary_directory& operator=(const temporary_directory&) = delete;

    std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// An environment variable set while alive; then what it was before, set or not, again.
struct scoped_environment {
    std::string name;
    bool had = false;
    std::string before;
    scoped_environment(std::string variable, const std::string& value) : name(std::move(variable)) {
        if (const char* old = std::getenv(name.c_str())) {
            had = true;
            before = old;
        }
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~scoped_environment() {
        if (had) {
            ::setenv(name.c_str(), before.c_str(), 1);
        } else {
            ::unsetenv(name.c_str());
        }
    }
    scoped_environment(const scoped_environment&) = delete;
    scoped_environment& operator=(const scoped_environment&) = delete;
};

}  // namespace memlens_test
