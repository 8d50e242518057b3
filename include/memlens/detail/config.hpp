// memlens/detail/config.hpp: compile-time switches and portability macros shared by every header.
// Nothing here is public; the MEMLENS_* macros users may set are documented in README.md.
#pragma once

#include <cstddef>

#define MEMLENS_VERSION_MAJOR 0
#define MEMLENS_VERSION_MINOR 1
#define MEMLENS_VERSION_PATCH 0

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

// Fixed so that every table the hooks touch can live in memory mapped once, never allocated.
#ifndef MEMLENS_MAX_DOMAINS
#define MEMLENS_MAX_DOMAINS 64
#endif

#if MEMLENS_MAX_DOMAINS < 4 || MEMLENS_MAX_DOMAINS > 4096
#error "MEMLENS_MAX_DOMAINS must be between 4 and 4096"
#endif

// A thread folds its unflushed net bytes into the shared figures once they move this far up or
// down; twice it bounds how far the peaks can lag per thread allocating at the same moment.
#ifndef MEMLENS_PEAK_BATCH_BYTES
#define MEMLENS_PEAK_BATCH_BYTES (64 * 1024)
#endif

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
