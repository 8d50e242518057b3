// memlens/view/analysis.hpp: advice drawn from a snapshot: which figures cross the thresholds
// where a change usually pays, each quoted with the measurement behind it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../detail/format.hpp"
#include "../detail/index.hpp"
#include "../detail/rank.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// The rules recommend() applies; each names the kind of measurement that triggers it.
enum class advice_rule {
    /// The snapshot holds sampled allocations, so its live figures are estimates.
    sampled_estimates,
    /// One site holds at least half of the live bytes, and they are at least 64 KiB.
    dominant_site,
    /// A site made at least 1,000 temporary allocations, at least half of its allocations, of
    /// at most 256 bytes each on average. The three sites with the most temporaries are named.
    short_lived_blocks,
    /// A named scope's highest peak in one pass is at least 256 KiB and at least four times the
    /// bytes it keeps per pass plus 64 KiB. The three scopes furthest above are named.
    scope_peak,
    /// A domain made at least 1,000 allocations and allocated at least ten times its peak.
    domain_churn,
};

/// One piece of advice, and the measurement that triggered it.
struct recommendation {
    /// The rule that fired.
    advice_rule rule = advice_rule::sampled_estimates;
    /// The measurement that triggered the advice, with its figures (exact, or marked "about"
    /// when they are estimates), e.g. `domain "heap": 10,000,000 bytes ... 10.0 times its peak`.
    std::string figure;
    /// What usually helps.
    std::string advice;
};

/// The rule's name as reports write it: "sampled_estimates", "dominant_site", ...
inline const char* rule_name(advice_rule rule) noexcept {
    switch (rule) {
    case advice_rule::sampled_estimates: return "sampled_estimates";
    case advice_rule::dominant_site: return "dominant_site";
    case advice_rule::short_lived_blocks: return "short_lived_blocks";
    case advice_rule::scope_peak: return "scope_peak";
    case advice_rule::domain_churn: return "domain_churn";
    }
    return "unknown";
}

namespace detail {

// Bytes and allocations, weighted: a sampled allocation stands for several.
struct weighted {
    double bytes = 0, count = 0;
};

// A site's frame (null for allocations without a stack) and its live bytes and allocations.
using site_weight = std::pair<const frame_info*, weighted>;

// The order in which sites are listed: most live bytes first, then by address, the stackless
// last, so that equal sites come out the same way every time.
inline bool listed_before(const site_weight& a, const site_weight& b) noexcept {
    if (a.second.bytes != b.second.bytes) return a.second.bytes > b.second.bytes;
    return a.first && b.first ? a.first->address < b.first->address : a.first != nullptr;
}

inline bool site_listed_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const site_weight* const sites = static_cast<const site_weight*>(rows);
    return listed_before(sites[a], sites[b]);
}

inline void recommend_sampled_estimates(const snapshot& s, std::vector<recommendation>& out) {
    if (!s.estimated()) return;
    out.push_back({advice_rule::sampled_estimates,
                   concat({"sampled: one allocation per ", described(s.sample_bytes),
                           " on average was recorded"}),
                   "live figures are unbiased estimates, not exact counts; use sites mode for exact "
                   "figures"});
}

// Below 64 KiB in all, no one site is worth the work, however large its share.
inline void recommend_dominant_site(const snapshot& s, const site_weight* top, double live_bytes,
                                    std::vector<recommendation>& out) {
    if (!top || live_bytes < 64 * 1024 || top->second.bytes < 0.5 * live_bytes) return;
    const weighted& w = top->second;
    const std::uint64_t count = rounded(w.count);
    out.push_back({advice_rule::dominant_site,
                   concat({describe_frame(top->first), " holds ", share(w.bytes, live_bytes),
                           " of the live bytes (", s.estimated() ? "about " : "", described(rounded(w.bytes)),
                           " in ", digits(count), count == 1 ? " allocation)" : " allocations)"}),
                   "this one site decides the footprint: shrink what it keeps (exact-size containers, "
                   "shrink_to_fit, smaller element types) or bound it"});
}

// Sites (rows of snapshot::sites) with the most temporaries first, then by stack.
inline bool temporaries_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const site_record& x = static_cast<const site_record*>(rows)[a];
    const site_record& y = static_cast<const site_record*>(rows)[b];
    return x.temporaries != y.temporaries ? x.temporaries > y.temporaries : x.stack < y.stack;
}

// Large blocks that die young are usually buffers sized to their input: churn of small ones is
// what a pool or a reused buffer removes.
inline void recommend_short_lived_blocks(const snapshot& s, const resolved_stacks& resolved,
                                         std::vector<recommendation>& out) {
    std::vector<std::uint32_t> churning;
    for (std::size_t i = 0; i < s.sites.size(); ++i) {
        const site_record& r = s.sites[i];
        if (r.temporaries < 1000 || r.allocs == 0) continue;
        if (static_cast<double>(r.temporaries) < 0.5 * static_cast<double>(r.allocs)) continue;
        if (r.bytes / r.allocs > 256) continue;
        churning.push_back(static_cast<std::uint32_t>(i));
    }
    sort_numbers(churning, {s.sites.data(), temporaries_before});
    for (std::size_t i = 0; i < churning.size() && i < 3; ++i) {
        const site_record& r = s.sites[churning[i]];
        out.push_back({advice_rule::short_lived_blocks,
                       concat({describe_frame(resolved.site(r.stack)), ": ", digits(r.temporaries), " of ",
                               digits(r.allocs), plural(r.allocs, " allocation", " allocations"),
                               " freed within ", digits(s.temporary_window),
                               plural(s.temporary_window, " further allocation, ", " further allocations, "),
                               digits(r.bytes / r.allocs), " bytes each on average"}),
                       "many short-lived small blocks from one place: reserve the capacity once, reuse one "
                       "buffer across calls, or take the blocks from a memlens::slot_pool"});
    }
}

inline bool scope_ranked_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const rank_entry& x = static_cast<const rank_entry*>(rows)[a];
    const rank_entry& y = static_cast<const rank_entry*>(rows)[b];
    return x.first != y.first ? x.first > y.first : x.name < y.name;
}

// A peak far above what a pass keeps is made of intermediate buffers, which chunking or reuse
// removes; the 64 KiB margin keeps scopes that keep almost nothing from firing on small peaks.
inline void recommend_scope_peaks(const snapshot& s, std::vector<recommendation>& out) {
    std::vector<rank_entry> ranks;
    for (const named_scope_stats& scope : s.scopes) {
        if (scope.calls == 0) continue;
        const double net_per_pass =
            std::max(0.0, static_cast<double>(scope.net) / static_cast<double>(scope.calls));
        const double peak = static_cast<double>(scope.max_peak);
        if (peak >= 256 * 1024 && peak >= 4 * net_per_pass + 64 * 1024) {
            ranks.push_back({rank_of_real(peak - net_per_pass), 0, 0, scope.name,
                             static_cast<std::uint64_t>(&scope - s.scopes.data())});
        }
    }
    // Scopes of one name tie as std::sort leaves them.
    const std::vector<std::uint32_t> order = sorted_rows(ranks.size(), {ranks.data(), scope_ranked_before});
    for (std::size_t i = 0; i < order.size() && i < 3; ++i) {
        const named_scope_stats& scope = s.scopes[ranks[order[i]].last];
        out.push_back({advice_rule::scope_peak,
                       concat({"scope \"", scope.name, "\": max peak ", described(scope.max_peak),
                               " in one pass, net ", describe_signed_bytes(scope.net), " over ",
                               digits(scope.calls), scope.calls == 1 ? " pass" : " passes"}),
                       "most of what the scope allocates is gone when it ends: intermediate buffers set its "
                       "peak; process in smaller chunks, stream, or reuse the buffers between passes"});
    }
}

inline void recommend_domain_churn(const snapshot& s, std::vector<recommendation>& out) {
    for (const domain_figures& d : s.domains) {
        const memory_stats& f = d.figures;
        if (f.peak == 0 || f.allocs < 1000 || f.total < 10 * f.peak) continue;
        out.push_back({advice_rule::domain_churn,
                       concat({"domain \"", d.name, "\": ", described(f.total), " allocated in ",
                               digits(f.allocs), plural(f.allocs, " allocation, ", " allocations, "),
                               tenths(static_cast<double>(f.total) / static_cast<double>(f.peak)),
                               " times its peak of ", described(f.peak)}),
                       "its blocks are allocated and freed over and over (churn): keep and reuse them "
                       "(memlens::slot_pool, pool_allocator, reserve) instead"});
    }
}

// recommend(s) for callers that have resolved the stacks and summed the sites already (the
// HTML report): `top` is the site with the most live bytes, or null when nothing is alive.
inline std::vector<recommendation> recommend(const snapshot& s, const resolved_stacks& resolved,
                                             const site_weight* top, double live_bytes) {
    std::vector<recommendation> out;
    recommend_sampled_estimates(s, out);
    recommend_dominant_site(s, top, live_bytes, out);
    recommend_short_lived_blocks(s, resolved, out);
    recommend_scope_peaks(s, out);
    recommend_domain_churn(s, out);
    return out;
}

}  // namespace detail

/// The advice for `s`: every rule of advice_rule that its figures trigger, in the order of
/// that enum, each with the measurement behind it. Sites are merged by their frame's function,
/// file and line. Pure function of `s`, except that frames missing from s.symbols are resolved
/// by this process's symbolizer. Allocates; its allocations are not recorded.
inline std::vector<recommendation> recommend(const snapshot& s) {
    detail::guard quiet;
    const detail::resolved_stacks resolved(s);
    detail::key_index stacks;
    std::vector<detail::live_sum> by_stack;
    double live_bytes = 0;
    for (const live_allocation& a : s.allocations) {
        const auto [row, added] = stacks.insert(a.stack);
        if (added) by_stack.emplace_back();
        by_stack[row].add(s, a);
        live_bytes += s.bytes(a);
    }
    // Sites are summed in the hash table's order of stacks, as they always were: sums of
    // sampled weights depend on the order of their terms.
    detail::string_index sites;
    std::vector<detail::site_weight> by_site;
    for (const auto& [stack, row] : stacks) {
        const frame_info* site = resolved.site(static_cast<std::uint32_t>(stack));
        const auto [at, added] = sites.insert(detail::describe_frame(site));
        if (added) by_site.push_back({site, {}});
        detail::site_weight& sum = by_site[at];
        sum.second.bytes += by_stack[row].bytes;
        sum.second.count += by_stack[row].count;
    }
    const detail::site_weight* top = nullptr;
    for (const detail::site_weight& entry : by_site) {
        if (!top || detail::listed_before(entry, *top)) top = &entry;
    }
    return detail::recommend(s, resolved, top, live_bytes);
}

MEMLENS_NAMESPACE_END
