// memlens/view/report.hpp: a snapshot written in the format its file name asks for, the one
// call behind MEMLENS_OUTPUT and behind programs that write their own reports.
#pragma once

#include <stdexcept>
#include <string>

#include "../detail/files.hpp"
#include "folded.hpp"
#include "html.hpp"
#include "json.hpp"
#include "snapshot.hpp"
#include "text.hpp"

MEMLENS_NAMESPACE_BEGIN

/// The forms a report file can take.
enum class report_format {
    text,    ///< summary, site table and call tree, as the text views print them
    json,    ///< the "memlens.snapshot" schema of view/json.hpp, readable with read_json
    html,    ///< one self-contained page: flamegraph, tables, timeline, recommendations
    folded,  ///< folded stacks of the live bytes, for flamegraph.pl, inferno and speedscope
};

/// The format a file name asks for: ".json", ".html" or ".htm", ".folded"; anything else is text.
inline report_format report_format_for(const std::string& path) {
    auto ends_with = [&](const char* suffix) {
        const std::string s(suffix);
        return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
    };
    if (ends_with(".json")) return report_format::json;
    if (ends_with(".html") || ends_with(".htm")) return report_format::html;
    if (ends_with(".folded")) return report_format::folded;
    return report_format::text;
}

/// The report of `s` in format `f`, as text. Symbolizes `s` (a copy) where the format needs
/// frames.
inline std::string format_report(snapshot s, report_format f, const std::string& title = "memlens report") {
    switch (f) {
    case report_format::json:
        return to_json(std::move(s));
    case report_format::html: {
        html_options options;
        options.title = title;
        return to_html(std::move(s), options);
    }
    case report_format::folded:
        return folded_stacks(s);
    case report_format::text:
        break;
    }
    return format_summary(s) + "\n" + format_site_table(s) + "\n" + format_tree(s);
}

/// Writes the report of `s` to `path` in the format its name asks for (report_format_for),
/// through a temporary file and a rename, so that a crash never leaves half a report. Throws
/// std::runtime_error naming the path and the system's reason when it cannot be written.
inline void write_report(const snapshot& s, const std::string& path,
                         const std::string& title = "memlens report") {
    const std::string text = format_report(s, report_format_for(path), title);
    std::string error;
    if (!detail::write_file_atomically(path, text, error)) throw std::runtime_error(error);
}

MEMLENS_NAMESPACE_END
