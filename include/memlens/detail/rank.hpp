// memlens/detail/rank.hpp: the one way views order rows. Rows are sorted by number, through a
// comparator that is a function pointer, so that std::sort, std::partial_sort and
// std::stable_sort each compile once for every row type and order of every view; ranked rows
// (largest figures first, then a name, then a fixed tie-break) are one such order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Whether row `a` of `rows` goes before row `b`; `rows` is whatever the order knows how to read.
struct row_order {
    const void* rows;
    bool (*before)(const void* rows, std::uint32_t a, std::uint32_t b);

    bool operator()(std::uint32_t a, std::uint32_t b) const { return before(rows, a, b); }
};

// Row numbers sorted as std::sort, or std::partial_sort (the first `sorted` of them), would
// sort the rows: each makes the same comparisons on numbers as on rows, so rows that compare
// equal come out exactly as they would.
inline void sort_numbers(std::vector<std::uint32_t>& numbers, row_order order) {
    std::sort(numbers.begin(), numbers.end(), order);
}

inline void partial_sort_numbers(std::vector<std::uint32_t>& numbers, std::size_t sorted, row_order order) {
    std::partial_sort(numbers.begin(), numbers.begin() + static_cast<std::ptrdiff_t>(sorted),
                      numbers.end(), order);
}

inline std::vector<std::uint32_t> row_numbers(std::size_t count) {
    std::vector<std::uint32_t> numbers(count);
    for (std::size_t i = 0; i < count; ++i) numbers[i] = static_cast<std::uint32_t>(i);
    return numbers;
}

// The numbers of `count` rows, in the order std::sort puts the rows in.
inline std::vector<std::uint32_t> sorted_rows(std::size_t count, row_order order) {
    std::vector<std::uint32_t> numbers = row_numbers(count);
    sort_numbers(numbers, order);
    return numbers;
}

// `rows` in the order `numbers` gives.
template <class Row>
void reorder(std::vector<Row>& rows, const std::vector<std::uint32_t>& numbers) {
    std::vector<Row> ordered(numbers.size());
    for (std::size_t i = 0; i < numbers.size(); ++i) ordered[i] = std::move(rows[numbers[i]]);
    rows = std::move(ordered);
}

// A row's place in a ranking: figures largest first, then the name ascending, then `last`
// ascending, which callers make unique so that the order is total.
struct rank_entry {
    std::int64_t first = 0;
    std::int64_t second = 0;
    std::int64_t third = 0;
    std::string_view name;  // empty when the rows have no name to order by
    std::uint64_t last = 0;
};

inline bool ranked_before(const void* rows, std::uint32_t a, std::uint32_t b) {
    const rank_entry& x = static_cast<const rank_entry*>(rows)[a];
    const rank_entry& y = static_cast<const rank_entry*>(rows)[b];
    if (x.first != y.first) return x.first > y.first;
    if (x.second != y.second) return x.second > y.second;
    if (x.third != y.third) return x.third > y.third;
    if (x.name != y.name) return x.name < y.name;
    return x.last < y.last;
}

inline std::vector<std::uint32_t> ranked_rows(const std::vector<rank_entry>& ranks) {
    return sorted_rows(ranks.size(), {ranks.data(), ranked_before});
}

// Reorders `rows` by `key(row)`, a pair of figures compared in turn, largest first, then by
// `name(row)` when given, then in their original order.
template <class Row, class Key>
void rank_rows(std::vector<Row>& rows, Key key, std::string_view (*name)(const Row&) = nullptr) {
    std::vector<rank_entry> ranks(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::pair<std::int64_t, std::int64_t> k = key(rows[i]);
        ranks[i] = {k.first, k.second, 0, name ? name(rows[i]) : std::string_view(), i};
    }
    reorder(rows, ranked_rows(ranks));
}

// A figure as a rank key; counts beyond 2^63 do not occur in one process.
constexpr std::int64_t rank_of(std::uint64_t figure) noexcept {
    return static_cast<std::int64_t>(figure > INT64_MAX ? INT64_MAX : figure);
}

// A double as a rank key that orders as the double does (the bits of a positive double order as
// integers; a negative one's are flipped), so that weighted figures rank without rounding.
inline std::int64_t rank_of_real(double figure) noexcept {
    if (figure == 0) return 0;
    std::int64_t bits = 0;
    std::memcpy(&bits, &figure, sizeof bits);
    return bits >= 0 ? bits : bits ^ INT64_MAX;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
