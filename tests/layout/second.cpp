// Built with MEMLENS_MAX_DOMAINS=32 (tests/CMakeLists.txt): a layout the first unit did not use.
#include <cstdio>
#include <cstring>

#include <memlens/track.hpp>

namespace {

// The handler may run inside an allocation hook, so it copies into a fixed buffer.
char message[1024];

void keep_message(const char* text) noexcept {
    std::strncpy(message, text, sizeof message - 1);
}

}  // namespace

bool second_unit_refused() {
    memlens::set_error_handler(&keep_message);
    static char block[50];
    const memlens::domain second = memlens::domain::named("second");
    memlens::record_alloc(block, sizeof block, second);
    const memlens::memory_stats after_alloc = memlens::stats(second);
    memlens::record_free(block, sizeof block, second);
    const memlens::memory_stats after_free = memlens::stats(second);
    memlens::set_error_handler(nullptr);
    if (std::strstr(message, "MEMLENS_MAX_DOMAINS") == nullptr ||
        std::strstr(message, "_d64_") == nullptr || std::strstr(message, "_d32_") == nullptr) {
        std::printf("no message naming both layouts; got: \"%s\"\n", message);
        return false;
    }
    if (after_alloc.allocs != 0 || after_alloc.current != 0 || after_free.frees != 0) {
        std::puts("the refused unit counted its events");
        return false;
    }
    std::printf("refused with: %s\n", message);
    return true;
}
