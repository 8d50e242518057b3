// memlens/core/settings.hpp: what the observers are asked to do (mode, stacks, sampling, exit
// report), the one set of accepted ranges, and reading them from the MEMLENS_* variables.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../detail/output_names.hpp"
#include "../detail/sys.hpp"
#include "stacks.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

enum class live_mode : std::uint8_t { off, counters, sites, sampled };
// Which stacks a .folded exit report holds, in the order of memlens::exit_kind.
enum class folded_exit : std::uint8_t { peak, leaks, allocations, temporaries };

constexpr std::size_t default_stack_depth = 32;
constexpr std::uint64_t default_sample_bytes = 512 * 1024;
constexpr std::size_t output_path_capacity = 4096;

// Constant-initialized, so that it is ready before any constructor runs. Written under
// settings_lock; the fields the recording path reads without the lock are atomic.
struct live_settings {
    live_mode mode = live_mode::counters;
    std::atomic<unwind_method> method{unwind_method::hybrid};
    std::atomic<std::uint32_t> stack_depth{default_stack_depth};
    std::atomic<std::uint64_t> sample_bytes{default_sample_bytes};
    std::atomic<std::uint64_t> sample_seed{0};
    std::atomic<std::uint32_t> temporary_window{1};
    // Sites mode keeps every block in the live table, not only its site in the block's header.
    bool blocks = false;
    // Per-block mode also times each block: per-site lifetimes, maximum and global-peak figures.
    std::atomic<bool> lifetimes{false};
    // Keep a snapshot of the live table at the process's high-water mark; see capture_peak.
    std::atomic<bool> capture_peak{false};
    bool leaks_at_exit = false;
    // The exit report classifies what is alive by reachability (MEMLENS_LEAKS_AT_EXIT=kinds).
    bool leak_kinds_at_exit = false;
    folded_exit output_kind = folded_exit::peak;
    char output[output_path_capacity] = {};
};

MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline live_settings settings{};
MEMLENS_DETAIL_SHARED MEMLENS_CONSTINIT inline spin_lock settings_lock{};
// Under settings_lock: whether the environment has been read; see start_live.
MEMLENS_DETAIL_SHARED inline bool live_started = false;

// The accepted range of each numeric setting: the environment reader and configure() both check
// against these, so that the two can never disagree.
struct setting_range {
    const char* variable;  // its MEMLENS_* environment variable
    const char* field;     // its tracking_config member
    std::uint64_t low;
    std::uint64_t high;
    const char* accepted;  // the range in words, for refusals
};

constexpr setting_range stack_depth_range{"MEMLENS_STACK_DEPTH", "stack_depth", 1, max_stack_depth,
                                          "a whole number from 1 to 128"};
constexpr setting_range sample_bytes_range{
    "MEMLENS_SAMPLE_BYTES", "sample_bytes", 1, std::uint64_t{1} << 40,
    "a whole number of bytes from 1 to 1T (1,099,511,627,776), with an optional k, m or g suffix"};
constexpr setting_range temporary_window_range{"MEMLENS_TEMPORARY_WINDOW", "temporary_window", 1,
                                               1000000, "a whole number from 1 to 1000000"};

constexpr bool in_range(const setting_range& r, std::uint64_t value) noexcept {
    return value >= r.low && value <= r.high;
}

// Builds a message in a fixed buffer: errors here may be reported from inside a hook.
class fixed_message {
public:
    fixed_message& operator<<(const char* text) noexcept {
        while (*text && length_ + 1 < sizeof buffer_) buffer_[length_++] = *text++;
        buffer_[length_] = '\0';
        return *this;
    }
    const char* c_str() const noexcept { return buffer_; }

private:
    char buffer_[512] = {};
    std::size_t length_ = 0;
};

inline bool parse_mode(const char* text, live_mode& out) noexcept {
    struct named {
        const char* name;
        live_mode mode;
    };
    static constexpr named modes[] = {{"off", live_mode::off},
                                      {"counters", live_mode::counters},
                                      {"sites", live_mode::sites},
                                      {"sampled", live_mode::sampled}};
    for (const named& m : modes) {
        if (std::strcmp(text, m.name) == 0) {
            out = m.mode;
            return true;
        }
    }
    return false;
}

constexpr const char* output_kinds_accepted = "peak, leaks, allocations, temporaries";

inline bool parse_output_kind(const char* text, folded_exit& out) noexcept {
    static constexpr const char* kinds[] = {"peak", "leaks", "allocations", "temporaries"};
    for (std::size_t i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
        if (std::strcmp(text, kinds[i]) == 0) {
            out = static_cast<folded_exit>(i);
            return true;
        }
    }
    return false;
}

inline bool parse_method(const char* text, unwind_method& out) noexcept {
    if (std::strcmp(text, "frame-pointers") == 0) {
        out = unwind_method::frame_pointers;
        return true;
    }
    if (std::strcmp(text, "unwinder") == 0) {
        out = unwind_method::unwinder;
        return true;
    }
    if (std::strcmp(text, "hybrid") == 0) {
        out = unwind_method::hybrid;
        return true;
    }
    return false;
}

// A whole decimal number, optionally followed by k, m or g (binary multiples).
inline bool parse_count(const char* text, std::uint64_t& out) noexcept {
    if (*text < '0' || *text > '9') return false;
    std::uint64_t value = 0;
    for (; *text >= '0' && *text <= '9'; ++text) {
        const std::uint64_t digit = static_cast<std::uint64_t>(*text - '0');
        if (value > (UINT64_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    unsigned shift = 0;
    switch (*text) {
    case 'k': case 'K': shift = 10; ++text; break;
    case 'm': case 'M': shift = 20; ++text; break;
    case 'g': case 'G': shift = 30; ++text; break;
    default: break;
    }
    if (*text != '\0' || (shift && value > (UINT64_MAX >> shift))) return false;
    out = value << shift;
    return true;
}

inline void refuse(const char* variable, const char* value, const char* accepted,
                   const char* fallback) noexcept {
    fixed_message m;
    m << variable << "=\"" << value << "\" is not valid; accepted: " << accepted << "; "
      << fallback;
    report_error(m.c_str());
}

// A 0 / 1 variable: its value, or `current` when it is unset or refused.
inline bool read_flag(const char* variable, bool current, const char* fallback) noexcept {
    const char* v = std::getenv(variable);
    if (!v) return current;
    if (std::strcmp(v, "0") == 0 || std::strcmp(v, "1") == 0) return v[0] == '1';
    refuse(variable, v, "0, 1", fallback);
    return current;
}

// Reads the MEMLENS_* variables into `s`. A bad value is reported and leaves that setting
// as it was; the mode then falls back to counters, which costs the host least.
inline void read_environment(live_settings& s) noexcept {
    if (const char* v = std::getenv("MEMLENS_MODE")) {
        if (!parse_mode(v, s.mode)) {
            refuse("MEMLENS_MODE", v, "off, counters, sites, sampled", "using counters");
            s.mode = live_mode::counters;
        }
    }
    std::uint64_t n = 0;
    if (const char* v = std::getenv("MEMLENS_STACK_DEPTH")) {
        if (parse_count(v, n) && in_range(stack_depth_range, n)) {
            s.stack_depth = static_cast<std::uint32_t>(n);
        } else {
            refuse(stack_depth_range.variable, v, stack_depth_range.accepted, "using 32");
        }
    }
    if (const char* v = std::getenv("MEMLENS_STACK_METHOD")) {
        unwind_method method{};
        if (parse_method(v, method)) {
            s.method = method;
        } else {
            refuse("MEMLENS_STACK_METHOD", v, "hybrid, frame-pointers, unwinder", "using hybrid");
        }
    }
    if (const char* v = std::getenv("MEMLENS_SAMPLE_BYTES")) {
        if (parse_count(v, n) && in_range(sample_bytes_range, n)) {
            s.sample_bytes = n;
        } else {
            refuse(sample_bytes_range.variable, v, sample_bytes_range.accepted, "using 512k");
        }
    }
    if (const char* v = std::getenv("MEMLENS_SAMPLE_SEED")) {
        if (parse_count(v, n)) {
            s.sample_seed = n;
        } else {
            refuse("MEMLENS_SAMPLE_SEED", v, "a whole number", "seeding from the clock");
        }
    }
    if (const char* v = std::getenv("MEMLENS_TEMPORARY_WINDOW")) {
        if (parse_count(v, n) && in_range(temporary_window_range, n)) {
            s.temporary_window = static_cast<std::uint32_t>(n);
        } else {
            refuse(temporary_window_range.variable, v, temporary_window_range.accepted, "using 1");
        }
    }
    s.blocks = read_flag("MEMLENS_BLOCKS", s.blocks, "keeping sites in block headers");
    if (read_flag("MEMLENS_LIFETIMES", s.lifetimes, "not timing blocks")) {
        // Lifetimes are kept for the blocks of the live table, which per-block mode fills.
        s.lifetimes = s.blocks = true;
        s.mode = live_mode::sites;
    }
    const char* at_exit = std::getenv("MEMLENS_LEAKS_AT_EXIT");
    if (at_exit && std::strcmp(at_exit, "kinds") == 0) {
        // Kinds need every block in the live table from the start, which sites mode keeps.
        s.leaks_at_exit = s.leak_kinds_at_exit = s.blocks = true;
        if (s.mode != live_mode::sites) s.mode = live_mode::sites;
    } else if (at_exit) {
        if (std::strcmp(at_exit, "0") == 0 || std::strcmp(at_exit, "1") == 0) {
            s.leaks_at_exit = at_exit[0] == '1';
        } else {
            refuse("MEMLENS_LEAKS_AT_EXIT", at_exit, "0, 1, kinds", "not reporting leaks at exit");
        }
    }
    if (const char* v = std::getenv("MEMLENS_OUTPUT")) {
        if (std::strlen(v) >= output_path_capacity) {
            refuse("MEMLENS_OUTPUT", v, "a path shorter than 4096 bytes", "writing no output");
        } else if (output_format_of(v) < 0) {
            refuse("MEMLENS_OUTPUT", v, output_extensions_accepted, "writing no output");
        } else {
            std::strcpy(s.output, v);
        }
    }
    if (const char* v = std::getenv("MEMLENS_OUTPUT_KIND")) {
        if (!parse_output_kind(v, s.output_kind)) refuse("MEMLENS_OUTPUT_KIND", v, output_kinds_accepted, "using peak");
    }
    // An exit report in sites mode leads with the peak, so it keeps the peak's copy unless told not to.
    const bool report_peak = s.output[0] != '\0' && s.mode == live_mode::sites;
    s.capture_peak = read_flag("MEMLENS_CAPTURE_PEAK", s.capture_peak || report_peak,
                               report_peak ? "keeping a snapshot at the peak for MEMLENS_OUTPUT"
                                           : "not keeping a snapshot at the peak");
}

}  // namespace detail
MEMLENS_NAMESPACE_END
