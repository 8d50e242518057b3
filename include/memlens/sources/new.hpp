// memlens/sources/new.hpp: replaces every replaceable global operator new and operator delete
// with hooks that count into the "heap" domain, and nothing else: no report is written at exit
// (<memlens/hooks.hpp> adds that). Include one of the two in exactly one translation unit of the
// program: replacement functions may be defined only once.
#pragma once

#include <cstddef>
#include <new>

#include "../core/process.hpp"
#include "heap.hpp"

// Marks the unit that defines the hooks, for sources/malloc.hpp, which must come first.
#define MEMLENS_DETAIL_NEW_HOOKS 1

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Where sources/malloc.hpp replaces malloc, the blocks come from glibc's own allocator (see
// c_heap); the hooks are defined in this one unit, so the choice is made once per object.
#if defined(MEMLENS_DETAIL_MALLOC_HOOKS)
using hook_heap = libc_heap;
#else
using hook_heap = c_heap;
#endif

// The std::bad_alloc of an injected failure. Its exception object comes from malloc; where
// memlens's malloc serves the process (the preload library) that block would otherwise count as
// one more allocation of the plan, and could itself fail, which a build without the malloc hooks
// never sees.
[[noreturn]] MEMLENS_COLD MEMLENS_NOINLINE inline void throw_injected_failure() {
    if (malloc_replaced.load(relaxed)) exempt_next_allocation();
    throw std::bad_alloc();
}

// Out of line: the new-handler loop runs only when the system is out of memory. A failure that
// memlens::fail_allocations injected throws at once: the system is not short of memory, and a
// new-handler that frees caches would only change what the test sees.
MEMLENS_NOINLINE inline void* heap_new_retry(std::size_t size, std::size_t alignment, new_form form,
                                             bool aligned) {
    for (;;) {
        if (take_injected_failure()) throw_injected_failure();
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
        if (void* p = heap_allocate<hook_heap>(size, alignment, form, aligned)) return p;
    }
}

// `aligned`: called through an align_val_t form, which a bystander passes on as one.
MEMLENS_ALWAYS_INLINE void* heap_new(std::size_t size, std::size_t alignment, new_form form, bool aligned) {
    if (void* p = heap_allocate<hook_heap>(size, alignment, form, aligned)) return p;
    return heap_new_retry(size, alignment, form, aligned);
}

inline void* heap_new_nothrow(std::size_t size, std::size_t alignment, new_form form, bool aligned) noexcept {
    if (void* p = heap_allocate<hook_heap>(size, alignment, form, aligned)) return p;
    // An injected failure is null at once, without an exception to allocate and catch.
    if (take_injected_failure()) return nullptr;
    try {
        return heap_new_retry(size, alignment, form, aligned);
    } catch (...) {
        return nullptr;
    }
}

constexpr std::size_t default_new_alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

// What the replaced operators below do, each named by its form.
constexpr new_form single_form = new_form::single;
constexpr new_form array_form = new_form::array;

MEMLENS_ALWAYS_INLINE void* new_of(std::size_t size, new_form form) {
    return heap_new(size, default_new_alignment, form, false);
}
MEMLENS_ALWAYS_INLINE void* new_of(std::size_t size, std::align_val_t alignment, new_form form) {
    return heap_new(size, static_cast<std::size_t>(alignment), form, true);
}
inline void* new_of(std::size_t size, const std::nothrow_t&, new_form form) noexcept {
    return heap_new_nothrow(size, default_new_alignment, form, false);
}
inline void* new_of(std::size_t size, std::align_val_t alignment, const std::nothrow_t&,
                    new_form form) noexcept {
    return heap_new_nothrow(size, static_cast<std::size_t>(alignment), form, true);
}
MEMLENS_ALWAYS_INLINE void delete_of(void* p, new_form form, std::align_val_t alignment = {}) noexcept {
    heap_free<hook_heap>(p, form, static_cast<std::size_t>(alignment));
}

// Internal linkage, and this header is in one unit of its object: its address marks the object
// that holds these hooks, whatever the symbol bindings.
static void hooks_object_marker() noexcept {}

// `name` as the process's symbol lookup finds it, unless that is in this copy's own object:
// passing a call to itself would never end.
template <class Function>
Function process_symbol(void* program, const char* name, const void* own_base) noexcept {
    void* found = ::dlsym(program, name);
    ::Dl_info where{};
    if (!found || (::dladdr(found, &where) != 0 && where.dli_fbase == own_base)) return nullptr;
    return reinterpret_cast<Function>(found);
}

// The process's operators that a bystander passes its calls to; see passed_operators.
inline void find_process_operators(void* program, const void* own_base) noexcept {
    using allocate = void* (*)(std::size_t, const std::nothrow_t&) noexcept;
    using allocate_aligned = void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept;
    using release = void (*)(void*) noexcept;
    using release_aligned = void (*)(void*, std::align_val_t) noexcept;
    passed_operators& ops = process_operators;
    ops.allocate[0] = process_symbol<allocate>(program, "_ZnwmRKSt9nothrow_t", own_base);
    ops.allocate[1] = process_symbol<allocate>(program, "_ZnamRKSt9nothrow_t", own_base);
    ops.allocate_aligned[0] =
        process_symbol<allocate_aligned>(program, "_ZnwmSt11align_val_tRKSt9nothrow_t", own_base);
    ops.allocate_aligned[1] =
        process_symbol<allocate_aligned>(program, "_ZnamSt11align_val_tRKSt9nothrow_t", own_base);
    ops.release[0] = process_symbol<release>(program, "_ZdlPv", own_base);
    ops.release[1] = process_symbol<release>(program, "_ZdaPv", own_base);
    ops.release_aligned[0] = process_symbol<release_aligned>(program, "_ZdlPvSt11align_val_t", own_base);
    ops.release_aligned[1] = process_symbol<release_aligned>(program, "_ZdaPvSt11align_val_t", own_base);
}

inline const char* object_name(const ::Dl_info& found) noexcept {
    return found.dli_fname && *found.dli_fname ? found.dli_fname : "the program";
}

// Runs as the object holding the hooks is loaded, outside any hook, where dlsym and dladdr may
// take the loader's lock: are these hooks the operator new that the process's lookup finds?
static bool decide_heap_role() noexcept {
    static_assert(sizeof(std::size_t) == sizeof(unsigned long), "operator new(size_t) is _Znwm here");
    if (heap_role.load(std::memory_order_acquire) != hooks_role::undecided) return true;
    auto* marker = reinterpret_cast<void*>(&hooks_object_marker);
    hooks_role role = role_of_code_at(marker);
    if (role == hooks_role::undecided) {
        // Looked up from the program's side: RTLD_DEFAULT from an object linked with -Bsymbolic
        // searches that object first. dlopen and dlsym may allocate, through these hooks,
        // which hand out plain blocks until decided.
        void* program = ::dlopen(nullptr, RTLD_NOW | RTLD_NOLOAD);
        void* global_new = program ? ::dlsym(program, "_Znwm") : nullptr;
        ::Dl_info mine{};
        ::Dl_info theirs{};
        const bool found_mine = ::dladdr(marker, &mine) != 0;
        const bool same = found_mine && global_new && ::dladdr(global_new, &theirs) != 0 &&
                          mine.dli_fbase == theirs.dli_fbase;
        role = same ? hooks_role::process : hooks_role::bystander;
        if (!same && program) find_process_operators(program, found_mine ? mine.dli_fbase : nullptr);
        if (program) ::dlclose(program);
        if (!same) {
            fixed_message m;
            m << "the operator new hooks in " << (found_mine ? object_name(mine) : "a shared object")
              << " are not the process's operator new ("
              << (global_new ? "that one is in "
                             : "the program and the libraries it started with export none")
              << (global_new ? object_name(theirs) : "")
              << (global_new ? "): they pass each call on to the process's operators, uncounted"
                             : "): they pass each call to malloc and free, uncounted");
            report_error(m.c_str());
        }
    }
    heap_role.store(role, std::memory_order_release);
    return true;
}

// Before the shared objects that the program opens later can bind to a state of their own.
[[maybe_unused]] static const bool process_state_claimed = claim_process_state();
[[maybe_unused]] static const bool heap_role_decided = decide_heap_role();

}  // namespace detail
MEMLENS_NAMESPACE_END

void* operator new(std::size_t n) { return memlens::detail::new_of(n, memlens::detail::single_form); }
void* operator new[](std::size_t n) { return memlens::detail::new_of(n, memlens::detail::array_form); }
void* operator new(std::size_t n, const std::nothrow_t& t) noexcept {
    return memlens::detail::new_of(n, t, memlens::detail::single_form);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
    return memlens::detail::new_of(n, t, memlens::detail::array_form);
}
void* operator new(std::size_t n, std::align_val_t a) {
    return memlens::detail::new_of(n, a, memlens::detail::single_form);
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return memlens::detail::new_of(n, a, memlens::detail::array_form);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
    return memlens::detail::new_of(n, a, t, memlens::detail::single_form);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept {
    return memlens::detail::new_of(n, a, t, memlens::detail::array_form);
}

// The header holds the size and the alignment offset, so every delete form frees the same way
// and the size or alignment a caller passes is not trusted; the form and the alignment matter
// only to a bystander, which passes the block back to the process's operator of that form.
void operator delete(void* p) noexcept { memlens::detail::delete_of(p, memlens::detail::single_form); }
void operator delete[](void* p) noexcept { memlens::detail::delete_of(p, memlens::detail::array_form); }
void operator delete(void* p, const std::nothrow_t&) noexcept {
    memlens::detail::delete_of(p, memlens::detail::single_form);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    memlens::detail::delete_of(p, memlens::detail::array_form);
}
void operator delete(void* p, std::size_t) noexcept {
    memlens::detail::delete_of(p, memlens::detail::single_form);
}
void operator delete[](void* p, std::size_t) noexcept {
    memlens::detail::delete_of(p, memlens::detail::array_form);
}
void operator delete(void* p, std::align_val_t a) noexcept {
    memlens::detail::delete_of(p, memlens::detail::single_form, a);
}
void operator delete[](void* p, std::align_val_t a) noexcept {
    memlens::detail::delete_of(p, memlens::detail::array_form, a);
}
void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
    memlens::detail::delete_of(p, memlens::detail::single_form, a);
}
void operator delete[](void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
    memlens::detail::delete_of(p, memlens::detail::array_form, a);
}
void operator delete(void* p, std::size_t, std::align_val_t a) noexcept {
    memlens::detail::delete_of(p, memlens::detail::single_form, a);
}
void operator delete[](void* p, std::size_t, std::align_val_t a) noexcept {
    memlens::detail::delete_of(p, memlens::detail::array_form, a);
}
