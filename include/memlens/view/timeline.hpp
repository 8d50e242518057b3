// memlens/view/timeline.hpp: a process monitor's timeline as CSV and as JSON, for a plot of memory
// over time with the named scopes that ran (what mprof run / mprof plot give a Python program).
//
// Both formats hold the same figures, bytes in bytes and times in seconds, and leave a figure
// the monitor did not read empty (CSV) or null (JSON), so that "not read" never reads as 0.
//
// CSV: one header line, then one row per sample and one per scope mark, in time order (a mark
// at the same time as a sample comes after it). The columns, in order:
//   event                 "sample", or "enter" / "leave" for a named scope's mark
//   seconds               since the monitor started (monotonic clock), 6 decimals
//   unix_time_ms          wall-clock time of a sample
//   rss_bytes, rss_peak_bytes, vms_bytes, swap_bytes, threads     /proc/self/status
//   open_fds                                                      /proc/self/fd
//   minor_faults, major_faults                                    /proc/self/stat
//   tracked_bytes, tracked_peak_bytes, untracked_bytes            memlens's counters
//   pss_bytes, anonymous_bytes, file_bytes     /proc/self/smaps_rollup, on the samples that read it
//   malloc_arena_bytes, malloc_mmapped_bytes, malloc_in_use_bytes, malloc_free_bytes,
//   malloc_releasable_bytes                    mallinfo2, on the samples that read it
//   scope, thread         a mark's scope name and memlens's thread number
//   domain:<name> ...     each domain's live bytes, one column per domain by id ("heap" first)
// Fields holding a comma, a quote or a line break are quoted as RFC 4180 says.
//
// JSON: {"format": "memlens.timeline", "version": 1, "interval_seconds", "start_unix_time_ms",
// "dropped_samples", "dropped_marks", "domains": [names by id, "all" first],
// "samples": [{the sample columns above by name, "domain_bytes": [by id, all domains first]}],
// "marks": [{"seconds", "event": "enter" | "leave", "scope", "thread"}]}.
#pragma once

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/files.hpp"
#include "../detail/json_text.hpp"
#include "../model/process.hpp"
#include "../model/snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

namespace detail {

inline void append_csv_field(std::string& out, std::string_view text) {
    if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
        out.append(text.data(), text.size());
        return;
    }
    out += '"';
    for (char c : text) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

inline void append_seconds(std::string& out, double seconds) {
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.6f", seconds);
    out += buffer;
}

// The figures of a sample in CSV column order (after event, seconds and unix_time_ms), with
// `absent` for the ones not read: "" in CSV, "null" in JSON.
template <class Put>
void each_sample_figure(const monitor_sample& s, Put&& put) {
    const process_figures& p = s.process;
    put("rss_bytes", p.rss_bytes, p.has_status);
    put("rss_peak_bytes", p.rss_peak_bytes, p.has_status);
    put("vms_bytes", p.vms_bytes, p.has_status);
    put("swap_bytes", p.swap_bytes, p.has_status);
    put("threads", p.threads, p.has_status);
    put("open_fds", p.open_fds, p.has_fds);
    put("minor_faults", p.minor_faults, p.has_stat);
    put("major_faults", p.major_faults, p.has_stat);
    put("tracked_bytes", s.tracked_bytes, true);
    put("tracked_peak_bytes", s.tracked_peak, true);
    put("untracked_bytes", s.untracked_bytes, p.has_status);
    put("pss_bytes", p.pss_bytes, p.has_rollup);
    put("anonymous_bytes", p.anonymous_bytes, p.has_rollup);
    put("file_bytes", p.file_bytes, p.has_rollup);
    const allocator_figures& a = s.allocator;
    put("malloc_arena_bytes", a.arena_bytes, s.has_allocator);
    put("malloc_mmapped_bytes", a.mmapped_bytes, s.has_allocator);
    put("malloc_in_use_bytes", a.in_use_bytes, s.has_allocator);
    put("malloc_free_bytes", a.free_bytes, s.has_allocator);
    put("malloc_releasable_bytes", a.releasable_bytes, s.has_allocator);
}

constexpr std::size_t timeline_figure_columns = 19;

// The domain columns: every id the timeline names but 0 (the sum, which tracked_bytes gives).
inline std::size_t timeline_domain_columns(const monitor_timeline& t) {
    std::size_t columns = t.domain_names.size();
    for (const monitor_sample& s : t.samples) {
        if (s.domain_bytes.size() > columns) columns = s.domain_bytes.size();
    }
    return columns > 1 ? columns - 1 : 0;
}

}  // namespace detail

/// The timeline as CSV, columns as this file's header lists them. Allocates the text.
inline std::string timeline_csv(const monitor_timeline& t) {
    using detail::append_json_number;
    std::string out;
    const std::size_t domains = detail::timeline_domain_columns(t);
    out.reserve(256 + (t.samples.size() + t.marks.size()) * (160 + 12 * domains));
    out += "event,seconds,unix_time_ms";
    monitor_sample names;
    detail::each_sample_figure(names, [&](const char* name, std::uint64_t, bool) {
        out += ',';
        out += name;
    });
    out += ",scope,thread";
    for (std::size_t id = 1; id <= domains; ++id) {
        out += ',';
        const std::string name = "domain:" + (id < t.domain_names.size() ? t.domain_names[id] : std::to_string(id));
        detail::append_csv_field(out, name);
    }
    out += '\n';
    std::size_t m = 0;
    const auto write_mark = [&](const timeline_mark& mark) {
        out += mark.entered ? "enter," : "leave,";
        detail::append_seconds(out, mark.seconds);
        out += ',';
        out.append(detail::timeline_figure_columns, ',');
        out += ',';
        detail::append_csv_field(out, mark.scope);
        out += ',';
        append_json_number(out, std::uint64_t{mark.thread});
        out.append(domains, ',');
        out += '\n';
    };
    for (const monitor_sample& s : t.samples) {
        while (m < t.marks.size() && t.marks[m].seconds < s.seconds) write_mark(t.marks[m++]);
        out += "sample,";
        detail::append_seconds(out, s.seconds);
        out += ',';
        append_json_number(out, s.unix_time_ms);
        detail::each_sample_figure(s, [&](const char*, std::uint64_t value, bool read) {
            out += ',';
            if (read) append_json_number(out, value);
        });
        out += ",,";
        for (std::size_t id = 1; id <= domains; ++id) {
            out += ',';
            if (id < s.domain_bytes.size()) append_json_number(out, s.domain_bytes[id]);
        }
        out += '\n';
    }
    while (m < t.marks.size()) write_mark(t.marks[m++]);
    return out;
}

/// The timeline as JSON, in the schema this file's header gives (one sample or mark a line).
/// Allocates the text.
inline std::string timeline_json(const monitor_timeline& t) {
    using detail::append_json_number;
    using detail::append_json_string;
    std::string out;
    out.reserve(512 + t.samples.size() * 700 + t.marks.size() * 80);
    out += "{\"format\": \"memlens.timeline\", \"version\": 1, \"interval_seconds\": ";
    append_json_number(out, t.interval_seconds);
    out += ", \"start_unix_time_ms\": ";
    append_json_number(out, t.start_unix_time_ms);
    out += ", \"dropped_samples\": ";
    append_json_number(out, t.dropped_samples);
    out += ", \"dropped_marks\": ";
    append_json_number(out, t.dropped_marks);
    out += ",\n \"domains\": [";
    for (std::size_t i = 0; i < t.domain_names.size(); ++i) {
        if (i != 0) out += ", ";
        append_json_string(out, t.domain_names[i]);
    }
    out += "],\n \"samples\": [";
    for (std::size_t i = 0; i < t.samples.size(); ++i) {
        const monitor_sample& s = t.samples[i];
        out += i == 0 ? "\n  {\"seconds\": " : ",\n  {\"seconds\": ";
        append_json_number(out, s.seconds);
        out += ", \"unix_time_ms\": ";
        append_json_number(out, s.unix_time_ms);
        detail::each_sample_figure(s, [&](const char* name, std::uint64_t value, bool read) {
            out += ", \"";
            out += name;
            out += "\": ";
            if (read) append_json_number(out, value);
            else out += "null";
        });
        out += ", \"domain_bytes\": [";
        for (std::size_t d = 0; d < s.domain_bytes.size(); ++d) {
            if (d != 0) out += ", ";
            append_json_number(out, s.domain_bytes[d]);
        }
        out += "]}";
    }
    out += t.samples.empty() ? "],\n \"marks\": [" : "\n ],\n \"marks\": [";
    for (std::size_t i = 0; i < t.marks.size(); ++i) {
        const timeline_mark& mark = t.marks[i];
        out += i == 0 ? "\n  {\"seconds\": " : ",\n  {\"seconds\": ";
        append_json_number(out, mark.seconds);
        out += mark.entered ? ", \"event\": \"enter\", \"scope\": " : ", \"event\": \"leave\", \"scope\": ";
        append_json_string(out, mark.scope);
        out += ", \"thread\": ";
        append_json_number(out, std::uint64_t{mark.thread});
        out += '}';
    }
    out += t.marks.empty() ? "]}\n" : "\n ]}\n";
    return out;
}

/// Writes the timeline to `path` as CSV (a name ending in ".csv") or JSON (".json"), by the
/// rule of detail/files.hpp (a regular file replaced whole through a rename). Throws
/// std::invalid_argument for another extension, std::runtime_error naming the path and the
/// reason when it cannot be written.
inline void write_timeline(const monitor_timeline& t, const std::string& path) {
    const auto ends_with = [&](std::string_view suffix) {
        return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    std::string text;
    if (ends_with(".csv")) text = timeline_csv(t);
    else if (ends_with(".json")) text = timeline_json(t);
    else throw std::invalid_argument("memlens: " + path + ": a timeline is written as .csv or .json");
    std::string error;
    if (!detail::write_output_file(path, text, error)) throw std::runtime_error("memlens: " + error);
}

/// Makes a monitor's timeline the one every report of `s` draws, in place of the points the
/// program added (they run on another clock): a point per sample (tracked bytes as current and
/// peak, the resident set as rss) and a point per scope mark, labelled "enter NAME" or "leave
/// NAME", with the figures of the sample before it. Allocates.
inline void set_timeline(snapshot& s, const monitor_timeline& t) {
    const auto point_of = [](const monitor_sample& m) {
        return timeline_point{m.seconds, m.tracked_bytes, m.tracked_peak, {},
                              m.process.has_status ? m.process.rss_bytes : 0};
    };
    std::vector<timeline_point> points;
    points.reserve(t.samples.size() + t.marks.size());
    std::size_t next = 0;
    for (const timeline_mark& m : t.marks) {
        for (; next < t.samples.size() && t.samples[next].seconds <= m.seconds; ++next) {
            points.push_back(point_of(t.samples[next]));
        }
        timeline_point p = next > 0 ? point_of(t.samples[next - 1]) : timeline_point{};
        p.seconds = m.seconds;
        p.label = (m.entered ? "enter " : "leave ") + m.scope;
        points.push_back(std::move(p));
    }
    for (; next < t.samples.size(); ++next) points.push_back(point_of(t.samples[next]));
    s.timeline = std::move(points);
}

MEMLENS_NAMESPACE_END
