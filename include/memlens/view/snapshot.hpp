// memlens/view/snapshot.hpp: what was alive at one moment, and the views over it that
// tracemalloc users know: statistics grouped by site, function, file, line, domain or whole
// traceback; filters; the difference between two snapshots; leaks grouped by site; short-lived
// ("temporary") allocations per site. Everything here is a pure function of snapshot data: it
// never reads live state, so it works as well on a snapshot read back from a file.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include <fnmatch.h>

#include "../core/state.hpp"
#include "../detail/format.hpp"
#include "../detail/index.hpp"
#include "../detail/names.hpp"
#include "../detail/rank.hpp"
#include "../model/snapshot.hpp"
#include "../observe/sites.hpp"
#include "../observe/symbols.hpp"
#include "suppressions.hpp"

MEMLENS_NAMESPACE_BEGIN

/// How statistics group allocations, as tracemalloc's key types do. The site of a stack is its
/// first frame outside memlens, operator new and the standard library: the line that asked.
enum class group_by {
    site,       ///< the site frame as one line: function, file:line, module
    function,   ///< the site's function (its whole signature)
    file,       ///< the site's source file, else its module
    line,       ///< the site's file:line
    domain,     ///< the domain the allocations were counted in
    traceback,  ///< the whole stack
};

/// Keeps or drops allocations by where they come from, as tracemalloc.Filter does. Empty
/// patterns match anything; patterns are shell wildcards (fnmatch).
struct snapshot_filter {
    /// Keep the allocations that match (true) or drop them (false).
    bool include = true;
    /// Pattern for the source file of the site (or of any frame, with all_frames).
    std::string file;
    /// Pattern for the function of the site (or of any frame, with all_frames).
    std::string function;
    /// Pattern for the name of the domain the allocation was counted in.
    std::string domain;
    /// Match any frame of the stack rather than the site alone.
    bool all_frames = false;
};

/// One group of allocations.
struct statistic {
    /// The group's name, as group_by forms it ("(no stack)" for allocations without frames).
    std::string key;
    /// The site frame, the whole stack for group_by::traceback, empty for group_by::domain.
    std::vector<frame_info> traceback;
    /// Live bytes in the group.
    std::uint64_t bytes = 0;
    /// Live allocations in the group.
    std::uint64_t count = 0;
    /// The figures are estimates from sampled mode.
    bool estimated = false;
};

/// One group compared between an older and a newer snapshot.
struct statistic_diff {
    /// The group's name, as in statistic::key.
    std::string key;
    /// As in statistic::traceback: the newer snapshot's, or the older one's for a group now gone.
    std::vector<frame_info> traceback;
    /// Live bytes in the newer snapshot.
    std::uint64_t bytes = 0;
    /// Newer bytes minus older bytes: negative when the group shrank.
    std::int64_t bytes_diff = 0;
    /// Live allocations in the newer snapshot.
    std::uint64_t count = 0;
    /// Newer count minus older count.
    std::int64_t count_diff = 0;
    /// Either snapshot's figures are estimates from sampled mode.
    bool estimated = false;
};

/// Live allocations from one stack and domain: a leak site when the snapshot holds leaks.
struct leak_site {
    /// The whole stack, innermost frame first.
    std::vector<frame_info> traceback;
    /// The name of the domain the allocations were counted in.
    std::string domain;
    /// Live allocations from this stack and domain.
    std::uint64_t count = 0;
    /// Their live bytes.
    std::uint64_t bytes = 0;
    /// The figures are estimates from sampled mode.
    bool estimated = false;
    /// The suppression rule that matched the stack (suppression::describe()), empty when none.
    std::string suppressed_by;
};

/// Allocations still alive, grouped by site, largest first.
struct leak_report {
    /// Live allocations in all sites.
    std::uint64_t count = 0;
    /// Their live bytes.
    std::uint64_t bytes = 0;
    /// The figures are estimates from sampled mode.
    bool estimated = false;
    /// Each stack and domain, largest bytes first.
    std::vector<leak_site> sites;
    /// Live allocations that a suppression rule matched: not in `count` nor in `sites`.
    std::uint64_t suppressed_count = 0;
    /// Their live bytes.
    std::uint64_t suppressed_bytes = 0;
    /// Their stacks and domains, largest bytes first, each with the rule that matched it.
    std::vector<leak_site> suppressed;

    /// Text for people: totals, then the `top` largest stacks with up to `depth` frames each,
    /// their functions named briefly unless `names` asks for them whole.
    std::string describe(std::size_t top = 10, std::size_t depth = 12, name_form names = name_form::brief) const;
};

/// A site with short-lived allocations.
struct temporary_site {
    /// The whole stack, innermost frame first.
    std::vector<frame_info> traceback;
    /// Allocations from this stack freed before snapshot::temporary_window further allocations
    /// of their thread, as heaptrack counts temporaries.
    std::uint64_t temporaries = 0;
    /// Every allocation recorded from this stack, temporary or not.
    std::uint64_t allocs = 0;
};

namespace detail {

// Frames that are memlens or the allocation function itself: never where an allocation came from.
inline bool memlens_frame(const frame_info& f) {
    const std::string name = qualified_name(f.function);
    return starts_with(name, "memlens::") || starts_with(name, "operator new") ||
           starts_with(f.function, "operator new");
}

// Code of the C or C++ runtime, or of a system header inlined into the program: never the line
// that asked for memory, although it made the call.
inline bool runtime_frame(const frame_info& f) {
    return runtime_function(qualified_name(f.function)) || system_file(f.file) || runtime_module(f.module);
}

// Every frame address of a snapshot's stacks that its symbol table lacks, sorted and unique.
inline std::vector<std::uintptr_t> unresolved_addresses(const snapshot& s) {
    std::vector<std::uintptr_t> addresses;
    for (const auto& entry : s.stacks) {
        for (std::uintptr_t a : entry.second) {
            if (!s.symbols.count(a)) addresses.push_back(a);
        }
    }
    std::sort(addresses.begin(), addresses.end());
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
    return addresses;
}

// One stack's resolved frames, innermost first: pointers into a resolved_stacks, not copies.
struct frame_range {
    const frame_info* const* first = nullptr;
    const frame_info* const* last = nullptr;

    class iterator {
    public:
        using iterator_category = std::bidirectional_iterator_tag;
        using value_type = frame_info;
        using difference_type = std::ptrdiff_t;
        using pointer = const frame_info*;
        using reference = const frame_info&;

        explicit iterator(const frame_info* const* at = nullptr) noexcept : at_(at) {}
        reference operator*() const noexcept { return **at_; }
        pointer operator->() const noexcept { return *at_; }
        iterator& operator++() noexcept { ++at_; return *this; }
        iterator operator++(int) noexcept { iterator old = *this; ++at_; return old; }
        iterator& operator--() noexcept { --at_; return *this; }
        iterator operator--(int) noexcept { iterator old = *this; --at_; return old; }
        bool operator==(const iterator& o) const noexcept { return at_ == o.at_; }
        bool operator!=(const iterator& o) const noexcept { return at_ != o.at_; }

    private:
        const frame_info* const* at_;
    };

    iterator begin() const noexcept { return iterator(first); }
    iterator end() const noexcept { return iterator(last); }
    std::reverse_iterator<iterator> rbegin() const noexcept { return std::reverse_iterator<iterator>(end()); }
    std::reverse_iterator<iterator> rend() const noexcept { return std::reverse_iterator<iterator>(begin()); }
    std::size_t size() const noexcept { return static_cast<std::size_t>(last - first); }
    bool empty() const noexcept { return first == last; }
    const frame_info& front() const noexcept { return **first; }
    std::vector<frame_info> copy() const { return std::vector<frame_info>(begin(), end()); }
};

// A snapshot's stacks resolved once: each frame from the snapshot's symbol table, the rest from
// the symbolizer in one batch (so that it sees each module's addresses together), the calls
// inlined at each address as frames of their own before it, memlens's own frames cut from the
// top. Frames are held as pointers: for 100,000 stacks, copying them costs seconds where
// pointers cost milliseconds.
class resolved_stacks {
public:
    explicit resolved_stacks(const snapshot& s) : symbols_(s.symbols) {
        for (frame_info& f : symbolize(unresolved_addresses(s))) {
            const std::uintptr_t address = f.address;
            extra_.emplace(address, std::move(f));
        }
        stacks_.reserve(s.stacks.size());
        ends_.reserve(s.stacks.size());
        for (const auto& entry : s.stacks) {
            bool top = true;
            const auto add = [&](const frame_info& f) {
                if (top && memlens_frame(f)) return;
                top = false;
                frames_.push_back(&f);
            };
            for (const std::uintptr_t a : entry.second) {
                const frame_info& f = find(a);
                for (const frame_info& call : f.inlined) add(call);
                add(f);
            }
            stacks_.insert(entry.first);
            ends_.push_back(frames_.size());
        }
    }

    // Every resolved frame of every stack, counted once per use.
    std::size_t frame_count() const noexcept { return frames_.size(); }

    frame_range frames(std::uint32_t stack) const noexcept {
        const std::uint32_t row = stacks_.find(stack);
        if (row == key_index::none) return {};
        return {frames_.data() + (row == 0 ? 0 : ends_[row - 1]), frames_.data() + ends_[row]};
    }

    // The stack's site: its first frame, inlined calls included, that is neither memlens nor
    // the runtime nor a system header; else its first frame at all.
    const frame_info* site(std::uint32_t stack) const noexcept {
        const frame_range range = frames(stack);
        for (const frame_info& f : range) {
            if (!memlens_frame(f) && !runtime_frame(f)) return &f;
        }
        return range.empty() ? nullptr : &range.front();
    }

private:
    const frame_info& find(std::uintptr_t address) {
        const auto known = symbols_.find(address);
        if (known != symbols_.end()) return known->second;
        const auto extra = extra_.find(address);
        if (extra != extra_.end()) return extra->second;
        frame_info unknown;
        unknown.address = address;
        return extra_.emplace(address, std::move(unknown)).first->second;
    }

    const std::unordered_map<std::uintptr_t, frame_info>& symbols_;
    std::unordered_map<std::uintptr_t, frame_info> extra_;  // what the snapshot's table lacks
    std::vector<const frame_info*> frames_;
    key_index stacks_;              // a row per stack of the snapshot, in its order
    std::vector<std::size_t> ends_;  // per row, where its frames end in frames_
};

inline bool wildcard(const std::string& pattern, const std::string& text) {
    return pattern.empty() || ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

inline bool filter_matches(const snapshot_filter& f, const snapshot& s,
                           const resolved_stacks& resolved, const live_allocation& a) {
    if (!f.domain.empty() && !wildcard(f.domain, s.domain_name(a.domain))) return false;
    if (f.file.empty() && f.function.empty()) return true;
    auto frame_matches = [&](const frame_info& frame) {
        return wildcard(f.file, frame.file) && wildcard(f.function, frame.function);
    };
    if (f.all_frames) {
        const frame_range frames = resolved.frames(a.stack);
        return std::any_of(frames.begin(), frames.end(), frame_matches);
    }
    const frame_info* site = resolved.site(a.stack);
    return site ? frame_matches(*site) : frame_matches(frame_info{});
}

// tracemalloc's rule: kept when it matches some inclusive filter (if there are any) and no
// exclusive one.
inline bool passes(const std::vector<snapshot_filter>& filters, const snapshot& s,
                   const resolved_stacks& resolved, const live_allocation& a) {
    bool any_inclusive = false;
    bool included = false;
    for (const snapshot_filter& f : filters) {
        const bool match = filter_matches(f, s, resolved, a);
        if (f.include) {
            any_inclusive = true;
            included = included || match;
        } else if (match) {
            return false;
        }
    }
    return !any_inclusive || included;
}

inline std::string describe_frame(const frame_info* f) {
    return f ? f->describe() : std::string("(no stack)");
}

// What views call a frame: its function, or where it is when no symbol names it.
inline std::string frame_name(const frame_info& f) {
    return f.function.empty() ? f.describe() : f.function;
}

inline std::string group_key(group_by by, const snapshot& s, const resolved_stacks& resolved,
                             const live_allocation& a, std::vector<frame_info>& traceback) {
    const frame_info* site = resolved.site(a.stack);
    if (site) traceback.assign(1, *site);
    switch (by) {
    case group_by::site:
        return describe_frame(site);
    case group_by::function:
        return site && !site->function.empty() ? site->function : describe_frame(site);
    case group_by::file:
        if (site && !site->file.empty()) return site->file;
        return site && !site->module.empty() ? site->module : describe_frame(site);
    case group_by::line:
        if (site && !site->file.empty() && site->line != 0) {
            return concat({site->file, ":", number(site->line)});
        }
        return describe_frame(site);
    case group_by::domain:
        traceback.clear();
        return s.domain_name(a.domain);
    case group_by::traceback: {
        traceback = resolved.frames(a.stack).copy();
        std::string key;
        for (const frame_info& f : traceback) append_all(key, {f.describe(), "\n"});
        return traceback.empty() ? std::string("(no stack)") : key;
    }
    }
    return {};
}

inline std::uint64_t rounded(double x) { return static_cast<std::uint64_t>(std::llround(x)); }

// Live bytes and allocations summed over a stack, a stack and domain, or a group; weighted, so
// that a sampled allocation counts for those it stands for.
struct live_sum {
    std::uint32_t stack = 0;
    std::uint32_t domain = 0;
    double bytes = 0;
    double count = 0;
    bool estimated = false;

    void add(const snapshot& s, const live_allocation& a) {
        bytes += s.bytes(a);
        count += s.weight(a);
        estimated = estimated || a.sampled;
    }

    void add(const live_sum& w) {
        bytes += w.bytes;
        count += w.count;
        estimated = estimated || w.estimated;
    }
};

inline bool stack_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const live_sum* const w = static_cast<const live_sum*>(rows);
    return w[a].stack != w[b].stack ? w[a].stack < w[b].stack : w[a].domain < w[b].domain;
}

// Most bytes first, then by stack and domain: a total order.
inline bool bytes_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const live_sum* const w = static_cast<const live_sum*>(rows);
    return w[a].bytes != w[b].bytes ? w[a].bytes > w[b].bytes : stack_before(rows, a, b);
}

// The live allocations of `s` summed by stack, or by stack and domain, ascending: views look up
// each stack's frames once, not once per allocation. Each sum adds its allocations in the order
// of s.allocations.
inline std::vector<live_sum> live_by_stack(const snapshot& s, bool by_domain) {
    key_index index;
    std::vector<live_sum> out;
    for (const live_allocation& a : s.allocations) {
        const std::uint32_t domain = by_domain ? a.domain : 0;
        const auto [row, added] = index.insert((std::uint64_t{a.stack} << 32) | domain);
        if (added) out.push_back({a.stack, domain, 0, 0, false});
        out[row].add(s, a);
    }
    reorder(out, sorted_rows(out.size(), {out.data(), stack_before}));
    return out;
}

inline bool key_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const statistic* const g = static_cast<const statistic*>(rows);
    return g[a].key < g[b].key;
}

// The groups of `s`'s allocations that pass `filters`, ordered by key, their figures rounded.
inline std::vector<statistic> group(const snapshot& s, group_by by,
                                    const std::vector<snapshot_filter>& filters) {
    guard quiet;
    const resolved_stacks resolved(s);
    string_index keys;
    std::vector<statistic> groups;
    std::vector<live_sum> sums;
    for (const live_allocation& a : s.allocations) {
        if (!passes(filters, s, resolved, a)) continue;
        std::vector<frame_info> traceback;
        std::string key = group_key(by, s, resolved, a, traceback);
        const auto [row, added] = keys.insert(key);
        if (added) {
            groups.push_back({std::move(key), {}, 0, 0, false});
            sums.emplace_back();
        }
        if (groups[row].traceback.empty()) groups[row].traceback = std::move(traceback);
        sums[row].add(s, a);
    }
    for (std::size_t i = 0; i < groups.size(); ++i) {
        groups[i].bytes = rounded(sums[i].bytes);
        groups[i].count = rounded(sums[i].count);
        groups[i].estimated = sums[i].estimated;
    }
    reorder(groups, sorted_rows(groups.size(), {groups.data(), key_before}));
    return groups;
}

}  // namespace detail

/// Resolves every frame of `s`'s stacks into `s.symbols`, so that the snapshot can be written
/// out and read in another process, and views of it need no symbolizer.
inline void symbolize(snapshot& s, const symbolize_options& options = {}) {
    detail::guard quiet;
    for (frame_info& f : symbolize(detail::unresolved_addresses(s), options)) {
        const std::uintptr_t address = f.address;
        s.symbols.emplace(address, std::move(f));
    }
}

/// The allocations of `s` grouped by `by`, largest total first (then most allocations), after
/// `filters`. Figures of sampled snapshots are estimates and say so.
inline std::vector<statistic> statistics(const snapshot& s, group_by by,
                                         const std::vector<snapshot_filter>& filters = {}) {
    std::vector<statistic> out = detail::group(s, by, filters);
    detail::rank_rows(out, [](const statistic& a) {
        return std::make_pair(detail::rank_of(a.bytes), detail::rank_of(a.count));
    });
    return out;
}

/// The snapshot with only the allocations that pass `filters`; stacks and sites are kept.
inline snapshot filtered(const snapshot& s, const std::vector<snapshot_filter>& filters) {
    snapshot out = s;
    detail::guard quiet;
    const detail::resolved_stacks resolved(s);
    out.allocations.clear();
    for (const live_allocation& a : s.allocations) {
        if (detail::passes(filters, s, resolved, a)) out.allocations.push_back(a);
    }
    return out;
}

/// How each group changed from `older` to `newer` (groups matched by their symbolized key, so
/// snapshots of different runs compare), largest growth first, as Snapshot.compare_to does.
inline std::vector<statistic_diff> compare(const snapshot& older, const snapshot& newer, group_by by,
                                           const std::vector<snapshot_filter>& filters = {}) {
    std::vector<statistic> before = detail::group(older, by, filters);
    std::vector<statistic> after = detail::group(newer, by, filters);
    // Both ordered by key: one walk matches them. Groups only in `older` follow, in key order.
    std::vector<std::uint32_t> matched(before.size());
    std::size_t b = 0;
    std::vector<statistic_diff> out;
    for (statistic& g : after) {
        statistic_diff d;
        d.bytes = g.bytes;
        d.count = g.count;
        d.estimated = g.estimated;
        while (b < before.size() && before[b].key < g.key) ++b;
        std::uint64_t old_bytes = 0, old_count = 0;
        if (b < before.size() && before[b].key == g.key) {
            old_bytes = before[b].bytes;
            old_count = before[b].count;
            d.estimated = d.estimated || before[b].estimated;
            matched[b] = 1;
        }
        d.key = std::move(g.key);
        d.bytes_diff = static_cast<std::int64_t>(d.bytes) - static_cast<std::int64_t>(old_bytes);
        d.count_diff = static_cast<std::int64_t>(d.count) - static_cast<std::int64_t>(old_count);
        d.traceback = std::move(g.traceback);
        out.push_back(std::move(d));
    }
    for (std::size_t i = 0; i < before.size(); ++i) {
        if (matched[i] != 0) continue;
        statistic& g = before[i];
        statistic_diff d;
        d.key = std::move(g.key);
        d.bytes_diff = -static_cast<std::int64_t>(g.bytes);
        d.count_diff = -static_cast<std::int64_t>(g.count);
        d.estimated = g.estimated;
        d.traceback = std::move(g.traceback);
        out.push_back(std::move(d));
    }
    detail::rank_rows(out, [](const statistic_diff& a) { return std::make_pair(a.bytes_diff, a.count_diff); });
    return out;
}

/// Every allocation of `s` grouped by stack and domain: what leaked, when `s` holds what a
/// block left behind. Stacks that a rule of `rules` matches go to leak_report::suppressed.
inline leak_report leaks(const snapshot& s, const suppressions& rules) {
    detail::guard quiet;
    const detail::resolved_stacks resolved(s);
    const std::vector<detail::live_sum> by_site = detail::live_by_stack(s, true);
    leak_report r;
    std::vector<detail::rank_entry> ranks;
    ranks.reserve(by_site.size());
    std::vector<detail::rank_entry> suppressed_ranks;
    for (const detail::live_sum& g : by_site) {
        leak_site site{resolved.frames(g.stack).copy(), s.domain_name(g.domain), detail::rounded(g.count),
                       detail::rounded(g.bytes), g.estimated, {}};
        if (const suppression* rule = rules.empty() ? nullptr : rules.match(site.traceback)) {
            site.suppressed_by = rule->describe();
            r.suppressed_count += site.count;
            r.suppressed_bytes += site.bytes;
            suppressed_ranks.push_back({detail::rank_of(site.bytes), detail::rank_of(site.count), 0, {},
                                        (std::uint64_t{g.stack} << 32) | g.domain});
            r.suppressed.push_back(std::move(site));
            continue;
        }
        r.count += site.count;
        r.bytes += site.bytes;
        r.estimated = r.estimated || g.estimated;
        // Equal sites in the order of their stack, then domain.
        ranks.push_back({detail::rank_of(site.bytes), detail::rank_of(site.count), 0, {},
                         (std::uint64_t{g.stack} << 32) | g.domain});
        r.sites.push_back(std::move(site));
    }
    detail::reorder(r.sites, detail::ranked_rows(ranks));
    detail::reorder(r.suppressed, detail::ranked_rows(suppressed_ranks));
    return r;
}

/// leaks(s, active_suppressions()): the runtime's own blocks, MEMLENS_SUPPRESSIONS's rules and
/// those set in code go to leak_report::suppressed.
inline leak_report leaks(const snapshot& s) { return leaks(s, active_suppressions()); }

namespace detail {

// The sites of `s` that a rule of `rules` matches, each stack's frames from s.symbols or from
// `extra` (what the writer of a snapshot resolved beside it), so that nothing is resolved twice.
inline std::vector<suppressed_site> suppressed_rows(const snapshot& s, const suppressions& rules,
                                                    const std::unordered_map<std::uintptr_t, frame_info>* extra) {
    if (!s.suppressed.empty()) return s.suppressed;
    guard quiet;
    std::vector<suppressed_site> out;
    if (rules.empty() || s.allocations.empty()) return out;
    std::vector<rank_entry> ranks;
    std::vector<frame_info> traceback;
    for (const live_sum& g : live_by_stack(s, true)) {
        traceback.clear();
        const auto stack = s.stacks.find(g.stack);
        for (std::size_t i = 0; stack != s.stacks.end() && i < stack->second.size(); ++i) {
            const std::uintptr_t a = stack->second[i];
            const auto known = s.symbols.find(a);
            if (known != s.symbols.end()) {
                traceback.push_back(known->second);
                continue;
            }
            if (!extra) continue;
            const auto beside = extra->find(a);
            if (beside != extra->end()) traceback.push_back(beside->second);
        }
        const suppression* rule = rules.match(traceback);
        if (!rule) continue;
        out.push_back({rule->describe(), g.stack, g.domain, rounded(g.count), rounded(g.bytes)});
        ranks.push_back({rank_of(out.back().bytes), rank_of(out.back().count), 0, {},
                         (std::uint64_t{g.stack} << 32) | g.domain});
    }
    reorder(out, ranked_rows(ranks));
    return out;
}

}  // namespace detail

/// The sites of `s` that a rule of `rules` matches, with their stack and domain, most bytes
/// first: what leak_report::suppressed lists, as JSON files and the HTML report carry it. A
/// snapshot read from a file (s.suppressed not empty) gives the record of the run that wrote it.
/// Resolves the frames that s.symbols lacks.
inline std::vector<suppressed_site> suppressed_sites(const snapshot& s, const suppressions& rules) {
    if (!s.suppressed.empty() || rules.empty()) return s.suppressed;
    detail::guard quiet;
    std::unordered_map<std::uintptr_t, frame_info> extra;
    for (frame_info& f : symbolize(detail::unresolved_addresses(s))) {
        const std::uintptr_t address = f.address;
        extra.emplace(address, std::move(f));
    }
    return detail::suppressed_rows(s, rules, &extra);
}

/// suppressed_sites(s, active_suppressions()).
inline std::vector<suppressed_site> suppressed_sites(const snapshot& s) {
    return suppressed_sites(s, active_suppressions());
}

/// The bytes and blocks of `s`'s allocations of kind `k` (all zero unless s.classified).
inline kind_figures leak_kind_figures(const snapshot& s, leak_kind k) noexcept {
    kind_figures f;
    if (!s.classified) return f;
    for (const live_allocation& a : s.allocations) {
        if (a.kind != k) continue;
        f.bytes += a.size;
        f.blocks += a.count;
    }
    return f;
}

/// The allocations of `s` of kind `k` (none unless s.classified), grouped by stack and domain
/// as leaks(s, rules) groups them, largest first; those a rule matches go to
/// leak_report::suppressed.
inline leak_report leaks_of_kind(const snapshot& s, leak_kind k, const suppressions& rules) {
    detail::guard quiet;
    snapshot only;
    only.stacks = s.stacks;
    only.symbols = s.symbols;
    only.domain_names = s.domain_names;
    for (const live_allocation& a : s.allocations) {
        if (s.classified && a.kind == k) only.allocations.push_back(a);
    }
    return leaks(only, rules);
}

/// leaks_of_kind(s, k, active_suppressions()).
inline leak_report leaks_of_kind(const snapshot& s, leak_kind k) { return leaks_of_kind(s, k, active_suppressions()); }

/// Sites whose allocations were freed again within the snapshot's temporary window, most first.
inline std::vector<temporary_site> temporaries(const snapshot& s) {
    detail::guard quiet;
    const detail::resolved_stacks resolved(s);
    std::vector<temporary_site> out;
    for (const site_record& site : s.sites) {
        if (site.temporaries == 0) continue;
        out.push_back({resolved.frames(site.stack).copy(), site.temporaries, site.allocs});
    }
    detail::rank_rows(out, [](const temporary_site& a) {
        return std::make_pair(detail::rank_of(a.temporaries), std::int64_t{0});
    });
    return out;
}

/// What a leak_check's block left alive, grouped by site with symbolized stacks.
inline leak_report leaks(const leak_check& check) { return leaks(check.leaked()); }

/// Runs `block` under a leak_check and returns what it left alive, grouped by site.
template <class F>
leak_report find_leaks(F&& block, scope_kind kind = scope_kind::thread) {
    leak_check check(kind);
    std::forward<F>(block)();
    return leaks(check);
}

inline std::string leak_report::describe(std::size_t top, std::size_t depth, name_form names) const {
    using namespace detail;
    const char* approx = estimated ? "about " : "";
    std::string out;
    append_all(out, {"memlens: ", approx, digits(count), count == 1 ? " allocation" : " allocations",
                     " still alive, ", approx, described(bytes), ", from ", digits(sites.size()),
                     sites.size() == 1 ? " stack" : " stacks",
                     estimated ? " (estimates from sampling)\n" : "\n"});
    const std::size_t shown = std::min(top, sites.size());
    for (std::size_t i = 0; i < shown; ++i) {
        const leak_site& s = sites[i];
        append_all(out, {"  ", s.estimated ? "about " : "", digits(s.count),
                         s.count == 1 ? " allocation, " : " allocations, ", described(s.bytes), " in \"",
                         s.domain, s.traceback.empty() ? "\", no stack recorded\n" : "\", from:\n"});
        for (std::size_t f = 0; f < s.traceback.size() && f < depth; ++f) {
            append_all(out, {"    #", number(f), " ", s.traceback[f].describe(names), "\n"});
        }
        if (s.traceback.size() > depth) {
            const std::uint64_t more = s.traceback.size() - depth;
            append_all(out, {"    ... ", number(more), plural(more, " more frame\n", " more frames\n")});
        }
    }
    if (shown < sites.size()) append_all(out, {"  ... and ", digits(sites.size() - shown), " more stacks\n"});
    if (!suppressed.empty()) {
        append_all(out, {"  suppressed: ", digits(suppressed_count),
                         suppressed_count == 1 ? " allocation, " : " allocations, ", described(suppressed_bytes),
                         ", from ", digits(suppressed.size()), suppressed.size() == 1 ? " stack\n" : " stacks\n"});
        for (std::size_t i = 0; i < suppressed.size() && i < top; ++i) {
            const leak_site& s = suppressed[i];
            append_all(out, {"    ", digits(s.count), s.count == 1 ? " allocation, " : " allocations, ",
                             described(s.bytes), " by ", s.suppressed_by, "\n"});
        }
    }
    return out;
}

MEMLENS_NAMESPACE_END
