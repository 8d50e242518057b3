// memlens/sources/malloc.hpp: replaces the malloc family (malloc, calloc, realloc, reallocarray,
// free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size) with hooks
// that count into the "malloc" domain, and operator new / delete as sources/new.hpp does, into
// "heap". Each block is counted once: operator new takes its blocks from glibc's own allocator,
// not through the replaced malloc. libmemlens_preload.so is this header, with <memlens/hooks.hpp>
// for the exit report, in one unit. Include it in exactly one translation unit of the program or
// of a preloaded library, before any other memlens header; never in a library that is not first
// in the process's symbol lookup (a plugin), whose free() the rest of the process would not call.
#pragma once

#if defined(MEMLENS_DETAIL_NEW_HOOKS) && !defined(MEMLENS_DETAIL_MALLOC_HOOKS)
#error "include <memlens/sources/malloc.hpp> before <memlens/hooks.hpp> and <memlens/sources/new.hpp>"
#endif
#define MEMLENS_DETAIL_MALLOC_HOOKS 1

#include <malloc.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <dlfcn.h>
#include <unistd.h>

#include "new.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

MEMLENS_DETAIL_SHARED inline std::atomic<std::uint32_t> malloc_domain_slot{0};

// Named at the first block: naming takes a spin lock and never allocates.
MEMLENS_NOINLINE inline std::uint32_t name_malloc_domain() noexcept {
    const std::uint32_t slot = domain::named("malloc").id();
    malloc_replaced.store(true, relaxed);
    malloc_domain_slot.store(slot, relaxed);
    return slot;
}

MEMLENS_ALWAYS_INLINE std::uint32_t malloc_slot() noexcept {
    const std::uint32_t slot = malloc_domain_slot.load(relaxed);
    return MEMLENS_LIKELY(slot != 0) ? slot : name_malloc_domain();
}

// The domain a block was counted in: a block of operator new freed with free() goes back to
// "heap".
inline std::uint32_t slot_of(const heap_header& h) noexcept {
    return (h.origin & origin_malloc_bit) ? malloc_slot() : heap_slot;
}

inline void* malloc_block(std::size_t size, std::size_t alignment, bool zeroed = false) noexcept {
    void* p = place_block<libc_heap>(size, alignment, malloc_slot(), zeroed, origin_malloc_bit);
    if (MEMLENS_UNLIKELY(!p)) errno = ENOMEM;
    return p;
}

MEMLENS_DETAIL_SHARED inline std::atomic<std::uint64_t> foreign_malloc_frees{0};

MEMLENS_COLD inline void report_foreign_free(const char* function, bool freed_before) noexcept {
    if (foreign_malloc_frees.fetch_add(1, relaxed) >= 4) return;
    fixed_message m;
    m << function
      << (freed_before ? " got a block that was already freed: it was freed twice; it is not "
                         "freed again"
                       : " got a pointer without memlens's header (from before memlens was "
                         "loaded, or from another allocator): it is passed to glibc and not "
                         "counted");
    report_error(m.c_str());
}

// What free() and realloc() are given: a block with its header, a block freed already, or a
// block memlens did not hand out.
enum class block_kind : std::uint8_t { ours, freed, foreign };

inline block_kind kind_of(const void* p, heap_header& h) noexcept {
    // Every block the hooks return is 16-byte aligned; anything else is not ours to read.
    if (reinterpret_cast<std::uintptr_t>(p) % sizeof(heap_header) != 0) return block_kind::foreign;
    h = read_header(p);
    if (header_valid(h)) return block_kind::ours;
    return h.tag == heap_freed_tag ? block_kind::freed : block_kind::foreign;
}

inline void free_block(void* p) noexcept {
    if (!p) return;
    heap_header h{};
    const block_kind kind = kind_of(p, h);
    if (MEMLENS_LIKELY(kind == block_kind::ours)) {
        release_block<libc_heap>(p, h, slot_of(h));
        return;
    }
    report_foreign_free("free()", kind == block_kind::freed);
    if (kind == block_kind::foreign) ::__libc_free(p);
}

// A free of the old size and an allocation of the new one. The old block is uncounted before
// glibc may hand its address to another thread; if glibc cannot grow it, it is counted again
// as it stands (one more allocation in the totals, as if it had been freed and made anew).
inline void* realloc_block(void* p, std::size_t size) noexcept {
    if (!p) return malloc_block(size, alignof(std::max_align_t));
    heap_header h{};
    const block_kind kind = kind_of(p, h);
    if (MEMLENS_UNLIKELY(kind != block_kind::ours)) {
        report_foreign_free("realloc()", kind == block_kind::freed);
        if (kind == block_kind::freed) {
            errno = EINVAL;
            return nullptr;
        }
        return ::__libc_realloc(p, size);
    }
    // glibc frees the block and returns null for a size of zero; so does memlens.
    if (size == 0) {
        release_block<libc_heap>(p, h, slot_of(h));
        return nullptr;
    }
    const std::uint64_t old_size = header_size(h);
    const std::uint32_t d = slot_of(h);
    // glibc's realloc keeps no alignment beyond malloc's: an aligned block moves by hand. The
    // old block is uncounted first, as glibc's realloc path below does (and heaptrack counts a
    // realloc): the peak never holds both; if the move fails it is counted again as it stands.
    if (header_offset(h) != sizeof(heap_header)) {
        const std::uint32_t bits = h.origin & origin_malloc_bit;
        unplace_block(p, h, d);
        void* q = place_block<libc_heap>(size, alignof(std::max_align_t), d, false, bits);
        if (!q) {
            mark_block(static_cast<unsigned char*>(p), static_cast<std::size_t>(old_size),
                       static_cast<std::uint32_t>(__builtin_ctzll(header_offset(h))), d, bits, counted());
            errno = ENOMEM;
            return nullptr;
        }
        std::memcpy(q, p, old_size < size ? static_cast<std::size_t>(old_size) : size);
        reinterpret_cast<heap_header*>(p)[-1].tag = heap_freed_tag;
        libc_heap::release(static_cast<unsigned char*>(p) - header_offset(h));
        return q;
    }
    // A failure plan fails a realloc as it would a malloc: the block stays as it was.
    if (MEMLENS_UNLIKELY(this_thread.guard == guard_failing) && fail_this_allocation(size)) {
        errno = ENOMEM;
        return nullptr;
    }
    if (size > SIZE_MAX - sizeof(heap_header)) {
        errno = ENOMEM;
        return nullptr;
    }
    unplace_block(p, h, d);
    auto* base = static_cast<unsigned char*>(p) - sizeof(heap_header);
    const std::uint32_t bits = h.origin & origin_malloc_bit;
    void* moved = ::__libc_realloc(base, size + sizeof(heap_header));
    if (!moved) {
        mark_block(static_cast<unsigned char*>(p), static_cast<std::size_t>(old_size), 4, d, bits, counted());
        errno = ENOMEM;
        return nullptr;
    }
    return mark_block(static_cast<unsigned char*>(moved) + sizeof(heap_header), size, 4, d, bits, counted());
}

// memalign's rule: an alignment that is not a power of two is rounded up to one.
inline std::size_t round_alignment(std::size_t alignment) noexcept {
    if (alignment <= alignof(std::max_align_t)) return alignof(std::max_align_t);
    if ((alignment & (alignment - 1)) == 0) return alignment;
    if (alignment > (SIZE_MAX >> 1)) return 0;
    return std::size_t{1} << (64 - __builtin_clzll(alignment));
}

inline void* aligned_block(std::size_t alignment, std::size_t size) noexcept {
    const std::size_t a = round_alignment(alignment);
    if (a == 0) {
        errno = EINVAL;
        return nullptr;
    }
    return malloc_block(size, a);
}

inline std::size_t system_page_bytes() noexcept {
    static const std::size_t bytes = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return bytes;
}

// glibc's own malloc_usable_size, for blocks memlens did not hand out. dlsym may allocate:
// looked up on the first such call, never inside a hook.
inline std::size_t foreign_usable_size(void* p) noexcept {
    using usable_size = std::size_t (*)(void*) noexcept;
    static std::atomic<usable_size> next{nullptr};
    usable_size f = next.load(std::memory_order_acquire);
    if (!f) {
        f = reinterpret_cast<usable_size>(::dlsym(RTLD_NEXT, "malloc_usable_size"));
        if (!f) return 0;
        next.store(f, std::memory_order_release);
    }
    return f(p);
}

}  // namespace detail
MEMLENS_NAMESPACE_END

extern "C" {

void* malloc(std::size_t size) noexcept {
    return memlens::detail::malloc_block(size, alignof(std::max_align_t));
}

void free(void* p) noexcept { memlens::detail::free_block(p); }

void* calloc(std::size_t count, std::size_t size) noexcept {
    std::size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return nullptr;
    }
    return memlens::detail::malloc_block(bytes, alignof(std::max_align_t), true);
}

void* realloc(void* p, std::size_t size) noexcept { return memlens::detail::realloc_block(p, size); }

void* reallocarray(void* p, std::size_t count, std::size_t size) noexcept {
    std::size_t bytes = 0;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return nullptr;
    }
    return memlens::detail::realloc_block(p, bytes);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
    if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) {
        return EINVAL;
    }
    const int saved = errno;
    void* p = memlens::detail::malloc_block(size, alignment < alignof(std::max_align_t)
                                                      ? alignof(std::max_align_t) : alignment);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
    return memlens::detail::aligned_block(alignment, size);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
    return memlens::detail::aligned_block(alignment, size);
}

void* valloc(std::size_t size) noexcept {
    return memlens::detail::aligned_block(memlens::detail::system_page_bytes(), size);
}

void* pvalloc(std::size_t size) noexcept {
    const std::size_t page = memlens::detail::system_page_bytes();
    const std::size_t rounded = size == 0 ? page : (size + page - 1) & ~(page - 1);
    if (rounded < size) {
        errno = ENOMEM;
        return nullptr;
    }
    return memlens::detail::aligned_block(page, rounded);
}

// The size asked for, which is always usable: the bytes glibc rounds up to hold memlens's
// header as well as the block.
std::size_t malloc_usable_size(void* p) noexcept {
    if (!p) return 0;
    memlens::detail::heap_header h{};
    if (memlens::detail::kind_of(p, h) == memlens::detail::block_kind::ours) {
        return static_cast<std::size_t>(memlens::detail::header_size(h));
    }
    return memlens::detail::foreign_usable_size(p);
}

}  // extern "C"
