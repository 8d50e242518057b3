// memlens/sources/heap.hpp: the allocation functions behind the global operator new / delete
// hooks of sources/new.hpp. Each block carries a 16-byte header with its requested size, so that
// unsized and aligned deletes stay exact, and in sites mode with its site, so that a free
// updates the site's figures without looking the block up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include <dlfcn.h>
#include <link.h>

#include "../core/counters.hpp"
#include "../core/events.hpp"
#include "../core/failures.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

struct heap_header {
    // The requested size; in a block_sited block, size:40 | stack:24.
    std::uint64_t size;
    // offset_shift:5 | record:12 | malloc:1: the offset from the start of the malloc block to
    // the user pointer is 1 << offset_shift; a block_sited block adds the allocating thread's
    // record; the malloc bit marks a block of the malloc family's hooks.
    std::uint32_t origin;
    // Check word; its three low bits are block_counted, block_recorded and block_sited.
    std::uint32_t tag;
};
static_assert(sizeof(heap_header) == 16, "the header must keep 16-byte alignment");
// The hooks rely on malloc returning 16-byte aligned blocks, as glibc does on 64-bit targets.
static_assert(alignof(std::max_align_t) >= sizeof(heap_header),
              "memlens's operator new hooks need a malloc that aligns to 16 bytes");

constexpr std::uint32_t heap_magic = 0x6d4c6e73u;
constexpr std::uint32_t block_flags = block_counted | block_recorded | block_sited;
constexpr std::uint64_t sited_size_mask = sited_size_limit - 1;
constexpr unsigned origin_record_shift = 5;
// Set in the origin of a block from the malloc family (sources/malloc.hpp), counted in "malloc".
constexpr std::uint32_t origin_malloc_bit = 1u << 17;

inline std::uint32_t heap_check(std::uint64_t size, std::uint32_t origin) noexcept {
    const auto mixed = static_cast<std::uint32_t>(size ^ (size >> 32)) * 0x9e3779b1u;
    return (heap_magic ^ mixed ^ (origin << 7)) & ~block_flags;
}

// The header's fields, for a header that passed its check.
inline std::uint64_t header_size(const heap_header& h) noexcept {
    return (h.tag & block_sited) ? h.size & sited_size_mask : h.size;
}
inline std::size_t header_offset(const heap_header& h) noexcept {
    return std::size_t{1} << (h.origin & 31u);
}
// Whether `h` is a header the hooks wrote, with an offset at least its own 16 bytes (2^4).
inline bool header_valid(const heap_header& h) noexcept {
    return (h.tag & ~block_flags) == heap_check(h.size, h.origin) && (h.origin & 31u) >= 4;
}

// Whether this copy's hooks are the process's operator new. A copy in a shared object linked
// with -Bsymbolic, or loaded RTLD_LOCAL, has hooks that only its own code calls, while the
// program frees what that code allocates with another operator delete: such a copy passes each
// call to the same operator of the process, without a header that the other delete cannot undo.
enum class hooks_role : std::uint8_t {
    undecided,  // a shared object's copy before its unit's initializer ran: plain blocks
    process,    // the process's operator new: headers, counting
    bystander,  // not the process's operator new: passes calls on, uncounted
};

// Which operator new a block came from, or which operator delete it goes back to.
enum class new_form : std::uint8_t { single, array };

// The process's own operators, which a bystander passes its calls to: the nothrow forms of
// operator new (a failure then reaches the caller's new-handler loop as a null) and the unsized
// forms of operator delete, single and array. Null where the process exports none: plain
// malloc and free then, which is what libstdc++'s operators do.
struct passed_operators {
    void* (*allocate[2])(std::size_t, const std::nothrow_t&) noexcept;
    void* (*allocate_aligned[2])(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept;
    void (*release[2])(void*) noexcept;
    void (*release_aligned[2])(void*, std::align_val_t) noexcept;
};

MEMLENS_DETAIL_PER_COPY inline passed_operators process_operators{};

// Set when memlens's malloc (sources/malloc.hpp, the preload library) serves the process. A
// program with hooks of its own, run under it, then takes its blocks from that malloc inside the
// guard: counted once, in "heap", by the program's hooks, with the malloc's header beneath.
MEMLENS_DETAIL_SHARED inline std::atomic<bool> malloc_replaced{false};

template <class Call>
MEMLENS_ALWAYS_INLINE void* from_malloc(Call call) noexcept {
    if (MEMLENS_UNLIKELY(malloc_replaced.load(relaxed))) {
        guard quiet;
        // The compiler knows that malloc reads no memory of the program's, and would otherwise
        // drop the guard's increment and decrement around it.
        std::atomic_signal_fence(std::memory_order_seq_cst);
        void* p = call();
        std::atomic_signal_fence(std::memory_order_seq_cst);
        return p;
    }
    return call();
}

// The allocator under the hooks' blocks: the C library's malloc, whatever the process made of
// it (a sanitizer's, jemalloc). Where memlens replaces malloc itself (sources/malloc.hpp), the
// hooks go to glibc's own entry points instead, so that a block is not wrapped, and counted,
// twice.
struct c_heap {
    static void* allocate(std::size_t n) noexcept {
        return from_malloc([n] { return std::malloc(n); });
    }
    static void* allocate_zeroed(std::size_t n) noexcept {
        return from_malloc([n] { return std::calloc(1, n); });
    }
    static void* allocate_aligned(std::size_t alignment, std::size_t n) noexcept {
        return from_malloc([alignment, n] {
            void* p = nullptr;
            return ::posix_memalign(&p, alignment, n) == 0 ? p : nullptr;
        });
    }
    static void* reallocate(void* p, std::size_t n) noexcept {
        return from_malloc([p, n] { return std::realloc(p, n); });
    }
    static void release(void* p) noexcept { std::free(p); }
};

}  // namespace detail
MEMLENS_NAMESPACE_END

// glibc exports its allocator under these names as well, for replacements of malloc to call.
extern "C" {
void* __libc_malloc(std::size_t) noexcept;
void* __libc_calloc(std::size_t, std::size_t) noexcept;
void* __libc_memalign(std::size_t, std::size_t) noexcept;
void* __libc_realloc(void*, std::size_t) noexcept;
void __libc_free(void*) noexcept;
}

MEMLENS_NAMESPACE_BEGIN namespace detail {

struct libc_heap {
    static void* allocate(std::size_t n) noexcept { return ::__libc_malloc(n); }
    static void* allocate_zeroed(std::size_t n) noexcept { return ::__libc_calloc(1, n); }
    static void* allocate_aligned(std::size_t alignment, std::size_t n) noexcept {
        return ::__libc_memalign(alignment, n);
    }
    static void* reallocate(void* p, std::size_t n) noexcept { return ::__libc_realloc(p, n); }
    static void release(void* p) noexcept { ::__libc_free(p); }
};

MEMLENS_DETAIL_PER_COPY inline std::atomic<hooks_role> heap_role{hooks_role::undecided};
// Plain blocks handed out while undecided; their frees are expected to come back header-less.
MEMLENS_DETAIL_PER_COPY inline std::atomic<std::uint64_t> undecided_blocks{0};

// The main program's operator new always wins the process's symbol lookup, so its copy decides
// at once, without a lock or an allocation; a shared object's copy needs dlsym, which must not
// run inside a hook, and decides in its unit's initializer (sources/new.hpp). Before glibc 2.35
// there is no lock-free way to name the object that holds some code: every copy then takes the
// process's role, as all did before shared objects were told apart.
inline hooks_role role_of_code_at([[maybe_unused]] const void* code) noexcept {
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)
    ::dl_find_object found{};
    if (::_dl_find_object(const_cast<void*>(code), &found) != 0 || !found.dlfo_link_map) {
        return hooks_role::undecided;
    }
    const char* name = found.dlfo_link_map->l_name;
    return name && name[0] == '\0' ? hooks_role::process : hooks_role::undecided;
#else
    return hooks_role::process;
#endif
}

// `aligned`: the call came through an align_val_t form of operator new.
template <class System>
MEMLENS_NOINLINE void* plain_allocate(std::size_t size, std::size_t alignment, new_form form,
                                      bool aligned) noexcept {
    hooks_role role = heap_role.load(std::memory_order_acquire);
    if (role == hooks_role::undecided) {
        // The return address lies in the operator new that called, in this copy's object.
        role = role_of_code_at(__builtin_return_address(0));
        if (role == hooks_role::process) {
            heap_role.store(role, std::memory_order_release);
            return nullptr;
        }
        undecided_blocks.fetch_add(1, relaxed);
    }
    const auto k = static_cast<std::size_t>(form);
    if (role == hooks_role::bystander) {
        if (aligned && process_operators.allocate_aligned[k]) {
            return process_operators.allocate_aligned[k](size, std::align_val_t(alignment), std::nothrow);
        }
        if (!aligned && process_operators.allocate[k]) {
            return process_operators.allocate[k](size, std::nothrow);
        }
    }
    if (alignment <= alignof(std::max_align_t)) return System::allocate(size ? size : 1);
    return System::allocate_aligned(alignment, size ? size : 1);
}

// Counts a block of `size` bytes at `user`, in domain slot `d`, and writes its header: the
// offset to the start of its malloc block as the power of two `shift`, plus `origin_bits`.
// `count`: whether to count it, false inside memlens's own work (see counted()).
MEMLENS_ALWAYS_INLINE void* mark_block(unsigned char* user, std::size_t size, std::uint32_t shift,
                                       std::uint32_t d, std::uint32_t origin_bits, bool count) noexcept {
    auto* h = reinterpret_cast<heap_header*>(user) - 1;
    const std::uint32_t base_origin = shift | origin_bits;
    // Worked out before counting, whose stores the compiler cannot prove leave the header alone.
    const std::uint32_t check = heap_check(size, base_origin);
    const block_mark mark = count ? on_alloc(user, size, d, true) : 0u;
    if (MEMLENS_UNLIKELY(mark & block_sited)) {
        const std::uint64_t word = size | (std::uint64_t{mark_stack(mark)} << 40);
        const std::uint32_t origin = base_origin | (mark_record(mark) << origin_record_shift);
        h->size = word;
        h->origin = origin;
        h->tag = heap_check(word, origin) | static_cast<std::uint32_t>(mark & block_flags);
        return user;
    }
    h->size = size;
    h->origin = base_origin;
    h->tag = check | static_cast<std::uint32_t>(mark);
    return user;
}

// The header's offset for `alignment` (a power of two), kept as a power of two itself.
inline std::size_t block_offset(std::size_t alignment) noexcept {
    return alignment <= sizeof(heap_header) ? sizeof(heap_header) : alignment;
}

// A block of `size` bytes aligned to `alignment` (a power of two), with its header in front,
// counted in domain slot `d` when `count`; `zeroed` clears it as calloc does. Null when the
// system is out of memory or the size cannot carry a header.
template <class System>
MEMLENS_ALWAYS_INLINE void* place_block_as(bool count, std::size_t size, std::size_t alignment,
                                           std::uint32_t d, bool zeroed, std::uint32_t origin_bits) noexcept {
    const std::size_t offset = block_offset(alignment);
    if (size > SIZE_MAX - offset || offset > UINT32_MAX) return nullptr;
    void* base = nullptr;
    if (offset != sizeof(heap_header)) {
        base = System::allocate_aligned(alignment, size + offset);
        if (base && zeroed) std::memset(base, 0, size + offset);
    } else {
        base = zeroed ? System::allocate_zeroed(size + offset) : System::allocate(size + offset);
    }
    if (!base) return nullptr;
    return mark_block(static_cast<unsigned char*>(base) + offset, size,
                      static_cast<std::uint32_t>(__builtin_ctzll(offset)), d, origin_bits, count);
}

// place_block with a guard word `g` other than 0: inside memlens's own work (uncounted), or
// under a failure plan, which may fail the allocation before it reaches the system.
template <class System>
MEMLENS_NOINLINE void* place_block_guarded(int g, std::size_t size, std::size_t alignment, std::uint32_t d,
                                           bool zeroed, std::uint32_t origin_bits) noexcept {
    bool count = false;
    if (g == guard_failing) {
        // memlens's own exception object (throw_injected_failure) is neither counted nor failed.
        count = !take_exempt_allocation();
        if (count && fail_this_allocation(size)) return nullptr;
    }
    return place_block_as<System>(count, size, alignment, d, zeroed, origin_bits);
}

// place_block_as, counted unless the calling thread is inside memlens's own work. The guard
// word is read once, before the system allocates: it is the only per-thread word the path
// without memlens's work or a failure plan reads.
template <class System>
MEMLENS_ALWAYS_INLINE void* place_block(std::size_t size, std::size_t alignment, std::uint32_t d,
                                        bool zeroed = false, std::uint32_t origin_bits = 0) noexcept {
    const int g = this_thread.guard;
    if (MEMLENS_LIKELY(g == 0)) return place_block_as<System>(true, size, alignment, d, zeroed, origin_bits);
    return place_block_guarded<System>(g, size, alignment, d, zeroed, origin_bits);
}

// Null when the system is out of memory; the operators decide whether that throws.
template <class System>
MEMLENS_ALWAYS_INLINE void* heap_allocate(std::size_t size, std::size_t alignment,
                                          new_form form = new_form::single, bool aligned = false) noexcept {
    if (MEMLENS_UNLIKELY(heap_role.load(relaxed) != hooks_role::process)) {
        if (void* p = plain_allocate<System>(size, alignment, form, aligned)) return p;
        if (heap_role.load(relaxed) != hooks_role::process) return nullptr;
    }
    return place_block<System>(size, alignment, heap_slot);
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

MEMLENS_DETAIL_SHARED inline std::atomic<std::uint64_t> foreign_frees{0};

// Written over a block's check word as it is freed, so that a second delete can tell. glibc's
// thread cache overwrites that word with a key of its own, and then only a guess is left.
constexpr std::uint32_t heap_freed_tag = 0x46524545u;

// A bystander's delete: back to the process's operator of the same form.
template <class System>
void pass_release(void* p, new_form form, std::size_t alignment) noexcept {
    const auto k = static_cast<std::size_t>(form);
    if (alignment != 0 && process_operators.release_aligned[k]) {
        process_operators.release_aligned[k](p, std::align_val_t(alignment));
    } else if (alignment == 0 && process_operators.release[k]) {
        process_operators.release[k](p);
    } else {
        System::release(p);
    }
}

// `alignment`: what an align_val_t form of operator delete was given, 0 for the other forms.
template <class System>
MEMLENS_COLD void free_foreign(void* p, bool had_place_for_header, new_form form,
                               std::size_t alignment) noexcept {
    // A bystander's blocks and those handed out before the role was known have no header.
    if (heap_role.load(relaxed) != hooks_role::process) {
        pass_release<System>(p, form, alignment);
        return;
    }
    std::uint64_t early = undecided_blocks.load(relaxed);
    while (early != 0 && !undecided_blocks.compare_exchange_weak(early, early - 1, relaxed)) {
    }
    if (early != 0) {
        System::release(p);
        return;
    }
    // Reported a few times, then counted quietly: a host that does this once does it often.
    if (foreign_frees.fetch_add(1, relaxed) < 4) {
        report_error(had_place_for_header
                         ? "operator delete got a pointer without memlens's header: most likely "
                           "it was freed twice (if free() aborts next, it was), or it came from "
                           "malloc or another allocator; it is passed to free() and not counted"
                         : "operator delete got a pointer that memlens's operator new did not "
                           "return; it is passed to free() and not counted");
    }
    System::release(p);
}

MEMLENS_COLD inline void free_twice() noexcept {
    if (foreign_frees.fetch_add(1, relaxed) >= 4) return;
    report_error("operator delete got a block that was already freed: it was freed twice; it is "
                 "not freed again");
}

// Uncounts a block with a valid header `h` from domain slot `d`, as it is freed or moved.
MEMLENS_ALWAYS_INLINE void unplace_block(void* p, const heap_header& h, std::uint32_t d) noexcept {
    const std::uint64_t size = header_size(h);
    // A counted block is uncounted whatever the thread is doing now, so the figures stay exact.
    if (h.tag & block_counted) count_free(static_cast<std::size_t>(size), d);
    if (MEMLENS_UNLIKELY(h.tag & (block_recorded | block_sited))) {
        if (h.tag & block_sited) {
            forget_site(reinterpret_cast<std::uintptr_t>(p), size, static_cast<std::uint32_t>(h.size >> 40),
                        (h.origin >> origin_record_shift) & entry_record_limit);
        } else {
            forget_allocation(p);
        }
    }
}

// Frees a block with a valid header `h`, counted in domain slot `d`.
template <class System>
MEMLENS_ALWAYS_INLINE void release_block(void* p, const heap_header& h, std::uint32_t d) noexcept {
    unplace_block(p, h, d);
    reinterpret_cast<heap_header*>(p)[-1].tag = heap_freed_tag;
    System::release(static_cast<unsigned char*>(p) - header_offset(h));
}

template <class System>
MEMLENS_ALWAYS_INLINE void heap_free(void* p, new_form form = new_form::single,
                                    std::size_t alignment = 0) noexcept {
    if (!p) return;
    // A bystander's blocks are the process's: nothing to read before them (under TSan the
    // bytes there may not even be mapped).
    if (MEMLENS_UNLIKELY(heap_role.load(relaxed) == hooks_role::bystander)) {
        pass_release<System>(p, form, alignment);
        return;
    }
    // Every block the hooks return is 16-byte aligned; anything else is not ours to read.
    if (MEMLENS_UNLIKELY(reinterpret_cast<std::uintptr_t>(p) % sizeof(heap_header) != 0)) {
        free_foreign<System>(p, false, form, alignment);
        return;
    }
    const heap_header h = read_header(p);
    if (MEMLENS_UNLIKELY(!header_valid(h))) {
        if (h.tag == heap_freed_tag) {
            free_twice();
        } else {
            free_foreign<System>(p, true, form, alignment);
        }
        return;
    }
    release_block<System>(p, h, heap_slot);
}

}  // namespace detail
MEMLENS_NAMESPACE_END

MEMLENS_NAMESPACE_BEGIN

/// Frees of pointers that the global operator delete hook did not recognise (and passed to
/// free() uncounted) since the program started. Thread safe.
inline std::uint64_t foreign_frees() noexcept { return detail::foreign_frees.load(detail::relaxed); }

namespace detail {

// -1 until asked; then 1 when the program's operator new is memlens's, 0 when it is not.
MEMLENS_DETAIL_SHARED inline std::atomic<int> hooks_answer{-1};

}  // namespace detail

/// Whether the program's global operator new is memlens's (sources/new.hpp or hooks.hpp in one
/// of its units). Without it nothing counts heap allocations, and heap checks cannot fail. The
/// first call allocates one block through operator new, uncounted; later calls only read.
inline bool hooks_installed() noexcept {
    using namespace detail;
    int answer = hooks_answer.load(std::memory_order_acquire);
    if (answer != -1) return answer == 1;
    guard quiet;
    // Called through a volatile pointer, so that the compiler cannot drop the pair.
    void* (*volatile allocate)(std::size_t, const std::nothrow_t&) noexcept = &::operator new;
    void* p = allocate(sizeof(heap_header), std::nothrow);
    if (!p) return false;
    const heap_header h = read_header(p);
    answer = header_valid(h) && header_size(h) == sizeof(heap_header) &&
             header_offset(h) == sizeof(heap_header);
    ::operator delete(p);
    hooks_answer.store(answer, std::memory_order_release);
    return answer == 1;
}

MEMLENS_NAMESPACE_END
