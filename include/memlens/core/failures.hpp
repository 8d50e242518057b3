// memlens/core/failures.hpp: failure injection's per-thread plan, read by the allocation hooks
// only while a plan is active: the plan folds a bit into this_thread.guard, the word the hooks
// already test on every call, so that the path without a plan does not change.
#pragma once

#include <cstddef>
#include <cstdint>

#include "settings.hpp"
#include "stacks.hpp"
#include "state.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

enum class failure_mode : std::uint8_t {
    count_only,  // fail nothing, count the allocations
    nth,         // fail allocation `first` only
    from_nth,    // fail allocation `first` and every later one
    random,      // fail each with probability `probability`, drawn from `seed`
};

struct failure_plan {
    failure_mode mode = failure_mode::count_only;
    std::uint64_t first = 0;
    double probability = 0;
    std::uint64_t rng = 0;
    // Allocations seen and failed while the plan was active.
    std::uint64_t seen = 0;
    std::uint64_t failed = 0;
    // The first failed allocation: its number, size and stack (innermost first).
    std::uint64_t failed_number = 0;
    std::size_t failed_size = 0;
    std::size_t depth = 0;
    std::uintptr_t frames[max_stack_depth] = {};
    // The last allocation was failed by the plan: the throwing operator new then throws at once,
    // without the new-handler loop that a real exhaustion runs.
    bool just_failed = false;
    // The next allocation is the exception object that the throwing operator new is about to
    // throw: memlens's own, neither counted by the plan nor failed (see throw_injected_failure).
    bool exempt_next = false;
    failure_plan* outer = nullptr;
};

inline std::uint64_t failure_random(std::uint64_t& state) noexcept {
    // splitmix64: small, fast, and the same sequence for the same seed on every platform.
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Whether `plan` fails its next allocation, of `size` bytes; notes the first failure's stack.
MEMLENS_NOINLINE inline bool plan_fails(failure_plan& plan, std::size_t size) noexcept {
    const std::uint64_t n = ++plan.seen;
    bool fail = false;
    switch (plan.mode) {
    case failure_mode::count_only: break;
    case failure_mode::nth: fail = n == plan.first; break;
    case failure_mode::from_nth: fail = n >= plan.first; break;
    case failure_mode::random:
        fail = static_cast<double>(failure_random(plan.rng) >> 11) * 0x1.0p-53 < plan.probability;
        break;
    }
    plan.just_failed = fail;
    if (!fail) return false;
    if (plan.failed++ == 0) {
        plan.failed_number = n;
        plan.failed_size = size;
        ++this_thread.guard;
        plan.depth = capture_stack(plan.frames, settings.stack_depth.load(relaxed),
                                   settings.method.load(relaxed));
        --this_thread.guard;
    }
    return true;
}

// Called by the hooks when this_thread.guard is `guard_failing` alone: whether the allocation of
// `size` bytes must fail. Allocations inside memlens::unscoped (a test framework's own work)
// are neither counted nor failed.
MEMLENS_NOINLINE inline bool fail_this_allocation(std::size_t size) noexcept {
    thread_state& ts = this_thread;
    failure_plan* plan = ts.failures;
    if (!plan || ts.excluded != 0) return false;
    return plan_fails(*plan, size);
}

// Whether the last allocation of this thread was failed by its plan; clears the answer.
inline bool take_injected_failure() noexcept {
    failure_plan* plan = this_thread.failures;
    if (!plan || !plan->just_failed) return false;
    plan->just_failed = false;
    return true;
}

// Whether the allocation the hooks are making is the one exempted by throw_injected_failure;
// clears the exemption.
inline bool take_exempt_allocation() noexcept {
    failure_plan* plan = this_thread.failures;
    if (!plan || !plan->exempt_next) return false;
    plan->exempt_next = false;
    return true;
}

// Exempts the calling thread's next allocation from its plan.
inline void exempt_next_allocation() noexcept {
    if (failure_plan* plan = this_thread.failures) plan->exempt_next = true;
}

inline void push_failure_plan(failure_plan& plan) noexcept {
    thread_state& ts = this_thread;
    plan.outer = ts.failures;
    if (!plan.outer) ts.guard |= guard_failing;
    ts.failures = &plan;
}

inline void pop_failure_plan(failure_plan& plan) noexcept {
    thread_state& ts = this_thread;
    if (ts.failures != &plan) return;
    ts.failures = plan.outer;
    if (!plan.outer) ts.guard &= ~guard_failing;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
