// memlens/detail/json_text.hpp: the pieces every JSON writer and reader in memlens shares: string
// literals escaped as RFC 8259 asks, and numbers written exactly (integers) or with the 17
// significant digits that read back to the same double.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// The escapes of RFC 8259 that are a backslash and one letter: the byte, then the letter. "\/"
// is read but never written; every other control byte is written as \u00XX.
inline constexpr char json_escapes[][2] = {{'"', '"'},  {'\\', '\\'}, {'\n', 'n'}, {'\r', 'r'},
                                           {'\t', 't'}, {'\b', 'b'},  {'\f', 'f'}};

// The byte that a backslash and `letter` stand for, or 0 when they are not such an escape.
inline char json_unescaped(char letter) noexcept {
    for (const auto& e : json_escapes) {
        if (e[1] == letter) return e[0];
    }
    return letter == '/' ? '/' : '\0';
}

// Appends `text` as a JSON string literal. Bytes that are not valid UTF-8 pass through as they
// are: function names and paths come from the system, and a reader should see them unchanged.
// Runs that need no escape, most names whole, are copied at once.
inline void append_json_string(std::string& out, std::string_view text) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t copied = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (static_cast<unsigned char>(c) >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + copied, i - copied);
        copied = i + 1;
        out += '\\';
        char letter = 0;
        for (const auto& e : json_escapes) {
            if (e[0] == c) letter = e[1];
        }
        if (letter != 0) {
            out += letter;
        } else {
            out += "u00";
            out += hex[(c >> 4) & 0xf];
            out += hex[c & 0xf];
        }
    }
    out.append(text.data() + copied, text.size() - copied);
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

}  // namespace detail
MEMLENS_NAMESPACE_END
