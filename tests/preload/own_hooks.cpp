// A program with memlens's own hooks, run under libmemlens_preload.so: the process holds one
// memlens state, and a new-expression counts once, in "heap", though the program's hooks take
// their blocks from the library's malloc. Exits 0 when every expectation holds.
#include <memlens/sources/new.hpp>
#include <memlens/track.hpp>

#include <cstdio>
#include <cstdlib>

#include "../hosts/expect.hpp"

int main() {
    using host_test::expect;
    const memlens::domain heap = memlens::domain::heap();
    const memlens::domain malloc_domain = memlens::domain::named("malloc");
    expect(memlens::stats(malloc_domain).allocs > 0, "the program reads the preloaded library's figures");

    const memlens::memory_stats heap_before = memlens::stats(heap);
    const memlens::memory_stats malloc_before = memlens::stats(malloc_domain);
    char* volatile block = new char[1000];
    block[0] = 1;
    const memlens::memory_stats heap_after = memlens::stats(heap);
    const memlens::memory_stats malloc_after = memlens::stats(malloc_domain);
    expect(heap_after.allocs == heap_before.allocs + 1 && heap_after.current == heap_before.current + 1000,
           "a new-expression counts in heap");
    expect(malloc_after.allocs == malloc_before.allocs && malloc_after.current == malloc_before.current,
           "and not again in malloc");
    delete[] block;
    expect(memlens::stats(heap).current == heap_before.current, "its delete uncounts it from heap");
    expect(memlens::stats(malloc_domain).current == malloc_before.current, "and leaves malloc alone");

    void* volatile raw = std::malloc(300);
    expect(memlens::stats(malloc_domain).current == malloc_before.current + 300,
           "the program's malloc counts in malloc");
    std::free(raw);

    if (host_test::failures == 0) std::printf("all expectations hold\n");
    return host_test::failures == 0 ? 0 : 1;
}
