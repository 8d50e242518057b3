// memlens/core/sampler.hpp: Poisson sampling by bytes, as tcmalloc and jemalloc sample: a
// per-thread countdown of exponential intervals, and the weight each sample stands for.
#pragma once

#include <cmath>
#include <cstdint>

#include "settings.hpp"
#include "state.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// The estimate one sampled allocation of `size` bytes stands for: it was sampled with
// probability 1 - exp(-size / mean), so counting it 1 / that many times is unbiased.
inline double sample_weight(std::uint64_t size, std::uint64_t mean) noexcept {
    if (mean == 0 || size == 0) return 1.0;
    const double p = -std::expm1(-static_cast<double>(size) / static_cast<double>(mean));
    return p > 0 ? 1.0 / p : 1.0;
}

inline std::uint64_t next_random(std::uint64_t& state) noexcept {
    // xorshift64*: enough for drawing sample intervals, and its state fits in the thread state.
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dULL;
}

// An exponential interval of mean `settings.sample_bytes`, so that sampled bytes form a Poisson
// process: every byte has the same chance to be the one sampled, whatever its allocation's size.
inline std::int64_t draw_interval(thread_state& ts) noexcept {
    if (ts.sample_state == 0) {
        thread_record* record = nullptr;
        const std::uint64_t configured = settings.sample_seed.load(relaxed);
        const std::uint64_t seed =
            configured ? configured : static_cast<std::uint64_t>(monotonic_ns());
        ts.sample_state = fibonacci_hash(seed ^ (std::uint64_t{own_record_index(record)} << 32)) | 1;
    }
    const double u =
        (static_cast<double>(next_random(ts.sample_state) >> 11) + 0.5) * 0x1.0p-53;
    const double interval = -std::log(u) * static_cast<double>(settings.sample_bytes.load(relaxed));
    return interval >= 9.0e18 ? INT64_MAX : static_cast<std::int64_t>(interval) + 1;
}

// Called once the countdown went below zero: this allocation is the sampled one.
inline bool sample_due(thread_state& ts, std::uint64_t size) noexcept {
    if (ts.sample_state == 0) {
        // A thread's first countdown is drawn here, not taken as zero: zero would sample
        // every thread's first allocation.
        ts.sample_countdown = draw_interval(ts) - static_cast<std::int64_t>(size);
        if (ts.sample_countdown >= 0) return false;
    }
    ts.sample_countdown = draw_interval(ts);
    return true;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
