// memlens/model/frames.hpp: one resolved frame of a call stack, as the symbolizer produces it and
// every view prints it.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN

/// One resolved frame of a captured stack.
struct frame_info {
    std::uintptr_t address = 0;  ///< the return address as captured
    std::string function;        ///< demangled; empty when no symbol covers the address
    std::string file;            ///< empty without debug info or an external symbolizer
    unsigned line = 0;           ///< 0 when unknown
    std::string module;          ///< path of the executable or shared object; empty if unmapped
    std::uintptr_t offset = 0;   ///< address - the module's load base

    /// "function at file:line", "function (module+0x1a2b)", "module+0x1a2b" or
    /// "0x1a2b (unmapped)", the module by its file name only. Allocates the result.
    std::string describe() const;
};

namespace detail {

inline std::string hex_address(std::uintptr_t value) {
    char buffer[2 + 2 * sizeof value + 1];
    std::snprintf(buffer, sizeof buffer, "0x%" PRIxPTR, value);
    return buffer;
}

}  // namespace detail

inline std::string frame_info::describe() const {
    if (module.empty()) return detail::hex_address(address) + " (unmapped)";
    const std::size_t slash = module.rfind('/');
    const std::string where = module.substr(slash == std::string::npos ? 0 : slash + 1) + "+" +
                              detail::hex_address(offset);
    if (function.empty() && file.empty()) return where;
    std::string out = function.empty() ? where : function;
    if (file.empty()) return out + " (" + where + ")";
    out += " at " + file;
    if (line != 0) out += ":" + std::to_string(line);
    return out;
}

MEMLENS_NAMESPACE_END
