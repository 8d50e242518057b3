// memlens/sources/python.hpp: hooks on CPython's three allocator domains (RAW, MEM, OBJ) that
// count each into a memlens domain of its own and pass every call on to the allocator they wrap.
// Needs <Python.h>; no other memlens header includes this one.
#pragma once

// CPython asks to come before any standard header: it sets feature macros they read.
#include <Python.h>

#include <cstddef>
#include <cstdint>

#include <pthread.h>

#include "../core/counters.hpp"
#include "../core/events.hpp"
#include "../core/live_table.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// CPython's frees pass no size, so the hooks keep each counted block's size in a table keyed by
// address, not in a header in front of the block as the operator new hooks do:
// - removing the hooks must give back the previous allocators while blocks made through the
//   hooks are still alive, and those allocators will free them later: a header would leave them
//   with pointers 16 bytes into their own blocks;
// - a block made before the hooks were installed is simply not in the table, so its free and
//   realloc go on uncounted without reading any memory around a pointer memlens did not hand
//   out (a header check would read 16 bytes before it, mapped for pymalloc, glibc and the debug
//   hooks, but not for every allocator a host may set);
// - a 16-byte header would move every object up a pymalloc size class, and those within 16
//   bytes of pymalloc's 512-byte limit over to malloc.
// The table costs about 30 bytes per live block, in pages memlens maps itself, and one locked
// probe per call. Entries reuse the live table's layout: size_stack holds the whole size and
// origin the memlens domain slot.
MEMLENS_CONSTINIT inline live_shard python_shards[live_shard_count]{};

inline live_shard& python_shard(std::uint64_t hash) noexcept {
    return python_shards[hash >> (64 - live_shard_bits)];
}

// Adds a block; false when the table cannot grow. An address already there belonged to a block
// freed where the hooks could not see it (by code that bypassed its domain's functions): it
// comes back in `stale`, for its bytes to be counted out.
inline bool python_insert(std::uintptr_t address, std::uint64_t size, std::uint32_t slot,
                          live_entry& stale) noexcept {
    const std::uint64_t hash = live_hash(address);
    live_shard& s = python_shard(hash);
    lock_guard hold(s.lock);
    const std::uint64_t found = find_slot(s, address, hash);
    if (found != no_slot) {
        stale = s.slots[found];
        s.slots[found] = live_entry{address, size, slot};
        return true;
    }
    if ((s.count + 1) * 20 > s.capacity * 17 && !grow_shard(s)) return false;
    place_entry(s, live_entry{address, size, slot});
    ++s.count;
    return true;
}

inline bool python_remove(std::uintptr_t address, live_entry& out) noexcept {
    const std::uint64_t hash = live_hash(address);
    live_shard& s = python_shard(hash);
    lock_guard hold(s.lock);
    const std::uint64_t found = find_slot(s, address, hash);
    if (found == no_slot) return false;
    out = s.slots[found];
    erase_slot(s, found);
    return true;
}

inline void python_count_free(const live_entry& e) noexcept {
    on_free(reinterpret_cast<const void*>(e.address), static_cast<std::size_t>(e.size_stack),
            static_cast<std::uint32_t>(e.origin));
}

// Counts a new block of `size` bytes in domain slot `slot` and remembers it for its free.
inline void python_count_alloc(const void* p, std::size_t size, std::uint32_t slot) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    live_entry stale{};
    if (!python_insert(address, size, slot, stale)) {
        static std::atomic<bool> reported{false};
        if (!reported.exchange(true, relaxed)) {
            report_error("cannot grow the table of Python blocks; Python allocations go uncounted "
                         "until it can");
        }
        return;
    }
    if (stale.address != 0) python_count_free(stale);
    // Zero only when another layout owns the program: the free must not count then either.
    if ((on_alloc(p, size, slot, false) & block_counted) == 0) python_remove(address, stale);
}

// One per CPython domain; its address is the ctx CPython passes back to the hooks.
struct python_hook {
    PyMemAllocatorEx previous;
    std::uint32_t slot;
    bool installed;
};

constexpr PyMemAllocatorDomain python_domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                    PYMEM_DOMAIN_OBJ};
constexpr const char* python_domain_names[3] = {"python.raw", "python.mem", "python.obj"};

MEMLENS_CONSTINIT inline python_hook python_hooks[3]{};
MEMLENS_CONSTINIT inline spin_lock python_install_lock{};

// The previous allocator runs under the guard: pymalloc serves large and failed requests of the
// MEM and OBJ domains through PyMem_RawMalloc, whose hook then sees the guard and leaves those
// bytes to the domain that asked for them. A block is counted only when the request came from
// outside every hook, and its free is counted exactly when it is in the table, guard or not.
inline void* python_malloc(void* ctx, std::size_t size) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted();
    void* p = nullptr;
    {
        guard quiet;
        p = h->previous.malloc(h->previous.ctx, size);
    }
    if (p && count) python_count_alloc(p, size, h->slot);
    return p;
}

inline void* python_calloc(void* ctx, std::size_t nelem, std::size_t elsize) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted();
    std::size_t size = 0;
    // The previous allocator refuses an overflowing request itself; if it does not, the block
    // has no size to count and stays out of the figures.
    const bool overflow = __builtin_mul_overflow(nelem, elsize, &size);
    void* p = nullptr;
    {
        guard quiet;
        p = h->previous.calloc(h->previous.ctx, nelem, elsize);
    }
    if (p && count && !overflow) python_count_alloc(p, size, h->slot);
    return p;
}

// A free of the old size, then an allocation of the new one, as tracemalloc counts it; a
// block from before the hooks were installed is only the allocation.
inline void* python_realloc(void* ctx, void* p, std::size_t size) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted();
    // Out of the table before the call: once it returns, another thread may be handed the
    // old address and insert it.
    live_entry old{};
    const bool known = p && python_remove(reinterpret_cast<std::uintptr_t>(p), old);
    void* q = nullptr;
    {
        guard quiet;
        q = h->previous.realloc(h->previous.ctx, p, size);
    }
    if (!q) {
        // The old block is untouched and still live. Its slot was just freed, so putting it
        // back never needs the table to grow.
        live_entry stale{};
        if (known) python_insert(old.address, old.size_stack, static_cast<std::uint32_t>(old.origin), stale);
        return nullptr;
    }
    if (known) python_count_free(old);
    if (count) python_count_alloc(q, size, h->slot);
    return q;
}

inline void python_free(void* ctx, void* p) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    live_entry e{};
    // Before the free, for the same reason as in python_realloc.
    if (p && python_remove(reinterpret_cast<std::uintptr_t>(p), e)) python_count_free(e);
    guard quiet;
    h->previous.free(h->previous.ctx, p);
}

inline bool python_hook_current(std::size_t i) noexcept {
    PyMemAllocatorEx now{};
    PyMem_GetAllocator(python_domains[i], &now);
    return now.ctx == &python_hooks[i] && now.malloc == &python_malloc &&
           now.calloc == &python_calloc && now.realloc == &python_realloc &&
           now.free == &python_free;
}

// A fork while another thread holds a shard would leave it held forever in the child.
inline void python_lock_shards() noexcept {
    for (live_shard& s : python_shards) s.lock.lock();
}
inline void python_unlock_shards() noexcept {
    for (live_shard& s : python_shards) s.lock.unlock();
}

// Counts every block still in the table as freed and empties it. Each shard's slots are taken
// out under its lock and counted after it is released, so that no shard lock is held while
// on_free takes the live table's.
inline void python_drain() noexcept {
    for (live_shard& s : python_shards) {
        live_entry* slots = nullptr;
        std::uint64_t capacity = 0;
        std::size_t mapped = 0;
        {
            lock_guard hold(s.lock);
            slots = s.slots;
            capacity = s.capacity;
            mapped = s.mapped;
            s.slots = nullptr;
            s.capacity = 0;
            s.count = 0;
            s.mapped = 0;
        }
        for (std::uint64_t i = 0; i < capacity; ++i) {
            if (slots[i].address != 0) python_count_free(slots[i]);
        }
        unmap_pages(slots, mapped);
    }
}

}  // namespace detail

/// Wraps the allocators of CPython's RAW, MEM and OBJ domains with hooks that count each into
/// the memlens domain "python.raw", "python.mem" or "python.obj", and pass every call on to the
/// allocator that was there (pymalloc, malloc, the debug hooks or the host's). Call it after
/// Py_PreInitialize (or Py_Initialize), which resets the allocators when PYTHONMALLOC is set,
/// and with the GIL held or before any thread allocates through RAW. Installed already: does
/// nothing. Blocks allocated before are freed and reallocated through the hooks uncounted.
/// Returns false, installing nothing, when a domain cannot be named. Does not allocate
/// through the hooks.
inline bool install_python_hooks() noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    if (python_hooks[0].installed) return true;
    static bool fork_handled = false;
    if (!fork_handled) {
        ::pthread_atfork(&python_lock_shards, &python_unlock_shards, &python_unlock_shards);
        fork_handled = true;
    }
    std::uint32_t slots[3] = {};
    for (std::size_t i = 0; i < 3; ++i) {
        const domain d = domain::named(python_domain_names[i]);
        if (d.name() != python_domain_names[i]) return false;
        slots[i] = d.id();
    }
    for (std::size_t i = 0; i < 3; ++i) {
        python_hook& h = python_hooks[i];
        PyMem_GetAllocator(python_domains[i], &h.previous);
        h.slot = slots[i];
        PyMemAllocatorEx mine{&h, &python_malloc, &python_calloc, &python_realloc, &python_free};
        PyMem_SetAllocator(python_domains[i], &mine);
        h.installed = true;
    }
    return true;
}

/// Gives each domain back the allocator it had before install_python_hooks(), field for field,
/// and counts the blocks the hooks still know as freed: once the hooks are gone nobody would
/// see those frees, so the python.* figures drop to zero live bytes. When another party has
/// wrapped the hooks of some domain since (tracemalloc.start(), say), removing them would cut
/// it out of the chain: then nothing changes, the error handler is told, and the result is
/// false. Not installed: does nothing, true. Call it with the GIL held and while no other
/// thread allocates through RAW, whose calls do not wait for the GIL.
inline bool remove_python_hooks() noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    if (!python_hooks[0].installed) return true;
    for (std::size_t i = 0; i < 3; ++i) {
        if (!python_hook_current(i)) {
            fixed_message m;
            m << "remove_python_hooks: another allocator has wrapped memlens's hooks on "
              << python_domain_names[i]
              << " since they were installed; they stay installed and keep counting (remove the "
                 "other wrapper first, e.g. tracemalloc.stop())";
            report_error(m.c_str());
            return false;
        }
    }
    for (std::size_t i = 0; i < 3; ++i) {
        PyMem_SetAllocator(python_domains[i], &python_hooks[i].previous);
        python_hooks[i].installed = false;
    }
    python_drain();
    return true;
}

/// Whether install_python_hooks() has run and remove_python_hooks() has not undone it since.
inline bool python_hooks_installed() noexcept {
    detail::lock_guard hold(detail::python_install_lock);
    return detail::python_hooks[0].installed;
}

/// The memlens domain that counts CPython domain `d`: "python.raw", "python.mem" or
/// "python.obj". Thread safe; does not allocate; takes a lock.
inline domain python_domain(PyMemAllocatorDomain d) noexcept {
    const std::size_t i = d == PYMEM_DOMAIN_RAW ? 0 : d == PYMEM_DOMAIN_MEM ? 1 : 2;
    return domain::named(detail::python_domain_names[i]);
}

MEMLENS_NAMESPACE_END
