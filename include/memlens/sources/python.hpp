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

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <sys/random.h>
#include <time.h>

#include "../core/runtime.hpp"
#include "../core/counters.hpp"
#include "../core/events.hpp"
#include "../core/live_table.hpp"
#include "../core/source_frames.hpp"
#include "../model/types.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// CPython's frees pass no size, so each block counted by the hooks carries a 16-byte header in
// front of it, as the operator new hooks' blocks do: the requested size (with the site in sites
// mode), the flags of on_alloc's mark, the domain, the removal generation, and a check word.
// - Telling headers apart. Blocks allocated before the hooks went in (or while they were
//   removed) come back through them without a header. A header is believed only when its check
//   word matches a hash of the user address, the other header bits and a random key drawn at the
//   first install: a block without one matches by chance once in 2^36 frees, and nothing outside
//   memlens can compute the word. The 16 bytes in front of a pointer are read only when they
//   lie in the pointer's own 4 KiB page, which is mapped because the block is (no assumption
//   about the allocator below); a pointer in a page's first 16 bytes is never taken for a
//   headered one, and a headered block whose pointer would land there moves to a block 16 bytes
//   larger and starts 32 bytes in (about one block in 256 from a 16-byte aligned allocator).
//   The check word is cleared as a block is freed, so a stale header cannot match an address
//   handed out again.
// - Removal. Once headered blocks exist, CPython must keep freeing them through a hook that
//   strips the header: remove_python_hooks() leaves the hooks in place, passing new blocks
//   through without a header or a count, and counts the live bytes out at once (the figures
//   drop to zero, as tracemalloc.stop's do). Each removal starts a new generation; a block of
//   an older one is freed uncounted, whichever hook sees it. Every memlens hook reads every
//   memlens header, so a wrapper that was stacked between two of them (tracemalloc started
//   while the hooks were removed, then stopped) may drop the upper one from the chain: the
//   lower one strips its headers, handing the allocator below the pointer it returned. Only a
//   wrapper under the first hooks that is taken away while headered blocks live (a party that
//   restores what it found, under memlens) hands them to an allocator that cannot take them.
//   An upper hook keeps its sizes in a table instead of headers (see python_shards).
// - Size. 16 bytes, not 8: CPython promises 16-byte alignment on 64-bit targets (pymalloc's
//   ALIGNMENT, and the C library's malloc), which an 8-byte header would break. A request
//   moves up one pymalloc size class (they are 16 bytes apart), and requests within 16 bytes
//   of pymalloc's 512-byte limit go to malloc instead: bench/README.md gives the measured cost.
struct python_header {
    // The requested size; in a block_sited block, size:40 | stack:24.
    std::uint64_t word;
    // check:36 | generation:10 | record:12 | domain:2 | wide:1 | flags:3 (block_counted,
    // block_recorded, block_sited). `wide`: the user pointer is 32 bytes into the block, not 16.
    std::uint64_t tag;
};
static_assert(sizeof(python_header) == 16, "the header must keep CPython's 16-byte alignment");

constexpr std::uint64_t python_wide_bit = 1u << 3;
constexpr unsigned python_domain_shift = 4;
constexpr unsigned python_record_shift = 6;
constexpr unsigned python_generation_shift = 18;
constexpr std::uint32_t python_generation_mask = (1u << 10) - 1;
constexpr unsigned python_check_shift = 28;
// A header of a generation 1024 removals back reads as current again; nothing removes that often.
static_assert(python_check_shift - python_generation_shift == 10, "the generation has 10 bits");
constexpr std::uintptr_t python_page = 4096;
// The room a zero-byte request gets behind the header. Unhooked, pymalloc sends such a request
// to malloc(1), which leaves room for two pointers, and CPython 3.11's compiler depends on it:
// with no room behind the header, compiling lost a pointer it had stored and crashed.
constexpr std::size_t python_empty_room = 16;

inline std::size_t python_room(std::size_t size) noexcept { return size ? size : python_empty_room; }

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint64_t> python_key{0};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint32_t> python_generation{0};

inline std::uint64_t python_check(std::uintptr_t user, std::uint64_t word, std::uint64_t low) noexcept {
    std::uint64_t x = (user ^ python_key.load(relaxed)) * 0x9e3779b97f4a7c15u;
    x ^= word * 0xc2b2ae3d27d4eb4fu + low;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 29;
    return x >> python_check_shift << python_check_shift;
}

inline std::uint64_t python_seal(std::uintptr_t user, std::uint64_t word, std::uint64_t low) noexcept {
    return low | python_check(user, word, low);
}

// The header in front of `p` when it has one. Under a sanitizer the bytes read may sit in a
// redzone or in the allocator's own bookkeeping, which is why the checks are off here.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "hwaddress", "thread")))
#endif
inline bool python_read_header(const void* p, python_header& out) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    if (address % alignof(std::uint64_t) != 0 || address % python_page < sizeof(python_header)) return false;
    const auto* words = static_cast<const volatile std::uint64_t*>(p) - 2;
    out.word = words[0];
    out.tag = words[1];
    const std::uint64_t low = out.tag & ((std::uint64_t{1} << python_check_shift) - 1);
    return out.tag == python_seal(address, out.word, low);
}

inline python_header* python_header_of(void* user) noexcept {
    return static_cast<python_header*>(user) - 1;
}

inline unsigned char* python_base(void* user, const python_header& h) noexcept {
    return static_cast<unsigned char*>(user) - ((h.tag & python_wide_bit) ? 32 : 16);
}

inline std::uint64_t python_size(const python_header& h) noexcept {
    return (h.tag & block_sited) ? h.word & (sited_size_limit - 1) : h.word;
}

inline std::uint32_t python_domain_index(const python_header& h) noexcept {
    return static_cast<std::uint32_t>(h.tag >> python_domain_shift) & 3u;
}

// Writes the header of a block at `user` holding `size` bytes, with on_alloc's `mark`.
inline void python_write_header(void* user, std::size_t size, block_mark mark, std::uint32_t domain_index,
                                bool wide) noexcept {
    std::uint64_t word = size;
    std::uint64_t low = (mark & (block_counted | block_recorded | block_sited)) |
                        (wide ? python_wide_bit : 0) | (std::uint64_t{domain_index} << python_domain_shift) |
                        (std::uint64_t{python_generation.load(relaxed) & python_generation_mask}
                         << python_generation_shift);
    if (mark & block_sited) {
        word = size | (std::uint64_t{mark_stack(mark)} << 40);
        low |= std::uint64_t{mark_record(mark)} << python_record_shift;
    }
    python_header* h = python_header_of(user);
    h->word = word;
    h->tag = python_seal(reinterpret_cast<std::uintptr_t>(user), word, low);
}

// A hook that wraps another party stacked on memlens's own hooks (tracemalloc started while they
// were removed, then memlens installed again) must pass that party the sizes asked for, or its
// figures would include memlens's headers; such a hook keeps each counted block's size in a table
// keyed by address instead, at about 30 bytes per live block, in pages memlens maps itself, and
// one locked probe per call. Entries reuse the live table's layout: size_stack holds the whole
// size and origin the memlens domain slot.
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

// One hook per CPython domain and install; its address is the ctx CPython passes back. A hook
// stays in the chain after removal (see python_header), so installing again while it is the
// domain's allocator turns it back on; otherwise a new one wraps whatever is there.
struct python_hook {
    PyMemAllocatorEx previous;
    std::uint32_t domain_index;
    // Keeps sizes in python_shards, not in headers: it wraps another party (see there).
    bool tabled;
    std::atomic<bool> counting;
};

constexpr PyMemAllocatorDomain python_domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                    PYMEM_DOMAIN_OBJ};
constexpr const char* python_domain_names[3] = {"python.raw", "python.mem", "python.obj"};
constexpr std::size_t python_hook_limit = 16;

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline python_hook python_hooks[3][python_hook_limit]{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::size_t python_hooks_used[3]{};  // under python_install_lock
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline bool python_counting = false;         // under python_install_lock
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint32_t> python_slots[3]{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline spin_lock python_install_lock{};

// ---- hooks that keep sizes in the table (see python_shards) --------------------------------

// Counts a new block of `size` bytes in domain `domain_index` and remembers it for its free.
inline void python_table_count(const void* p, std::size_t size, std::uint32_t domain_index) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const std::uint32_t slot = python_slots[domain_index].load(relaxed);
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
    const bool frames = domain_index != 0 && switchboard.load(relaxed) != 0;
    if (frames) python_frames_here = true;
    const block_mark mark = on_alloc(p, size, slot, false);
    if (frames) python_frames_here = false;
    if ((mark & block_counted) == 0) python_remove(address, stale);
}

MEMLENS_NOINLINE inline void* python_table_malloc(python_hook* h, std::size_t size, bool count) noexcept {
    void* p = nullptr;
    {
        guard quiet;
        p = h->previous.malloc(h->previous.ctx, size);
    }
    if (p && count) python_table_count(p, size, h->domain_index);
    return p;
}

MEMLENS_NOINLINE inline void* python_table_calloc(python_hook* h, std::size_t nelem, std::size_t elsize,
                                                  bool count) noexcept {
    std::size_t size = 0;
    const bool overflow = __builtin_mul_overflow(nelem, elsize, &size);
    void* p = nullptr;
    {
        guard quiet;
        p = h->previous.calloc(h->previous.ctx, nelem, elsize);
    }
    if (p && count && !overflow) python_table_count(p, size, h->domain_index);
    return p;
}

MEMLENS_NOINLINE inline void* python_table_realloc(python_hook* h, void* p, std::size_t size, bool count) noexcept {
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
    if (count) python_table_count(q, size, h->domain_index);
    return q;
}

// Headered blocks from the hooks below pass through untouched: those hooks take the headers off.
MEMLENS_NOINLINE inline void python_table_free(python_hook* h, void* p) noexcept {
    live_entry e{};
    if (p && python_remove(reinterpret_cast<std::uintptr_t>(p), e)) python_count_free(e);
    guard quiet;
    h->previous.free(h->previous.ctx, p);
}

// Counts every block still in the table as freed and empties it. Each shard's slots are taken
// out under its lock and counted after it is released, so that no shard lock is held while
// on_free takes the live table's.
inline void python_drain_table() noexcept {
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

// on_alloc in its heap form, so that only recorded blocks look the live table up when freed and
// sited ones carry their site, except when mode off switches the global hooks' counting off:
// these domains keep counting then.
MEMLENS_ALWAYS_INLINE block_mark python_observe(const void* user, std::size_t size, std::uint32_t domain_index) noexcept {
    const std::uint32_t slot = python_slots[domain_index].load(relaxed);
    const std::uint32_t sw = switchboard.load(relaxed);
    // Only a stack being captured reads python_frames_here: counters mode skips the thread-local.
    if (sw == 0) return on_alloc(user, size, slot, true);
    const bool frames = domain_index != 0;
    if (frames) python_frames_here = true;
    const block_mark mark = on_alloc(user, size, slot, (sw & sw_heap_off) == 0);
    if (frames) python_frames_here = false;
    return mark;
}

// Tells the observers that a headered block goes, whatever its generation: they hold a block
// until it really goes, while the counters of an older generation were settled at removal.
MEMLENS_ALWAYS_INLINE void python_forget(void* user, const python_header& h) noexcept {
    if (MEMLENS_UNLIKELY(h.tag & (block_recorded | block_sited))) {
        if (h.tag & block_sited) {
            forget_site(reinterpret_cast<std::uintptr_t>(user), python_size(h), static_cast<std::uint32_t>(h.word >> 40),
                        static_cast<std::uint32_t>(h.tag >> python_record_shift) & entry_record_limit);
        } else {
            forget_allocation(user);
        }
    }
}

// Counts the free of a headered block when its generation is the current one.
MEMLENS_ALWAYS_INLINE void python_uncount(const python_header& h) noexcept {
    const auto generation = static_cast<std::uint32_t>(h.tag >> python_generation_shift) & python_generation_mask;
    if ((h.tag & block_counted) &&
        generation == (python_generation.load(relaxed) & python_generation_mask)) {
        count_free(static_cast<std::size_t>(python_size(h)), python_slots[python_domain_index(h)].load(relaxed));
    }
}

// A block of `size` bytes at `base` from the previous allocator, whose user pointer would be
// `data`, at the start of a page: moves its first `keep` bytes to a block 16 bytes larger whose
// user pointer is not. Null when that block cannot be had; `base` then holds the data at its
// start, for the caller to hand out as a plain block.
MEMLENS_NOINLINE inline unsigned char* python_move_off_page(const python_hook* h, unsigned char*& base,
                                                            unsigned char* data, std::size_t size,
                                                            std::size_t keep, bool zeroed) noexcept {
    const std::size_t total = python_room(size) + 2 * sizeof(python_header);
    auto* wide = static_cast<unsigned char*>(zeroed ? h->previous.calloc(h->previous.ctx, 1, total)
                                                    : h->previous.malloc(h->previous.ctx, total));
    if (!wide) {
        std::memmove(base, data, keep);
        return nullptr;
    }
    unsigned char* user = wide + sizeof(python_header);
    if (reinterpret_cast<std::uintptr_t>(user) % python_page < sizeof(python_header)) user += sizeof(python_header);
    std::memcpy(user, data, keep);
    h->previous.free(h->previous.ctx, base);
    base = wide;
    return user;
}

MEMLENS_COLD inline void python_plain_block() noexcept {
    static std::atomic<bool> reported{false};
    if (!reported.exchange(true, relaxed)) {
        report_error("out of memory while moving a Python block off a page start; it is handed "
                     "out without a header and goes uncounted");
    }
}

// The user pointer of a new block at `base` (null: out of memory) holding `size` bytes, headered
// and counted when `count`; the data to keep (a realloc's) is `keep` bytes at `data`.
MEMLENS_ALWAYS_INLINE void* python_finish(const python_hook* h, unsigned char* base, unsigned char* data, std::size_t size,
                           std::size_t keep, bool zeroed, bool count) noexcept {
    if (!base) return nullptr;
    unsigned char* user = data;
    bool wide = data - base != sizeof(python_header);
    if (MEMLENS_UNLIKELY(reinterpret_cast<std::uintptr_t>(user) % python_page < sizeof(python_header))) {
        guard quiet;
        user = python_move_off_page(h, base, data, size, keep, zeroed);
        if (!user) {
            python_plain_block();
            return base;
        }
        wide = user - base != sizeof(python_header);
    }
    const block_mark mark = count ? python_observe(user, size, h->domain_index) : 0;
    python_write_header(user, size, mark, h->domain_index, wide);
    return user;
}

// The previous allocator runs under the guard: pymalloc serves large and failed requests of the
// MEM and OBJ domains through PyMem_RawMalloc, whose hook then sees the guard and leaves those
// bytes, plain, to the domain that asked for them. A block gets a header when the request came
// from outside every hook while the hooks count; its free is counted when the header says it
// was counted in the current generation, guard or not.
// The thread that runs pending calls (threading.main_thread()), and whether a wake-up from
// another thread must be repeated there: CPython 3.11 tells the main thread of a pending call
// only when the main thread adds it (3.12 tells it from any thread).
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<unsigned long> python_main_thread{0};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<bool> python_nudge{false};
inline void python_repeat_wake() noexcept;

inline void* python_malloc(void* ctx, std::size_t size) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    if (MEMLENS_UNLIKELY(python_nudge.load(relaxed)) && h->domain_index != 0) python_repeat_wake();
    const bool count = counted() && h->counting.load(relaxed);
    if (MEMLENS_UNLIKELY(h->tabled)) return python_table_malloc(h, size, count);
    unsigned char* base = nullptr;
    {
        guard quiet;
        if (!count || size > SIZE_MAX - 2 * sizeof(python_header)) return h->previous.malloc(h->previous.ctx, size);
        base = static_cast<unsigned char*>(h->previous.malloc(h->previous.ctx, python_room(size) + sizeof(python_header)));
    }
    return python_finish(h, base, base + sizeof(python_header), size, 0, false, true);
}

inline void* python_calloc(void* ctx, std::size_t nelem, std::size_t elsize) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted() && h->counting.load(relaxed);
    if (MEMLENS_UNLIKELY(h->tabled)) return python_table_calloc(h, nelem, elsize, count);
    std::size_t size = 0;
    // The previous allocator refuses an overflowing request itself; if it does not, the block
    // has no size to count and stays out of the figures.
    const bool overflow = __builtin_mul_overflow(nelem, elsize, &size);
    unsigned char* base = nullptr;
    {
        guard quiet;
        if (!count || overflow || size > SIZE_MAX - 2 * sizeof(python_header)) {
            return h->previous.calloc(h->previous.ctx, nelem, elsize);
        }
        base = static_cast<unsigned char*>(h->previous.calloc(h->previous.ctx, 1, python_room(size) + sizeof(python_header)));
    }
    return python_finish(h, base, base + sizeof(python_header), size, 0, true, true);
}

// A free of the old size, then an allocation of the new one, as tracemalloc counts it; a
// block without a header is only the allocation. A block without a header gets one by moving
// its data up in the grown block; one with a header keeps it, uncounted when the hooks do not
// count.
inline void* python_realloc(void* ctx, void* p, std::size_t size) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    const bool count = counted() && h->counting.load(relaxed);
    if (MEMLENS_UNLIKELY(h->tabled)) return python_table_realloc(h, p, size, count);
    python_header old{};
    const bool headered = p && python_read_header(p, old);
    if (!headered) {
        unsigned char* base = nullptr;
        {
            guard quiet;
            if (!count || size > SIZE_MAX - 2 * sizeof(python_header)) return h->previous.realloc(h->previous.ctx, p, size);
            base = static_cast<unsigned char*>(h->previous.realloc(h->previous.ctx, p, python_room(size) + sizeof(python_header)));
        }
        if (base) std::memmove(base + sizeof(python_header), base, size);
        return python_finish(h, base, base + sizeof(python_header), size, size, false, true);
    }
    if (size > SIZE_MAX - 2 * sizeof(python_header)) return nullptr;
    unsigned char* old_base = python_base(p, old);
    const std::size_t offset = static_cast<std::size_t>(static_cast<unsigned char*>(p) - old_base);
    // The observers let go before the call: once it returns, another thread may be handed the
    // old address and record it. A failed call leaves the block counted but unobserved.
    python_forget(p, old);
    python_header* at = python_header_of(p);
    at->tag = 0;
    unsigned char* base = nullptr;
    {
        guard quiet;
        base = static_cast<unsigned char*>(h->previous.realloc(h->previous.ctx, old_base, python_room(size) + offset));
    }
    if (!base) {
        const std::uint64_t low = old.tag & ((std::uint64_t{1} << python_check_shift) - 1) &
                                  ~std::uint64_t{block_recorded | block_sited};
        const std::uint64_t word = python_size(old);
        at->word = word;
        at->tag = python_seal(reinterpret_cast<std::uintptr_t>(p), word, low);
        return nullptr;
    }
    python_uncount(old);
    return python_finish(h, base, base + offset, size, size, false, count);
}

inline void python_free(void* ctx, void* p) noexcept {
    auto* h = static_cast<python_hook*>(ctx);
    if (MEMLENS_UNLIKELY(h->tabled)) return python_table_free(h, p);
    python_header head{};
    if (p && python_read_header(p, head)) {
        python_uncount(head);
        python_forget(p, head);
        python_header_of(p)->tag = 0;
        p = python_base(p, head);
    }
    guard quiet;
    h->previous.free(h->previous.ctx, p);
}

inline python_hook* python_hook_at(std::size_t i, const PyMemAllocatorEx& a) noexcept {
    auto* h = static_cast<python_hook*>(a.ctx);
    const bool ours = h >= python_hooks[i] && h < python_hooks[i] + python_hooks_used[i] &&
                      a.malloc == &python_malloc && a.calloc == &python_calloc &&
                      a.realloc == &python_realloc && a.free == &python_free;
    return ours ? h : nullptr;
}

// Whether domain `i`'s allocator is a counting memlens hook.
inline bool python_hook_current(std::size_t i) noexcept {
    PyMemAllocatorEx now{};
    PyMem_GetAllocator(python_domains[i], &now);
    const python_hook* h = python_hook_at(i, now);
    return h && h->counting.load(relaxed);
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

// A key no code outside memlens can guess; the clock and an address when the kernel has none.
inline std::uint64_t python_draw_key() noexcept {
    std::uint64_t key = 0;
    if (::getrandom(&key, sizeof key, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof key)) {
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        key = (static_cast<std::uint64_t>(now.tv_nsec) << 32) ^ static_cast<std::uint64_t>(now.tv_sec) ^
              reinterpret_cast<std::uintptr_t>(&now);
    }
    return key * 0x9e3779b97f4a7c15u | 1u;
}

// ---- pymalloc's arenas ----------------------------------------------------------------------

// The arenas counted, by address, so that an arena from before the hooks is not counted out
// when it is freed. Open addressing over pages memlens maps itself; CPython takes and returns
// arenas with the GIL held, so one thread at a time touches it.
struct python_arena_entry {
    std::uintptr_t address;  // 0: empty; 1: removed
    std::size_t size;
};

struct python_arena_hook {
    PyObjectArenaAllocator previous;
    bool installed;
    std::atomic<bool> counting;
    runtime_pool_counters* pool;
    python_arena_entry* entries;
    std::size_t capacity;  // a power of two, or 0
    std::size_t used;      // entries not empty, removed ones included
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline python_arena_hook python_arena{};

inline std::size_t python_arena_home(std::uintptr_t address, std::size_t capacity) noexcept {
    return static_cast<std::size_t>(((address >> 12) * 0x9e3779b97f4a7c15u) >> 20) & (capacity - 1);
}

// Rehashes into twice the room (4,096 entries at first); false when no pages can be mapped.
inline bool python_arena_grow(python_arena_hook& h) noexcept {
    const std::size_t capacity = h.capacity ? h.capacity * 2 : 4096;
    auto* entries = static_cast<python_arena_entry*>(map_pages(capacity * sizeof(python_arena_entry)));
    if (!entries) return false;
    std::size_t used = 0;
    for (std::size_t i = 0; i < h.capacity; ++i) {
        const python_arena_entry e = h.entries[i];
        if (e.address <= 1) continue;
        std::size_t at = python_arena_home(e.address, capacity);
        while (entries[at].address != 0) at = (at + 1) & (capacity - 1);
        entries[at] = e;
        ++used;
    }
    if (h.entries) unmap_pages(h.entries, h.capacity * sizeof(python_arena_entry));
    h.entries = entries;
    h.capacity = capacity;
    h.used = used;
    return true;
}

inline bool python_arena_insert(python_arena_hook& h, std::uintptr_t address, std::size_t size) noexcept {
    if ((h.used + 1) * 2 > h.capacity && !python_arena_grow(h)) return false;
    std::size_t at = python_arena_home(address, h.capacity);
    while (h.entries[at].address > 1) at = (at + 1) & (h.capacity - 1);
    if (h.entries[at].address == 0) ++h.used;
    h.entries[at] = {address, size};
    return true;
}

// The size the arena at `address` was counted with, taken out of the table; 0 when not counted.
inline std::size_t python_arena_erase(python_arena_hook& h, std::uintptr_t address) noexcept {
    if (h.capacity == 0) return 0;
    for (std::size_t at = python_arena_home(address, h.capacity);; at = (at + 1) & (h.capacity - 1)) {
        python_arena_entry& e = h.entries[at];
        if (e.address == 0) return 0;
        if (e.address == address) {
            e.address = 1;
            return e.size;
        }
    }
}

// The allocator under the hook maps each piece inside memlens's guard, so that the preload
// library's mmap source leaves it to this pool: each byte is counted once. pymalloc asks from
// inside the Python hooks, already in the guard; the interpreter's frame-stack chunks come here
// directly.
inline void* python_arena_alloc(void* ctx, std::size_t size) noexcept {
    auto& h = *static_cast<python_arena_hook*>(ctx);
    void* p;
    {
        guard quiet;
        p = h.previous.alloc(h.previous.ctx, size);
    }
    if (p && h.pool && h.counting.load(relaxed) &&
        python_arena_insert(h, reinterpret_cast<std::uintptr_t>(p), size)) {
        count_pool_alloc(*h.pool, size);
    }
    return p;
}

inline void python_arena_free(void* ctx, void* p, std::size_t size) noexcept {
    auto& h = *static_cast<python_arena_hook*>(ctx);
    if (p && h.pool) {
        if (const std::size_t counted = python_arena_erase(h, reinterpret_cast<std::uintptr_t>(p))) {
            count_pool_free(*h.pool, counted);
        }
    }
    guard quiet;
    h.previous.free(h.previous.ctx, p, size);
}

// Wraps the arena allocator once; later installs only turn the counting back on. An arena
// allocator set by the host after this one is left alone.
inline void python_arenas_start() noexcept {
    python_arena_hook& h = python_arena;
    if (!h.installed) {
        h.pool = runtime_pool("python.arenas");
        PyObject_GetArenaAllocator(&h.previous);
        PyObjectArenaAllocator mine{&h, &python_arena_alloc, &python_arena_free};
        PyObject_SetArenaAllocator(&mine);
        h.installed = true;
    }
    h.counting.store(true, relaxed);
}

// Stops counting and counts out every arena still counted, as the domains' live blocks are.
inline void python_arenas_stop() noexcept {
    python_arena_hook& h = python_arena;
    h.counting.store(false, relaxed);
    for (std::size_t i = 0; i < h.capacity; ++i) {
        python_arena_entry& e = h.entries[i];
        if (e.address > 1 && h.pool) count_pool_free(*h.pool, e.size);
        e = {0, 0};
    }
    h.used = 0;
}

// Counts every live block of the current generation as freed: first those in the table, then
// the headered ones, which are all the python.* domains count besides. One free per block, as
// each would have been.
inline void python_drain() noexcept {
    python_drain_table();
    for (const auto& slot_of : python_slots) {
        const std::uint32_t slot = slot_of.load(relaxed);
        const memory_stats figures = read_slot(slot);
        const std::uint64_t live = figures.allocs - figures.frees;
        if (live == 0) continue;
        count_free(figures.current, slot);
        for (std::uint64_t i = 1; i < live; ++i) count_free(0, slot);
    }
}

}  // namespace detail

/// Wraps the allocators of CPython's RAW, MEM and OBJ domains with hooks that count each into
/// the memlens domain "python.raw", "python.mem" or "python.obj", and pass every call on to the
/// allocator that was there (pymalloc, malloc, the debug hooks or the host's). Each block counted
/// carries a 16-byte header in front of it. Call it after Py_PreInitialize (or Py_Initialize),
/// which resets the allocators when PYTHONMALLOC is set, and with the GIL held or before any
/// thread allocates through RAW. Installed already: does nothing. Blocks allocated before are
/// freed and reallocated through the hooks uncounted. Hooks that remove_python_hooks() left in
/// place count again; a domain whose allocator is another's by then is wrapped anew. In sites
/// mode, and for sampled allocations, stacks of MEM and OBJ allocations hold the Python frames
/// too (see set_python_stack_depth). pymalloc's arenas, which the MEM and OBJ blocks are carved
/// from, count in the runtime pool "python.arenas" (snapshot::pools), not in a domain: each byte
/// counts once.
/// Returns false, installing nothing, when a domain cannot be named or has been wrapped anew
/// too often (16 times). Does not allocate through the hooks.
inline bool install_python_hooks() noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    if (python_counting) return true;
    static bool started = false;
    if (!started) {
        ::pthread_atfork(&python_lock_shards, &python_unlock_shards, &python_unlock_shards);
        python_key.store(python_draw_key(), relaxed);
        started = true;
        python_start_frames();
    }
    PyMemAllocatorEx now[3];
    python_hook* found[3] = {};
    for (std::size_t i = 0; i < 3; ++i) {
        const domain d = domain::named(python_domain_names[i]);
        if (d.name() != python_domain_names[i]) return false;
        python_slots[i].store(d.id(), relaxed);
        // tracemalloc traces these domains itself.
        handoff_skip_domain(d.id());
        PyMem_GetAllocator(python_domains[i], &now[i]);
        found[i] = python_hook_at(i, now[i]);
        if (!found[i] && python_hooks_used[i] == python_hook_limit) {
            report_error("install_python_hooks: the Python allocators have been wrapped between "
                         "removals and installs of memlens's hooks too often; nothing installed");
            return false;
        }
    }
    for (std::size_t i = 0; i < 3; ++i) {
        python_hook* h = found[i];
        if (!h) {
            h = &python_hooks[i][python_hooks_used[i]++];
            h->previous = now[i];
            h->domain_index = static_cast<std::uint32_t>(i);
            h->tabled = python_hooks_used[i] > 1;
            h->counting.store(true, relaxed);
            PyMemAllocatorEx mine{h, &python_malloc, &python_calloc, &python_realloc, &python_free};
            PyMem_SetAllocator(python_domains[i], &mine);
        }
        h->counting.store(true, relaxed);
    }
    python_arenas_start();
    python_counting = true;
    return true;
}

/// Stops the counting of install_python_hooks() and counts the blocks it counted, still live,
/// as freed: the python.* figures drop to zero live bytes, and later frees of those blocks are
/// not counted. The hooks stay as the domains' allocators, passing calls on uncounted: the
/// blocks they headered must come back to them to have the header taken off (tracemalloc.stop()
/// likewise leaves what it wrapped in place). When another party has wrapped the hooks of some
/// domain since (tracemalloc.start(), say), nothing changes, the error handler is told, and the
/// result is false. Not installed: does nothing, true. Call it with the GIL held and while no
/// other thread allocates through RAW, whose calls do not wait for the GIL.
inline bool remove_python_hooks() noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    if (!python_counting) return true;
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
        PyMemAllocatorEx now{};
        PyMem_GetAllocator(python_domains[i], &now);
        python_hook_at(i, now)->counting.store(false, relaxed);
    }
    python_generation.fetch_add(1, relaxed);
    python_drain();
    python_arenas_stop();
    python_counting = false;
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
    return detail::python_counting;
}

/// The memlens domain that counts CPython domain `d`: "python.raw", "python.mem" or
/// "python.obj". Thread safe; does not allocate; takes a lock.
inline domain python_domain(PyMemAllocatorDomain d) noexcept {
    const std::size_t i = d == PYMEM_DOMAIN_RAW ? 0 : d == PYMEM_DOMAIN_MEM ? 1 : 2;
    return domain::named(detail::python_domain_names[i]);
}

namespace detail {

// gc.callbacks holds this copy's callable while it watches; the "start" phase's clock reading
// waits here for "stop". Both are touched only with the GIL held.
MEMLENS_DETAIL_PER_COPY inline PyObject* python_gc_callable = nullptr;
MEMLENS_DETAIL_PER_COPY inline std::uint64_t python_gc_started = 0;

inline std::uint64_t python_gc_clock() noexcept {
    ::timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::uint64_t>(t.tv_sec) * 1000000000u + static_cast<std::uint64_t>(t.tv_nsec);
}

inline std::uint64_t python_gc_figure(PyObject* info, const char* key) noexcept {
    PyObject* value = PyDict_Check(info) ? PyDict_GetItemString(info, key) : nullptr;
    if (!value || !PyLong_Check(value)) return 0;
    const unsigned long long n = PyLong_AsUnsignedLongLong(value);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return n;
}

// The thresholds can change at any time (gc.set_threshold), so each collection reads them.
inline void python_gc_read_thresholds() noexcept {
    PyObject* gc = PyImport_ImportModule("gc");
    PyObject* limits = gc ? PyObject_CallMethod(gc, "get_threshold", nullptr) : nullptr;
    if (limits && PyTuple_Check(limits)) {
        const Py_ssize_t n = PyTuple_GET_SIZE(limits);
        for (Py_ssize_t g = 0; g < n && g < static_cast<Py_ssize_t>(collector_generations); ++g) {
            const long long limit = PyLong_AsLongLong(PyTuple_GET_ITEM(limits, g));
            if (!PyErr_Occurred()) collector.generation[g].threshold.store(limit, relaxed);
        }
    }
    Py_XDECREF(limits);
    Py_XDECREF(gc);
    PyErr_Clear();
}

// gc calls this with ("start" | "stop", {"generation", "collected", "uncollectable"}). An
// exception raised here would surface in unrelated code, so none is.
inline PyObject* python_gc_phase(PyObject*, PyObject* const* args, Py_ssize_t nargs) noexcept {
    if (nargs == 2 && PyUnicode_Check(args[0])) {
        if (PyUnicode_CompareWithASCIIString(args[0], "start") == 0) {
            python_gc_started = python_gc_clock();
        } else if (PyUnicode_CompareWithASCIIString(args[0], "stop") == 0 && python_gc_started != 0) {
            const std::uint64_t took = python_gc_clock() - python_gc_started;
            python_gc_started = 0;
            python_gc_read_thresholds();
            count_collection(static_cast<std::uint32_t>(python_gc_figure(args[1], "generation")),
                             python_gc_figure(args[1], "collected"),
                             python_gc_figure(args[1], "uncollectable"), took);
        }
    }
    PyErr_Clear();
    Py_RETURN_NONE;
}

MEMLENS_DETAIL_PER_COPY inline PyMethodDef python_gc_method{
    "memlens_gc_callback", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&python_gc_phase)),
    METH_FASTCALL, "Counts the collections of the gc module into memlens's snapshots."};

inline PyObject* python_gc_callbacks() noexcept {
    PyObject* gc = PyImport_ImportModule("gc");
    PyObject* callbacks = gc ? PyObject_GetAttrString(gc, "callbacks") : nullptr;
    Py_XDECREF(gc);
    if (callbacks && !PyList_Check(callbacks)) Py_CLEAR(callbacks);
    return callbacks;
}

// The short name of `type`, as type(o).__name__ gives it.
inline const char* python_type_name(PyTypeObject* type) noexcept {
    const char* name = type->tp_name;
    const char* dot = std::strrchr(name, '.');
    return dot ? dot + 1 : name;
}

}  // namespace detail

/// Counts each collection of Python's cyclic garbage collector (through gc.callbacks): per
/// generation, collections, objects collected and uncollectable, the time they took and the
/// thresholds, which snapshots then carry (snapshot::collector) into every report. Call it with
/// the GIL held after the interpreter is initialised. Watched already, by this or another copy
/// of memlens in the process: does nothing, true. Returns false, changing nothing, when the gc
/// module cannot be reached (the Python error is cleared).
inline bool watch_python_gc() noexcept {
    using namespace detail;
    if (collector.watched.load(std::memory_order_acquire)) return true;
    PyObject* callbacks = python_gc_callbacks();
    PyObject* callable = callbacks ? PyCFunction_New(&python_gc_method, nullptr) : nullptr;
    const bool added = callable && PyList_Append(callbacks, callable) == 0;
    Py_XDECREF(callbacks);
    if (!added) {
        Py_XDECREF(callable);
        PyErr_Clear();
        return false;
    }
    python_gc_callable = callable;
    python_gc_read_thresholds();
    collector.generations.store(3, std::memory_order_release);
    collector.watched.store(true, std::memory_order_release);
    return true;
}

/// Takes out of gc.callbacks what watch_python_gc() of this copy put there. The figures counted
/// so far stay in later snapshots. GIL held. Not watching: does nothing.
inline void unwatch_python_gc() noexcept {
    using namespace detail;
    if (!python_gc_callable) return;
    if (PyObject* callbacks = python_gc_callbacks()) {
        const Py_ssize_t at = PySequence_Index(callbacks, python_gc_callable);
        if (at >= 0) PySequence_DelItem(callbacks, at);
        Py_DECREF(callbacks);
    }
    PyErr_Clear();
    Py_CLEAR(python_gc_callable);
    python_gc_started = 0;
    collector.watched.store(false, std::memory_order_release);
}

/// One Python type and how many of its objects the garbage collector tracks.
struct python_type_count {
    std::string name;           ///< the type's __name__
    std::uint64_t objects = 0;  ///< its objects among gc.get_objects()
};

namespace detail {

// gc.get_objects() tallied by type: only objects the collector tracks (containers and instances
// of classes; not ints, floats or most strings), as objgraph counts them.
inline std::vector<python_type_count> python_tally() {
    std::vector<python_type_count> rows;
    PyObject* gc = PyImport_ImportModule("gc");
    PyObject* objects = gc ? PyObject_CallMethod(gc, "get_objects", nullptr) : nullptr;
    Py_XDECREF(gc);
    if (!objects || !PyList_Check(objects)) {
        Py_XDECREF(objects);
        PyErr_Clear();
        report_error("python_object_counts: gc.get_objects() failed; no counts");
        return rows;
    }
    {
        // The tally's own memory stays out of the program's figures; the list does not, since
        // Python's hooks counted it and must count its free.
        guard quiet;
        std::unordered_map<PyTypeObject*, std::uint64_t> by_type;
        for (Py_ssize_t i = 0, n = PyList_GET_SIZE(objects); i < n; ++i) {
            ++by_type[Py_TYPE(PyList_GET_ITEM(objects, i))];
        }
        std::unordered_map<std::string_view, std::uint64_t> by_name;
        for (const auto& entry : by_type) by_name[python_type_name(entry.first)] += entry.second;
        for (const auto& entry : by_name) rows.push_back({std::string(entry.first), entry.second});
        std::sort(rows.begin(), rows.end(), [](const python_type_count& a, const python_type_count& b) {
            return a.objects != b.objects ? a.objects > b.objects : a.name < b.name;
        });
    }
    Py_DECREF(objects);
    return rows;
}

}  // namespace detail

/// Up to `limit` Python types by how many of their objects the garbage collector tracks, most
/// first (objgraph's most_common_types): the objects of gc.get_objects(), so containers and
/// class instances, not ints, floats or most strings. Types that share a __name__ share a row.
/// GIL held. Allocates.
inline std::vector<python_type_count> python_object_counts(std::size_t limit = SIZE_MAX) {
    std::vector<python_type_count> rows = detail::python_tally();
    if (rows.size() > limit) rows.resize(limit);
    return rows;
}

/// The Python objects of each type at one moment, to see which types grew since then
/// (objgraph's show_growth), as type_checkpoint does for counted C++ types. GIL held.
class python_object_checkpoint {
public:
    /// Counts every type's objects now.
    python_object_checkpoint() : counts_(detail::python_tally()) {}

    /// Counts every type's objects now, replacing the checkpoint.
    void reset() { counts_ = detail::python_tally(); }

    /// Up to `limit` types with more objects now than at the checkpoint, the largest rise first
    /// (types new since count from 0). Does not move the checkpoint. Allocates.
    std::vector<type_growth> growth(std::size_t limit = 10) const {
        const std::vector<python_type_count> counts = detail::python_tally();
        detail::guard quiet;
        std::vector<type_growth> rows;
        for (const python_type_count& now : counts) {
            std::uint64_t before = 0;
            for (const python_type_count& then : counts_) {
                if (then.name == now.name) before = then.objects;
            }
            if (now.objects > before) rows.push_back({now.name, now.objects, now.objects - before});
        }
        std::sort(rows.begin(), rows.end(), [](const type_growth& a, const type_growth& b) {
            return a.growth != b.growth ? a.growth > b.growth : a.name < b.name;
        });
        if (rows.size() > limit) rows.resize(limit);
        return rows;
    }

private:
    std::vector<python_type_count> counts_;
};

/// The tracemalloc domain that start_tracemalloc_forwarding() uses unless told another: "meml".
constexpr unsigned int tracemalloc_native_domain = 0x6d656d6cu;

/// What start_tracemalloc_forwarding() has handed over since the process started.
struct tracemalloc_forwarding_figures {
    std::uint64_t queued = 0;   ///< allocations and frees queued by the hooks
    std::uint64_t handed = 0;   ///< of those, given to tracemalloc (PyTraceMalloc_Track or _Untrack)
    std::uint64_t ignored = 0;  ///< taken while tracemalloc was not tracing, so not kept by it
    std::uint64_t dropped = 0;  ///< lost because the queue was full: tracemalloc's figures are then off
};

namespace detail {

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<unsigned int> python_handoff_domain{
    tracemalloc_native_domain};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint64_t> python_handed{0};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<std::uint64_t> python_handoff_ignored{0};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline bool python_forwarding = false;  // under python_install_lock

// CPython 3.11's <tracemalloc.h> declares these without C linkage, so a C++ unit cannot link
// against them by name: they are looked up when forwarding starts.
using python_track_fn = int (*)(unsigned int, std::uintptr_t, std::size_t);
using python_untrack_fn = int (*)(unsigned int, std::uintptr_t);
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<python_track_fn> python_track{nullptr};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline std::atomic<python_untrack_fn> python_untrack{nullptr};

inline std::size_t python_flush_handoff() noexcept {
    // Cleared first: an event queued from here on wakes the next drain.
    handoff.wake_pending.store(false, std::memory_order_release);
    const unsigned int domain = python_handoff_domain.load(relaxed);
    const python_track_fn track = python_track.load(std::memory_order_acquire);
    const python_untrack_fn untrack = python_untrack.load(std::memory_order_acquire);
    if (!track || !untrack) return 0;
    handoff_event batch[256];
    std::size_t total = 0;
    handing_off = true;
    while (const std::size_t n = take_handoff(batch, sizeof batch / sizeof batch[0])) {
        for (std::size_t i = 0; i < n; ++i) {
            const handoff_event& e = batch[i];
            const int result = e.size == handoff_freed ? untrack(domain, e.address)
                                                        : track(domain, e.address, static_cast<std::size_t>(e.size));
            if (result == -2) python_handoff_ignored.fetch_add(1, relaxed);
        }
        total += n;
    }
    handing_off = false;
    python_handed.fetch_add(total, relaxed);
    return total;
}

inline int python_handoff_pending(void*) noexcept {
    python_flush_handoff();
    return 0;
}


inline void python_add_drain() noexcept {
    if (Py_AddPendingCall(&python_handoff_pending, nullptr) != 0) {
        // The interpreter's pending calls are full: the next queued event tries again.
        handoff.wake_pending.store(false, std::memory_order_release);
    }
}

// The hooks' wake-up, from any thread and without the GIL: Py_AddPendingCall takes neither the
// GIL nor memory. The interpreter's main thread runs the drain at its next check for pending calls.
inline void python_handoff_wake() noexcept {
    python_add_drain();
    if (PY_VERSION_HEX < 0x030C0000 && PyThread_get_thread_ident() != python_main_thread.load(relaxed)) {
        python_nudge.store(true, std::memory_order_release);
    }
}

// From the MEM and OBJ hooks, which run with the GIL: on the main thread, adds the drain again
// so that 3.11 notices it.
inline void python_repeat_wake() noexcept {
    if (PyThread_get_thread_ident() != python_main_thread.load(relaxed)) return;
    if (python_nudge.exchange(false, std::memory_order_acq_rel)) python_add_drain();
}

}  // namespace detail

/// Hands the native allocations and frees that memlens sees (operator new, the malloc family
/// under the preload library, tracking allocators and resources: every domain but CPython's and
/// numpy's, which tracemalloc traces already) to tracemalloc, as domain `domain`, so that a
/// Python developer running tracemalloc sees the C++ side too: filter a tracemalloc snapshot with
/// tracemalloc.DomainFilter(True, domain). The hooks never call tracemalloc, which needs the GIL:
/// they queue each event (up to 65,536 waiting; more are dropped and counted), and the
/// interpreter's main thread hands them over at its next check for pending calls, or
/// flush_tracemalloc_forwarding() does where the caller holds the GIL. tracemalloc records the
/// Python traceback of that moment, not of the allocation. While forwarding, every allocation is
/// recorded in the live table, as a leak check does (the per-block mode's cost). Call it with
/// the GIL held, after the interpreter is initialised; stop before Py_Finalize. Already on: the
/// domain changes for later events, true. False when the queue's pages cannot be mapped or the
/// interpreter does not export tracemalloc's C API.
inline bool start_tracemalloc_forwarding(unsigned int domain = tracemalloc_native_domain) noexcept {
    using namespace detail;
    lock_guard hold(python_install_lock);
    python_handoff_domain.store(domain, relaxed);
    if (python_forwarding) return true;
    if (!python_track.load(relaxed)) {
        python_untrack.store(reinterpret_cast<python_untrack_fn>(::dlsym(RTLD_DEFAULT, "PyTraceMalloc_Untrack")),
                             relaxed);
        python_track.store(reinterpret_cast<python_track_fn>(::dlsym(RTLD_DEFAULT, "PyTraceMalloc_Track")),
                           std::memory_order_release);
    }
    if (!python_track.load(relaxed) || !python_untrack.load(relaxed)) {
        report_error("start_tracemalloc_forwarding: the interpreter does not export PyTraceMalloc_Track; "
                     "nothing is handed over");
        return false;
    }
    {
        lock_guard queue(handoff.lock);
        if (!handoff.ring) {
            handoff.ring = static_cast<handoff_event*>(map_pages(handoff_capacity * sizeof(handoff_event)));
        }
        if (!handoff.ring) {
            report_error("start_tracemalloc_forwarding: cannot map the queue's pages; nothing is handed over");
            return false;
        }
    }
    if (PyObject* threading = PyImport_ImportModule("threading")) {
        if (PyObject* main = PyObject_CallMethod(threading, "main_thread", nullptr)) {
            if (PyObject* ident = PyObject_GetAttrString(main, "ident")) {
                python_main_thread.store(PyLong_AsUnsignedLong(ident), relaxed);
                Py_DECREF(ident);
            }
            Py_DECREF(main);
        }
        Py_DECREF(threading);
    }
    PyErr_Clear();
    handoff.wake.store(&python_handoff_wake, std::memory_order_release);
    change_recorders(1);
    handoff.on.store(true, std::memory_order_release);
    python_forwarding = true;
    return true;
}

/// Hands what is queued to tracemalloc now; returns how many events. GIL held. Events taken while
/// tracemalloc is not tracing are lost to it (tracemalloc_forwarding_figures::ignored).
inline std::size_t flush_tracemalloc_forwarding() noexcept { return detail::python_flush_handoff(); }

/// Stops start_tracemalloc_forwarding() after handing over what is queued. Blocks handed over
/// and freed later stay among tracemalloc's traces until tracemalloc.clear_traces() or
/// tracemalloc.stop(). GIL held. Not forwarding: does nothing.
inline void stop_tracemalloc_forwarding() noexcept {
    using namespace detail;
    {
        lock_guard hold(python_install_lock);
        if (!python_forwarding) return;
        python_forwarding = false;
        handoff.on.store(false, std::memory_order_release);
        change_recorders(-1);
    }
    python_flush_handoff();
}

/// The events start_tracemalloc_forwarding() has queued, handed over, seen ignored and dropped.
inline tracemalloc_forwarding_figures tracemalloc_forwarding() noexcept {
    using namespace detail;
    tracemalloc_forwarding_figures f;
    f.queued = handoff.queued.load(relaxed);
    f.handed = python_handed.load(relaxed);
    f.ignored = python_handoff_ignored.load(relaxed);
    f.dropped = handoff.dropped.load(relaxed);
    return f;
}

MEMLENS_NAMESPACE_END
