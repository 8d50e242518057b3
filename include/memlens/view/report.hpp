// memlens/view/report.hpp: a snapshot written in the format its file name asks for, the one
// call behind MEMLENS_OUTPUT and behind programs that write their own reports.
#pragma once

#include <stdexcept>
#include <string>

#include "../detail/files.hpp"
#include "../detail/output_names.hpp"
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
    /// folded stacks of the live bytes, for flamegraph.pl, inferno and speedscope (at exit, the
    /// peak's by default: MEMLENS_OUTPUT_KIND)
    folded,
};

/// The format a file name asks for: ".json", ".html" or ".htm", ".folded"; ".txt", ".text",
/// ".log" or no extension at all (a device, a FIFO) for text. Throws std::invalid_argument,
/// with the accepted list, for any other extension.
inline report_format report_format_for(const std::string& path) {
    const int format = detail::output_format_of(path.c_str());
    if (format < 0) {
        throw std::invalid_argument("memlens: " + path + " asks for a report format memlens does not write; "
                                    "accepted extensions: " + detail::output_extensions_accepted);
    }
    return static_cast<report_format>(format);
}

namespace detail {

// format_report without a copy of the snapshot: the formats that need frames resolve the ones
// that s.symbols lacks on the way, and write what they would have written from a copy
// symbolized first.
inline std::string report_text(const snapshot& s, report_format f, const std::string& title) {
    switch (f) {
    case report_format::json:
        return symbolized_json_text(s);
    case report_format::html: {
        html_options options;
        options.title = title;
        return html_document(s, options);
    }
    case report_format::folded:
        return folded_stacks(s);
    case report_format::text:
        break;
    }
    std::string text = concat({format_summary(s), "\n", format_site_table(s), "\n", format_tree(s)});
    if (s.classified) append_all(text, {"\n", format_leak_kinds(s)});
    return text;
}

}  // namespace detail

/// The report of `s` in format `f`, as text, with every frame resolved where the format needs
/// frames; the text of a classified snapshot (set_leak_kinds) ends with its leak kinds.
inline std::string format_report(snapshot s, report_format f, const std::string& title = "memlens report") {
    return detail::report_text(s, f, title);
}

/// Writes the report of `s` to `path` in the format its name asks for (report_format_for), by
/// the rule of detail/files.hpp: a regular file is replaced whole through a temporary file and
/// a rename, a device or FIFO is written in place, nothing else is replaced. Throws
/// std::runtime_error naming the path and the reason when it cannot be written.
inline void write_report(const snapshot& s, const std::string& path,
                         const std::string& title = "memlens report") {
    const std::string text = detail::report_text(s, report_format_for(path), title);
    std::string error;
    if (!detail::write_output_file(path, text, error)) throw std::runtime_error("memlens: " + error);
}

MEMLENS_NAMESPACE_END
