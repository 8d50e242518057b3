// memlens/sources/numpy.hpp: numpy's array data buffers counted in the memlens domain "numpy",
// through the memory handler numpy offers from 1.22 on (PyDataMem_SetHandler). Needs <Python.h>
// only: numpy's C API is reached through the table its module exports, not through its headers,
// so a program builds without numpy and finds out at run time.
#pragma once

#include "../detail/python_headers.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../core/counters.hpp"
#include "record.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// numpy's handler, as version 1 of its ABI lays it out (numpy/ndarraytypes.h): fixed since
// numpy 1.22, whose C API feature version is 0x0f.
struct numpy_allocator {
    void* ctx;
    void* (*malloc)(void* ctx, std::size_t size);
    void* (*calloc)(void* ctx, std::size_t nelem, std::size_t elsize);
    void* (*realloc)(void* ctx, void* ptr, std::size_t new_size);
    void (*free)(void* ctx, void* ptr, std::size_t size);
};

struct numpy_handler {
    char name[127];
    std::uint8_t version;
    numpy_allocator allocator;
};

// Positions in numpy's C API table (numpy/__multiarray_api.h), which numpy never reorders.
constexpr std::size_t numpy_feature_version_at = 211;
constexpr std::size_t numpy_set_handler_at = 304;
constexpr std::size_t numpy_get_handler_at = 305;
constexpr unsigned numpy_handler_feature_version = 0x0f;

// numpy's realloc is not told the old size, so each block carries it in a 16-byte header, which
// keeps the 16-byte alignment numpy's default allocator gives. Every block freed through the
// handler came from it: an array keeps the handler that made its buffer.
struct numpy_header {
    std::size_t size;
    std::size_t check;
};
constexpr std::size_t numpy_header_check = 0x6e756d70796d6c73u;  // "numpymls"

struct numpy_hook {
    numpy_allocator previous;
    std::uint32_t slot;
};

// One per process: every copy of memlens hands numpy the same handler.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline numpy_hook numpy_hooked{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline numpy_handler numpy_memlens_handler{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline bool numpy_installed = false;  // with the GIL held

inline void* numpy_place(void* base, std::size_t size) noexcept {
    if (!base) return nullptr;
    auto* header = static_cast<numpy_header*>(base);
    header->size = size;
    header->check = numpy_header_check ^ size;
    void* user = header + 1;
    record_alloc(user, size, domain_access::make(numpy_hooked.slot));
    return user;
}

// The header of a block this handler made, or null (with a message once) for any other.
inline numpy_header* numpy_header_of(void* ptr) noexcept {
    auto* header = static_cast<numpy_header*>(ptr) - 1;
    if (header->check == (numpy_header_check ^ header->size)) return header;
    static std::atomic<bool> reported{false};
    if (!reported.exchange(true, std::memory_order_relaxed)) {
        report_error("numpy handler: a buffer that memlens's numpy handler did not make was given back "
                     "to it; passed on uncounted");
    }
    return nullptr;
}

// The allocator underneath runs inside the guard: numpy's default one calls malloc, which the
// preload library would count again.
inline void* numpy_malloc(void* ctx, std::size_t size) noexcept {
    auto& h = *static_cast<numpy_hook*>(ctx);
    if (size > SIZE_MAX - sizeof(numpy_header)) return nullptr;
    void* base;
    {
        guard quiet;
        base = h.previous.malloc(h.previous.ctx, size + sizeof(numpy_header));
    }
    return numpy_place(base, size);
}

inline void* numpy_calloc(void* ctx, std::size_t nelem, std::size_t elsize) noexcept {
    auto& h = *static_cast<numpy_hook*>(ctx);
    if (elsize != 0 && nelem > (SIZE_MAX - sizeof(numpy_header)) / elsize) return nullptr;
    const std::size_t size = nelem * elsize;
    void* base;
    {
        guard quiet;
        base = h.previous.calloc(h.previous.ctx, 1, size + sizeof(numpy_header));
    }
    return numpy_place(base, size);
}

inline void numpy_free(void* ctx, void* ptr, std::size_t size) noexcept {
    auto& h = *static_cast<numpy_hook*>(ctx);
    if (!ptr) return;
    numpy_header* header = numpy_header_of(ptr);
    guard quiet;
    if (!header) {
        h.previous.free(h.previous.ctx, ptr, size);
        return;
    }
    record_free(ptr, header->size, domain_access::make(h.slot));
    h.previous.free(h.previous.ctx, header, header->size + sizeof(numpy_header));
}

inline void* numpy_realloc(void* ctx, void* ptr, std::size_t new_size) noexcept {
    auto& h = *static_cast<numpy_hook*>(ctx);
    if (!ptr) return numpy_malloc(ctx, new_size);
    numpy_header* header = numpy_header_of(ptr);
    if (!header || new_size > SIZE_MAX - sizeof(numpy_header)) {
        guard quiet;
        return header ? nullptr : h.previous.realloc(h.previous.ctx, ptr, new_size);
    }
    const std::size_t old_size = header->size;
    void* base;
    {
        guard quiet;
        base = h.previous.realloc(h.previous.ctx, header, new_size + sizeof(numpy_header));
    }
    // A failed realloc leaves the old block in place, still counted.
    if (!base) return nullptr;
    record_free(ptr, old_size, domain_access::make(h.slot));
    return numpy_place(base, new_size);
}

// numpy's C API table, or null (the Python error cleared) where numpy cannot be imported.
inline void** numpy_api() noexcept {
    for (const char* name : {"numpy.core._multiarray_umath", "numpy._core._multiarray_umath"}) {
        PyObject* module = PyImport_ImportModule(name);
        if (!module) {
            PyErr_Clear();
            continue;
        }
        PyObject* capsule = PyObject_GetAttrString(module, "_ARRAY_API");
        Py_DECREF(module);
        void** api = capsule && PyCapsule_CheckExact(capsule)
                         ? static_cast<void**>(PyCapsule_GetPointer(capsule, nullptr))
                         : nullptr;
        Py_XDECREF(capsule);
        PyErr_Clear();
        if (api) return api;
    }
    return nullptr;
}

}  // namespace detail

/// Counts numpy's array data buffers in the memlens domain "numpy" (the figures sys.getsizeof
/// leaves out and numpy reports to tracemalloc under a domain of its own), by making a handler
/// that wraps numpy's current one the handler of the calling thread's context
/// (PyDataMem_SetHandler). numpy keeps its handler in a context variable: threads started later
/// and other contexts keep numpy's default handler, uncounted, until they call this too. Every
/// array keeps the handler that made its buffer, so buffers from before are freed uncounted and
/// the handler stays for the life of the process. Each buffer carries a 16-byte header, since
/// numpy's realloc is not told the old size. Call it with the GIL held after Py_Initialize.
/// False, changing nothing, when numpy cannot be imported or is older than 1.22 (the error
/// handler says which). Does not allocate through the hooks.
inline bool install_numpy_hooks() noexcept {
    using namespace detail;
    void** api = numpy_api();
    if (!api) {
        report_error("install_numpy_hooks: numpy cannot be imported; its buffers are not counted");
        return false;
    }
    using feature_version_function = unsigned (*)();
    using set_handler_function = PyObject* (*)(PyObject*);
    using get_handler_function = PyObject* (*)();
    const auto feature_version = reinterpret_cast<feature_version_function>(api[numpy_feature_version_at]);
    if (feature_version() < numpy_handler_feature_version) {
        report_error("install_numpy_hooks: numpy is older than 1.22 and has no memory handler; its "
                     "buffers are not counted");
        return false;
    }
    if (!numpy_installed) {
        PyObject* current = reinterpret_cast<get_handler_function>(api[numpy_get_handler_at])();
        auto* handler = current ? static_cast<numpy_handler*>(PyCapsule_GetPointer(current, "mem_handler")) : nullptr;
        if (!handler || handler->version != 1) {
            Py_XDECREF(current);
            PyErr_Clear();
            report_error("install_numpy_hooks: numpy's current memory handler is not one memlens can wrap "
                         "(version 1); its buffers are not counted");
            return false;
        }
        numpy_hooked.previous = handler->allocator;
        Py_DECREF(current);
        numpy_hooked.slot = domain::named("numpy").id();
        // numpy reports its buffers to tracemalloc itself.
        handoff_skip_domain(numpy_hooked.slot);
        std::strncpy(numpy_memlens_handler.name, "memlens", sizeof numpy_memlens_handler.name - 1);
        numpy_memlens_handler.version = 1;
        numpy_memlens_handler.allocator = {&numpy_hooked, &numpy_malloc, &numpy_calloc, &numpy_realloc, &numpy_free};
        numpy_installed = true;
    }
    PyObject* capsule = PyCapsule_New(&numpy_memlens_handler, "mem_handler", nullptr);
    PyObject* old = capsule ? reinterpret_cast<set_handler_function>(api[numpy_set_handler_at])(capsule) : nullptr;
    Py_XDECREF(capsule);
    if (!old) {
        PyErr_Clear();
        report_error("install_numpy_hooks: numpy refused memlens's memory handler");
        return false;
    }
    Py_DECREF(old);
    return true;
}

/// The memlens domain that counts numpy's array buffers once install_numpy_hooks() has run.
inline domain numpy_domain() noexcept { return domain::named("numpy"); }

MEMLENS_NAMESPACE_END
