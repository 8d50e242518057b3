// memlens/view/analysis.hpp: advice drawn from a snapshot: which figures cross the thresholds
// where a change usually pays, each quoted with the measurement behind it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../detail/format.hpp"
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

inline std::string percent(double part, double whole) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
    return buffer;
}

inline std::string times(double ratio) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f", ratio);
    return buffer;
}

inline void recommend_sampled_estimates(const snapshot& s, std::vector<recommendation>& out) {
    if (!s.estimated()) return;
    out.push_back({advice_rule::sampled_estimates,
                   "sampled: one allocation per " + describe_bytes(s.sample_bytes) +
                       " on average was recorded",
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
                   describe_frame(top->first) + " holds " + percent(w.bytes, live_bytes) +
                       " of the live bytes (" + (s.estimated() ? "about " : "") +
                       describe_bytes(rounded(w.bytes)) + " in " + group_digits(count) +
                       (count == 1 ? " allocation)" : " allocations)"),
                   "this one site decides the footprint: shrink what it keeps (exact-size containers, "
                   "shrink_to_fit, smaller element types) or bound it"});
}

// Large blocks that die young are usually buffers sized to their input: churn of small ones is
// what a pool or a reused buffer removes.
inline void recommend_short_lived_blocks(const snapshot& s, const resolved_stacks& resolved,
                                         std::vector<recommendation>& out) {
    std::vector<const site_record*> churning;
    for (const site_record& r : s.sites) {
        if (r.temporaries < 1000 || r.allocs == 0) continue;
        if (static_cast<double>(r.temporaries) < 0.5 * static_cast<double>(r.allocs)) continue;
        if (r.bytes / r.allocs > 256) continue;
        churning.push_back(&r);
    }
    std::sort(churning.begin(), churning.end(), [](const site_record* a, const site_record* b) {
        return a->temporaries != b->temporaries ? a->temporaries > b->temporaries : a->stack < b->stack;
    });
    for (std::size_t i = 0; i < churning.size() && i < 3; ++i) {
        const site_record& r = *churning[i];
        out.push_back({advice_rule::short_lived_blocks,
                       describe_frame(resolved.site(r.stack)) + ": " + group_digits(r.temporaries) + " of " +
                           group_digits(r.allocs) + " allocations freed within " +
                           group_digits(s.temporary_window) +
                           (s.temporary_window == 1 ? " further allocation, " : " further allocations, ") +
                           group_digits(r.bytes / r.allocs) + " bytes each on average",
                       "many short-lived small blocks from one place: reserve the capacity once, reuse one "
                       "buffer across calls, or take the blocks from a memlens::slot_pool"});
    }
}

// A peak far above what a pass keeps is made of intermediate buffers, which chunking or reuse
// removes; the 64 KiB margin keeps scopes that keep almost nothing from firing on small peaks.
inline void recommend_scope_peaks(const snapshot& s, std::vector<recommendation>& out) {
    std::vector<std::pair<double, const named_scope_stats*>> peaky;
    for (const named_scope_stats& scope : s.scopes) {
        if (scope.calls == 0) continue;
        const double net_per_pass =
            std::max(0.0, static_cast<double>(scope.net) / static_cast<double>(scope.calls));
        const double peak = static_cast<double>(scope.max_peak);
        if (peak >= 256 * 1024 && peak >= 4 * net_per_pass + 64 * 1024) {
            peaky.emplace_back(peak - net_per_pass, &scope);
        }
    }
    std::sort(peaky.begin(), peaky.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second->name < b.second->name;
    });
    for (std::size_t i = 0; i < peaky.size() && i < 3; ++i) {
        const named_scope_stats& scope = *peaky[i].second;
        out.push_back({advice_rule::scope_peak,
                       "scope \"" + scope.name + "\": max peak " + describe_bytes(scope.max_peak) +
                           " in one pass, net " + describe_signed_bytes(scope.net) + " over " +
                           group_digits(scope.calls) + (scope.calls == 1 ? " pass" : " passes"),
                       "most of what the scope allocates is gone when it ends: intermediate buffers set its "
                       "peak; process in smaller chunks, stream, or reuse the buffers between passes"});
    }
}

inline void recommend_domain_churn(const snapshot& s, std::vector<recommendation>& out) {
    for (const domain_figures& d : s.domains) {
        const memory_stats& f = d.figures;
        if (f.peak == 0 || f.allocs < 1000 || f.total < 10 * f.peak) continue;
        out.push_back({advice_rule::domain_churn,
                       "domain \"" + d.name + "\": " + describe_bytes(f.total) + " allocated in " +
                           group_digits(f.allocs) + " allocations, " +
                           times(static_cast<double>(f.total) / static_cast<double>(f.peak)) +
                           " times its peak of " + describe_bytes(f.peak),
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
    std::unordered_map<std::uint32_t, detail::weighted> by_stack;
    double live_bytes = 0;
    for (const live_allocation& a : s.allocations) {
        const double w = s.weight(a);
        detail::weighted& g = by_stack[a.stack];
        g.bytes += w * static_cast<double>(a.size);
        g.count += w;
        live_bytes += w * static_cast<double>(a.size);
    }
    std::map<std::string, detail::site_weight> by_site;
    for (const auto& [stack, g] : by_stack) {
        const frame_info* site = resolved.site(stack);
        detail::site_weight& sum =
            by_site.emplace(detail::describe_frame(site), detail::site_weight{site, {}}).first->second;
        sum.second.bytes += g.bytes;
        sum.second.count += g.count;
    }
    const detail::site_weight* top = nullptr;
    for (const auto& entry : by_site) {
        if (!top || detail::listed_before(entry.second, *top)) top = &entry.second;
    }
    return detail::recommend(s, resolved, top, live_bytes);
}

MEMLENS_NAMESPACE_END
