// Whether the tests can expect source lines: memlens names them through an external symbolizer.
#pragma once

#include <cstdlib>

#include <memlens/observe/symbols.hpp>

namespace memlens_test {

// True when MEMLENS_SYMBOLIZER names one, or one is found on PATH (an empty MEMLENS_SYMBOLIZER
// turns symbolization off).
inline bool has_symbolizer() {
    const char* forced = std::getenv("MEMLENS_SYMBOLIZER");
    if (forced) return forced[0] != '\0';
    const char* path = std::getenv("PATH");
    return path && !memlens::detail::search_path_for_symbolizer(path).empty();
}

}  // namespace memlens_test
