// memlens/view/leak_kinds.hpp: the text of classify_leaks(): memcheck's leak summary, the sites
// of each kind, and the chain of blocks and the root that keep one block alive.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <dlfcn.h>

#include "../detail/format.hpp"
#include "../observe/reach.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// The blocks of kind `k`, grouped by stack and domain with symbolized stacks, largest first.
inline leak_report leaks_of_kind(const leak_kinds& r, leak_kind k) {
    detail::guard quiet;
    snapshot s;
    s.stacks = r.blocks.stacks;
    s.symbols = r.blocks.symbols;
    s.domain_names = r.blocks.domain_names;
    for (std::size_t i = 0; i < r.blocks.allocations.size(); ++i) {
        if (r.reach[i].kind == k) s.allocations.push_back(r.blocks.allocations[i]);
    }
    return leaks(s);
}

/// memcheck's leak summary ("definitely lost: 48 bytes in 1 blocks", then indirectly lost,
/// possibly lost, still reachable), the threads that could not be stopped, then the `top`
/// largest sites of each lost kind with up to `depth` frames (still reachable too with
/// `with_reachable`).
inline std::string describe(const leak_kinds& r, std::size_t top = 10, std::size_t depth = 12,
                            bool with_reachable = false) {
    using namespace detail;
    guard quiet;
    static const leak_kind order[] = {leak_kind::definitely_lost, leak_kind::indirectly_lost,
                                      leak_kind::possibly_lost, leak_kind::still_reachable};
    std::string out = "memlens: LEAK SUMMARY\n";
    for (const leak_kind k : order) {
        const kind_figures& f = r[k];
        const std::string name = leak_kind_name(k);
        append_all(out, {std::string(17 - name.size(), ' '), name, ": ", digits(f.bytes), " bytes in ",
                         digits(f.blocks), " blocks\n"});
    }
    for (const int tid : r.unstopped) {
        append_all(out, {"  thread ", number(static_cast<std::uint64_t>(tid)),
                         " did not stop (it blocks the signal): its stack was read while it ran, its "
                         "registers and TLS were not\n"});
    }
    for (const leak_kind k : order) {
        if (k == leak_kind::still_reachable && !with_reachable) continue;
        if (r[k].blocks == 0) continue;
        const leak_report sites = leaks_of_kind(r, k);
        append_all(out, {leak_kind_name(k), ", by site:\n"});
        const std::size_t shown = std::min(top, sites.sites.size());
        for (std::size_t i = 0; i < shown; ++i) {
            const leak_site& s = sites.sites[i];
            append_all(out, {"  ", digits(s.bytes), " bytes in ", digits(s.count), " blocks in \"", s.domain,
                             s.traceback.empty() ? "\", no stack recorded\n" : "\", from:\n"});
            for (std::size_t f = 0; f < s.traceback.size() && f < depth; ++f) {
                append_all(out, {"    #", number(f), " ", s.traceback[f].describe(name_form::brief), "\n"});
            }
        }
        if (shown < sites.sites.size()) {
            append_all(out, {"  ... and ", digits(sites.sites.size() - shown), " more stacks\n"});
        }
    }
    return out;
}

namespace detail {

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
        case root_kind::global: {
            Dl_info where{};
            std::string name = "a global at " + hex_address(info.found_at);
            if (::dladdr(reinterpret_cast<void*>(info.found_at), &where) != 0) {
                if (where.dli_sname) {
                    name = concat({"global ", where.dli_sname, "+",
                                   number(info.found_at - reinterpret_cast<std::uintptr_t>(where.dli_saddr))});
                }
                if (where.dli_fname) append_all(name, {" in ", where.dli_fname});
            }
            append_all(out, {"  <- root: ", name, "\n"});
            return out;
        }
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

MEMLENS_NAMESPACE_END
