// memlens/detail/sys.hpp: the few operating-system services the core needs, wrapped so that none
// of them allocates through a hooked path: raw pages, a spin lock, and unbuffered error output.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// What receives memlens's error messages; core/errors.hpp lets the program choose one.
using error_function = void (*)(const char* message) noexcept;

inline void write_stderr(const char* message) noexcept {
    const std::size_t length = std::strlen(message);
    std::size_t done = 0;
    while (done < length) {
        const ::ssize_t n = ::write(2, message + done, length - done);
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

inline void default_error_handler(const char* message) noexcept {
    write_stderr("memlens: ");
    write_stderr(message);
    write_stderr("\n");
}

MEMLENS_DETAIL_SHARED inline std::atomic<error_function> error_sink{&default_error_handler};

MEMLENS_COLD inline void report_error(const char* message) noexcept {
    error_sink.load(std::memory_order_acquire)(message);
}

// A lock for the rare paths (registration, new peaks, process scopes). std::mutex would do, but
// it must be usable before main and after static destruction, so it has no constructor or destructor.
class spin_lock {
public:
    void lock() noexcept {
        while (flag_.exchange(true, std::memory_order_acquire)) {
            while (flag_.load(std::memory_order_relaxed)) ::sched_yield();
        }
    }
    void unlock() noexcept { flag_.store(false, std::memory_order_release); }

private:
    std::atomic<bool> flag_{false};
};

class lock_guard {
public:
    explicit lock_guard(spin_lock& lock) noexcept : lock_(lock) { lock_.lock(); }
    ~lock_guard() { lock_.unlock(); }
    lock_guard(const lock_guard&) = delete;
    lock_guard& operator=(const lock_guard&) = delete;

private:
    spin_lock& lock_;
};

// Spreads nearby values over the top bits with one multiplication (Fibonacci hashing).
inline std::uint64_t fibonacci_hash(std::uint64_t a) noexcept { return (a ^ (a >> 32)) * 0x9e3779b97f4a7c15ULL; }

// The kernel's mmap and munmap without the C library's entry points, which a preloaded memlens
// replaces (sources/mmap.hpp) and counts; a sanitizer must see every mapping to keep its
// shadow memory right, and no sanitized build replaces them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MEMLENS_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define MEMLENS_DETAIL_SANITIZED 1
#endif
#endif

// Zeroed pages straight from the kernel: the core's own tables live here so that building them
// can never re-enter an allocation hook.
inline void* map_pages(std::size_t bytes) noexcept {
#if defined(MEMLENS_DETAIL_SANITIZED)
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#else
    void* p = reinterpret_cast<void*>(
        ::syscall(SYS_mmap, nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
#endif
    return p == MAP_FAILED ? nullptr : p;
}

// For tables that grow by moving to a larger mapping: the old one goes back to the kernel.
inline void unmap_pages(void* p, std::size_t bytes) noexcept {
#if defined(MEMLENS_DETAIL_SANITIZED)
    if (p) ::munmap(p, bytes);
#else
    if (p) ::syscall(SYS_munmap, p, bytes);
#endif
}

}  // namespace detail
MEMLENS_NAMESPACE_END
