// memlens/core/type_table.hpp: the per-thread type tables that counted types and tracking
// allocators count into: plain stores to the calling thread's table, summed when read. Hook
// safe: the tables live in pages memlens maps itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include <pthread.h>

#if defined(__cpp_rtti) || defined(__GXX_RTTI)
#include <typeinfo>
#if defined(__has_include)
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#define MEMLENS_DETAIL_DEMANGLE() 1
#endif
#endif
#endif
#ifndef MEMLENS_DETAIL_DEMANGLE
#define MEMLENS_DETAIL_DEMANGLE() 0
#endif

#include "state.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

constexpr std::uint32_t max_types = MEMLENS_MAX_TYPES;
// Index 0 marks a type not yet registered; index 1 collects the types past the table's end.
constexpr std::uint32_t type_overflow = 1;
constexpr std::uint32_t first_type = 2;

// A counted type's entry: constant-initialized, so events before main find it intact.
struct type_site {
    const char* (*raw_name)() noexcept;
    std::size_t size;
    std::atomic<std::uint32_t> index{0};
};

// The compiler's own spelling of T: the mangled typeid name, or without RTTI the signature of
// this function, which names T in readable form.
template <class T>
const char* type_raw_name() noexcept {
#if MEMLENS_DETAIL_DEMANGLE()
    return typeid(T).name();
#else
    return __PRETTY_FUNCTION__;
#endif
}

inline const char* overflow_type_name() noexcept {
    return "(types past MEMLENS_MAX_TYPES; bytes unknown)";
}

template <class T>
struct type_site_of {
    MEMLENS_CONSTINIT static inline type_site site{&type_raw_name<T>, sizeof(T)};
};

MEMLENS_CONSTINIT inline type_site overflow_site{&overflow_type_name, 0};

struct type_counters {
    std::atomic<std::uint64_t> made{0};
    std::atomic<std::uint64_t> gone{0};
    // Owner only: the live count of this table past which a new peak becomes possible, given
    // what the other tables held at the last look. Only their rises can make it stale.
    std::int64_t limit = 0;
};

struct type_record {
    type_counters slots[max_types];
    type_record* next = nullptr;
    std::atomic<bool> in_use{false};
    // The record of threads that have exited: shared, so updated with read-modify-writes.
    bool shared = false;
};

struct type_registry {
    type_site* sites[max_types];
    std::atomic<std::int64_t> peak[max_types];
    // The highest live counts type_growth_since_last_call() has reported.
    std::uint64_t reported[max_types];
};

struct type_state {
    std::atomic<type_registry*> registry{nullptr};
    std::atomic<type_record*> records{nullptr};
    type_record* late = nullptr;
    std::atomic<std::uint32_t> count{first_type};
    std::atomic<int> init_state{0};
    bool key_ready = false;
    pthread_key_t key{};
    spin_lock lock;
};

// Never destroyed: counted objects may die after static destruction.
MEMLENS_CONSTINIT inline type_state types{};

struct type_thread {
    type_record* record;
    bool exited;
};

MEMLENS_CONSTINIT inline thread_local type_thread types_here{nullptr, false};

// The record stays in the list with its counts, which still belong to the sums; the next thread
// that starts takes it over and adds to them.
inline void type_thread_exit(void* record) noexcept {
    static_cast<type_record*>(record)->in_use.store(false, std::memory_order_release);
    types_here.record = nullptr;
    types_here.exited = true;
}

// Only the forking thread lives on in the child: the other threads' records are free again.
inline void type_fork_child() noexcept {
    for (type_record* r = types.records.load(std::memory_order_acquire); r; r = r->next) {
        if (r != types_here.record && !r->shared) r->in_use.store(false, relaxed);
    }
}

template <class T>
T* map_object() noexcept {
    void* raw = map_pages(sizeof(T));
    return raw ? new (raw) T{} : nullptr;
}

MEMLENS_COLD inline void init_types() noexcept {
    int expected = 0;
    if (!types.init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        while (types.init_state.load(std::memory_order_acquire) != 2) ::sched_yield();
        return;
    }
    type_registry* registry = map_object<type_registry>();
    type_record* late = map_object<type_record>();
    if (registry && late) {
        registry->sites[type_overflow] = &overflow_site;
        overflow_site.index.store(type_overflow, std::memory_order_release);
        late->shared = true;
        late->in_use.store(true, relaxed);
        types.late = late;
        types.records.store(late, std::memory_order_release);
        types.registry.store(registry, std::memory_order_release);
    } else {
        report_error("cannot map the type counters' tables; types are not counted");
    }
    if (::pthread_key_create(&types.key, &type_thread_exit) == 0) types.key_ready = true;
    ::pthread_atfork(nullptr, nullptr, &type_fork_child);
    types.init_state.store(2, std::memory_order_release);
}

inline type_registry* type_table() noexcept {
    if (MEMLENS_UNLIKELY(types.init_state.load(std::memory_order_acquire) != 2)) init_types();
    return types.registry.load(std::memory_order_acquire);
}

// The site's index, registering it on first use; 0 when nothing can be counted.
MEMLENS_COLD inline std::uint32_t register_type(type_site& site) noexcept {
    type_registry* registry = type_table();
    if (!registry) return 0;
    bool full = false;
    std::uint32_t index;
    {
        lock_guard hold(types.lock);
        index = site.index.load(relaxed);
        if (index == 0) {
            const std::uint32_t count = types.count.load(relaxed);
            if (count < max_types) {
                index = count;
                registry->sites[index] = &site;
                types.count.store(count + 1, std::memory_order_release);
            } else {
                index = type_overflow;
                full = true;
            }
            site.index.store(index, std::memory_order_release);
        }
    }
    if (full) report_error("MEMLENS_MAX_TYPES reached; further types are counted together");
    return index;
}

MEMLENS_COLD inline type_record* acquire_type_record() noexcept {
    type_thread& here = types_here;
    if (!type_table()) return nullptr;
    if (here.exited) return types.late;
    type_record* found = reuse_idle_record(types.records);
    if (!found) {
        found = map_object<type_record>();
        if (!found) {
            report_error("cannot map a thread's type counters; this thread's are shared");
            return types.late;
        }
        found->in_use.store(true, relaxed);
        lock_guard hold(types.lock);
        found->next = types.records.load(relaxed);
        types.records.store(found, std::memory_order_release);
    }
    if (types.key_ready) ::pthread_setspecific(types.key, found);
    here.record = found;
    return found;
}

// A table's live count: made is read first, so a destruction racing with the read can only
// make it lower than it was when made was read, never higher.
inline std::int64_t type_net(const type_counters& c) noexcept {
    const std::uint64_t made = c.made.load(relaxed);
    return static_cast<std::int64_t>(made - c.gone.load(relaxed));
}

inline std::int64_t raise_type_peak(std::uint32_t i, std::int64_t value) noexcept {
    std::atomic<std::int64_t>& peak = types.registry.load(std::memory_order_acquire)->peak[i];
    std::int64_t seen = peak.load(relaxed);
    while (value > seen && !peak.compare_exchange_weak(seen, value, relaxed)) {
    }
    return value > seen ? value : seen;
}

// The owner's live count passed its limit: sum every table, record a new peak, and compute how
// far this table may rise before it must look again.
MEMLENS_NOINLINE inline void type_new_high(type_record* self, std::uint32_t i) noexcept {
    std::int64_t own = 0;
    std::int64_t others = 0;
    for (type_record* r = types.records.load(std::memory_order_acquire); r; r = r->next) {
        const std::int64_t net = type_net(r->slots[i]);
        if (r == self) own = net;
        else others += net;
    }
    const std::int64_t peak = raise_type_peak(i, own + others);
    if (self) self->slots[i].limit = peak - others;
}

inline void type_count_owned(type_record* r, std::uint32_t i, std::uint64_t n, bool made) noexcept {
    type_counters& c = r->slots[i];
    if (!made) {
        owner_add(c.gone, n);
        return;
    }
    const std::uint64_t total = c.made.load(relaxed) + n;
    c.made.store(total, relaxed);
    if (MEMLENS_UNLIKELY(static_cast<std::int64_t>(total - c.gone.load(relaxed)) > c.limit)) {
        type_new_high(r, i);
    }
}

MEMLENS_COLD inline void type_event_slow(type_site& site, std::uint64_t n, bool made) noexcept {
    std::uint32_t i = site.index.load(std::memory_order_acquire);
    if (i == 0) i = register_type(site);
    if (i == 0) return;
    type_record* r = types_here.record;
    if (!r) r = acquire_type_record();
    if (!r) return;
    if (!r->shared) {
        type_count_owned(r, i, n, made);
        return;
    }
    (made ? r->slots[i].made : r->slots[i].gone).fetch_add(n, relaxed);
    if (made) type_new_high(nullptr, i);
}

// Counts n instances of a type in: one load and one store to this thread's table, and a
// compare against the limit behind which no new peak can be.
MEMLENS_ALWAYS_INLINE void type_made(type_site& site, std::uint64_t n) noexcept {
    const std::uint32_t i = site.index.load(relaxed);
    type_record* r = types_here.record;
    if (MEMLENS_UNLIKELY((i == 0) | (r == nullptr))) return type_event_slow(site, n, true);
    type_counters& c = r->slots[i];
    const std::uint64_t total = c.made.load(relaxed) + n;
    c.made.store(total, relaxed);
    if (MEMLENS_UNLIKELY(static_cast<std::int64_t>(total - c.gone.load(relaxed)) > c.limit)) {
        type_new_high(r, i);
    }
}

MEMLENS_ALWAYS_INLINE void type_gone(type_site& site, std::uint64_t n) noexcept {
    const std::uint32_t i = site.index.load(relaxed);
    type_record* r = types_here.record;
    if (MEMLENS_UNLIKELY((i == 0) | (r == nullptr))) return type_event_slow(site, n, false);
    owner_add(r->slots[i].gone, n);
}

// Types that count their own constructions (counted_type bases) are not counted again when a
// tracking_allocator allocates room for them.
template <class T, class = void>
struct counts_itself : std::false_type {};
template <class T>
struct counts_itself<T, std::void_t<typename T::memlens_counted_type>> : std::true_type {};

// Called by tracking_allocator<T> for n elements of T.
template <class T>
MEMLENS_ALWAYS_INLINE void type_allocated(std::size_t n) noexcept {
    if constexpr (!counts_itself<T>::value) type_made(type_site_of<T>::site, n);
}

template <class T>
MEMLENS_ALWAYS_INLINE void type_freed(std::size_t n) noexcept {
    if constexpr (!counts_itself<T>::value) type_gone(type_site_of<T>::site, n);
}

// Figures summed over every table; memlens's own work, so the caller's scopes are not charged.
struct type_sum {
    std::uint32_t index = 0;
    std::uint64_t made = 0;
    std::uint64_t live = 0;
    std::uint64_t peak = 0;
};

inline type_sum sum_type(std::uint32_t i) noexcept {
    type_sum out;
    out.index = i;
    std::int64_t live = 0;
    for (type_record* r = types.records.load(std::memory_order_acquire); r; r = r->next) {
        out.made += r->slots[i].made.load(relaxed);
        live += type_net(r->slots[i]);
    }
    out.live = live > 0 ? static_cast<std::uint64_t>(live) : 0;
    out.peak = static_cast<std::uint64_t>(raise_type_peak(i, live > 0 ? live : 0));
    return out;
}

inline std::uint32_t type_count() noexcept {
    return types.registry.load(std::memory_order_acquire)
               ? types.count.load(std::memory_order_acquire)
               : first_type;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
