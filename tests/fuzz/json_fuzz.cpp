// libFuzzer target for the snapshot reader: any input is either refused with json_error or read,
// and what is read writes back to a text that reads again to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <memlens/view/json.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    memlens::snapshot s;
    try {
        s = memlens::from_json(text);
    } catch (const memlens::json_error&) {
        return 0;
    }
    // Every frame has a symbol, so to_json never asks the symbolizer.
    const std::string once = memlens::to_json(s);
    const std::string twice = memlens::to_json(memlens::from_json(once));
    if (once != twice) std::abort();
    return 0;
}
