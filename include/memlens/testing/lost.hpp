// memlens/testing/lost.hpp: a test check that a block loses nothing by memcheck's rules
// (definitely, indirectly or possibly lost), while what it leaves still reachable (a cache, a
// singleton) passes. Kept apart from checks.hpp: it stops the world and pulls in the scan.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>

#include "../view/leak_kinds.hpp"
#include "checks.hpp"

MEMLENS_NAMESPACE_BEGIN

namespace detail {

// The rows of `all` that `keep` accepts, with totals of their own.
template <class Keep>
leak_kinds kept_rows(const leak_kinds& all, Keep&& keep) {
    leak_kinds out;
    out.blocks.stacks = all.blocks.stacks;
    out.blocks.domain_names = all.blocks.domain_names;
    out.threads = all.threads;
    out.unstopped = all.unstopped;
    for (std::size_t i = 0; i < all.blocks.allocations.size(); ++i) {
        const live_allocation& a = all.blocks.allocations[i];
        if (!keep(a)) continue;
        out.blocks.allocations.push_back(a);
        out.reach.push_back(all.reach[i]);
        kind_figures& f = out.totals[static_cast<int>(all.reach[i].kind)];
        f.bytes += a.size;
        ++f.blocks;
    }
    return out;
}

}  // namespace detail

/// Passes when nothing the block leaves alive is lost: no block it allocated is definitely,
/// indirectly or possibly lost when it returns (classify_leaks()); blocks it leaves still
/// reachable pass. The block runs under a leak_check, with the calling thread's allocations
/// (or every thread's with scope_kind::process); a failure gives memcheck's summary of the
/// block's blocks and the sites of what was lost. Stops the world once, after the block.
template <class F>
check_result check_nothing_lost(F&& block, check_options options = {}, const reach_options& reach = {}) {
    if (options.warm_up) block();
    const leak_check sites(options.kind);
    options.warm_up = false;
    const block_usage u = detail::run_measured(block, options);
    const snapshot left = sites.leaked();
    const leak_kinds all = classify_leaks(reach);
    detail::guard quiet;
    std::unordered_set<std::uintptr_t> mine;
    for (const live_allocation& a : left.allocations) mine.insert(a.address);
    const leak_kinds kinds =
        detail::kept_rows(all, [&](const live_allocation& a) { return mine.count(a.address) != 0; });
    const kind_figures lost = kinds.lost();
    check_result r = detail::make_result(
        lost.blocks == 0, u, "nothing lost (definitely, indirectly or possibly; still reachable passes)");
    if (lost.blocks != 0 || !kinds.unstopped.empty()) r.message += "\n" + describe(kinds, 5);
    return r;
}

MEMLENS_NAMESPACE_END
