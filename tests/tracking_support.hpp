// Helpers of the tests that switch memlens's tracking mode and read the messages it reports.
#pragma once

#include <memlens/core/errors.hpp>
#include <memlens/observe/sites.hpp>

#include <catch2/catch.hpp>

#include <string>

namespace memlens_test {

// Tracking as asked for the life of the object; then counters mode again, whatever a test changed.
struct tracking_as {
    explicit tracking_as(const memlens::tracking_config& c) { REQUIRE(memlens::configure(c)); }
    explicit tracking_as(memlens::tracking_mode m) {
        memlens::tracking_config c;
        c.mode = m;
        REQUIRE(memlens::configure(c));
    }
    ~tracking_as() { memlens::configure(memlens::tracking_config{}); }
    tracking_as(const tracking_as&) = delete;
    tracking_as& operator=(const tracking_as&) = delete;
};

// Per-block mode (sites with every block in the live table, which classify_leaks reads) for
// the life of the object; then the settings from before.
class per_block_mode {
public:
    per_block_mode() : saved_(memlens::current_config()) {
        memlens::tracking_config c = saved_;
        c.mode = memlens::tracking_mode::sites;
        c.blocks = true;
        memlens::configure(c);
    }
    ~per_block_mode() { memlens::configure(saved_); }
    per_block_mode(const per_block_mode&) = delete;
    per_block_mode& operator=(const per_block_mode&) = delete;

private:
    memlens::tracking_config saved_;
};

// The last message memlens reported while an errors_remembered was alive.
inline std::string last_error;

inline void remember_error(const char* message) noexcept {
    try {
        last_error = message;
    } catch (...) {
    }
}

// Sends memlens's error messages to last_error for the life of the object.
struct errors_remembered {
    errors_remembered() {
        last_error.clear();
        memlens::set_error_handler(&remember_error);
    }
    ~errors_remembered() { memlens::set_error_handler(nullptr); }
    errors_remembered(const errors_remembered&) = delete;
    errors_remembered& operator=(const errors_remembered&) = delete;
};

}  // namespace memlens_test
