// memlens/view/exit_report.hpp: what MEMLENS_LEAKS_AT_EXIT and MEMLENS_OUTPUT ask for, written
// when the program ends: the peak when a copy of it was kept, and what is still alive. Only <memlens/hooks.hpp> registers it, so that the report writers are
// compiled in the one unit that holds the hooks and nowhere else.
#pragma once

#include <exception>
#include <string>

#include <unistd.h>

#include "../observe/sites.hpp"
#include "leak_kinds.hpp"
#include "report.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

inline bool recording_mode() {
    lock_guard hold(settings_lock);
    return settings.mode == live_mode::sites || settings.mode == live_mode::sampled;
}

// Text for a person: the peak's largest sites when a copy was kept there, then what is still
// alive, by site when sites were recorded.
inline std::string exit_text(const snapshot& s, bool sites_recorded) {
    if (sites_recorded && s.peak_kept) {
        return concat({format_peak_sites(s, 10, 16), "\n", leaks(s).describe(20, 16), "\n", format_summary(s)});
    }
    if (sites_recorded) return concat({leaks(s).describe(20, 16), "\n", format_summary(s)});
    const std::uint64_t alive = s.totals.allocs - s.totals.frees;
    return concat({"memlens: ", digits(alive), plural(alive, " allocation, ", " allocations, "),
                   described(s.totals.current),
                   " still alive at exit; set MEMLENS_MODE=sites to see where they were allocated\n"});
}

// The stacks a .folded exit report holds: the kind asked for, or the leaks when the peak was
// asked for and no copy of it was kept.
inline std::string exit_folded(const snapshot& s, folded_exit kind) {
    folded_options options;
    switch (kind) {
    case folded_exit::peak: options.source = folded_source::peak; break;
    case folded_exit::leaks: options.source = folded_source::live; break;
    case folded_exit::allocations: options.source = folded_source::allocated; break;
    case folded_exit::temporaries: options.source = folded_source::temporaries; break;
    }
    if (kind == folded_exit::peak && !s.peak_kept) {
        report_error("no copy of the live table was kept at the peak (it is kept in sites mode unless "
                     "MEMLENS_CAPTURE_PEAK=0), so the .folded exit report holds what is still alive "
                     "at exit");
        options.source = folded_source::live;
    }
    return folded_stacks(s, options);
}

// `path` with each "%p" replaced by the process id, so that the processes of one program, its
// children after fork and the programs they exec, each write a report of their own.
inline std::string output_path_for_process(std::string path, long pid) {
    const std::string id = std::to_string(pid);
    for (std::size_t at = path.find("%p"); at != std::string::npos; at = path.find("%p", at + id.size())) {
        path.replace(at, 2, id);
    }
    return path;
}

inline void write_exit_report() noexcept {
    guard quiet;
    std::string path;
    folded_exit kind = folded_exit::peak;
    bool kinds = false;
    {
        lock_guard hold(settings_lock);
        if (!settings.leaks_at_exit && settings.output[0] == '\0') return;
        path = settings.output;
        kind = settings.output_kind;
        kinds = settings.leak_kinds_at_exit && settings.blocks;
    }
    try {
        path = output_path_for_process(path, static_cast<long>(::getpid()));
        // Classified first: the snapshot and its text would be blocks of their own. The
        // snapshot's allocations become the scanned blocks, with their kinds and the chains
        // that keep the largest still-reachable sites alive, for every format.
        reach_options from_exit;
        from_exit.stack_from = exit_stack_from;
        const leak_kinds classified = kinds ? classify_leaks(from_exit) : leak_kinds();
        const bool sites_recorded = recording_mode();
        snapshot s = take_snapshot();
        if (kinds) set_leak_kinds(s, classified);
        const std::string kinds_text =
            kinds ? leak_kinds_text(s, 20, 16, false, classified.unstopped) : std::string();
        if (path.empty()) {
            write_stderr((kinds ? kinds_text : exit_text(s, sites_recorded)).c_str());
            return;
        }
        const report_format format = report_format_for(path);
        std::string text;
        if (format == report_format::text) {
            text = kinds ? kinds_text : exit_text(s, sites_recorded);
        } else if (format == report_format::folded) {
            text = exit_folded(s, kind);
        } else {
            text = report_text(s, format, s.peak_kept ? "memlens: the peak and what is alive at exit"
                                                      : "memlens: alive at exit");
        }
        std::string error;
        if (!write_output_file(path, text, error)) {
            report_error(("the exit report is lost: " + error).c_str());
        }
    } catch (const std::exception& e) {
        report_error((std::string("the exit report could not be built: ") + e.what()).c_str());
    }
}

// Makes the program write what the settings ask for at exit, and keep the peak copies that
// MEMLENS_CAPTURE_PEAK asks for. Called by <memlens/hooks.hpp>, once per program.
inline bool install_exit_report() noexcept {
    exit_writer.store(&write_exit_report, std::memory_order_release);
    install_peak_capturer();
    return true;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
