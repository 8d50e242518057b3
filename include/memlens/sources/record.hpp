// memlens/sources/record.hpp: counting for the embedder's own pools and arenas, which no hook
// sees: call record_alloc / record_free where the pool hands memory out and takes it back.
#pragma once

#include <cstddef>

#include "../core/counters.hpp"
#include "../core/events.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Counts an allocation of `size` bytes at `ptr` in domain `d`, and records it with its stack
/// in sites and sampled modes. Thread safe, never allocates through the hooks; costs what a
/// hooked operator new adds. `ptr` is not read; a null `ptr` is counted and never recorded.
inline void record_alloc(const void* ptr, std::size_t size, domain d) noexcept {
    if (detail::valid_slot(d.id())) detail::on_alloc(ptr, size, d.id(), false);
}

/// Counts the free of a block that record_alloc counted, with the same size and domain.
/// Thread safe, never allocates. A size that does not match the allocation skews the figures.
inline void record_free(const void* ptr, std::size_t size, domain d) noexcept {
    if (detail::valid_slot(d.id())) detail::on_free(ptr, size, d.id());
}

MEMLENS_NAMESPACE_END
