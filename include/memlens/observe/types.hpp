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
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/type_table.hpp"
#include "../detail/format.hpp"
#include "../detail/rank.hpp"
#include "../model/types.hpp"

MEMLENS_NAMESPACE_BEGIN

namespace detail {

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
    rank_rows(rows, [](const type_growth& a) { return std::make_pair(rank_of(a.growth), std::int64_t{0}); });
    if (rows.size() > limit) rows.resize(limit);
    return rows;
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
    /// Counts the copy in as one more instance.
    counted_type(const counted_type&) noexcept : counted_type() {}
    /// Counts the moved-to object in as one more instance; the source still counts until destroyed.
    counted_type(counted_type&&) noexcept : counted_type() {}
    /// Counts nothing: assignment changes no object's lifetime.
    counted_type& operator=(const counted_type&) noexcept { return *this; }
    /// Counts nothing: assignment changes no object's lifetime.
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
    ///@{
    /// Copies or moves a T in, counted as a new instance.
    counted(const T& value) : T(value) {}
    counted(T&& value) : T(std::move(value)) {}
    ///@}
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
    detail::rank_rows(
        out, [](const type_stats& a) { return std::make_pair(detail::rank_of(a.instances), std::int64_t{0}); },
        +[](const type_stats& a) { return std::string_view(a.name); });
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
    std::vector<std::string> cells;
    for (const type_stats& r : rows) {
        cells.insert(cells.end(), {r.name, group_digits(r.instances), group_digits(r.bytes),
                                   group_digits(r.peak), group_digits(r.constructed)});
    }
    // Least widths keep the figures in place from one call to the next, as objgraph's do.
    return format_table({{"type"}, {"instances", true, 11}, {"bytes", true, 12}, {"peak", true, 9},
                         {"constructed", true, 11}},
                        cells);
}

/// The rows as a text table (type, instances, growth), like objgraph's show_growth output.
/// Allocates the text outside the caller's scopes.
inline std::string format_growth(const std::vector<type_growth>& rows) {
    using namespace detail;
    guard quiet;
    std::vector<std::string> cells;
    for (const type_growth& r : rows) {
        cells.insert(cells.end(), {r.name, group_digits(r.instances), "+" + group_digits(r.growth)});
    }
    return format_table({{"type"}, {"instances", true, 11}, {"growth", true, 9}}, cells);
}

MEMLENS_NAMESPACE_END
