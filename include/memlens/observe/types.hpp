// memlens/observe/types.hpp: per-type instance counters, as objgraph's show_most_common_types
// and show_growth give them for Python objects: live instances and bytes, peak, total constructed.
//
// A type is counted when it derives from counted_type<T>, when it is wrapped as counted<T>, and
// when a tracking_allocator<T> allocates it (n instances of sizeof(T) bytes per allocate of n).
// Each thread counts in its own table, mapped by memlens (plain stores, no shared atomic
// read-modify-write per event); readers sum the tables. Types are not domains: they have a table
// of their own, MEMLENS_MAX_TYPES entries long.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

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

#include <pthread.h>

#include "../detail/format.hpp"
#include "../detail/state.hpp"

// Fixed so that each thread's table can be mapped once and indexed without a lookup.
#ifndef MEMLENS_MAX_TYPES
#define MEMLENS_MAX_TYPES 4096
#endif

#if MEMLENS_MAX_TYPES < 4 || MEMLENS_MAX_TYPES > 1048576
#error "MEMLENS_MAX_TYPES must be between 4 and 1048576"
#endif

namespace memlens {

/// One type's figures, read at one moment.
struct type_stats {
    std::string name;               ///< readable (demangled) type name
    std::size_t size = 0;           ///< sizeof the type; bytes are instances times this
    std::uint64_t instances = 0;    ///< live instances now
    std::uint64_t bytes = 0;        ///< live bytes now: instances * size
    /// The highest live instance count seen. Exact when one thread constructs the type's
    /// instances (any threads may destroy them): a construction that could set a new peak sums
    /// every thread's table first, counting the others as they were at this thread's last
    /// sum, which can only overstate them while they only destroy. When other threads also
    /// construct, their rises since that sum are not seen until a later sum, so the peak may
    /// be below the truth; it is then the highest of the sums taken at constructions that
    /// passed their thread's limit and at every read (this one included). A sum reads the
    /// threads' tables one after another, not all at one instant.
    std::uint64_t peak = 0;
    std::uint64_t constructed = 0;  ///< instances ever counted in (constructed or allocated)
};

/// How much one type's live instance count rose, as type_checkpoint::growth() lists it.
struct type_growth {
    std::string name;             ///< readable (demangled) type name
    std::uint64_t instances = 0;  ///< live instances now
    std::uint64_t growth = 0;     ///< rise since the checkpoint
};

namespace detail {

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

// The readable name of a registered type; allocates, so callers hold a guard.
inline std::string type_name(const type_site& site) {
    const char* raw = site.raw_name();
    if (&site == &overflow_site) return raw;
#if MEMLENS_DETAIL_DEMANGLE()
    int status = 0;
    char* readable = abi::__cxa_demangle(raw, nullptr, nullptr, &status);
    if (status != 0 || !readable) return raw;
    std::string out(readable);
    std::free(readable);
    return out;
#else
    // "... [with T = name]" (GCC) or "... [T = name]" (Clang).
    std::string_view text(raw);
    const std::size_t from = text.find("T = ");
    if (from == std::string_view::npos) return std::string(text);
    text.remove_prefix(from + 4);
    const std::size_t to = text.find_last_of(']');
    return std::string(text.substr(0, text.find(';') < to ? text.find(';') : to));
#endif
}

inline type_stats to_type_stats(const type_sum& s) {
    const type_site& site = *types.registry.load(std::memory_order_acquire)->sites[s.index];
    type_stats out;
    out.name = type_name(site);
    out.size = site.size;
    out.instances = s.live;
    out.bytes = s.live * site.size;
    out.peak = s.peak;
    out.constructed = s.made;
    return out;
}

// Every registered type's figures; registration in progress may leave a gap.
inline std::vector<type_sum> sum_types() {
    std::vector<type_sum> out;
    const std::uint32_t count = type_count();
    type_registry* registry = types.registry.load(std::memory_order_acquire);
    for (std::uint32_t i = type_overflow; i < count; ++i) {
        if (registry->sites[i]) out.push_back(sum_type(i));
    }
    return out;
}

inline std::vector<type_growth> rank_growth(std::vector<type_growth> rows, std::size_t limit) {
    std::stable_sort(rows.begin(), rows.end(), [](const type_growth& a, const type_growth& b) {
        return a.growth > b.growth;
    });
    if (rows.size() > limit) rows.resize(limit);
    return rows;
}

inline std::string pad_left(const std::string& text, std::size_t width) {
    return std::string(width > text.size() ? width - text.size() : 0, ' ') + text;
}

inline std::string pad_right(const std::string& text, std::size_t width) {
    return text + std::string(width > text.size() ? width - text.size() : 0, ' ');
}

}  // namespace detail

/// Counts the instances of T for as long as they live: `struct foo : memlens::counted_type<foo>
/// { ... };`. Every constructor of T counts one instance in (copies and moves included, since
/// they run this base's copy and move constructors) and the destructor counts it out; a
/// constructor of T that throws runs this base's destructor, so the counts stay exact.
/// Adds nothing to sizeof(T) (an empty base). Costs one load and one store to the calling
/// thread's table per construction and per destruction; never allocates; thread safe.
template <class T>
class counted_type {
public:
    /// Marks T as counting itself, so that tracking_allocator<T> does not count it again.
    using memlens_counted_type = T;

    counted_type() noexcept { detail::type_made(detail::type_site_of<T>::site, 1); }
    counted_type(const counted_type&) noexcept : counted_type() {}
    counted_type(counted_type&&) noexcept : counted_type() {}
    // Assignment changes no object's lifetime.
    counted_type& operator=(const counted_type&) noexcept { return *this; }
    counted_type& operator=(counted_type&&) noexcept { return *this; }
    ~counted_type() { detail::type_gone(detail::type_site_of<T>::site, 1); }
};

/// A T that is counted as T, for a class type you cannot change: `memlens::counted<std::string>
/// s("text");` is a std::string (it derives from it and takes the same constructors) and counts
/// under "std::string". T must be a non-final class type.
template <class T>
class counted : public T, public counted_type<T> {
    static_assert(std::is_class_v<T> && !std::is_final_v<T>,
                  "memlens::counted<T> derives from T: T must be a non-final class");

public:
    using T::T;
    counted() = default;
    /// Copies or moves a T in.
    counted(const T& value) : T(value) {}
    counted(T&& value) : T(std::move(value)) {}
};

/// The figures of type T (zeros if no instance has been counted yet). Thread safe; allocates
/// the name, outside the caller's scopes.
template <class T>
type_stats type_stats_of() {
    detail::guard quiet;
    detail::type_site& site = detail::type_site_of<T>::site;
    std::uint32_t index = site.index.load(std::memory_order_acquire);
    if (index == 0) index = detail::register_type(site);
    if (index == 0) {
        type_stats out;
        out.name = detail::type_name(site);
        out.size = site.size;
        return out;
    }
    return detail::to_type_stats(detail::sum_type(index));
}

/// Up to `limit` types with the most live instances, most first (ties by name), as objgraph's
/// show_most_common_types lists them; types with none alive are left out. Thread safe;
/// allocates the result outside the caller's scopes; costs one pass over every thread's table.
inline std::vector<type_stats> most_common_types(std::size_t limit = 10) {
    detail::guard quiet;
    if (!detail::type_table()) return {};
    std::vector<detail::type_sum> sums = detail::sum_types();
    sums.erase(std::remove_if(sums.begin(), sums.end(),
                              [](const detail::type_sum& s) { return s.live == 0; }),
               sums.end());
    std::vector<type_stats> out;
    for (const detail::type_sum& s : sums) out.push_back(detail::to_type_stats(s));
    std::stable_sort(out.begin(), out.end(), [](const type_stats& a, const type_stats& b) {
        return a.instances != b.instances ? a.instances > b.instances : a.name < b.name;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
}

/// The live instance count of every type at one moment; growth() lists what rose since.
/// Copyable. Taking one allocates (outside the caller's scopes) one word per registered type.
class type_checkpoint {
public:
    /// Records every type's live count now. Thread safe.
    type_checkpoint() { reset(); }

    /// Records every type's live count now, replacing the checkpoint.
    void reset() {
        detail::guard quiet;
        live_.clear();
        if (!detail::type_table()) return;
        for (const detail::type_sum& s : detail::sum_types()) {
            if (live_.size() <= s.index) live_.resize(s.index + 1, 0);
            live_[s.index] = s.live;
        }
    }

    /// Up to `limit` types whose live count rose since the checkpoint, the largest rise first,
    /// as objgraph's show_growth lists them (types registered since count from 0). Does not
    /// move the checkpoint. Thread safe; allocates the result outside the caller's scopes.
    std::vector<type_growth> growth(std::size_t limit = 10) const {
        detail::guard quiet;
        std::vector<type_growth> rows;
        if (!detail::type_table()) return rows;
        for (const detail::type_sum& s : detail::sum_types()) {
            const std::uint64_t before = s.index < live_.size() ? live_[s.index] : 0;
            if (s.live <= before) continue;
            const detail::type_site& site =
                *detail::types.registry.load(std::memory_order_acquire)->sites[s.index];
            rows.push_back({detail::type_name(site), s.live, s.live - before});
        }
        return detail::rank_growth(std::move(rows), limit);
    }

private:
    std::vector<std::uint64_t> live_;
};

/// objgraph's show_growth, process-wide: up to `limit` types whose live count is above the
/// highest count any earlier call saw (0 before the first call), the largest rise first; each
/// call then remembers the higher counts. Thread safe (calls are serialized); allocates the
/// result outside the caller's scopes.
inline std::vector<type_growth> type_growth_since_last_call(std::size_t limit = 10) {
    detail::guard quiet;
    std::vector<type_growth> rows;
    detail::type_registry* registry = detail::type_table();
    if (!registry) return rows;
    static detail::spin_lock serial;
    detail::lock_guard hold(serial);
    for (const detail::type_sum& s : detail::sum_types()) {
        std::uint64_t& reported = registry->reported[s.index];
        if (s.live <= reported) continue;
        rows.push_back({detail::type_name(*registry->sites[s.index]), s.live, s.live - reported});
        reported = s.live;
    }
    return detail::rank_growth(std::move(rows), limit);
}

/// The rows as a text table (type, instances, bytes, peak, constructed), one line per type.
/// Allocates the text outside the caller's scopes.
inline std::string format_types(const std::vector<type_stats>& rows) {
    using namespace detail;
    guard quiet;
    std::size_t width = 4;
    for (const type_stats& r : rows) width = std::max(width, r.name.size());
    std::string out = pad_right("type", width) + "  " + pad_left("instances", 11) +
                      pad_left("bytes", 14) + pad_left("peak", 11) + pad_left("constructed", 13) +
                      "\n";
    for (const type_stats& r : rows) {
        out += pad_right(r.name, width) + "  " + pad_left(group_digits(r.instances), 11) +
               pad_left(group_digits(r.bytes), 14) + pad_left(group_digits(r.peak), 11) +
               pad_left(group_digits(r.constructed), 13) + "\n";
    }
    return out;
}

/// The rows as a text table (type, instances, growth), like objgraph's show_growth output.
/// Allocates the text outside the caller's scopes.
inline std::string format_growth(const std::vector<type_growth>& rows) {
    using namespace detail;
    guard quiet;
    std::size_t width = 4;
    for (const type_growth& r : rows) width = std::max(width, r.name.size());
    std::string out =
        pad_right("type", width) + "  " + pad_left("instances", 11) + pad_left("growth", 11) + "\n";
    for (const type_growth& r : rows) {
        out += pad_right(r.name, width) + "  " + pad_left(group_digits(r.instances), 11) +
               pad_left("+" + group_digits(r.growth), 11) + "\n";
    }
    return out;
}

}  // namespace memlens
