// memlens/core/counters.hpp: named domains and their exact figures (live, peak, total bytes and
// allocation / free counts), process-wide and per domain.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "errors.hpp"
#include "state.hpp"

MEMLENS_NAMESPACE_BEGIN

namespace detail {
struct domain_access;
}

/// Exact figures of one domain, or of all domains together. Sizes are requested sizes.
struct memory_stats {
    std::size_t current = 0;  ///< live bytes now
    std::size_t peak = 0;     ///< highest live bytes since start or the last reset_peak()
    std::size_t total = 0;    ///< bytes ever allocated
    std::uint64_t allocs = 0; ///< allocations counted
    std::uint64_t frees = 0;  ///< frees counted
};

/// A named set of counters: one per subsystem, allocator or pool. Cheap to copy; compare by id.
class domain {
public:
    /// The domain called `name`, registered on first use (at most MEMLENS_MAX_DOMAINS - 3
    /// names; past that, and for an empty name, the error handler is told and the shared
    /// "overflow" domain is returned). Thread safe; does not allocate; takes a lock.
    static domain named(std::string_view name) noexcept;

    /// The domain of the global operator new / delete hooks.
    static constexpr domain heap() noexcept { return domain(detail::heap_slot); }

    /// The domain's name, valid for the life of the process.
    std::string_view name() const noexcept;

    /// A small number fixed for the life of the process: the index of this domain in
    /// snapshot::domain_names and live_allocation::domain. Two domains are equal when their
    /// ids are.
    constexpr std::uint32_t id() const noexcept { return id_; }
    friend constexpr bool operator==(domain a, domain b) noexcept { return a.id_ == b.id_; }
    friend constexpr bool operator!=(domain a, domain b) noexcept { return a.id_ != b.id_; }

private:
    friend struct detail::domain_access;
    constexpr explicit domain(std::uint32_t id) noexcept : id_(id) {}
    std::uint32_t id_;
};

/// A domain and its figures, as listed by domains().
struct domain_stats {
    memlens::domain domain;  ///< the domain, for its name() and id()
    memory_stats stats;      ///< its exact figures when domains() was called
};

namespace detail {

struct domain_access {
    static constexpr domain make(std::uint32_t id) noexcept { return domain(id); }
};

// Sums over every thread's record: exact for events that have returned.
struct raw_figures {
    std::uint64_t allocated = 0;
    std::uint64_t freed = 0;
    std::uint64_t allocs = 0;
    std::uint64_t frees = 0;

    std::int64_t current() const noexcept {
        return static_cast<std::int64_t>(allocated) - static_cast<std::int64_t>(freed);
    }
};

inline raw_figures read_figures(std::uint32_t slot) noexcept {
    raw_figures out;
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    const std::uint32_t first = slot == all_slot ? heap_slot : slot;
    const std::uint32_t last = slot == all_slot ? count : slot + 1;
    for (thread_record* r = core.records.load(std::memory_order_acquire); r; r = r->next) {
        for (std::uint32_t i = first; i < last; ++i) {
            const slot_counters& s = r->slots[i];
            out.allocated += s.alloc_bytes.load(relaxed);
            out.freed += s.free_bytes.load(relaxed);
            out.allocs += s.allocs.load(relaxed);
            out.frees += s.frees.load(relaxed);
        }
    }
    return out;
}

inline memory_stats read_slot(std::uint32_t slot) noexcept {
    const raw_figures raw = read_figures(slot);
    memory_stats out;
    out.total = static_cast<std::size_t>(raw.allocated);
    out.allocs = raw.allocs;
    out.frees = raw.frees;
    // Counters of different threads are read one after another, so a free read before its
    // allocation could make the difference negative for a moment.
    const std::int64_t current = raw.current();
    out.current = current > 0 ? static_cast<std::size_t>(current) : 0;
    const std::int64_t peak = core.slots[slot].peak.load(relaxed);
    out.peak = peak > 0 ? static_cast<std::size_t>(peak) : 0;
    if (out.peak < out.current) out.peak = out.current;
    return out;
}

inline std::int64_t exact_current(std::uint32_t slot) noexcept {
    return read_figures(slot).current();
}

inline bool valid_slot(std::uint32_t slot) noexcept {
    return slot < core.slot_count.load(std::memory_order_acquire);
}

}  // namespace detail

inline domain domain::named(std::string_view name) noexcept {
    using namespace detail;
    if (name.empty()) {
        report_error("domain::named: an empty name is not a domain name; using \"overflow\"");
        return domain(overflow_slot);
    }
    if (name.size() >= domain_name_capacity) {
        report_error("domain::named: name longer than 47 bytes; it is cut to 47");
        name = name.substr(0, domain_name_capacity - 1);
    }
    if (name == "heap") return heap();
    if (name == "overflow") return domain(overflow_slot);
    {
        lock_guard hold(core.lock);
        const std::uint32_t count = core.slot_count.load(relaxed);
        for (std::uint32_t i = first_free_slot; i < count; ++i) {
            if (std::string_view(core.slots[i].name) == name) return domain(i);
        }
        if (count < max_domains) {
            std::memcpy(core.slots[count].name, name.data(), name.size());
            core.slots[count].name[name.size()] = '\0';
            core.slot_count.store(count + 1, std::memory_order_release);
            return domain(count);
        }
    }
    // Reported after the lock is released: the handler is the user's code.
    report_error("domain::named: MEMLENS_MAX_DOMAINS reached; counting in \"overflow\"");
    return domain(overflow_slot);
}

inline std::string_view domain::name() const noexcept {
    if (id_ == detail::heap_slot) return "heap";
    if (id_ == detail::overflow_slot) return "overflow";
    if (id_ == detail::all_slot) return "all";
    return detail::core.slots[id_].name;
}

/// Exact figures of every domain together: the whole process as far as memlens sees it.
/// Thread safe; does not allocate; costs one pass over the live threads' records.
inline memory_stats stats() noexcept { return detail::read_slot(detail::all_slot); }

/// Exact figures of one domain. Thread safe; does not allocate.
inline memory_stats stats(domain d) noexcept {
    return detail::valid_slot(d.id()) ? detail::read_slot(d.id()) : memory_stats{};
}

/// Every domain that has been named, plus "heap", and "overflow" once it has counted anything,
/// with its figures. Thread safe; allocates the returned vector.
inline std::vector<domain_stats> domains() {
    std::vector<domain_stats> out;
    const std::uint32_t count = detail::core.slot_count.load(std::memory_order_acquire);
    for (std::uint32_t i = detail::heap_slot; i < count; ++i) {
        const memory_stats figures = detail::read_slot(i);
        if (i == detail::overflow_slot && figures.total == 0) continue;
        out.push_back({detail::domain_access::make(i), figures});
    }
    return out;
}

/// Makes the peak of every domain, and of the process, equal to its current live bytes, as
/// tracemalloc.reset_peak() does. Thread safe; does not allocate.
inline void reset_peak() noexcept {
    using namespace detail;
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    lock_guard hold(core.lock);
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::int64_t now = exact_current(i);
        core.slots[i].peak.store(now, relaxed);
        std::int64_t trigger = now;
        if (i == all_slot) {
            const std::int64_t low = lowest_window_locked();
            if (low < trigger) trigger = low;
        }
        core.slots[i].trigger.store(trigger, relaxed);
    }
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
}

/// How the process and domain peaks are kept while several threads allocate at once.
enum class peak_mode {
    /// Each thread folds its net bytes into the shared figures once they move
    /// MEMLENS_PEAK_BATCH_BYTES up or down: no shared write per event; the peak may lag the
    /// truth by up to twice that per other thread allocating at the same moment.
    batched,
    /// Every event updates the shared figures: the peak is exact under any threading, at the
    /// cost of shared atomic operations on every event.
    exact,
};

/// Chooses the peak mode for the whole process (default batched). Thread safe.
inline void set_peak_mode(peak_mode mode) noexcept {
    detail::core.batch.store(mode == peak_mode::exact ? 0 : MEMLENS_PEAK_BATCH_BYTES,
                             detail::relaxed);
    detail::core.epoch.fetch_add(1, std::memory_order_acq_rel);
}

MEMLENS_NAMESPACE_END
