// memlens/core/errors.hpp: where memlens's error messages go (bad configuration, exhausted
// tables, a pointer it never saw): one line on stderr unless the program says otherwise.
#pragma once

#include <atomic>

#include "../detail/sys.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Receives every error memlens reports (bad configuration, exhausted tables). It must not
/// allocate or throw: it may run inside an allocation hook. Thread safe to set at any time.
using error_handler = detail::error_function;

/// Routes memlens's error messages to `handler` (nullptr restores the default, which writes one
/// line to stderr without allocating). Thread safe.
inline void set_error_handler(error_handler handler) noexcept {
    detail::error_sink.store(handler ? handler : &detail::default_error_handler,
                             std::memory_order_release);
}

MEMLENS_NAMESPACE_END
