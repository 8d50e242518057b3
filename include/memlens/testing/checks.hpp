// memlens/testing/checks.hpp: framework-neutral memory checks for unit tests: a block leaks
// nothing (on its first or its second run), keeps no site growing over repeated runs, stays
// under a peak, makes exactly or at most N allocations, allocates at most N bytes, or allocates
// nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <utility>

#include "../detail/format.hpp"
#include "../observe/scope.hpp"
#include "../observe/sites.hpp"
#include "../sources/heap.hpp"
#include "../view/snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// How a check measures its block.
struct check_options {
    /// Thread (default: only the calling thread's events) or process (every thread's).
    scope_kind kind = scope_kind::thread;
    /// Run the block once, unmeasured, before the measured run, so that one-time set-up
    /// (lazy statics, first-use caches, capacity growth) is not charged to it.
    bool warm_up = false;

    /// These options with warm_up set.
    check_options with_warm_up() const noexcept {
        check_options o = *this;
        o.warm_up = true;
        return o;
    }
};

/// The outcome of a check: whether it passed, what was measured, and a message that shows the
/// measured figures beside the limit.
struct check_result {
    bool passed = false;  ///< whether the measured figures kept to the limit
    block_usage usage;    ///< what the block did, as measured (the last run, after any warm-up)
    std::string message;  ///< the measured figures beside the limit, whether passed or not
    /// The snapshot behind a failure, with stacks: what a failed leak or growth check found
    /// alive. Null when the check passed or records no stacks; the Catch2 and GoogleTest
    /// adapters write it next to the test's output (testing/failure_files.hpp).
    std::shared_ptr<const snapshot> profile;

    /// `passed`, so that `if (auto r = check_...(...))` reads naturally.
    explicit operator bool() const noexcept { return passed; }
};

namespace detail {

template <class F>
block_usage run_measured(F& block, const check_options& options) {
    if (options.warm_up) block();
    scope s(options.kind);
    block();
    return s.usage();
}

inline std::string describe_usage(const block_usage& u) {
    return "allocated " + describe_bytes(u.allocated) + " in " + std::to_string(u.allocs) +
           (u.allocs == 1 ? " allocation" : " allocations") + ", freed " + describe_bytes(u.freed) +
           " in " + std::to_string(u.frees) + (u.frees == 1 ? " free" : " frees") + ", net " +
           describe_signed_bytes(u.net) + ", peak " + describe_bytes(u.peak);
}

inline check_result make_result(bool passed, const block_usage& u, const std::string& expectation) {
    check_result r;
    r.passed = passed;
    r.usage = u;
    r.message = std::string(passed ? "memlens: as expected, " : "memlens: expected ") +
                expectation + "; measured: " + describe_usage(u);
    // A block that counted nothing passes every check; without the hooks it could not have.
    if (u.allocs == 0 && u.frees == 0 && !hooks_installed()) {
        r.passed = false;
        r.message = "memlens: nothing could count this block's heap allocations: the program has no "
                    "memlens operator new; include <memlens/hooks.hpp> in exactly one source file "
                    "of the test program (expected " +
                    expectation + ")";
    }
    return r;
}

// A limit's check: passes when `measured` is at most `limit`, and says by how much it is over.
inline check_result at_most(std::uint64_t measured, std::uint64_t limit, const block_usage& u,
                            const std::string& expectation, bool bytes) {
    const auto amount = [bytes](std::uint64_t n) {
        return bytes ? describe_bytes(n) : std::to_string(n);
    };
    check_result r = make_result(measured <= limit, u, expectation);
    if (measured > limit && r.message.rfind("memlens: expected ", 0) == 0) {
        r.message += "; " + amount(measured - limit) + " over the limit";
    }
    return r;
}

inline std::string count_of(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + plural(n, one, many);
}

}  // namespace detail

/// Passes when the block frees everything it allocates: net 0 bytes and as many frees as
/// allocations, or when a suppression rule (active_suppressions()) matches the stack of all it
/// left alive. The block runs under a leak_check, so a failure lists the largest sites of what
/// it left alive, with their stacks, and the suppressed ones with the rule that matched each.
template <class F>
check_result check_no_leaks(F&& block, check_options options = {}) {
    if (options.warm_up) block();
    const leak_check sites(options.kind);
    options.warm_up = false;
    const block_usage u = detail::run_measured(block, options);
    const bool balanced = u.net == 0 && u.allocs == u.frees;
    // Taken before the message exists, which would otherwise be one of the block's leaks.
    snapshot left = balanced ? snapshot{} : sites.leaked();
    const leak_report leaked = balanced ? leak_report{} : leaks(left);
    // What is left alive passes when every stack of it is suppressed (active_suppressions()).
    const bool suppressed_only = !balanced && leaked.count == 0 && leaked.suppressed_count != 0;
    check_result r = detail::make_result(balanced || suppressed_only, u,
                                         "no leak (net 0 bytes, frees equal to allocations)");
    if (leaked.count != 0 || leaked.suppressed_count != 0) r.message += "\n" + leaked.describe(5);
    if (!r.passed && leaked.count != 0) r.profile = std::make_shared<const snapshot>(std::move(left));
    return r;
}

/// check_no_leaks of the block's second run: the first warms caches, lazy statics and pools,
/// and only what the second leaves alive fails the check (check_options::with_warm_up).
template <class F>
check_result check_no_leaks_after_warm_up(F&& block, check_options options = {}) {
    return check_no_leaks(block, options.with_warm_up());
}

namespace detail {

// A site's live bytes after each of the runs of check_no_growth.
struct growing_site {
    std::string site;
    std::vector<std::uint64_t> bytes;
};

inline std::string describe_growth(const growing_site& g) {
    std::string out = "  " + g.site + ": live " ;
    for (std::size_t i = 0; i < g.bytes.size(); ++i) {
        out += (i ? ", " : "") + describe_bytes(g.bytes[i]);
    }
    const std::uint64_t first = g.bytes.front();
    const std::uint64_t last = g.bytes.back();
    const std::uint64_t per_run = g.bytes.size() > 1 ? (last - first) / (g.bytes.size() - 1) : last;
    return out + " after runs 1.." + std::to_string(g.bytes.size()) + " (+" + describe_bytes(per_run) +
           " a run)";
}

}  // namespace detail

/// Runs the block `runs` times (at least 2) and passes unless some site's live bytes, counted
/// from before the first run, grow on every run: a leak that a cache or a list keeps reachable,
/// which check_no_leaks would see only as a one-run difference. A site is the first frame outside
/// memlens and the standard library (group_by::site); a failure names each growing site with
/// its live bytes after each run and the growth a run. Records every allocation with its stack
/// while it runs (as leak_check), and symbolizes after each run: slow, for tests.
template <class F>
check_result check_no_growth(std::size_t runs, F&& block, check_options options = {}) {
    using namespace detail;
    const std::string expectation = "no site whose live bytes grow on each of " + std::to_string(runs) + " runs";
    if (runs < 2) {
        check_result r;
        r.message = "memlens: check_no_growth needs at least 2 runs to see growth, got " + std::to_string(runs);
        return r;
    }
    const leak_check sites(options.kind);
    std::map<std::string, std::vector<std::uint64_t>> live;
    snapshot last;
    block_usage u;
    for (std::size_t run = 0; run < runs; ++run) {
        {
            scope s(options.kind);
            block();
            u = s.usage();
        }
        guard quiet;
        last = sites.leaked();
        for (const statistic& st : statistics(last, group_by::site)) {
            std::vector<std::uint64_t>& bytes = live[st.key];
            bytes.resize(run, 0);
            bytes.push_back(st.bytes);
        }
    }
    guard quiet;
    std::vector<growing_site> growing;
    for (auto& entry : live) {
        std::vector<std::uint64_t>& bytes = entry.second;
        bytes.resize(runs, 0);
        bool grew = bytes[0] > 0;
        for (std::size_t i = 1; i < runs && grew; ++i) grew = bytes[i] > bytes[i - 1];
        if (grew) growing.push_back({entry.first, bytes});
    }
    check_result r = make_result(growing.empty(), u, expectation);
    for (const growing_site& g : growing) r.message += "\n" + describe_growth(g);
    if (!r.passed) r.profile = std::make_shared<const snapshot>(std::move(last));
    return r;
}

/// Passes when the block's peak stays strictly below `limit_bytes`.
template <class F>
check_result check_peak_below(std::uint64_t limit_bytes, F&& block, check_options options = {}) {
    const block_usage u = detail::run_measured(block, options);
    return detail::make_result(u.peak < limit_bytes, u,
                               "peak below " + detail::describe_bytes(limit_bytes));
}

/// Passes when the block's peak is at most `limit_bytes` (inclusive); a failure says by how much.
template <class F>
check_result check_peak_at_most(std::uint64_t limit_bytes, F&& block, check_options options = {}) {
    const block_usage u = detail::run_measured(block, options);
    return detail::at_most(u.peak, limit_bytes, u, "peak at most " + detail::describe_bytes(limit_bytes), true);
}

/// Passes when the block allocates at most `limit_bytes` in total, whatever it frees.
template <class F>
check_result check_allocated_at_most(std::uint64_t limit_bytes, F&& block, check_options options = {}) {
    const block_usage u = detail::run_measured(block, options);
    return detail::at_most(u.allocated, limit_bytes, u,
                           "at most " + detail::describe_bytes(limit_bytes) + " allocated in total", true);
}

/// Passes when the block makes exactly `count` allocations.
template <class F>
check_result check_allocs(std::uint64_t count, F&& block, check_options options = {}) {
    const block_usage u = detail::run_measured(block, options);
    return detail::make_result(u.allocs == count, u,
                               "exactly " + detail::count_of(count, "allocation", "allocations"));
}

/// Passes when the block makes at most `count` allocations; a failure says how many too many.
template <class F>
check_result check_allocs_at_most(std::uint64_t count, F&& block, check_options options = {}) {
    const block_usage u = detail::run_measured(block, options);
    return detail::at_most(u.allocs, count, u,
                           "at most " + detail::count_of(count, "allocation", "allocations"), false);
}

/// Keeps `value` observable, so that the compiler cannot drop a new / delete pair around it (GCC
/// and Clang delete allocations whose pointers never escape; a check then measures nothing).
template <class T>
inline void keep_observable(const T& value) noexcept {
    asm volatile("" : : "r"(&value) : "memory");
}

/// Passes when the block neither allocates nor frees: for hot paths and real-time code.
template <class F>
check_result check_no_allocs(F&& block, check_options options = {}) {
    const block_usage u = detail::run_measured(block, options);
    return detail::make_result(u.allocs == 0 && u.frees == 0, u, "no allocation and no free");
}

MEMLENS_NAMESPACE_END
