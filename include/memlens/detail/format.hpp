// memlens/detail/format.hpp: figures and tables for people: exact bytes with digit groups, the
// same figure in KiB / MiB / GiB, and the one text-table layout every text view uses.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

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

// One column of a text table.
struct table_column {
    const char* heading;
    bool right = false;      // figures align right, names left
    std::size_t width = 0;   // the least width, for a table that should keep its shape
};

// A text table: a heading line, then one line per row of `cells` (the rows one after another, a
// cell per column). Columns are as wide as their widest cell, two spaces apart, each line after
// `indent`; no line ends in spaces. `bold` makes the heading line ANSI bold.
inline std::string format_table(std::initializer_list<table_column> columns,
                                const std::vector<std::string>& cells, const char* indent = "",
                                bool bold = false) {
    const table_column* const column = columns.begin();
    const std::size_t count = columns.size();
    std::vector<std::size_t> width(count);
    std::vector<std::string> headings(count);
    for (std::size_t c = 0; c < count; ++c) {
        headings[c] = column[c].heading;
        width[c] = std::max(column[c].width, headings[c].size());
    }
    for (std::size_t i = 0; i < cells.size(); ++i) width[i % count] = std::max(width[i % count], cells[i].size());
    std::string out;
    for (std::size_t row = 0; row <= cells.size() / count; ++row) {
        const std::string* const cell = row == 0 ? headings.data() : cells.data() + (row - 1) * count;
        if (row == 0 && bold) out += "\x1b[1m";
        const std::size_t start = out.size();
        out += indent;
        for (std::size_t c = 0; c < count; ++c) {
            if (c != 0) out += "  ";
            const std::size_t fill = width[c] - cell[c].size();
            if (column[c].right) out.append(fill, ' ');
            out += cell[c];
            if (!column[c].right) out.append(fill, ' ');
        }
        while (out.size() > start && out.back() == ' ') out.pop_back();
        if (row == 0 && bold) out += "\x1b[0m";
        out += '\n';
    }
    return out;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
