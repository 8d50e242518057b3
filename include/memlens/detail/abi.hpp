// memlens/detail/abi.hpp: where units built with different layout options meet. Each layout has
// a state of its own (its inline namespace); the first to start claims the program, and the
// others are refused with a message instead of splitting the figures without a word.
#pragma once

#include <atomic>
#include <cstring>

#include "config.hpp"
#include "sys.hpp"

// Outside the versioned namespace on purpose: every layout of memlens in the program sees this
// one word. Within one executable that is every unit; a process-wide meeting point across
// shared objects with hidden symbols belongs to the state that all copies of memlens share.
namespace memlens::unversioned {
MEMLENS_DETAIL_SHARED inline std::atomic<const char*> first_layout{nullptr};
}  // namespace memlens::unversioned

MEMLENS_NAMESPACE_BEGIN namespace detail {

constexpr const char* layout_name = MEMLENS_DETAIL_STRING(MEMLENS_ABI_NAME);

// True when this unit's layout is the program's: it started first, or it is the same layout.
// On false, `first` names the layout that started first.
inline bool claim_layout(const char*& first) noexcept {
    const char* expected = nullptr;
    if (unversioned::first_layout.compare_exchange_strong(expected, layout_name, std::memory_order_acq_rel)) {
        first = layout_name;
        return true;
    }
    first = expected;
    return std::strcmp(expected, layout_name) == 0;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
