// memlens/sources/new.hpp: replaces every replaceable global operator new and operator delete
// with hooks that count into the "heap" domain, and nothing else: no report is written at exit
// (<memlens/hooks.hpp> adds that). Include one of the two in exactly one translation unit of the
// program: replacement functions may be defined only once.
#pragma once

#include <cstddef>
#include <new>

#include "heap.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Out of line: the new-handler loop runs only when the system is out of memory.
MEMLENS_NOINLINE inline void* heap_new_retry(std::size_t size, std::size_t alignment) {
    for (;;) {
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
        if (void* p = heap_allocate(size, alignment)) return p;
    }
}

MEMLENS_ALWAYS_INLINE void* heap_new(std::size_t size, std::size_t alignment) {
    if (void* p = heap_allocate(size, alignment)) return p;
    return heap_new_retry(size, alignment);
}

inline void* heap_new_nothrow(std::size_t size, std::size_t alignment) noexcept {
    try {
        return heap_new(size, alignment);
    } catch (...) {
        return nullptr;
    }
}

constexpr std::size_t default_new_alignment = __STDCPP_DEFAULT_NEW_ALIGNMENT__;

// Internal linkage, and this header is in one unit of its object: its address marks the object
// that holds these hooks, whatever the symbol bindings.
static void hooks_object_marker() noexcept {}

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
        if (program) ::dlclose(program);
        ::Dl_info mine{};
        ::Dl_info theirs{};
        const bool found_mine = ::dladdr(marker, &mine) != 0;
        const bool same = found_mine && global_new && ::dladdr(global_new, &theirs) != 0 &&
                          mine.dli_fbase == theirs.dli_fbase;
        role = same ? hooks_role::process : hooks_role::bystander;
        if (!same) {
            fixed_message m;
            m << "the operator new hooks in " << (found_mine ? object_name(mine) : "a shared object")
              << " are not the process's operator new ("
              << (global_new ? "that one is in " : "the program and the libraries it started with export none")
              << (global_new ? object_name(theirs) : "")
              << "): they pass allocations to malloc uncounted, so that any operator delete can "
                 "free them";
            report_error(m.c_str());
        }
    }
    heap_role.store(role, std::memory_order_release);
    return true;
}

[[maybe_unused]] static const bool heap_role_decided = decide_heap_role();

}  // namespace detail
MEMLENS_NAMESPACE_END

void* operator new(std::size_t size) {
    return memlens::detail::heap_new(size, memlens::detail::default_new_alignment);
}
void* operator new[](std::size_t size) {
    return memlens::detail::heap_new(size, memlens::detail::default_new_alignment);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    return memlens::detail::heap_new_nothrow(size, memlens::detail::default_new_alignment);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
    return memlens::detail::heap_new_nothrow(size, memlens::detail::default_new_alignment);
}
void* operator new(std::size_t size, std::align_val_t alignment) {
    return memlens::detail::heap_new(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
    return memlens::detail::heap_new(size, static_cast<std::size_t>(alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
    return memlens::detail::heap_new_nothrow(size, static_cast<std::size_t>(alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
    return memlens::detail::heap_new_nothrow(size, static_cast<std::size_t>(alignment));
}

// The header holds the size and the alignment offset, so every delete form frees the same way
// and the size or alignment a caller passes is not trusted.
void operator delete(void* p) noexcept { memlens::detail::heap_free(p); }
void operator delete[](void* p) noexcept { memlens::detail::heap_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { memlens::detail::heap_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { memlens::detail::heap_free(p); }
void operator delete(void* p, std::size_t) noexcept { memlens::detail::heap_free(p); }
void operator delete[](void* p, std::size_t) noexcept { memlens::detail::heap_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { memlens::detail::heap_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { memlens::detail::heap_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    memlens::detail::heap_free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
    memlens::detail::heap_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { memlens::detail::heap_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
    memlens::detail::heap_free(p);
}
