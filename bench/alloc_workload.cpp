// bench/alloc_workload.cpp: one allocation workload for comparing memlens with external
// profilers (see compare_tools.sh). Built twice: with memlens's hooks (the mode then comes from
// MEMLENS_MODE) and without, as the untracked baseline. Prints the time per allocate+free pair.
#if defined(MEMLENS_WORKLOAD_HOOKS)
#include <memlens/sources/new.hpp>
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace {

constexpr int call_depth = 20;

// Keeps the compiler from removing a pair whose memory is never used.
void keep(void* p) { asm volatile("" : : "r"(p) : "memory"); }

__attribute__((noinline)) double pairs_at_depth(int depth, long pairs) {
    if (depth > 0) {
        const double ns = pairs_at_depth(depth - 1, pairs);
        keep(&depth);
        return ns;
    }
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < pairs; ++i) {
        void* p = ::operator new(static_cast<std::size_t>(16 + (i & 127)));
        keep(p);
        ::operator delete(p);
    }
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    return took.count() / static_cast<double>(pairs);
}

}  // namespace

int main(int argc, char** argv) {
    const long pairs = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 2000000;
    if (pairs <= 0) {
        std::fprintf(stderr, "usage: %s [pairs > 0]\n", argv[0]);
        return 2;
    }
    pairs_at_depth(call_depth, pairs / 10 + 1);  // warm the allocator and memlens's tables
    std::printf("%.1f\n", pairs_at_depth(call_depth, pairs));
    return 0;
}
