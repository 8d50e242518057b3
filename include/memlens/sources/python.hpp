// memlens/sources/python.hpp: hooks on CPython's three allocator domains (RAW, MEM, OBJ) that
// count each into a memlens domain of its own and pass every call on to the allocator they wrap.
// Needs <Python.h>; no other memlens header includes this one.
#pragma once

// CPython asks to come before any standard header: it sets feature macros they read.
#include "../detail/python_headers.hpp"

// The Python frames of an allocation are read from the interpreter's own frame chain, whose
// layout only the internal headers give, and which changes with every minor version: this is
// done for the version it is tested with (3.11) and left out for the others, whose stacks are
// native only.
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 && !defined(Py_LIMITED_API)
#define MEMLENS_DETAIL_PYTHON_FRAMES() 1
#ifndef Py_BUILD_CORE
#define MEMLENS_DETAIL_PY_BUILD_CORE_SET 1
#define Py_BUILD_CORE 1
#endif
#if __has_include(<internal/pycore_frame.h>)
#include <internal/pycore_frame.h>
#else
#include <python3.11/internal/pycore_frame.h>
#endif
#ifdef MEMLENS_DETAIL_PY_BUILD_CORE_SET
#undef Py_BUILD_CORE
#undef MEMLENS_DETAIL_PY_BUILD_CORE_SET
#endif
#else
#define MEMLENS_DETAIL_PYTHON_FRAMES() 0
#endif

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include "../core/counters.hpp"
#include "../core/events.hpp"
#include "../core/live_table.hpp"
#include "../core/source_frames.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// CPython's frees pass no size, so the hooks keep each counted block's size in a table keyed by
// address, not in a header in front of the block as the operator new hooks do:
// - removing the hooks must give back the previous allocators while blocks made through the
//   hooks are still alive, and those allocators will free them later: a header would leave them
//   with pointers 16 bytes into their own blocks;
// - a block made before the hooks were installed is simply not in the table, so its free and
//   realloc go on uncounted without reading any memory around a pointer memlens did not hand
//   out (a header check would read 16 bytes before it, mapped for pymalloc, glibc and the debug
//   hooks, but not for every allocator a host may set);
// - a 16-byte header would move every object up a pymalloc size class, and those within 16
//   bytes of pymalloc's 512-byte limit over to malloc.
// The table costs about 30 bytes per live block, in pages memlens maps itself, and one locked
// probe per call. Entries reuse the live table's layout: size_stack holds the whole size and
// origin the memlens domain slot.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline live_shard python_shards[live_shard_count]{};

inline live_shard& python_shard(std::uint64_t hash) noexcept {
    return python_shards[hash >> (64 - live_shard_bits)];
}

// Adds a block; false when the table cannot grow. An address already there belonged to a block
// freed where the hooks could not see it (by code that bypassed its domain's functions): it
// comes back in `stale`, for its bytes to be counted out.
inline bool python_insert(std::uintptr_t address, std::uint64_t size, std::uint32_t slot,
                          live_entry& stale) noexcept {
    const std::uint64_t hash = live_hash(address);
    live_shard& s = python_shard(hash);
    lock_guard hold(s.lock);
    const std::uint64_t found = find_slot(s, address, hash);
    if (found != no_slot) {
        stale = s.slots[found];
        s.slots[found] = live_entry{address, size, slot};
        return true;
    }
    if ((s.count + 1) * 20 > s.capacity * 17 && !grow_shard(s)) return false;
    place_entry(s, live_entry{address, size, slot});
    ++s.count;
    return true;
}

inline bool python_remove(std::uintptr_t address, live_entry& out) noexcept {
    const std::uint64_t hash = live_hash(address);
    live_shard& s = python_shard(hash);
    lock_guard hold(s.lock);
    const std::uint64_t found = find_slot(s, address, hash);
    if (found == no_slot) return false;
    out = s.slots[found];
    erase_slot(s, found);
    return true;
}

inline void python_count_free(const live_entry& e) noexcept {
    on_free(reinterpret_cast<const void*>(e.address), static_cast<std::size_t>(e.size_stack),
            static_cast<std::uint32_t>(e.origin));
}

// ---- Python frames ------------------------------------------------------------------------
//
// Where the GIL is held (the MEM and OBJ domains), a stack captured for an allocation (sites
// mode, or a sampled allocation) gets the thread's Python frames joined in. They are read the
// way tracemalloc reads them: straight from the interpreter's frame chain, with no Python call.
// Asking for frame objects would allocate them (3.11 creates them lazily) and re-enter the
// hooks; a profile function (a shadow stack) would set the thread's tracing flag, which makes
// every opcode run unspecialised. The walk reads a few pointers per frame and never allocates.
//
// Each Python frame (file, qualified name, line) is interned by its text in a table of pages
// memlens maps itself, so that it outlives its code object, and stands in the stack as a
// source frame (core/source_frames.hpp) holding its id.

constexpr std::size_t python_default_depth = 32;
// Longer names are cut; a frame's text is copied on every capture, so this bounds the cost too.
constexpr std::size_t python_text_limit = 512;
constexpr std::uint32_t python_frame_limit = std::uint32_t{1} << 20;
constexpr std::size_t python_frame_slots = std::size_t{2} * python_frame_limit;
constexpr std::size_t python_arena_bytes = 256 * 1024;

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint32_t> python_depth{python_default_depth};
// Set by the MEM and OBJ hooks around their event, for the stack joiner: only there is the GIL
// known to be held, so that the thread's frames are its own to read.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline thread_local bool python_frames_here = false;

// The code of the eval loop, whose native frames the Python frames replace; empty when it could
// not be found, and then no Python frames are joined.
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uintptr_t> python_eval_begin{0};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uintptr_t> python_eval_size{0};

// One interned frame: its header, then the function's text and the file's, each ending in 0.
struct python_frame_record {
    std::uint64_t hash;
    std::uint32_t line;
    std::uint32_t function_size;
    std::uint32_t file_size;

    const char* function() const noexcept { return reinterpret_cast<const char*>(this + 1); }
    const char* file() const noexcept { return function() + function_size + 1; }
};

// Lookups read the slots without the lock (frames already seen are the common case); inserts
// take it. Entries never move and are never removed.
struct python_frame_table {
    spin_lock lock;
    std::atomic<std::atomic<std::uint32_t>*> slots{nullptr};
    std::atomic<const python_frame_record*>* records = nullptr;  // by id, under the lock to map
    std::atomic<std::uint32_t> next_id{1};
    char* arena = nullptr;  // under the lock
    std::size_t arena_left = 0;
    std::atomic<bool> full_reported{false};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline python_frame_table python_frames{};

// The UTF-8 text of str `s`, cut at `limit` bytes between code points; "?" when it is not a
// ready str. Reads the object's storage: PyUnicode_AsUTF8 may allocate the UTF-8 copy.
inline std::size_t python_text(PyObject* s, char* out, std::size_t limit) noexcept {
    if (!s || !PyUnicode_Check(s) || !PyUnicode_IS_READY(s)) {
        out[0] = '?';
        return 1;
    }
    const Py_ssize_t length = PyUnicode_GET_LENGTH(s);
    if (PyUnicode_IS_ASCII(s)) {
        const std::size_t n = static_cast<std::size_t>(length) < limit ? static_cast<std::size_t>(length) : limit;
        std::memcpy(out, PyUnicode_DATA(s), n);
        return n;
    }
    const int kind = PyUnicode_KIND(s);
    const void* data = PyUnicode_DATA(s);
    std::size_t n = 0;
    for (Py_ssize_t i = 0; i < length; ++i) {
        const Py_UCS4 c = PyUnicode_READ(kind, data, i);
        const std::size_t need = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        if (n + need > limit) break;
        if (need == 1) {
            out[n++] = static_cast<char>(c);
        } else {
            const unsigned char lead[5] = {0, 0, 0xc0, 0xe0, 0xf0};
            out[n++] = static_cast<char>(lead[need] | (c >> (6 * (need - 1))));
            for (std::size_t k = need - 1; k > 0; --k) {
                out[n++] = static_cast<char>(0x80 | ((c >> (6 * (k - 1))) & 0x3f));
            }
        }
    }
    return n;
}

inline std::uint64_t python_frame_hash(const char* function, std::size_t function_size,
                                       const char* file, std::size_t file_size, unsigned line) noexcept {
    std::uint64_t h = 0xcbf29ce484222325u ^ line;
    for (std::size_t i = 0; i < function_size; ++i) h = (h ^ static_cast<unsigned char>(function[i])) * 0x100000001b3u;
    h = (h ^ 0xff) * 0x100000001b3u;
    for (std::size_t i = 0; i < file_size; ++i) h = (h ^ static_cast<unsigned char>(file[i])) * 0x100000001b3u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return h;
}

inline bool python_same(const python_frame_record& r, std::uint64_t hash, const char* function,
                        std::size_t function_size, const char* file, std::size_t file_size,
                        unsigned line) noexcept {
    return r.hash == hash && r.line == line && r.function_size == function_size &&
           r.file_size == file_size && std::memcmp(r.function(), function, function_size) == 0 &&
           std::memcmp(r.file(), file, file_size) == 0;
}

// The id of slot array entry `i`'s frame when it is this one; 0 at an empty slot; -1 otherwise.
inline std::int64_t python_probe(const std::atomic<std::uint32_t>& slot, std::uint64_t hash,
                                 const char* function, std::size_t function_size, const char* file,
                                 std::size_t file_size, unsigned line) noexcept {
    const std::uint32_t id = slot.load(std::memory_order_acquire);
    if (id == 0) return 0;
    const python_frame_record* r = python_frames.records[id].load(std::memory_order_acquire);
    return python_same(*r, hash, function, function_size, file, file_size, line) ? id : -1;
}

MEMLENS_COLD inline void python_table_full() noexcept {
    if (!python_frames.full_reported.exchange(true, relaxed)) {
        report_error("the table of Python frames is full or cannot be mapped; new Python frames "
                     "are left out of stacks");
    }
}

MEMLENS_NOINLINE inline std::uint32_t python_insert_frame(std::uint64_t hash, const char* function,
                                                          std::size_t function_size, const char* file,
                                                          std::size_t file_size, unsigned line) noexcept {
    python_frame_table& t = python_frames;
    lock_guard hold(t.lock);
    std::atomic<std::uint32_t>* slots = t.slots.load(relaxed);
    if (!slots) {
        // Address space only: untouched pages cost nothing.
        t.records = static_cast<std::atomic<const python_frame_record*>*>(
            map_pages(python_frame_limit * sizeof(std::atomic<const python_frame_record*>)));
        slots = static_cast<std::atomic<std::uint32_t>*>(
            map_pages(python_frame_slots * sizeof(std::atomic<std::uint32_t>)));
        if (!t.records || !slots) {
            python_table_full();
            return 0;
        }
        t.slots.store(slots, std::memory_order_release);
    }
    std::size_t i = hash & (python_frame_slots - 1);
    for (;; i = (i + 1) & (python_frame_slots - 1)) {
        const std::int64_t found = python_probe(slots[i], hash, function, function_size, file, file_size, line);
        if (found > 0) return static_cast<std::uint32_t>(found);
        if (found == 0) break;
    }
    const std::uint32_t id = t.next_id.load(relaxed);
    const std::size_t bytes = (sizeof(python_frame_record) + function_size + file_size + 2 + 7) & ~std::size_t{7};
    if (id >= python_frame_limit) {
        python_table_full();
        return 0;
    }
    if (t.arena_left < bytes) {
        t.arena = static_cast<char*>(map_pages(python_arena_bytes));
        t.arena_left = t.arena ? python_arena_bytes : 0;
        if (!t.arena) {
            python_table_full();
            return 0;
        }
    }
    auto* r = reinterpret_cast<python_frame_record*>(t.arena);
    t.arena += bytes;
    t.arena_left -= bytes;
    r->hash = hash;
    r->line = line;
    r->function_size = static_cast<std::uint32_t>(function_size);
    r->file_size = static_cast<std::uint32_t>(file_size);
    char* text = reinterpret_cast<char*>(r + 1);
    std::memcpy(text, function, function_size);
    text[function_size] = '\0';
    std::memcpy(text + function_size + 1, file, file_size);
    text[function_size + 1 + file_size] = '\0';
    t.records[id].store(r, std::memory_order_release);
    t.next_id.store(id + 1, std::memory_order_release);
    slots[i].store(id, std::memory_order_release);
    return id;
}

// The id of a frame's (function, file, line), interned on first sight; 0 when the table is full.
inline std::uint32_t python_intern_frame(const char* function, std::size_t function_size, const char* file,
                                         std::size_t file_size, unsigned line) noexcept {
    const std::uint64_t hash = python_frame_hash(function, function_size, file, file_size, line);
    if (std::atomic<std::uint32_t>* slots = python_frames.slots.load(std::memory_order_acquire)) {
        for (std::size_t i = hash & (python_frame_slots - 1);; i = (i + 1) & (python_frame_slots - 1)) {
            const std::int64_t found = python_probe(slots[i], hash, function, function_size, file, file_size, line);
            if (found > 0) return static_cast<std::uint32_t>(found);
            if (found == 0) break;
        }
    }
    return python_insert_frame(hash, function, function_size, file, file_size, line);
}

inline bool python_name_frame(std::uintptr_t address, source_frame& out) noexcept {
    const std::uintptr_t id = address & ~source_frame_tag;
    if (id == 0 || id >= python_frames.next_id.load(std::memory_order_acquire) || !python_frames.records) return false;
    const python_frame_record* r = python_frames.records[id].load(std::memory_order_acquire);
    if (!r) return false;
    out = {r->function(), r->file(), r->line, "python"};
    return true;
}

#if MEMLENS_DETAIL_PYTHON_FRAMES()

// The frame's place in the stack: a source frame naming (qualified name, file, line).
inline std::uintptr_t python_frame_address(_PyInterpreterFrame* f) noexcept {
    PyCodeObject* code = f->f_code;
    char function[python_text_limit];
    char file[python_text_limit];
    const std::size_t function_size = python_text(code->co_qualname, function, sizeof function);
    const std::size_t file_size = python_text(code->co_filename, file, sizeof file);
    // Decodes the code object's line table in place; tracemalloc asks the same way.
    const int line = PyCode_Addr2Line(code, _PyInterpreterFrame_LASTI(f) * static_cast<int>(sizeof(_Py_CODEUNIT)));
    const std::uint32_t id = python_intern_frame(function, function_size, file, file_size,
                                                 line > 0 ? static_cast<unsigned>(line) : 0);
    return id ? source_frame_tag | id : 0;
}

// Joins the calling thread's Python frames into its native stack. Each call of the eval loop
// runs the Python frames from the one marked is_entry up to where it calls out (3.11 runs a
// Python-to-Python call in the same C call), so the chain splits into one run of frames per
// native eval-loop frame, in the same order: each native eval-loop frame is replaced by its run,
// and every other native frame stays. C++ calling Python calling C++ then reads as one path:
// the hook's callers in libpython, the Python frames, the C++ function Python called, the Python
// frames that called it, the host's entry into the interpreter and the host below. Runs left
// over when the native walk ended first (depth reached, or a caller it could not see past) go
// after it, still in order; eval-loop frames left over, past the Python depth, stay as they are.
inline std::size_t python_join(std::uintptr_t* frames, std::size_t depth, std::size_t max) noexcept {
    if (!python_frames_here) return depth;
    const std::uint32_t limit = python_depth.load(relaxed);
    const std::uintptr_t eval_begin = python_eval_begin.load(relaxed);
    const std::uintptr_t eval_size = python_eval_size.load(relaxed);
    if (limit == 0 || eval_size == 0) return depth;
    // The thread that holds the GIL; another thread's frames would change under the walk.
    PyThreadState* ts = _PyThreadState_UncheckedGet();
    if (!ts || ts->thread_id != PyThread_get_thread_ident() || !ts->cframe) return depth;

    std::uintptr_t python[max_stack_depth];
    std::uint8_t run_size[max_stack_depth];
    std::size_t count = 0;
    std::size_t runs = 0;
    std::size_t in_run = 0;
    for (_PyInterpreterFrame* f = ts->cframe->current_frame; f && count < limit && runs < max_stack_depth;
         f = f->previous) {
        // A frame still setting up has no line yet; CPython's own walks skip it too.
        if (!_PyFrame_IsIncomplete(f) && count < max_stack_depth) {
            if (const std::uintptr_t a = python_frame_address(f)) {
                python[count++] = a;
                ++in_run;
            }
        }
        if (f->is_entry) {
            run_size[runs++] = static_cast<std::uint8_t>(in_run);
            in_run = 0;
        }
    }
    if (in_run != 0 && runs < max_stack_depth) run_size[runs++] = static_cast<std::uint8_t>(in_run);
    if (count == 0) return depth;

    std::uintptr_t native[max_stack_depth];
    std::memcpy(native, frames, depth * sizeof *frames);
    std::size_t out = 0;
    std::size_t run = 0;
    std::size_t next = 0;
    const auto put_run = [&] {
        for (std::size_t k = 0; k < run_size[run] && out < max; ++k) frames[out++] = python[next + k];
        next += run_size[run++];
    };
    for (std::size_t i = 0; i < depth && out < max; ++i) {
        // Return addresses follow their call: the call is at address - 1.
        if (run < runs && native[i] - 1 - eval_begin < eval_size) {
            put_run();
        } else {
            frames[out++] = native[i];
        }
    }
    while (run < runs && out < max) put_run();
    return out;
}

// Finds the eval loop's code by its symbol's size. The function's address taken here is its
// real one in a position-independent program; a non-PIE one would see its PLT stub, which no
// symbol of libpython covers, and then gets native stacks only.
inline void python_find_eval_loop() noexcept {
    void* entry = reinterpret_cast<void*>(&_PyEval_EvalFrameDefault);
    Dl_info info{};
    void* found = nullptr;
    const bool named = ::dladdr1(entry, &info, &found, RTLD_DL_SYMENT) != 0;
    const auto* symbol = static_cast<const ElfW(Sym)*>(found);
    if (!named || !symbol ||
        info.dli_saddr != entry || symbol->st_size == 0) {
        return;
    }
    python_eval_begin.store(reinterpret_cast<std::uintptr_t>(entry), relaxed);
    python_eval_size.store(symbol->st_size, relaxed);
}

#endif

inline void python_start_frames() noexcept {
#if MEMLENS_DETAIL_PYTHON_FRAMES()
    if (const char* v = std::getenv("MEMLENS_PYTHON_DEPTH")) {
        char* end = nullptr;
        const unsigned long n = std::strtoul(v, &end, 10);
        if (end != v && *end == '\0') {
            python_depth.store(static_cast<std::uint32_t>(n < max_stack_depth ? n : max_stack_depth), relaxed);
        } else {
            report_error("MEMLENS_PYTHON_DEPTH is not a whole number; Python stacks keep their depth");
        }
    }
    python_find_eval_loop();
    source_frame_namer.store(&python_name_frame, std::memory_order_release);
    stack_joiner.store(&python_join, std::memory_order_release);
#endif
}

// Counts a new block of `size` bytes in domain slot `slot` and remembers it for its free.
inline void python_count_alloc(const void* p, std::size_t size, std::uint32_t slot, bool gil) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    live_entry stale{};
    if (!python_insert(address, size, slot, stale)) {
        static std::atomic<bool> reported{false};
        if (!reported.exchange(true, relaxed)) {
            report_error("cannot grow the table of Python blocks; Python allocations go uncounted "
                         "until it can");
        }
        return;
    }
    if (stale.address != 0) python_count_free(stale);
    // Zero only when another layout owns the program: the free must not count then either.
    // Only a stack being captured reads the flag: counters-only modes skip the thread-local.
    const bool frames = gil && switchboard.load(relaxed) != 0;
    if (frames) python_frames_here = true;
    const block_mark mark = on_alloc(p, size, slot, false);
    if (frames) python_frames_here = false;
    if ((mark & block_counted) == 0) python_remove(address, stale);
}

// One per CPython domain; its address is the ctx CPython passes back to the hooks.
struct python_hook {
    PyMemAllocatorEx previous;
    std::uint32_t slot;
    bool installed;
};

constexpr PyMemAllocatorDomain python_domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                    PYMEM_DOMAIN_OBJ};
constexpr const char* python_domain_names[3] = {"python.raw", "python.mem", "python.obj"};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline python_hook python_hooks[3]{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline spin_lock python_install_lock{};

// The previous allocator runs under the guard: pymalloc serves large and failed requests of the
// MEM and OBJ domains through PyMem_RawMalloc, whose hook then sees the guard and leaves those
// bytes to the domain that asked for them. A block is counted only when the request came from
// outside every hook, and its free is counted exactly when it is in the table, guard or not.
inline void* python_malloc(void* ctx, std::size_t size) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted();
    void* p = nullptr;
    {
        guard quiet;
        p = h->previous.malloc(h->previous.ctx, size);
    }
    if (p && count) python_count_alloc(p, size, h->slot, h != &python_hooks[0]);
    return p;
}

inline void* python_calloc(void* ctx, std::size_t nelem, std::size_t elsize) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted();
    std::size_t size = 0;
    // The previous allocator refuses an overflowing request itself; if it does not, the block
    // has no size to count and stays out of the figures.
    const bool overflow = __builtin_mul_overflow(nelem, elsize, &size);
    void* p = nullptr;
    {
        guard quiet;
        p = h->previous.calloc(h->previous.ctx, nelem, elsize);
    }
    if (p && count && !overflow) python_count_alloc(p, size, h->slot, h != &python_hooks[0]);
    return p;
}

// A free of the old size, then an allocation of the new one, as tracemalloc counts it; a
// block from before the hooks were installed is only the allocation.
inline void* python_realloc(void* ctx, void* p, std::size_t size) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted();
    // Out of the table before the call: once it returns, another thread may be handed the
    // old address and insert it.
    live_entry old{};
    const bool known = p && python_remove(reinterpret_cast<std::uintptr_t>(p), old);
    void* q = nullptr;
    {
        guard quiet;
        q = h->previous.realloc(h->previous.ctx, p, size);
    }
    if (!q) {
        // The old block is untouched and still live. Its slot was just freed, so putting it
        // back never needs the table to grow.
        live_entry stale{};
        if (known) python_insert(old.address, old.size_stack, static_cast<std::uint32_t>(old.origin), stale);
        return nullptr;
    }
    if (known) python_count_free(old);
    if (count) python_count_alloc(q, size, h->slot, h != &python_hooks[0]);
    return q;
}

inline void python_free(void* ctx, void* p) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    live_entry e{};
    // Before the free, for the same reason as in python_realloc.
    if (p && python_remove(reinterpret_cast<std::uintptr_t>(p), e)) python_count_free(e);
    guard quiet;
    h->previous.free(h->previous.ctx, p);
}

inline bool python_hook_current(std::size_t i) noexcept {
    PyMemAllocatorEx now{};
    PyMem_GetAllocator(python_domains[i], &now);
    return now.ctx == &python_hooks[i] && now.malloc == &python_malloc &&
           now.calloc == &python_calloc && now.realloc == &python_realloc &&
           now.free == &python_free;
}

// A fork while another thread holds a shard would leave it held forever in the child.
inline void python_lock_shards() noexcept {
    for (live_shard& s : python_shards) s.lock.lock();
    python_frames.lock.lock();
}
inline void python_unlock_shards() noexcept {
    python_frames.lock.unlock();
    for (live_shard& s : python_shards) s.lock.unlock();
}

// Counts every block still in the table as freed and empties it. Each shard's slots are taken
// out under its lock and counted after it is released, so that no shard lock is held while
// on_free takes the live table's.
inline void python_drain() noexcept {
    for (live_shard& s : python_shards) {
        live_entry* slots = nullptr;
        std::uint64_t capacity = 0;
        std::size_t mapped = 0;
        {
            lock_guard hold(s.lock);
            slots = s.slots;
            capacity = s.capacity;
            mapped = s.mapped;
            s.slots = nullptr;
            s.capacity = 0;
            s.count = 0;
            s.mapped = 0;
        }
        for (std::uint64_t i = 0; i < capacity; ++i) {
            if (slots[i].address != 0) python_count_free(slots[i]);
        }
        unmap_pages(slots, mapped);
    }
}

}  // namespace detail

/// Wraps the allocators of CPython's RAW, MEM and OBJ domains with hooks that count each into
/// the memlens domain "python.raw", "python.mem" or "python.obj", and pass every call on to the
/// allocator that was there (pymalloc, malloc, the debug hooks or the host's). Call it after
/// Py_PreInitialize (or Py_Initialize), which resets the allocators when PYTHONMALLOC is set,
/// and with the GIL held or before any thread allocates through RAW. Installed already: does
/// nothing. Blocks allocated before are freed and reallocated through the hooks uncounted. In
/// sites mode, and for sampled allocations, stacks of MEM and OBJ allocations hold the Python
/// frames too (see set_python_stack_depth).
/// Returns false, installing nothing, when a domain cannot be named. Does not allocate
/// through the hooks.
inline bool install_python_hooks() noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    if (python_hooks[0].installed) return true;
    static bool fork_handled = false;
    if (!fork_handled) {
        ::pthread_atfork(&python_lock_shards, &python_unlock_shards, &python_unlock_shards);
        fork_handled = true;
        python_start_frames();
    }
    std::uint32_t slots[3] = {};
    for (std::size_t i = 0; i < 3; ++i) {
        const domain d = domain::named(python_domain_names[i]);
        if (d.name() != python_domain_names[i]) return false;
        slots[i] = d.id();
    }
    for (std::size_t i = 0; i < 3; ++i) {
        python_hook& h = python_hooks[i];
        PyMem_GetAllocator(python_domains[i], &h.previous);
        h.slot = slots[i];
        PyMemAllocatorEx mine{&h, &python_malloc, &python_calloc, &python_realloc, &python_free};
        PyMem_SetAllocator(python_domains[i], &mine);
        h.installed = true;
    }
    return true;
}

/// Gives each domain back the allocator it had before install_python_hooks(), field for field,
/// and counts the blocks the hooks still know as freed: once the hooks are gone nobody would
/// see those frees, so the python.* figures drop to zero live bytes. When another party has
/// wrapped the hooks of some domain since (tracemalloc.start(), say), removing them would cut
/// it out of the chain: then nothing changes, the error handler is told, and the result is
/// false. Not installed: does nothing, true. Call it with the GIL held and while no other
/// thread allocates through RAW, whose calls do not wait for the GIL.
inline bool remove_python_hooks() noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    if (!python_hooks[0].installed) return true;
    for (std::size_t i = 0; i < 3; ++i) {
        if (!python_hook_current(i)) {
            fixed_message m;
            m << "remove_python_hooks: another allocator has wrapped memlens's hooks on "
              << python_domain_names[i]
              << " since they were installed; they stay installed and keep counting (remove the "
                 "other wrapper first, e.g. tracemalloc.stop())";
            report_error(m.c_str());
            return false;
        }
    }
    for (std::size_t i = 0; i < 3; ++i) {
        PyMem_SetAllocator(python_domains[i], &python_hooks[i].previous);
        python_hooks[i].installed = false;
    }
    python_drain();
    return true;
}

/// Keeps the innermost `frames` Python frames (at most 128; 0 for none) in each stack captured
/// for a MEM or OBJ allocation, joined with its native frames; 32 unless MEMLENS_PYTHON_DEPTH
/// said otherwise when the hooks were first installed. Needs CPython 3.11: with another version
/// stacks stay native. Thread safe; does not allocate.
inline void set_python_stack_depth(std::size_t frames) noexcept {
    using namespace detail;
    python_depth.store(static_cast<std::uint32_t>(frames < max_stack_depth ? frames : max_stack_depth), relaxed);
}

/// Whether install_python_hooks() has run and remove_python_hooks() has not undone it since.
inline bool python_hooks_installed() noexcept {
    detail::lock_guard hold(detail::python_install_lock);
    return detail::python_hooks[0].installed;
}

/// The memlens domain that counts CPython domain `d`: "python.raw", "python.mem" or
/// "python.obj". Thread safe; does not allocate; takes a lock.
inline domain python_domain(PyMemAllocatorDomain d) noexcept {
    const std::size_t i = d == PYMEM_DOMAIN_RAW ? 0 : d == PYMEM_DOMAIN_MEM ? 1 : 2;
    return domain::named(detail::python_domain_names[i]);
}

MEMLENS_NAMESPACE_END
