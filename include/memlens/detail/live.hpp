// memlens/detail/live.hpp: the observers behind allocation sites: the switchboard that says which
// are on, the live table (every recorded allocation still alive), per-site totals, the byte
// sampler, and the settings they follow. Everything here may run inside an allocation hook, so
// it never allocates through one: its tables live in pages it maps itself.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <pthread.h>

#include "stack.hpp"
#include "state.hpp"

namespace memlens::detail {

// ---- settings and the switchboard ---------------------------------------------------------

enum class live_mode : std::uint8_t { off, counters, sites, sampled };

constexpr std::size_t default_stack_depth = 32;
constexpr std::uint64_t default_sample_bytes = 512 * 1024;
constexpr std::size_t output_path_capacity = 4096;

// Constant-initialized, so that it is ready before any constructor runs. Written under
// settings_lock; the fields the recording path reads without the lock are atomic.
struct live_settings {
    live_mode mode = live_mode::counters;
    std::atomic<unwind_method> method{unwind_method::frame_pointers};
    std::atomic<std::uint32_t> stack_depth{default_stack_depth};
    std::atomic<std::uint64_t> sample_bytes{default_sample_bytes};
    std::atomic<std::uint64_t> sample_seed{0};
    std::atomic<std::uint32_t> temporary_window{1};
    // Keep a snapshot of the live table at the process's high-water mark; see capture_peak.
    std::atomic<bool> capture_peak{false};
    bool leaks_at_exit = false;
    char output[output_path_capacity] = {};
};

MEMLENS_CONSTINIT inline live_settings settings{};
MEMLENS_CONSTINIT inline spin_lock settings_lock{};
// Under settings_lock: whether the environment has been read; see start_live.
inline bool live_started = false;

// Read by every event: zero means "count, nothing else", the common case.
constexpr std::uint32_t sw_unstarted = 1u << 0;  // the environment has not been read yet
constexpr std::uint32_t sw_heap_off = 1u << 1;    // mode off: the global hooks count nothing
constexpr std::uint32_t sw_recording = 1u << 2;   // every allocation goes into the live table
constexpr std::uint32_t sw_sampling = 1u << 3;    // allocations are sampled by bytes
constexpr std::uint32_t sw_lookups = 1u << 4;     // the table may hold blocks without a header

inline std::atomic<std::uint32_t> switchboard{sw_unstarted};
// Leak checks and snapshots that need every allocation recorded while they run.
inline std::atomic<int> recorders{0};
inline std::atomic<bool> table_has_headerless{false};

// What a block of the global hooks remembers in its header; see sources/heap.hpp.
constexpr std::uint32_t block_counted = 1u;
constexpr std::uint32_t block_recorded = 2u;

// Called under settings_lock whenever an input changes.
inline void update_switchboard() noexcept {
    std::uint32_t sw = live_started ? 0 : sw_unstarted;
    const live_mode mode = settings.mode;
    if (mode == live_mode::off) sw |= sw_heap_off;
    if (mode == live_mode::sites || recorders.load(std::memory_order_acquire) > 0) {
        sw |= sw_recording;
    } else if (mode == live_mode::sampled) {
        sw |= sw_sampling;
    }
    if (table_has_headerless.load(std::memory_order_acquire)) sw |= sw_lookups;
    switchboard.store(sw, std::memory_order_release);
}

// ---- per-site totals ----------------------------------------------------------------------

// Everything ever recorded at one stack, alive or not, as one lane counts it. Sampled
// allocations add their weights.
struct site_totals {
    std::atomic<std::uint64_t> allocs{0};
    std::atomic<std::uint64_t> bytes{0};
    // Freed by the allocating thread before `temporary_window` further allocations of its own.
    std::atomic<std::uint64_t> temporaries{0};
};

constexpr std::uint32_t stack_id_bits = 24;
constexpr std::uint32_t site_chunk_bits = 14;
constexpr std::uint32_t site_chunk_count = 1u << (stack_id_bits - site_chunk_bits);
// Threads add to one of several lanes, by their record's number, so that two threads recording
// the same stack do not fight over one cache line; a read adds the lanes up.
constexpr std::uint32_t site_lane_count = 4;

struct site_chunk {
    site_totals lanes[site_lane_count][std::size_t{1} << site_chunk_bits];
};

struct site_directory {
    std::atomic<site_chunk*> chunks[site_chunk_count] = {};
    spin_lock lock;
};

MEMLENS_CONSTINIT inline site_directory site_table{};

inline bool valid_stack_id(std::uint32_t stack) noexcept {
    return stack != 0 && stack < (1u << stack_id_bits);
}

inline site_totals* find_site(std::uint32_t stack, std::uint32_t lane) noexcept {
    if (!valid_stack_id(stack)) return nullptr;
    site_chunk* chunk = site_table.chunks[stack >> site_chunk_bits].load(std::memory_order_acquire);
    if (!chunk) return nullptr;
    return &chunk->lanes[lane % site_lane_count][stack & ((1u << site_chunk_bits) - 1)];
}

inline site_totals* site_for(std::uint32_t stack, std::uint32_t lane) noexcept {
    if (site_totals* s = find_site(stack, lane)) return s;
    if (!valid_stack_id(stack)) return nullptr;
    lock_guard hold(site_table.lock);
    std::atomic<site_chunk*>& slot = site_table.chunks[stack >> site_chunk_bits];
    if (!slot.load(relaxed)) {
        // Zeroed pages are valid site_totals: all counters start at zero. The kernel backs
        // only the pages that sites are counted in.
        void* raw = map_pages(sizeof(site_chunk));
        if (!raw) return nullptr;
        slot.store(static_cast<site_chunk*>(raw), std::memory_order_release);
    }
    return find_site(stack, lane);
}

struct site_sum {
    std::uint64_t allocs = 0;
    std::uint64_t bytes = 0;
    std::uint64_t temporaries = 0;
};

inline site_sum read_site(std::uint32_t stack) noexcept {
    site_sum out;
    for (std::uint32_t lane = 0; lane < site_lane_count; ++lane) {
        const site_totals* t = find_site(stack, lane);
        if (!t) break;
        out.allocs += t->allocs.load(relaxed);
        out.bytes += t->bytes.load(relaxed);
        out.temporaries += t->temporaries.load(relaxed);
    }
    return out;
}

// ---- the live table -------------------------------------------------------------------------

// 24 bytes per live allocation. Sizes above 1 TiB are kept as 1 TiB - 1; a stack id is 0 when
// none was captured.
struct live_entry {
    std::uintptr_t address;    // 0 marks an empty slot
    std::uint64_t size_stack;  // size:40 | stack:24
    std::uint64_t origin;      // sequence:39 | record:12 | domain:12 | sampled:1
};

constexpr std::uint64_t entry_size_mask = (std::uint64_t{1} << 40) - 1;
constexpr std::uint64_t entry_sequence_mask = (std::uint64_t{1} << 39) - 1;
constexpr std::uint32_t entry_record_limit = (1u << 12) - 1;

inline live_entry make_entry(std::uintptr_t address, std::uint64_t size, std::uint32_t stack,
                             std::uint64_t sequence, std::uint32_t record, std::uint32_t domain,
                             bool sampled) noexcept {
    const std::uint64_t s = size > entry_size_mask ? entry_size_mask : size;
    const std::uint32_t r = record > entry_record_limit ? entry_record_limit : record;
    return live_entry{address, s | (std::uint64_t{stack} << 40),
                      (sequence & entry_sequence_mask) | (std::uint64_t{r} << 39) |
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

MEMLENS_CONSTINIT inline live_shard live_shards[live_shard_count]{};

// Fibonacci hashing: one multiplication spreads even evenly spaced addresses over the top bits,
// which are all the table uses. It runs on every probe, for the distances of robin hood.
inline std::uint64_t live_hash(std::uintptr_t address) noexcept {
    const std::uint64_t a = address;
    return (a ^ (a >> 32)) * 0x9e3779b97f4a7c15ULL;
}

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
MEMLENS_CONSTINIT inline thread_local bool holding_shard = false;

class shard_hold {
public:
    explicit shard_hold(live_shard& s) noexcept : hold_(s.lock) { holding_shard = true; }
    ~shard_hold() { holding_shard = false; }
    shard_hold(const shard_hold&) = delete;
    shard_hold& operator=(const shard_hold&) = delete;

private:
    lock_guard hold_;
};

inline bool insert_entry(const live_entry& entry) noexcept {
    const std::uint64_t hash = live_hash(entry.address);
    live_shard& s = shard_of(hash);
    shard_hold hold(s);
    const std::uint64_t found = find_slot(s, entry.address, hash);
    if (found != no_slot) {
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
    if (holding_shard) return false;
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

// ---- recording ------------------------------------------------------------------------------

inline std::uint32_t own_record_index(thread_record*& record) noexcept {
    record = this_thread.record;
    if (!record || record->shared || this_thread.excluded != 0) record = &late_record;
    return record->index;
}

inline std::uint64_t next_sequence(thread_record* record) noexcept {
    if (record->shared) return record->recorded.fetch_add(1, relaxed) + 1;
    const std::uint64_t next = record->recorded.load(relaxed) + 1;
    record->recorded.store(next, relaxed);
    return next;
}

// The estimate one sampled allocation of `size` bytes stands for: it was sampled with
// probability 1 - exp(-size / mean), so counting it 1 / that many times is unbiased.
inline double sample_weight(std::uint64_t size, std::uint64_t mean) noexcept {
    if (mean == 0 || size == 0) return 1.0;
    const double p = -std::expm1(-static_cast<double>(size) / static_cast<double>(mean));
    return p > 0 ? 1.0 / p : 1.0;
}

// ---- the snapshot at the peak ---------------------------------------------------------------

// Set by observe/sites.hpp: copies the live table as the peak snapshot. A pointer, so that the
// sources do not pull in the snapshot code.
inline std::atomic<void (*)()> peak_capturer{nullptr};
// The process peak at which the next copy is taken: 10% (at least 64 KiB) above the last, so
// that a run copies the table a few dozen times, not at every new peak.
inline std::atomic<std::int64_t> next_peak_capture{0};
inline std::atomic<bool> peak_capturing{false};

constexpr std::int64_t peak_capture_min_step = 64 * 1024;

MEMLENS_NOINLINE inline void capture_peak() noexcept {
    // One thread copies at a time; the others' new peaks are in the next copy.
    if (peak_capturing.exchange(true, std::memory_order_acquire)) return;
    const std::int64_t peak = core.slots[all_slot].peak.load(relaxed);
    if (peak >= next_peak_capture.load(relaxed)) {
        if (void (*copy)() = peak_capturer.load(std::memory_order_acquire)) copy();
        const std::int64_t step = peak / 10 > peak_capture_min_step ? peak / 10 : peak_capture_min_step;
        next_peak_capture.store(peak + step, relaxed);
    }
    peak_capturing.store(false, std::memory_order_release);
}

// Addresses travel as integers: GCC warns about passing the new, unwritten block to an
// out-of-line function through a const pointer.
MEMLENS_NOINLINE inline bool record_allocation(std::uintptr_t address, std::uint64_t size,
                                               std::uint32_t d, bool sampled,
                                               bool headerless) noexcept {
    guard quiet;
    std::uintptr_t frames[max_stack_depth];
    const std::size_t depth =
        capture_stack(frames, settings.stack_depth.load(relaxed), settings.method.load(relaxed));
    const std::uint32_t stack = depth ? stacks.intern(frames, depth) : 0;
    thread_record* record = nullptr;
    const std::uint32_t index = own_record_index(record);
    const std::uint64_t sequence = next_sequence(record);
    if (site_totals* site = site_for(stack, index)) {
        if (sampled) {
            const double w = sample_weight(size, settings.sample_bytes.load(relaxed));
            site->allocs.fetch_add(static_cast<std::uint64_t>(std::llround(w)), relaxed);
            const double bytes = w * static_cast<double>(size);
            site->bytes.fetch_add(static_cast<std::uint64_t>(std::llround(bytes)), relaxed);
        } else {
            site->allocs.fetch_add(1, relaxed);
            site->bytes.fetch_add(size, relaxed);
        }
    }
    if (headerless && !table_has_headerless.load(std::memory_order_acquire)) {
        // Set before the insert, so that settle_lookups, which holds every shard, sees either
        // the flag or the entry.
        lock_guard hold(settings_lock);
        table_has_headerless.store(true, std::memory_order_release);
        update_switchboard();
    }
    const bool stored = insert_entry(make_entry(address, size, stack, sequence, index, d, sampled));
    if (MEMLENS_UNLIKELY(settings.capture_peak.load(relaxed)) && !sampled &&
        core.slots[all_slot].peak.load(relaxed) >= next_peak_capture.load(relaxed)) {
        capture_peak();
    }
    // Once: out of memory, every later allocation would say the same.
    static std::atomic<bool> reported{false};
    if (!stored && !reported.exchange(true, relaxed)) {
        report_error("cannot grow the live table; allocations go unrecorded until it can");
    }
    return stored;
}

// Removes a freed block from the live table and notes whether it lived only briefly.
MEMLENS_NOINLINE inline void forget_allocation(const void* p) noexcept {
    guard quiet;
    live_entry e{};
    if (!remove_entry(reinterpret_cast<std::uintptr_t>(p), e)) return;
    thread_record* record = nullptr;
    const std::uint32_t index = own_record_index(record);
    if (index != entry_record(e) || record == &late_record || entry_sampled(e)) return;
    const std::uint64_t later =
        (record->recorded.load(relaxed) - entry_sequence(e)) & entry_sequence_mask;
    if (later >= settings.temporary_window.load(relaxed)) return;
    if (site_totals* site = site_for(entry_stack(e), index)) site->temporaries.fetch_add(1, relaxed);
}

// ---- sampling -------------------------------------------------------------------------------

inline std::uint64_t next_random(std::uint64_t& state) noexcept {
    // xorshift64*: enough for drawing sample intervals, and its state fits in the thread state.
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dULL;
}

// An exponential interval of mean `settings.sample_bytes`, so that sampled bytes form a Poisson
// process: every byte has the same chance to be the one sampled, whatever its allocation's size.
inline std::int64_t draw_interval(thread_state& ts) noexcept {
    if (ts.sample_state == 0) {
        thread_record* record = nullptr;
        const std::uint64_t configured = settings.sample_seed.load(relaxed);
        const std::uint64_t seed =
            configured ? configured : static_cast<std::uint64_t>(monotonic_ns());
        ts.sample_state = live_hash(seed ^ (std::uint64_t{own_record_index(record)} << 32)) | 1;
    }
    const double u =
        (static_cast<double>(next_random(ts.sample_state) >> 11) + 0.5) * 0x1.0p-53;
    const double interval = -std::log(u) * static_cast<double>(settings.sample_bytes.load(relaxed));
    return interval >= 9.0e18 ? INT64_MAX : static_cast<std::int64_t>(interval) + 1;
}

// Called once the countdown went below zero: this allocation is the sampled one.
inline bool sample_due(thread_state& ts, std::uint64_t size) noexcept {
    if (ts.sample_state == 0) {
        // A thread's first countdown is drawn here, not taken as zero: zero would sample
        // every thread's first allocation.
        ts.sample_countdown = draw_interval(ts) - static_cast<std::int64_t>(size);
        if (ts.sample_countdown >= 0) return false;
    }
    ts.sample_countdown = draw_interval(ts);
    return true;
}

// ---- start-up from the environment --------------------------------------------------------

// Builds a message in a fixed buffer: errors here may be reported from inside a hook.
class fixed_message {
public:
    fixed_message& operator<<(const char* text) noexcept {
        while (*text && length_ + 1 < sizeof buffer_) buffer_[length_++] = *text++;
        buffer_[length_] = '\0';
        return *this;
    }
    const char* c_str() const noexcept { return buffer_; }

private:
    char buffer_[512] = {};
    std::size_t length_ = 0;
};

inline bool parse_mode(const char* text, live_mode& out) noexcept {
    struct named {
        const char* name;
        live_mode mode;
    };
    static constexpr named modes[] = {{"off", live_mode::off},
                                      {"counters", live_mode::counters},
                                      {"sites", live_mode::sites},
                                      {"sampled", live_mode::sampled}};
    for (const named& m : modes) {
        if (std::strcmp(text, m.name) == 0) {
            out = m.mode;
            return true;
        }
    }
    return false;
}

inline bool parse_method(const char* text, unwind_method& out) noexcept {
    if (std::strcmp(text, "frame-pointers") == 0) {
        out = unwind_method::frame_pointers;
        return true;
    }
    if (std::strcmp(text, "unwinder") == 0) {
        out = unwind_method::unwinder;
        return true;
    }
    return false;
}

// A whole decimal number, optionally followed by k, m or g (binary multiples).
inline bool parse_count(const char* text, std::uint64_t& out) noexcept {
    if (*text < '0' || *text > '9') return false;
    std::uint64_t value = 0;
    for (; *text >= '0' && *text <= '9'; ++text) {
        const std::uint64_t digit = static_cast<std::uint64_t>(*text - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    unsigned shift = 0;
    switch (*text) {
    case 'k': case 'K': shift = 10; ++text; break;
    case 'm': case 'M': shift = 20; ++text; break;
    case 'g': case 'G': shift = 30; ++text; break;
    default: break;
    }
    if (*text != '\0' || (shift && value > (UINT64_MAX >> shift))) return false;
    out = value << shift;
    return true;
}

inline void refuse(const char* variable, const char* value, const char* accepted,
                   const char* fallback) noexcept {
    fixed_message m;
    m << variable << "=\"" << value << "\" is not valid; accepted: " << accepted << "; "
      << fallback;
    report_error(m.c_str());
}

// Reads the MEMLENS_* variables into `s`. A bad value is reported and leaves that setting
// as it was; the mode then falls back to counters, which costs the host least.
inline void read_environment(live_settings& s) noexcept {
    if (const char* v = std::getenv("MEMLENS_MODE")) {
        if (!parse_mode(v, s.mode)) {
            refuse("MEMLENS_MODE", v, "off, counters, sites, sampled", "using counters");
            s.mode = live_mode::counters;
        }
    }
    std::uint64_t n = 0;
    if (const char* v = std::getenv("MEMLENS_STACK_DEPTH")) {
        if (parse_count(v, n) && n >= 1 && n <= max_stack_depth) {
            s.stack_depth = static_cast<std::uint32_t>(n);
        } else {
            refuse("MEMLENS_STACK_DEPTH", v, "a whole number from 1 to 128", "using 32");
        }
    }
    if (const char* v = std::getenv("MEMLENS_STACK_METHOD")) {
        unwind_method method{};
        if (parse_method(v, method)) {
            s.method = method;
        } else {
            refuse("MEMLENS_STACK_METHOD", v, "frame-pointers, unwinder", "using frame-pointers");
        }
    }
    if (const char* v = std::getenv("MEMLENS_SAMPLE_BYTES")) {
        if (parse_count(v, n) && n >= 1 && n <= (std::uint64_t{1} << 40)) {
            s.sample_bytes = n;
        } else {
            refuse("MEMLENS_SAMPLE_BYTES", v, "a whole number of bytes from 1 to 1T, with an "
                   "optional k, m or g suffix", "using 512k");
            if (s.mode == live_mode::sampled) s.mode = live_mode::counters;
        }
    }
    if (const char* v = std::getenv("MEMLENS_SAMPLE_SEED")) {
        if (parse_count(v, n)) {
            s.sample_seed = n;
        } else {
            refuse("MEMLENS_SAMPLE_SEED", v, "a whole number", "seeding from the clock");
        }
    }
    if (const char* v = std::getenv("MEMLENS_TEMPORARY_WINDOW")) {
        if (parse_count(v, n) && n >= 1 && n <= 1000000) {
            s.temporary_window = static_cast<std::uint32_t>(n);
        } else {
            refuse("MEMLENS_TEMPORARY_WINDOW", v, "a whole number from 1 to 1000000", "using 1");
        }
    }
    if (const char* v = std::getenv("MEMLENS_CAPTURE_PEAK")) {
        if (std::strcmp(v, "0") == 0 || std::strcmp(v, "1") == 0) {
            s.capture_peak = v[0] == '1';
        } else {
            refuse("MEMLENS_CAPTURE_PEAK", v, "0, 1", "not keeping a snapshot at the peak");
        }
    }
    if (const char* v = std::getenv("MEMLENS_LEAKS_AT_EXIT")) {
        if (std::strcmp(v, "0") == 0 || std::strcmp(v, "1") == 0) {
            s.leaks_at_exit = v[0] == '1';
        } else {
            refuse("MEMLENS_LEAKS_AT_EXIT", v, "0, 1", "not reporting leaks at exit");
        }
    }
    if (const char* v = std::getenv("MEMLENS_OUTPUT")) {
        if (std::strlen(v) < output_path_capacity) {
            std::strcpy(s.output, v);
        } else {
            refuse("MEMLENS_OUTPUT", v, "a path shorter than 4096 bytes", "writing no output");
        }
    }
}

// Set by observe/exit_report.hpp, which every program that includes the hooks links: it writes what
// the settings ask for at exit. Kept as a pointer so that every source does not pull in the views.
inline std::atomic<void (*)()> exit_writer{nullptr};

inline void run_at_exit() noexcept {
    if (void (*write)() = exit_writer.load(std::memory_order_acquire)) write();
}

// Around fork(): a lock held by a thread that does not exist in the child would never be
// released there. Taken in the one order any path nests them.
inline void lock_live_table() noexcept {
    settings_lock.lock();
    site_table.lock.lock();
    for (live_shard& s : live_shards) s.lock.lock();
}
inline void unlock_live_table() noexcept {
    for (live_shard& s : live_shards) s.lock.unlock();
    site_table.lock.unlock();
    settings_lock.unlock();
}

inline std::atomic<int> start_state{0};

// Runs once, at the first event or the first configure(): reads the environment, arranges for
// the exit report and for fork. Registered at the first event, the exit handler runs after the
// destructors of statics built later, so they do not show as leaks.
MEMLENS_COLD inline void start_live() noexcept {
    int expected = 0;
    if (!start_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        while (start_state.load(std::memory_order_acquire) != 2) ::sched_yield();
        return;
    }
    guard quiet;
    {
        lock_guard hold(settings_lock);
        read_environment(settings);
    }
    if (settings.method == unwind_method::unwinder) warm_up_unwinder();
    ::pthread_atfork(&lock_live_table, &unlock_live_table, &unlock_live_table);
    std::atexit(&run_at_exit);
    {
        lock_guard hold(settings_lock);
        live_started = true;
        update_switchboard();
    }
    start_state.store(2, std::memory_order_release);
}

// ---- the event paths the sources call -------------------------------------------------------

MEMLENS_NOINLINE inline std::uint32_t observe_alloc(std::uintptr_t p, std::size_t size,
                                                    std::uint32_t d, bool heap) noexcept {
    std::uint32_t sw = switchboard.load(std::memory_order_acquire);
    if (sw & sw_unstarted) {
        if (this_thread.guard != 0) {
            // memlens's own start-up allocating: counted like any event, recorded by nobody.
            count_alloc(size, d);
            return block_counted;
        }
        start_live();
        sw = switchboard.load(std::memory_order_acquire);
    }
    if (heap && (sw & sw_heap_off)) return 0;
    count_alloc(size, d);
    if (sw & sw_recording) {
        return record_allocation(p, size, d, false, !heap) ? block_counted | block_recorded
                                                           : block_counted;
    }
    if (sw & sw_sampling) {
        thread_state& ts = this_thread;
        ts.sample_countdown -= static_cast<std::int64_t>(size);
        if (ts.sample_countdown < 0 && sample_due(ts, size) &&
            record_allocation(p, size, d, true, !heap)) {
            return block_counted | block_recorded;
        }
    }
    return block_counted;
}

// Counts an allocation from any source and hands it to the observers that are on. Returns what
// a heap block's header must remember (block_counted, block_recorded).
MEMLENS_ALWAYS_INLINE std::uint32_t on_alloc(const void* p, std::size_t size, std::uint32_t d,
                                             bool heap) noexcept {
    const std::uint32_t sw = switchboard.load(relaxed);
    if (MEMLENS_LIKELY(sw == 0)) {
        count_alloc(size, d);
        return block_counted;
    }
    if (sw == sw_sampling) {
        // Sampled mode's common case stays inline: one thread-local countdown.
        count_alloc(size, d);
        thread_state& ts = this_thread;
        ts.sample_countdown -= static_cast<std::int64_t>(size);
        if (MEMLENS_LIKELY(ts.sample_countdown >= 0)) return block_counted;
        if (!sample_due(ts, size) ||
            !record_allocation(reinterpret_cast<std::uintptr_t>(p), size, d, true, !heap)) {
            return block_counted;
        }
        return block_counted | block_recorded;
    }
    return observe_alloc(reinterpret_cast<std::uintptr_t>(p), size, d, heap);
}

// Counts a free from a source without block headers (tracking allocators and resources,
// record_free); the live table is consulted only while it may hold such blocks.
MEMLENS_ALWAYS_INLINE void on_free(const void* p, std::size_t size, std::uint32_t d) noexcept {
    count_free(size, d);
    if (MEMLENS_UNLIKELY(switchboard.load(relaxed) & (sw_recording | sw_sampling | sw_lookups))) {
        forget_allocation(p);
    }
}

}  // namespace memlens::detail
