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
    bool has_status = false;            ///< the /proc/self/status figures above were read
    bool has_stat = false;              ///< the fault counts were read
    bool has_fds = false;               ///< open_fds was read

    std::uint64_t pss_bytes = 0;        ///< proportional set (smaps_rollup Pss)
    std::uint64_t anonymous_bytes = 0;  ///< resident anonymous memory (smaps_rollup Anonymous)
    std::uint64_t file_bytes = 0;       ///< resident file-backed memory (Rss - Anonymous)
    bool has_rollup = false;            ///< the smaps_rollup figures above were read
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

/// One point of the monitor's timeline.
struct monitor_sample {
    double seconds = 0;                 ///< since the monitor started
    std::int64_t unix_time_ms = 0;      ///< wall-clock time of the sample
    process_figures process;            ///< Linux's figures then
    std::uint64_t tracked_bytes = 0;    ///< live bytes memlens tracks, each byte counted once
    std::uint64_t tracked_peak = 0;     ///< the peak of tracked_bytes up to then
    /// Resident bytes memlens does not track: rss_bytes - tracked_bytes, or 0 below it. Memory
    /// that fragmentation, allocator caches and untracked allocators hold.
    std::uint64_t untracked_bytes = 0;
    std::vector<std::uint64_t> domain_bytes;  ///< live bytes of each domain, by domain index
    std::string scope;                  ///< the named scope entered or left here; may be empty
    bool scope_entered = false;         ///< whether `scope` was entered (true) or left here
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
