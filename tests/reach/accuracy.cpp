// A program with known leak kinds, built three ways: with memlens's hooks (MEMLENS_REACH_HOOKED),
// where it prints classify_leaks()'s summary; without them, where valgrind's memcheck checks it at
// the same point through its client request; and with memlens's headers but without its hooks
// (MEMLENS_REACH_PRELOADED), to run under libmemlens_preload.so, whose state its classify_leaks()
// joins. compare.py asks that the first two give the same figures, preload_compare.py that the
// preload library's whole summary (glibc's and libstdc++'s blocks too) is memcheck's.
//   definitely lost: a three-node list whose head pointer is dropped (48 bytes, 1 block)
//   indirectly lost: the list's other two nodes (96 bytes, 2 blocks)
//   possibly lost:   a block held only through a pointer 16 bytes into it (64 bytes, 1 block)
//   still reachable: a global cache (100 bytes), a block held only by another live thread's
//                    thread_local (200 bytes), one held only on another thread's stack (300 bytes)
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(MEMLENS_REACH_HOOKED)
#include <memlens/hooks.hpp>
#include <memlens/view/leak_kinds.hpp>
#elif defined(MEMLENS_REACH_PRELOADED)
#include <memlens/view/leak_kinds.hpp>
#else
#include <valgrind/memcheck.h>
#endif

namespace {

struct node {
    node* next;
    long payload[5];
};

void* volatile cache_slot = nullptr;
char* volatile interior_slot = nullptr;
thread_local void* volatile tls_slot = nullptr;
int release_pipe[2];
std::atomic<int> ready{0};

// Each allocation is made in a function of its own, whose name valgrind's stacks carry.
__attribute__((noinline)) void reach_case_list() {
    node* head = nullptr;
    for (int i = 0; i < 3; ++i) {
        node* n = new node;
        std::memset(n, 0, sizeof *n);
        n->next = head;
        head = n;
    }
    // The head is dropped here: no copy of it survives the return.
    __asm__ volatile("" : : "r"(head) : "memory");
}

__attribute__((noinline)) void reach_case_cache() { cache_slot = new char[100](); }

__attribute__((noinline)) void reach_case_interior() {
    char* p = new char[64]();
    interior_slot = p + 16;
}

__attribute__((noinline)) void* reach_case_tls_block() { return new char[200](); }
__attribute__((noinline)) void* reach_case_stack_block() { return new char[300](); }

// Overwrites the dead frames below the caller, where stale copies of pointers may remain.
__attribute__((noinline)) void scrub_stack() {
    volatile char area[8192];
    for (char& c : const_cast<char(&)[8192]>(area)) c = 0;
}

#if !defined(MEMLENS_REACH_HOOKED) && !defined(MEMLENS_REACH_PRELOADED)
// memcheck reads every register at its client request, the scratch ones too, where a stale copy
// of a pointer may remain (clang leaves one); memlens reads only the callee-saved ones of the
// thread that asks.
inline void clear_scratch_registers() {
#if defined(__x86_64__)
    __asm__ volatile(
        "xor %%eax, %%eax\n\txor %%ecx, %%ecx\n\txor %%edx, %%edx\n\txor %%esi, %%esi\n\t"
        "xor %%edi, %%edi\n\txor %%r8d, %%r8d\n\txor %%r9d, %%r9d\n\txor %%r10d, %%r10d\n\t"
        "xor %%r11d, %%r11d"
        :
        :
        : "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "memory");
#elif defined(__aarch64__)
    __asm__ volatile(
        "mov x0, xzr\n\tmov x1, xzr\n\tmov x2, xzr\n\tmov x3, xzr\n\tmov x4, xzr\n\t"
        "mov x5, xzr\n\tmov x6, xzr\n\tmov x7, xzr\n\tmov x8, xzr\n\tmov x9, xzr\n\t"
        "mov x10, xzr\n\tmov x11, xzr\n\tmov x12, xzr\n\tmov x13, xzr\n\tmov x14, xzr\n\t"
        "mov x15, xzr\n\tmov x16, xzr\n\tmov x17, xzr"
        :
        :
        : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
          "x14", "x15", "x16", "x17", "memory");
#endif
}
#endif

void wait_release() {
    char c;
    while (::read(release_pipe[0], &c, 1) < 0) {
    }
}

void* tls_thread(void*) {
    tls_slot = reach_case_tls_block();
    ready.fetch_add(1);
    wait_release();
    return nullptr;
}

void* stack_thread(void*) {
    void* volatile held = reach_case_stack_block();
    ready.fetch_add(1);
    wait_release();
    return held == nullptr ? &ready : nullptr;
}

}  // namespace

int main() {
#if defined(MEMLENS_REACH_HOOKED) || defined(MEMLENS_REACH_PRELOADED)
    memlens::tracking_config config = memlens::current_config();  // keeps MEMLENS_LEAKS_AT_EXIT
    config.mode = memlens::tracking_mode::sites;
    config.blocks = true;
    memlens::configure(config);
#endif
    if (::pipe(release_pipe) != 0) return 1;
    pthread_t threads[2];
    pthread_create(&threads[0], nullptr, tls_thread, nullptr);
    pthread_create(&threads[1], nullptr, stack_thread, nullptr);
    while (ready.load() < 2) ::usleep(1000);
    reach_case_list();
    reach_case_cache();
    reach_case_interior();
    scrub_stack();
#if defined(MEMLENS_REACH_HOOKED) || defined(MEMLENS_REACH_PRELOADED)
    const memlens::leak_kinds kinds = memlens::classify_leaks();
    std::fputs(memlens::describe(kinds, 100, 12, true).c_str(), stdout);
    if (std::getenv("MEMLENS_REACH_BACKREFS")) {
        for (const memlens::live_allocation& a : kinds.blocks.allocations) {
            std::fputs(memlens::describe_backrefs(kinds, a.address).c_str(), stdout);
        }
    }
#else
    clear_scratch_registers();
    VALGRIND_DO_LEAK_CHECK;
#endif
    const char go[2] = {'x', 'x'};
    if (::write(release_pipe[1], go, 2) != 2) return 1;
    pthread_join(threads[0], nullptr);
    pthread_join(threads[1], nullptr);
    return 0;
}
