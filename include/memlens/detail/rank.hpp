// memlens/detail/rank.hpp: orders a view's rows by up to two figures, largest first, then by a
// name, then in their original order. One sort serves every row type: a std::stable_sort per row type compiles
// a merge sort for each, and the views together have many row types.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

struct rank_entry {
    std::int64_t first;
    std::int64_t second;
    std::string_view name;  // ascending; empty when the rows have no name to order by
    std::size_t index;
};

inline void sort_ranks(std::vector<rank_entry>& ranks) {
    std::sort(ranks.begin(), ranks.end(), [](const rank_entry& a, const rank_entry& b) {
        if (a.first != b.first) return a.first > b.first;
        if (a.second != b.second) return a.second > b.second;
        if (a.name != b.name) return a.name < b.name;
        return a.index < b.index;
    });
}

// Reorders `rows` by `key(row)`, a pair of figures compared in turn, largest first, then by
// `name(row)` when given.
template <class Row, class Key>
void rank_rows(std::vector<Row>& rows, Key key, std::string_view (*name)(const Row&) = nullptr) {
    std::vector<rank_entry> ranks(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::pair<std::int64_t, std::int64_t> k = key(rows[i]);
        ranks[i] = {k.first, k.second, name ? name(rows[i]) : std::string_view(), i};
    }
    sort_ranks(ranks);
    std::vector<Row> ordered(rows.size());
    for (std::size_t i = 0; i < ranks.size(); ++i) ordered[i] = std::move(rows[ranks[i].index]);
    rows = std::move(ordered);
}

// A figure as a rank key; counts beyond 2^63 do not occur in one process.
constexpr std::int64_t rank_of(std::uint64_t figure) noexcept {
    return static_cast<std::int64_t>(figure > INT64_MAX ? INT64_MAX : figure);
}

}  // namespace detail
MEMLENS_NAMESPACE_END
