// memlens/detail/json_text.hpp: the pieces every JSON writer in memlens shares: string
// literals escaped as RFC 8259 asks, and numbers written exactly (integers) or with the 17
// significant digits that read back to the same double.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace memlens::detail {

// Appends `text` as a JSON string literal. Bytes that are not valid UTF-8 pass through as they
// are: function names and paths come from the system, and a reader should see them unchanged.
inline void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (const char c : text) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                out += "\\u00";
                out += hex[(c >> 4) & 0xf];
                out += hex[c & 0xf];
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

// Without std::to_string's temporary string: the report writers append millions of numbers.
inline void append_json_number(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    out.append(buffer, static_cast<std::size_t>(end - buffer));
}

inline void append_json_number(std::string& out, std::int64_t value) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    out.append(buffer, static_cast<std::size_t>(end - buffer));
}

inline void append_json_uint(std::string& out, std::uint64_t value) { append_json_number(out, value); }

inline void append_json_int(std::string& out, std::int64_t value) { append_json_number(out, value); }

// JSON has no NaN or infinity: they are written as null.
inline void append_json_number(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    out += buffer;
}

}  // namespace memlens::detail
