// memlens/model/process.hpp: what Linux and the C allocator say of the process, one monitor
// sample, and an alert rule's state. Plain data, which the monitor fills and views read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN

/// The process's figures from /proc. A figure its file did not give (a container without
/// smaps_rollup, an old kernel) is 0 and its `has_*` flag is false, so that "absent" reads
/// differently from "nothing".
struct process_figures {
    std::uint64_t rss_bytes = 0;        ///< resident set (VmRSS)
    std::uint64_t rss_peak_bytes = 0;   ///< high-water resident set (VmHWM)
    std::uint64_t vms_bytes = 0;        ///< virtual size (VmSize)
    std::uint64_t swap_bytes = 0;       ///< swapped out (VmSwap)
    std::uint32_t threads = 0;          ///< threads of the process (Threads)
    std::uint32_t open_fds = 0;         ///< entries of /proc/self/fd
    std::uint64_t minor_faults = 0;     ///< page faults served without I/O (/proc/self/stat)
    std::uint64_t major_faults = 0;     ///< page faults that read from disk (/proc/self/stat)
    /// The /proc/self/status figures above were read: the file held VmRSS. A figure beside it
    /// that the file lacks (VmSwap on a kernel or sandbox that prints none) stays 0, and the
    /// reader's read_error names it.
    bool has_status = false;
    bool has_stat = false;              ///< the fault counts were read
    bool has_fds = false;               ///< open_fds was read

    std::uint64_t pss_bytes = 0;        ///< proportional set (smaps_rollup Pss)
    std::uint64_t anonymous_bytes = 0;  ///< resident anonymous memory (smaps_rollup Anonymous)
    std::uint64_t file_bytes = 0;       ///< resident file-backed memory (Rss - Anonymous)
    /// The smaps_rollup figures above were read: the file held Rss. Pss or Anonymous missing
    /// beside it stay 0 (file_bytes then too), and the reader's read_error names them.
    bool has_rollup = false;
};

/// One mapping's share of the process, as /proc/self/smaps gives it, or several mappings of
/// one kind summed ("[heap]", "[stack]", "[anon]", "[thread stacks]", or a file's path).
struct mapping_figures {
    std::string name;                   ///< the kind or the file's path
    std::uint64_t size_bytes = 0;       ///< mapped (Size)
    std::uint64_t rss_bytes = 0;        ///< resident (Rss)
    std::uint64_t pss_bytes = 0;        ///< proportional (Pss)
    std::uint64_t anonymous_bytes = 0;  ///< resident anonymous (Anonymous)
    std::uint64_t swap_bytes = 0;       ///< swapped out (Swap)
    std::uint32_t mappings = 0;         ///< how many mappings were summed into this row
};

/// glibc's own figures (mallinfo2): what its arenas hold, in use or free.
struct allocator_figures {
    std::uint64_t arena_bytes = 0;      ///< obtained from the system by brk/sbrk (arena)
    std::uint64_t mmapped_bytes = 0;    ///< in blocks mmapped one by one (hblkhd)
    std::uint64_t in_use_bytes = 0;     ///< handed out to the program (uordblks)
    std::uint64_t free_bytes = 0;       ///< held free in the arenas (fordblks)
    std::uint64_t releasable_bytes = 0; ///< free at the top of the main arena (keepcost)
};

/// What trim() gave back to the system: the resident set before and after malloc_trim(0).
struct trim_figures {
    std::uint64_t rss_before = 0;       ///< VmRSS just before malloc_trim(0)
    std::uint64_t rss_after = 0;        ///< VmRSS just after it
    /// rss_before - rss_after, or 0 when the resident set did not shrink (another thread may
    /// have touched memory in between: the figure is the process's, not the trim's alone).
    std::uint64_t released_bytes = 0;
    bool trimmed = false;               ///< malloc_trim said it returned memory to the system
    bool has_rss = false;               ///< both resident figures were read (/proc/self/status)
};

/// One point of the monitor's timeline. Sizes in bytes, times in seconds.
struct monitor_sample {
    double seconds = 0;                 ///< since the monitor started (monotonic clock)
    std::int64_t unix_time_ms = 0;      ///< wall-clock time of the sample
    process_figures process;            ///< Linux's figures then (smaps_rollup only when asked)
    /// Live bytes memlens tracks, each byte counted once: every domain together (stats()),
    /// less the domains the monitor was told count bytes another domain counts too
    /// (monitor_config::nested_domains).
    std::uint64_t tracked_bytes = 0;
    /// The highest tracked_bytes up to then: memlens's own all-domain peak (stats().peak),
    /// which sees between samples, when no domain is nested; else the highest sampled value.
    std::uint64_t tracked_peak = 0;
    /// Resident bytes memlens does not track: rss_bytes - tracked_bytes, or 0 below it. Memory
    /// that fragmentation, allocator caches and untracked allocators hold.
    std::uint64_t untracked_bytes = 0;
    /// Live bytes of each domain by domain id (domain::id(); monitor_timeline::domain_names
    /// names them): [0] is every domain together, [1] "heap". Domains registered after the
    /// monitor filled its columns (monitor_config::domain_columns) are not listed.
    std::vector<std::uint64_t> domain_bytes;
    allocator_figures allocator;        ///< glibc's figures, when has_allocator
    bool has_allocator = false;         ///< mallinfo2 was read at this sample
};

/// A named scope (MEMLENS_SCOPE) entered or left while a monitor ran.
struct timeline_mark {
    double seconds = 0;                 ///< since the monitor started, on the samples' clock
    std::string scope;                  ///< the scope's name (its first 47 bytes)
    bool entered = false;               ///< entered (true) or left (false)
    std::uint32_t thread = 0;           ///< memlens's number for the thread; 0 when it had none
};

/// What a monitor kept: its samples and the scope marks between them, oldest first.
struct monitor_timeline {
    double interval_seconds = 0;        ///< the sampling interval
    std::int64_t start_unix_time_ms = 0;  ///< wall-clock time of `seconds` = 0
    /// Domain names by domain id, as monitor_sample::domain_bytes indexes them ([0] "all").
    std::vector<std::string> domain_names;
    std::vector<monitor_sample> samples;  ///< the samples the ring still holds
    std::vector<timeline_mark> marks;     ///< the scope marks the ring still holds
    std::uint64_t dropped_samples = 0;  ///< older samples the bounded ring let go
    /// Marks let go: older ones the bounded ring overwrote, and marks written faster than the
    /// monitor read them (more than the shared mark buffer holds between two samples).
    std::uint64_t dropped_marks = 0;
};

/// A monitor alert rule's state, as the callbacks and /metrics see it.
struct alert_state {
    std::string name;                   ///< the rule's name
    bool firing = false;                ///< above its limit now (with hysteresis applied)
    std::uint64_t times_fired = 0;      ///< how often it went from quiet to firing
    double value = 0;                   ///< the figure the rule last compared
    double limit = 0;                   ///< the limit it compares against
};

MEMLENS_NAMESPACE_END
