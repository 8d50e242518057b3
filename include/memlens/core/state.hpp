// memlens/core/state.hpp: the core's shared state and the per-event fast path: per-thread
// counter records, per-domain shared figures, peak tracking and the thread's scope frame.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>

#include <pthread.h>
#include <time.h>

#include "../detail/config.hpp"
#include "../detail/sys.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

constexpr std::uint32_t max_domains = MEMLENS_MAX_DOMAINS;
// Slot 0 of every table is the sum over all domains; named domains start at 1.
constexpr std::uint32_t all_slot = 0;
constexpr std::uint32_t heap_slot = 1;
// Where events go once every slot has a name, so that nothing is lost.
constexpr std::uint32_t overflow_slot = 2;
constexpr std::uint32_t first_free_slot = 3;
constexpr std::size_t domain_name_capacity = 48;

constexpr auto relaxed = std::memory_order_relaxed;

// Owner-only updates: one writer, so a load and a store replace a read-modify-write; readers on
// other threads still see whole values.
template <class T>
MEMLENS_ALWAYS_INLINE void owner_add(std::atomic<T>& counter, T value) noexcept {
    counter.store(counter.load(relaxed) + value, relaxed);
}

// One domain's counters in one thread's record, on a cache line of their own. Slot 0 keeps
// only the net bytes over all domains, in alloc_bytes, for the process peak.
struct alignas(64) slot_counters {
    std::atomic<std::uint64_t> alloc_bytes{0};
    std::atomic<std::uint64_t> free_bytes{0};
    std::atomic<std::uint64_t> allocs{0};
    std::atomic<std::uint64_t> frees{0};
    // The part of alloc_bytes - free_bytes already folded into the shared figure; the rest is
    // this thread's pending net, which other threads read when they claim.
    std::atomic<std::int64_t> folded{0};
    // Owner only: how far the pending net may rise before this slot's estimate could pass the
    // trigger or the batch, and the other threads' pending net when this thread last looked.
    std::int64_t room = 0;
    std::int64_t others = 0;

    std::int64_t pending() const noexcept {
        return static_cast<std::int64_t>(alloc_bytes.load(relaxed) - free_bytes.load(relaxed)) -
               folded.load(relaxed);
    }
};

// A thread scope's figures, as plain values to fold and report.
struct frame_figures {
    std::uint64_t allocated = 0;
    std::uint64_t freed = 0;
    std::uint64_t allocs = 0;
    std::uint64_t frees = 0;
    std::int64_t net = 0;
    std::int64_t peak = 0;
};

// What `opening` holds besides the opening's serial number.
constexpr std::uint64_t frame_ended_elsewhere = std::uint64_t{1} << 63;
constexpr std::uint64_t frame_orphaned = std::uint64_t{1} << 62;

// A thread scope's running figures. Frames live in their thread's record, which is never
// freed, and not in the scope object: a scope destroyed on another thread (a unique_ptr reset
// elsewhere) must not leave its thread counting into freed memory. The owner updates the
// figures with plain loads and stores; another thread reads them whole.
struct scope_frame {
    std::atomic<std::uint64_t> allocated{0};
    std::atomic<std::uint64_t> freed{0};
    std::atomic<std::uint64_t> allocs{0};
    std::atomic<std::uint64_t> frees{0};
    std::atomic<std::int64_t> net{0};
    std::atomic<std::int64_t> peak{0};
    // Owner only: the frame opened before this one on the thread, still open.
    scope_frame* parent = nullptr;
    // 0 while free; otherwise the serial number of the opening that holds it, with
    // frame_ended_elsewhere once another thread has ended its scope (the owner unlinks it), or
    // frame_orphaned once its thread has exited (whoever ends the scope frees it).
    std::atomic<std::uint64_t> opening{0};

    frame_figures figures() const noexcept {
        return {allocated.load(relaxed), freed.load(relaxed), allocs.load(relaxed),
                frees.load(relaxed),     net.load(relaxed),   peak.load(relaxed)};
    }
    void set(const frame_figures& f) noexcept {
        allocated.store(f.allocated, relaxed);
        freed.store(f.freed, relaxed);
        allocs.store(f.allocs, relaxed);
        frees.store(f.frees, relaxed);
        net.store(f.net, relaxed);
        peak.store(f.peak, relaxed);
    }
};

// Thread scopes one thread can hold open at once.
constexpr std::size_t max_open_scopes = 64;

// The newest blocks with a site in their header that a thread remembers, so that its own free
// of one can tell a temporary block without the live table.
constexpr std::uint32_t recent_block_count = 16;

struct thread_record {
    slot_counters slots[max_domains];
    // Owner only: the epoch this record's rooms were computed at.
    std::uint64_t seen_epoch = 0;
    // The batch this thread last settled with; 0 once it works in exact-peak mode. Read by
    // others to tell bytes left over from batched mode from an event in flight.
    std::atomic<std::int64_t> batch{0};
    // Owner only: other threads' pending bytes moved between two looks, so they are
    // allocating now; see refresh_rooms.
    bool contended = false;
    // When this thread last claimed; read by others to tell turns from contention.
    std::atomic<std::int64_t> claim_time{0};
    thread_record* next = nullptr;
    std::atomic<bool> in_use{false};
    // Owner only: allocations this record has put in the live table, so that leak checks can
    // tell what was allocated after they began, and frees can tell how soon they came.
    std::atomic<std::uint64_t> recorded{0};
    // The record's place in creation order (0 for the shared record), kept with each recorded
    // allocation.
    std::uint32_t index = 0;
    // Records of exited threads' late events: shared, so updated with read-modify-writes.
    bool shared = false;
    // Owner only: the addresses of the newest blocks with a site in their header, each in the
    // place of its sequence number (modulo the count), with that number.
    std::uintptr_t recent_address[recent_block_count] = {};
    std::uint64_t recent_sequence[recent_block_count] = {};
    scope_frame scope_frames[max_open_scopes];
};

// A process scope's view of the all-domain figure: the highest value seen while it is open.
struct process_window {
    std::atomic<std::int64_t> high{0};
    process_window* prev = nullptr;
    process_window* next = nullptr;
};

struct alignas(64) shared_slot {
    std::atomic<std::int64_t> flushed{0};
    std::atomic<std::int64_t> peak{0};
    // The slow path runs once an estimate passes this: the peak, or lower while a process
    // scope watches for its own high-water mark.
    std::atomic<std::int64_t> trigger{0};
    char name[domain_name_capacity] = {};
};

struct core_state {
    shared_slot slots[max_domains];
    // Read on every allocation: kept apart from what the slow paths write. The epoch moves
    // whenever a thread's cached limits may have become unsafe: a fold, a claim, a lower trigger.
    alignas(64) std::atomic<std::uint64_t> epoch{1};
    std::atomic<std::int64_t> batch{MEMLENS_PEAK_BATCH_BYTES};
    std::atomic<thread_record*> last{nullptr};
    alignas(64) std::atomic<std::uint32_t> slot_count{first_free_slot};
    std::atomic<thread_record*> records{nullptr};
    std::uint32_t record_count = 0;
    std::atomic<int> process_windows{0};
    std::atomic<std::uint64_t> scope_openings{0};
    process_window* windows = nullptr;
    std::atomic<int> init_state{0};
    bool exit_key_ready = false;
    pthread_key_t exit_key{};
    alignas(64) spin_lock lock;
};

#if defined(__cpp_constinit)
#define MEMLENS_CONSTINIT constinit
#else
#define MEMLENS_CONSTINIT
#endif

// Constant-initialized and never destroyed, so events before main and after static
// destruction find it intact.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline core_state core{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline thread_record late_record{};

struct failure_plan;

// Set in thread_state::guard while the thread has a failure plan (core/failures.hpp): the hooks
// test that word on every call already, so a plan costs the path without one nothing. The rest
// of the word still counts memlens's own nesting; counted() ignores the bit.
constexpr int guard_failing = 1 << 30;

struct thread_state {
    thread_record* record;
    scope_frame* frame;
    // Non-zero while memlens itself or a tracking source forwards to an upstream allocator.
    int guard;
    bool exited;
    // Non-zero inside memlens::unscoped: what is allocated then is recorded, but not as this
    // thread's, so that the thread's leak checks do not charge it to the checked block.
    int excluded;
    // Sampled mode: bytes left before the next sample, and the generator that draws intervals.
    std::int64_t sample_countdown;
    std::uint64_t sample_state;
    // The innermost failure plan of memlens::fail_allocations, or null.
    failure_plan* failures;
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline thread_local thread_state this_thread{};

// A thread claims (takes an exact view of the others' pending bytes) when it finds another
// holder whose claim is older than claim_quiet_ns: threads that take turns claim at once,
// which keeps peaks exact. While threads allocate at the same moment, each looks again only
// after its net bytes rise by claim_retry_bytes, so that they neither write the shared words
// nor read each other's records on every event; their peaks may lag by that much each.
constexpr std::int64_t claim_quiet_ns = 1000;
constexpr std::int64_t claim_retry_bytes = 4096;

inline std::int64_t monotonic_ns() noexcept {
    ::timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

MEMLENS_ALWAYS_INLINE void frame_alloc(scope_frame* f, std::int64_t n) noexcept {
    owner_add(f->allocated, static_cast<std::uint64_t>(n));
    owner_add(f->allocs, std::uint64_t{1});
    const std::int64_t net = f->net.load(relaxed) + n;
    f->net.store(net, relaxed);
    if (net > f->peak.load(relaxed)) f->peak.store(net, relaxed);
}

MEMLENS_ALWAYS_INLINE void frame_free(scope_frame* f, std::int64_t n) noexcept {
    owner_add(f->freed, static_cast<std::uint64_t>(n));
    owner_add(f->frees, std::uint64_t{1});
    f->net.store(f->net.load(relaxed) - n, relaxed);
}

// ---- slow paths ---------------------------------------------------------------------------

inline std::int64_t lowest_window_locked() noexcept {
    std::int64_t low = INT64_MAX;
    for (process_window* w = core.windows; w; w = w->next) {
        const std::int64_t h = w->high.load(relaxed);
        if (h < low) low = h;
    }
    return low;
}

// Recomputes how far each of this thread's slots may rise before it must look again.
inline void refresh_rooms(thread_record* self) noexcept {
    const std::uint64_t epoch = core.epoch.load(std::memory_order_acquire);
    const std::int64_t batch = core.batch.load(relaxed);
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    const bool alone = core.last.load(relaxed) == self && !self->contended;
    for (std::uint32_t i = 0; i < count; ++i) {
        slot_counters& s = self->slots[i];
        std::int64_t room;
        if (alone) {
            room = core.slots[i].trigger.load(relaxed) - core.slots[i].flushed.load(relaxed) -
                   s.others;
        } else {
            room = s.pending() + claim_retry_bytes;
        }
        s.room = room < batch ? room : batch;
    }
    self->batch.store(batch, relaxed);
    self->seen_epoch = epoch;
}

// Takes this thread's view of the other threads' pending bytes, for every slot. In exact-peak
// mode only threads that still hold bytes from batched mode count: the others fold every event.
inline void refresh_others(thread_record* self, bool leftovers_only = false) noexcept {
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < count; ++i) self->slots[i].others = 0;
    for (thread_record* r = core.records.load(std::memory_order_acquire); r; r = r->next) {
        if (r == self || (leftovers_only && r->batch.load(relaxed) == 0)) continue;
        for (std::uint32_t i = 0; i < count; ++i) self->slots[i].others += r->slots[i].pending();
    }
}

// Becomes the thread whose view is fresh; the epoch tells the others that they no longer are.
inline void claim(thread_record* self) noexcept {
    refresh_others(self, core.batch.load(relaxed) == 0);
    self->contended = false;
    core.last.store(self, std::memory_order_release);
    self->claim_time.store(monotonic_ns(), relaxed);
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
}

struct slot_sum {
    std::int64_t live = 0;    // live bytes of the slot over every record
    std::int64_t others = 0;  // the part other records than the caller's hold unfolded
};

// The truth a new peak is checked against, so that no stale view can inflate a peak.
inline slot_sum sum_slot(const thread_record* self, std::uint32_t i) noexcept {
    slot_sum out;
    for (thread_record* r = core.records.load(std::memory_order_acquire); r; r = r->next) {
        const slot_counters& s = r->slots[i];
        const auto live =
            static_cast<std::int64_t>(s.alloc_bytes.load(relaxed) - s.free_bytes.load(relaxed));
        out.live += live;
        if (r != self) out.others += live - s.folded.load(relaxed);
    }
    return out;
}

inline void maybe_claim(thread_record* self) noexcept {
    thread_record* holder = core.last.load(std::memory_order_acquire);
    if (holder == self) return;
    if (!holder || monotonic_ns() - holder->claim_time.load(relaxed) >= claim_quiet_ns) claim(self);
}

// Records that slot `i` reached `value`. The trigger only rises here, so other threads' rooms
// stay safe (at worst too small) without telling them.
inline void raise_peak(std::uint32_t i, std::int64_t value) noexcept {
    shared_slot& s = core.slots[i];
    std::int64_t peak = s.peak.load(relaxed);
    while (value > peak && !s.peak.compare_exchange_weak(peak, value, relaxed)) {
    }
    if (i == all_slot && core.process_windows.load(std::memory_order_seq_cst) != 0) {
        lock_guard hold(core.lock);
        for (process_window* w = core.windows; w; w = w->next) {
            if (value > w->high.load(relaxed)) w->high.store(value, relaxed);
        }
        std::int64_t trigger = s.peak.load(relaxed);
        const std::int64_t low = lowest_window_locked();
        if (low < trigger) trigger = low;
        s.trigger.store(trigger, relaxed);
        return;
    }
    // Never above the peak: reset_peak may have lowered it since the exchange above.
    const std::int64_t cap = s.peak.load(relaxed) < value ? s.peak.load(relaxed) : value;
    std::int64_t trigger = s.trigger.load(relaxed);
    while (cap > trigger && !s.trigger.compare_exchange_weak(trigger, cap, relaxed)) {
    }
    if (i == all_slot && core.process_windows.load(std::memory_order_seq_cst) != 0) {
        // A process scope opened meanwhile and may have lowered the trigger: redo it locked.
        raise_peak(i, value);
    }
}

// Moves `p` pending bytes of slot `i` of a record into the shared figure; returns that figure.
inline std::int64_t fold_pending(slot_counters& s, std::uint32_t i, std::int64_t p) noexcept {
    s.folded.store(s.folded.load(relaxed) + p, relaxed);
    return core.slots[i].flushed.fetch_add(p, relaxed) + p;
}

inline void fold_slot(thread_record* self, std::uint32_t i) noexcept {
    const std::int64_t p = self->slots[i].pending();
    if (p == 0) return;
    fold_pending(self->slots[i], i, p);
    // Other threads' rooms counted these bytes as this thread's pending: tell them to look again.
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
}

inline std::int64_t estimate(thread_record* self, std::uint32_t i) noexcept {
    return core.slots[i].flushed.load(relaxed) + self->slots[i].others + self->slots[i].pending();
}

// Raises slot i's peak to the sum of all records when that passes the trigger.
inline void raise_to_sum(thread_record* self, std::uint32_t i) noexcept {
    const slot_sum sum = sum_slot(self, i);
    if (self) {
        self->contended = sum.others != self->slots[i].others;
        self->slots[i].others = sum.others;
    }
    if (sum.live > core.slots[i].trigger.load(relaxed)) raise_peak(i, sum.live);
}

inline void check_peak(thread_record* self, std::uint32_t i) noexcept {
    if (estimate(self, i) > core.slots[i].trigger.load(relaxed)) raise_to_sum(self, i);
}

MEMLENS_NOINLINE inline void settle(thread_record* self, std::uint32_t d) noexcept {
    const std::int64_t batch = core.batch.load(relaxed);
    if (batch == 0) {
        // Exact-peak mode: every event goes straight to the shared figure, so the value each
        // fold returns, plus what idle threads still held from batched mode, is the truth.
        if (core.epoch.load(std::memory_order_acquire) != self->seen_epoch) {
            refresh_others(self, true);
        }
        const bool leftovers = self->batch.load(relaxed) != 0;
        for (std::uint32_t i : {d, all_slot}) {
            slot_counters& s = self->slots[i];
            const std::int64_t p = s.pending();
            const std::int64_t now = fold_pending(s, i, p) + s.others;
            if (p > 0 && now > core.slots[i].trigger.load(relaxed)) raise_peak(i, now);
        }
        // This thread's first fold in exact mode moves what the others saw as its pending.
        if (leftovers) core.epoch.fetch_add(1, std::memory_order_acq_rel);
        refresh_rooms(self);
        return;
    }
    if (core.last.load(relaxed) != self) maybe_claim(self);
    for (std::uint32_t i : {d, all_slot}) {
        const std::int64_t p = self->slots[i].pending();
        if (p > batch || p < -batch) fold_slot(self, i);
        check_peak(self, i);
    }
    refresh_rooms(self);
}

// Folds a leaving record's pending bytes into the shared figures.
inline void retire(thread_record* r) noexcept {
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::int64_t p = r->slots[i].pending();
        if (p != 0) fold_pending(r->slots[i], i, p);
    }
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
    thread_record* self = r;
    core.last.compare_exchange_strong(self, nullptr, relaxed);
    // Nothing left over: the next owner starts as a thread that never ran in batched mode.
    r->batch.store(0, relaxed);
    r->in_use.store(false, std::memory_order_release);
}

inline void on_thread_exit(void* record) noexcept {
    retire(static_cast<thread_record*>(record));
    this_thread.record = nullptr;
    this_thread.exited = true;
}

inline void fork_prepare() noexcept { core.lock.lock(); }
inline void fork_parent() noexcept { core.lock.unlock(); }
// Only the forking thread lives on in the child: every other record is folded and freed for
// reuse, while the bytes those threads allocated stay counted, as they stay allocated.
inline void fork_child() noexcept {
    core.lock.unlock();
    thread_record* self = this_thread.record;
    const std::uint32_t count = core.slot_count.load(std::memory_order_acquire);
    for (thread_record* r = core.records.load(std::memory_order_acquire); r; r = r->next) {
        if (r == self || r == &late_record) continue;
        // A thread may have died between its domain store and its all-domain store: rebuild
        // the all-domain net from the domains, and leave nothing pending.
        std::uint64_t net = 0;
        for (std::uint32_t i = heap_slot; i < count; ++i) {
            slot_counters& s = r->slots[i];
            const std::uint64_t live = s.alloc_bytes.load(relaxed) - s.free_bytes.load(relaxed);
            net += live;
            s.folded.store(static_cast<std::int64_t>(live), relaxed);
        }
        r->slots[all_slot].alloc_bytes.store(net, relaxed);
        r->slots[all_slot].folded.store(static_cast<std::int64_t>(net), relaxed);
        r->batch.store(0, relaxed);
        r->in_use.store(false, relaxed);
    }
    // With one thread left, the shared figures can be made exact again.
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::int64_t own = self ? self->slots[i].pending() : 0;
        core.slots[i].flushed.store(sum_slot(nullptr, i).live - own, relaxed);
    }
    core.last.store(nullptr, relaxed);
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
    if (self) {
        claim(self);
        refresh_rooms(self);
    }
}

MEMLENS_COLD inline void init_process() noexcept {
    int expected = 0;
    if (!core.init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        while (core.init_state.load(std::memory_order_acquire) != 2) ::sched_yield();
        return;
    }
    if (::pthread_key_create(&core.exit_key, &on_thread_exit) == 0) {
        core.exit_key_ready = true;
    } else {
        report_error("cannot create the thread-exit key; exiting threads keep their records");
    }
    ::pthread_atfork(&fork_prepare, &fork_parent, &fork_child);
    late_record.shared = true;
    late_record.in_use.store(true, relaxed);
    late_record.next = core.records.load(relaxed);
    core.records.store(&late_record, std::memory_order_release);
    core.init_state.store(2, std::memory_order_release);
}

// A record an exited thread left for reuse, now owned by the caller; null when none is idle.
// Records (per-thread counters, per-thread type tables) form lists that only grow.
template <class Record>
Record* reuse_idle_record(const std::atomic<Record*>& head) noexcept {
    for (Record* r = head.load(std::memory_order_acquire); r; r = r->next) {
        bool idle = false;
        if (!r->shared && r->in_use.compare_exchange_strong(idle, true, std::memory_order_acquire)) {
            return r;
        }
    }
    return nullptr;
}

// A reused record's frames: those another thread already ended are free again; those still
// open belong to scopes that outlived their thread, and are freed by whoever ends them.
inline void adopt_frames(thread_record* r) noexcept {
    for (scope_frame& f : r->scope_frames) {
        std::uint64_t opening = f.opening.load(std::memory_order_acquire);
        while (opening != 0 && (opening & frame_orphaned) == 0) {
            const std::uint64_t next = (opening & frame_ended_elsewhere) ? 0 : opening | frame_orphaned;
            if (f.opening.compare_exchange_weak(opening, next, std::memory_order_acq_rel)) break;
        }
    }
}

MEMLENS_COLD inline thread_record* acquire_record() noexcept {
    thread_state& ts = this_thread;
    if (ts.exited) return &late_record;
    ++ts.guard;
    if (core.init_state.load(std::memory_order_acquire) != 2) init_process();
    thread_record* found = reuse_idle_record(core.records);
    if (found) {
        adopt_frames(found);
    } else {
        void* raw = map_pages(sizeof(thread_record));
        if (!raw) {
            report_error("cannot map a thread record; this thread's events are shared");
            --ts.guard;
            return &late_record;
        }
        found = new (raw) thread_record{};
        found->in_use.store(true, relaxed);
        lock_guard hold(core.lock);
        found->index = ++core.record_count;
        found->next = core.records.load(relaxed);
        core.records.store(found, std::memory_order_release);
    }
    // This thread's view of the others starts exact.
    claim(found);
    refresh_rooms(found);
    if (core.exit_key_ready) ::pthread_setspecific(core.exit_key, found);
    ts.record = found;
    --ts.guard;
    return found;
}

MEMLENS_COLD inline void count_shared(std::uint32_t d, std::int64_t n) noexcept {
    slot_counters& s = late_record.slots[d];
    if (n >= 0) {
        s.alloc_bytes.fetch_add(static_cast<std::uint64_t>(n), relaxed);
        s.allocs.fetch_add(1, relaxed);
    } else {
        s.free_bytes.fetch_add(static_cast<std::uint64_t>(-n), relaxed);
        s.frees.fetch_add(1, relaxed);
    }
    // Folded at once: the shared record never holds pending bytes.
    s.folded.fetch_add(n, relaxed);
    late_record.slots[all_slot].alloc_bytes.fetch_add(static_cast<std::uint64_t>(n), relaxed);
    late_record.slots[all_slot].folded.fetch_add(n, relaxed);
    for (std::uint32_t i : {d, all_slot}) {
        core.slots[i].flushed.fetch_add(n, relaxed);
        if (n > 0) raise_to_sum(nullptr, i);
    }
    // Shared bytes moved without any thread's view seeing it.
    core.epoch.fetch_add(1, std::memory_order_acq_rel);
}

// The record a recorded allocation is filed under: the thread's own, or the shared one for
// exited threads and inside memlens::unscoped.
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

// ---- fast paths ---------------------------------------------------------------------------

// The calling thread's own record, or null once the event of `delta` bytes has been counted in
// the shared record (the thread is exiting, or no record could be mapped).
MEMLENS_ALWAYS_INLINE thread_record* own_record(thread_state& ts, std::uint32_t d,
                                                std::int64_t delta) noexcept {
    thread_record* r = ts.record;
    if (MEMLENS_LIKELY(r != nullptr)) return r;
    r = acquire_record();
    if (!r->shared) return r;
    count_shared(d, delta);
    return nullptr;
}

// Counts an allocation of `size` requested bytes in domain slot `d` for the calling thread.
// The global operator new hooks skip it while this_thread.guard is set; see counted().
MEMLENS_ALWAYS_INLINE void count_alloc(std::size_t size, std::uint32_t d) noexcept {
    thread_state& ts = this_thread;
    thread_record* r = own_record(ts, d, static_cast<std::int64_t>(size));
    if (MEMLENS_UNLIKELY(r == nullptr)) return;
    slot_counters& s = r->slots[d];
    slot_counters& a = r->slots[all_slot];
    const std::uint64_t allocated = s.alloc_bytes.load(relaxed) + size;
    s.alloc_bytes.store(allocated, relaxed);
    owner_add(s.allocs, std::uint64_t{1});
    const std::uint64_t all_net = a.alloc_bytes.load(relaxed) + size;
    a.alloc_bytes.store(all_net, relaxed);
    if (ts.frame) frame_alloc(ts.frame, static_cast<std::int64_t>(size));
    const std::int64_t pd =
        static_cast<std::int64_t>(allocated - s.free_bytes.load(relaxed)) - s.folded.load(relaxed);
    const std::int64_t pa = static_cast<std::int64_t>(all_net) - a.folded.load(relaxed);
    if (MEMLENS_UNLIKELY(pd > s.room || pa > a.room || core.epoch.load(relaxed) != r->seen_epoch)) {
        settle(r, d);
    }
}

// Counts a free of `size` requested bytes in domain slot `d` for the calling thread.
MEMLENS_ALWAYS_INLINE void count_free(std::size_t size, std::uint32_t d) noexcept {
    thread_state& ts = this_thread;
    thread_record* r = own_record(ts, d, -static_cast<std::int64_t>(size));
    if (MEMLENS_UNLIKELY(r == nullptr)) return;
    slot_counters& s = r->slots[d];
    slot_counters& a = r->slots[all_slot];
    const std::uint64_t freed = s.free_bytes.load(relaxed) + size;
    s.free_bytes.store(freed, relaxed);
    owner_add(s.frees, std::uint64_t{1});
    const std::uint64_t all_net = a.alloc_bytes.load(relaxed) - size;
    a.alloc_bytes.store(all_net, relaxed);
    if (ts.frame) frame_free(ts.frame, static_cast<std::int64_t>(size));
    const std::int64_t pd =
        static_cast<std::int64_t>(s.alloc_bytes.load(relaxed) - freed) - s.folded.load(relaxed);
    const std::int64_t pa = static_cast<std::int64_t>(all_net) - a.folded.load(relaxed);
    // Frees cannot set a peak; they only fold once they have moved a batch down.
    const std::int64_t batch = r->batch.load(relaxed);
    if (MEMLENS_UNLIKELY(pd < -batch || pa < -batch)) settle(r, d);
}

// False inside memlens's own work and inside a tracking source's upstream call, where the
// global operator new hooks must not count the same bytes again in "heap". Their block header
// remembers the answer, so a block is uncounted on free exactly when it was counted.
MEMLENS_ALWAYS_INLINE bool counted() noexcept { return (this_thread.guard & ~guard_failing) == 0; }

// Keeps memlens's own work and a tracking source's upstream call from being counted again.
class guard {
public:
    guard() noexcept { ++this_thread.guard; }
    ~guard() { --this_thread.guard; }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
};

}  // namespace detail
MEMLENS_NAMESPACE_END
