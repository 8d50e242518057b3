// memlens/detail/output_names.hpp: which report format a file name asks for, shared by the
// MEMLENS_OUTPUT reader, configure() and write_report, so that all three accept the same names.
#pragma once

#include <cstring>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// The report formats, in the order of memlens::report_format, that a file name asks for by its
// extension. A name without one (/dev/stderr, a FIFO) is text; an extension not listed is
// refused rather than guessed, so that "report.pdf" is not silently a text file.
constexpr const char* output_extensions_accepted =
    "none, .txt, .text or .log for text, .json, .html or .htm, .folded";

// The format number (0 text, 1 json, 2 html, 3 folded) a path's extension asks for; -1 for an
// extension memlens does not write.
inline int output_format_of(const char* path) noexcept {
    const char* name = std::strrchr(path, '/');
    name = name ? name + 1 : path;
    const char* dot = std::strrchr(name, '.');
    if (!dot || dot == name) return 0;
    static constexpr struct {
        const char* extension;
        int format;
    } known[] = {{".txt", 0}, {".text", 0}, {".log", 0}, {".json", 1},
                 {".html", 2}, {".htm", 2},  {".folded", 3}};
    for (const auto& k : known) {
        if (std::strcmp(dot, k.extension) == 0) return k.format;
    }
    return -1;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
