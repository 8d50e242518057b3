// memlens/core/stacks.hpp: call stacks for the allocation-site observer: capture by frame
// pointers, by the hybrid walk (core/unwind.hpp) or by the unwinder, and a table that keeps
// each distinct stack once, under an id.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <unwind.h>

#include "../detail/config.hpp"
#include "../detail/sys.hpp"
#include "state.hpp"
#include "unwind.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

enum class unwind_method : std::uint8_t { frame_pointers, unwinder, hybrid };

constexpr std::size_t max_stack_depth = 128;

// ---- where the walk may read --------------------------------------------------------------

constexpr std::uintptr_t frame_record_bytes = 2 * sizeof(std::uintptr_t);

// The addresses at which a whole frame record {previous frame, return address} can be read
// without a fault: [low, last], word aligned. Empty when low > last.
struct stack_region {
    std::uintptr_t low;
    std::uintptr_t last;
};

constexpr stack_region no_region{1, 0};

MEMLENS_ALWAYS_INLINE bool holds_record(const stack_region& r, std::uintptr_t address) noexcept {
    return address >= r.low && address <= r.last && address % sizeof(std::uintptr_t) == 0;
}

inline stack_region region_between(std::uintptr_t low, std::uintptr_t high) noexcept {
    if (high < low || high - low < frame_record_bytes) return no_region;
    return {low, high - frame_record_bytes};
}

enum class stack_lookup : std::uint8_t { pending, known, missing };

struct thread_stack {
    stack_region region;
    stack_lookup state;
};

// Constant-initialized and trivially destructible, so no TLS wrapper runs and a capture during
// thread exit or after static destruction still finds it.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline thread_local thread_stack this_stack{
    {1, 0}, stack_lookup::pending};

MEMLENS_DETAIL_SHARED inline std::atomic<bool> stack_lookup_reported{false};

// The main thread's stack mapping grows down as the stack deepens, up to RLIMIT_STACK; the
// kernel keeps at least 128 MiB below the stack's top free of other mappings for it.
constexpr std::uintptr_t main_stack_reach = std::uintptr_t{128} << 20;

// Finds the mapping that holds `address` in /proc/self/maps. Plain system calls on a buffer on
// the stack: no malloc and no lock, so it may run in a hook and in a signal handler that
// interrupted malloc. pthread_getattr_np does neither: it mallocs on every thread, and for the
// main thread reads this same file through stdio.
inline bool find_mapping(std::uintptr_t address, std::uintptr_t& low, std::uintptr_t& high,
                         bool& main_stack) noexcept {
    const int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    static constexpr char stack_name[] = "[stack]";
    char buffer[512];
    std::uintptr_t start = 0;
    std::uintptr_t end = 0;
    int field = 0;  // 0: start address, 1: end address, 2: the rest of the line
    std::size_t matched = 0;
    bool inside = false;
    bool found = false;
    main_stack = false;
    for (;;) {
        const ::ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (::ssize_t i = 0; i < got; ++i) {
            const char c = buffer[i];
            if (field < 2) {
                if (c == (field == 0 ? '-' : ' ')) {
                    if (++field == 2) inside = start <= address && address < end;
                    continue;
                }
                const int digit = c >= '0' && c <= '9' ? c - '0'
                                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                         : 0;
                std::uintptr_t& value = field == 0 ? start : end;
                value = value * 16 + static_cast<std::uintptr_t>(digit);
            } else if (c == '\n') {
                if (inside) {
                    found = true;
                    break;
                }
                start = end = 0;
                field = 0;
                matched = 0;
            } else if (inside && matched < sizeof stack_name - 1) {
                matched = c == stack_name[matched] ? matched + 1 : (c == '[' ? 1 : 0);
            }
        }
        if (found) break;
    }
    ::close(fd);
    if (!found && !inside) return false;
    low = start;
    high = end;
    main_stack = matched == sizeof stack_name - 1;
    return true;
}

inline bool alternate_stack(std::uintptr_t address, stack_region& out) noexcept {
    stack_t alt{};
    if (::sigaltstack(nullptr, &alt) != 0 || (alt.ss_flags & SS_DISABLE) != 0) return false;
    const auto low = reinterpret_cast<std::uintptr_t>(alt.ss_sp);
    if (address < low || address - low >= alt.ss_size) return false;
    out = region_between(low, low + alt.ss_size);
    return true;
}

// Looks the thread's stack up from an address on it. Written last-field-last with a signal
// fence: a handler that interrupts this and looks up too writes the same values.
MEMLENS_COLD inline void look_up_thread_stack(std::uintptr_t on_stack) noexcept {
    std::uintptr_t low = 0;
    std::uintptr_t high = 0;
    bool main_stack = false;
    thread_stack found{no_region, stack_lookup::missing};
    if (find_mapping(on_stack, low, high, main_stack)) {
        if (main_stack) {
            ::rlimit limit{};
            std::uintptr_t reach = main_stack_reach;
            if (::getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
                limit.rlim_cur < reach) {
                reach = static_cast<std::uintptr_t>(limit.rlim_cur);
            }
            if (high - low < reach && high > reach) low = high - reach;
        }
        found = {region_between(low, high), stack_lookup::known};
    } else if (!stack_lookup_reported.exchange(true, relaxed)) {
        report_error("cannot find a thread's stack in /proc/self/maps; its frame-pointer stacks "
                     "are empty");
    }
    this_stack.region = found.region;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    this_stack.state = found.state;
}

// The regions a walk from `fp` may read when `fp` is not on the thread's known stack: the
// alternate signal stack, then the thread's stack the handler interrupted; or the thread's
// stack once it has been looked up. False when `fp` is on no stack memlens knows (a fiber's).
MEMLENS_COLD inline bool regions_for(std::uintptr_t fp, stack_region& first,
                                     stack_region& second) noexcept {
    const int saved_errno = errno;
    stack_region alt = no_region;
    const bool on_alt = alternate_stack(fp, alt);
    // Never from the alternate stack: it would stand for the thread's stack ever after.
    if (this_stack.state == stack_lookup::pending && !on_alt) look_up_thread_stack(fp);
    const stack_region own = this_stack.state == stack_lookup::known ? this_stack.region : no_region;
    bool ok = true;
    if (holds_record(own, fp)) {
        first = own;
        second = no_region;
    } else if (on_alt) {
        first = alt;
        second = own;
    } else {
        ok = false;
    }
    errno = saved_errno;
    return ok;
}

// ---- the unwinder -------------------------------------------------------------------------

// 0: not warmed up; -1: ready; otherwise the id of the process warming it up.
MEMLENS_DETAIL_SHARED inline std::atomic<std::int64_t> unwinder_state{0};

struct unwind_walk {
    std::uintptr_t* out;
    std::size_t max;
    std::size_t size;
    std::size_t skip;
};

inline _Unwind_Reason_Code unwind_step(_Unwind_Context* context, void* arg) noexcept {
    auto& walk = *static_cast<unwind_walk*>(arg);
    int before_instruction = 0;
    std::uintptr_t ip = _Unwind_GetIPInfo(context, &before_instruction);
    if (ip == 0) return _URC_END_OF_STACK;
    if (walk.skip != 0) {
        --walk.skip;
        return _URC_NO_REASON;
    }
    // A signal frame's address is the interrupted instruction itself; one past it reads like
    // the return addresses around it, which a symbolizer looks up at address - 1.
    if (before_instruction != 0) ++ip;
    walk.out[walk.size++] = ip;
    return walk.size == walk.max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

inline _Unwind_Reason_Code unwind_through(_Unwind_Context*, void*) noexcept {
    return _URC_NO_REASON;
}

/// Makes the unwinder usable from allocation hooks: its first use may malloc and take the
/// loader's lock, so it runs here once, under the guard, before any hook asks for it. Thread
/// safe; callers that arrive while another warms up return at once. Not for signal handlers.
inline void warm_up_unwinder() noexcept {
    std::int64_t state = unwinder_state.load(std::memory_order_acquire);
    if (state == -1) return;
    const std::int64_t self = ::getpid();
    // A warm-up that a fork() interrupted in another thread never finishes in the child.
    if (state == self || !unwinder_state.compare_exchange_strong(state, self, std::memory_order_acq_rel)) {
        return;
    }
    {
        guard hold;
        _Unwind_Backtrace(&unwind_through, nullptr);
    }
    unwinder_state.store(-1, std::memory_order_release);
}

// ---- capture ------------------------------------------------------------------------------

// The hybrid walk from the frame record at `fp` of a function whose CFA is `cfa`. Out of line,
// so that the frame-pointer walk in capture_stack keeps its small frame.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "hwaddress")))
#endif
MEMLENS_NOINLINE inline std::size_t capture_hybrid(std::uintptr_t* out, std::size_t max, std::size_t skip,
                                                   std::uintptr_t fp, std::uintptr_t cfa,
                                                   std::uintptr_t low, std::uintptr_t last) noexcept {
    const auto* record = reinterpret_cast<const std::uintptr_t*>(fp);
    return hybrid_walk(out, max, skip, {plain_code_address(record[1]), cfa, record[0]}, low, last);
}

/// Writes up to `max` return addresses, innermost first, of the callers of its caller, after
/// skipping `skip` more frames; returns how many. Never allocates, never faults, never blocks:
/// safe in allocation hooks, in signal handlers (by frame pointers) and after fork().
///
/// By frame pointers (about 1 ns a frame) the walk follows the saved frame-pointer chain while
/// each record lies on the thread's stack, above the last and aligned; a function built
/// without frame pointers ends it, or hides its caller. On a stack memlens does not know (a
/// fiber's) the result is empty. The hybrid walk (a few ns a frame once each return address's
/// rule is cached) also sees the callers of functions built without frame pointers, from their
/// modules' .eh_frame, and ends at a signal frame; without _dl_find_object (glibc < 2.35) it is
/// the frame-pointer walk. By the unwinder (100 ns or more a frame) every function with unwind
/// tables is seen; until warm_up_unwinder() has finished, frame pointers are used.
#if defined(__clang__) || defined(__GNUC__)
// The walk reads frame records of other functions, which sanitizers may see as redzones.
__attribute__((no_sanitize("address", "hwaddress")))
#endif
MEMLENS_NOINLINE inline std::size_t
capture_stack(std::uintptr_t* out, std::size_t max, unwind_method how, std::size_t skip = 0) noexcept {
    if (max == 0) return 0;
    if (how == unwind_method::unwinder &&
        unwinder_state.load(std::memory_order_acquire) == -1) {
        // The first two frames are this function and its caller.
        unwind_walk walk{out, max, 0, skip + 2};
        _Unwind_Backtrace(&unwind_step, &walk);
        return walk.size;
    }
    auto fp = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    stack_region region = this_stack.region;
    stack_region next = no_region;
    if (MEMLENS_UNLIKELY(this_stack.state != stack_lookup::known || !holds_record(region, fp))) {
        if (!regions_for(fp, region, next)) return 0;
    }
    // This function's own record returns into its caller, which the contract leaves out.
    ++skip;
    if (how == unwind_method::hybrid && MEMLENS_DETAIL_CFI_WALK()) {
        const std::size_t n = capture_hybrid(out, max, skip, fp,
                                             reinterpret_cast<std::uintptr_t>(__builtin_dwarf_cfa()),
                                             region.low, region.last);
        // Not a tail call: the walk starts from this function's frame record.
        asm volatile("" ::: "memory");
        return n;
    }
    std::size_t size = 0;
    for (;;) {
        const auto* record = reinterpret_cast<const std::uintptr_t*>(fp);
        const std::uintptr_t caller = record[0];
        const std::uintptr_t ret = plain_code_address(record[1]);
        if (ret == 0) break;
        if (skip != 0) {
            --skip;
        } else {
            out[size] = ret;
            if (++size == max) break;
        }
        if (holds_record(region, caller)) {
            if (caller <= fp) break;
        } else if (holds_record(next, caller)) {
            // From a handler on the alternate stack into the frames it interrupted.
            region = next;
            next = no_region;
        } else {
            break;
        }
        fp = caller;
    }
    return size;
}

// ---- interning ----------------------------------------------------------------------------

struct stack_span {
    const std::uintptr_t* frames;
    std::size_t size;
};

/// Stores each distinct stack once and names it by an id from 1 up. Lookups of a stack already
/// stored and frames() take no lock; a new stack takes a lock with signals blocked (a handler
/// on the same thread cannot deadlock on it), and a lock that a fork() left held by a thread
/// of the parent is taken over in the child. Memory comes only from map_pages and is never
/// returned; stored frames never move. Constant-initialized, never destroyed.
class stack_table {
public:
    /// The id of this frame sequence, the same from any thread; 0 once the table cannot grow
    /// (no memory, or every id handed out), which the error handler hears of once. Thread and
    /// signal safe; never allocates through malloc.
    std::uint32_t intern(const std::uintptr_t* frames, std::size_t n) noexcept {
        const std::uint64_t hash = hash_frames(frames, n);
        if (const slot_array* table = table_.load(std::memory_order_acquire)) {
            if (const std::uint32_t id = find(*table, hash, frames, n)) return id;
        }
        return insert(hash, frames, n);
    }

    /// The frames of `id`, valid for the life of the process; {nullptr, 0} for 0 and unknown
    /// ids. Lock free.
    stack_span frames(std::uint32_t id) const noexcept {
        const std::uintptr_t* stored = stored_frames(id);
        if (!stored) return {nullptr, 0};
        return {stored, static_cast<std::size_t>(stored[-1])};
    }

    /// How many ids have been handed out.
    std::uint32_t count() const noexcept {
        return next_id_.load(std::memory_order_acquire) - 1;
    }

    /// Bytes mapped for the table: frames, their index and the hash slots.
    std::size_t memory_bytes() const noexcept { return mapped_.load(relaxed); }

private:
    // A slot holds the top 32 bits of the stack's hash and its id; 0 is empty.
    struct slot_array {
        std::size_t mask;
        std::size_t used;  // under the lock

        std::atomic<std::uint64_t>* slots() noexcept {
            return reinterpret_cast<std::atomic<std::uint64_t>*>(this + 1);
        }
        const std::atomic<std::uint64_t>* slots() const noexcept {
            return reinterpret_cast<const std::atomic<std::uint64_t>*>(this + 1);
        }
    };

    // Records [hash, size, frames...] are carved from chunks; under the lock.
    struct arena_chunk {
        std::size_t capacity;  // in words, after this header
        std::size_t used;

        std::uintptr_t* words() noexcept { return reinterpret_cast<std::uintptr_t*>(this + 1); }
    };

    using directory_entry = std::atomic<const std::uintptr_t*>;

    // Segment k of the directory holds directory_base << k entries, so 20 cover every id.
    static constexpr std::size_t directory_base = 8192;
    static constexpr std::size_t directory_segments = 20;
    static constexpr std::size_t first_slots = 8192;
    static constexpr std::size_t arena_bytes = 256 * 1024;
    // Every mapping is a multiple of this, which is a multiple of every Linux page size.
    static constexpr std::size_t map_unit = 64 * 1024;

    static std::uint64_t hash_frames(const std::uintptr_t* frames, std::size_t n) noexcept {
        // Two lanes, so that the multiplications of consecutive frames overlap.
        std::uint64_t a = 0x9e3779b97f4a7c15u ^ n;
        std::uint64_t b = 0xc2b2ae3d27d4eb4fu;
        std::size_t i = 0;
        for (; i + 1 < n; i += 2) {
            a = (a ^ frames[i]) * 0xff51afd7ed558ccdu;
            b = (b ^ frames[i + 1]) * 0xc4ceb9fe1a85ec53u;
        }
        if (i < n) a = (a ^ frames[i]) * 0xff51afd7ed558ccdu;
        std::uint64_t h = a ^ (b >> 29) ^ (b << 35);
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdu;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53u;
        h ^= h >> 33;
        return h;
    }

    static std::uint32_t tag_of(std::uint64_t hash) noexcept {
        return static_cast<std::uint32_t>(hash >> 32);
    }

    static std::size_t round_to_unit(std::size_t bytes) noexcept {
        return (bytes + map_unit - 1) / map_unit * map_unit;
    }

    // Null for an id past the segments that exist.
    directory_entry* entry(std::uint32_t id) const noexcept {
        const std::size_t index = id - std::size_t{1};
        const std::size_t scaled = index / directory_base + 1;
        const auto segment = static_cast<std::size_t>(63 - __builtin_clzll(scaled));
        if (segment >= directory_segments) return nullptr;
        directory_entry* base = directory_[segment].load(std::memory_order_acquire);
        if (!base) return nullptr;
        return base + (index - directory_base * ((std::size_t{1} << segment) - 1));
    }

    const std::uintptr_t* stored_frames(std::uint32_t id) const noexcept {
        if (id == 0) return nullptr;
        const directory_entry* e = entry(id);
        return e ? e->load(std::memory_order_acquire) : nullptr;
    }

    std::uint32_t find(const slot_array& table, std::uint64_t hash, const std::uintptr_t* frames,
                       std::size_t n) const noexcept {
        const std::uint32_t tag = tag_of(hash);
        for (std::size_t i = hash & table.mask;; i = (i + 1) & table.mask) {
            const std::uint64_t value = table.slots()[i].load(std::memory_order_acquire);
            if (value == 0) return 0;
            if (static_cast<std::uint32_t>(value >> 32) != tag) continue;
            const auto id = static_cast<std::uint32_t>(value);
            // Published before the slot, so never null here.
            const std::uintptr_t* stored = stored_frames(id);
            if (stored[-1] == n && (n == 0 || std::memcmp(stored, frames, n * sizeof *frames) == 0)) {
                return id;
            }
        }
    }

    static void place(slot_array& table, std::uint64_t hash, std::uint32_t id) noexcept {
        std::size_t i = hash & table.mask;
        while (table.slots()[i].load(relaxed) != 0) i = (i + 1) & table.mask;
        table.slots()[i].store(std::uint64_t{tag_of(hash)} << 32 | id, std::memory_order_release);
        ++table.used;
    }

    void* map(std::size_t bytes) noexcept {
        void* p = map_pages(bytes);
        if (p) mapped_.fetch_add(bytes, relaxed);
        return p;
    }

    // A table twice as large (or the first one), holding every stored stack; readers of the
    // old one still find what it held and take the lock for the rest.
    slot_array* grow(const slot_array* old) noexcept {
        const std::size_t capacity = old ? (old->mask + 1) * 2 : first_slots;
        void* raw = map(round_to_unit(sizeof(slot_array) + capacity * sizeof(std::uint64_t)));
        if (!raw) return nullptr;
        auto* table = new (raw) slot_array{capacity - 1, 0};
        for (std::size_t i = 0; i < capacity; ++i) new (table->slots() + i) std::atomic<std::uint64_t>(0);
        if (old) {
            for (std::size_t i = 0; i <= old->mask; ++i) {
                const std::uint64_t value = old->slots()[i].load(relaxed);
                if (value == 0) continue;
                const auto id = static_cast<std::uint32_t>(value);
                place(*table, static_cast<std::uint64_t>(stored_frames(id)[-2]), id);
            }
        }
        table_.store(table, std::memory_order_release);
        return table;
    }

    std::uintptr_t* carve(std::size_t words) noexcept {
        arena_chunk* chunk = arena_;
        if (!chunk || chunk->capacity - chunk->used < words) {
            const std::size_t need = sizeof(arena_chunk) + words * sizeof(std::uintptr_t);
            const std::size_t bytes = round_to_unit(need > arena_bytes ? need : arena_bytes);
            void* raw = map(bytes);
            if (!raw) return nullptr;
            chunk = new (raw) arena_chunk{(bytes - sizeof(arena_chunk)) / sizeof(std::uintptr_t), 0};
            // One store: a fork() child that takes the lock over finds the old chunk or this one.
            arena_ = chunk;
        }
        std::uintptr_t* out = chunk->words() + chunk->used;
        chunk->used += words;
        return out;
    }

    directory_entry* make_entry(std::uint32_t id) noexcept {
        if (directory_entry* e = entry(id)) return e;
        const std::size_t scaled = (id - std::size_t{1}) / directory_base + 1;
        const auto segment = static_cast<std::size_t>(63 - __builtin_clzll(scaled));
        if (segment >= directory_segments) return nullptr;
        const std::size_t entries = directory_base << segment;
        void* raw = map(round_to_unit(entries * sizeof(directory_entry)));
        if (!raw) return nullptr;
        auto* base = static_cast<directory_entry*>(raw);
        for (std::size_t i = 0; i < entries; ++i) new (base + i) directory_entry(nullptr);
        directory_[segment].store(base, std::memory_order_release);
        return entry(id);
    }

    // Under the lock. Every step publishes with one store, and the id is taken before it is
    // used, so a fork() child that takes the lock over from a dead holder finds no id in use
    // twice, only an id or some bytes lost.
    std::uint32_t add(std::uint64_t hash, const std::uintptr_t* frames, std::size_t n,
                      const char*& error) noexcept {
        slot_array* table = table_.load(relaxed);
        if (!table || (table->used + 1) * 2 > table->mask + 1) {
            table = grow(table);
            if (!table) {
                error = "cannot map memory for the stack table; new stacks get id 0";
                return 0;
            }
        }
        const std::uint32_t id = next_id_.load(relaxed);
        if (id == UINT32_MAX) {
            error = "the stack table has handed out every id; new stacks get id 0";
            return 0;
        }
        directory_entry* e = make_entry(id);
        std::uintptr_t* record = e ? carve(n + 2) : nullptr;
        if (!record) {
            error = "cannot map memory for the stack table; new stacks get id 0";
            return 0;
        }
        record[0] = static_cast<std::uintptr_t>(hash);
        record[1] = n;
        if (n != 0) std::memcpy(record + 2, frames, n * sizeof *frames);
        next_id_.store(id + 1, std::memory_order_release);
        e->store(record + 2, std::memory_order_release);
        place(*table, hash, id);
        return id;
    }

    void lock() noexcept {
        const auto self = static_cast<std::uint32_t>(::getpid());
        for (;;) {
            std::uint32_t holder = 0;
            if (lock_.compare_exchange_weak(holder, self, std::memory_order_acquire, relaxed)) return;
            // Held by a thread of an ancestor process when it forked: it never comes back here.
            if (holder != 0 && holder != self &&
                lock_.compare_exchange_strong(holder, self, std::memory_order_acquire, relaxed)) {
                return;
            }
            ::sched_yield();
        }
    }

    void unlock() noexcept { lock_.store(0, std::memory_order_release); }

    MEMLENS_NOINLINE std::uint32_t insert(std::uint64_t hash, const std::uintptr_t* frames,
                                          std::size_t n) noexcept {
        const int saved_errno = errno;
        ::sigset_t all;
        ::sigset_t old;
        ::sigfillset(&all);
        ::pthread_sigmask(SIG_BLOCK, &all, &old);
        lock();
        const char* error = nullptr;
        const slot_array* table = table_.load(relaxed);
        std::uint32_t id = table ? find(*table, hash, frames, n) : 0;
        if (id == 0) id = add(hash, frames, n, error);
        unlock();
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
        if (error && !reported_.exchange(true, relaxed)) report_error(error);
        errno = saved_errno;
        return id;
    }

    std::atomic<slot_array*> table_{nullptr};
    std::atomic<directory_entry*> directory_[directory_segments]{};
    std::atomic<std::uint32_t> next_id_{1};
    std::atomic<std::size_t> mapped_{0};
    // The process id of the holder, so that a fork() child can tell a lock it inherited.
    std::atomic<std::uint32_t> lock_{0};
    std::atomic<bool> reported_{false};
    arena_chunk* arena_ = nullptr;  // under the lock
};

/// The stacks of the allocation-site observer.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline stack_table stacks{};

}  // namespace detail
MEMLENS_NAMESPACE_END
