// memlens/sources/mmap.hpp: mmap, mmap64, mremap and munmap, counted in the "mmap" domain, for
// libmemlens_preload.so. Include it, after sources/malloc.hpp, in the one unit that replaces them.
//
// Each byte is counted once: glibc maps its malloc arenas, thread stacks and loaded libraries
// through its own internal entry points, which this file does not see, and memlens's own tables
// are mapped inside its guard. What the program maps is counted in whole pages, as the kernel
// maps them; a munmap or mremap that covers part of a mapping uncounts that part. The figures:
// allocs are mappings made, frees are calls that returned counted pages.
#pragma once

#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>

#include "malloc.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

struct mapped_range {
    std::uintptr_t start;
    std::uintptr_t end;
};

// The program's mappings, in pages memlens maps itself; few programs hold more than a few
// thousand, so a flat array searched in full is enough.
struct mapping_table {
    spin_lock lock;
    mapped_range* ranges = nullptr;
    std::size_t count = 0;
    std::size_t capacity = 0;
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline mapping_table mappings{};
MEMLENS_DETAIL_SHARED inline std::atomic<std::uint32_t> mmap_domain_slot{0};

inline std::uint32_t mmap_slot() noexcept {
    std::uint32_t slot = mmap_domain_slot.load(relaxed);
    if (MEMLENS_LIKELY(slot != 0)) return slot;
    slot = domain::named("mmap").id();
    mmap_domain_slot.store(slot, relaxed);
    return slot;
}

inline std::uintptr_t page_end(std::uintptr_t start, std::size_t length) noexcept {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    return start + ((length + page - 1) & ~(page - 1));
}

// Whether this call is the program's: memlens's own mappings are made inside its guard, and a
// refused copy counts nothing.
inline bool program_mapping() noexcept {
    return counted() && (switchboard.load(relaxed) & sw_refused) == 0;
}

// Removes [start, end) from the table; returns the counted bytes it covered. Under the lock.
inline std::size_t cut_range(std::uintptr_t start, std::uintptr_t end) noexcept {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < mappings.count;) {
        mapped_range& r = mappings.ranges[i];
        if (r.end <= start || r.start >= end) {
            ++i;
            continue;
        }
        const std::uintptr_t from = r.start > start ? r.start : start;
        const std::uintptr_t to = r.end < end ? r.end : end;
        removed += to - from;
        if (from == r.start && to == r.end) {
            r = mappings.ranges[--mappings.count];
            continue;
        }
        if (from == r.start) {
            r.start = to;
        } else if (to == r.end) {
            r.end = from;
        } else if (mappings.count < mappings.capacity) {
            // A hole in the middle: the mapping becomes two.
            mappings.ranges[mappings.count++] = {to, r.end};
            r.end = from;
        } else {
            // No room for the second half: it stays counted as if still mapped, the rest goes.
            removed -= to - from;
        }
        ++i;
    }
    return removed;
}

// Adds [start, end) to the table, growing it when full. Under the lock.
inline bool add_range(std::uintptr_t start, std::uintptr_t end) noexcept {
    if (mappings.count == mappings.capacity) {
        const std::size_t capacity = mappings.capacity ? mappings.capacity * 2 : 4096;
        void* grown = map_pages(capacity * sizeof(mapped_range));
        if (!grown) return false;
        if (mappings.count) std::memcpy(grown, mappings.ranges, mappings.count * sizeof(mapped_range));
        unmap_pages(mappings.ranges, mappings.capacity * sizeof(mapped_range));
        mappings.ranges = static_cast<mapped_range*>(grown);
        mappings.capacity = capacity;
    }
    mappings.ranges[mappings.count++] = {start, end};
    return true;
}

inline void count_unmapped(std::uintptr_t start, std::uintptr_t end) noexcept {
    std::size_t removed = 0;
    {
        guard quiet;
        lock_guard hold(mappings.lock);
        removed = cut_range(start, end);
    }
    if (removed) count_free(removed, mmap_slot());
}

inline void count_mapped(std::uintptr_t start, std::uintptr_t end) noexcept {
    bool added = false;
    std::size_t replaced = 0;
    {
        guard quiet;
        lock_guard hold(mappings.lock);
        // MAP_FIXED may land on pages the program had mapped: those are gone.
        replaced = cut_range(start, end);
        added = add_range(start, end);
    }
    if (replaced) count_free(replaced, mmap_slot());
    if (added) count_alloc(end - start, mmap_slot());
}

// Around fork(): a thread of the parent that held the table's lock does not exist in the child.
inline void lock_mappings() noexcept { mappings.lock.lock(); }
inline void unlock_mappings() noexcept { mappings.lock.unlock(); }

// Registered as the library loads, outside any hook.
[[maybe_unused]] static const bool mappings_fork_safe =
    ::pthread_atfork(&lock_mappings, &unlock_mappings, &unlock_mappings) == 0;

inline void* system_mmap(void* address, std::size_t length, int protection, int flags, int fd,
                         off_t offset) noexcept {
    return reinterpret_cast<void*>(::syscall(SYS_mmap, address, length, protection, flags, fd, offset));
}

}  // namespace detail
MEMLENS_NAMESPACE_END

// Straight to the kernel, as glibc's own mmap does: no allocation, no lookup of the next
// definition at start-up. Named by their symbols: with _FILE_OFFSET_BITS=64, <sys/mman.h> gives
// `mmap` the symbol mmap64, and both symbols must be memlens's.
extern "C" {

void* memlens_mmap(void* address, std::size_t length, int protection, int flags, int fd, off_t offset) noexcept
    __asm__("mmap");
void* memlens_mmap64(void* address, std::size_t length, int protection, int flags, int fd, off_t offset) noexcept
    __asm__("mmap64");

void* memlens_mmap(void* address, std::size_t length, int protection, int flags, int fd, off_t offset) noexcept {
    using namespace memlens::detail;
    void* p = system_mmap(address, length, protection, flags, fd, offset);
    if (p != MAP_FAILED && program_mapping()) {
        const auto start = reinterpret_cast<std::uintptr_t>(p);
        count_mapped(start, page_end(start, length));
    }
    return p;
}

void* memlens_mmap64(void* address, std::size_t length, int protection, int flags, int fd, off_t offset) noexcept {
    return memlens_mmap(address, length, protection, flags, fd, offset);
}

int munmap(void* address, std::size_t length) noexcept {
    using namespace memlens::detail;
    const int result = static_cast<int>(::syscall(SYS_munmap, address, length));
    if (result == 0 && counted()) {
        const auto start = reinterpret_cast<std::uintptr_t>(address);
        count_unmapped(start, page_end(start, length));
    }
    return result;
}

void* mremap(void* old_address, std::size_t old_length, std::size_t new_length, int flags, ...) noexcept {
    using namespace memlens::detail;
    void* wanted = nullptr;
    if (flags & MREMAP_FIXED) {
        va_list rest;
        va_start(rest, flags);
        wanted = va_arg(rest, void*);
        va_end(rest);
    }
    void* p = reinterpret_cast<void*>(::syscall(SYS_mremap, old_address, old_length, new_length, flags, wanted));
    if (p != MAP_FAILED && counted()) {
        const auto old_start = reinterpret_cast<std::uintptr_t>(old_address);
        const auto start = reinterpret_cast<std::uintptr_t>(p);
        bool was_counted = false;
        {
            guard quiet;
            lock_guard hold(mappings.lock);
            for (std::size_t i = 0; i < mappings.count && !was_counted; ++i) {
                was_counted = mappings.ranges[i].start <= old_start && old_start < mappings.ranges[i].end;
            }
        }
        // Only what the program mapped through here moves in the figures.
        if (was_counted) {
            count_unmapped(old_start, page_end(old_start, old_length));
            count_mapped(start, page_end(start, new_length));
        }
    }
    return p;
}

}  // extern "C"
