// memlens/model/snapshot.hpp: what was alive at one moment: live allocations, per-site totals, the
// stacks they refer to, and the process figures beside them. Plain data, which observers fill
// and views and readers use.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/counters.hpp"
#include "frames.hpp"
#include "scopes.hpp"
#include "types.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What keeps a live block alive, in memcheck's words.
enum class leak_kind : std::uint8_t {
    still_reachable,  ///< reached from a root through start pointers
    possibly_lost,    ///< reached only through a pointer into its middle somewhere on the way
    indirectly_lost,  ///< reached only from lost blocks
    definitely_lost,  ///< not reached at all, and no lost block points at it
};

/// memcheck's name of `k`: "still reachable", "possibly lost", ...
inline const char* leak_kind_name(leak_kind k) noexcept {
    switch (k) {
    case leak_kind::still_reachable: return "still reachable";
    case leak_kind::possibly_lost: return "possibly lost";
    case leak_kind::indirectly_lost: return "indirectly lost";
    case leak_kind::definitely_lost: return "definitely lost";
    }
    return "?";
}

/// Bytes and blocks of one kind.
struct kind_figures {
    std::uint64_t bytes = 0;   ///< requested bytes
    std::uint64_t blocks = 0;  ///< blocks
};

/// One allocation alive when the snapshot was taken, or, where memlens kept only each site's
/// figures (sites mode without tracking_config::blocks), every live heap block from one stack:
/// then `count` says how many, `size` is their bytes together, and address, thread and
/// sequence are 0.
struct live_allocation {
    std::uintptr_t address = 0;   ///< the block's address in the process that took the snapshot
    std::uint64_t size = 0;       ///< requested bytes (of all `count` blocks)
    std::uint32_t domain = 0;     ///< index into snapshot::domain_names
    std::uint32_t stack = 0;      ///< key into snapshot::stacks; 0 when no stack was captured
    std::uint32_t thread = 0;     ///< memlens's number for the allocating thread; 0 when shared
    std::uint64_t sequence = 0;   ///< that thread's count of recorded allocations at this one
    bool sampled = false;         ///< found by sampling: stands for snapshot::weight() allocations
    std::uint64_t count = 1;      ///< the blocks this row stands for (1 for one block)
    /// How the block was reached when classify_leaks() scanned it; meaningful only when
    /// snapshot::classified says so.
    leak_kind kind = leak_kind::still_reachable;
};

/// One block of a back-reference chain: the chosen block first, then each block that holds a
/// pointer to the one before it.
struct backref_link {
    std::uint32_t chain = 0;      ///< index into snapshot::backref_chains
    std::uintptr_t address = 0;   ///< the block's address
    std::uint64_t size = 0;       ///< its requested bytes
    std::uint32_t stack = 0;      ///< its site: a key into snapshot::stacks; 0 without a stack
    leak_kind kind = leak_kind::still_reachable;  ///< its kind
    /// Where in this block the pointer to the block before it lies, in bytes from its start;
    /// 0 for the chosen block.
    std::uint64_t offset = 0;
};

/// What keeps a chain's blocks alive (objgraph's show_backrefs): the root that holds its last
/// block, as classify_leaks() found it.
struct backref_chain {
    /// "global", "stack", "registers", "tls"; "none" when nothing reaches the last block (a
    /// lost chain); "cut" when the chain was longer than the steps followed or a holder was
    /// gone.
    std::string root = "none";
    /// For a global, its symbol and offset and the module that holds it ("global table+8 in
    /// /usr/bin/app"), or its address when no symbol covers it; else empty.
    std::string name;
    std::uint32_t thread = 0;     ///< the thread (Linux tid) of a stack, registers or tls root
    std::uintptr_t address = 0;   ///< the root word's address; 0 for registers and none
};

/// Live blocks that a suppression rule matched: the runtime's own, or those a program chose
/// not to call leaks.
struct suppressed_site {
    std::string rule;             ///< the rule, as suppression::describe() names it
    std::uint32_t stack = 0;      ///< key into snapshot::stacks; 0 without a stack
    std::uint32_t domain = 0;     ///< index into snapshot::domain_names
    std::uint64_t count = 0;      ///< blocks
    std::uint64_t bytes = 0;      ///< their bytes
};

/// The timed blocks of one stack (tracking_config::lifetimes; snapshot::lifetimes_kept), in
/// the lifetime clock's unit, bytes allocated (see snapshot::lifetime_clock). Exact under any
/// threading: each timed allocation and free is one step of that clock's record.
struct site_lifetimes {
    std::uint64_t allocs = 0;     ///< timed blocks allocated here, freed or not
    std::uint64_t bytes = 0;      ///< their bytes
    /// Their lifetimes summed: from the clock after each block's allocation to the clock at its
    /// free, or at the snapshot for a block still alive.
    std::uint64_t lifetimes = 0;
    std::uint64_t max_bytes = 0;  ///< the most bytes alive here at once, first reached
    std::uint64_t max_allocs = 0; ///< the blocks alive at that moment
    /// Bytes alive here when the timed blocks' bytes alive were at their highest
    /// (snapshot::lifetime_peak_clock).
    std::uint64_t peak_bytes = 0;
    std::uint64_t peak_allocs = 0;  ///< the blocks alive here then
    std::uint64_t live_bytes = 0;   ///< bytes alive here when the snapshot was taken
    std::uint64_t live_allocs = 0;  ///< blocks alive here then
};

/// Everything ever recorded at one stack, alive or not, up to the snapshot, and what of it was
/// alive at the process's highest peak.
struct site_record {
    std::uint32_t stack = 0;   ///< key into snapshot::stacks; 0 for allocations without a stack
    std::uint64_t allocs = 0;  ///< allocations recorded here, freed or not
    std::uint64_t bytes = 0;   ///< bytes requested by those allocations
    /// Allocations freed by their own thread before `temporary_window` further allocations of
    /// that thread (memray's "temporary allocations"). Not kept for sampled allocations.
    std::uint64_t temporaries = 0;
    /// Allocations from this stack alive in the copy of the live table kept at the process's
    /// highest peak (tracking_config::capture_peak); 0 when none was kept (see
    /// snapshot::peak_kept). Sampled allocations are never in that copy.
    std::uint64_t peak_allocs = 0;
    /// The bytes requested by those allocations.
    std::uint64_t peak_bytes = 0;
    /// Block lifetimes and the figures beside them, when snapshot::lifetimes_kept; else zeros.
    site_lifetimes life{};
};

/// One domain's figures when the snapshot was taken.
struct domain_figures {
    std::string name;       ///< the domain's name, as domain::name() gives it
    memory_stats figures;   ///< its exact figures then
};

/// One point of a memory-over-time series, which the program records where it wants one.
struct timeline_point {
    double seconds = 0;         ///< since the series began
    std::uint64_t current = 0;  ///< live bytes, every domain together
    std::uint64_t peak = 0;     ///< the peak live bytes at that point
    std::string label;          ///< what the program was doing; may be empty
    std::uint64_t rss = 0;      ///< resident bytes of the process then; 0 when not read
};

/// One generation of the garbage collector of a runtime in the process (Python's gc): totals
/// since memlens began to watch it.
struct collector_generation {
    std::uint32_t generation = 0;     ///< 0 is the youngest
    std::uint64_t collections = 0;    ///< collections of this generation (each takes the younger too)
    std::uint64_t collected = 0;      ///< unreachable objects they freed
    std::uint64_t uncollectable = 0;  ///< unreachable objects they could not free
    std::int64_t threshold = 0;       ///< the generation's threshold when last read
    double seconds = 0;               ///< the time its collections took, together
    double longest_seconds = 0;       ///< the longest of them
};

/// Which run a snapshot comes from.
struct run_info {
    std::int64_t unix_time_ms = 0;  ///< when it was taken, in milliseconds since 1970-01-01 UTC
    std::int64_t pid = 0;           ///< the process id
    std::string command_line;       ///< the program and its arguments, separated by spaces
    std::string build;  ///< compiler, language standard, optimization, memlens version
    std::string mode;   ///< the tracking mode: off, counters, sites or sampled
};

/// The live allocations and per-site totals at one moment, with the stacks they refer to, and
/// the process's counters, domains, named scopes and counted types at that moment.
struct snapshot {
    /// The allocations alive at that moment (in sampled mode, only the sampled ones).
    std::vector<live_allocation> allocations;
    /// The captured stacks by id (ids above 0, as live_allocation::stack and site_record::stack
    /// name them): return addresses, innermost frame first; `symbols` holds their frames once
    /// symbolize(snapshot&) has run.
    std::map<std::uint32_t, std::vector<std::uintptr_t>> stacks;
    /// Per-stack totals of everything recorded up to the snapshot, freed or not, and what was
    /// alive at the peak; stacks alive at the peak have a record even with nothing recorded
    /// since. Ascending by stack.
    std::vector<site_record> sites;
    /// Domain names, indexed by live_allocation::domain.
    std::vector<std::string> domain_names;
    /// The mean sampling interval in bytes when any allocation was sampled, else 0.
    std::uint64_t sample_bytes = 0;
    /// A block its own thread frees before this many further allocations of that thread
    /// counts as temporary (site_record::temporaries); from tracking_config::temporary_window.
    std::uint32_t temporary_window = 1;
    /// Whether site_record::peak_allocs and peak_bytes come from a copy of the live table kept
    /// at the peak: false when none was kept (capture_peak off, sampled mode, a file written
    /// before they existed), so that "no peak kept" reads differently from "nothing there".
    bool peak_kept = false;
    /// Live bytes, every domain together, when that copy was taken: the process peak, within
    /// the margin of tracking_config::capture_peak. 0 when none was kept.
    std::uint64_t peak_current = 0;
    /// Whether site_record::life holds block lifetimes (tracking_config::lifetimes was on).
    /// Not carried by the JSON file: a snapshot read back has none.
    bool lifetimes_kept = false;
    /// The lifetime clock when the snapshot was taken: bytes allocated in timed blocks since
    /// tracking_config::lifetimes was first on. 0 without lifetimes.
    std::uint64_t lifetime_clock = 0;
    /// That clock when the timed blocks' bytes alive first reached their highest.
    std::uint64_t lifetime_peak_clock = 0;
    /// Those highest bytes alive in timed blocks.
    std::uint64_t lifetime_peak_bytes = 0;

    memory_stats totals;  ///< every domain together, exact
    std::vector<domain_figures> domains;     ///< each domain that existed, with its figures
    std::vector<named_scope_stats> scopes;   ///< each named scope's totals (MEMLENS_SCOPE)
    std::vector<type_stats> types;           ///< each counted type's figures
    std::vector<timeline_point> timeline;    ///< points the program added; take_snapshot() adds none
    /// The garbage collector's figures by generation, youngest first; empty when none is
    /// watched (see watch_python_gc).
    std::vector<collector_generation> collector;
    /// Memory that runtimes in the process keep in pools of their own and carve some domain's
    /// blocks from (pymalloc's arenas, "python.arenas", hold what python.mem and python.obj
    /// count): beside the domains, not in `totals`, so that each byte counts once.
    std::vector<domain_figures> pools;
    run_info run;                            ///< which run, program and build it comes from
    /// Whether each allocation's `kind` comes from classify_leaks() (see set_leak_kinds).
    bool classified = false;
    /// The roots of the back-reference chains set_leak_kinds() kept, one per chain.
    std::vector<backref_chain> backref_chains;
    /// The blocks of those chains, chain by chain, each chain's chosen block first.
    std::vector<backref_link> backref_links;
    /// The sites that suppression rules matched when a JSON file was written (the writer's
    /// rules); empty in a snapshot taken here, whose views apply leaks(s)'s rules themselves.
    std::vector<suppressed_site> suppressed;
    /// Resolved frames by return address: filled by symbolize(snapshot&) or by a reader, so
    /// that views of a snapshot from another process never ask this process's symbolizer.
    std::unordered_map<std::uintptr_t, frame_info> symbols;

    /// Whether figures drawn from this snapshot are estimates (it holds sampled allocations).
    bool estimated() const noexcept {
        return std::any_of(allocations.begin(), allocations.end(),
                           [](const live_allocation& a) { return a.sampled; });
    }

    /// How many allocations `a` stands for: its count, or for a sampled one the inverse of its
    /// chance to be sampled.
    double weight(const live_allocation& a) const noexcept {
        if (!a.sampled || sample_bytes == 0 || a.size == 0) return static_cast<double>(a.count);
        const double p = -std::expm1(-static_cast<double>(a.size) / static_cast<double>(sample_bytes));
        return p > 0 ? 1.0 / p : 1.0;
    }

    /// The bytes `a` stands for: its size, weighted as weight() says for a sampled one.
    double bytes(const live_allocation& a) const noexcept {
        return a.sampled ? weight(a) * static_cast<double>(a.size) : static_cast<double>(a.size);
    }

    /// The name of domain `id`, or "?" when the snapshot does not know it.
    std::string domain_name(std::uint32_t id) const {
        return id < domain_names.size() ? domain_names[id] : std::string("?");
    }
};

MEMLENS_NAMESPACE_END
