// Helpers shared by the memlens tests.
#pragma once

namespace memlens_test {

// The compiler may remove a new / delete pair whose memory is never used; passing the pointer
// here makes it observable, so the allocation really happens.
template <class T>
inline void keep(T* p) {
    asm volatile("" : : "r"(p) : "memory");
}

}  // namespace memlens_test
