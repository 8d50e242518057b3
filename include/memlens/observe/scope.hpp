// memlens/observe/scope.hpp: RAII scopes that measure what a block allocates, for the calling
// thread or for the whole process, and measure(), which does the same for a callable.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "../core/counters.hpp"
#include "../model/scopes.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Which events a scope (or measure(), or a check) counts.
enum class scope_kind {
    /// Only the calling thread's events; exact, peak included. Nested thread scopes fold into
    /// their parent when they close, so a parent's peak accounts exactly for its children.
    thread,
    /// Every thread's events. Counts are exact; the peak is the process's highest live bytes
    /// during the block, less the live bytes at its start, with the lag peak_mode describes.
    process,
};

/// Measures the block it lives in. Not copyable or movable; scopes of one thread should close in
/// the reverse order they opened (one closed early folds into its parent). A thread scope may
/// be destroyed on another thread, or after its thread has exited: its figures then stop there.
/// At most 64 thread scopes are open on one thread at once; more count nothing and say so.
/// Opening and closing a thread scope costs a few stores and never allocates; a process scope
/// takes a lock and reads every thread's counters.
class scope {
public:
    /// Starts measuring the calling thread from here.
    scope() noexcept : scope(scope_kind::thread) {}
    /// Starts measuring from here the calling thread (`thread`) or every thread (`process`).
    explicit scope(scope_kind kind) noexcept;
    ~scope();
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

    /// The figures so far (final once the scope has closed). An open thread scope read on
    /// another thread gives its own figures without those of the scopes open inside it.
    block_usage usage() const noexcept;

    /// What the scope counts, as constructed.
    scope_kind kind() const noexcept { return kind_; }

private:
    block_usage process_usage() const noexcept;
    bool on_own_thread() const noexcept;

    scope_kind kind_;
    // In the opening thread's record; null when none could be had.
    detail::scope_frame* frame_ = nullptr;
    detail::thread_record* owner_ = nullptr;
    std::uint64_t opening_ = 0;
    detail::process_window window_;
    detail::raw_figures start_{};
    bool open_ = true;
    block_usage final_{};
};

/// While alive, the calling thread's events are not charged to its open scopes or its leak
/// checks (the process figures and profiles still count them). Test-framework adapters use it
/// around the framework's own work.
class unscoped {
public:
    unscoped() noexcept : saved_(detail::this_thread.frame) {
        detail::this_thread.frame = nullptr;
        ++detail::this_thread.excluded;
    }
    ~unscoped() {
        --detail::this_thread.excluded;
        detail::this_thread.frame = saved_;
    }
    unscoped(const unscoped&) = delete;
    unscoped& operator=(const unscoped&) = delete;

private:
    detail::scope_frame* saved_;
};

/// A callable's result together with what it allocated.
template <class R>
struct measured {
    R value;            ///< what the callable returned
    block_usage usage;  ///< what it allocated, the building of `value` included
};

/// What a callable returning void allocated.
template <>
struct measured<void> {
    block_usage usage;  ///< what it allocated
};

/// Runs `f` inside a scope of `kind` and returns its result with its usage; the result is built
/// inside the scope, so what it holds counts. Exceptions from `f` propagate.
template <class F>
auto measure(F&& f, scope_kind kind = scope_kind::thread) -> measured<std::invoke_result_t<F&&>> {
    using result = std::invoke_result_t<F&&>;
    scope s(kind);
    if constexpr (std::is_void_v<result>) {
        std::forward<F>(f)();
        return measured<void>{s.usage()};
    } else {
        return measured<result>{std::forward<F>(f)(), s.usage()};
    }
}

namespace detail {

inline block_usage to_usage(const frame_figures& f) noexcept {
    block_usage u;
    u.allocated = f.allocated;
    u.freed = f.freed;
    u.net = f.net;
    u.peak = f.peak > 0 ? static_cast<std::uint64_t>(f.peak) : 0;
    u.allocs = f.allocs;
    u.frees = f.frees;
    return u;
}

// What the parent saw before the child opened, followed by everything the child saw.
inline void fold_into(frame_figures& parent, const frame_figures& child) noexcept {
    if (parent.net + child.peak > parent.peak) parent.peak = parent.net + child.peak;
    parent.net += child.net;
    parent.allocated += child.allocated;
    parent.freed += child.freed;
    parent.allocs += child.allocs;
    parent.frees += child.frees;
}

inline void fold_into(scope_frame& parent, const frame_figures& child) noexcept {
    frame_figures f = parent.figures();
    fold_into(f, child);
    parent.set(f);
}

// Owner only: takes it off the thread's list of open frames, wherever it is, and folds it into
// the frame it was opened in, so that scopes opened inside it fold upward past it.
inline void unlink_frame(scope_frame& frame) noexcept {
    for (scope_frame** link = &this_thread.frame; *link; link = &(*link)->parent) {
        if (*link == &frame) {
            *link = frame.parent;
            break;
        }
    }
    if (frame.parent) fold_into(*frame.parent, frame.figures());
}

// Owner only: frees the frames whose scopes another thread has ended.
inline void unlink_ended_frames() noexcept {
    for (scope_frame* f = this_thread.frame; f;) {
        scope_frame* parent = f->parent;
        if (f->opening.load(std::memory_order_acquire) & frame_ended_elsewhere) {
            unlink_frame(*f);
            f->opening.store(0, std::memory_order_release);
        }
        f = parent;
    }
}

MEMLENS_DETAIL_SHARED inline std::atomic<bool> too_many_scopes_reported{false};

// Owner only: a free frame of the thread's record, opened; null when there is none.
inline scope_frame* open_frame(std::uint64_t& opening) noexcept {
    if (this_thread.exited) return nullptr;
    thread_record* record = this_thread.record ? this_thread.record : acquire_record();
    if (record->shared) return nullptr;
    unlink_ended_frames();
    for (scope_frame& f : record->scope_frames) {
        if (f.opening.load(std::memory_order_acquire) != 0) continue;
        f.set({});
        f.parent = this_thread.frame;
        opening = core.scope_openings.fetch_add(1, relaxed) + 1;
        f.opening.store(opening, std::memory_order_release);
        this_thread.frame = &f;
        return &f;
    }
    if (!too_many_scopes_reported.exchange(true, relaxed)) {
        report_error("more than 64 thread scopes are open on one thread; the newest count nothing");
    }
    return nullptr;
}

}  // namespace detail

inline scope::scope(scope_kind kind) noexcept : kind_(kind) {
    using namespace detail;
    if (kind_ == scope_kind::thread) {
        frame_ = open_frame(opening_);
        owner_ = this_thread.record;
        return;
    }
    guard quiet;
    lock_guard hold(core.lock);
    start_ = read_figures(all_slot);
    const std::int64_t now = start_.current();
    window_.high.store(now, relaxed);
    window_.next = core.windows;
    if (core.windows) core.windows->prev = &window_;
    core.windows = &window_;
    // Counted first, so that a thread raising the peak without the lock sees the window.
    core.process_windows.fetch_add(1, std::memory_order_seq_cst);
    if (now < core.slots[all_slot].trigger.load(relaxed)) core.slots[all_slot].trigger.store(now, relaxed);
    // A lower trigger: every thread must recompute how far it may go without looking.
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
}

inline scope::~scope() {
    using namespace detail;
    if (kind_ == scope_kind::process) {
        final_ = process_usage();
        guard quiet;
        lock_guard hold(core.lock);
        if (window_.prev) window_.prev->next = window_.next;
        else core.windows = window_.next;
        if (window_.next) window_.next->prev = window_.prev;
        core.process_windows.fetch_sub(1, std::memory_order_seq_cst);
        std::int64_t trigger = core.slots[all_slot].peak.load(relaxed);
        const std::int64_t low = lowest_window_locked();
        if (low < trigger) trigger = low;
        core.slots[all_slot].trigger.store(trigger, relaxed);
        open_ = false;
        return;
    }
    open_ = false;
    if (!frame_) return;
    if (on_own_thread()) {
        unlink_frame(*frame_);
        final_ = to_usage(frame_->figures());
        frame_->opening.store(0, std::memory_order_release);
        unlink_ended_frames();
        return;
    }
    // Ended elsewhere: the owner, or the next thread to take its record, frees the frame.
    std::uint64_t expected = opening_;
    if (frame_->opening.compare_exchange_strong(expected, opening_ | frame_ended_elsewhere,
                                                std::memory_order_acq_rel)) {
        final_ = to_usage(frame_->figures());
    } else if (expected == (opening_ | frame_orphaned)) {
        final_ = to_usage(frame_->figures());
        frame_->opening.store(0, std::memory_order_release);
    }
}

inline bool scope::on_own_thread() const noexcept {
    return detail::this_thread.record == owner_ &&
           frame_->opening.load(std::memory_order_acquire) == opening_;
}

inline block_usage scope::usage() const noexcept {
    using namespace detail;
    if (!open_) return final_;
    if (kind_ == scope_kind::process) return process_usage();
    if (!frame_) return {};
    if (!on_own_thread()) return to_usage(frame_->figures());
    // Fold the scopes still open inside this one, innermost first.
    frame_figures total{};
    for (scope_frame* f = this_thread.frame; f; f = f->parent) {
        frame_figures outer = f->figures();
        fold_into(outer, total);
        total = outer;
        if (f == frame_) return to_usage(total);
    }
    return to_usage(frame_->figures());
}

inline block_usage scope::process_usage() const noexcept {
    using namespace detail;
    const raw_figures now = read_figures(all_slot);
    block_usage u;
    u.allocated = now.allocated - start_.allocated;
    u.freed = now.freed - start_.freed;
    u.allocs = now.allocs - start_.allocs;
    u.frees = now.frees - start_.frees;
    u.net = static_cast<std::int64_t>(u.allocated) - static_cast<std::int64_t>(u.freed);
    std::int64_t high = window_.high.load(relaxed);
    if (now.current() > high) high = now.current();
    const std::int64_t rise = high - start_.current();
    u.peak = rise > 0 ? static_cast<std::uint64_t>(rise) : 0;
    return u;
}

MEMLENS_NAMESPACE_END
