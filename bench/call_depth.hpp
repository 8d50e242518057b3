// bench/call_depth.hpp: runs a benchmark body some calls down, so that every stack memlens
// captures in it has the same, known depth.
#pragma once

#include <benchmark/benchmark.h>

namespace memlens_bench {

// Each level is a real call (not inlined, not a tail call), so it keeps a frame of its own.
template <class Body>
__attribute__((noinline)) void at_depth(int depth, benchmark::State& state, Body& body) {
    if (depth > 0) {
        at_depth(depth - 1, state, body);
        benchmark::ClobberMemory();
        return;
    }
    body(state);
}

}  // namespace memlens_bench
