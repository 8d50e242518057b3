// memlens/view/json.hpp: a snapshot as a self-contained JSON file (symbols included, so that any
// process can read it without a symbolizer) and a strict reader, for diffs across runs and CI
// baselines. This comment is the description of the file format; other documents point here.
//
// Schema "memlens.snapshot", version 5
// ------------------------------------
// One JSON object (RFC 8259) whose members come in exactly the order below. A reader may rely
// on the order; this one refuses any other order, any member it does not know, and anything but
// white space after the object.
//
// Versioning: "version" rises with every change that a reader of the previous version would
// refuse or misread: a member added, removed, renamed or moved, a row with another field, a
// field whose meaning, type or range changes. Readers refuse unknown members, so every
// addition is such a change. A reader refuses the versions it does not know; this one reads 5,
// 4, 3, 2 and 1. Version 4 lacks "classified", "suppressed", "backref_chains", "backref_links"
// and the last field of an "allocations" row. Version 3 also lacks "collector", "pools" and a timeline point's "rss". Version 2 also lacks the last field of an "allocations" row (each row is one block).
// Version 1 also lacks "peak_kept", "peak_current", "inlined" and the last two fields of a
// "sites" row; a snapshot read from it has no peak figures (snapshot::peak_kept false) and no
// inlined calls.
//
// Types: u64 and u32 are whole numbers from 0 to 2^64 - 1 and 2^32 - 1, i64 from -2^63 to
// 2^63 - 1, written exactly (no fraction, no exponent); f64 is a double written with 17
// significant digits, which read back to the same double, or null for a value that was not
// finite; flag is 0 or 1; string is the program's bytes, with '"', '\' and control bytes
// escaped as RFC 8259 asks and bytes that are not UTF-8 passed through unchanged. The large
// tables ("symbols", "stacks", "sites", "allocations") have arrays as rows rather than objects,
// which keeps files small and quick to read. The writer puts each top-level member and each
// element of a table on a line of its own; readers must not rely on white space.
//
//   "format"            string: "memlens.snapshot"
//   "version"           u64: 5
//   "run"               object: which run the snapshot comes from
//       "unix_time_ms"    i64: when it was taken, in milliseconds since 1970-01-01 UTC
//       "pid"             i64: the process id
//       "command_line"    string: the program and its arguments, separated by spaces
//       "build"           string: compiler, language standard, optimization, memlens version
//       "mode"            string: the tracking mode: "off", "counters", "sites" or "sampled"
//   "totals"            object: the figures of every domain together, exact
//       "current"         u64: live bytes
//       "peak"            u64: the highest live bytes since the start or the last reset_peak()
//       "total"           u64: bytes ever allocated
//       "allocs"          u64: allocations counted
//       "frees"           u64: frees counted
//   "domains"           array of objects, one per domain that existed:
//       "name"            string: the domain's name
//       "current", "peak", "total", "allocs", "frees": as in "totals", for this domain alone
//   "domain_names"      array of strings: an allocation's domain indexes this list
//   "sample_bytes"      u64: the mean sampling interval in bytes when any allocation was
//                       sampled, else 0
//   "temporary_window"  u32: a block that its own thread frees before this many further
//                       allocations of that thread counts as temporary (memray's definition)
//   "peak_kept"         flag: 1 when the sites' peak figures come from a copy of the live table
//                       kept at the process's highest peak; 0 when none was kept
//   "peak_current"      u64: live bytes, every domain together, when that copy was taken; 0
//                       when none was kept
//   "scopes"            array of objects, one per named scope:
//       "name"            string: the scope's name
//       "file"            string: the source file where the first site with this name was opened
//       "line"            u32: its line there; 0 when unknown
//       "function"        string: the function it was opened in
//       "calls"           u64: passes through the scope that have closed
//       "allocated"       u64: bytes allocated, all passes together
//       "allocs"          u64: allocations, all passes together
//       "net"             i64: bytes still held from all passes together
//       "max_peak"        u64: the highest peak of any one pass
//   "types"             array of objects, one per counted type:
//       "name"            string: the readable (demangled) type name
//       "size"            u64: sizeof the type
//       "instances"       u64: live instances
//       "bytes"           u64: live bytes, instances times size
//       "peak"            u64: the highest live instance count seen (see type_stats::peak)
//       "constructed"     u64: instances ever counted in
//   "timeline"          array of objects, the points of memory over time the program recorded:
//       "seconds"         f64: since the series began
//       "current"         u64: live bytes, every domain together
//       "peak"            u64: the peak live bytes at that point
//       "label"           string: what the program was doing; may be empty
//       "rss"             u64: the process's resident bytes then; 0 when not read (version 4)
//   "collector"         array of objects, one per generation of the garbage collector of a
//                       runtime in the process (Python's gc), youngest first; empty when none
//                       was watched. Totals since memlens began to watch it:
//       "generation"      u32: 0 for the youngest
//       "collections"     u64: collections of this generation (each takes the younger too)
//       "collected"       u64: unreachable objects they freed
//       "uncollectable"   u64: unreachable objects they could not free
//       "threshold"       i64: the generation's threshold when last read
//       "seconds"         f64: the time its collections took, together
//       "longest_seconds" f64: the longest of them
//   "pools"             array of objects, one per pool that a runtime in the process keeps and
//                       carves some domain's blocks from (pymalloc's arenas): not in "totals"
//       "name"            string: the pool's name, such as "python.arenas"
//       "current", "peak", "total", "allocs", "frees": as in "totals", for the pool's pieces
//   "modules"           array of strings: the paths of the executables and shared objects that
//                       symbols lie in, each once; "" for addresses in none of them
//   "symbols"           array of rows [address, function, file, line, module, offset]: one per
//                       return address in any stack, each once, addresses ascending
//       address           u64: the return address as captured
//       function          string: demangled; "" when no symbol covers the address
//       file              string: the source file; "" without debug information
//       line              u32: the line in it; 0 when unknown
//       module            u64: an index into "modules"
//       offset            u64: the address minus the module's load address
//   "inlined"           array of rows [address, function, file, line]: the calls the compiler
//                       inlined at a symbol's address, innermost first, grouped by address,
//                       addresses ascending
//       address           u64: the symbol's address, which this call shares
//       function          string: the inlined function, demangled; "" when unknown
//       file              string: the source file of the line it was at
//       line              u32: that line; 0 when unknown
//   "stacks"            array of rows [id, [address, ...]], ids ascending
//       id                u32: the stack's id, above 0
//       addresses         u64 each: return addresses, innermost frame first, each in "symbols"
//   "sites"             array of rows [stack, allocs, bytes, temporaries, peak_allocs,
//                       peak_bytes]: everything ever recorded at a stack up to the snapshot,
//                       freed or not, and what of it was alive at the peak; stacks ascending
//       stack             u32: 0 for allocations without a stack, else an id in "stacks"
//       allocs            u64: allocations
//       bytes             u64: bytes requested
//       temporaries       u64: allocations freed within "temporary_window"; sampled ones are
//                         not counted
//       peak_allocs       u64: allocations from the stack alive in the copy kept at the peak;
//                         0 when "peak_kept" is 0
//       peak_bytes        u64: their bytes
//   "classified"        flag: 1 when each allocation's kind comes from classify_leaks()'s scan
//                       (set_leak_kinds); 0 when the kinds mean nothing
//   "suppressed"        array of objects, the sites a suppression rule matched when the file was
//                       written, most bytes first (their blocks stay in "allocations"):
//       "rule"            string: the rule, "leak:pattern (source:line)"
//       "stack"           u32: 0 or an id in "stacks"
//       "domain"          u32: an index into "domain_names"
//       "count"           u64: blocks
//       "bytes"           u64: their bytes
//   "backref_chains"    array of objects, one per back-reference chain: what keeps its blocks
//                       alive (objgraph's show_backrefs)
//       "root"            string: "global", "stack", "registers", "tls", "none" (nothing reaches
//                         the chain's last block) or "cut" (followed no further)
//       "name"            string: a global's symbol+offset and module; "" for other roots
//       "thread"          u32: the Linux thread id of a stack, registers or tls root; else 0
//       "address"         u64: the root word's address; 0 for registers and none
//   "backref_links"     array of rows [chain, address, size, stack, kind, offset]: the blocks of
//                       the chains, chain by chain, each chain's chosen block first and then each
//                       block that holds a pointer to the one before it; every chain has a link
//       chain             u32: an index into "backref_chains"
//       address           u64: the block's address
//       size              u64: its requested bytes
//       stack             u32: 0 or an id in "stacks"
//       kind              u32: as an allocation's kind
//       offset            u64: where in this block the pointer to the block before it lies; 0
//                         for the chosen block
//   "allocations"       array of rows [address, size, domain, stack, thread, sequence, sampled,
//                       count, kind]: the allocations alive when the snapshot was taken, one row per
//                       block, or one row per site for blocks of which only their site's
//                       figures were kept (then address, thread and sequence are 0)
//       address           u64: the block's address
//       size              u64: bytes requested, by all the row's blocks together
//       domain            u32: an index into "domain_names"
//       stack             u32: 0 when no stack was captured, else an id in "stacks"
//       thread            u32: memlens's number for the allocating thread; 0 when shared
//       sequence          u64: that thread's count of recorded allocations at this one
//       sampled           flag: 1 when found by sampling; the row then stands for
//                         1 / (1 - exp(-size / sample_bytes)) allocations
//       count             u64: the blocks the row stands for, at least 1; 1 when sampled
//       kind              u32: how the scan reached the block, memcheck's leak kinds: 0 still
//                         reachable, 1 possibly lost, 2 indirectly lost, 3 definitely lost;
//                         0 when "classified" is 0
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../detail/files.hpp"
#include "../detail/index.hpp"
#include "../detail/json_text.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Why a snapshot file was refused: the message names the position (line, column, byte offset)
/// and what was expected there.
class json_error : public std::runtime_error {
public:
    /// A refusal with its message and where it happened; thrown by the reader.
    json_error(const std::string& message, std::size_t line, std::size_t column, std::size_t offset)
        : std::runtime_error(message), line_(line), column_(column), offset_(offset) {}

    /// Where the input went wrong: 1-based line and column (in bytes), 0-based byte offset.
    ///@{
    std::size_t line() const noexcept { return line_; }
    std::size_t column() const noexcept { return column_; }
    std::size_t offset() const noexcept { return offset_; }
    ///@}

private:
    std::size_t line_, column_, offset_;
};

namespace detail {

// The schema above, once: each function lists the members of one kind of record in their
// order, and the writer and the reader both walk these lists (the writer over const records).
// A member's name is its key in an object, and what a message calls it in an array row.

template <class Visit, class Stats>
void stats_members(Visit& v, Stats& m) {
    v.field("current", m.current);
    v.field("peak", m.peak);
    v.field("total", m.total);
    v.field("allocs", m.allocs);
    v.field("frees", m.frees);
}

template <class Visit, class Run>
void run_members(Visit& v, Run& r) {
    v.field("unix_time_ms", r.unix_time_ms);
    v.field("pid", r.pid);
    v.field("command_line", r.command_line);
    v.field("build", r.build);
    v.field("mode", r.mode);
}

template <class Visit, class Domain>
void domain_members(Visit& v, Domain& d) {
    v.field("name", d.name);
    stats_members(v, d.figures);
}

template <class Visit, class Scope>
void scope_members(Visit& v, Scope& n) {
    v.field("name", n.name);
    v.field("file", n.file);
    v.field("line", n.line);
    v.field("function", n.function);
    v.field("calls", n.calls);
    v.field("allocated", n.allocated);
    v.field("allocs", n.allocs);
    v.field("net", n.net);
    v.field("max_peak", n.max_peak);
}

template <class Visit, class Type>
void type_members(Visit& v, Type& t) {
    v.field("name", t.name);
    v.field("size", t.size);
    v.field("instances", t.instances);
    v.field("bytes", t.bytes);
    v.field("peak", t.peak);
    v.field("constructed", t.constructed);
}

template <class Visit, class Point>
void point_members(Visit& v, Point& p) {
    v.field("seconds", p.seconds);
    v.field("current", p.current);
    v.field("peak", p.peak);
    v.field("label", p.label);
    if (v.since(4)) v.field("rss", p.rss);
}

template <class Visit, class Generation>
void collector_members(Visit& v, Generation& g) {
    v.field("generation", g.generation);
    v.field("collections", g.collections);
    v.field("collected", g.collected);
    v.field("uncollectable", g.uncollectable);
    v.field("threshold", g.threshold);
    v.field("seconds", g.seconds);
    v.field("longest_seconds", g.longest_seconds);
}

template <class Visit, class Frame>
void symbol_members(Visit& v, Frame& f) {
    v.field("address", f.address);
    v.field("function", f.function);
    v.field("file", f.file);
    v.field("line", f.line);
    v.module("module index", f.module);
    v.field("offset", f.offset);
}

template <class Visit, class Frame>
void inlined_members(Visit& v, Frame& f) {
    v.field("address", f.address);
    v.field("function", f.function);
    v.field("file", f.file);
    v.field("line", f.line);
}

template <class Visit, class Stack>
void stack_members(Visit& v, Stack& entry) {
    v.stack_id("id", entry.first);
    v.frames("frames", entry.second);
}

template <class Visit, class Site>
void site_members(Visit& v, Site& r) {
    v.stack("stack id", r.stack);
    v.field("allocation count", r.allocs);
    v.field("bytes", r.bytes);
    v.field("temporary count", r.temporaries);
    if (v.since(2)) {
        v.field("peak allocation count", r.peak_allocs);
        v.field("peak bytes", r.peak_bytes);
    }
}

template <class Visit, class Allocation>
void allocation_members(Visit& v, Allocation& a) {
    v.field("address", a.address);
    v.field("size", a.size);
    v.field("domain", a.domain);
    v.stack("stack id", a.stack);
    v.field("thread", a.thread);
    v.field("sequence number", a.sequence);
    v.field("sampled flag", a.sampled);
    if (v.since(3)) v.field("block count", a.count);
    if (v.since(5)) v.kind("leak kind", a.kind);
}

template <class Visit, class Site>
void suppressed_members(Visit& v, Site& r) {
    v.field("rule", r.rule);
    v.stack("stack", r.stack);
    v.field("domain", r.domain);
    v.field("count", r.count);
    v.field("bytes", r.bytes);
}

template <class Visit, class Chain>
void chain_members(Visit& v, Chain& c) {
    v.field("root", c.root);
    v.field("name", c.name);
    v.field("thread", c.thread);
    v.field("address", c.address);
}

template <class Visit, class Link>
void link_members(Visit& v, Link& l) {
    v.field("chain", l.chain);
    v.field("address", l.address);
    v.field("size", l.size);
    v.stack("stack id", l.stack);
    v.kind("leak kind", l.kind);
    v.field("offset", l.offset);
}

template <class Visit, class Snapshot>
void snapshot_members(Visit& v, Snapshot& s) {
    v.format_and_version();
    v.object("run", s.run, run_members);
    v.object("totals", s.totals, stats_members);
    v.objects("domains", "a domain", s.domains, domain_members);
    v.strings("domain_names", "a domain name", s.domain_names);
    v.field("sample_bytes", s.sample_bytes);
    v.field("temporary_window", s.temporary_window);
    if (v.since(2)) {
        v.field("peak_kept", s.peak_kept);
        v.field("peak_current", s.peak_current);
    }
    v.objects("scopes", "a scope", s.scopes, scope_members);
    v.objects("types", "a type", s.types, type_members);
    v.objects("timeline", "a timeline point", s.timeline, point_members);
    if (v.since(4)) {
        v.objects("collector", "a collector generation", s.collector, collector_members);
        v.objects("pools", "a pool", s.pools, domain_members);
    }
    v.symbol_table(s.symbols);  // "modules", "symbols" of symbol_members, "inlined" of inlined_members
    v.rows("stacks", "a stack", s.stacks, stack_members);
    v.rows("sites", "a site", s.sites, site_members);
    if (v.since(5)) {
        v.field("classified", s.classified);
        v.objects("suppressed", "a suppressed site", s.suppressed, suppressed_members);
        v.objects("backref_chains", "a back-reference chain", s.backref_chains, chain_members);
        v.rows("backref_links", "a back-reference link", s.backref_links, link_members);
        v.chains_complete(s.backref_chains.size(), s.backref_links);
    }
    v.rows("allocations", "an allocation", s.allocations, allocation_members);
}

// Writes what snapshot_members visits, in the layout the schema describes: top-level members
// each on a line, except a scalar after a scalar; each element of a table on a line. Records
// do not nest, so one level of state is enough.
class snapshot_writer {
public:
    using frame_table = std::unordered_map<std::uintptr_t, frame_info>;

    // `extra` holds the frames of addresses that the snapshot's own table lacks, when the
    // snapshot is written as if symbolized without being copied.
    // `suppressed`, when given, is written in place of a snapshot's empty record of them.
    explicit snapshot_writer(std::string& out, const frame_table* extra = nullptr,
                             const std::vector<suppressed_site>* suppressed = nullptr) noexcept
        : out_(out), extra_(extra), suppressed_(suppressed) {}

    void format_and_version() {
        out_ += "{\"format\":\"memlens.snapshot\",\"version\":5";
        scalar_line_ = true;
    }

    // The writer writes the newest version, with every member.
    static constexpr bool since(std::uint64_t) noexcept { return true; }

    template <class T>
    void field(const char* name, const T& value) {
        member(name, true);
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
            put(static_cast<std::conditional_t<std::is_signed_v<T>, std::int64_t, std::uint64_t>>(value));
        } else {
            put(value);
        }
    }

    void stack(const char* name, std::uint32_t id) { field(name, id); }

    void kind(const char* name, leak_kind k) { field(name, static_cast<std::uint32_t>(k)); }

    void chains_complete(std::size_t, const std::vector<backref_link>&) const noexcept {}

    void objects(const char* name, const char*, const std::vector<suppressed_site>& list,
                 void (*members)(snapshot_writer&, const suppressed_site&)) {
        records(name, '{', suppressed_ && list.empty() ? *suppressed_ : list, members);
    }

    void module(const char* name, const std::string& path) {
        member(name, true);
        append_json_uint(out_, module_index_.find(path));
    }

    template <class R>
    void object(const char* name, const R& r, void (*members)(snapshot_writer&, const R&)) {
        member(name, false);
        record('{', r, members);
    }

    template <class R>
    void objects(const char* name, const char*, const std::vector<R>& list,
                 void (*members)(snapshot_writer&, const R&)) {
        records(name, '{', list, members);
    }

    template <class List>
    void rows(const char* name, const char*, const List& list,
              void (*members)(snapshot_writer&, const typename List::value_type&)) {
        records(name, '[', list, members);
    }

    void strings(const char* name, const char*, const std::vector<std::string>& list) {
        values(name, list);
    }

    void symbol_table(const frame_table& symbols) {
        // Sorted, so that the same snapshot always gives the same text.
        std::vector<std::uintptr_t> addresses;
        addresses.reserve(symbols.size() + (extra_ ? extra_->size() : 0));
        for (const auto& entry : symbols) addresses.push_back(entry.first);
        if (extra_) {
            for (const auto& entry : *extra_) addresses.push_back(entry.first);
        }
        std::sort(addresses.begin(), addresses.end());
        std::vector<const frame_info*> frames;
        frames.reserve(addresses.size());
        member("modules", false);
        out_ += '[';
        for (const std::uintptr_t address : addresses) {
            const auto known = symbols.find(address);
            frames.push_back(known != symbols.end() ? &known->second : &extra_->find(address)->second);
            const std::string& module = frames.back()->module;
            if (module_index_.insert(module).second) {
                out_ += module_index_.size() == 1 ? "\n" : ",\n";
                append_json_string(out_, module);
            }
        }
        out_ += ']';
        member("symbols", false);
        out_ += '[';
        for (std::size_t i = 0; i < frames.size(); ++i) {
            out_ += i ? ",\n" : "\n";
            record('[', *frames[i], symbol_members);
        }
        out_ += ']';
        member("inlined", false);
        out_ += '[';
        bool first = true;
        for (const frame_info* f : frames) {
            for (frame_info call : f->inlined) {
                out_ += first ? "\n" : ",\n";
                first = false;
                // The row names the symbol it belongs to, whatever the call's own copy says.
                call.address = f->address;
                record('[', call, inlined_members);
            }
        }
        out_ += ']';
    }

    void stack_id(const char* name, std::uint32_t id) { field(name, id); }

    void frames(const char* name, const std::vector<std::uintptr_t>& frames) { values(name, frames); }

private:
    // `"name":` for a member of an object, nothing for a field of a row; a separator before.
    MEMLENS_NOINLINE void member(const char* name, bool scalar) {
        if (!in_record_) {
            out_ += scalar && scalar_line_ ? "," : ",\n";
            scalar_line_ = scalar;
        } else if (!first_) {
            out_ += ',';
        }
        first_ = false;
        if (row_) return;
        out_ += '"';
        out_ += name;
        out_ += "\":";
    }

    // Out of line, as the reader's are: one copy of each compiles faster than a copy per field
    // of every record, and a call costs little beside the append.
    MEMLENS_NOINLINE void put(std::uint64_t value) { append_json_uint(out_, value); }
    MEMLENS_NOINLINE void put(std::int64_t value) { append_json_int(out_, value); }
    MEMLENS_NOINLINE void put(double value) { append_json_number(out_, value); }
    MEMLENS_NOINLINE void put(const std::string& value) { append_json_string(out_, value); }
    void put(bool value) { out_ += value ? '1' : '0'; }

    // An array of scalars, on one line.
    template <class T>
    void values(const char* name, const std::vector<T>& list) {
        member(name, false);
        out_ += '[';
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (i) out_ += ',';
            put(list[i]);
        }
        out_ += ']';
    }

    template <class List>
    void records(const char* name, char open, const List& list,
                 void (*members)(snapshot_writer&, const typename List::value_type&)) {
        member(name, false);
        out_ += '[';
        bool first = true;
        for (const auto& r : list) {
            out_ += first ? "\n" : ",\n";
            first = false;
            record(open, r, members);
        }
        out_ += ']';
    }

    template <class R>
    void record(char open, const R& r, void (*members)(snapshot_writer&, const R&)) {
        in_record_ = true;
        row_ = open == '[';
        first_ = true;
        out_ += open;
        members(*this, r);
        out_ += row_ ? ']' : '}';
        in_record_ = row_ = false;
    }

    std::string& out_;
    const frame_table* extra_;
    const std::vector<suppressed_site>* suppressed_;
    bool in_record_ = false, row_ = false, first_ = false;
    bool scalar_line_ = false;  // the last top-level member was a scalar
    string_index module_index_;
};

// The text of a snapshot whose symbol table, with `extra`, covers its stacks.
inline std::string snapshot_json_text(const snapshot& s, const snapshot_writer::frame_table* extra = nullptr) {
    std::string out;
    // Rows are about 40 to 60 bytes: one reservation instead of a dozen doublings of a large text.
    out.reserve(4096 + 64 * s.allocations.size() + 48 * s.sites.size() + 96 * s.symbols.size());
    const std::vector<suppressed_site> suppressed = suppressed_rows(s, active_suppressions(), extra);
    snapshot_writer writer(out, extra, &suppressed);
    snapshot_members(writer, s);
    out += "}\n";
    return out;
}

// to_json(s) without copying `s`: the frames its symbol table lacks are resolved beside it.
inline std::string symbolized_json_text(const snapshot& s) {
    guard quiet;
    snapshot_writer::frame_table extra;
    for (frame_info& f : symbolize(unresolved_addresses(s))) {
        const std::uintptr_t address = f.address;
        extra.emplace(address, std::move(f));
    }
    return snapshot_json_text(s, &extra);
}

// A strict reader of the version 5, 4, 3, 2 and 1 schemas, walking snapshot_members as the
// writer does.
// It never recurses (the schema has a fixed depth), and everything it allocates holds what it
// has read, so memory is bounded by the input.
class snapshot_reader {
public:
    explicit snapshot_reader(std::string_view text) : text_(text) {}

    snapshot read() {
        snapshot s;
        snapshot_members(*this, s);
        expect('}', "'}' to close the snapshot object (\"allocations\" is its last member)");
        space();
        if (at_ < text_.size()) fail("the end of the input after the snapshot object");
        return s;
    }

    void format_and_version() {
        expect('{', "'{' to open the snapshot object");
        key("format", true);
        std::string format;
        const std::size_t format_at = position();
        string(format, "format");
        if (format != "memlens.snapshot") {
            fail_at(format_at, "expected the format \"memlens.snapshot\", found \"" + printable(format) + "\"");
        }
        key("version");
        const std::size_t version_at = position();
        const std::uint64_t version = whole("version", std::numeric_limits<std::uint64_t>::max());
        if (version < 1 || version > 5) {
            fail_at(version_at, "expected version 5, 4, 3, 2 or 1 (the versions this reader knows), found " +
                                    std::to_string(version));
        }
        version_ = version;
    }

    // Whether the file's version has the members that version `first` added.
    bool since(std::uint64_t first) const noexcept { return version_ >= first; }


    template <class T>
    void field(const char* name, T& value) {
        member(name);
        if constexpr (std::is_same_v<T, std::string>) {
            string(value, name);
        } else if constexpr (std::is_same_v<T, bool>) {
            const std::size_t at = position();
            const std::uint64_t flag = whole(name, std::numeric_limits<std::uint64_t>::max());
            if (flag > 1) fail_at(at, "expected 0 or 1 for " + describe(name) + ", found " + std::to_string(flag));
            value = flag == 1;
        } else if constexpr (std::is_floating_point_v<T>) {
            value = real(name);
        } else if constexpr (std::is_signed_v<T>) {
            static_assert(sizeof(T) == sizeof(std::int64_t), "signed fields are 64-bit");
            value = static_cast<T>(whole(name, 0, true));
        } else {
            value = static_cast<T>(whole(name, std::numeric_limits<T>::max()));
        }
    }

    // A reference to a stack: 0 or an id that "stacks" holds.
    void stack(const char* name, std::uint32_t& id) {
        member(name);
        const std::size_t at = position();
        id = static_cast<std::uint32_t>(whole(name, std::numeric_limits<std::uint32_t>::max()));
        // Interned ids are mostly dense from 1, which makes most lookups one comparison.
        const bool dense = id != 0 && id <= stack_ids_.size() && stack_ids_[id - 1] == id;
        if (id != 0 && !dense && !std::binary_search(stack_ids_.begin(), stack_ids_.end(), id)) {
            fail_at(at, "expected 0 or an id from \"stacks\" for " + describe(name) + ", found " + std::to_string(id));
        }
    }

    // A leak kind: 0 still reachable, 1 possibly, 2 indirectly, 3 definitely lost.
    void kind(const char* name, leak_kind& k) {
        member(name);
        k = static_cast<leak_kind>(whole(name, static_cast<std::uint64_t>(leak_kind::definitely_lost)));
    }

    // Every link names a chain that "backref_chains" holds, and every chain has a link.
    void chains_complete(std::size_t chains, const std::vector<backref_link>& links) {
        std::vector<bool> linked(chains, false);
        for (std::size_t i = 0; i < links.size(); ++i) {
            if (links[i].chain >= chains) {
                fail("a chain index below " + std::to_string(chains) + " in back-reference link " +
                     std::to_string(i) + " (it names " + std::to_string(links[i].chain) + ")");
            }
            linked[links[i].chain] = true;
        }
        for (std::size_t c = 0; c < chains; ++c) {
            if (!linked[c]) fail("a link of back-reference chain " + std::to_string(c) + " in \"backref_links\"");
        }
    }

    // A stack's own id: above 0, and above the id before it.
    void stack_id(const char* name, std::uint32_t& id) {
        member(name);
        const std::size_t at = position();
        id = static_cast<std::uint32_t>(whole(name, std::numeric_limits<std::uint32_t>::max()));
        if (id == 0) fail_at(at, "expected a stack id above 0 (0 means \"no stack\")");
        if (!stack_ids_.empty() && id <= stack_ids_.back()) {
            fail_at(at, "expected stack ids in ascending order, each once; " + std::to_string(id) +
                            " follows " + std::to_string(stack_ids_.back()));
        }
        stack_ids_.push_back(id);
    }

    // A stack's return addresses, each of them in "symbols".
    void frames(const char* name, std::vector<std::uintptr_t>& frames) {
        member(name);
        open_list(name);
        for (bool first = true; more(name, first); first = false) {
            const std::size_t at = position();
            const std::uint64_t address = whole("frame address", std::numeric_limits<std::uint64_t>::max());
            if (!std::binary_search(symbol_addresses_.begin(), symbol_addresses_.end(), address)) {
                fail_at(at, "expected every frame address in \"symbols\"; " + std::to_string(address) +
                                " of stack " + std::to_string(stack_ids_.back()) + " is not there");
            }
            frames.push_back(address);
        }
    }

    void module(const char* name, std::string& path) {
        member(name);
        const std::size_t at = position();
        const std::uint64_t index = whole(name, std::numeric_limits<std::uint64_t>::max());
        if (index >= modules_.size()) {
            fail_at(at, "expected an index into \"modules\" (" + std::to_string(modules_.size()) +
                            " entries) for " + describe(name) + ", found " + std::to_string(index));
        }
        path = modules_[index];
    }

    template <class R>
    void object(const char* name, R& r, void (*members)(snapshot_reader&, R&)) {
        member(name);
        record(name, true, '{', r, members);
    }

    template <class R>
    void objects(const char* name, const char* noun, std::vector<R>& list,
                 void (*members)(snapshot_reader&, R&)) {
        records(name, noun, '{', list, members);
    }

    template <class R>
    void rows(const char* name, const char* noun, std::vector<R>& list,
              void (*members)(snapshot_reader&, R&)) {
        if constexpr (std::is_same_v<R, live_allocation>) {
            // The last table and the largest: a row takes 40 bytes or more with real addresses,
            // so one reservation instead of twenty doublings, never more than the input can fill.
            list.reserve((text_.size() - at_) / 40);
        }
        records(name, noun, '[', list, members);
    }

    using stack_row = std::pair<std::uint32_t, std::vector<std::uintptr_t>>;

    void rows(const char* name, const char* noun, std::map<std::uint32_t, std::vector<std::uintptr_t>>& table,
              void (*members)(snapshot_reader&, stack_row&)) {
        member(name);
        open_list(name);
        for (bool first = true; more(name, first); first = false) {
            stack_row row;
            record(noun, false, '[', row, members);
            table.emplace_hint(table.end(), row.first, std::move(row.second));
        }
    }

    void strings(const char* name, const char* noun, std::vector<std::string>& list) {
        member(name);
        open_list(name);
        for (bool first = true; more(name, first); first = false) {
            list.emplace_back();
            noun_ = noun;
            string(list.back(), nullptr);
            noun_ = nullptr;
        }
    }

    void symbol_table(std::unordered_map<std::uintptr_t, frame_info>& symbols) {
        strings("modules", "a module path", modules_);
        member("symbols");
        open_list("symbols");
        for (bool first = true; more("symbols", first); first = false) {
            frame_info f;
            const std::size_t row_at = position();
            record("a symbol", false, '[', f, symbol_members);
            if (!symbol_addresses_.empty() && f.address <= symbol_addresses_.back()) {
                fail_at(skip_space(row_at + 1), "expected symbol addresses in ascending order, each once; " +
                                                    std::to_string(f.address) + " follows " +
                                                    std::to_string(symbol_addresses_.back()));
            }
            symbol_addresses_.push_back(f.address);
            const std::uintptr_t address = f.address;
            symbols.emplace(address, std::move(f));
        }
        // Version 1 files, written before inlined calls were kept, have no "inlined".
        if (!since(2)) return;
        member("inlined");
        open_list("inlined");
        std::uintptr_t previous = 0;
        for (bool first = true; more("inlined", first); first = false) {
            frame_info call;
            const std::size_t row_at = position();
            record("an inlined call", false, '[', call, inlined_members);
            const auto outer = symbols.find(call.address);
            if (outer == symbols.end() || call.address < previous) {
                fail_at(skip_space(row_at + 1), "expected the address of a symbol, in ascending order, for an "
                                                "inlined call; found " + std::to_string(call.address));
            }
            previous = call.address;
            call.module = outer->second.module;
            call.offset = outer->second.offset;
            call.inline_call = true;
            outer->second.inlined.push_back(std::move(call));
        }
    }

private:
    // The members of one record, between its brackets. Records do not nest.
    template <class R>
    void record(const char* noun, bool keyed, char open, R& r, void (*members)(snapshot_reader&, R&)) {
        open_record(noun, keyed, open);
        members(*this, r);
        close_record();
    }

    void open_record(const char* noun, bool keyed, char open) {
        noun_ = noun;
        keyed_ = keyed;
        row_ = open == '[';
        first_ = true;
        fields_ = 0;
        if (!next_is(open)) fail(std::string(1, '\'') + open + "' to open " + noun_text());
        ++at_;
    }

    void close_record() {
        if (!next_is(row_ ? ']' : '}')) {
            fail(row_ ? "']' to close " + noun_text() + " (it has " + std::to_string(fields_) + " fields)"
                      : "'}' to close " + noun_text());
        }
        ++at_;
        noun_ = nullptr;
        keyed_ = row_ = first_ = false;
    }

    template <class R>
    void records(const char* name, const char* noun, char open, std::vector<R>& list,
                 void (*members)(snapshot_reader&, R&)) {
        member(name);
        open_list(name);
        for (bool first = true; more(name, first); first = false) {
            list.emplace_back();
            record(noun, false, open, list.back(), members);
        }
    }

    // A member of the object being read, or the next field of the row being read. This and the
    // readers of values are out of line: one copy of each compiles faster than a copy per field
    // of every record, and a call costs little beside the parsing.
    MEMLENS_NOINLINE void member(const char* name) {
        ++fields_;
        if (!row_) {
            key(name, first_);
        } else if (!first_) {
            if (!next_is(',')) fail("',' and " + describe(name));
            ++at_;
        }
        first_ = false;
    }

    // `"name":`, after a comma unless it is the first member of its object.
    void key(const char* name, bool first = false) {
        if (!first) {
            if (!next_is(',')) fail(std::string("',' and member \"") + name + "\"");
            ++at_;
        }
        space();
        const std::size_t n = std::strlen(name);
        if (text_.size() - at_ < n + 2 || text_[at_] != '"' || text_.compare(at_ + 1, n, name) != 0 ||
            text_[at_ + 1 + n] != '"') {
            fail(std::string("member \"") + name + "\" (members come in the order of the version " +
                 std::to_string(version_) + " schema)");
        }
        at_ += n + 2;
        expect(':', "':' after a member name");
    }

    void open_list(const char* name) {
        if (!next_is('[')) fail("'[' to open " + describe(name));
        ++at_;
    }

    // Whether an element of the array `name` follows, after its '[' (`first`) or an element:
    // moves past the ',' before it, or past the ']' that closes the array.
    bool more(const char* name, bool first) {
        if (next_is(']')) {
            ++at_;
            return false;
        }
        if (first) return true;
        if (at_ < text_.size() && text_[at_] == ',') {
            ++at_;
            return true;
        }
        fail("',' or ']' after an element of " + describe(name));
    }

    // What a message calls member or field `name` where the reader is. Built only on failure.
    std::string describe(const char* name) const {
        if (!noun_) return std::string("\"") + name + "\"";
        // An element of an array of strings has no name of its own.
        if (!name) return noun_;
        if (row_) return std::string(noun_) + "'s " + name;
        return std::string("\"") + name + "\" in " + noun_text();
    }

    std::string noun_text() const { return keyed_ ? std::string("\"") + noun_ + "\"" : std::string(noun_); }

    std::size_t position() {
        space();
        return at_;
    }

    [[noreturn]] MEMLENS_COLD void fail_at(std::size_t offset, const std::string& message) const {
        std::size_t line = 1, column = 1;
        for (std::size_t i = 0; i < offset && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        throw json_error("memlens snapshot JSON, line " + std::to_string(line) + ", column " +
                             std::to_string(column) + " (byte " + std::to_string(offset) +
                             "): " + message,
                         line, column, offset);
    }

    // "expected <what>, found <the next byte>" at the current position.
    [[noreturn]] MEMLENS_COLD void fail(const std::string& what) const {
        std::string found;
        if (at_ >= text_.size()) {
            found = "the end of the input";
        } else {
            const unsigned char c = static_cast<unsigned char>(text_[at_]);
            const std::size_t close = c == '"' ? text_.find('"', at_ + 1) : std::string_view::npos;
            if (close != std::string_view::npos && close - at_ <= 41) {
                // A string, most often a member the schema does not have: named by its name.
                const bool named = close + 1 < text_.size() && text_[close + 1] == ':';
                found = std::string(named ? "member " : "the string ") +
                        std::string(text_.substr(at_, close + 1 - at_));
            } else if (c >= 0x20 && c < 0x7f) {
                found = std::string("'") + static_cast<char>(c) + "'";
            } else {
                static const char hex[] = "0123456789abcdef";
                found = std::string("byte 0x") + hex[c >> 4] + hex[c & 0xf];
            }
        }
        fail_at(at_, "expected " + what + ", found " + found);
    }

    [[noreturn]] MEMLENS_COLD void fail_range(std::size_t start, const std::string& expected) const {
        const std::string_view digits = text_.substr(start, at_ - start);
        fail_at(start, "expected " + expected + ", found " + std::string(digits.substr(0, 40)) +
                           (digits.size() > 40 ? "..." : ""));
    }

    static std::string printable(const std::string& s) {
        std::string out;
        append_json_string(out, s.size() > 40 ? s.substr(0, 40) : s);
        return out.substr(1, out.size() - 2);
    }

    std::size_t skip_space(std::size_t i) const noexcept {
        while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\n' || text_[i] == '\r' || text_[i] == '\t')) ++i;
        return i;
    }

    void space() noexcept { at_ = skip_space(at_); }

    bool next_is(char c) {
        space();
        return at_ < text_.size() && text_[at_] == c;
    }

    void expect(char c, const char* what) {
        if (!next_is(c)) fail(what);
        ++at_;
    }

    // Moves past a number as RFC 8259 writes it and says whether it has neither fraction nor
    // exponent; false without moving when no number starts here.
    bool skip_number(bool& integral) {
        const auto digit = [&](std::size_t i) { return i < text_.size() && text_[i] >= '0' && text_[i] <= '9'; };
        std::size_t i = at_;
        if (i < text_.size() && text_[i] == '-') ++i;
        if (!digit(i)) return false;
        if (text_[i] == '0') {
            ++i;
        } else {
            while (digit(i)) ++i;
        }
        integral = true;
        if (i < text_.size() && text_[i] == '.') {
            integral = false;
            if (!digit(++i)) {
                at_ = i;
                fail("a digit after the decimal point");
            }
            while (digit(i)) ++i;
        }
        if (i < text_.size() && (text_[i] == 'e' || text_[i] == 'E')) {
            integral = false;
            ++i;
            if (i < text_.size() && (text_[i] == '+' || text_[i] == '-')) ++i;
            if (!digit(i)) {
                at_ = i;
                fail("a digit in the exponent");
            }
            while (digit(i)) ++i;
        }
        at_ = i;
        return true;
    }

    // Messages are built only on failure: this runs for every number of the file.
    std::string whole_expected(const char* name, std::uint64_t max, bool is_signed) const {
        if (is_signed) return "a whole number from -2^63 to 2^63 - 1 for " + describe(name);
        return "a whole number from 0 to " + std::to_string(max) + " for " + describe(name);
    }

    // A whole number from 0 to `max`, or, when `is_signed`, one that a std::int64_t holds
    // (returned as its two's complement).
    MEMLENS_NOINLINE std::uint64_t whole(const char* name, std::uint64_t max, bool is_signed = false) {
        space();
        const std::size_t start = at_;
        bool integral = false;
        if (!skip_number(integral) || !integral || (!is_signed && text_[start] == '-')) {
            at_ = start;
            fail(whole_expected(name, max, is_signed));
        }
        const char* const first = text_.data() + start;
        const char* const last = text_.data() + at_;
        std::uint64_t value = 0;
        bool fits = false;
        if (is_signed) {
            std::int64_t signed_value = 0;
            fits = std::from_chars(first, last, signed_value).ec == std::errc();
            value = static_cast<std::uint64_t>(signed_value);
        } else {
            fits = std::from_chars(first, last, value).ec == std::errc() && value <= max;
        }
        if (!fits) fail_range(start, whole_expected(name, max, is_signed));
        return value;
    }

    // A double, or null for one that was not finite when written.
    MEMLENS_NOINLINE double real(const char* name) {
        space();
        if (text_.compare(at_, 4, "null") == 0) {
            at_ += 4;
            return std::numeric_limits<double>::quiet_NaN();
        }
        const std::size_t start = at_;
        bool integral = false;
        if (!skip_number(integral)) fail("a number or null for " + describe(name));
        double value = 0;
        const auto result = std::from_chars(text_.data() + start, text_.data() + at_, value);
        if (result.ec != std::errc()) {
            fail_range(start, "a number or null for " + describe(name) + " within the range of a double");
        }
        return value;
    }

    unsigned hex4() {
        unsigned value = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = at_ < text_.size() ? text_[at_] : '\0';
            unsigned d;
            if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
            else fail("four hexadecimal digits after \\u");
            value = value * 16 + d;
            ++at_;
        }
        return value;
    }

    static void append_utf8(std::string& out, unsigned c) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xe0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }

    MEMLENS_NOINLINE void string(std::string& out, const char* name) {
        if (!next_is('"')) fail("a string for " + describe(name));
        ++at_;
        out.clear();
        for (;;) {
            std::size_t run = at_;
            while (run < text_.size() && text_[run] != '"' && text_[run] != '\\' &&
                   static_cast<unsigned char>(text_[run]) >= 0x20) {
                ++run;
            }
            out.append(text_.data() + at_, run - at_);
            at_ = run;
            if (at_ >= text_.size()) fail("'\"' to close a string for " + describe(name));
            const char c = text_[at_];
            if (c == '"') {
                ++at_;
                return;
            }
            if (c != '\\') fail("a character of a string (control characters must be escaped)");
            ++at_;
            const char e = at_ < text_.size() ? text_[at_] : '\0';
            if (e == 'u') {
                ++at_;
                unsigned code = hex4();
                if (code >= 0xdc00 && code <= 0xdfff) {
                    at_ -= 6;
                    fail("a high surrogate before the low surrogate \\u" + std::string(text_.substr(at_ + 2, 4)));
                }
                if (code >= 0xd800 && code <= 0xdbff) {
                    if (text_.compare(at_, 2, "\\u") != 0) fail("\\u and a low surrogate after a high surrogate");
                    at_ += 2;
                    const unsigned low = hex4();
                    if (low < 0xdc00 || low > 0xdfff) {
                        at_ -= 6;
                        fail("a low surrogate (\\udc00 to \\udfff) after a high surrogate");
                    }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                }
                append_utf8(out, code);
                continue;
            }
            const char unescaped = json_unescaped(e);
            if (unescaped == '\0') {
                fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and four hex digits) after a backslash");
            }
            out += unescaped;
            ++at_;
        }
    }

    std::string_view text_;
    std::size_t at_ = 0;
    // The record being read, for its separators and messages; no noun at the top level.
    const char* noun_ = nullptr;
    bool keyed_ = false;  // the noun is a member name
    bool row_ = false;    // an array row, whose fields have no keys
    bool first_ = false;  // no member or field of it read yet
    std::size_t fields_ = 0;
    std::uint64_t version_ = 0;
    std::vector<std::string> modules_;
    // Both ascending, as the writer puts them: lookups by binary search, far cheaper than the
    // snapshot's own map for a million allocations.
    std::vector<std::uintptr_t> symbol_addresses_;
    std::vector<std::uint32_t> stack_ids_;
};

}  // namespace detail

/// The JSON text of `s` in the "memlens.snapshot" version 5 schema (see the top of this
/// header). Symbolizes `s` first (a copy: pass an rvalue to avoid it), so that the text carries
/// every frame's function, file:line and module and any process can read it. Allocates the
/// text, about 50 bytes per live allocation.
inline std::string to_json(snapshot s) {
    detail::guard quiet;
    symbolize(s);
    return detail::snapshot_json_text(s);
}

/// Writes to_json(s) to `path` by the rule of detail/files.hpp: a regular file is replaced whole
/// through a temporary file and a rename, a device or FIFO is written in place, nothing else is
/// replaced. Throws std::runtime_error naming the path and the reason when it cannot be written.
inline void write_json(const snapshot& s, const std::string& path) {
    std::string error;
    if (!detail::write_output_file(path, detail::symbolized_json_text(s), error)) {
        throw std::runtime_error("memlens: " + error);
    }
}

/// The snapshot that `text` holds. Throws json_error, naming the line, column and byte offset
/// and what was expected there, for anything but a complete "memlens.snapshot" version 5, 4, 3, 2 or 1
/// document (truncated, corrupt, another format or version, numbers out of range, frames
/// missing from "symbols"). Never recurses; memory is bounded by the size of `text`.
inline snapshot from_json(std::string_view text) {
    detail::guard quiet;
    return detail::snapshot_reader(text).read();
}

/// The snapshot in the file at `path`. Throws std::runtime_error when the file cannot be read,
/// and json_error (its message starting with the path) when its text is refused.
inline snapshot read_json(const std::string& path) {
    std::string text;
    {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("memlens: cannot open " + path + ": " + std::strerror(errno));
        struct ::stat info {};
        if (::fstat(fd, &info) == 0 && info.st_size > 0) text.reserve(static_cast<std::size_t>(info.st_size));
        char buffer[65536];
        for (;;) {
            const ::ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int e = errno;
                ::close(fd);
                throw std::runtime_error("memlens: cannot read " + path + ": " + std::strerror(e));
            }
            if (n == 0) break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
        ::close(fd);
    }
    try {
        return from_json(text);
    } catch (const json_error& e) {
        throw json_error(path + ": " + e.what(), e.line(), e.column(), e.offset());
    }
}

MEMLENS_NAMESPACE_END
