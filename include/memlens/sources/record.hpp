// memlens/sources/record.hpp: counting for the embedder's own pools and arenas, which no hook
// sees: call record_alloc / record_free where the pool hands memory out and takes it back.
#pragma once

#include <cstddef>

#include "../core/counters.hpp"

namespace memlens {

/// Counts an allocation of `size` bytes at `ptr` in domain `d`. Thread safe, never allocates;
/// costs what a hooked operator new adds. `ptr` is not read.
inline void record_alloc(const void* ptr, std::size_t size, domain d) noexcept {
    (void)ptr;
    if (detail::valid_slot(d.id())) detail::count_alloc(size, d.id());
}

/// Counts the free of a block that record_alloc counted, with the same size and domain.
/// Thread safe, never allocates. A size that does not match the allocation skews the figures.
inline void record_free(const void* ptr, std::size_t size, domain d) noexcept {
    (void)ptr;
    if (detail::valid_slot(d.id())) detail::count_free(size, d.id());
}

}  // namespace memlens
