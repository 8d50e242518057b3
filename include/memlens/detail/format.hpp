// memlens/detail/format.hpp: byte figures for people: exact bytes with digit groups, and the
// same figure in KiB / MiB / GiB.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace memlens::detail {

inline std::string group_digits(std::uint64_t value) {
    std::string digits = std::to_string(value);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// "512 B", "1.5 KiB", "2.40 MiB": `decimals` after the point from 1 KiB up, for columns and trees.
inline std::string compact_bytes(std::uint64_t bytes, int decimals = 1) {
    if (bytes < 1024) return std::to_string(bytes) + " B";
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double scaled = static_cast<double>(bytes) / 1024.0;
    int unit = 0;
    while (scaled >= 1024.0 && unit < 3) {
        scaled /= 1024.0;
        ++unit;
    }
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.*f %s", decimals, scaled, units[unit]);
    return buffer;
}

// "1,536 bytes (1.50 KiB)"; below 1 KiB just "512 bytes".
inline std::string describe_bytes(std::uint64_t bytes) {
    std::string out = group_digits(bytes) + (bytes == 1 ? " byte" : " bytes");
    if (bytes < 1024) return out;
    return out + " (" + compact_bytes(bytes, 2) + ")";
}

inline std::string describe_signed_bytes(std::int64_t bytes) {
    if (bytes >= 0) return describe_bytes(static_cast<std::uint64_t>(bytes));
    return "-" + describe_bytes(static_cast<std::uint64_t>(-(bytes + 1)) + 1);
}

}  // namespace memlens::detail
