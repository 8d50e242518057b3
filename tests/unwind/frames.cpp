// A function built without frame pointers, for tests/unwind_test.cpp. Built twice, as two
// libraries whose only difference is the size of this frame, so that a rule cached for one
// would walk the other wrongly if it outlived a dlclose.
#include <cstdint>

#ifndef MEMLENS_UNWIND_FRAME_BYTES
#error "define MEMLENS_UNWIND_FRAME_BYTES"
#endif

// Calls fn(arg) from a frame whose caller only the call-frame information finds: the CFA is the
// stack pointer plus the frame, and the frame pointer register passes through untouched, so a
// frame-pointer walk from fn skips this function's caller. Stores where it returns to.
extern "C" __attribute__((visibility("default"), noinline)) void
memlens_unwind_call(void (*fn)(void*), void* arg, std::uintptr_t* return_address) {
    volatile char scratch[MEMLENS_UNWIND_FRAME_BYTES];
    scratch[0] = 1;
    *return_address = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
    fn(arg);
    // Used after the call: the frame lives on across it, and the call is not a tail call.
    scratch[MEMLENS_UNWIND_FRAME_BYTES - 1] = scratch[0];
}
