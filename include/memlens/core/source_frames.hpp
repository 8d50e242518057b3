// memlens/core/source_frames.hpp: the hook through which a source joins frames of its own (the
// Python source's interpreter frames) into captured stacks, and names them for the symbolizer.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// A source's frames are "return addresses" in a non-canonical range that no x86-64 or AArch64
// process can map or return into, so that stack ids, snapshots, JSON and every view carry them
// unchanged; the low 48 bits are the source's own id.
constexpr std::uintptr_t source_frame_tag = std::uintptr_t{0xfffe} << 48;

constexpr bool is_source_frame(std::uintptr_t address) noexcept {
    return (address >> 48) == (source_frame_tag >> 48);
}

// What a source says about one of its frames; the strings live as long as the process.
struct source_frame {
    const char* function;
    const char* file;
    unsigned line;
    const char* module;
};

// Set once by a source, never cleared: null in programs without one, which then pay one relaxed
// load per captured stack. The joiner rewrites the `depth` native frames in place, with room for
// `max`, and returns the new depth; it runs under the guard, inside allocation hooks.
using stack_joiner_function = std::size_t (*)(std::uintptr_t* frames, std::size_t depth,
                                             std::size_t max) noexcept;
using frame_namer_function = bool (*)(std::uintptr_t address, source_frame& out) noexcept;
MEMLENS_DETAIL_SHARED inline std::atomic<stack_joiner_function> stack_joiner{nullptr};
MEMLENS_DETAIL_SHARED inline std::atomic<frame_namer_function> source_frame_namer{nullptr};

}  // namespace detail
MEMLENS_NAMESPACE_END
