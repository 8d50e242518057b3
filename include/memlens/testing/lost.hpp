// memlens/testing/lost.hpp: test checks by memcheck's leak kinds: a block loses nothing
// (definitely, indirectly or possibly lost) while what it leaves still reachable (a cache, a
// singleton) passes; and, over repeated runs, what it leaves still reachable does not grow.
// Kept apart from checks.hpp: they stop the world and pull in the scan.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

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

namespace detail {

// One site's still reachable blocks after each run of check_nothing_new_reachable, and the
// newest of them after the last run, whose holders the failure names.
struct reachable_site {
    std::vector<std::uint64_t> bytes;
    std::vector<std::uint64_t> blocks;
    std::uint64_t newest_sequence = 0;
    std::uintptr_t newest = 0;
};

inline std::string describe_reachable_growth(const std::string& site, const reachable_site& g) {
    std::string out = "  " + site + ": still reachable ";
    for (std::size_t i = 0; i < g.bytes.size(); ++i) {
        out += (i ? ", " : "") + describe_bytes(g.bytes[i]) + " in " + std::to_string(g.blocks[i]) + " " +
               plural(g.blocks[i], "block", "blocks");
    }
    const std::uint64_t per_run = (g.bytes.back() - g.bytes.front()) / (g.bytes.size() - 1);
    return out + " after runs 1.." + std::to_string(g.bytes.size()) + " (+" + describe_bytes(per_run) + " a run)";
}

}  // namespace detail

/// The growth variant of check_nothing_lost: runs the block `runs` times (at least 2), stops the
/// world after each run (classify_leaks()) and fails when some site's still reachable blocks,
/// of those the block allocated, grow on every run: a cache or a registry that only grows,
/// which check_nothing_lost passes because everything in it stays reachable. A bounded cache
/// that the first run fills passes; one filled before the check, whose entries the block
/// replaces one a run, passes only with more runs than the cache has entries. A site is the
/// first frame outside memlens and the standard library (group_by::site). A failure names each
/// growing site with its still reachable bytes and blocks after each run, then what holds its
/// newest block (describe_backrefs), up to the root. Lost blocks are check_nothing_lost's to
/// fail. Only blocks in the live table are scanned, so a holder allocated before the check (its
/// per-block mode was off) hides what it holds: let the block create its containers, or turn
/// per-block mode on first. With check_options::warm_up, one unmeasured run comes first. Slow,
/// for tests: a scan and a symbolization a run.
template <class F>
check_result check_nothing_new_reachable(std::size_t runs, F&& block, check_options options = {},
                                         const reach_options& reach = {}) {
    using namespace detail;
    const std::string expectation =
        "no site whose still reachable blocks grow on each of " + std::to_string(runs) + " runs";
    if (runs < 2) {
        check_result r;
        r.message = "memlens: check_nothing_new_reachable needs at least 2 runs to see growth, got " +
                    std::to_string(runs);
        return r;
    }
    if (options.warm_up) block();
    const leak_check sites(options.kind);
    std::map<std::string, reachable_site> found;
    leak_kinds last;
    std::unordered_set<std::uintptr_t> mine;
    block_usage u;
    for (std::size_t run = 0; run < runs; ++run) {
        {
            scope s(options.kind);
            block();
            u = s.usage();
        }
        guard quiet;
        const snapshot left = sites.leaked();
        last = classify_leaks(reach);
        mine.clear();
        for (const live_allocation& a : left.allocations) mine.insert(a.address);
        const resolved_stacks resolved(last.blocks);
        for (std::size_t i = 0; i < last.blocks.allocations.size(); ++i) {
            const live_allocation& a = last.blocks.allocations[i];
            if (last.reach[i].kind != leak_kind::still_reachable || mine.count(a.address) == 0) continue;
            reachable_site& g = found[describe_frame(a.stack ? resolved.site(a.stack) : nullptr)];
            g.bytes.resize(run + 1, 0);
            g.blocks.resize(run + 1, 0);
            g.bytes[run] += a.size;
            ++g.blocks[run];
            if (run + 1 == runs && a.sequence >= g.newest_sequence) {
                g.newest_sequence = a.sequence;
                g.newest = a.address;
            }
        }
    }
    guard quiet;
    std::vector<std::pair<std::string, reachable_site>> growing;
    for (auto& entry : found) {
        reachable_site& g = entry.second;
        g.bytes.resize(runs, 0);
        g.blocks.resize(runs, 0);
        bool grew = g.bytes[0] > 0;
        for (std::size_t i = 1; i < runs && grew; ++i) grew = g.bytes[i] > g.bytes[i - 1];
        if (grew) growing.emplace_back(entry.first, g);
    }
    check_result r = make_result(growing.empty(), u, expectation);
    for (const auto& g : growing) {
        r.message += "\n" + describe_reachable_growth(g.first, g.second);
        if (g.second.newest != 0) r.message += "\n" + describe_backrefs(last, g.second.newest);
    }
    if (!last.unstopped.empty()) r.message += "\n" + describe(last, 0);
    if (!r.passed) {
        // The profile: what the block left still reachable after the last run.
        const leak_kinds kept =
            kept_rows(last, [&](const live_allocation& a) { return mine.count(a.address) != 0; });
        snapshot profile = kept.blocks;
        profile.allocations.clear();
        for (std::size_t i = 0; i < kept.blocks.allocations.size(); ++i) {
            if (kept.reach[i].kind == leak_kind::still_reachable) {
                profile.allocations.push_back(kept.blocks.allocations[i]);
            }
        }
        r.profile = std::make_shared<const snapshot>(std::move(profile));
    }
    return r;
}

MEMLENS_NAMESPACE_END
