// memlens/core/events.hpp: the one event path. Every source calls on_alloc / on_free; they count,
// then hand the event to each observer the switchboard says is on: the live table with its site
// totals, the sampler, the peak copy. Start-up, the exit hook and fork handling live here too.
// Everything here may run inside an allocation hook, so it never allocates through one.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <pthread.h>

#include "handoff.hpp"
#include "lifetimes.hpp"
#include "live_table.hpp"
#include "process.hpp"
#include "sampler.hpp"
#include "source_frames.hpp"
#include "site_table.hpp"
#include "stacks.hpp"
#include "state.hpp"
#include "switchboard.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// Copies the live table as the peak snapshot; registered by configure() and by
// <memlens/hooks.hpp> (observe/sites.hpp). A pointer, so that the sources do not pull in the
// snapshot code.
MEMLENS_DETAIL_PER_COPY inline std::atomic<void (*)()> peak_capturer{nullptr};
// The process peak at which the next copy is taken: 10% (at least 64 KiB) above the last, so
// that a run copies the table a few dozen times, not at every new peak.
MEMLENS_DETAIL_SHARED inline std::atomic<std::int64_t> next_peak_capture{0};
MEMLENS_DETAIL_SHARED inline std::atomic<bool> peak_capturing{false};

constexpr std::int64_t peak_capture_min_step = 64 * 1024;

MEMLENS_NOINLINE inline void capture_peak() noexcept {
    // The copy's own allocations are memlens's, not the program's.
    guard quiet;
    // A copy of the headers without the snapshot code leaves the peak to the next event that
    // reaches a copy with it, in this process's one state, without holding up that copy.
    void (*copy)() = peak_capturer.load(std::memory_order_acquire);
    if (!copy) return;
    // One thread copies at a time; the others' new peaks are in the next copy.
    if (peak_capturing.exchange(true, std::memory_order_acquire)) return;
    const std::int64_t peak = core.slots[all_slot].peak.load(relaxed);
    if (peak >= next_peak_capture.load(relaxed)) {
        copy();
        const std::int64_t step = peak / 10 > peak_capture_min_step ? peak / 10 : peak_capture_min_step;
        next_peak_capture.store(peak + step, relaxed);
    }
    peak_capturing.store(false, std::memory_order_release);
}

// Copies the live figures at a new process peak, when asked to and the step is reached.
MEMLENS_ALWAYS_INLINE void note_peak() noexcept {
    if (MEMLENS_UNLIKELY(settings.capture_peak.load(relaxed)) &&
        core.slots[all_slot].peak.load(relaxed) >= next_peak_capture.load(relaxed)) {
        capture_peak();
    }
}

// The calling thread's stack, interned; 0 when none could be captured.
inline std::uint32_t current_stack() noexcept {
    std::uintptr_t frames[max_stack_depth];
    std::size_t depth =
        capture_stack(frames, settings.stack_depth.load(relaxed), settings.method.load(relaxed));
    if (auto join = stack_joiner.load(relaxed)) depth = join(frames, depth, max_stack_depth);
    return depth ? stacks.intern(frames, depth) : 0;
}

// Puts a block in the live table, with the stack it was allocated at. Addresses travel as
// integers: GCC warns about passing the new, unwritten block to an out-of-line function through
// a const pointer.
MEMLENS_NOINLINE inline bool record_entry(std::uintptr_t address, std::uint64_t size, std::uint32_t d,
                                          bool sampled, bool headerless, std::uint32_t stack) noexcept {
    guard quiet;
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
    // Timed before the insert, so that the entry says so; undone below if the insert fails.
    const std::uint64_t kept_size = size > entry_size_mask ? entry_size_mask : size;
    const bool timed = !sampled && MEMLENS_UNLIKELY(settings.lifetimes.load(relaxed)) &&
                       time_birth(stack, kept_size);
    live_entry replaced{};
    const bool stored =
        insert_entry(make_entry(address, size, stack, sequence, index, d, sampled, timed), &replaced);
    if (MEMLENS_UNLIKELY(entry_timed(replaced))) time_death(entry_stack(replaced), entry_size(replaced));
    if (MEMLENS_UNLIKELY(!stored && timed)) time_death(stack, kept_size);
    if (!sampled) note_peak();
    note_handoff(address, size, d);
    // Once: out of memory, every later allocation would say the same.
    static std::atomic<bool> reported{false};
    if (!stored && !reported.exchange(true, relaxed)) {
        report_error("cannot grow the live table; allocations go unrecorded until it can");
    }
    return stored;
}

inline bool record_allocation(std::uintptr_t address, std::uint64_t size, std::uint32_t d,
                              bool sampled, bool headerless) noexcept {
    std::uint32_t stack = 0;
    {
        guard quiet;
        stack = current_stack();
    }
    return record_entry(address, size, d, sampled, headerless, stack);
}

// What on_alloc tells a heap block to keep in its header: the block_* flags, and for a block
// that carries its site, the stack and the allocating record.
using block_mark = std::uint64_t;
constexpr unsigned mark_record_shift = 8;
constexpr unsigned mark_stack_shift = 32;
// A block this large keeps its whole size in its header, with no room for a site.
constexpr std::uint64_t sited_size_limit = std::uint64_t{1} << 40;

inline block_mark sited_mark(std::uint32_t stack, std::uint32_t record) noexcept {
    return block_counted | block_sited | (block_mark{record} << mark_record_shift) |
           (block_mark{stack} << mark_stack_shift);
}
inline std::uint32_t mark_stack(block_mark m) noexcept {
    return static_cast<std::uint32_t>(m >> mark_stack_shift);
}
inline std::uint32_t mark_record(block_mark m) noexcept {
    return static_cast<std::uint32_t>(m >> mark_record_shift) & entry_record_limit;
}

// Sites mode for a heap block: its site's figures grow and the block's header names the site,
// so that the free finds them again without a table. Blocks without a stack, or too large for
// the header to hold a site as well, go to the live table instead.
MEMLENS_NOINLINE inline block_mark site_allocation(std::uintptr_t address, std::uint64_t size,
                                                   std::uint32_t d) noexcept {
    std::uint32_t stack = 0;
    {
        guard quiet;
        stack = current_stack();
    }
    if (stack == 0 || size >= sited_size_limit) {
        return record_entry(address, size, d, false, false, stack) ? block_counted | block_recorded
                                                                   : block_counted;
    }
    thread_record* record = nullptr;
    const std::uint32_t index = own_record_index(record);
    site_totals* site = site_for(stack, index);
    if (!site) return block_counted;
    const std::uint64_t sequence = next_sequence(record);
    site->allocs.fetch_add(1, relaxed);
    site->bytes.fetch_add(size, relaxed);
    site->live_allocs.fetch_add(1, relaxed);
    site->live_bytes.fetch_add(size, relaxed);
    if (MEMLENS_UNLIKELY(d != heap_slot) && site->domain.load(relaxed) != d) site->domain.store(d, relaxed);
    if (!record->shared) {
        const std::uint32_t place = static_cast<std::uint32_t>(sequence % recent_block_count);
        record->recent_address[place] = address;
        record->recent_sequence[place] = sequence;
    }
    note_peak();
    return sited_mark(stack, index > entry_record_limit ? entry_record_limit : index);
}

inline void note_temporary(std::uint32_t stack, std::uint32_t lane) noexcept {
    if (site_totals* site = site_for(stack, lane)) site->temporaries.fetch_add(1, relaxed);
}

// Whether the block allocated as `sequence` by `record` is freed before the temporary window
// closed.
inline bool within_window(const thread_record* record, std::uint64_t sequence) noexcept {
    const std::uint64_t later = (record->recorded.load(relaxed) - sequence) & entry_sequence_mask;
    return later < settings.temporary_window.load(relaxed);
}

// The free of a block whose header names its site (see site_allocation).
MEMLENS_NOINLINE inline void forget_site(std::uintptr_t address, std::uint64_t size,
                                         std::uint32_t stack, std::uint32_t allocator) noexcept {
    thread_record* record = nullptr;
    const std::uint32_t index = own_record_index(record);
    site_totals* site = site_for(stack, index);
    if (!site) return;
    site->live_allocs.fetch_sub(1, relaxed);
    site->live_bytes.fetch_sub(size, relaxed);
    if (index != allocator || record->shared) return;
    // Only the newest blocks can still be within the window: look at those, newest first.
    const std::uint64_t newest = record->recorded.load(relaxed);
    const std::uint32_t window = settings.temporary_window.load(relaxed);
    for (std::uint64_t back = 0; back < window && back < recent_block_count && back < newest; ++back) {
        const std::uint32_t place = static_cast<std::uint32_t>((newest - back) % recent_block_count);
        if (record->recent_sequence[place] != newest - back) continue;
        if (record->recent_address[place] != address) continue;
        record->recent_address[place] = 0;
        site->temporaries.fetch_add(1, relaxed);
        return;
    }
}

// Removes a freed block from the live table and notes whether it lived only briefly.
MEMLENS_NOINLINE inline void forget_allocation(const void* p) noexcept {
    guard quiet;
    live_entry e{};
    if (!remove_entry(reinterpret_cast<std::uintptr_t>(p), e)) return;
    if (MEMLENS_UNLIKELY(entry_timed(e))) time_death(entry_stack(e), entry_size(e));
    note_handoff(e.address, handoff_freed, entry_domain(e));
    thread_record* record = nullptr;
    const std::uint32_t index = own_record_index(record);
    if (index != entry_record(e) || record == &late_record || entry_sampled(e)) return;
    if (within_window(record, entry_sequence(e))) note_temporary(entry_stack(e), index);
}

// Set by <memlens/hooks.hpp> (view/exit_report.hpp): writes what the settings ask for at exit.
// A pointer, so that the report writers are compiled only in the unit that holds the hooks.
MEMLENS_DETAIL_PER_COPY inline std::atomic<void (*)()> exit_writer{nullptr};

// Where the exit report's scan of the exiting thread's stack starts: the frame of the exit
// handler, above which lie the frames of exit() and the program. The report's own frames below
// it may hold stale copies of the program's pointers, left there by earlier calls, which no
// root of the program holds (memcheck, which checks after the exit, never sees them).
MEMLENS_DETAIL_PER_COPY inline std::uintptr_t exit_stack_from = 0;

MEMLENS_NOINLINE inline void run_at_exit() noexcept {
    exit_stack_from = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    if (void (*write)() = exit_writer.load(std::memory_order_acquire)) {
        write();
        return;
    }
    bool asked = false;
    {
        lock_guard hold(settings_lock);
        asked = settings.leaks_at_exit || settings.output[0] != '\0';
    }
    if (asked) {
        report_error("MEMLENS_OUTPUT or MEMLENS_LEAKS_AT_EXIT asks for a report at exit, but this "
                     "program has no exit report: include <memlens/hooks.hpp> (not "
                     "<memlens/sources/new.hpp>) in one of its files");
    }
}

// Around fork(): a lock held by a thread that does not exist in the child would never be
// released there. Taken in the one order any path nests them.
inline void lock_live_table() noexcept {
    settings_lock.lock();
    site_table.lock.lock();
    for (live_shard& s : live_shards) s.lock.lock();
    lifetimes.lock.lock();
}
inline void unlock_live_table() noexcept {
    lifetimes.lock.unlock();
    for (live_shard& s : live_shards) s.lock.unlock();
    site_table.lock.unlock();
    settings_lock.unlock();
}

MEMLENS_DETAIL_SHARED inline std::atomic<int> start_state{0};

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
    const char* first_layout = nullptr;
    const bool claimed = claim_layout(first_layout);
    if (!claimed) {
        fixed_message m;
        m << "this program mixes units built with different MEMLENS_MAX_DOMAINS, MEMLENS_MAX_TYPES "
             "or MEMLENS_PEAK_BATCH_BYTES (memlens " << first_layout << " started first, then "
          << layout_name << "); the units built with the second count nothing. Build every unit "
             "with the same values";
        report_error(m.c_str());
    }
    if (claimed) mark_process_state(&core);
    {
        lock_guard hold(settings_lock);
        layout_refused = !claimed;
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

// A leak check, or a handoff to another tracer, needs every allocation recorded while it runs.
inline void change_recorders(int delta) noexcept {
    start_live();
    recorders.fetch_add(delta, std::memory_order_acq_rel);
    {
        lock_guard hold(settings_lock);
        update_switchboard();
    }
    if (delta < 0) settle_lookups();
}

MEMLENS_NOINLINE inline block_mark observe_alloc(std::uintptr_t p, std::size_t size,
                                                  std::uint32_t d, bool heap) noexcept {
    std::uint32_t sw = switchboard.load(std::memory_order_acquire);
    if (sw & sw_unstarted) {
        if (!counted()) {
            // memlens's own start-up allocating: counted like any event, recorded by nobody.
            count_alloc(size, d);
            return block_counted;
        }
        start_live();
        sw = switchboard.load(std::memory_order_acquire);
    }
    if ((heap && (sw & sw_heap_off)) || (sw & sw_refused)) return 0;
    count_alloc(size, d);
    if (sw & sw_sites) {
        if (heap) return site_allocation(p, size, d);
        return record_allocation(p, size, d, false, true) ? block_counted | block_recorded
                                                          : block_counted;
    }
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
// a heap block's header must remember (see block_mark).
MEMLENS_ALWAYS_INLINE block_mark on_alloc(const void* p, std::size_t size, std::uint32_t d,
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
    const std::uint32_t sw = switchboard.load(relaxed);
    if (MEMLENS_UNLIKELY(sw & sw_refused)) return;
    count_free(size, d);
    if (MEMLENS_UNLIKELY(sw & (sw_recording | sw_sites | sw_sampling | sw_lookups))) forget_allocation(p);
}

}  // namespace detail
MEMLENS_NAMESPACE_END
