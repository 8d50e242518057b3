// A library built with -O2 -fomit-frame-pointer, for workload.cpp: its frame between the
// allocation and the workload's line is found only through .eh_frame.
#include <cstddef>
#include <cstring>

// Fills the block after allocating it: the call to operator new[] is then no tail call, and this
// frame stays on the stack that heaptrack and memlens both walk.
extern "C" __attribute__((visibility("default"), noinline)) char* memlens_attribution_block(std::size_t size) {
    char* block = new char[size];  // expect-site: library
    std::memset(block, 0x5a, size);
    return block;
}
