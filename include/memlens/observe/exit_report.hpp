// memlens/observe/exit_report.hpp: what MEMLENS_LEAKS_AT_EXIT and MEMLENS_OUTPUT ask for, written
// when the program ends. The hooks (sources/new.hpp) include it, so that a program gets it with
// no code change.
#pragma once

#include <exception>
#include <string>

#include "../view/report.hpp"
#include "sites.hpp"

namespace memlens::detail {

inline bool recording_mode() {
    lock_guard hold(settings_lock);
    return settings.mode == live_mode::sites || settings.mode == live_mode::sampled;
}

// Text for a person: what is still alive, by site when sites were recorded.
inline std::string exit_text(const snapshot& s, bool sites_recorded) {
    if (sites_recorded) return leaks(s).describe(20, 16) + "\n" + format_summary(s);
    return "memlens: " + group_digits(s.totals.allocs - s.totals.frees) + " allocations, " +
           describe_bytes(s.totals.current) +
           " still alive at exit; set MEMLENS_MODE=sites to see where they were allocated\n";
}

inline void write_exit_report() noexcept {
    guard quiet;
    std::string path;
    {
        lock_guard hold(settings_lock);
        if (!settings.leaks_at_exit && settings.output[0] == '\0') return;
        path = settings.output;
    }
    try {
        const bool sites_recorded = recording_mode();
        const snapshot s = take_snapshot();
        if (path.empty()) {
            write_stderr(exit_text(s, sites_recorded).c_str());
            return;
        }
        const report_format format = report_format_for(path);
        const std::string text = format == report_format::text
                                     ? exit_text(s, sites_recorded)
                                     : format_report(s, format, "memlens: alive at exit");
        std::string error;
        if (!write_file_atomically(path, text, error)) {
            report_error(("the exit report is lost: " + error).c_str());
        }
    } catch (const std::exception& e) {
        report_error((std::string("the exit report could not be built: ") + e.what()).c_str());
    }
}

// Every program that can see this header writes the exit report; the hooks include it.
inline const bool exit_writer_installed = (exit_writer.store(&write_exit_report), true);

}  // namespace memlens::detail
