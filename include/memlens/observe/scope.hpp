// memlens/observe/scope.hpp: RAII scopes that measure what a block allocates, for the calling
// thread or for the whole process, and measure(), which does the same for a callable.
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>

#include "../core/counters.hpp"
#include "../model/scopes.hpp"

MEMLENS_NAMESPACE_BEGIN

enum class scope_kind {
    /// Only the calling thread's events; exact, peak included. Nested thread scopes fold into
    /// their parent when they close, so a parent's peak accounts exactly for its children.
    thread,
    /// Every thread's events. Counts are exact; the peak is the process's highest live bytes
    /// during the block, less the live bytes at its start, with the lag peak_mode describes.
    process,
};

/// Measures the block it lives in. Not copyable or movable; scopes of one thread must close in
/// the reverse order they opened. Opening and closing a thread scope costs a few stores and
/// never allocates; a process scope takes a lock and reads every thread's counters.
class scope {
public:
    scope() noexcept : scope(scope_kind::thread) {}
    explicit scope(scope_kind kind) noexcept;
    ~scope();
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

    /// The figures so far (final once the scope has closed). A thread scope's figures must be
    /// read on its own thread while it is open; a process scope's on any thread.
    block_usage usage() const noexcept;

    scope_kind kind() const noexcept { return kind_; }

private:
    block_usage process_usage() const noexcept;

    scope_kind kind_;
    detail::scope_frame frame_;
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
    R value;
    block_usage usage;
};

template <>
struct measured<void> {
    block_usage usage;
};

/// Runs `f` inside a scope of `kind` and returns its result with its usage; the result is built
/// inside the scope, so what it holds counts. Exceptions from `f` propagate.
template <class F>
auto measure(F&& f, scope_kind kind = scope_kind::thread) -> measured<std::invoke_result_t<F&&>> {
    using result = std::invoke_result_t<F&&>;
    scope s(kind);
    if constexpr (std::is_void_v<result>) {
        std::invoke(std::forward<F>(f));
        return measured<void>{s.usage()};
    } else {
        return measured<result>{std::invoke(std::forward<F>(f)), s.usage()};
    }
}

namespace detail {

inline block_usage to_usage(const scope_frame& f) noexcept {
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
inline void fold_into(scope_frame& parent, const scope_frame& child) noexcept {
    if (parent.net + child.peak > parent.peak) parent.peak = parent.net + child.peak;
    parent.net += child.net;
    parent.allocated += child.allocated;
    parent.freed += child.freed;
    parent.allocs += child.allocs;
    parent.frees += child.frees;
}

}  // namespace detail

inline scope::scope(scope_kind kind) noexcept : kind_(kind) {
    using namespace detail;
    if (kind_ == scope_kind::thread) {
        frame_.parent = this_thread.frame;
        this_thread.frame = &frame_;
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
    scope_frame*& top = this_thread.frame;
    if (top == &frame_) {
        top = frame_.parent;
    } else {
        // Closed out of order: unlink it and let the scope opened inside it fold upward.
        for (scope_frame* f = top; f; f = f->parent) {
            if (f->parent == &frame_) {
                f->parent = frame_.parent;
                break;
            }
        }
    }
    if (frame_.parent) fold_into(*frame_.parent, frame_);
    final_ = to_usage(frame_);
    open_ = false;
}

inline block_usage scope::usage() const noexcept {
    using namespace detail;
    if (!open_) return final_;
    if (kind_ == scope_kind::process) return process_usage();
    // Fold the scopes still open inside this one, innermost first.
    scope_frame total{};
    bool inside = false;
    for (scope_frame* f = this_thread.frame; f; f = f->parent) {
        if (f == &frame_) {
            inside = true;
            break;
        }
    }
    if (!inside) return to_usage(frame_);
    for (scope_frame* f = this_thread.frame;; f = f->parent) {
        scope_frame outer = *f;
        fold_into(outer, total);
        total = outer;
        if (f == &frame_) break;
    }
    return to_usage(total);
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
