// memlens/core/live_table.hpp: every recorded allocation still alive, 24 bytes each, in sharded
// robin-hood tables that live in pages memlens maps itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../detail/sys.hpp"
#include "switchboard.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// 24 bytes per live allocation. Sizes above 1 TiB are kept as 1 TiB - 1; a stack id is 0 when
// none was captured.
struct live_entry {
    std::uintptr_t address;    // 0 marks an empty slot
    std::uint64_t size_stack;  // size:40 | stack:24
    std::uint64_t origin;      // sequence:38 | timed:1 | record:12 | domain:12 | sampled:1
};

constexpr std::uint64_t entry_size_mask = (std::uint64_t{1} << 40) - 1;
constexpr std::uint64_t entry_sequence_mask = (std::uint64_t{1} << 38) - 1;
// The block's birth was counted in the lifetime clock (core/lifetimes.hpp): its free is too.
constexpr std::uint64_t entry_timed_bit = std::uint64_t{1} << 38;
constexpr std::uint32_t entry_record_limit = (1u << 12) - 1;

inline live_entry make_entry(std::uintptr_t address, std::uint64_t size, std::uint32_t stack,
                             std::uint64_t sequence, std::uint32_t record, std::uint32_t domain,
                             bool sampled, bool timed = false) noexcept {
    const std::uint64_t s = size > entry_size_mask ? entry_size_mask : size;
    const std::uint32_t r = record > entry_record_limit ? entry_record_limit : record;
    return live_entry{address, s | (std::uint64_t{stack} << 40),
                      (sequence & entry_sequence_mask) | (timed ? entry_timed_bit : 0) |
                          (std::uint64_t{r} << 39) |
                          (std::uint64_t{domain & 0xfffu} << 51) | (sampled ? std::uint64_t{1} << 63 : 0)};
}

inline std::uint64_t entry_size(const live_entry& e) noexcept { return e.size_stack & entry_size_mask; }
inline std::uint32_t entry_stack(const live_entry& e) noexcept {
    return static_cast<std::uint32_t>(e.size_stack >> 40);
}
inline std::uint64_t entry_sequence(const live_entry& e) noexcept {
    return e.origin & entry_sequence_mask;
}
inline std::uint32_t entry_record(const live_entry& e) noexcept {
    return static_cast<std::uint32_t>((e.origin >> 39) & entry_record_limit);
}
inline std::uint32_t entry_domain(const live_entry& e) noexcept {
    return static_cast<std::uint32_t>((e.origin >> 51) & 0xfffu);
}
inline bool entry_sampled(const live_entry& e) noexcept { return (e.origin >> 63) != 0; }
inline bool entry_timed(const live_entry& e) noexcept { return (e.origin & entry_timed_bit) != 0; }

constexpr unsigned live_shard_bits = 6;
constexpr std::size_t live_shard_count = std::size_t{1} << live_shard_bits;

// One shard of an open-addressed robin-hood table. Kept up to 85% full and grown by 15%, so
// that it holds between 74% and 85% of its slots: 28 to 32.5 bytes per live allocation, and an
// insertion looks at about 20 slots (at 90% full it would be 50).
struct alignas(64) live_shard {
    spin_lock lock;
    live_entry* slots = nullptr;
    std::uint64_t capacity = 0;
    std::uint64_t count = 0;
    std::size_t mapped = 0;
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline live_shard live_shards[live_shard_count]{};

// Fibonacci hashing: one multiplication spreads even evenly spaced addresses over the top bits,
// which are all the table uses. It runs on every probe, for the distances of robin hood.
inline std::uint64_t live_hash(std::uintptr_t address) noexcept { return fibonacci_hash(address); }

inline live_shard& shard_of(std::uint64_t hash) noexcept {
    return live_shards[hash >> (64 - live_shard_bits)];
}

// The slot a key would take in an empty table: its hash scaled to the capacity, which need not
// be a power of two.
__extension__ typedef unsigned __int128 wide_product;

inline std::uint64_t home_slot(std::uint64_t hash, std::uint64_t capacity) noexcept {
    const wide_product scaled = static_cast<wide_product>(hash << live_shard_bits) * capacity;
    return static_cast<std::uint64_t>(scaled >> 64);
}

inline std::uint64_t probe_distance(const live_shard& s, std::uint64_t slot) noexcept {
    const std::uint64_t home = home_slot(live_hash(s.slots[slot].address), s.capacity);
    return slot >= home ? slot - home : slot + s.capacity - home;
}

inline std::uint64_t next_slot(const live_shard& s, std::uint64_t slot) noexcept {
    return slot + 1 == s.capacity ? 0 : slot + 1;
}

constexpr std::uint64_t no_slot = ~std::uint64_t{0};

inline std::uint64_t find_slot(const live_shard& s, std::uintptr_t address,
                               std::uint64_t hash) noexcept {
    if (s.capacity == 0) return no_slot;
    std::uint64_t slot = home_slot(hash, s.capacity);
    for (std::uint64_t distance = 0;; ++distance) {
        const std::uintptr_t here = s.slots[slot].address;
        if (here == address) return slot;
        if (here == 0 || probe_distance(s, slot) < distance) return no_slot;
        slot = next_slot(s, slot);
    }
}

// Robin hood: an entry takes the slot of any entry that sits closer to its own home.
inline void place_entry(live_shard& s, live_entry entry) noexcept {
    std::uint64_t slot = home_slot(live_hash(entry.address), s.capacity);
    for (std::uint64_t distance = 0;; ++distance) {
        live_entry& here = s.slots[slot];
        if (here.address == 0) {
            here = entry;
            return;
        }
        const std::uint64_t theirs = probe_distance(s, slot);
        if (theirs < distance) {
            const live_entry moved = here;
            here = entry;
            entry = moved;
            distance = theirs;
        }
        slot = next_slot(s, slot);
    }
}

constexpr std::size_t page_bytes = 4096;

inline bool grow_shard(live_shard& s) noexcept {
    std::uint64_t wanted = s.capacity + s.capacity * 3 / 20;
    std::size_t bytes = static_cast<std::size_t>(wanted) * sizeof(live_entry);
    if (bytes < page_bytes) bytes = page_bytes;
    bytes = (bytes + page_bytes - 1) / page_bytes * page_bytes;
    auto* fresh = static_cast<live_entry*>(map_pages(bytes));
    if (!fresh) return false;
    live_entry* old = s.slots;
    const std::uint64_t old_capacity = s.capacity;
    const std::size_t old_mapped = s.mapped;
    s.slots = fresh;
    s.capacity = bytes / sizeof(live_entry);
    s.mapped = bytes;
    for (std::uint64_t i = 0; i < old_capacity; ++i) {
        if (old[i].address != 0) place_entry(s, old[i]);
    }
    unmap_pages(old, old_mapped);
    return true;
}

// Backward-shift deletion keeps every probe sequence unbroken without tombstones.
inline void erase_slot(live_shard& s, std::uint64_t slot) noexcept {
    std::uint64_t next = next_slot(s, slot);
    while (s.slots[next].address != 0 && probe_distance(s, next) > 0) {
        s.slots[slot] = s.slots[next];
        slot = next;
        next = next_slot(s, next);
    }
    s.slots[slot] = live_entry{};
    --s.count;
}

// An address already in the table was freed without memlens seeing it (a source that does not
// report frees, or a free while the table was not consulted): the new allocation replaces it.
// Set while this thread holds a shard: a signal handler that frees a recorded block then must
// not wait for the lock its own thread holds.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline thread_local bool holding_shard = false;

class shard_hold {
public:
    explicit shard_hold(live_shard& s) noexcept : hold_(s.lock) { holding_shard = true; }
    ~shard_hold() { holding_shard = false; }
    shard_hold(const shard_hold&) = delete;
    shard_hold& operator=(const shard_hold&) = delete;

private:
    lock_guard hold_;
};

// Address 0 marks an empty slot, so a null pointer (record_alloc(nullptr, ...) counts without
// a block) is never an entry: looked up, it would find an empty slot and erase it. An entry
// replaced is copied to `replaced` (its address 0 when none was).
inline bool insert_entry(const live_entry& entry, live_entry* replaced = nullptr) noexcept {
    if (entry.address == 0) return false;
    const std::uint64_t hash = live_hash(entry.address);
    live_shard& s = shard_of(hash);
    shard_hold hold(s);
    const std::uint64_t found = find_slot(s, entry.address, hash);
    if (found != no_slot) {
        if (replaced) *replaced = s.slots[found];
        s.slots[found] = entry;
        return true;
    }
    if ((s.count + 1) * 20 > s.capacity * 17 && !grow_shard(s)) return false;
    place_entry(s, entry);
    ++s.count;
    return true;
}

// A block freed while this thread holds a shard stays in the table; a later allocation at the
// same address replaces its entry.
inline bool remove_entry(std::uintptr_t address, live_entry& out) noexcept {
    if (holding_shard || address == 0) return false;
    const std::uint64_t hash = live_hash(address);
    live_shard& s = shard_of(hash);
    shard_hold hold(s);
    const std::uint64_t found = find_slot(s, address, hash);
    if (found == no_slot) return false;
    out = s.slots[found];
    erase_slot(s, found);
    return true;
}

// Bytes mapped for the live table, and the allocations it holds.
struct live_table_usage {
    std::size_t mapped = 0;
    std::uint64_t entries = 0;
};

inline live_table_usage live_usage() noexcept {
    live_table_usage u;
    for (live_shard& s : live_shards) {
        lock_guard hold(s.lock);
        u.mapped += s.mapped;
        u.entries += s.count;
    }
    return u;
}

// Visits every entry, one shard locked at a time. `visit` must not allocate through the hooks
// unless the caller holds a guard.
template <class Visit>
void for_each_entry(Visit&& visit) {
    for (live_shard& s : live_shards) {
        lock_guard hold(s.lock);
        for (std::uint64_t i = 0; i < s.capacity; ++i) {
            if (s.slots[i].address != 0) visit(s.slots[i]);
        }
    }
}

// Clears the lookups bit once no headerless block is left: frees from tracking allocators and
// resources then skip the table again. All shards are held so no insert can slip between.
inline void settle_lookups() noexcept {
    if (!table_has_headerless.load(std::memory_order_acquire)) return;
    for (live_shard& s : live_shards) s.lock.lock();
    bool empty = true;
    for (live_shard& s : live_shards) empty = empty && s.count == 0;
    if (empty) table_has_headerless.store(false, std::memory_order_release);
    for (live_shard& s : live_shards) s.lock.unlock();
    lock_guard hold(settings_lock);
    update_switchboard();
}

}  // namespace detail
MEMLENS_NAMESPACE_END
