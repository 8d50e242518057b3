// libFuzzer target for the suppressions parser: any input parses without a crash into rules and
// skipped lines, the rules written back as "leak:" lines parse again to the same patterns, and
// matching any pattern against any text ends.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <memlens/view/suppressions.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const memlens::suppressions s = memlens::suppressions::parse(text, "fuzz.supp", true);
    std::string again;
    for (const memlens::suppression& rule : s.rules()) {
        if (rule.pattern.empty() || rule.line == 0) std::abort();
        again += "leak:" + rule.pattern + "\n";
    }
    const memlens::suppressions reread = memlens::suppressions::parse(again, "again.supp", true);
    if (reread.rules().size() != s.rules().size() || !reread.errors().empty()) std::abort();
    for (std::size_t i = 0; i < s.rules().size(); ++i) {
        if (reread.rules()[i].pattern != s.rules()[i].pattern) std::abort();
    }
    // The first half as a pattern against the second as a function name, file and module.
    memlens::frame_info f;
    f.function = std::string(text.substr(size / 2));
    f.file = f.function;
    f.module = f.function;
    (void)memlens::suppressions::pattern_matches(text.substr(0, size / 2), f.function);
    (void)s.match({f});
    return 0;
}
