// memlens/model/frames.hpp: one resolved frame of a call stack, as the symbolizer produces it and
// every view prints it.
#pragma once

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../detail/config.hpp"
#include "../detail/names.hpp"

MEMLENS_NAMESPACE_BEGIN

/// How text names a frame's function: briefly, qualified with template arguments collapsed and
/// without parameters ("std::vector<>::push_back"), or whole, as the symbol has it.
enum class name_form {
    brief,  ///< "std::map<>::operator[]": what tables, trees and reports show by default
    full,   ///< "std::map<int, int, ...>::operator[](int const&)"
};

/// One resolved frame of a captured stack.
struct frame_info {
    std::uintptr_t address = 0;  ///< the return address as captured
    std::string function;        ///< demangled; empty when no symbol covers the address
    std::string file;            ///< empty without debug info or an external symbolizer
    unsigned line = 0;           ///< 0 when unknown
    std::string module;          ///< path of the executable or shared object; empty if unmapped
    std::uintptr_t offset = 0;   ///< address - the module's load base
    /// The calls the compiler inlined at this address, innermost first, each a frame of its own
    /// with its function and file:line (and this frame's address and module); `file` and `line`
    /// above are then the line of `function` that the outermost of them was called from. Empty
    /// when nothing was inlined here or the module has no debug information saying so.
    std::vector<frame_info> inlined;
    /// This frame is one of another frame's `inlined` calls: it has no return address of its own.
    bool inline_call = false;

    /// "function at file:line", "function (module+0x1a2b)", "module+0x1a2b" or
    /// "0x1a2b (unmapped)", the module by its file name only, with " (inlined)" after an
    /// inlined call; the function named whole, or briefly when asked. Allocates the result.
    std::string describe(name_form names = name_form::full) const;
};

namespace detail {

inline std::string hex_address(std::uintptr_t value) {
    char buffer[2 + 2 * sizeof value + 1];
    std::snprintf(buffer, sizeof buffer, "0x%" PRIxPTR, value);
    return buffer;
}

}  // namespace detail

inline std::string frame_info::describe(name_form names) const {
    if (module.empty()) return detail::hex_address(address) + " (unmapped)";
    const std::size_t slash = module.rfind('/');
    const std::string where = module.substr(slash == std::string::npos ? 0 : slash + 1) + "+" +
                              detail::hex_address(offset);
    if (function.empty() && file.empty()) return where;
    std::string out = function.empty() ? where : names == name_form::brief ? detail::short_name(function) : function;
    if (file.empty()) return out + " (" + where + ")";
    out += " at " + file;
    if (line != 0) out += ":" + std::to_string(line);
    if (inline_call) out += " (inlined)";
    return out;
}

MEMLENS_NAMESPACE_END
