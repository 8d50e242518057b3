// memlens/observe/reach.hpp: leak kinds by reachability, as valgrind's memcheck names them: the
// world is stopped, roots (stacks, registers, static TLS, writable data) and then live blocks
// are scanned conservatively, and each block of the live table is classified.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>

#include "../core/live_table.hpp"
#include "../core/state.hpp"
#include "../model/snapshot.hpp"
#include "sites.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Where the word that first reached a block lies.
enum class root_kind : std::uint8_t {
    none,       ///< nowhere: the block was not reached
    block,      ///< inside another live block (reach_info::found_at names the word)
    global,     ///< a writable data segment of the executable or of a library
    stack,      ///< a thread's stack, from its stack pointer up
    registers,  ///< a thread's registers when it was stopped
    tls,        ///< the static thread-local storage and thread control block around a thread pointer
};

/// How one block was reached.
struct reach_info {
    leak_kind kind = leak_kind::definitely_lost;  ///< its kind
    root_kind root = root_kind::none;  ///< where the word that first reached it lies
    std::uintptr_t found_at = 0;       ///< that word's address (for registers, the register's slot); 0 when none
    int thread = 0;                    ///< the thread (Linux tid) of a stack, register or tls root; else 0
};

/// One thread of the process, as the scan saw it.
struct scanned_thread {
    int tid = 0;                  ///< Linux thread id
    bool stopped = false;         ///< it ran the stop handler: its registers and stack are exact
    bool stack_scanned = false;   ///< some stack range of it was scanned
    std::uintptr_t stack_low = 0;   ///< lowest address scanned on its stack (its stack pointer)
    std::uintptr_t stack_high = 0;  ///< end of its stack mapping
};

/// The live table's blocks classified by reachability (classify_leaks()).
struct leak_kinds {
    /// The blocks, ascending by address, as a snapshot's rows (one row per block, with stacks),
    /// each with its kind (snapshot::classified).
    snapshot blocks;
    /// How each row of `blocks.allocations` was reached, at the same index.
    std::vector<reach_info> reach;
    /// Totals per kind, indexed by leak_kind.
    kind_figures totals[4];
    /// Every thread the scan found, the calling one included.
    std::vector<scanned_thread> threads;
    /// Threads that did not stop in time (they block the signal): their stack was read as it was
    /// running, whole mapping, and their registers and TLS were not read; their blocks may show
    /// as lost. Empty when every thread stopped.
    std::vector<int> unstopped;
    /// How long the other threads were stopped, in nanoseconds: from the first stop signal to
    /// their release, the scan included.
    std::uint64_t pause_ns = 0;

    /// The figures of kind `k`.
    const kind_figures& operator[](leak_kind k) const noexcept { return totals[static_cast<int>(k)]; }
    /// Definitely, indirectly and possibly lost together.
    kind_figures lost() const noexcept {
        kind_figures f;
        for (int k = 1; k < 4; ++k) {
            f.bytes += totals[k].bytes;
            f.blocks += totals[k].blocks;
        }
        return f;
    }
    /// The row of the block that holds `address` (its start or inside it), or -1.
    std::ptrdiff_t find(std::uintptr_t address) const noexcept {
        const auto& a = blocks.allocations;
        auto it = std::upper_bound(a.begin(), a.end(), address,
                                   [](std::uintptr_t v, const live_allocation& b) { return v < b.address; });
        if (it == a.begin()) return -1;
        --it;
        if (address != it->address && address - it->address >= it->size) return -1;
        return it - a.begin();
    }
};

/// What classify_leaks() may do.
struct reach_options {
    /// How long to wait for each thread to stop before scanning it as it runs, in milliseconds.
    unsigned stop_timeout_ms = 1000;
    /// Where the scan of the calling thread's stack starts, if not 0: an address in a frame of
    /// one of its callers, so that the frames below it (a report writer's own, with stale copies
    /// of pointers) are not roots. Default: the frame of classify_leaks' caller.
    std::uintptr_t stack_from = 0;
};

namespace detail {

// The scan reads memory no one handed it (globals' redzones, other threads' stacks while they
// are stopped, which a race detector cannot know): the sanitizers must not instrument it.
#if defined(__clang__)
#define MEMLENS_DETAIL_UNSANITIZED __attribute__((no_sanitize("address", "thread", "memory")))
#elif defined(__GNUC__)
#define MEMLENS_DETAIL_UNSANITIZED __attribute__((no_sanitize_address, no_sanitize_thread))
#else
#define MEMLENS_DETAIL_UNSANITIZED
#endif

// The signal that stops a thread: a real-time one, which glibc leaves to programs; a program
// that uses it for itself still gets its handler for signals that memlens did not send.
inline int stop_signal() noexcept { return SIGRTMAX - 2; }

enum : int { slot_free = 0, slot_asked = 1, slot_stopping = 2, slot_stopped = 3, slot_left = 4, slot_abandoned = 5 };

struct stop_slot {
    std::atomic<int> tid;
    std::atomic<int> state;
    std::uintptr_t sp;
    std::uintptr_t tp;
    mcontext_t regs;
};

// Kept mapped for the life of the process: a thread that blocked the signal may run the handler
// long after its stop, and must find memory there.
struct stop_world {
    stop_slot* slots = nullptr;
    std::uint32_t capacity = 0;
    std::atomic<std::uint32_t> count{0};
    std::atomic<std::uint32_t> release{1};
    std::atomic<bool> active{false};
    bool installed = false;
    struct sigaction previous {};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline stop_world world_stop{};
// One scan at a time: two scanners would stop each other.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline spin_lock world_stop_lock{};

inline int own_tid() noexcept { return static_cast<int>(::syscall(SYS_gettid)); }

inline std::uintptr_t thread_pointer() noexcept {
    std::uintptr_t tp = 0;
#if defined(__x86_64__)
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
#endif
    return tp;
}

inline std::uintptr_t context_sp(const mcontext_t& m) noexcept {
#if defined(__x86_64__)
    return static_cast<std::uintptr_t>(m.gregs[REG_RSP]);
#elif defined(__aarch64__)
    return static_cast<std::uintptr_t>(m.sp);
#else
    (void)m;
    return 0;
#endif
}

// Below the stack pointer a leaf function may keep data without moving it (the x86_64 ABI's
// red zone).
#if defined(__x86_64__)
constexpr std::uintptr_t red_zone = 128;
#else
constexpr std::uintptr_t red_zone = 0;
#endif

// At a call only the callee-saved registers hold the caller's values; the others hold what
// getcontext was passed and stale values, which would keep dead blocks reachable.
inline void keep_callee_saved(mcontext_t& m) noexcept {
#if defined(__x86_64__)
    for (int r = 0; r < NGREG; ++r) {
        const bool kept = r == REG_RBX || r == REG_RBP || r == REG_R12 || r == REG_R13 || r == REG_R14 ||
                          r == REG_R15 || r == REG_RSP;
        if (!kept) m.gregs[r] = 0;
    }
    m.fpregs = nullptr;
#elif defined(__aarch64__)
    for (int r = 0; r < 31; ++r) {
        if (r < 19 || r > 29) m.regs[r] = 0;
    }
    m.pc = 0;
    std::memset(m.__reserved, 0, sizeof m.__reserved);
#else
    (void)m;
#endif
}

inline void stop_handler(int sig, siginfo_t* info, void* context) {
    const int saved_errno = errno;
    stop_world& w = world_stop;
    const bool ours = info && info->si_code == SI_TKILL && info->si_pid == ::getpid() &&
                      w.active.load(std::memory_order_acquire);
    stop_slot* slot = nullptr;
    if (ours) {
        const int me = own_tid();
        const std::uint32_t n = w.count.load(std::memory_order_acquire);
        for (std::uint32_t i = 0; i < n; ++i) {
            int asked = slot_asked;
            if (w.slots[i].tid.load(std::memory_order_relaxed) == me &&
                w.slots[i].state.compare_exchange_strong(asked, slot_stopping, std::memory_order_acq_rel)) {
                slot = &w.slots[i];
                break;
            }
        }
    }
    if (!slot) {
        // Not a stop of memlens: the program's own use of the signal, if it has one.
        const struct sigaction& p = w.previous;
        if (!ours && (p.sa_flags & SA_SIGINFO) && p.sa_sigaction) {
            p.sa_sigaction(sig, info, context);
        } else if (!ours && !(p.sa_flags & SA_SIGINFO) && p.sa_handler != SIG_DFL && p.sa_handler != SIG_IGN) {
            p.sa_handler(sig);
        }
        errno = saved_errno;
        return;
    }
    const auto* uc = static_cast<const ucontext_t*>(context);
    std::memcpy(&slot->regs, &uc->uc_mcontext, sizeof(mcontext_t));
    slot->sp = context_sp(uc->uc_mcontext);
    slot->tp = thread_pointer();
    slot->state.store(slot_stopped, std::memory_order_release);
    while (w.release.load(std::memory_order_acquire) == 0) {
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w.release), FUTEX_WAIT_PRIVATE, 0u,
                  nullptr, nullptr, 0);
    }
    slot->state.store(slot_left, std::memory_order_release);
    errno = saved_errno;
}

// Scratch that never comes from the heap: the world may be stopped with the allocator's lock
// held by a stopped thread.
template <class T>
struct scratch {
    T* data = nullptr;
    std::size_t count = 0;
    std::size_t bytes = 0;

    bool reserve(std::size_t n) noexcept {
        bytes = (n * sizeof(T) + page_bytes - 1) / page_bytes * page_bytes;
        if (bytes == 0) bytes = page_bytes;
        data = static_cast<T*>(map_pages(bytes));
        count = 0;
        return data != nullptr;
    }
    std::size_t capacity() const noexcept { return bytes / sizeof(T); }
    bool push(const T& v) noexcept {
        if (count >= capacity()) return false;
        data[count++] = v;
        return true;
    }
    void release() noexcept {
        unmap_pages(data, bytes);
        data = nullptr;
        count = bytes = 0;
    }
};

struct mapping {
    std::uintptr_t start;
    std::uintptr_t end;
    bool readable;
    bool main_stack;
};

struct range {
    std::uintptr_t start;
    std::uintptr_t end;
};

// Reads /proc/self/maps with system calls alone, into pages mapped here.
inline bool read_mappings(scratch<mapping>& out) noexcept {
    std::size_t size = std::size_t{1} << 20;
    for (int attempt = 0; attempt < 6; ++attempt, size *= 4) {
        const int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC));
        if (fd < 0) return false;
        auto* text = static_cast<char*>(map_pages(size));
        if (!text) {
            ::syscall(SYS_close, fd);
            return false;
        }
        std::size_t used = 0;
        for (;;) {
            const long n = ::syscall(SYS_read, fd, text + used, size - used);
            if (n <= 0) break;
            used += static_cast<std::size_t>(n);
            if (used == size) break;
        }
        ::syscall(SYS_close, fd);
        if (used == size) {
            unmap_pages(text, size);
            continue;
        }
        std::size_t lines = 0;
        for (std::size_t i = 0; i < used; ++i) lines += text[i] == '\n';
        if (!out.reserve(lines + 1)) {
            unmap_pages(text, size);
            return false;
        }
        const char* p = text;
        const char* end = text + used;
        const auto hex = [&](std::uintptr_t& v) {
            v = 0;
            while (p < end) {
                const char c = *p;
                unsigned d;
                if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
                else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
                else break;
                v = v * 16 + d;
                ++p;
            }
        };
        while (p < end) {
            mapping m{};
            hex(m.start);
            if (p < end && *p == '-') ++p;
            hex(m.end);
            if (p < end && *p == ' ') ++p;
            m.readable = p < end && *p == 'r';
            const char* line_end = p;
            while (line_end < end && *line_end != '\n') ++line_end;
            const std::size_t length = static_cast<std::size_t>(line_end - p);
            m.main_stack = length >= 7 && std::memcmp(line_end - 7, "[stack]", 7) == 0;
            out.push(m);
            p = line_end < end ? line_end + 1 : end;
        }
        unmap_pages(text, size);
        return true;
    }
    return false;
}

inline const mapping* mapping_of(const scratch<mapping>& maps, std::uintptr_t a) noexcept {
    std::size_t lo = 0, hi = maps.count;
    while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        if (maps.data[mid].end <= a) lo = mid + 1;
        else hi = mid;
    }
    return lo < maps.count && maps.data[lo].start <= a ? &maps.data[lo] : nullptr;
}

// Lists the process's threads with getdents64 into a mapped buffer (opendir would allocate).
inline std::size_t list_threads(int* tids, std::size_t capacity) noexcept {
    const int fd = static_cast<int>(
        ::syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0) return 0;
    alignas(8) char buffer[4096];
    std::size_t n = 0;
    for (;;) {
        const long got = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer);
        if (got <= 0) break;
        for (long at = 0; at < got;) {
            const auto* d = reinterpret_cast<const struct dirent64*>(buffer + at);
            int tid = 0;
            for (const char* c = d->d_name; *c >= '0' && *c <= '9'; ++c) tid = tid * 10 + (*c - '0');
            if (tid > 0 && n < capacity) tids[n++] = tid;
            at += d->d_reclen;
        }
    }
    ::syscall(SYS_close, fd);
    return n;
}

// The stack pointer of a thread blocked in a system call, from /proc/self/task/<tid>/syscall
// ("nr args... sp pc"); 0 when it is running or the file says nothing.
inline std::uintptr_t syscall_sp(int tid) noexcept {
    char path[64] = "/proc/self/task/";
    char digits[16];
    int d = 0;
    for (int t = tid; t > 0 && d < 15; t /= 10) digits[d++] = static_cast<char>('0' + t % 10);
    std::size_t at = std::strlen(path);
    while (d > 0) path[at++] = digits[--d];
    std::memcpy(path + at, "/syscall", 9);
    const int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) return 0;
    char text[256] = {};
    const long n = ::syscall(SYS_read, fd, text, sizeof text - 1);
    ::syscall(SYS_close, fd);
    if (n <= 0 || text[0] == 'r') return 0;
    // The second-last field.
    const char* fields[16];
    int count = 0;
    for (const char* p = text; *p && count < 16;) {
        while (*p == ' ') ++p;
        if (!*p || *p == '\n') break;
        fields[count++] = p;
        while (*p && *p != ' ' && *p != '\n') ++p;
    }
    if (count < 3) return 0;
    const char* p = fields[count - 2];
    if (p[0] != '0' || p[1] != 'x') return 0;
    std::uintptr_t v = 0;
    for (p += 2; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); ++p) {
        v = v * 16 + static_cast<std::uintptr_t>(*p <= '9' ? *p - '0' : *p - 'a' + 10);
    }
    return v;
}

struct sorted_block {
    std::uintptr_t address;
    std::uint64_t size;
    std::uint64_t size_stack;
    std::uint64_t origin;
};

enum : std::uint8_t { state_unreached = 0, state_possible = 1, state_reachable = 2, state_indirect = 3 };

struct root_region {
    std::uintptr_t start;
    std::uintptr_t end;
    root_kind kind;
    int thread;
};

struct scan_state {
    const sorted_block* blocks = nullptr;
    std::size_t count = 0;
    std::uintptr_t lowest = 0;
    std::uintptr_t highest = 0;  // end of the highest block
    std::uint8_t* state = nullptr;
    reach_info* reach = nullptr;
    std::uint32_t* stack = nullptr;  // the mark stack
    std::size_t depth = 0;
    std::size_t stack_capacity = 0;
    std::uint32_t clique = 0;
    bool clique_pass = false;
    // memlens's own memory that holds block addresses (the live table's slots, the threads'
    // records of their newest blocks), ascending: never a root, even where the kernel merged
    // its pages into the mapping of a root (the main thread's TLS).
    const range* own = nullptr;
    std::size_t own_count = 0;

    // The block holding `v` at its start or inside it, or count.
    std::size_t find(std::uintptr_t v) const noexcept {
        if (v < lowest || v >= highest) return count;
        std::size_t lo = 0, hi = count;
        while (lo < hi) {
            const std::size_t mid = (lo + hi) / 2;
            if (blocks[mid].address <= v) lo = mid + 1;
            else hi = mid;
        }
        if (lo == 0) return count;
        const sorted_block& b = blocks[lo - 1];
        if (v == b.address || v - b.address < b.size) return lo - 1;
        return count;
    }

    void push(std::uint32_t i) noexcept {
        if (depth < stack_capacity) stack[depth++] = i;
    }

    // memcheck's rule: a start pointer from a root or a reachable block makes a block
    // reachable; any other pointer makes an unreached block possibly lost. In the clique pass
    // every pointer from a lost block makes an unreached block indirectly lost.
    void found(std::uintptr_t v, std::uintptr_t where, bool from_definite, root_kind root, int thread) noexcept {
        const std::size_t i = find(v);
        if (i == count) return;
        std::uint8_t& s = state[i];
        if (clique_pass) {
            if (s != state_unreached || i == clique) return;
            s = state_indirect;
            reach[i] = {leak_kind::indirectly_lost, root_kind::block, where, 0};
            push(static_cast<std::uint32_t>(i));
            return;
        }
        if (s == state_reachable) return;
        if (v == blocks[i].address && from_definite) {
            s = state_reachable;
            reach[i] = {leak_kind::still_reachable, root, where, thread};
            push(static_cast<std::uint32_t>(i));
        } else if (s == state_unreached) {
            s = state_possible;
            reach[i] = {leak_kind::possibly_lost, root, where, thread};
            push(static_cast<std::uint32_t>(i));
        }
    }

    MEMLENS_DETAIL_UNSANITIZED void scan_words(std::uintptr_t start, std::uintptr_t end, bool definite, root_kind root, int thread,
                    std::uintptr_t shown_base = 0) noexcept {
        start = (start + sizeof(void*) - 1) & ~(std::uintptr_t{sizeof(void*)} - 1);
        for (std::uintptr_t a = start; a + sizeof(void*) <= end; a += sizeof(void*)) {
            const std::uintptr_t v = *reinterpret_cast<const std::uintptr_t*>(a);
            if (v < lowest || v >= highest) continue;
            found(v, shown_base ? shown_base + (a - start) : a, definite, root, thread);
        }
    }

    void drain() noexcept {
        while (depth > 0) {
            const std::uint32_t i = stack[--depth];
            const sorted_block& b = blocks[i];
            scan_words(b.address, b.address + b.size, !clique_pass && state[i] == state_reachable,
                       root_kind::block, 0);
        }
    }
};

struct module_walk {
    scratch<root_region>* regions;
    std::uintptr_t tls_bytes;
};

inline int collect_segments(struct dl_phdr_info* info, std::size_t, void* data) noexcept {
    auto* walk = static_cast<module_walk*>(data);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if ((ph.p_type == PT_LOAD && (ph.p_flags & PF_W)) || ph.p_type == PT_GNU_RELRO) {
            const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
            walk->regions->push({start, start + ph.p_memsz, root_kind::global, 0});
        } else if (ph.p_type == PT_TLS) {
            walk->tls_bytes += ph.p_memsz + ph.p_align;
        }
    }
    return 0;
}

// Scans [start, end) where it is readable now.
inline void scan_readable(scan_state& scan, const scratch<mapping>& maps, const root_region& r) noexcept {
    std::uintptr_t a = r.start;
    while (a < r.end) {
        const mapping* m = mapping_of(maps, a);
        if (!m) {
            // The next mapping above a, if any.
            std::size_t lo = 0, hi = maps.count;
            while (lo < hi) {
                const std::size_t mid = (lo + hi) / 2;
                if (maps.data[mid].start <= a) lo = mid + 1;
                else hi = mid;
            }
            if (lo == maps.count) return;
            a = maps.data[lo].start;
            continue;
        }
        const std::uintptr_t stop = std::min(r.end, m->end);
        if (m->readable) {
            std::uintptr_t from = a;
            for (std::size_t i = 0; i < scan.own_count && from < stop; ++i) {
                const range& o = scan.own[i];
                if (o.end <= from || o.start >= stop) continue;
                if (o.start > from) scan.scan_words(from, o.start, true, r.kind, r.thread);
                from = o.end;
            }
            if (from < stop) scan.scan_words(from, stop, true, r.kind, r.thread);
        }
        a = stop;
    }
}

// Reads a running thread's stack through process_vm_readv, which fails where a plain read
// would fault: the thread may unmap it meanwhile.
inline void scan_running(scan_state& scan, const root_region& r) noexcept {
    constexpr std::size_t chunk = 64 * 1024;
    auto* copy = static_cast<std::uintptr_t*>(map_pages(chunk));
    if (!copy) return;
    for (std::uintptr_t a = r.start; a < r.end; a += chunk) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uintptr_t>(chunk, r.end - a));
        struct iovec local{copy, n};
        struct iovec remote{reinterpret_cast<void*>(a), n};
        const long got = ::syscall(SYS_process_vm_readv, ::getpid(), &local, 1ul, &remote, 1ul, 0ul);
        if (got <= 0) continue;
        const auto base = reinterpret_cast<std::uintptr_t>(copy);
        scan.scan_words(base, base + static_cast<std::uintptr_t>(got), true, r.kind, r.thread, a);
    }
    unmap_pages(copy, chunk);
}

inline void sleep_briefly() noexcept {
    struct timespec t{0, 200 * 1000};
    ::nanosleep(&t, nullptr);
}

inline std::uint64_t now_ns() noexcept {
    struct timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(t.tv_nsec);
}

inline bool install_stop_handler() noexcept {
    stop_world& w = world_stop;
    if (w.installed) return true;
    struct sigaction action {};
    action.sa_sigaction = &stop_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&action.sa_mask);
    if (::sigaction(stop_signal(), &action, &w.previous) != 0) return false;
    w.installed = true;
    return true;
}

// What the scan leaves for the caller to turn into a leak_kinds once the world runs again.
struct scan_result {
    scratch<sorted_block> blocks;
    scratch<std::uint8_t> state;
    scratch<reach_info> reach;
    scratch<scanned_thread> threads;
    std::uint64_t pause_ns = 0;
    std::size_t missed_threads = 0;  // beyond the 4096 stop slots: neither stopped nor scanned
    bool ok = false;
};

// Stops every other thread, scans, classifies, resumes. The caller holds world_stop_lock and
// passes its own registers and the top of its frame. Allocates nothing through the heap.
//
// Locks: every shard of the live table is taken BEFORE any thread is stopped and held until the
// threads run again. No thread can then be stopped inside the table, the scan reads the table
// without racing, and a recorded block cannot be freed while it is read (a free takes its
// shard before it gives the memory back). No other memlens lock is taken while the world is
// stopped; the loader's lock (dl_iterate_phdr) is taken before.
inline void scan_world(scan_result& out, const mcontext_t& own_regs, std::uintptr_t own_sp,
                       const reach_options& options) noexcept {
    stop_world& w = world_stop;
    scratch<root_region> regions;
    if (!regions.reserve(4096)) return;
    module_walk walk{&regions, 0};
    ::dl_iterate_phdr(&collect_segments, &walk);
    const std::uintptr_t tls_window = walk.tls_bytes + 4096;
    const std::size_t module_regions = regions.count;

    for (live_shard& s : live_shards) s.lock.lock();
    holding_shard = true;
    std::size_t entries = 0;
    for (live_shard& s : live_shards) entries += static_cast<std::size_t>(s.count);

    // Stop the world: ask every thread listed, again until a listing finds no new one (a thread
    // not yet stopped may start another).
    const int me = own_tid();
    constexpr std::size_t tid_capacity = 1 << 16;
    scratch<int> tids;
    bool stopped_any = false;
    const std::uint64_t paused_at = now_ns();
    if (tids.reserve(tid_capacity) && install_stop_handler()) {
        if (w.capacity == 0) {
            const std::size_t bytes = sizeof(stop_slot) * 4096;
            w.slots = static_cast<stop_slot*>(map_pages(bytes));
            w.capacity = w.slots ? 4096 : 0;
        }
        w.count.store(0, std::memory_order_relaxed);
        w.release.store(0, std::memory_order_release);
        w.active.store(true, std::memory_order_release);
        stopped_any = true;
        for (;;) {
            tids.count = list_threads(tids.data, tid_capacity);
            bool fresh = false;
            std::size_t missed_now = 0;
            for (std::size_t t = 0; t < tids.count; ++t) {
                const int tid = tids.data[t];
                if (tid == me) continue;
                const std::uint32_t n = w.count.load(std::memory_order_relaxed);
                bool known = false;
                for (std::uint32_t i = 0; i < n && !known; ++i) known = w.slots[i].tid.load(std::memory_order_relaxed) == tid;
                if (known) continue;
                if (n >= w.capacity) {
                    ++missed_now;
                    continue;
                }
                stop_slot& slot = w.slots[n];
                slot.tid.store(tid, std::memory_order_relaxed);
                slot.state.store(slot_asked, std::memory_order_relaxed);
                slot.sp = slot.tp = 0;
                w.count.store(n + 1, std::memory_order_release);
                fresh = true;
                if (::syscall(SYS_tgkill, ::getpid(), tid, stop_signal()) != 0) {
                    slot.state.store(slot_abandoned, std::memory_order_release);  // gone already
                    slot.tid.store(0, std::memory_order_relaxed);
                }
            }
            // Wait for the asked ones; past the timeout a thread is abandoned (it blocks the signal).
            const std::uint64_t deadline = now_ns() + std::uint64_t{options.stop_timeout_ms} * 1000000ull;
            for (;;) {
                bool waiting = false;
                const std::uint32_t n = w.count.load(std::memory_order_relaxed);
                for (std::uint32_t i = 0; i < n; ++i) {
                    const int st = w.slots[i].state.load(std::memory_order_acquire);
                    waiting = waiting || st == slot_asked || st == slot_stopping;
                }
                if (!waiting) break;
                if (now_ns() > deadline) {
                    for (std::uint32_t i = 0; i < n; ++i) {
                        int asked = slot_asked;
                        w.slots[i].state.compare_exchange_strong(asked, slot_abandoned, std::memory_order_acq_rel);
                    }
                    continue;  // a thread in slot_stopping finishes in a moment
                }
                sleep_briefly();
            }
            out.missed_threads = std::max(out.missed_threads, missed_now);
            if (!fresh) break;
        }
    }

    // Every other thread is stopped now, or abandoned. Read the mappings as they are now.
    scratch<mapping> maps;
    const bool have_maps = read_mappings(maps);
    const std::uint32_t stopped_count = w.count.load(std::memory_order_relaxed);
    if (out.threads.reserve(stopped_count + 1)) {
        out.threads.push({me, true, false, 0, 0});
        for (std::uint32_t i = 0; i < stopped_count; ++i) {
            const int tid = w.slots[i].tid.load(std::memory_order_relaxed);
            if (tid == 0) continue;
            out.threads.push({tid, w.slots[i].state.load(std::memory_order_acquire) == slot_stopped, false, 0, 0});
        }
    }

    scan_state scan;
    std::size_t record_count = 0;
    for (thread_record* r = core.records.load(std::memory_order_acquire); r; r = r->next) ++record_count;
    scratch<range> own;
    if (own.reserve(live_shard_count + record_count + 1)) {
        for (const live_shard& s : live_shards) {
            const auto start = reinterpret_cast<std::uintptr_t>(s.slots);
            if (start != 0) own.push({start, start + s.mapped});
        }
        for (thread_record* r = core.records.load(std::memory_order_acquire); r; r = r->next) {
            const auto start = reinterpret_cast<std::uintptr_t>(r);
            own.push({start, start + sizeof(thread_record)});
        }
        std::sort(own.data, own.data + own.count, [](const range& a, const range& b) { return a.start < b.start; });
        scan.own = own.data;
        scan.own_count = own.count;
    }
    if (have_maps && out.blocks.reserve(entries + 1) && out.state.reserve(entries + 1) &&
        out.reach.reserve(entries + 1)) {
        for (live_shard& s : live_shards) {
            for (std::uint64_t i = 0; i < s.capacity; ++i) {
                const live_entry& e = s.slots[i];
                if (e.address != 0) out.blocks.push({e.address, entry_size(e), e.size_stack, e.origin});
            }
        }
        std::sort(out.blocks.data, out.blocks.data + out.blocks.count,
                  [](const sorted_block& a, const sorted_block& b) { return a.address < b.address; });
        out.state.count = out.reach.count = out.blocks.count;
        scratch<std::uint32_t> marks;
        if (marks.reserve(2 * out.blocks.count + 16)) {
            scan.blocks = out.blocks.data;
            scan.count = out.blocks.count;
            scan.state = out.state.data;
            scan.reach = out.reach.data;
            scan.stack = marks.data;
            scan.stack_capacity = marks.capacity();
            for (std::size_t i = 0; i < scan.count; ++i) {
                scan.reach[i] = reach_info{};
                const std::uintptr_t end = scan.blocks[i].address + (scan.blocks[i].size ? scan.blocks[i].size : 1);
                scan.highest = std::max(scan.highest, end);
            }
            scan.lowest = scan.count ? scan.blocks[0].address : 0;

            // Roots, each followed by its transitive closure.
            for (std::size_t i = 0; i < module_regions; ++i) {
                scan_readable(scan, maps, regions.data[i]);
                scan.drain();
            }
            const auto scan_thread = [&](scanned_thread& t, std::uintptr_t sp, std::uintptr_t tp,
                                         const mcontext_t* regs) {
                if (const mapping* m = sp ? mapping_of(maps, sp) : nullptr) {
                    const std::uintptr_t low = sp - red_zone >= m->start ? sp - red_zone : m->start;
                    scan_readable(scan, maps, {low, m->end, root_kind::stack, t.tid});
                    scan.drain();
                    t.stack_scanned = true;
                    t.stack_low = low;
                    t.stack_high = m->end;
                }
                // Static TLS and the thread control block lie around the thread pointer: below
                // it on x86_64 (TLS above the TCB), above it on aarch64; the window covers both.
                if (const mapping* m = tp ? mapping_of(maps, tp) : nullptr) {
                    const std::uintptr_t low = tp - m->start > tls_window ? tp - tls_window : m->start;
                    const std::uintptr_t high = m->end - tp > tls_window ? tp + tls_window : m->end;
                    scan_readable(scan, maps, {low, high, root_kind::tls, t.tid});
                    scan.drain();
                }
                if (regs) {
                    const auto base = reinterpret_cast<std::uintptr_t>(regs);
                    scan.scan_words(base, base + sizeof(mcontext_t), true, root_kind::registers, t.tid);
                    scan.drain();
                }
            };
            scanned_thread* self = out.threads.count ? &out.threads.data[0] : nullptr;
            if (self) scan_thread(*self, own_sp + red_zone, thread_pointer(), &own_regs);
            for (std::size_t t = 1; t < out.threads.count; ++t) {
                scanned_thread& th = out.threads.data[t];
                const stop_slot* slot = nullptr;
                for (std::uint32_t i = 0; i < stopped_count && !slot; ++i) {
                    if (w.slots[i].tid.load(std::memory_order_relaxed) == th.tid) slot = &w.slots[i];
                }
                if (!slot) continue;
                if (th.stopped) {
                    scan_thread(th, slot->sp, slot->tp, &slot->regs);
                } else if (const std::uintptr_t sp = syscall_sp(th.tid)) {
                    // Running: its whole stack mapping, read safely, as conservative as can be.
                    if (const mapping* m = mapping_of(maps, sp)) {
                        scan_running(scan, {m->start, m->end, root_kind::stack, th.tid});
                        scan.drain();
                        th.stack_scanned = true;
                        th.stack_low = m->start;
                        th.stack_high = m->end;
                    }
                }
            }

            // What is left unreached is lost: each unreached block in turn leads a clique, and
            // what it reaches that is still unreached is indirectly lost (a leader reached later
            // from another joins that one).
            scan.clique_pass = true;
            for (std::size_t i = 0; i < scan.count; ++i) {
                if (scan.state[i] != state_unreached) continue;
                scan.clique = static_cast<std::uint32_t>(i);
                scan.push(static_cast<std::uint32_t>(i));
                scan.drain();
            }
            for (std::size_t i = 0; i < scan.count; ++i) {
                if (scan.state[i] == state_unreached) scan.reach[i] = reach_info{};
            }
            out.ok = true;
            marks.release();
        }
    }

    // Resume.
    out.pause_ns = now_ns() - paused_at;
    if (stopped_any) {
        w.active.store(false, std::memory_order_release);
        w.release.store(1, std::memory_order_release);
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w.release), FUTEX_WAKE_PRIVATE, 0x7fffffff,
                  nullptr, nullptr, 0);
        const std::uint32_t n = w.count.load(std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < n; ++i) {
            const std::uint64_t give_up = now_ns() + 10000000000ull;
            while (w.slots[i].state.load(std::memory_order_acquire) == slot_stopped && now_ns() < give_up) {
                sleep_briefly();
            }
        }
    }
    holding_shard = false;
    for (live_shard& s : live_shards) s.lock.unlock();
    tids.release();
    maps.release();
    regions.release();
    own.release();
}

}  // namespace detail

/// Stops every other thread of the process, scans the roots (each thread's registers, its stack
/// from its stack pointer up, the static TLS and control block around its thread pointer, the
/// writable data segments of the program and of every loaded library) and then the live blocks
/// they reach, word by word; then classifies each block of the live table as memcheck does.
/// Only blocks in the live table are scanned and classified: turn per-block mode on
/// (tracking_config::blocks, MEMLENS_BLOCKS=1, or a live leak_check) before the allocations of
/// interest. A pointer held only in memory outside the table (a malloc block the hooks did not
/// see, glibc's dynamic TLS) is not seen, and the block may show as lost. Thread safe; one scan
/// runs at a time. Pauses the process for the scan; allocates only before and after.
MEMLENS_NOINLINE inline leak_kinds classify_leaks(const reach_options& options = {}) {
    // This thread's registers, and the top of this frame: the caller's frames lie above it.
    ucontext_t own{};
    ::getcontext(&own);
    detail::keep_callee_saved(own.uc_mcontext);
    const auto own_sp = options.stack_from != 0 ? options.stack_from
                                                : reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    detail::start_live();
    detail::guard quiet;
    detail::scan_result r;
    {
        detail::lock_guard one(detail::world_stop_lock);
        detail::scan_world(r, own.uc_mcontext, own_sp, options);
    }
    leak_kinds out;
    out.pause_ns = r.pause_ns;
    if (r.missed_threads != 0) {
        detail::report_error("classify_leaks: the process has more than 4096 threads; those beyond "
                             "were neither stopped nor scanned, and blocks only they hold show as lost");
    }
    if (!r.ok) detail::report_error("classify_leaks: could not map scratch memory or read /proc/self/maps");
    out.blocks.classified = r.ok;
    out.blocks.allocations.reserve(r.blocks.count);
    out.reach.reserve(r.blocks.count);
    for (std::size_t i = 0; i < r.blocks.count && r.ok; ++i) {
        detail::live_entry e{r.blocks.data[i].address, r.blocks.data[i].size_stack, r.blocks.data[i].origin};
        live_allocation a;
        a.address = e.address;
        a.size = detail::entry_size(e);
        a.domain = detail::entry_domain(e);
        a.stack = detail::entry_stack(e);
        a.thread = detail::entry_record(e);
        a.sequence = detail::entry_sequence(e);
        a.sampled = detail::entry_sampled(e);
        reach_info info = r.reach.data[i];
        if (r.state.data[i] == detail::state_unreached) info.kind = leak_kind::definitely_lost;
        a.kind = info.kind;
        out.blocks.allocations.push_back(a);
        out.reach.push_back(info);
        kind_figures& f = out.totals[static_cast<int>(info.kind)];
        f.bytes += a.size;
        ++f.blocks;
    }
    for (std::size_t t = 0; t < r.threads.count; ++t) {
        out.threads.push_back(r.threads.data[t]);
        if (!r.threads.data[t].stopped) out.unstopped.push_back(r.threads.data[t].tid);
    }
    for (const live_allocation& a : out.blocks.allocations) {
        if (a.stack == 0 || out.blocks.stacks.count(a.stack)) continue;
        const detail::stack_span span = detail::stacks.frames(a.stack);
        out.blocks.stacks.emplace(a.stack, std::vector<std::uintptr_t>(span.frames, span.frames + span.size));
    }
    const std::uint32_t domains = detail::core.slot_count.load(std::memory_order_acquire);
    for (std::uint32_t i = 0; i < domains; ++i) {
        out.blocks.domain_names.emplace_back(detail::domain_access::make(i).name());
    }
    r.blocks.release();
    r.state.release();
    r.reach.release();
    r.threads.release();
    return out;
}

MEMLENS_NAMESPACE_END
