// memlens/view/snapshot.hpp: what was alive at one moment, and the views over it that
// tracemalloc users know: statistics grouped by site, function, file, line, domain or whole
// traceback; filters; the difference between two snapshots; leaks grouped by site; short-lived
// ("temporary") allocations per site. Everything here is a pure function of snapshot data: it
// never reads live state, so it works as well on a snapshot read back from a file.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <fnmatch.h>

#include "../core/state.hpp"
#include "../detail/format.hpp"
#include "../detail/rank.hpp"
#include "../model/snapshot.hpp"
#include "../observe/sites.hpp"
#include "../observe/symbols.hpp"

MEMLENS_NAMESPACE_BEGIN

/// How statistics group allocations, as tracemalloc's key types do. The site of a stack is its
/// first frame outside memlens, operator new and the standard library: the line that asked.
enum class group_by { site, function, file, line, domain, traceback };

/// Keeps or drops allocations by where they come from, as tracemalloc.Filter does. Empty
/// patterns match anything; patterns are shell wildcards (fnmatch).
struct snapshot_filter {
    bool include = true;
    std::string file;
    std::string function;
    std::string domain;
    /// Match any frame of the stack rather than the site alone.
    bool all_frames = false;
};

/// One group of allocations.
struct statistic {
    std::string key;
    std::vector<frame_info> traceback;  // the site frame, or the whole stack for traceback groups
    std::uint64_t bytes = 0;
    std::uint64_t count = 0;
    bool estimated = false;
};

/// One group compared between an older and a newer snapshot.
struct statistic_diff {
    std::string key;
    std::vector<frame_info> traceback;
    std::uint64_t bytes = 0;  // in the newer snapshot
    std::int64_t bytes_diff = 0;
    std::uint64_t count = 0;
    std::int64_t count_diff = 0;
    bool estimated = false;
};

/// Live allocations from one stack and domain: a leak site when the snapshot holds leaks.
struct leak_site {
    std::vector<frame_info> traceback;
    std::string domain;
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
    bool estimated = false;
};

/// Allocations still alive, grouped by site, largest first.
struct leak_report {
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
    bool estimated = false;
    std::vector<leak_site> sites;

    /// Text for people: totals, then the `top` largest sites with up to `depth` frames each.
    std::string describe(std::size_t top = 10, std::size_t depth = 12) const;
};

/// A site with short-lived allocations.
struct temporary_site {
    std::vector<frame_info> traceback;
    std::uint64_t temporaries = 0;
    std::uint64_t allocs = 0;
};

namespace detail {

inline bool starts_with(const std::string& s, const char* prefix) {
    return s.compare(0, std::strlen(prefix), prefix) == 0;
}

// "void ns::f<int>(int) const" -> "ns::f<int>": the qualified name without return type or
// parameters, found at template depth 0.
inline std::string qualified_name(const std::string& function) {
    int depth = 0;
    std::size_t end = function.size();
    std::size_t start = 0;
    for (std::size_t i = 0; i < function.size(); ++i) {
        const char c = function[i];
        if (c == '<') ++depth;
        else if (c == '>') --depth;
        else if (depth == 0 && c == '(' && i > 0) {
            end = i;
            break;
        } else if (depth == 0 && c == ' ') {
            start = i + 1;
        }
    }
    return function.substr(start, end - start);
}

// Frames that are memlens or the allocation function itself: never where an allocation came from.
inline bool memlens_frame(const frame_info& f) {
    const std::string name = qualified_name(f.function);
    return starts_with(name, "memlens::") || starts_with(name, "operator new") ||
           starts_with(f.function, "operator new");
}

inline bool library_frame(const frame_info& f) {
    const std::string name = qualified_name(f.function);
    return starts_with(name, "std::") || starts_with(name, "__gnu_cxx::") ||
           starts_with(name, "__cxx");
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
// the symbolizer in one batch (so that it sees each module's addresses together), memlens's own
// frames cut from the top. Frames are held as pointers: for 100,000 stacks, copying them costs
// seconds where pointers cost milliseconds.
class resolved_stacks {
public:
    explicit resolved_stacks(const snapshot& s) : symbols_(s.symbols) {
        for (frame_info& f : symbolize(unresolved_addresses(s))) {
            const std::uintptr_t address = f.address;
            extra_.emplace(address, std::move(f));
        }
        stacks_.reserve(s.stacks.size());
        for (const auto& entry : s.stacks) {
            const std::size_t begin = frames_.size();
            bool top = true;
            for (const std::uintptr_t a : entry.second) {
                const frame_info& f = find(a);
                if (top && memlens_frame(f)) continue;
                top = false;
                frames_.push_back(&f);
            }
            stacks_.emplace(entry.first, std::make_pair(begin, frames_.size()));
        }
    }

    // Every resolved frame of every stack, counted once per use.
    std::size_t frame_count() const noexcept { return frames_.size(); }

    frame_range frames(std::uint32_t stack) const noexcept {
        const auto found = stacks_.find(stack);
        if (found == stacks_.end()) return {};
        return {frames_.data() + found->second.first, frames_.data() + found->second.second};
    }

    // The first frame outside the standard library, else the first frame at all.
    const frame_info* site(std::uint32_t stack) const noexcept {
        const frame_range range = frames(stack);
        for (const frame_info& f : range) {
            if (!library_frame(f)) return &f;
        }
        return range.empty() ? nullptr : &range.front();
    }

private:
    const frame_info& find(std::uintptr_t address) {
        const auto known = symbols_.find(address);
        if (known != symbols_.end()) return known->second;
        frame_info& f = extra_[address];
        f.address = address;
        return f;
    }

    const std::unordered_map<std::uintptr_t, frame_info>& symbols_;
    std::unordered_map<std::uintptr_t, frame_info> extra_;  // what the snapshot's table lacks
    std::vector<const frame_info*> frames_;
    std::unordered_map<std::uint32_t, std::pair<std::size_t, std::size_t>> stacks_;
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
            return site->file + ":" + std::to_string(site->line);
        }
        return describe_frame(site);
    case group_by::domain:
        traceback.clear();
        return s.domain_name(a.domain);
    case group_by::traceback: {
        traceback = resolved.frames(a.stack).copy();
        std::string key;
        for (const frame_info& f : traceback) key += f.describe() + "\n";
        return traceback.empty() ? std::string("(no stack)") : key;
    }
    }
    return {};
}

struct group_sum {
    std::vector<frame_info> traceback;
    double bytes = 0;
    double count = 0;
    bool estimated = false;
};

inline std::map<std::string, group_sum> group(const snapshot& s, group_by by,
                                              const std::vector<snapshot_filter>& filters) {
    guard quiet;
    const resolved_stacks resolved(s);
    std::map<std::string, group_sum> groups;
    for (const live_allocation& a : s.allocations) {
        if (!passes(filters, s, resolved, a)) continue;
        std::vector<frame_info> traceback;
        group_sum& g = groups[group_key(by, s, resolved, a, traceback)];
        if (g.traceback.empty()) g.traceback = std::move(traceback);
        const double w = s.weight(a);
        g.bytes += w * static_cast<double>(a.size);
        g.count += w;
        g.estimated = g.estimated || a.sampled;
    }
    return groups;
}

inline std::uint64_t rounded(double x) { return static_cast<std::uint64_t>(std::llround(x)); }

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
    std::vector<statistic> out;
    for (auto& [key, g] : detail::group(s, by, filters)) {
        out.push_back({key, std::move(g.traceback), detail::rounded(g.bytes),
                       detail::rounded(g.count), g.estimated});
    }
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
    auto before = detail::group(older, by, filters);
    auto after = detail::group(newer, by, filters);
    std::vector<statistic_diff> out;
    for (auto& [key, g] : after) {
        statistic_diff d;
        d.key = key;
        d.bytes = detail::rounded(g.bytes);
        d.count = detail::rounded(g.count);
        d.estimated = g.estimated;
        auto old = before.find(key);
        std::uint64_t old_bytes = 0, old_count = 0;
        if (old != before.end()) {
            old_bytes = detail::rounded(old->second.bytes);
            old_count = detail::rounded(old->second.count);
            d.estimated = d.estimated || old->second.estimated;
            before.erase(old);
        }
        d.bytes_diff = static_cast<std::int64_t>(d.bytes) - static_cast<std::int64_t>(old_bytes);
        d.count_diff = static_cast<std::int64_t>(d.count) - static_cast<std::int64_t>(old_count);
        d.traceback = std::move(g.traceback);
        out.push_back(std::move(d));
    }
    for (auto& [key, g] : before) {
        statistic_diff d;
        d.key = key;
        d.bytes_diff = -static_cast<std::int64_t>(detail::rounded(g.bytes));
        d.count_diff = -static_cast<std::int64_t>(detail::rounded(g.count));
        d.estimated = g.estimated;
        d.traceback = std::move(g.traceback);
        out.push_back(std::move(d));
    }
    detail::rank_rows(out, [](const statistic_diff& a) { return std::make_pair(a.bytes_diff, a.count_diff); });
    return out;
}

/// Every allocation of `s` grouped by stack and domain: what leaked, when `s` holds what a
/// block left behind.
inline leak_report leaks(const snapshot& s) {
    detail::guard quiet;
    const detail::resolved_stacks resolved(s);
    struct sum {
        double bytes = 0, count = 0;
        bool estimated = false;
    };
    std::map<std::pair<std::uint32_t, std::uint32_t>, sum> by_site;
    for (const live_allocation& a : s.allocations) {
        sum& g = by_site[{a.stack, a.domain}];
        const double w = s.weight(a);
        g.bytes += w * static_cast<double>(a.size);
        g.count += w;
        g.estimated = g.estimated || a.sampled;
    }
    leak_report r;
    for (const auto& [key, g] : by_site) {
        leak_site site{resolved.frames(key.first).copy(), s.domain_name(key.second), detail::rounded(g.count),
                       detail::rounded(g.bytes), g.estimated};
        r.count += site.count;
        r.bytes += site.bytes;
        r.estimated = r.estimated || g.estimated;
        r.sites.push_back(std::move(site));
    }
    detail::rank_rows(r.sites, [](const leak_site& a) {
        return std::make_pair(detail::rank_of(a.bytes), detail::rank_of(a.count));
    });
    return r;
}

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

inline std::string leak_report::describe(std::size_t top, std::size_t depth) const {
    using detail::describe_bytes;
    using detail::group_digits;
    const char* approx = estimated ? "about " : "";
    std::string out = "memlens: " + std::string(approx) + group_digits(count) +
                      (count == 1 ? " allocation" : " allocations") + " still alive, " + approx +
                      describe_bytes(bytes) + ", from " + group_digits(sites.size()) +
                      (sites.size() == 1 ? " site" : " sites") +
                      (estimated ? " (estimates from sampling)" : "") + "\n";
    const std::size_t shown = std::min(top, sites.size());
    for (std::size_t i = 0; i < shown; ++i) {
        const leak_site& s = sites[i];
        out += "  " + std::string(s.estimated ? "about " : "") + group_digits(s.count) +
               (s.count == 1 ? " allocation, " : " allocations, ") + describe_bytes(s.bytes) +
               " in \"" + s.domain + "\"" + (s.traceback.empty() ? ", no stack recorded" : ", from:") +
               "\n";
        for (std::size_t f = 0; f < s.traceback.size() && f < depth; ++f) {
            out += "    #" + std::to_string(f) + " " + s.traceback[f].describe() + "\n";
        }
        if (s.traceback.size() > depth) {
            out += "    ... " + std::to_string(s.traceback.size() - depth) + " more frames\n";
        }
    }
    if (shown < sites.size()) {
        out += "  ... and " + group_digits(sites.size() - shown) + " more sites\n";
    }
    return out;
}

MEMLENS_NAMESPACE_END
