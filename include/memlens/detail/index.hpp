// memlens/detail/index.hpp: keys mapped to row numbers, so that a view keeps its rows in a plain
// vector and every view shares two hash tables (one for numbers, one for strings) instead of
// compiling a map for each row type.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Row numbers by key, given out 0, 1, 2, ... in the order keys are first seen. Iteration
// follows the hash table: some outputs have always listed rows in that order, and an index fed
// the same keys in the same order as a std::unordered_map of the same key width iterates as it
// did.
template <class Key>
class basic_index {
public:
    static constexpr std::uint32_t none = UINT32_MAX;

    void reserve(std::size_t n) { rows_.reserve(n); }

    // The row of `key`, and whether it is new (then it is size() - 1).
    std::pair<std::uint32_t, bool> insert(const Key& key) {
        const auto [at, added] = rows_.emplace(key, static_cast<std::uint32_t>(rows_.size()));
        return {at->second, added};
    }

    std::uint32_t find(const Key& key) const {
        const auto at = rows_.find(key);
        return at == rows_.end() ? none : at->second;
    }

    std::size_t size() const noexcept { return rows_.size(); }
    auto begin() const noexcept { return rows_.begin(); }
    auto end() const noexcept { return rows_.end(); }

private:
    std::unordered_map<Key, std::uint32_t> rows_;
};

using key_index = basic_index<std::uint64_t>;
using string_index = basic_index<std::string>;

}  // namespace detail
MEMLENS_NAMESPACE_END
