// memlens/observe/named_scope.hpp: MEMLENS_SCOPE("name"), a thread scope that remembers where it
// was opened and adds every pass to per-name totals, as memory_profiler reports per function.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../model/scopes.hpp"
#include "scope.hpp"

MEMLENS_NAMESPACE_BEGIN

/// A call site of MEMLENS_SCOPE. Constant-initialized; registered on its first pass.
class scope_site {
public:
    /// Keeps the pointers, which must outlive the site (string literals, as MEMLENS_SCOPE
    /// passes). A site with a name seen before adds to that name's totals.
    constexpr scope_site(const char* name, const char* file, unsigned line,
                         const char* function) noexcept
        : name_(name), file_(file), line_(line), function_(function) {}

    /// Adds one closed pass. Thread safe; does not allocate.
    void add(const block_usage& u) noexcept;

    const char* name() const noexcept { return name_; }          ///< the name the totals go under
    const char* file() const noexcept { return file_; }          ///< the source file of the site
    unsigned line() const noexcept { return line_; }             ///< its line; 0 when unknown
    const char* function() const noexcept { return function_; }  ///< the function it is in

private:
    friend std::vector<named_scope_stats> named_scopes();
    friend void reset_named_scopes() noexcept;

    const char* name_;
    const char* file_;
    unsigned line_;
    const char* function_;
    std::atomic<std::uint64_t> calls_{0};
    std::atomic<std::uint64_t> allocated_{0};
    std::atomic<std::uint64_t> allocs_{0};
    std::atomic<std::int64_t> net_{0};
    std::atomic<std::uint64_t> max_peak_{0};
    std::atomic<bool> linked_{false};
    scope_site* next_ = nullptr;
};

namespace detail {
MEMLENS_DETAIL_PER_COPY MEMLENS_CONSTINIT inline std::atomic<scope_site*> scope_sites{nullptr};

// ---- scope marks: where named scopes enter and leave, while a process monitor runs ----------
// A ring of the latest marks that every thread writes and each monitor reads at its own pace
// (monitor/monitor.hpp). While no monitor wants marks, a named scope only loads `readers` and
// finds it 0; the ring's pages are mapped when the first monitor starts and stay.

constexpr std::uint64_t scope_mark_slots = 4096;  // a power of two
constexpr std::size_t scope_mark_name_words = 6;  // a name's first 47 bytes and its NUL

// One mark, written as a sequence lock: `sequence` is 0 while a writer fills the slot, then
// the mark's position + 1. Every field is an atomic, so that a reader racing a writer a lap
// ahead reads whole words and sees from `sequence` that they are not the mark it wanted.
struct scope_mark_slot {
    std::atomic<std::uint64_t> sequence{0};
    std::atomic<std::int64_t> time_ns{0};
    std::atomic<std::uint64_t> thread_entered{0};  // memlens's thread number << 1 | entered
    std::atomic<std::uint64_t> name[scope_mark_name_words] = {};
};

struct scope_mark_ring {
    // Monitors that want marks; read by every named scope, written only as monitors come and go.
    alignas(64) std::atomic<std::uint32_t> readers{0};
    std::atomic<scope_mark_slot*> slots{nullptr};
    spin_lock lock;
    // Positions handed to writers so far.
    alignas(64) std::atomic<std::uint64_t> head{0};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline scope_mark_ring scope_marks{};

MEMLENS_NOINLINE inline void write_scope_mark(const char* name, bool entered) noexcept {
    scope_mark_slot* slots = scope_marks.slots.load(std::memory_order_acquire);
    if (slots == nullptr) return;
    const std::uint64_t position = scope_marks.head.fetch_add(1, relaxed);
    scope_mark_slot& slot = slots[position & (scope_mark_slots - 1)];
    // Acquire: the field stores below stay after it. (Read-modify-writes rather than fences, which
    // ThreadSanitizer does not model.)
    slot.sequence.exchange(0, std::memory_order_acquire);
    slot.time_ns.store(monotonic_ns(), relaxed);
    const thread_record* record = this_thread.record;
    const std::uint64_t thread = record ? record->index : 0;
    slot.thread_entered.store(thread << 1 | (entered ? 1 : 0), relaxed);
    std::uint64_t words[scope_mark_name_words] = {};
    const std::size_t length = name ? ::strnlen(name, sizeof words - 1) : 0;
    if (length != 0) std::memcpy(words, name, length);
    for (std::size_t i = 0; i < scope_mark_name_words; ++i) slot.name[i].store(words[i], relaxed);
    slot.sequence.store(position + 1, std::memory_order_release);
}

MEMLENS_ALWAYS_INLINE bool scope_marks_wanted() noexcept {
    return MEMLENS_UNLIKELY(scope_marks.readers.load(relaxed) != 0);
}

// A monitor starts wanting marks: maps the ring the first time. False when it cannot be mapped.
inline bool want_scope_marks() noexcept {
    lock_guard hold(scope_marks.lock);
    if (scope_marks.slots.load(relaxed) == nullptr) {
        void* pages = map_pages(sizeof(scope_mark_slot) * scope_mark_slots);
        if (pages == nullptr) return false;
        scope_marks.slots.store(static_cast<scope_mark_slot*>(pages), std::memory_order_release);
    }
    scope_marks.readers.fetch_add(1, relaxed);
    return true;
}

inline void unwant_scope_marks() noexcept { scope_marks.readers.fetch_sub(1, relaxed); }

// The position the next mark will take: where a new reader starts.
inline std::uint64_t scope_mark_head() noexcept { return scope_marks.head.load(std::memory_order_acquire); }

// Hands the marks from position `next` on to `f(time_ns, thread, entered, name)`, oldest first,
// and moves `next` past them; returns how many were lost (overwritten before this read, or
// while it read). Stops at a mark still being written, which the next call reads.
template <class F>
std::uint64_t read_scope_marks(std::uint64_t& next, F&& f) {
    scope_mark_slot* slots = scope_marks.slots.load(std::memory_order_acquire);
    if (slots == nullptr) return 0;
    const std::uint64_t head = scope_marks.head.load(std::memory_order_acquire);
    std::uint64_t lost = 0;
    if (head - next > scope_mark_slots) {
        lost += head - scope_mark_slots - next;
        next = head - scope_mark_slots;
    }
    while (next < head) {
        scope_mark_slot& slot = slots[next & (scope_mark_slots - 1)];
        const std::uint64_t sequence = slot.sequence.load(std::memory_order_acquire);
        if (sequence != next + 1) {
            if (sequence <= next) break;  // its writer has not finished (or not begun)
            ++lost;                       // a writer a lap ahead has taken the slot
            ++next;
            continue;
        }
        const std::int64_t time = slot.time_ns.load(relaxed);
        const std::uint64_t thread_entered = slot.thread_entered.load(relaxed);
        char name[sizeof(std::uint64_t) * scope_mark_name_words];
        for (std::size_t i = 0; i < scope_mark_name_words; ++i) {
            const std::uint64_t word = slot.name[i].load(relaxed);
            std::memcpy(name + i * sizeof word, &word, sizeof word);
        }
        // Release: the field loads above stay before it.
        if (slot.sequence.fetch_add(0, std::memory_order_release) != sequence) {
            ++lost;
            ++next;
            continue;
        }
        name[sizeof name - 1] = '\0';
        f(time, static_cast<std::uint32_t>(thread_entered >> 1), (thread_entered & 1) != 0,
          static_cast<const char*>(name));
        ++next;
    }
    return lost;
}
}  // namespace detail

inline void scope_site::add(const block_usage& u) noexcept {
    using detail::relaxed;
    if (!linked_.exchange(true, std::memory_order_acq_rel)) {
        next_ = detail::scope_sites.load(relaxed);
        while (!detail::scope_sites.compare_exchange_weak(next_, this, std::memory_order_release, relaxed)) {
        }
    }
    calls_.fetch_add(1, relaxed);
    allocated_.fetch_add(u.allocated, relaxed);
    allocs_.fetch_add(u.allocs, relaxed);
    net_.fetch_add(u.net, relaxed);
    std::uint64_t seen = max_peak_.load(relaxed);
    while (u.peak > seen && !max_peak_.compare_exchange_weak(seen, u.peak, relaxed)) {
    }
}

/// A thread scope that adds its figures to `site` when it closes. Use MEMLENS_SCOPE.
class named_scope {
public:
    /// Opens a thread scope whose figures go to `site` when it closes; `site` must outlive it.
    /// While a process monitor runs, the pass is also marked on its timeline where it enters
    /// and leaves (monitor/monitor.hpp); otherwise that costs one load and a branch.
    explicit named_scope(scope_site& site) noexcept : site_(site) {
        if (detail::scope_marks_wanted()) detail::write_scope_mark(site_.name(), true);
    }
    ~named_scope() {
        site_.add(scope_.usage());
        if (detail::scope_marks_wanted()) detail::write_scope_mark(site_.name(), false);
    }
    named_scope(const named_scope&) = delete;
    named_scope& operator=(const named_scope&) = delete;

    /// The figures of this pass so far.
    block_usage usage() const noexcept { return scope_.usage(); }

private:
    scope_site& site_;
    scope scope_;
};

/// Totals per scope name, in the order names were first closed (most recent first), sites with
/// the same name added together. Thread safe; allocates the result.
inline std::vector<named_scope_stats> named_scopes() {
    std::vector<named_scope_stats> out;
    using detail::relaxed;
    // Names are found through an open-addressing table of positions in `out` (0: empty), so
    // that thousands of sites cost a pass, not a comparison of every pair.
    scope_site* const head = detail::scope_sites.load(std::memory_order_acquire);
    std::size_t sites = 0;
    for (scope_site* s = head; s; s = s->next_) ++sites;
    std::size_t capacity = 16;
    while (capacity < 2 * sites) capacity *= 2;
    std::vector<std::uint32_t> slots(capacity, 0);
    out.reserve(sites);
    for (scope_site* s = head; s; s = s->next_) {
        const std::string_view name(s->name_);
        std::uint64_t hash = 14695981039346656037ull;
        for (const char c : name) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        std::size_t at = static_cast<std::size_t>(hash) & (capacity - 1);
        named_scope_stats* entry = nullptr;
        for (; slots[at] != 0; at = (at + 1) & (capacity - 1)) {
            if (out[slots[at] - 1].name == name) {
                entry = &out[slots[at] - 1];
                break;
            }
        }
        if (!entry) {
            out.push_back({s->name_, s->file_, s->line_, s->function_});
            slots[at] = static_cast<std::uint32_t>(out.size());
            entry = &out.back();
        }
        entry->calls += s->calls_.load(relaxed);
        entry->allocated += s->allocated_.load(relaxed);
        entry->allocs += s->allocs_.load(relaxed);
        entry->net += s->net_.load(relaxed);
        const std::uint64_t peak = s->max_peak_.load(relaxed);
        if (peak > entry->max_peak) entry->max_peak = peak;
    }
    return out;
}

/// Zeroes every named scope's totals (the sites stay listed). Thread safe.
inline void reset_named_scopes() noexcept {
    using detail::relaxed;
    for (scope_site* s = detail::scope_sites.load(std::memory_order_acquire); s; s = s->next_) {
        s->calls_.store(0, relaxed);
        s->allocated_.store(0, relaxed);
        s->allocs_.store(0, relaxed);
        s->net_.store(0, relaxed);
        s->max_peak_.store(0, relaxed);
    }
}

MEMLENS_NAMESPACE_END

#define MEMLENS_DETAIL_CAT2(a, b) a##b
#define MEMLENS_DETAIL_CAT(a, b) MEMLENS_DETAIL_CAT2(a, b)

#if MEMLENS_HAS_SOURCE_LOCATION()
#define MEMLENS_DETAIL_SITE(name)                                                              \
    ::memlens::scope_site(name, ::std::source_location::current().file_name(),                 \
                          ::std::source_location::current().line(),                            \
                          ::std::source_location::current().function_name())
#else
#define MEMLENS_DETAIL_SITE(name) ::memlens::scope_site(name, __FILE__, __LINE__, __builtin_FUNCTION())
#endif

/// Measures the rest of the enclosing block as a thread scope called `name` (a string literal)
/// and adds each pass to that name's totals; see memlens::named_scopes().
#define MEMLENS_SCOPE(name)                                                                    \
    static ::memlens::scope_site MEMLENS_DETAIL_CAT(memlens_site_, __LINE__) =                 \
        MEMLENS_DETAIL_SITE(name);                                                             \
    ::memlens::named_scope MEMLENS_DETAIL_CAT(memlens_scope_, __LINE__)(                       \
        MEMLENS_DETAIL_CAT(memlens_site_, __LINE__))
