// memlens/detail/format.hpp: figures and tables for people: exact bytes with digit groups, the
// same figure in KiB / MiB / GiB, and the one text-table layout every text view uses.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// One piece of a line of text: a string, or a figure written straight into the line, so that
// writers build a line with one call and no std::string per figure or per step of a chain of
// operator+ (each inlined where it is written, with its clean-up on the exception path).
struct text_piece {
    enum class form : unsigned char { text, number, digits, compact, described, share, tenths };

    text_piece(const char* piece) noexcept : text_piece(std::string_view(piece)) {}
    text_piece(std::string_view piece) noexcept : chars(piece.data()), size(piece.size()) {}
    text_piece(const std::string& piece) noexcept : chars(piece.data()), size(piece.size()) {}
    constexpr text_piece(form kind, std::uint64_t figure, int places = 0) noexcept
        : value(figure), how(kind), decimals(static_cast<unsigned char>(places)) {}
    constexpr text_piece(form kind, double figure) noexcept : real(figure), how(kind) {}

    // One word for any form, so that the lists callers build cost a few stores a piece.
    union {
        const char* chars;
        std::uint64_t value;
        double real;  // share: the percentage; tenths: the figure
    };
    std::size_t size = 0;  // of chars
    form how = form::text;
    unsigned char decimals = 0;  // compact
    bool approximate = false;    // written after a '~'
};

// `piece` marked '~' when it is an estimate, as sampled figures are.
constexpr text_piece estimate(bool estimated, text_piece piece) noexcept {
    piece.approximate = estimated;
    return piece;
}

// 1234567 as written: "1234567".
constexpr text_piece number(std::uint64_t value) noexcept { return {text_piece::form::number, value}; }
// "1,234,567".
constexpr text_piece digits(std::uint64_t value) noexcept { return {text_piece::form::digits, value}; }
// compact_bytes(bytes, decimals).
constexpr text_piece compact(std::uint64_t bytes, int decimals = 1) noexcept {
    return {text_piece::form::compact, bytes, decimals};
}
// describe_bytes(bytes).
constexpr text_piece described(std::uint64_t bytes) noexcept { return {text_piece::form::described, bytes}; }
// "12.5%": `part` as a share of `whole`, 0 when `whole` is not above 0.
constexpr text_piece share(double part, double whole) noexcept {
    return {text_piece::form::share, whole > 0 ? 100.0 * part / whole : 0.0};
}
// The word that goes with `n`: "1 allocation", "2 allocations".
constexpr const char* plural(std::uint64_t n, const char* one, const char* many) noexcept {
    return n == 1 ? one : many;
}

// "2.5": one decimal.
constexpr text_piece tenths(double value) noexcept { return {text_piece::form::tenths, value}; }

MEMLENS_NOINLINE inline void append_number(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    out.append(buffer, static_cast<std::size_t>(end - buffer));
}

MEMLENS_NOINLINE inline void append_group_digits(std::string& out, std::uint64_t value) {
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    const auto n = static_cast<std::size_t>(end - buffer);
    for (std::size_t i = 0; i < n; ++i) {
        if (i != 0 && (n - i) % 3 == 0) out += ',';
        out += buffer[i];
    }
}

// "512 B", "1.5 KiB", "2.40 MiB": `decimals` after the point from 1 KiB up, for columns and trees.
MEMLENS_NOINLINE inline void append_compact_bytes(std::string& out, std::uint64_t bytes, int decimals = 1) {
    if (bytes < 1024) {
        append_number(out, bytes);
        out += " B";
        return;
    }
    static const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double scaled = static_cast<double>(bytes) / 1024.0;
    int unit = 0;
    while (scaled >= 1024.0 && unit < 3) {
        scaled /= 1024.0;
        ++unit;
    }
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.*f %s", decimals, scaled, units[unit]);
    out += buffer;
}

// "1,536 bytes (1.50 KiB)"; below 1 KiB just "512 bytes".
MEMLENS_NOINLINE inline void append_described_bytes(std::string& out, std::uint64_t bytes) {
    append_group_digits(out, bytes);
    out += bytes == 1 ? " byte" : " bytes";
    if (bytes < 1024) return;
    out += " (";
    append_compact_bytes(out, bytes, 2);
    out += ')';
}

// Appends the pieces in turn.
MEMLENS_NOINLINE inline void append_all(std::string& out, std::initializer_list<text_piece> pieces) {
    for (const text_piece& piece : pieces) {
        char buffer[32];
        if (piece.approximate) out += '~';
        switch (piece.how) {
        case text_piece::form::text: out.append(piece.chars, piece.size); break;
        case text_piece::form::number: append_number(out, piece.value); break;
        case text_piece::form::digits: append_group_digits(out, piece.value); break;
        case text_piece::form::compact:
            append_compact_bytes(out, piece.value, piece.decimals);
            break;
        case text_piece::form::described: append_described_bytes(out, piece.value); break;
        case text_piece::form::share:
            std::snprintf(buffer, sizeof buffer, "%.1f%%", piece.real);
            out += buffer;
            break;
        case text_piece::form::tenths:
            std::snprintf(buffer, sizeof buffer, "%.1f", piece.real);
            out += buffer;
            break;
        }
    }
}

MEMLENS_NOINLINE inline std::string concat(std::initializer_list<text_piece> pieces) {
    std::string out;
    append_all(out, pieces);
    return out;
}

inline std::string group_digits(std::uint64_t value) { return concat({digits(value)}); }

inline std::string compact_bytes(std::uint64_t bytes, int decimals = 1) {
    return concat({compact(bytes, decimals)});
}

inline std::string describe_bytes(std::uint64_t bytes) { return concat({described(bytes)}); }

inline std::string describe_signed_bytes(std::int64_t bytes) {
    if (bytes >= 0) return describe_bytes(static_cast<std::uint64_t>(bytes));
    return concat({"-", described(static_cast<std::uint64_t>(-(bytes + 1)) + 1)});
}

// Appends a row of cells for format_table, a piece each.
MEMLENS_NOINLINE inline void append_cells(std::vector<std::string>& cells, std::initializer_list<text_piece> row) {
    for (const text_piece& piece : row) {
        std::string cell;
        append_all(cell, {piece});
        cells.push_back(std::move(cell));
    }
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
