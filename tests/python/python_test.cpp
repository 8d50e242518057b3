// Tests of sources/python.hpp in a program that embeds CPython. A program of its own: the
// interpreter it starts would disturb the main suite. CTest and meson run it three times: with
// pymalloc, PYTHONMALLOC=malloc and PYTHONMALLOC=debug. The runner is the suite's (main.cpp); a
// listener starts the interpreter before the first test and finalizes it after the last.
#include <memlens/sources/python.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/sources/record.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

// For the listener's base class.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

// CPython 3.11's tracemalloc never frees its traceback copies (python/cpython#121390, fixed in
// 3.12 and 3.13 only), so LeakSanitizer reports them after the tracemalloc test. Their stacks
// are libpython's alone, without symbols, hence a suppression by library.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpython3"; }

namespace {

constexpr PyMemAllocatorDomain all_domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                 PYMEM_DOMAIN_OBJ};

// What the listener saw right after Py_InitializeEx, the hooks having been installed between
// pre-initialisation and initialisation.
bool hooks_survived_initialization = false;
memlens::memory_stats obj_after_initialization{};

memlens::memory_stats of(PyMemAllocatorDomain d) { return memlens::stats(memlens::python_domain(d)); }

// Figures of one domain since `before`; peak is the highest live bytes above before.current,
// valid when reset_peak() ran right after `before` was read.
struct change {
    std::uint64_t allocs;
    std::uint64_t frees;
    std::size_t total;
    std::int64_t current;
    std::int64_t peak;
};

change since(const memlens::memory_stats& before, PyMemAllocatorDomain d) {
    const memlens::memory_stats now = of(d);
    return {now.allocs - before.allocs, now.frees - before.frees, now.total - before.total,
            static_cast<std::int64_t>(now.current) - static_cast<std::int64_t>(before.current),
            static_cast<std::int64_t>(now.peak) - static_cast<std::int64_t>(before.current)};
}

bool same_allocator(const PyMemAllocatorEx& a, const PyMemAllocatorEx& b) {
    return a.ctx == b.ctx && a.malloc == b.malloc && a.calloc == b.calloc &&
           a.realloc == b.realloc && a.free == b.free;
}

std::string last_error;
void keep_error(const char* message) noexcept { last_error = message; }

// A second party that wraps memlens's OBJ hooks, as tracemalloc.start() would.
PyMemAllocatorEx wrapped{};
void* wrapper_malloc(void*, std::size_t n) { return wrapped.malloc(wrapped.ctx, n); }
void* wrapper_calloc(void*, std::size_t n, std::size_t s) { return wrapped.calloc(wrapped.ctx, n, s); }
void* wrapper_realloc(void*, void* p, std::size_t n) { return wrapped.realloc(wrapped.ctx, p, n); }
void wrapper_free(void*, void* p) { wrapped.free(wrapped.ctx, p); }

struct traced {
    Py_ssize_t current;
    Py_ssize_t peak;
};

// tracemalloc computes both figures before it builds the tuple that returns them.
traced read_traced(PyObject* get_traced_memory) {
    PyObject* pair = PyObject_CallNoArgs(get_traced_memory);
    REQUIRE(pair);
    const traced out{PyLong_AsSsize_t(PyTuple_GetItem(pair, 0)), PyLong_AsSsize_t(PyTuple_GetItem(pair, 1))};
    Py_DECREF(pair);
    return out;
}

void call(PyObject* function) {
    PyObject* result = PyObject_CallNoArgs(function);
    REQUIRE(result);
    Py_DECREF(result);
}

// How many of gc.callbacks are memlens's.
long memlens_callbacks() {
    PyObject* gc = PyImport_ImportModule("gc");
    REQUIRE(gc);
    PyObject* callbacks = PyObject_GetAttrString(gc, "callbacks");
    Py_DECREF(gc);
    REQUIRE(callbacks);
    long found = 0;
    for (Py_ssize_t i = 0; i < PyList_Size(callbacks); ++i) {
        PyObject* name = PyObject_GetAttrString(PyList_GetItem(callbacks, i), "__name__");
        if (name && PyUnicode_CompareWithASCIIString(name, "memlens_gc_callback") == 0) ++found;
        Py_XDECREF(name);
        PyErr_Clear();
    }
    Py_DECREF(callbacks);
    return found;
}

// An arena allocator under memlens's that counts on its own what CPython takes and returns
// through it (pymalloc's 1 MiB arenas and the interpreter's frame-stack chunks), from the last
// reset on: as memlens does after an install, a piece from before is not counted out. The
// listener puts it in before memlens's hooks.
PyObjectArenaAllocator underlying_arenas{};
struct arena_counts {
    std::uint64_t allocs = 0;
    std::uint64_t frees = 0;
    std::uint64_t current = 0;
    std::uint64_t megabyte_pieces = 0;
    std::uintptr_t live[8192] = {};
} counted_arenas;

void* counting_arena_alloc(void*, std::size_t size) {
    void* p = underlying_arenas.alloc(underlying_arenas.ctx, size);
    if (!p) return p;
    for (std::uintptr_t& slot : counted_arenas.live) {
        if (slot != 0) continue;
        slot = reinterpret_cast<std::uintptr_t>(p);
        ++counted_arenas.allocs;
        counted_arenas.current += size;
        if (size == (1u << 20)) ++counted_arenas.megabyte_pieces;
        break;
    }
    return p;
}

void counting_arena_free(void*, void* p, std::size_t size) {
    for (std::uintptr_t& slot : counted_arenas.live) {
        if (p == nullptr || slot != reinterpret_cast<std::uintptr_t>(p)) continue;
        slot = 0;
        ++counted_arenas.frees;
        counted_arenas.current -= size;
        break;
    }
    underlying_arenas.free(underlying_arenas.ctx, p, size);
}

const memlens::domain_figures* arena_pool(const memlens::snapshot& s) {
    for (const memlens::domain_figures& p : s.pools) {
        if (p.name == "python.arenas") return &p;
    }
    return nullptr;
}

}  // namespace

// The Python configuration reads PYTHONMALLOC; pre-initialisation sets the allocators it names,
// so the hooks go in after it and before the interpreter starts allocating.
struct python_host : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;

    void testRunStarting(const Catch::TestRunInfo&) override {
        PyPreConfig pre;
        PyPreConfig_InitPythonConfig(&pre);
        const PyStatus status = Py_PreInitialize(&pre);
        if (PyStatus_Exception(status)) Py_ExitStatusException(status);
        PyObject_GetArenaAllocator(&underlying_arenas);
        PyObjectArenaAllocator counting{nullptr, &counting_arena_alloc, &counting_arena_free};
        PyObject_SetArenaAllocator(&counting);
        const bool installed = memlens::install_python_hooks();
        Py_InitializeEx(0);
        hooks_survived_initialization = installed;
        for (int i = 0; i < 3; ++i) {
            hooks_survived_initialization = hooks_survived_initialization &&
                                            memlens::detail::python_hook_current(static_cast<std::size_t>(i));
        }
        obj_after_initialization = of(PYMEM_DOMAIN_OBJ);
    }

    // A failure here comes after Catch2 has reported: the exit status and the error handler's
    // line tell it.
    void testRunEnded(const Catch::TestRunStats&) override {
        if (memlens::remove_python_hooks() && Py_FinalizeEx() == 0) return;
        std::fflush(nullptr);
        std::_Exit(1);
    }
};

CATCH_REGISTER_LISTENER(python_host)

TEST_CASE("hooks installed after pre-initialisation stay in place through Py_Initialize") {
    CHECK(hooks_survived_initialization);
    CHECK(obj_after_initialization.allocs > 0);
}

TEST_CASE("each CPython domain counts exactly the sizes asked for") {
    REQUIRE(memlens::install_python_hooks());
    memlens::set_peak_mode(memlens::peak_mode::exact);

    SECTION("RAW: malloc, calloc, realloc, free, and a null free") {
        const memlens::memory_stats raw0 = of(PYMEM_DOMAIN_RAW);
        memlens::reset_peak();
        void* a = PyMem_RawMalloc(100);
        void* b = PyMem_RawCalloc(10, 30);
        a = PyMem_RawRealloc(a, 250);
        PyMem_RawFree(b);
        PyMem_RawFree(nullptr);
        REQUIRE(a);
        const change c = since(raw0, PYMEM_DOMAIN_RAW);
        CHECK(c.allocs == 3);
        CHECK(c.frees == 2);
        CHECK(c.total == 100 + 300 + 250);
        CHECK(c.current == 250);
        CHECK(c.peak == 100 + 300 + 250 - 100);
        PyMem_RawFree(a);
        CHECK(since(raw0, PYMEM_DOMAIN_RAW).current == 0);
    }

    SECTION("MEM: blocks above pymalloc's limit count once, in MEM, not again in RAW") {
        const memlens::memory_stats raw0 = of(PYMEM_DOMAIN_RAW);
        const memlens::memory_stats mem0 = of(PYMEM_DOMAIN_MEM);
        memlens::reset_peak();
        void* small = PyMem_Malloc(24);
        void* large = PyMem_Malloc(1000);
        small = PyMem_Realloc(small, 600);
        PyMem_Free(large);
        REQUIRE(small);
        const change c = since(mem0, PYMEM_DOMAIN_MEM);
        CHECK(c.allocs == 3);
        CHECK(c.frees == 2);
        CHECK(c.total == 24 + 1000 + 600);
        CHECK(c.current == 600);
        CHECK(c.peak == 24 + 1000 - 24 + 600);
        PyMem_Free(small);
        CHECK(since(mem0, PYMEM_DOMAIN_MEM).current == 0);
        const change raw = since(raw0, PYMEM_DOMAIN_RAW);
        CHECK(raw.allocs == 0);
        CHECK(raw.frees == 0);
    }

    SECTION("OBJ: small, zero-sized, large and overflowing requests") {
        const memlens::memory_stats raw0 = of(PYMEM_DOMAIN_RAW);
        const memlens::memory_stats obj0 = of(PYMEM_DOMAIN_OBJ);
        memlens::reset_peak();
        void* small = PyObject_Malloc(40);
        void* empty = PyObject_Malloc(0);
        void* large = PyObject_Calloc(3, 2000);
        void* refused = PyObject_Calloc(SIZE_MAX / 2 + 1, 2);
        REQUIRE(small);
        REQUIRE(empty);
        REQUIRE(large);
        CHECK(refused == nullptr);
        CHECK(static_cast<unsigned char*>(large)[5999] == 0);
        PyObject_Free(small);
        PyObject_Free(empty);
        PyObject_Free(large);
        const change c = since(obj0, PYMEM_DOMAIN_OBJ);
        CHECK(c.allocs == 3);
        CHECK(c.frees == 3);
        CHECK(c.total == 40 + 0 + 6000);
        CHECK(c.current == 0);
        CHECK(c.peak == 6040);
        const change raw = since(raw0, PYMEM_DOMAIN_RAW);
        CHECK(raw.allocs == 0);
        CHECK(raw.frees == 0);
    }
    memlens::set_peak_mode(memlens::peak_mode::batched);
}

TEST_CASE("blocks allocated before the hooks are freed and reallocated through them uncounted") {
    REQUIRE(memlens::remove_python_hooks());
    void* raw_freed = PyMem_RawMalloc(64);
    void* raw_grown = PyMem_RawMalloc(64);
    void* mem_shrunk = PyMem_Malloc(48);
    void* obj_freed = PyObject_Malloc(32);
    void* obj_grown = PyObject_Malloc(700);
    std::memset(raw_grown, 7, 64);
    std::memset(obj_grown, 9, 700);
    REQUIRE(memlens::install_python_hooks());

    const memlens::memory_stats raw0 = of(PYMEM_DOMAIN_RAW);
    const memlens::memory_stats mem0 = of(PYMEM_DOMAIN_MEM);
    const memlens::memory_stats obj0 = of(PYMEM_DOMAIN_OBJ);
    PyMem_RawFree(raw_freed);
    PyObject_Free(obj_freed);
    raw_grown = PyMem_RawRealloc(raw_grown, 5000);
    mem_shrunk = PyMem_Realloc(mem_shrunk, 16);
    obj_grown = PyObject_Realloc(obj_grown, 800);
    REQUIRE(raw_grown);
    REQUIRE(mem_shrunk);
    REQUIRE(obj_grown);
    CHECK(static_cast<unsigned char*>(raw_grown)[63] == 7);
    CHECK(static_cast<unsigned char*>(obj_grown)[699] == 9);

    const change raw = since(raw0, PYMEM_DOMAIN_RAW);
    const change mem = since(mem0, PYMEM_DOMAIN_MEM);
    const change obj = since(obj0, PYMEM_DOMAIN_OBJ);
    CHECK(raw.allocs == 1);
    CHECK(raw.frees == 0);
    CHECK(raw.current == 5000);
    CHECK(mem.allocs == 1);
    CHECK(mem.frees == 0);
    CHECK(mem.current == 16);
    CHECK(obj.allocs == 1);
    CHECK(obj.frees == 0);
    CHECK(obj.current == 800);

    PyMem_RawFree(raw_grown);
    PyMem_Free(mem_shrunk);
    PyObject_Free(obj_grown);
    for (PyMemAllocatorDomain d : {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ}) {
        const change after = since(d == PYMEM_DOMAIN_RAW ? raw0 : d == PYMEM_DOMAIN_MEM ? mem0 : obj0, d);
        CHECK(after.allocs == 1);
        CHECK(after.frees == 1);
        CHECK(after.current == 0);
    }
}

// The blocks the hooks gave a header must come back to them to lose it, so removal leaves them
// in place, passing calls on uncounted, and installing again turns the same hooks back on.
TEST_CASE("removal leaves the hooks passing calls on uncounted; installing turns them back on") {
    REQUIRE(memlens::remove_python_hooks());
    CHECK_FALSE(memlens::python_hooks_installed());
    PyMemAllocatorEx before[3];
    for (int i = 0; i < 3; ++i) PyMem_GetAllocator(all_domains[i], &before[i]);

    REQUIRE(memlens::install_python_hooks());
    CHECK(memlens::python_hooks_installed());
    PyMemAllocatorEx installed[3];
    for (int i = 0; i < 3; ++i) {
        PyMem_GetAllocator(all_domains[i], &installed[i]);
        CHECK(same_allocator(installed[i], before[i]));
        CHECK(memlens::detail::python_hook_current(static_cast<std::size_t>(i)));
    }
    // Installing again changes nothing: the hooks do not wrap themselves.
    REQUIRE(memlens::install_python_hooks());
    for (int i = 0; i < 3; ++i) {
        PyMemAllocatorEx again;
        PyMem_GetAllocator(all_domains[i], &again);
        CHECK(same_allocator(again, installed[i]));
    }

    auto* kept = static_cast<unsigned char*>(PyMem_Malloc(128));
    REQUIRE(kept);
    std::memset(kept, 5, 128);
    CHECK(of(PYMEM_DOMAIN_MEM).current >= 128);
    REQUIRE(memlens::remove_python_hooks());
    for (int i = 0; i < 3; ++i) {
        PyMemAllocatorEx after;
        PyMem_GetAllocator(all_domains[i], &after);
        CHECK(same_allocator(after, installed[i]));
        CHECK_FALSE(memlens::detail::python_hook_current(static_cast<std::size_t>(i)));
        // The live blocks are counted out at once; their frees will not count again.
        CHECK(of(all_domains[i]).current == 0);
    }
    const memlens::memory_stats mem_removed = of(PYMEM_DOMAIN_MEM);
    // New blocks pass through without a header; the headered one keeps its data when it moves.
    void* later = PyMem_Malloc(64);
    REQUIRE(later);
    later = PyMem_Realloc(later, 96);
    kept = static_cast<unsigned char*>(PyMem_Realloc(kept, 4000));
    REQUIRE(later);
    REQUIRE(kept);
    CHECK(kept[0] == 5);
    CHECK(kept[127] == 5);
    PyMem_Free(kept);
    PyMem_Free(later);
    const memlens::memory_stats mem_after = of(PYMEM_DOMAIN_MEM);
    CHECK(mem_after.allocs == mem_removed.allocs);
    CHECK(mem_after.frees == mem_removed.frees);
    CHECK(mem_after.current == 0);
    // Removing when not installed does nothing.
    CHECK(memlens::remove_python_hooks());
    REQUIRE(memlens::install_python_hooks());
}

// A block the hooks never saw, from the allocator under them, at the start of a page: the 16
// bytes before it are never read (the page before may not be mapped), and it passes through.
TEST_CASE("blocks from under the hooks are freed and reallocated through them, also at a page start") {
    REQUIRE(memlens::install_python_hooks());
    const PyMemAllocatorEx& under = memlens::detail::python_hooks[0][0].previous;
    const memlens::memory_stats raw0 = of(PYMEM_DOMAIN_RAW);
    void* freed = under.malloc(under.ctx, 40);
    auto* grown = static_cast<unsigned char*>(under.malloc(under.ctx, 40));
    REQUIRE((freed && grown));
    std::memset(grown, 3, 40);
    PyMem_RawFree(freed);
    grown = static_cast<unsigned char*>(PyMem_RawRealloc(grown, 3000));
    REQUIRE(grown);
    CHECK(grown[39] == 3);
    change c = since(raw0, PYMEM_DOMAIN_RAW);
    CHECK(c.allocs == 1);
    CHECK(c.frees == 0);
    CHECK(c.current == 3000);
    PyMem_RawFree(grown);
    CHECK(since(raw0, PYMEM_DOMAIN_RAW).current == 0);

    // The debug hooks' RAW functions take only their own blocks.
    const char* allocator = std::getenv("PYTHONMALLOC");
    if (allocator && std::string(allocator) == "debug") return;
    void* aligned = nullptr;
    REQUIRE(::posix_memalign(&aligned, 4096, 4096) == 0);
    std::memset(aligned, 0xff, 4096);
    PyMem_RawFree(aligned);
    void* moved = nullptr;
    REQUIRE(::posix_memalign(&moved, 4096, 64) == 0);
    std::memset(moved, 4, 64);
    moved = PyMem_RawRealloc(moved, 100);
    REQUIRE(moved);
    CHECK(static_cast<unsigned char*>(moved)[63] == 4);
    c = since(raw0, PYMEM_DOMAIN_RAW);
    CHECK(c.allocs == 2);
    CHECK(c.current == 100);
    PyMem_RawFree(moved);
    CHECK(since(raw0, PYMEM_DOMAIN_RAW).current == 0);
}

// Some blocks would start a page behind their header; those move to a larger block that keeps the
// header on their page. Many small blocks of every domain make sure some do under pymalloc.
TEST_CASE("blocks whose header would sit on the page before move and stay exact") {
    REQUIRE(memlens::install_python_hooks());
    constexpr int count = 20000;
    std::vector<void*> blocks;
    blocks.reserve(3 * count);
    std::vector<memlens::memory_stats> before;
    for (PyMemAllocatorDomain d : all_domains) before.push_back(of(d));
    std::size_t requested = 0;
    for (int i = 0; i < count; ++i) {
        const std::size_t n = static_cast<std::size_t>(i % 48);
        blocks.push_back(PyMem_RawMalloc(n));
        blocks.push_back(PyMem_Malloc(n + 16));
        blocks.push_back(PyObject_Calloc(1, n + 32));
        requested += 3 * n + 48;
    }
    int wide = 0;
    int page_starts = 0;
    int unread = 0;
    for (void* p : blocks) {
        REQUIRE(p);
        if (reinterpret_cast<std::uintptr_t>(p) % 4096 == 0) ++page_starts;
        memlens::detail::python_header h{};
        if (!memlens::detail::python_read_header(p, h)) ++unread;
        if (h.tag & memlens::detail::python_wide_bit) ++wide;
    }
    CHECK(page_starts == 0);
    CHECK(unread == 0);
    // pymalloc's pools put some of these blocks at a page start; a sanitizer's malloc may never.
    const char* allocator = std::getenv("PYTHONMALLOC");
    if (!allocator || std::string(allocator) == "pymalloc") CHECK(wide > 0);
    std::size_t total = 0;
    for (int i = 0; i < 3; ++i) {
        const change c = since(before[static_cast<std::size_t>(i)], all_domains[i]);
        CHECK(c.allocs == count);
        total += c.total;
    }
    CHECK(total == requested);
    for (std::size_t i = 0; i < blocks.size(); i += 3) {
        blocks[i] = PyMem_RawRealloc(blocks[i], 200);
        blocks[i + 1] = PyMem_Realloc(blocks[i + 1], 8);
        REQUIRE((blocks[i] && blocks[i + 1]));
    }
    for (std::size_t i = 0; i < blocks.size(); i += 3) {
        PyMem_RawFree(blocks[i]);
        PyMem_Free(blocks[i + 1]);
        PyObject_Free(blocks[i + 2]);
    }
    for (int i = 0; i < 3; ++i) {
        const change c = since(before[static_cast<std::size_t>(i)], all_domains[i]);
        CHECK(c.current == 0);
        CHECK(c.frees == c.allocs);
    }
}

TEST_CASE("removal is refused while another party wraps the hooks") {
    REQUIRE(memlens::install_python_hooks());
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &wrapped);
    PyMemAllocatorEx wrapper{nullptr, &wrapper_malloc, &wrapper_calloc, &wrapper_realloc, &wrapper_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &wrapper);
    last_error.clear();
    memlens::set_error_handler(&keep_error);
    CHECK_FALSE(memlens::remove_python_hooks());
    memlens::set_error_handler(nullptr);
    CHECK(last_error.find("python.obj") != std::string::npos);
    CHECK(memlens::python_hooks_installed());
    PyMemAllocatorEx now;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &now);
    CHECK(same_allocator(now, wrapper));

    // Still counting underneath the wrapper.
    const memlens::memory_stats obj0 = of(PYMEM_DOMAIN_OBJ);
    void* p = PyObject_Malloc(72);
    REQUIRE(p);
    CHECK(since(obj0, PYMEM_DOMAIN_OBJ).current == 72);
    PyObject_Free(p);
    CHECK(since(obj0, PYMEM_DOMAIN_OBJ).current == 0);

    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &wrapped);
    CHECK(memlens::remove_python_hooks());
    REQUIRE(memlens::install_python_hooks());
}

TEST_CASE("the RAW domain counts exactly from several threads without the GIL") {
    REQUIRE(memlens::install_python_hooks());
    constexpr int thread_count = 4;
    constexpr int rounds = 2000;
    const memlens::memory_stats raw0 = of(PYMEM_DOMAIN_RAW);
    std::vector<void*> kept(thread_count, nullptr);
    PyThreadState* saved = PyEval_SaveThread();
    std::vector<std::thread> threads;
    for (int t = 0; t < thread_count; ++t) {
        threads.emplace_back([t, &kept] {
            for (int i = 0; i < rounds; ++i) {
                void* p = PyMem_RawMalloc(static_cast<std::size_t>(16 + i % 64));
                void* q = PyMem_RawCalloc(2, static_cast<std::size_t>(8 + t));
                p = PyMem_RawRealloc(p, 100);
                PyMem_RawFree(q);
                if (i + 1 == rounds) {
                    kept[static_cast<std::size_t>(t)] = p;
                } else {
                    PyMem_RawFree(p);
                }
            }
        });
    }
    for (std::thread& t : threads) t.join();
    PyEval_RestoreThread(saved);

    std::size_t total = 0;
    for (int t = 0; t < thread_count; ++t) {
        for (int i = 0; i < rounds; ++i) total += static_cast<std::size_t>(16 + i % 64 + 2 * (8 + t) + 100);
    }
    const change c = since(raw0, PYMEM_DOMAIN_RAW);
    CHECK(c.allocs == 3u * thread_count * rounds);
    CHECK(c.frees == 3u * thread_count * rounds - thread_count);
    CHECK(c.total == total);
    CHECK(c.current == 100 * thread_count);
    for (void* p : kept) PyMem_RawFree(p);
    CHECK(since(raw0, PYMEM_DOMAIN_RAW).current == 0);
}

// tracemalloc (CPython 3.11, Modules/_tracemalloc.c) wraps all three domains when started and
// traces every top-level call with its requested size; calls made inside its own MEM or OBJ
// hook (pymalloc's large blocks through PyMem_RawMalloc) are not traced again. Started first and
// wrapped by memlens right after, so both see the same calls from then on: the sum of the
// python.* domains and tracemalloc's traced memory move together, byte for byte, and so do
// their peaks after both are reset at the same moment.
TEST_CASE("python.* current and peak agree with tracemalloc.get_traced_memory") {
    REQUIRE(memlens::remove_python_hooks());
    PyObject* module = PyImport_ImportModule("_tracemalloc");
    REQUIRE(module);
    PyObject* start = PyObject_GetAttrString(module, "start");
    PyObject* stop = PyObject_GetAttrString(module, "stop");
    PyObject* get_traced_memory = PyObject_GetAttrString(module, "get_traced_memory");
    PyObject* reset_peak = PyObject_GetAttrString(module, "reset_peak");
    REQUIRE((start && stop && get_traced_memory && reset_peak));
    const char* workload =
        "kept = [bytes(1000) for _ in range(100)]\n"
        "churn = [str(i) * 10 for i in range(10000)]\n"
        "big = bytearray(1 << 20)\n"
        "del churn, big\n"
        "table = {i: [i] for i in range(1000)}\n";
    PyObject* code = Py_CompileString(workload, "<workload>", Py_file_input);
    PyObject* globals = PyDict_New();
    REQUIRE((code && globals));
    PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins());
    memlens::set_peak_mode(memlens::peak_mode::exact);

    call(start);
    REQUIRE(memlens::install_python_hooks());
    auto python_current = [] {
        std::int64_t sum = 0;
        for (PyMemAllocatorDomain d : all_domains) sum += static_cast<std::int64_t>(of(d).current);
        return sum;
    };
    const std::int64_t m0 = python_current();
    const traced t0 = read_traced(get_traced_memory);
    memlens::reset_peak();
    call(reset_peak);

    PyObject* result = PyEval_EvalCode(code, globals, globals);
    REQUIRE(result);
    Py_DECREF(result);
    // A RAW block from C++: tracemalloc traces RAW too.
    void* raw = PyMem_RawMalloc(12345);
    REQUIRE(raw);

    const std::int64_t m1 = python_current();
    const memlens::memory_stats all = memlens::stats();
    const traced t1 = read_traced(get_traced_memory);
    CAPTURE(m0, t0.current, m1, t1.current, all.peak, t1.peak);
    CHECK(static_cast<std::int64_t>(all.current) == m1);
    CHECK(m0 == t0.current);
    CHECK(m1 == t1.current);
    CHECK(static_cast<std::int64_t>(all.peak) == t1.peak);
    // The workload's figures are real: the megabyte came and went, the kept bytes stayed.
    CHECK(t1.peak - t1.current >= (1 << 20));
    CHECK(t1.current - t0.current >= 100 * 1000 + 12345);

    PyMem_RawFree(raw);
    Py_DECREF(globals);
    Py_DECREF(code);
    REQUIRE(memlens::remove_python_hooks());
    call(stop);
    memlens::set_peak_mode(memlens::peak_mode::batched);
    Py_DECREF(reset_peak);
    Py_DECREF(get_traced_memory);
    Py_DECREF(stop);
    Py_DECREF(start);
    Py_DECREF(module);
    REQUIRE(memlens::install_python_hooks());
}

TEST_CASE("the garbage collector's collections reach snapshots until the watch ends") {
    REQUIRE(memlens::watch_python_gc());
    REQUIRE(memlens::watch_python_gc());
    CHECK(memlens_callbacks() == 1);
    const std::vector<memlens::collector_generation> before = memlens::take_snapshot().collector;
    REQUIRE(before.size() == 3);
    REQUIRE(PyRun_SimpleString("import gc\n"
                               "class Ring:\n"
                               "    def __init__(self): self.me = self\n"
                               "rings = [Ring() for _ in range(40)]\n"
                               "del rings\n"
                               "found = gc.collect()\n") == 0);
    const std::vector<memlens::collector_generation> after = memlens::take_snapshot().collector;
    REQUIRE(after.size() == 3);
    CHECK(after[2].collections == before[2].collections + 1);
    CHECK(after[2].collected - before[2].collected >= 40);
    CHECK(after[2].seconds > before[2].seconds);
    CHECK(after[0].threshold == 700);

    memlens::unwatch_python_gc();
    CHECK(memlens_callbacks() == 0);
    REQUIRE(PyRun_SimpleString("gc.collect()\n") == 0);
    const std::vector<memlens::collector_generation> unwatched = memlens::take_snapshot().collector;
    REQUIRE(unwatched.size() == 3);
    CHECK(unwatched[2].collections == after[2].collections);
    REQUIRE(memlens::watch_python_gc());
    CHECK(memlens_callbacks() == 1);
    memlens::unwatch_python_gc();
}

TEST_CASE("Python objects are counted by type, and a checkpoint names the type that grew") {
    REQUIRE(PyRun_SimpleString("class Counted:\n    pass\n"
                               "counted = [Counted() for _ in range(250)]\n") == 0);
    const memlens::python_object_checkpoint checkpoint;
    std::uint64_t counted = 0;
    for (const memlens::python_type_count& row : memlens::python_object_counts()) {
        if (row.name == "Counted") counted = row.objects;
    }
    CHECK(counted == 250);
    REQUIRE(PyRun_SimpleString("counted.extend(Counted() for _ in range(30))\n") == 0);
    bool named = false;
    for (const memlens::type_growth& row : checkpoint.growth(SIZE_MAX)) {
        if (row.name != "Counted") continue;
        named = true;
        CHECK(row.instances == 280);
        CHECK(row.growth == 30);
    }
    CHECK(named);
    CHECK(memlens::python_object_counts(2).size() == 2);
    REQUIRE(PyRun_SimpleString("del counted\n") == 0);
}

TEST_CASE("what CPython takes through its arena allocator counts as a pool beside the domains") {
    const char* allocator = std::getenv("PYTHONMALLOC");
    const bool pymalloc = !allocator || std::strcmp(allocator, "malloc") != 0;
    // Removal counts out every piece memlens counted; from the install on, both count the same.
    REQUIRE(memlens::remove_python_hooks());
    counted_arenas = arena_counts{};
    REQUIRE(memlens::install_python_hooks());
    const memlens::snapshot installed = memlens::take_snapshot();
    const memlens::domain_figures* start = arena_pool(installed);
    REQUIRE(start);
    const memlens::memory_stats zero = start->figures;
    CHECK(zero.current == 0);
    const auto same_as_counted = [&zero](const memlens::snapshot& s) {
        const memlens::domain_figures* pool = arena_pool(s);
        REQUIRE(pool);
        CHECK(pool->figures.allocs - zero.allocs == counted_arenas.allocs);
        CHECK(pool->figures.frees - zero.frees == counted_arenas.frees);
        CHECK(pool->figures.current == counted_arenas.current);
        CHECK(pool->figures.peak >= pool->figures.current);
        return pool->figures;
    };
    const memlens::memory_stats before = same_as_counted(memlens::take_snapshot());
    const std::uint64_t arenas_before = counted_arenas.megabyte_pieces;

    REQUIRE(PyRun_SimpleString("small = [(i, i) for i in range(300000)]\n") == 0);
    const memlens::snapshot grown = memlens::take_snapshot();
    const memlens::memory_stats after = same_as_counted(grown);
    if (pymalloc) {
        // 300,000 tuples of 56 bytes and their ints fill more than 16 new 1 MiB arenas.
        CHECK(counted_arenas.megabyte_pieces - arenas_before > 16);
        CHECK(after.current >= before.current + (16u << 20));
    } else {
        CHECK(counted_arenas.megabyte_pieces == 0);
    }
    // The pool is beside the domains, not in the totals.
    std::uint64_t domains = 0;
    for (const memlens::domain_figures& d : grown.domains) domains += d.figures.current;
    CHECK(grown.totals.current == domains);

    REQUIRE(PyRun_SimpleString("del small\n") == 0);
    same_as_counted(memlens::take_snapshot());
    if (pymalloc) CHECK(counted_arenas.frees > 0);
}

namespace {

// The bytes and traces tracemalloc holds in `domain`, as a Python developer would read them.
std::pair<long long, long long> traced_in(unsigned int domain) {
    const std::string code = "import tracemalloc\n"
                             "_traces = tracemalloc.take_snapshot().filter_traces(\n"
                             "    [tracemalloc.DomainFilter(True, " + std::to_string(domain) + ")]).traces\n"
                             "_bytes, _count = sum(t.size for t in _traces), len(_traces)\n";
    REQUIRE(PyRun_SimpleString(code.c_str()) == 0);
    PyObject* main = PyImport_AddModule("__main__");
    REQUIRE(main);
    PyObject* bytes = PyObject_GetAttrString(main, "_bytes");
    PyObject* count = PyObject_GetAttrString(main, "_count");
    REQUIRE((bytes && count));
    const std::pair<long long, long long> out{PyLong_AsLongLong(bytes), PyLong_AsLongLong(count)};
    Py_DECREF(bytes);
    Py_DECREF(count);
    return out;
}

}  // namespace

TEST_CASE("native allocations reach tracemalloc as a domain of their own, and leave it when freed") {
    constexpr unsigned int native_traces = 4242;
    const memlens::domain native = memlens::domain::named("native");
    // record_alloc never reads the block: addresses of one static array stand for ten blocks.
    static unsigned char blocks[10];
    REQUIRE(PyRun_SimpleString("import tracemalloc\ntracemalloc.start()\n") == 0);
    REQUIRE(memlens::start_tracemalloc_forwarding(native_traces));
    const memlens::tracemalloc_forwarding_figures before = memlens::tracemalloc_forwarding();

    // Another thread allocates while this one holds the GIL: had the hooks called tracemalloc,
    // which takes the GIL, the join would never return.
    std::thread([&] {
        for (std::size_t i = 0; i < 10; ++i) memlens::record_alloc(&blocks[i], 1000 * (i + 1), native);
    }).join();
    const memlens::tracemalloc_forwarding_figures queued = memlens::tracemalloc_forwarding();
    CHECK(queued.queued - before.queued == 10);
    CHECK(queued.handed == before.handed);

    // The interpreter's main thread hands them over at its next check for pending calls.
    REQUIRE(PyRun_SimpleString("for _ in range(10000): pass\n") == 0);
    CHECK(memlens::tracemalloc_forwarding().handed - before.handed == 10);
    CHECK(traced_in(native_traces) == std::pair<long long, long long>{55000, 10});
    // Python's own blocks stay in tracemalloc's domain 0 only.
    CHECK(traced_in(0).second > 0);

    for (std::size_t i = 0; i < 5; ++i) memlens::record_free(&blocks[i], 1000 * (i + 1), native);
    CHECK(memlens::flush_tracemalloc_forwarding() == 5);
    CHECK(traced_in(native_traces) == std::pair<long long, long long>{40000, 5});

    // While tracemalloc is not tracing, what is handed over is lost to it, and counted as such.
    REQUIRE(PyRun_SimpleString("tracemalloc.stop()\n") == 0);
    memlens::record_free(&blocks[5], 6000, native);
    CHECK(memlens::flush_tracemalloc_forwarding() == 1);
    const memlens::tracemalloc_forwarding_figures after = memlens::tracemalloc_forwarding();
    CHECK(after.ignored - before.ignored == 1);
    CHECK(after.dropped == before.dropped);

    memlens::stop_tracemalloc_forwarding();
    for (std::size_t i = 6; i < 10; ++i) memlens::record_free(&blocks[i], 1000 * (i + 1), native);
    CHECK(memlens::tracemalloc_forwarding().queued == after.queued);
    CHECK(memlens::stats(native).current == 0);
}
