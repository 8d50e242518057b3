// memlens/detail/config.hpp: compile-time switches and portability macros shared by every header.
// Nothing here is public; the MEMLENS_* macros users may set are documented in README.md.
#pragma once

#include <cstddef>

#define MEMLENS_VERSION_MAJOR 0
#define MEMLENS_VERSION_MINOR 1
#define MEMLENS_VERSION_PATCH 0

// memlens reads /proc and the process's ELF files and builds on glibc's allocator: Linux with
// glibc on a 64-bit target, nothing else.
#if !defined(__linux__)
#error "memlens runs on Linux only: it reads /proc and the process's ELF files"
#endif
#include <features.h>
#if !defined(__GLIBC__)
#error "memlens needs glibc: it relies on its malloc, posix_memalign and dl_iterate_phdr"
#endif
#if !defined(__SIZEOF_INT128__)
#error "memlens needs a 64-bit target with unsigned __int128 (x86_64, aarch64)"
#endif

// Function-like so that a misspelt feature test fails to compile instead of reading as 0.
#if defined(__GNUC__) || defined(__clang__)
#define MEMLENS_LIKELY(x) __builtin_expect(!!(x), 1)
#define MEMLENS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MEMLENS_NOINLINE __attribute__((noinline))
#define MEMLENS_COLD __attribute__((noinline, cold))
#define MEMLENS_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MEMLENS_LIKELY(x) (x)
#define MEMLENS_UNLIKELY(x) (x)
#define MEMLENS_NOINLINE
#define MEMLENS_COLD
#define MEMLENS_ALWAYS_INLINE inline
#endif

// One memlens state per process, whichever shared objects hold a copy of the headers: the
// process-wide variables keep default visibility even under -fvisibility=hidden, so that the
// dynamic loader can bind every copy to one definition. GCC gives inline variables unique
// binding, which the loader honours across RTLD_LOCAL and -Bsymbolic objects and which keeps
// the object that holds the chosen definition loaded; see core/process.hpp for the rest.
// A test defines it empty, under -fvisibility=hidden, for a copy that the loader cannot join.
#ifndef MEMLENS_DETAIL_SHARED
#define MEMLENS_DETAIL_SHARED __attribute__((visibility("default")))
#endif
// What belongs to one copy of the headers: whether this copy's operator new is the process's,
// and pointers into this copy's code, which may be unloaded while the state lives on.
#define MEMLENS_DETAIL_PER_COPY __attribute__((visibility("hidden")))

// Fixed so that every table the hooks touch can live in memory mapped once, never allocated.
#ifndef MEMLENS_MAX_DOMAINS
#define MEMLENS_MAX_DOMAINS 64
#endif

#if MEMLENS_MAX_DOMAINS < 4 || MEMLENS_MAX_DOMAINS > 4096
#error "MEMLENS_MAX_DOMAINS must be between 4 and 4096"
#endif

// Fixed so that each thread's table can be mapped once and indexed without a lookup.
#ifndef MEMLENS_MAX_TYPES
#define MEMLENS_MAX_TYPES 4096
#endif

#if MEMLENS_MAX_TYPES < 4 || MEMLENS_MAX_TYPES > 1048576
#error "MEMLENS_MAX_TYPES must be between 4 and 1048576"
#endif

// A thread folds its unflushed net bytes into the shared figures once they move this far up or
// down; twice it bounds how far the peaks can lag per thread allocating at the same moment.
#ifndef MEMLENS_PEAK_BATCH_BYTES
#define MEMLENS_PEAK_BATCH_BYTES 65536
#endif

#if MEMLENS_PEAK_BATCH_BYTES < 0 || MEMLENS_PEAK_BATCH_BYTES > 1073741824
#error "MEMLENS_PEAK_BATCH_BYTES must be between 0 and 1073741824"
#endif

// The options above change the layout or the behaviour of memlens's process-wide state, so they
// are part of the name of the inline namespace that holds everything: units built with different
// values cannot share a state by accident. They get one each, and the first to start refuses the
// others with a message (detail/abi.hpp). Each option must therefore be a plain whole number.
#define MEMLENS_DETAIL_ABI_NAME2(major, minor, domains, types, batch) \
    v##major##_##minor##_d##domains##_t##types##_b##batch
#define MEMLENS_DETAIL_ABI_NAME(major, minor, domains, types, batch) \
    MEMLENS_DETAIL_ABI_NAME2(major, minor, domains, types, batch)
#define MEMLENS_ABI_NAME                                                                   \
    MEMLENS_DETAIL_ABI_NAME(MEMLENS_VERSION_MAJOR, MEMLENS_VERSION_MINOR, MEMLENS_MAX_DOMAINS, \
                            MEMLENS_MAX_TYPES, MEMLENS_PEAK_BATCH_BYTES)
#define MEMLENS_DETAIL_STRING2(x) #x
#define MEMLENS_DETAIL_STRING(x) MEMLENS_DETAIL_STRING2(x)
#define MEMLENS_NAMESPACE_BEGIN \
    namespace memlens {         \
    inline namespace MEMLENS_ABI_NAME {
#define MEMLENS_NAMESPACE_END \
    }                         \
    }

#if defined(__has_include)
#if __has_include(<source_location>) && __cplusplus >= 202002L
#include <source_location>
#if defined(__cpp_lib_source_location)
#define MEMLENS_HAS_SOURCE_LOCATION() 1
#endif
#endif
#endif
#ifndef MEMLENS_HAS_SOURCE_LOCATION
#define MEMLENS_HAS_SOURCE_LOCATION() 0
#endif
