// memlens/observe/sites.hpp: who allocated what is still alive. Choosing what is tracked
// (configure, or the MEMLENS_* environment variables), snapshots of the live table and
// block-scoped leak checks. view/exit_report.hpp writes the report the settings ask for at exit.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "../core/runtime.hpp"
#include "../core/counters.hpp"
#include "../core/events.hpp"
#include "../detail/index.hpp"
#include "../detail/rank.hpp"
#include "../model/snapshot.hpp"
#include "named_scope.hpp"
#include "scope.hpp"
#include "types.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What memlens does with each allocation. Counters and scopes are exact in every mode but off.
enum class tracking_mode {
    /// The global operator new hooks count nothing. Tracking allocators, tracking resources and
    /// record_alloc still count: the program asked for them by name.
    off,
    /// Exact counters and scopes only (the default).
    counters,
    /// Counters, and the call stack of every allocation: each site's figures, alive and in all,
    /// for leak reports, snapshots, diffs and temporary allocations. A heap block carries its
    /// site in its header; see tracking_config::blocks for a record of every block.
    sites,
    /// Counters, and allocations sampled by bytes (one per `sample_bytes` on average): site
    /// figures are unbiased estimates.
    sampled,
};

/// How call stacks are captured.
enum class stack_method {
    /// Follows saved frame pointers, a few nanoseconds for a whole stack; complete only through
    /// code built with -fno-omit-frame-pointer. A frame without one ends the stack.
    frame_pointers,
    /// libgcc's unwinder: complete stacks through any code with unwind tables, 100 ns or more
    /// per frame.
    unwinder,
    /// Frame records where code has them, each module's .eh_frame where it has not (libstdc++
    /// on Debian), rules cached per return address: a few ns per frame once warm (the default).
    hybrid,
};

/// Which stacks a folded exit report (an `output` ending in .folded) holds; the other formats
/// hold them all.
enum class exit_kind {
    /// What was alive at the process's highest peak (the default), as capture_peak keeps it;
    /// what is alive at exit when no copy was kept at the peak (said so on stderr).
    peak,
    /// What is still alive at exit.
    leaks,
    /// Every byte allocated at each stack during the run, freed or not.
    allocations,
    /// Temporary allocations per stack (see temporary_window), counted, not in bytes.
    temporaries,
};

/// Everything configure() sets. The same settings come from the environment at start-up:
/// MEMLENS_MODE, MEMLENS_STACK_DEPTH, MEMLENS_STACK_METHOD, MEMLENS_SAMPLE_BYTES,
/// MEMLENS_SAMPLE_SEED, MEMLENS_TEMPORARY_WINDOW, MEMLENS_BLOCKS, MEMLENS_LIFETIMES, MEMLENS_CAPTURE_PEAK,
/// MEMLENS_LEAKS_AT_EXIT, MEMLENS_OUTPUT, MEMLENS_OUTPUT_KIND.
struct tracking_config {
    /// What is kept per allocation: counters only, every block with its stack, or samples.
    tracking_mode mode = tracking_mode::counters;
    /// Frames kept per stack, 1 to 128.
    std::size_t stack_depth = detail::default_stack_depth;
    /// How stacks are captured.
    stack_method method = stack_method::hybrid;
    /// Mean bytes between samples in sampled mode, 1 to 1 TiB.
    std::uint64_t sample_bytes = detail::default_sample_bytes;
    /// Seeds the sampler, so that a run can be repeated; 0 seeds from the clock.
    std::uint64_t sample_seed = 0;
    /// An allocation is temporary when its thread frees it before making this many more, 1 to
    /// 1,000,000. Above 16, sites mode keeps a record of every block (see `blocks`).
    std::uint32_t temporary_window = 1;
    /// In sites mode, keep a record of every live block (address, size, stack, thread, order)
    /// in the live table, not only its site's figures: snapshots then list each block. Costs
    /// a table insert and lookup per allocation, which grows with the live set. leak_check,
    /// measure_footprint and temporary windows above 16 keep such records while they need them.
    bool blocks = false;
    /// With `blocks` in sites mode, also time every block in a clock of bytes allocated: each
    /// stack's summed block lifetimes, the most bytes it held at once, what it held when the
    /// timed blocks were at their highest, exact under any threading (site_record::life), for
    /// DHAT's lifetime figures (view/dhat.hpp). Costs one process-wide lock per allocation and
    /// per free, which threads allocating at once contend for. MEMLENS_LIFETIMES=1 also sets
    /// sites mode and `blocks`.
    bool lifetimes = false;
    /// In sites mode, keep a snapshot of what is alive each time the process peak has risen by
    /// 10% (at least 64 KiB) since the last one: peak_snapshot() is then the peak's view, within
    /// that margin. Each copy costs a pass over the sites and the live table. From the
    /// environment, on by
    /// default when MEMLENS_OUTPUT is set in sites mode; configure() takes it as given.
    bool capture_peak = false;
    /// Write what is still alive when the program exits (to `output`, else to stderr).
    bool leaks_at_exit = false;
    /// With leaks_at_exit, classify what is alive at exit by reachability, in memcheck's kinds
    /// (classify_leaks()), in a text report; needs sites mode with `blocks`.
    /// MEMLENS_LEAKS_AT_EXIT=kinds sets all three.
    bool leak_kinds_at_exit = false;
    /// Where the exit report goes; empty for none unless leaks_at_exit is set.
    std::string output;
    /// Which stacks the exit report holds when `output` ends in .folded.
    exit_kind output_kind = exit_kind::peak;
};

namespace detail {

inline std::string check_config(const tracking_config& c) {
    const std::pair<const setting_range*, std::uint64_t> numbers[] = {
        {&stack_depth_range, c.stack_depth},
        {&sample_bytes_range, c.sample_bytes},
        {&temporary_window_range, c.temporary_window}};
    for (const auto& [range, value] : numbers) {
        if (!in_range(*range, value)) {
            return std::string(range->field) + " = " + std::to_string(value) +
                   " is out of range; accepted: " + range->accepted;
        }
    }
    if (c.output.size() >= output_path_capacity) {
        return "output is " + std::to_string(c.output.size()) +
               " bytes long; accepted: a path shorter than 4096 bytes";
    }
    if (c.output.find('\0') != std::string::npos) return "output contains a NUL byte";
    if (static_cast<unsigned>(c.output_kind) > static_cast<unsigned>(exit_kind::temporaries)) {
        return "output_kind = " + std::to_string(static_cast<int>(c.output_kind)) +
               " is not an exit_kind; accepted: " + output_kinds_accepted;
    }
    if (c.leak_kinds_at_exit && !(c.blocks && c.mode == tracking_mode::sites)) {
        return "leak_kinds_at_exit needs mode = sites and blocks = true: kinds are found for the "
               "blocks of the live table";
    }
    if (c.lifetimes && !(c.blocks && c.mode == tracking_mode::sites)) {
        return "lifetimes needs mode = sites and blocks = true: lifetimes are kept for the blocks "
               "of the live table";
    }
    if (detail::output_format_of(c.output.c_str()) < 0) {
        return "output \"" + c.output + "\" has an extension memlens does not write; accepted: " +
               detail::output_extensions_accepted;
    }
    return {};
}

inline std::string command_line() {
    std::string out;
    const int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buffer[4096];
    for (::ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    while (!out.empty() && out.back() == '\0') out.pop_back();
    for (char& c : out) {
        if (c == '\0') c = ' ';
    }
    return out;
}

inline std::string build_description() {
    std::string out;
#if defined(__clang__)
    out = "clang " __clang_version__;
#elif defined(__GNUC__)
    out = "g++ " __VERSION__;
#else
    out = "unknown compiler";
#endif
    out += ", C++" + std::to_string(__cplusplus / 100 % 100);
#if defined(__OPTIMIZE__)
    out += ", optimized";
#else
    out += ", not optimized";
#endif
    out += ", memlens " + std::to_string(MEMLENS_VERSION_MAJOR) + "." +
           std::to_string(MEMLENS_VERSION_MINOR) + "." + std::to_string(MEMLENS_VERSION_PATCH);
    return out;
}

inline const char* mode_name(live_mode m) noexcept {
    switch (m) {
    case live_mode::off: return "off";
    case live_mode::counters: return "counters";
    case live_mode::sites: return "sites";
    case live_mode::sampled: return "sampled";
    }
    return "?";
}

// The garbage collector's figures by generation; none while no collector is watched.
inline std::vector<collector_generation> collector_figures() {
    std::vector<collector_generation> out;
    const std::uint32_t generations = collector.generations.load(std::memory_order_acquire);
    for (std::uint32_t g = 0; g < generations && g < collector_generations; ++g) {
        const collector_generation_counters& c = collector.generation[g];
        out.push_back({g, c.collections.load(relaxed), c.collected.load(relaxed),
                       c.uncollectable.load(relaxed), c.threshold.load(relaxed),
                       static_cast<double>(c.nanoseconds.load(relaxed)) / 1e9,
                       static_cast<double>(c.longest_nanoseconds.load(relaxed)) / 1e9});
    }
    return out;
}

// Each runtime pool that has been named, with its figures.
inline std::vector<domain_figures> pool_figures() {
    std::vector<domain_figures> out;
    for (const runtime_pool_counters& p : runtime_pools) {
        const char* name = p.name.load(std::memory_order_acquire);
        if (!name) continue;
        const std::int64_t current = p.current.load(relaxed), peak = p.peak.load(relaxed);
        out.push_back({name, {static_cast<std::size_t>(current > 0 ? current : 0),
                              static_cast<std::size_t>(peak > 0 ? peak : 0),
                              static_cast<std::size_t>(p.total.load(relaxed)),
                              p.allocs.load(relaxed), p.frees.load(relaxed)}});
    }
    return out;
}

// The process-wide figures a snapshot carries beside its allocations.
inline void describe_process(snapshot& s) {
    s.totals = memlens::stats();
    for (const domain_stats& d : memlens::domains()) {
        s.domains.push_back({std::string(d.domain.name()), d.stats});
    }
    s.scopes = named_scopes();
    s.types = most_common_types(SIZE_MAX);
    s.collector = collector_figures();
    s.pools = pool_figures();
    ::timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    s.run.unix_time_ms = static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
    s.run.pid = ::getpid();
    s.run.command_line = command_line();
    s.run.build = build_description();
    lock_guard hold(settings_lock);
    s.run.mode = mode_name(settings.mode);
}

// Signed, because a read of the lanes while other threads allocate and free may see a free
// before its allocation: such a site reads as nothing alive.
inline std::uint64_t at_least_zero(std::uint64_t wrapped) noexcept {
    return static_cast<std::int64_t>(wrapped) < 0 ? 0 : wrapped;
}

// The allocations of the live table that `keep` accepts, with the stacks and sites they use.
// With `sited`, also one row per site for the blocks whose header names it.
template <class Keep>
snapshot collect(Keep&& keep, bool with_process = true, bool sited = true) {
    start_live();
    guard quiet;
    snapshot s;
    for_each_entry([&](const live_entry& e) {
        live_allocation a;
        a.address = e.address;
        a.size = entry_size(e);
        a.domain = entry_domain(e);
        a.stack = entry_stack(e);
        a.thread = entry_record(e);
        a.sequence = entry_sequence(e);
        a.sampled = entry_sampled(e);
        if (keep(a)) s.allocations.push_back(a);
    });
    const std::uint32_t ids = stacks.count();
    for (std::uint32_t id = 1; id <= ids; ++id) {
        const site_sum t = read_site(id);
        if (t.allocs == 0) continue;
        s.sites.push_back({id, t.allocs, t.bytes, t.temporaries});
        const std::uint64_t alive = at_least_zero(t.live_allocs);
        if (sited && alive != 0) {
            live_allocation a;
            a.size = at_least_zero(t.live_bytes);
            a.domain = t.domain != 0 ? t.domain : heap_slot;
            a.stack = id;
            a.count = alive;
            s.allocations.push_back(a);
        }
    }
    for (const live_allocation& a : s.allocations) {
        if (a.stack == 0 || s.stacks.count(a.stack)) continue;
        const stack_span span = stacks.frames(a.stack);
        s.stacks.emplace(a.stack, std::vector<std::uintptr_t>(span.frames, span.frames + span.size));
    }
    for (const site_record& r : s.sites) {
        if (s.stacks.count(r.stack)) continue;
        const stack_span span = stacks.frames(r.stack);
        s.stacks.emplace(r.stack, std::vector<std::uintptr_t>(span.frames, span.frames + span.size));
    }
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    s.domain_names.resize(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        s.domain_names[i] = std::string(domain_access::make(i).name());
    }
    {
        lock_guard hold(settings_lock);
        s.temporary_window = settings.temporary_window;
        if (s.estimated()) s.sample_bytes = settings.sample_bytes;
    }
    if (with_process) describe_process(s);
    return s;
}

// The latest copy of the live table at a new peak, swapped whole under the lock.
struct peak_store {
    spin_lock lock;
    snapshot* latest = nullptr;
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline peak_store peak_copies{};

// Runs inside an allocation hook, under a guard: it must not take a lock that code allocating
// while holding it could be waiting for, so it reads only the live table and the counters.
inline void copy_peak() noexcept {
    try {
        auto* copy = new snapshot(collect([](const live_allocation&) { return true; }, false));
        copy->totals = memlens::stats();
        copy->run.mode = "sites";
        snapshot* old = nullptr;
        {
            lock_guard hold(peak_copies.lock);
            old = peak_copies.latest;
            peak_copies.latest = copy;
        }
        delete old;
    } catch (const std::bad_alloc&) {
        report_error("out of memory while copying the live table at a new peak; the last copy stays");
    }
}

// What one stack held in the peak copy.
struct peak_figures {
    std::uint32_t stack = 0;
    std::uint64_t allocs = 0;
    std::uint64_t bytes = 0;
};

// Rows of peak_figures, or of site records (snapshot::sites), by stack.
inline bool peak_stack_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    return static_cast<const peak_figures*>(rows)[a].stack < static_cast<const peak_figures*>(rows)[b].stack;
}

inline bool site_stack_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    return static_cast<const site_record*>(rows)[a].stack < static_cast<const site_record*>(rows)[b].stack;
}

// Sites (rows of snapshot::sites) by their bytes at the peak, most first, then by allocations
// at the peak, then by stack.
inline bool peak_bytes_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const site_record& x = static_cast<const site_record*>(rows)[a];
    const site_record& y = static_cast<const site_record*>(rows)[b];
    if (x.peak_bytes != y.peak_bytes) return x.peak_bytes > y.peak_bytes;
    return x.peak_allocs != y.peak_allocs ? x.peak_allocs > y.peak_allocs : x.stack < y.stack;
}

// Gives `s`'s sites what the peak copy held at each stack, while peak copies are being kept: a
// copy left from an earlier configuration says nothing about this one's peak.
inline void add_peak_figures(snapshot& s) {
    if (!settings.capture_peak.load(relaxed)) return;
    guard quiet;
    std::vector<peak_figures> at_peak;
    {
        // Held while grouping, as peak_snapshot() holds it while copying: a new copy waits.
        lock_guard hold(peak_copies.lock);
        const snapshot* copy = peak_copies.latest;
        if (!copy) return;
        s.peak_kept = true;
        s.peak_current = copy->totals.current;
        key_index rows;
        for (const live_allocation& a : copy->allocations) {
            if (a.sampled) continue;
            const auto [row, added] = rows.insert(a.stack);
            if (added) at_peak.push_back({a.stack, 0, 0});
            at_peak[row].allocs += a.count;
            at_peak[row].bytes += a.size;
        }
        for (const peak_figures& p : at_peak) {
            const auto frames = copy->stacks.find(p.stack);
            if (frames != copy->stacks.end()) s.stacks.insert(*frames);
        }
    }
    auto site = s.sites.begin();
    std::vector<site_record> only_at_peak;
    for (const std::uint32_t row : sorted_rows(at_peak.size(), {at_peak.data(), peak_stack_before})) {
        const peak_figures& p = at_peak[row];
        while (site != s.sites.end() && site->stack < p.stack) ++site;
        if (site != s.sites.end() && site->stack == p.stack) {
            site->peak_allocs = p.allocs;
            site->peak_bytes = p.bytes;
        } else {
            site_record r;
            r.stack = p.stack;
            r.peak_allocs = p.allocs;
            r.peak_bytes = p.bytes;
            only_at_peak.push_back(r);
        }
    }
    if (only_at_peak.empty()) return;
    s.sites.insert(s.sites.end(), only_at_peak.begin(), only_at_peak.end());
    reorder(s.sites, sorted_rows(s.sites.size(), {s.sites.data(), site_stack_before}));
}

// Gives `s`'s sites their timed blocks' figures, while lifetimes are kept. The lock is held
// only while copying into reserved rows.
inline void add_lifetimes(snapshot& s) {
    if (!settings.lifetimes.load(relaxed)) return;
    guard quiet;
    const std::uint32_t last = stacks.count();
    std::vector<lifetime_sum> timed;
    timed.reserve(std::size_t{last} + 1);
    const lifetime_times times = read_lifetimes(last, [&](const lifetime_sum& l) {
        if (timed.size() < timed.capacity()) timed.push_back(l);
    });
    s.lifetimes_kept = true;
    s.lifetime_clock = times.clock;
    s.lifetime_peak_clock = times.peak_clock;
    s.lifetime_peak_bytes = times.peak_bytes;
    // Both ascending by stack; a stack timed but without a site record (stack 0) gets one.
    auto site = s.sites.begin();
    std::vector<site_record> only_timed;
    for (const lifetime_sum& l : timed) {
        while (site != s.sites.end() && site->stack < l.stack) ++site;
        site_record* r = nullptr;
        if (site != s.sites.end() && site->stack == l.stack) {
            r = &*site;
        } else {
            only_timed.push_back({});
            r = &only_timed.back();
            r->stack = l.stack;
        }
        r->life = {l.allocs, l.bytes, l.lifetimes, l.max_bytes, l.max_blocks,
                   l.peak_bytes, l.peak_blocks, l.live_bytes, l.live_blocks};
    }
    for (const site_record& r : only_timed) {
        if (r.stack == 0 || s.stacks.count(r.stack)) continue;
        const stack_span span = stacks.frames(r.stack);
        s.stacks.emplace(r.stack, std::vector<std::uintptr_t>(span.frames, span.frames + span.size));
    }
    if (only_timed.empty()) return;
    s.sites.insert(s.sites.end(), only_timed.begin(), only_timed.end());
    reorder(s.sites, sorted_rows(s.sites.size(), {s.sites.data(), site_stack_before}));
}

// Registered by configure() and by <memlens/hooks.hpp>, not by a global here: a global would
// compile the snapshot code into every unit that includes this header.
inline void install_peak_capturer() noexcept { peak_capturer.store(&copy_peak, std::memory_order_release); }


}  // namespace detail

/// Applies `config` to the whole process. A value out of range is reported through the error
/// handler and returned as false, and then nothing changes. Thread safe; settings made here
/// replace those read from the environment.
inline bool configure(const tracking_config& config) {
    const std::string error = detail::check_config(config);
    if (!error.empty()) {
        detail::report_error(("configure: " + error + "; the configuration is unchanged").c_str());
        return false;
    }
    detail::start_live();
    if (config.capture_peak) detail::install_peak_capturer();
    if (config.method == stack_method::unwinder) detail::warm_up_unwinder();
    detail::lock_guard hold(detail::settings_lock);
    detail::live_settings& s = detail::settings;
    s.mode = static_cast<detail::live_mode>(config.mode);
    s.stack_depth = static_cast<std::uint32_t>(config.stack_depth);
    s.method = config.method == stack_method::unwinder ? detail::unwind_method::unwinder
               : config.method == stack_method::hybrid ? detail::unwind_method::hybrid
                                                       : detail::unwind_method::frame_pointers;
    s.sample_bytes = config.sample_bytes;
    s.sample_seed = config.sample_seed;
    s.temporary_window = config.temporary_window;
    s.blocks = config.blocks;
    s.lifetimes = config.lifetimes;
    s.leaks_at_exit = config.leaks_at_exit;
    s.leak_kinds_at_exit = config.leak_kinds_at_exit;
    s.output_kind = static_cast<detail::folded_exit>(config.output_kind);
    if (config.capture_peak && !s.capture_peak.load(detail::relaxed)) detail::next_peak_capture.store(0, detail::relaxed);
    s.capture_peak = config.capture_peak;
    std::memcpy(s.output, config.output.c_str(), config.output.size() + 1);
    detail::update_switchboard();
    return true;
}

/// The settings in force, from the environment or from configure(). Thread safe.
inline tracking_config current_config() {
    detail::start_live();
    tracking_config c;
    detail::lock_guard hold(detail::settings_lock);
    const detail::live_settings& s = detail::settings;
    c.mode = static_cast<tracking_mode>(s.mode);
    c.stack_depth = s.stack_depth;
    c.method = s.method == detail::unwind_method::unwinder ? stack_method::unwinder
               : s.method == detail::unwind_method::hybrid ? stack_method::hybrid
                                                            : stack_method::frame_pointers;
    c.sample_bytes = s.sample_bytes;
    c.sample_seed = s.sample_seed;
    c.temporary_window = s.temporary_window;
    c.blocks = s.blocks;
    c.lifetimes = s.lifetimes;
    c.leaks_at_exit = s.leaks_at_exit;
    c.leak_kinds_at_exit = s.leak_kinds_at_exit;
    c.capture_peak = s.capture_peak;
    c.output = s.output;
    c.output_kind = static_cast<exit_kind>(s.output_kind);
    return c;
}

/// What is alive now of what was recorded: in sites mode every live allocation made since the
/// mode was set (one row per site for heap blocks that carry their site in their header, one
/// row per block for blocks kept in the live table; see live_allocation::count), in sampled
/// mode the sampled ones; plus the per-site totals and, while
/// tracking_config::capture_peak keeps a copy of the table at the peak, what each stack held
/// there (site_record::peak_allocs, peak_bytes; snapshot::peak_kept); while
/// tracking_config::lifetimes is on, each site's block lifetimes (site_record::life,
/// snapshot::lifetimes_kept). Thread safe; other threads keep allocating while it is taken, one
/// table shard at a time.
inline snapshot take_snapshot() {
    snapshot s = detail::collect([](const live_allocation&) { return true; });
    detail::add_peak_figures(s);
    detail::add_lifetimes(s);
    return s;
}

/// What was alive at the highest process peak seen so far (within 10%, see
/// tracking_config::capture_peak), with the totals at that moment; domains, named scopes and
/// types are as they are now. Empty allocations when capture_peak is off or nothing was
/// recorded yet. Thread safe.
inline snapshot peak_snapshot() {
    detail::guard quiet;
    snapshot out;
    {
        detail::lock_guard hold(detail::peak_copies.lock);
        if (detail::peak_copies.latest) out = *detail::peak_copies.latest;
    }
    const memory_stats at_peak = out.totals;
    detail::describe_process(out);
    if (!out.allocations.empty()) out.totals = at_peak;
    return out;
}

/// Live-table memory: bytes mapped for it and the allocations it holds now.
struct live_table_stats {
    /// Bytes mapped for the live table.
    std::size_t table_bytes = 0;
    /// Allocations the live table holds now.
    std::uint64_t allocations = 0;
    /// Bytes mapped for the interned stacks.
    std::size_t stack_bytes = 0;
    /// Distinct stacks interned.
    std::uint32_t stacks = 0;
    /// Bytes mapped for the per-site figures (pages the kernel backs as sites are used).
    std::size_t site_bytes = 0;
};

/// What the live table, the interned stacks and the per-site figures cost right now. Thread
/// safe, does not allocate.
inline live_table_stats live_table_usage() noexcept {
    const detail::live_table_usage u = detail::live_usage();
    return {u.mapped, u.entries, detail::stacks.memory_bytes(), detail::stacks.count(),
            detail::site_table_bytes()};
}

/// While alive, every allocation is recorded with its stack (whatever the mode), so that
/// report() can tell what the block made and left alive: the calling thread's allocations, or
/// every thread's with scope_kind::process. Allocations inside memlens::unscoped (a test
/// framework's own work) are not the thread's. Keeps every block in the live table while alive
/// (per-block mode; see tracking_config::blocks).
class leak_check {
public:
    /// Starts recording: the calling thread's allocations, or every thread's.
    explicit leak_check(scope_kind kind = scope_kind::thread) : kind_(kind) {
        detail::change_recorders(1);
        detail::guard quiet;
        if (kind_ == scope_kind::thread) {
            detail::thread_record* r = detail::this_thread.record;
            if (!r) r = detail::acquire_record();
            thread_ = r->shared ? 0 : r->index;
            marks_.assign(1, r->recorded.load(detail::relaxed));
        } else {
            for (auto* r = detail::core.records.load(std::memory_order_acquire); r; r = r->next) {
                if (r->index >= marks_.size()) marks_.resize(r->index + 1, 0);
                marks_[r->index] = r->recorded.load(detail::relaxed);
            }
        }
    }
    ~leak_check() { detail::change_recorders(-1); }
    leak_check(const leak_check&) = delete;
    leak_check& operator=(const leak_check&) = delete;

    /// The allocations made since construction that are still alive, as a snapshot.
    snapshot leaked() const {
        return detail::collect(
            [this](const live_allocation& a) {
                if (kind_ == scope_kind::thread) {
                    return a.thread == thread_ && thread_ != 0 && a.sequence > marks_[0];
                }
                const std::uint64_t mark = a.thread < marks_.size() ? marks_[a.thread] : 0;
                return a.sequence > mark;
            },
            true, false);
    }

private:
    scope_kind kind_;
    std::uint32_t thread_ = 0;
    std::vector<std::uint64_t> marks_;
};

MEMLENS_NAMESPACE_END
