// memlens/sources/heap.hpp: the allocation functions behind the global operator new / delete
// hooks of sources/new.hpp. Each block carries a 16-byte header with its requested size, so that
// unsized and aligned deletes stay exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../core/counters.hpp"
#include "../core/events.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

struct heap_header {
    std::uint64_t size;
    std::uint32_t offset;  // from the start of the malloc block to the user pointer
    std::uint32_t tag;     // check word; its two low bits are block_counted and block_recorded
};
static_assert(sizeof(heap_header) == 16, "the header must keep 16-byte alignment");
// The hooks rely on malloc returning 16-byte aligned blocks, as glibc does on 64-bit targets.
static_assert(alignof(std::max_align_t) >= sizeof(heap_header),
              "memlens's operator new hooks need a malloc that aligns to 16 bytes");

constexpr std::uint32_t heap_magic = 0x6d4c6e73u;
constexpr std::uint32_t block_flags = block_counted | block_recorded;

inline std::uint32_t heap_check(std::uint64_t size, std::uint32_t offset) noexcept {
    const auto mixed = static_cast<std::uint32_t>(size ^ (size >> 32)) * 0x9e3779b1u;
    return (heap_magic ^ mixed ^ (offset << 7)) & ~block_flags;
}

// Null when the system is out of memory; the operators decide whether that throws.
MEMLENS_ALWAYS_INLINE void* heap_allocate(std::size_t size, std::size_t alignment) noexcept {
    const std::size_t offset = alignment <= sizeof(heap_header) ? sizeof(heap_header) : alignment;
    if (size > SIZE_MAX - offset || offset > UINT32_MAX) return nullptr;
    void* base = nullptr;
    if (offset == sizeof(heap_header)) {
        base = std::malloc(size + offset);
    } else if (::posix_memalign(&base, alignment, size + offset) != 0) {
        base = nullptr;
    }
    if (!base) return nullptr;
    auto* user = static_cast<unsigned char*>(base) + offset;
    auto* h = reinterpret_cast<heap_header*>(user) - 1;
    h->size = size;
    h->offset = static_cast<std::uint32_t>(offset);
    // Worked out before counting, whose stores the compiler cannot prove leave the header alone.
    const std::uint32_t check = heap_check(size, h->offset);
    const std::uint32_t flags = counted() ? on_alloc(user, size, heap_slot, true) : 0u;
    h->tag = check | flags;
    return user;
}

// Reads the header words before a pointer that may not be ours: under a sanitizer they may sit
// in a redzone or in another block of the sanitizer's allocator. Two whole words, not bytes,
// so that the reads do not stall behind each other.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "hwaddress", "thread")))
#endif
inline heap_header read_header(const void* p) noexcept {
    const auto* words = static_cast<const volatile std::uint64_t*>(p) - 2;
    const std::uint64_t copy[2] = {words[0], words[1]};
    heap_header h;
    std::memcpy(&h, copy, sizeof h);
    return h;
}

inline std::atomic<std::uint64_t> foreign_frees{0};

MEMLENS_COLD inline void free_foreign(void* p) noexcept {
    // Reported a few times, then counted quietly: a host that does this once does it often.
    if (foreign_frees.fetch_add(1, relaxed) < 4) {
        report_error("operator delete got a pointer that memlens's operator new did not return; "
                     "it is passed to free() and not counted");
    }
    std::free(p);
}

MEMLENS_ALWAYS_INLINE void heap_free(void* p) noexcept {
    if (!p) return;
    // Every block the hooks return is 16-byte aligned; anything else is not ours to read.
    if (MEMLENS_UNLIKELY(reinterpret_cast<std::uintptr_t>(p) % sizeof(heap_header) != 0)) {
        free_foreign(p);
        return;
    }
    const heap_header h = read_header(p);
    if (MEMLENS_UNLIKELY((h.tag & ~block_flags) != heap_check(h.size, h.offset) ||
                         h.offset < sizeof(heap_header))) {
        free_foreign(p);
        return;
    }
    // A counted block is uncounted whatever the thread is doing now, so the figures stay exact.
    if (h.tag & block_counted) count_free(static_cast<std::size_t>(h.size), heap_slot);
    if (MEMLENS_UNLIKELY(h.tag & block_recorded)) forget_allocation(p);
    std::free(static_cast<unsigned char*>(p) - h.offset);
}

}  // namespace detail
MEMLENS_NAMESPACE_END

MEMLENS_NAMESPACE_BEGIN

/// Frees of pointers that the global operator delete hook did not recognise (and passed to
/// free() uncounted) since the program started. Thread safe.
inline std::uint64_t foreign_frees() noexcept { return detail::foreign_frees.load(detail::relaxed); }

MEMLENS_NAMESPACE_END
