// memlens/testing/failures.hpp: failure injection for tests of exception safety: a scope that
// makes the calling thread's Nth, every from the Nth, or random allocations fail, a
// std::pmr::memory_resource that does the same over an upstream, and a driver that reruns a
// block with each of its allocations failing in turn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory_resource>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "../core/failures.hpp"
#include "../detail/format.hpp"
#include "../observe/scope.hpp"
#include "../observe/symbols.hpp"
#include "../sources/heap.hpp"
#include "checks.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Which allocations fail: numbered from 1 in the order the thread (or resource) makes them.
class failure_policy {
public:
    /// Fails nothing; the allocations are only counted.
    static failure_policy none() noexcept { return failure_policy(detail::failure_mode::count_only, 0, 0, 0); }
    /// Fails allocation `n` only (n >= 1; 0 fails nothing).
    static failure_policy nth(std::uint64_t n) noexcept { return failure_policy(detail::failure_mode::nth, n, 0, 0); }
    /// Fails allocation `n` and every later one, as memory that runs out and stays out.
    static failure_policy from_nth(std::uint64_t n) noexcept {
        return failure_policy(n == 0 ? detail::failure_mode::count_only : detail::failure_mode::from_nth, n, 0, 0);
    }
    /// Fails each allocation with probability `p` (clamped to [0, 1]), drawn from a generator
    /// seeded with `seed`: the same seed fails the same allocations of the same block.
    static failure_policy random(double p, std::uint64_t seed) noexcept {
        return failure_policy(detail::failure_mode::random, 0, p < 0 ? 0 : (p > 1 ? 1 : p), seed);
    }

private:
    friend class fail_allocations;
    friend class failing_resource;
    failure_policy(detail::failure_mode m, std::uint64_t n, double p, std::uint64_t seed) noexcept
        : mode_(m), first_(n), probability_(p), seed_(seed) {}
    void apply(detail::failure_plan& plan) const noexcept {
        plan.mode = mode_;
        plan.first = first_;
        plan.probability = probability_;
        plan.rng = seed_;
    }
    detail::failure_mode mode_;
    std::uint64_t first_;
    double probability_;
    std::uint64_t seed_;
};

namespace detail {

// The frames of a failed allocation as text, one per line: from the first frame outside memlens
// and the allocation functions up to a frame of memlens again (the driver that ran the block).
inline std::string describe_failure_stack(const failure_plan& plan, std::size_t depth = 12) {
    if (plan.depth == 0) return "    (no stack)\n";
    const std::vector<frame_info> frames =
        symbolize(std::vector<std::uintptr_t>(plan.frames, plan.frames + plan.depth));
    std::string out;
    // The malloc family, as the preload library replaces it.
    static const char* const allocation_functions[] = {"malloc", "calloc", "realloc", "reallocarray",
                                                       "posix_memalign", "aligned_alloc", "memalign",
                                                       "valloc", "pvalloc"};
    const auto allocates = [](const std::string& name) {
        if (name.find("memlens::") != std::string::npos || name.rfind("operator new", 0) == 0 ||
            name.rfind("std::pmr::memory_resource::", 0) == 0) {
            return true;
        }
        for (const char* f : allocation_functions) {
            if (name == f) return true;
        }
        return false;
    };
    bool inside = true;
    std::size_t shown = 0;
    for (const frame_info& f : frames) {
        const std::string& name = f.function;
        if (inside && allocates(name)) continue;
        // The block's own frames end where memlens's driver called it.
        if (!inside && name.find("memlens::") != std::string::npos) break;
        inside = false;
        if (shown++ == depth) break;
        out += "    " + f.describe(name_form::brief) + "\n";
    }
    return out.empty() ? "    (no stack)\n" : out;
}

}  // namespace detail

/// While alive, fails the calling thread's allocations that `policy` picks: the throwing forms
/// of operator new throw std::bad_alloc (without calling the new-handler), the nothrow forms
/// return null, and where memlens interposes the malloc family (the preload library) its
/// functions fail as C says: null and errno ENOMEM, the old block kept by realloc, ENOMEM
/// returned by posix_memalign. Allocations inside a test framework's own assertion
/// code (memlens::unscoped, as the Catch2 and GoogleTest adapters arrange) are neither counted
/// nor failed, nor are memlens's own. Needs memlens's operator new (hooks_installed()). Scopes
/// nest: the innermost decides. Does not allocate; the first failure captures its stack.
/// Costs the hooks nothing while no scope is alive.
class fail_allocations {
public:
    /// Starts failing what `policy` picks on the calling thread.
    explicit fail_allocations(failure_policy policy) noexcept {
        policy.apply(plan_);
        detail::push_failure_plan(plan_);
    }
    ~fail_allocations() { detail::pop_failure_plan(plan_); }
    fail_allocations(const fail_allocations&) = delete;
    fail_allocations& operator=(const fail_allocations&) = delete;

    /// Allocations this scope has seen, failed or not.
    std::uint64_t allocations() const noexcept { return plan_.seen; }
    /// Allocations this scope has failed.
    std::uint64_t failures() const noexcept { return plan_.failed; }
    /// The number of the first failed allocation, 0 when none failed.
    std::uint64_t first_failure() const noexcept { return plan_.failed_number; }
    /// The size in bytes the first failed allocation asked for, 0 when none failed.
    std::size_t first_failure_size() const noexcept { return plan_.failed_size; }
    /// The first failed allocation's stack, innermost frame first, resolved; empty when none
    /// failed. Allocates; call it outside the scope's failing reach or with a policy that is done.
    std::vector<frame_info> first_failure_stack() const {
        detail::guard quiet;
        return symbolize(std::vector<std::uintptr_t>(plan_.frames, plan_.frames + plan_.depth));
    }
    /// The first failed allocation's stack as text, from the first frame outside memlens and the
    /// allocation functions, one indented frame a line. Allocates (unfailed and uncounted).
    std::string describe_first_failure() const {
        detail::guard quiet;
        return detail::describe_failure_stack(plan_);
    }

private:
    detail::failure_plan plan_;
};

/// A std::pmr::memory_resource that fails the allocations `policy` picks (by throwing
/// std::bad_alloc, as memory resources do) and forwards the others to `upstream`, which must
/// outlive it. Counts on its own, whatever thread calls: one thread at a time, as the standard's
/// unsynchronized resources. Equal only to itself.
class failing_resource : public std::pmr::memory_resource {
public:
    /// Fails what `policy` picks among this resource's allocations; the rest go to `upstream`.
    explicit failing_resource(failure_policy policy,
                              std::pmr::memory_resource* upstream = std::pmr::get_default_resource()) noexcept
        : upstream_(upstream) {
        policy.apply(plan_);
    }

    /// Allocations asked of this resource, failed or not.
    std::uint64_t allocations() const noexcept { return plan_.seen; }
    /// Allocations this resource failed.
    std::uint64_t failures() const noexcept { return plan_.failed; }
    /// The number of the first failed allocation, 0 when none failed.
    std::uint64_t first_failure() const noexcept { return plan_.failed_number; }
    /// The first failed allocation's stack as text, one indented frame a line. Allocates.
    std::string describe_first_failure() const {
        detail::guard quiet;
        return detail::describe_failure_stack(plan_);
    }
    /// The resource the allocations that do not fail come from.
    std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        if (detail::plan_fails(plan_, bytes)) throw std::bad_alloc();
        return upstream_->allocate(bytes, alignment);
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
        upstream_->deallocate(p, bytes, alignment);
    }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }

    detail::failure_plan plan_;
    std::pmr::memory_resource* upstream_;
};

/// What for_each_allocation_failure saw.
struct failure_sweep {
    bool passed = false;           ///< every run ended as it should and, when asked, freed all
    std::uint64_t allocations = 0; ///< allocations of the first, unfailed run
    std::uint64_t runs = 0;        ///< runs with one allocation failing: allocations, unless stopped
    std::uint64_t escaped = 0;     ///< runs whose std::bad_alloc reached the driver
    std::uint64_t handled = 0;     ///< runs whose failure the block handled, returning normally
    std::uint64_t missed = 0;      ///< runs that made fewer allocations than the failing number
    std::uint64_t leaking = 0;     ///< runs that did not free all they allocated (check_leaks)
    std::string message;           ///< the figures, and what went wrong with the failing stack

    /// `passed`.
    explicit operator bool() const noexcept { return passed; }
};

/// How for_each_allocation_failure runs.
struct failure_sweep_options {
    /// Fail each run whose block does not free what it allocated on the calling thread: an
    /// exception path that leaks.
    bool check_leaks = true;
    /// Stop after this many failing runs (0: one for each allocation of the first run).
    std::uint64_t max_runs = 0;
};

namespace detail {

template <class F, class Verify>
failure_sweep sweep_failures(F& block, Verify& verify, const failure_sweep_options& options) {
    failure_sweep out;
    {
        fail_allocations counting(failure_policy::none());
        block();
        out.allocations = counting.allocations();
    }
    verify(std::uint64_t{0});
    std::uint64_t total = out.allocations;
    if (options.max_runs != 0 && options.max_runs < total) total = options.max_runs;
    std::string problem;
    for (std::uint64_t n = 1; n <= total && problem.empty(); ++n) {
        ++out.runs;
        block_usage usage;
        bool escaped = false;
        std::string other;
        std::uint64_t failed = 0;
        std::string failed_at;
        {
            fail_allocations failing(failure_policy::nth(n));
            {
                scope measured(scope_kind::thread);
                try {
                    block();
                } catch (const std::bad_alloc&) {
                    escaped = true;
                } catch (const std::exception& e) {
                    guard quiet;
                    other = std::string("std::exception (") + e.what() + ")";
                } catch (...) {
                    guard quiet;
                    other = "an exception not derived from std::exception";
                }
                usage = measured.usage();
            }
            failed = failing.failures();
            guard quiet;
            failed_at = "run " + std::to_string(n) + " of " + std::to_string(out.allocations) +
                        " (allocation " + std::to_string(n) + ", of " +
                        describe_bytes(failing.first_failure_size()) + ", failed at\n" +
                        failing.describe_first_failure() + ")";
        }
        if (failed == 0) {
            ++out.missed;
        } else if (escaped) {
            ++out.escaped;
        } else if (other.empty()) {
            ++out.handled;
        }
        if (!other.empty()) {
            problem = failed_at + ": " + other + " escaped the block instead of std::bad_alloc";
        } else if (options.check_leaks && (usage.net != 0 || usage.allocs != usage.frees)) {
            ++out.leaking;
            problem = failed_at + ": the block leaked " + describe_signed_bytes(usage.net) + " in " +
                      std::to_string(usage.allocs > usage.frees ? usage.allocs - usage.frees : 0) +
                      plural(usage.allocs > usage.frees ? usage.allocs - usage.frees : 0, " allocation", " allocations");
        }
        if (problem.empty()) verify(n);
    }
    guard quiet;
    out.passed = problem.empty();
    out.message = std::string(out.passed ? "memlens: as expected, " : "memlens: expected ") +
                  "every allocation's failure to leave the block safely; measured: " +
                  std::to_string(out.allocations) + " allocations, " + std::to_string(out.runs) +
                  " failing runs: " + std::to_string(out.escaped) + " threw std::bad_alloc, " +
                  std::to_string(out.handled) + " handled the failure, " + std::to_string(out.missed) +
                  " made fewer allocations";
    if (!out.passed) out.message += "\n" + problem;
    if (out.allocations == 0 && !hooks_installed()) {
        out.passed = false;
        out.message = "memlens: nothing could count this block's heap allocations: the program has no "
                      "memlens operator new; include <memlens/hooks.hpp> in exactly one source file "
                      "of the test program";
    }
    return out;
}

}  // namespace detail

/// Runs `block` once to count its allocations on the calling thread, then once more for each
/// of them with that one allocation failing (as fail_allocations(failure_policy::nth(n))),
/// catching the std::bad_alloc; `verify(n)` runs after each run (n = 0 after the unfailed one),
/// where a test checks its invariants. A run fails the sweep when an exception other than
/// std::bad_alloc escapes, or (check_leaks) when the block does not free what it allocated; the
/// message then names the run and the failed allocation's stack. The sweep stops at the first
/// such run. The block must do the same work each time it runs (reset its state itself).
template <class F, class Verify>
failure_sweep for_each_allocation_failure(F&& block, Verify&& verify, failure_sweep_options options = {}) {
    return detail::sweep_failures(block, verify, options);
}

/// for_each_allocation_failure without a verifying step.
template <class F>
failure_sweep for_each_allocation_failure(F&& block, failure_sweep_options options = {}) {
    auto nothing = [](std::uint64_t) {};
    return detail::sweep_failures(block, nothing, options);
}

namespace detail {

// A sweep as a check's result, for the framework adapters.
inline check_result sweep_result(const failure_sweep& sweep) {
    check_result r;
    r.passed = sweep.passed;
    r.message = sweep.message;
    return r;
}

}  // namespace detail

MEMLENS_NAMESPACE_END
