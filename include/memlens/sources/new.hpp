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
