// A program that knows nothing of memlens: preload_test.cpp runs it under libmemlens_preload.so
// and checks the reports against what each function below allocates, frees and leaks.
//   workload          the parent: leaks, freed pairs of every malloc-family form, a fork, an
//                     exec of itself; exits with status 3
//   workload exec     the exec'd copy: leaks one block and exits with status 0
//   workload fork-threads   forks 50 times while four threads churn the allocator; each child
//                     allocates and exits; exits with status 0
//   workload exit-thread    a thread leaks a block and calls exit(4) while main waits
//   workload mmap     forks 20 times while a thread maps and unmaps pages; then maps three
//                     regions, unmaps half of one, grows one with mremap and unmaps the
//                     third: 640 KiB stay mapped; exits with status 0
//   workload dlopen LIB     opens LIB (preload/library.cpp), which allocates as it loads, leaks
//                     through it, closes it and leaks again; exits with status 0
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#define WORKLOAD_FUNCTION extern "C" __attribute__((noinline))

// Leaked blocks stay reachable from here, and every freed block passes through here first: the
// compiler may not drop an allocation whose pointer is stored in a volatile.
void* volatile kept[16];
int kept_count = 0;

static void* keep(void* p) {
    kept[kept_count++ % 16] = p;
    return p;
}

WORKLOAD_FUNCTION void leak_with_malloc() { keep(std::malloc(100)); }
WORKLOAD_FUNCTION void leak_with_new_array() { keep(new char[200]); }
WORKLOAD_FUNCTION void leak_with_operator_new() { keep(::operator new(300)); }
WORKLOAD_FUNCTION void leak_at_depth_2() { leak_with_new_array(); }
WORKLOAD_FUNCTION void leak_at_depth_3() { leak_at_depth_2(); }
WORKLOAD_FUNCTION void leak_in_child() { keep(std::malloc(5000)); }
WORKLOAD_FUNCTION void leak_after_exec() { keep(std::malloc(7000)); }

// Each allocates and frees; the sizes name the calls in the test.
WORKLOAD_FUNCTION void churn_calloc_realloc() {
    char* p = static_cast<char*>(keep(std::calloc(10, 10)));
    for (int i = 0; i < 100; ++i) {
        if (p[i] != 0) std::abort();
    }
    p = static_cast<char*>(keep(std::realloc(p, 1000)));
    std::free(p);
}
WORKLOAD_FUNCTION void churn_aligned() {
    void* a = nullptr;
    if (posix_memalign(&a, 64, 100) != 0 || reinterpret_cast<unsigned long>(a) % 64 != 0) std::abort();
    keep(a);
    a = keep(std::realloc(a, 200));
    std::free(a);
    void* b = keep(aligned_alloc(128, 256));
    if (reinterpret_cast<unsigned long>(b) % 128 != 0) std::abort();
    std::free(b);
    void* c = keep(memalign(256, 10));
    if (reinterpret_cast<unsigned long>(c) % 256 != 0) std::abort();
    std::free(c);
    void* d = keep(valloc(10));
    if (reinterpret_cast<unsigned long>(d) % 4096 != 0) std::abort();
    std::free(d);
}
WORKLOAD_FUNCTION void churn_reallocarray() {
    void* p = keep(reallocarray(nullptr, 10, 10));
    if (malloc_usable_size(p) < 100) std::abort();
    std::free(p);
    char* s = static_cast<char*>(keep(strdup("seven b")));
    std::free(s);
}

WORKLOAD_FUNCTION void leak_in_exiting_thread() { keep(std::malloc(6000)); }
WORKLOAD_FUNCTION void leak_after_dlclose() { keep(std::malloc(9000)); }

// A fork while other threads are inside the allocator must leave the child a usable allocator
// and memlens: the child allocates, and exits on its own.
static int fork_under_threads() {
    std::atomic<bool> stop{false};
    std::vector<std::thread> churners;
    for (int t = 0; t < 4; ++t) {
        churners.emplace_back([&stop] {
            while (!stop.load()) {
                void* p = keep(std::malloc(64));
                std::free(p);
                delete[] static_cast<char*>(keep(new char[32]));
            }
        });
    }
    int failures = 0;
    for (int i = 0; i < 50; ++i) {
        const pid_t child = fork();
        if (child == 0) {
            std::free(keep(std::malloc(128)));
            delete[] static_cast<char*>(keep(new char[256]));
            _exit(0);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            ++failures;
        }
    }
    stop = true;
    for (std::thread& t : churners) t.join();
    return failures == 0 ? 0 : 1;
}

// A thread that has ended: glibc keeps its stack for the next thread, and with it the block of
// the thread's TLS vector, which is still alive at exit.
static int end_a_thread() {
    std::thread([] {}).join();
    return 0;
}

// exit() from a thread other than main: the exit report is written on that thread.
static int exit_from_thread() {
    std::thread([] {
        leak_in_exiting_thread();
        std::exit(4);
    }).detach();
    for (;;) pause();
}

// A library that allocates as it loads, leaks through the program, and is then unloaded: the
// report still counts its block, whose stack points into a library that is gone.
static int open_and_close(const char* path) {
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    auto leak = reinterpret_cast<void* (*)(std::size_t)>(dlsym(library, "library_leak"));
    if (!leak) return 1;
    keep(leak(8000));
    if (dlclose(library) != 0) return 1;
    leak_after_dlclose();
    return 0;
}

static void* map_anonymous(std::size_t bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    static_cast<char*>(p)[0] = 1;
    return p;
}

static int map_and_unmap() {
    // The figures below are this thread's: a thread that maps and unmaps all the while forks
    // with them, and every child must be able to map.
    std::atomic<bool> stop{false};
    std::thread mapper([&stop] {
        while (!stop.load()) {
            void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED || munmap(p, 4096) != 0) std::abort();
        }
    });
    for (int i = 0; i < 20; ++i) {
        const pid_t child = fork();
        if (child == 0) {
            void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            _exit(p == MAP_FAILED || munmap(p, 4096) != 0 ? 1 : 0);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            return 1;
        }
    }
    stop = true;
    mapper.join();

    char* big = static_cast<char*>(map_anonymous(1 << 20));
    void* grown = map_anonymous(64 << 10);
    void* gone = map_anonymous(10 * 4096);
    if (munmap(big + (512 << 10), 512 << 10) != 0) return 1;
    grown = mremap(grown, 64 << 10, 128 << 10, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) return 1;
    if (munmap(gone, 10 * 4096) != 0) return 1;
    keep(big);
    keep(grown);
    return 0;
}

// A 1 MiB block aligned to 256 bytes grown to 2 MiB: glibc's realloc cannot keep the alignment,
// so memlens moves it by hand; the old block is uncounted before the new one is counted.
int grow_aligned() {
    void* a = nullptr;
    if (posix_memalign(&a, 256, 1u << 20) != 0) return 1;
    std::memset(a, 1, 1u << 20);
    void* b = keep(std::realloc(keep(a), 2u << 20));
    if (!b || static_cast<unsigned char*>(b)[(1u << 20) - 1] != 1) return 1;
    std::free(b);
    return 0;
}

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "exec") == 0) {
        leak_after_exec();
        return 0;
    }
    if (argc > 1 && std::strcmp(argv[1], "fork-threads") == 0) return fork_under_threads();
    if (argc > 1 && std::strcmp(argv[1], "exit-thread") == 0) return exit_from_thread();
    if (argc > 1 && std::strcmp(argv[1], "thread-ended") == 0) return end_a_thread();
    if (argc > 1 && std::strcmp(argv[1], "mmap") == 0) return map_and_unmap();
    if (argc > 1 && std::strcmp(argv[1], "grow-aligned") == 0) return grow_aligned();
    if (argc > 2 && std::strcmp(argv[1], "dlopen") == 0) return open_and_close(argv[2]);
    leak_with_malloc();
    leak_at_depth_3();
    leak_with_operator_new();
    churn_calloc_realloc();
    churn_aligned();
    churn_reallocarray();
    const pid_t child = fork();
    if (child == 0) {
        leak_in_child();
        std::exit(0);
    }
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child || status != 0) return 1;
    const pid_t exec_child = fork();
    if (exec_child == 0) {
        execl("/proc/self/exe", argv[0], "exec", static_cast<char*>(nullptr));
        _exit(126);
    }
    if (exec_child < 0 || waitpid(exec_child, &status, 0) != exec_child || status != 0) return 1;
    std::printf("kept %d\n", kept_count);
    return 3;
}
