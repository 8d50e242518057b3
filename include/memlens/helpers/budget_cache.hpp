// memlens/helpers/budget_cache.hpp: an LRU cache bounded by bytes rather than by entries, the
// memory-limited counterpart of Python's lru_cache(maxsize): each entry costs what memlens
// measures building it, or what a cost function says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "../observe/scope.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What a budget_cache has done since it was built.
struct budget_cache_stats {
    std::uint64_t hits = 0;      ///< get() calls that found their key
    std::uint64_t misses = 0;    ///< get() calls that did not
    std::uint64_t inserted = 0;  ///< entries stored by put / emplace / emplace_with
    std::uint64_t evictions = 0; ///< entries dropped to make room for another one
    std::uint64_t rejected = 0;  ///< entries refused because they alone cost more than the budget
};

/// What put / emplace / emplace_with did.
enum class budget_insert {
    inserted, ///< stored; the key was not held
    replaced, ///< stored in place of the key's previous entry
    rejected, ///< not stored: it alone costs more than the budget (the key's previous entry, if
              ///< any, is dropped all the same, so that the cache never serves a replaced value)
};

/// An LRU cache that holds at most `budget()` bytes by its own accounting: held_bytes() is
/// exactly the sum of the costs of the entries held, and after an insertion returns it is never
/// above the budget. To make room it evicts from the least recently used end, one entry at a
/// time, until the new entry fits; an entry bigger than the whole budget is refused instead.
///
/// Costs are fixed when an entry is stored. Either a cost function given at construction says
/// it, or memlens measures it: the entry (its list node, both copies of its key, the value, its
/// hash-index node) is built inside a thread scope and costs the bytes it still holds there
/// (usage.net) plus `index_overhead`, its share of the index's bucket array. Measuring sees only
/// what memlens sees: build the program with sources/new.hpp, or give V tracking allocators.
/// It also sees only what is allocated while the entry is built: a value moved in with its
/// memory made earlier costs its node but not that memory; build values from arguments
/// (emplace), copy them (put), or make them in emplace_with's factory.
///
/// Not thread safe: every call, get() included (it reorders the list), needs the caller's
/// synchronization, as a standard container does. get/put/emplace/erase are O(1) on average
/// plus the evictions they make.
template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class budget_cache {
public:
    using key_type = K;     ///< the key type
    using mapped_type = V;  ///< the value type
    /// Says what an entry costs, in bytes, from its key and value; called once, when it is stored.
    using cost_function = std::function<std::size_t(const K&, const V&)>;

    /// Added to each measured cost: one bucket pointer, the least the index's bucket array holds
    /// per entry, since its load factor stays at most 1. The array is grown outside the measured
    /// block, so no entry is charged for a rehash. Cost functions are taken as they are.
    static constexpr std::size_t index_overhead = sizeof(void*);

    /// A cache of `budget_bytes` that measures each entry's cost. Does not allocate.
    explicit budget_cache(std::size_t budget_bytes) : budget_(budget_bytes) {}

    /// A cache of `budget_bytes` where `cost(key, value)` is each entry's cost, called once when
    /// it is stored (an empty function means measured). Allocates only if std::function does to
    /// hold `cost`.
    budget_cache(std::size_t budget_bytes, cost_function cost)
        : budget_(budget_bytes), cost_(std::move(cost)) {}

    budget_cache(const budget_cache&) = delete;
    budget_cache& operator=(const budget_cache&) = delete;

    /// Stores a copy of `value` under `key`, making it the most recently used. Allocates the
    /// entry; see budget_insert for the result.
    budget_insert put(const K& key, const V& value) {
        return store(key, [&]() -> const V& { return value; });
    }

    /// Stores V(args...) under `key`, built in place. Allocates the entry.
    template <class... Args>
    budget_insert emplace(const K& key, Args&&... args) {
        return store_in_place(key, std::forward<Args>(args)...);
    }

    /// Stores the value `make()` returns under `key`; it runs inside the measured block, so the
    /// memory the value is built with counts. Allocates the entry.
    template <class F>
    budget_insert emplace_with(const K& key, F&& make) {
        return store(key, std::forward<F>(make));
    }

    /// The value of `key`, now the most recently used, or null. The pointer is valid until the
    /// entry leaves the cache. Const, because the cost was fixed when it was stored. Does not
    /// allocate.
    const V* get(const K& key) {
        const auto it = index_.find(key);
        if (it == index_.end()) {
            ++stats_.misses;
            return nullptr;
        }
        ++stats_.hits;
        entries_.splice(entries_.begin(), entries_, it->second);
        return &it->second->value;
    }

    /// Whether `key` is held, without counting a hit or miss or changing the order.
    bool contains(const K& key) const { return index_.find(key) != index_.end(); }

    /// The cost `key`'s entry was charged, or 0 if it is not held. Does not change the order.
    std::size_t cost_of(const K& key) const {
        const auto it = index_.find(key);
        return it == index_.end() ? 0 : it->second->cost;
    }

    /// Removes `key`'s entry; returns whether there was one. Not counted as an eviction.
    bool erase(const K& key) {
        const auto it = index_.find(key);
        if (it == index_.end()) return false;
        remove(it);
        return true;
    }

    /// Removes every entry. Frees, does not allocate.
    void clear() noexcept {
        index_.clear();
        entries_.clear();
        held_ = 0;
    }

    /// The sum of the costs of the entries held, in bytes; never above budget() between calls.
    std::size_t held_bytes() const noexcept { return held_; }
    /// The most held_bytes() may be, in bytes, as constructed.
    std::size_t budget() const noexcept { return budget_; }
    std::size_t size() const noexcept { return index_.size(); }  ///< entries held
    bool empty() const noexcept { return index_.empty(); }       ///< whether none is held
    /// Counts of hits, misses, insertions, evictions and refusals since construction.
    const budget_cache_stats& stats() const noexcept { return stats_; }

private:
    struct entry {
        template <class... Args>
        entry(const K& k, Args&&... args) : key(k), value(std::forward<Args>(args)...) {}
        K key;
        V value;
        std::size_t cost = 0;
    };
    using list = std::list<entry>;
    using index = std::unordered_map<K, typename list::iterator, Hash, Eq>;

    template <class F>
    budget_insert store(const K& key, F&& make) {
        return store_built(key, [&](list& staged) {
            staged.emplace_back(key, std::forward<F>(make)());
        });
    }

    template <class... Args>
    budget_insert store_in_place(const K& key, Args&&... args) {
        return store_built(key, [&](list& staged) {
            staged.emplace_back(key, std::forward<Args>(args)...);
        });
    }

    static std::size_t net_bytes(const scope& s) noexcept {
        const std::int64_t net = s.usage().net;
        return net > 0 ? static_cast<std::size_t>(net) : 0;
    }

    template <class Build>
    budget_insert store_built(const K& key, Build&& build) {
        // Grown before anything is measured, so that no entry is charged for a rehash. At
        // `>=`, one insertion early, since the standard library grows at `>`.
        const float room = static_cast<float>(index_.bucket_count()) * index_.max_load_factor();
        if (static_cast<float>(index_.size() + 1) >= room) index_.reserve(2 * index_.size() + 8);
        // The entry is built in a list of its own and spliced in once it fits: splicing neither
        // allocates nor moves it, so what was measured is what is held. Until the old entry
        // goes, a throw from building or costing leaves the cache as it was.
        list staged;
        std::size_t cost = 0;
        if (cost_) {
            build(staged);
            cost = cost_(key, staged.front().value);
        } else {
            scope measured;
            build(staged);
            cost = net_bytes(measured);
        }
        bool replacing = false;
        if (const auto old = index_.find(key); old != index_.end()) {
            remove(old);
            replacing = true;
        }
        typename index::iterator slot;
        if (cost_) {
            slot = index_.emplace(key, staged.begin()).first;
        } else {
            scope measured;
            slot = index_.emplace(key, staged.begin()).first;
            cost += net_bytes(measured) + index_overhead;
        }
        if (cost > budget_) {
            index_.erase(slot);
            ++stats_.rejected;
            return budget_insert::rejected;
        }
        while (held_ + cost > budget_) {
            remove(index_.find(entries_.back().key));
            ++stats_.evictions;
        }
        staged.front().cost = cost;
        entries_.splice(entries_.begin(), staged);
        held_ += cost;
        ++stats_.inserted;
        return replacing ? budget_insert::replaced : budget_insert::inserted;
    }

    void remove(typename index::iterator it) {
        held_ -= it->second->cost;
        entries_.erase(it->second);
        index_.erase(it);
    }

    std::size_t budget_;
    cost_function cost_;
    list entries_;  // most recently used first
    index index_;
    std::size_t held_ = 0;
    budget_cache_stats stats_;
};

MEMLENS_NAMESPACE_END
