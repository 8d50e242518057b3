// memlens/view/leak_kinds.hpp: the text of classify_leaks(): memcheck's leak summary, the sites
// of each kind, and the chain of blocks and the root that keep one block alive; and
// set_leak_kinds, which carries the kinds and those chains into a snapshot for every report.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <dlfcn.h>

#include "../detail/format.hpp"
#include "../observe/reach.hpp"
#include "snapshot.hpp"
#include "text.hpp"

MEMLENS_NAMESPACE_BEGIN

namespace detail {

// r.blocks with each row's kind from r.reach, whoever assembled `r`.
inline snapshot classified_blocks(const leak_kinds& r) {
    snapshot s;
    s.stacks = r.blocks.stacks;
    s.symbols = r.blocks.symbols;
    s.domain_names = r.blocks.domain_names;
    s.allocations = r.blocks.allocations;
    for (std::size_t i = 0; i < s.allocations.size() && i < r.reach.size(); ++i) s.allocations[i].kind = r.reach[i].kind;
    s.classified = true;
    return s;
}

}  // namespace detail

/// The blocks of kind `k`, grouped by stack and domain with symbolized stacks, largest first.
inline leak_report leaks_of_kind(const leak_kinds& r, leak_kind k) {
    detail::guard quiet;
    return leaks_of_kind(detail::classified_blocks(r), k);
}

/// memcheck's leak summary ("definitely lost: 48 bytes in 1 blocks", then indirectly lost,
/// possibly lost, still reachable), the threads that could not be stopped, then the `top`
/// largest sites of each lost kind with up to `depth` frames (still reachable too with
/// `with_reachable`).
inline std::string describe(const leak_kinds& r, std::size_t top = 10, std::size_t depth = 12,
                            bool with_reachable = false) {
    detail::guard quiet;
    return detail::leak_kinds_text(detail::classified_blocks(r), top, depth, with_reachable, r.unstopped);
}

namespace detail {

// A global word as the loader names it: "global table+8 in /usr/bin/app", or its address when
// no symbol covers it.
inline std::string global_name(std::uintptr_t at) {
    Dl_info where{};
    std::string name = "a global at " + hex_address(at);
    if (::dladdr(reinterpret_cast<void*>(at), &where) != 0) {
        if (where.dli_sname) {
            name = concat({"global ", where.dli_sname, "+", number(at - reinterpret_cast<std::uintptr_t>(where.dli_saddr))});
        }
        if (where.dli_fname) append_all(name, {" in ", where.dli_fname});
    }
    return name;
}

// Appends to `s` the chain of blocks from row `row` of `r` to the root that keeps it alive, as
// describe_backrefs follows it.
inline void add_backref_chain(snapshot& s, const leak_kinds& r, std::ptrdiff_t row, std::size_t limit) {
    const auto chain = static_cast<std::uint32_t>(s.backref_chains.size());
    backref_chain root;
    root.root = "cut";
    std::uint64_t offset = 0;
    for (std::size_t step = 0; step <= limit && row >= 0; ++step) {
        const auto at = static_cast<std::size_t>(row);
        const live_allocation& a = r.blocks.allocations[at];
        const reach_info& info = r.reach[at];
        s.backref_links.push_back({chain, a.address, a.size, a.stack, info.kind, offset});
        if (step == limit) break;
        row = -1;
        switch (info.root) {
        case root_kind::none: root.root = "none"; break;
        case root_kind::block:
            row = r.find(info.found_at);
            if (row >= 0) offset = info.found_at - r.blocks.allocations[static_cast<std::size_t>(row)].address;
            break;
        case root_kind::global:
            root.root = "global";
            root.name = global_name(info.found_at);
            root.address = info.found_at;
            break;
        case root_kind::stack:
        case root_kind::tls:
            root.root = info.root == root_kind::stack ? "stack" : "tls";
            root.thread = static_cast<std::uint32_t>(info.thread);
            root.address = info.found_at;
            break;
        case root_kind::registers:
            root.root = "registers";
            root.thread = static_cast<std::uint32_t>(info.thread);
            break;
        }
    }
    s.backref_chains.push_back(std::move(root));
}

inline std::string site_text(const leak_kinds& r, const resolved_stacks& resolved, std::size_t row) {
    const live_allocation& a = r.blocks.allocations[row];
    std::string out = concat({"block ", hex_address(a.address), " (", digits(a.size), " bytes, ",
                              leak_kind_name(r.reach[row].kind)});
    const frame_info* site = a.stack ? resolved.site(a.stack) : nullptr;
    append_all(out, {"), from ", site ? site->describe(name_form::brief) : std::string("(no stack)")});
    return out;
}

}  // namespace detail

/// objgraph's show_backrefs for the block that holds `address`: the block, then each block that
/// holds a pointer to the one before it (with the offset of that pointer and the holder's site),
/// up to the root that keeps the chain alive: a global with its symbol, a thread's stack, its
/// registers or its TLS. A lost block's chain ends where nothing reaches it. Follows the first
/// pointer the scan found to each block, at most `limit` steps.
inline std::string describe_backrefs(const leak_kinds& r, std::uintptr_t address, std::size_t limit = 64) {
    using namespace detail;
    guard quiet;
    std::ptrdiff_t row = r.find(address);
    if (row < 0) return concat({"memlens: ", hex_address(address), " is in no block of the scan\n"});
    const resolved_stacks resolved(r.blocks);
    std::string out = concat({"memlens: what keeps ", hex_address(address), " alive\n  ",
                              site_text(r, resolved, static_cast<std::size_t>(row)), "\n"});
    for (std::size_t step = 0; step < limit; ++step) {
        const reach_info& info = r.reach[static_cast<std::size_t>(row)];
        switch (info.root) {
        case root_kind::none:
            append_all(out, {"  <- nothing: no root and no other block points at it\n"});
            return out;
        case root_kind::block: {
            const std::ptrdiff_t holder = r.find(info.found_at);
            if (holder < 0) {
                append_all(out, {"  <- a block no longer in the scan\n"});
                return out;
            }
            const std::uintptr_t offset = info.found_at - r.blocks.allocations[static_cast<std::size_t>(holder)].address;
            append_all(out, {"  <- at offset ", number(offset), " of ",
                             site_text(r, resolved, static_cast<std::size_t>(holder)), "\n"});
            row = holder;
            continue;
        }
        case root_kind::global:
            append_all(out, {"  <- root: ", global_name(info.found_at), "\n"});
            return out;
        case root_kind::stack:
            append_all(out, {"  <- root: the stack of thread ", number(static_cast<std::uint64_t>(info.thread)),
                             " at ", hex_address(info.found_at), "\n"});
            return out;
        case root_kind::registers:
            append_all(out, {"  <- root: a register of thread ", number(static_cast<std::uint64_t>(info.thread)),
                             "\n"});
            return out;
        case root_kind::tls:
            append_all(out, {"  <- root: the static TLS or thread control block of thread ",
                             number(static_cast<std::uint64_t>(info.thread)), " at ", hex_address(info.found_at),
                             "\n"});
            return out;
        }
    }
    append_all(out, {"  ... (longer than ", number(limit), " steps)\n"});
    return out;
}

/// Makes `s` carry the scan of `r`: its allocations become the blocks that classify_leaks()
/// scanned, each with its kind (snapshot::classified), its stacks and symbols gain the scan's,
/// and for each of the `chains` still-reachable sites with the most bytes, the chain of blocks
/// and the root that keep that site's largest block alive (at most `limit` steps) goes to
/// snapshot::backref_chains and backref_links. Its other figures (totals, domains, sites) stay
/// as they were. Allocates; the allocations are not recorded.
inline void set_leak_kinds(snapshot& s, const leak_kinds& r, std::size_t chains = 8, std::size_t limit = 64) {
    detail::guard quiet;
    s.allocations = r.blocks.allocations;
    for (std::size_t i = 0; i < s.allocations.size() && i < r.reach.size(); ++i) s.allocations[i].kind = r.reach[i].kind;
    for (const auto& entry : r.blocks.stacks) s.stacks.insert(entry);
    for (const auto& entry : r.blocks.symbols) s.symbols.insert(entry);
    if (s.domain_names.size() < r.blocks.domain_names.size()) s.domain_names = r.blocks.domain_names;
    s.classified = true;
    s.backref_chains.clear();
    s.backref_links.clear();
    // Still-reachable bytes by stack, each with its largest block: most bytes first, then by
    // stack (the rows' ranking, which the other views have compiled already).
    std::vector<detail::rank_entry> sites;
    std::vector<std::size_t> largest;
    std::map<std::uint32_t, std::size_t> row_of;
    for (std::size_t i = 0; i < s.allocations.size(); ++i) {
        const live_allocation& a = s.allocations[i];
        if (a.kind != leak_kind::still_reachable) continue;
        const auto found = row_of.emplace(a.stack, sites.size());
        if (found.second) {
            sites.push_back({0, 0, 0, {}, a.stack});
            largest.push_back(i);
        }
        const std::size_t site = found.first->second;
        sites[site].first += detail::rank_of(a.size);
        if (a.size > s.allocations[largest[site]].size) largest[site] = i;
    }
    const std::vector<std::uint32_t> order = detail::ranked_rows(sites);
    for (std::size_t i = 0; i < order.size() && i < chains; ++i) {
        detail::add_backref_chain(s, r, static_cast<std::ptrdiff_t>(largest[order[i]]), limit);
    }
}

/// A snapshot of what classify_leaks() scanned: take_snapshot()'s figures with set_leak_kinds(s,
/// r, chains) applied, so that every report carries the kinds and back-references.
inline snapshot classified_snapshot(const leak_kinds& r, std::size_t chains = 8) {
    snapshot s = take_snapshot();
    set_leak_kinds(s, r, chains);
    return s;
}

MEMLENS_NAMESPACE_END
