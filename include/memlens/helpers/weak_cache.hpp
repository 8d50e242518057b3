// memlens/helpers/weak_cache.hpp: a cache that does not keep its values alive, like Python's
// WeakValueDictionary: it hands out shared owners and remembers weak ones, so a value lives
// exactly as long as its users do and is shared while it lives.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What a weak_cache has done since it was built.
struct weak_cache_stats {
    std::uint64_t hits = 0;      ///< calls answered with a live value (waiters for one included)
    std::uint64_t misses = 0;    ///< calls that ran their factory
    std::uint64_t creations = 0; ///< factory runs that returned a value (not null, no exception)
    std::uint64_t purged = 0;    ///< expired entries removed
};

namespace detail {

// One factory run in progress. Waiters hold it by shared_ptr, so it outlives its map entry
// when a failed run erases that entry.
template <class V>
struct weak_cache_flight {
    std::shared_ptr<V> value;  // null once done: the run failed, so waiters retry
    std::thread::id owner;     // to refuse a factory that asks for its own key
    bool done = false;
};

}  // namespace detail

/// Maps keys to values held by std::weak_ptr. get_or_create returns the live value of a key
/// or makes it with the caller's factory, at most one factory running per key at a time.
/// Thread safe: one mutex guards the map; factories run without it.
///
/// An expired entry still holds its weak_ptr, and with it the control block, which for a
/// value made by std::make_shared is the value's whole allocation. Expired entries go when a
/// call finds them, when the map has grown to twice its size after the last purge (so the
/// cost is amortized O(1) per insertion), or on purge().
template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class weak_cache {
public:
    using key_type = K;     ///< the key type
    using mapped_type = V;  ///< the type the cached std::shared_ptr<V> values point to

    /// An empty cache. Does not allocate.
    weak_cache() = default;
    weak_cache(const weak_cache&) = delete;
    weak_cache& operator=(const weak_cache&) = delete;

    /// The live value of `key`, or the one `factory()` makes (it returns something convertible
    /// to std::shared_ptr<V>). While a factory runs for a key, other callers for that key wait
    /// for its result instead of running theirs. If it throws, the exception reaches its caller
    /// only; the key is left free and one waiter runs its own factory. A null result is
    /// returned but not cached. A factory must not ask for its own key (std::logic_error).
    /// A hit does not allocate; a miss allocates a map entry and a small in-flight record.
    template <class F>
    std::shared_ptr<V> get_or_create(const K& key, F&& factory) {
        static_assert(std::is_convertible_v<std::invoke_result_t<F&>, std::shared_ptr<V>>,
                      "weak_cache: the factory must return something convertible to "
                      "std::shared_ptr<V>");
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            auto it = map_.find(key);
            if (it == map_.end()) {
                purge_if_grown_locked();
                it = map_.try_emplace(key).first;
            }
            entry& e = it->second;
            if (e.running) {
                if (e.running->owner == std::this_thread::get_id()) {
                    throw std::logic_error("weak_cache: a factory asked for its own key");
                }
                // Held here: a failed run erases the entry, and the flight with it.
                const std::shared_ptr<flight> waiting = e.running;
                done_.wait(lock, [&] { return waiting->done; });
                if (waiting->value) {
                    ++stats_.hits;
                    return waiting->value;
                }
                continue;  // the run failed or made nothing: look again, perhaps run ours
            }
            if (std::shared_ptr<V> live = e.value.lock()) {
                ++stats_.hits;
                return live;
            }
            return create_locked(lock, key, e, factory);
        }
    }

    /// The live value of `key`, or null (also while it is being created: this never waits).
    /// Does not allocate.
    std::shared_ptr<V> find(const K& key) const {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = map_.find(key);
        if (it == map_.end() || it->second.running) return nullptr;
        return it->second.value.lock();
    }

    /// Entries held: live, expired but not yet purged, and being created. Does not allocate.
    std::size_t size() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return map_.size();
    }

    /// Removes every expired entry now and returns how many. One pass over the map; frees,
    /// never allocates.
    std::size_t purge() {
        std::lock_guard<std::mutex> lock(mutex_);
        return purge_locked();
    }

    /// The counters so far. Does not allocate.
    weak_cache_stats stats() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return stats_;
    }

private:
    using flight = detail::weak_cache_flight<V>;

    struct entry {
        std::weak_ptr<V> value;
        std::shared_ptr<flight> running;  // set while a factory runs for this key
    };

    // Past this many entries, the next insertion purges first: twice the size the last
    // purge left, and a floor so that a small cache does not purge on every insertion.
    static constexpr std::size_t min_purge_threshold = 16;

    template <class F>
    std::shared_ptr<V> create_locked(std::unique_lock<std::mutex>& lock, const K& key, entry& e,
                                     F& factory) {
        // A reference to a map element survives rehashing, and no one erases an entry with a
        // flight but its owner, so `e` stays valid while the lock is released.
        const auto run = std::make_shared<flight>();
        run->owner = std::this_thread::get_id();
        e.running = run;
        ++stats_.misses;
        lock.unlock();
        std::shared_ptr<V> made;
        try {
            made = factory();
        } catch (...) {
            lock.lock();
            finish_locked(key, e, run, nullptr);
            throw;
        }
        lock.lock();
        finish_locked(key, e, run, made);
        return made;
    }

    void finish_locked(const K& key, entry& e, const std::shared_ptr<flight>& run,
                       const std::shared_ptr<V>& made) {
        run->value = made;
        run->done = true;
        e.running.reset();
        if (made) {
            ++stats_.creations;
            e.value = made;
        } else {
            // The entry was new or expired; leaving it would only be purged later.
            map_.erase(key);
        }
        done_.notify_all();
    }

    void purge_if_grown_locked() {
        if (map_.size() < purge_threshold_) return;
        purge_locked();
    }

    std::size_t purge_locked() {
        std::size_t removed = 0;
        for (auto it = map_.begin(); it != map_.end();) {
            if (!it->second.running && it->second.value.expired()) {
                it = map_.erase(it);
                ++removed;
            } else {
                ++it;
            }
        }
        stats_.purged += removed;
        const std::size_t twice = 2 * map_.size();
        purge_threshold_ = twice > min_purge_threshold ? twice : min_purge_threshold;
        return removed;
    }

    mutable std::mutex mutex_;
    std::condition_variable done_;  // one for the cache: finishes are rare next to lookups
    std::unordered_map<K, entry, Hash, Eq> map_;
    std::size_t purge_threshold_ = min_purge_threshold;
    weak_cache_stats stats_;
};

MEMLENS_NAMESPACE_END
