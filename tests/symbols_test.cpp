// Symbolization of captured return addresses: static and C++ functions of the program, libc,
// file:line through an external symbolizer, garbage addresses, corrupt ELF files, the cache,
// threads and a stuck symbolizer.
#include <memlens/observe/symbols.hpp>
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "symbolizer_support.hpp"

namespace {

// The return address of its call: an address inside the caller, right after the call.
__attribute__((noinline)) std::uintptr_t return_address() {
    std::uintptr_t a = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
    asm volatile("" : "+r"(a));
    return a;
}

// Keeps the call before it from becoming a tail jump, which would leave no return address here.
inline std::uintptr_t kept(std::uintptr_t a) {
    asm volatile("" : "+r"(a));
    return a;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::vector<unsigned char> read_file(const char* path) {
    std::vector<unsigned char> bytes;
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bytes;
    unsigned char buffer[1 << 16];
    for (::ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) {
        bytes.insert(bytes.end(), buffer, buffer + n);
    }
    ::close(fd);
    return bytes;
}

}  // namespace

// Each site writes its own number: GCC folds functions with identical bodies into one at -O2
// (-fipa-icf), and then every site would carry the same name.
static volatile int site_tag = 0;

constexpr unsigned hidden_line = __LINE__ + 4;
// Not exported: only the program's .symtab names it.
static __attribute__((noinline)) std::uintptr_t hidden_site() {
    site_tag = 1;
    return kept(return_address());
}

#define MEMLENS_TEST_SITE(name, tag)                                                           \
    static __attribute__((noinline)) std::uintptr_t name() {                                   \
        site_tag = tag;                                                                        \
        return kept(return_address());                                                         \
    }
MEMLENS_TEST_SITE(timeout_site, 2)
MEMLENS_TEST_SITE(disabled_site, 3)
MEMLENS_TEST_SITE(thread_site_a, 4)
MEMLENS_TEST_SITE(thread_site_b, 5)
MEMLENS_TEST_SITE(counted_site, 6)
#undef MEMLENS_TEST_SITE

namespace memlens_test {
struct widget {
    __attribute__((noinline)) std::uintptr_t site(int) const {
        site_tag = 7;
        return kept(return_address());
    }
};
}  // namespace memlens_test

TEST_CASE("a static function of the program resolves by name", "[symbols]") {
    const std::uintptr_t site = hidden_site();
    const std::vector<memlens::frame_info> frames = memlens::symbolize({site}, {false});
    REQUIRE(frames.size() == 1);
    const memlens::frame_info& f = frames[0];
    INFO(f.describe());
    CHECK(f.address == site);
    CHECK(contains(f.function, "hidden_site"));
    CHECK_FALSE(f.module.empty());
    CHECK(f.offset != 0);
    CHECK(f.file.empty());
    // Its own entry point + 1 lies inside it as well.
    const auto entry = reinterpret_cast<std::uintptr_t>(&hidden_site) + 1;
    CHECK(contains(memlens::symbolize({entry}, {false})[0].function, "hidden_site"));
}

TEST_CASE("a C++ member function is demangled", "[symbols]") {
    const memlens_test::widget w;
    const memlens::frame_info f = memlens::symbolize({w.site(3)}, {false})[0];
    INFO(f.describe());
    CHECK(contains(f.function, "memlens_test::widget::site(int) const"));
}

TEST_CASE("a libc function resolves to its name in libc", "[symbols]") {
    const auto entry = reinterpret_cast<std::uintptr_t>(&::getpid) + 1;
    const memlens::frame_info f = memlens::symbolize({entry}, {false})[0];
    INFO(f.describe());
    CHECK(contains(f.function, "getpid"));
    CHECK(contains(f.module, "libc"));
    CHECK(contains(f.describe(), "getpid ("));
}

TEST_CASE("file and line come from the external symbolizer", "[symbols]") {
    if (!memlens_test::has_symbolizer()) {
        WARN("no llvm-symbolizer or addr2line on PATH: file:line not checked");
        return;
    }
    const memlens::frame_info f = memlens::symbolize({hidden_site()})[0];
    INFO(f.describe());
    if (f.file.empty()) {
        WARN("no file:line for this build (compiled without -g?)");
        return;
    }
    CHECK(contains(f.file, "symbols_test.cpp"));
    CHECK(f.line == hidden_line);
    CHECK(contains(f.describe(), "hidden_site"));
    CHECK(contains(f.describe(), "symbols_test.cpp:" + std::to_string(hidden_line)));
}

TEST_CASE("garbage addresses give module + offset or unmapped, never a crash", "[symbols]") {
    const std::vector<std::uintptr_t> garbage{0, 1, 0xdeadbeef, UINTPTR_MAX,
                                              UINTPTR_MAX / 2, 0x1000};
    const std::vector<memlens::frame_info> frames = memlens::symbolize(garbage);
    REQUIRE(frames.size() == garbage.size());
    for (const memlens::frame_info& f : frames) {
        INFO(f.describe());
        CHECK(f.function.empty());
        if (f.module.empty()) {
            CHECK(contains(f.describe(), "(unmapped)"));
        } else {
            CHECK(contains(f.describe(), "+0x"));
        }
    }
    CHECK(frames[0].describe() == "0x0 (unmapped)");
    CHECK(frames[1].describe() == "0x1 (unmapped)");
    CHECK(memlens::symbolize({}).empty());
}

TEST_CASE("describe names what is known", "[symbols]") {
    memlens::frame_info f;
    f.address = 0x7f0000001234;
    f.module = "/usr/lib/libfoo.so.1";
    f.offset = 0x1a2b;
    CHECK(f.describe() == "libfoo.so.1+0x1a2b");
    f.function = "foo::bar(int)";
    CHECK(f.describe() == "foo::bar(int) (libfoo.so.1+0x1a2b)");
    f.file = "src/bar.cpp";
    f.line = 42;
    CHECK(f.describe() == "foo::bar(int) at src/bar.cpp:42");
    f.module.clear();
    f.function.clear();
    f.file.clear();
    CHECK(f.describe() == "0x7f0000001234 (unmapped)");
}

TEST_CASE("a second call is served from the cache and nothing is counted", "[symbols]") {
    const std::vector<std::uintptr_t> stack{counted_site(), hidden_site(),
                                            reinterpret_cast<std::uintptr_t>(&::getpid) + 1};
    const memlens::memory_stats before = memlens::stats(memlens::domain::heap());
    const std::uint64_t runs_before = memlens::detail::symbolizer_runs.load();
    std::vector<memlens::frame_info> first = memlens::symbolize(stack);
    const std::uint64_t runs_first = memlens::detail::symbolizer_runs.load();
    std::vector<memlens::frame_info> second = memlens::symbolize(stack);
    const std::uint64_t runs_second = memlens::detail::symbolizer_runs.load();
    first.clear();
    first.shrink_to_fit();
    const memlens::memory_stats after = memlens::stats(memlens::domain::heap());

    CHECK(runs_second == runs_first);
    if (memlens_test::has_symbolizer()) CHECK(runs_first > runs_before);
    // memlens's own memory, the result included, is not charged to the host.
    CHECK(after.allocs == before.allocs);
    CHECK(after.frees == before.frees);
    CHECK(after.current == before.current);
    REQUIRE(second.size() == 3);
    CHECK(contains(second[0].function, "counted_site"));
    const std::vector<memlens::frame_info> third = memlens::symbolize(stack);
    for (std::size_t i = 0; i < third.size(); ++i) {
        CHECK(third[i].function == second[i].function);
        CHECK(third[i].file == second[i].file);
        CHECK(third[i].line == second[i].line);
        CHECK(third[i].module == second[i].module);
    }
}

TEST_CASE("two threads symbolize at once", "[symbols]") {
    const std::vector<std::uintptr_t> stack{thread_site_a(), thread_site_b(),
                                            reinterpret_cast<std::uintptr_t>(&::getppid) + 1,
                                            0xdeadbeef};
    std::vector<memlens::frame_info> seen[2];
    bool same[2] = {true, true};
    auto work = [&](int k) {
        for (int round = 0; round < 20; ++round) {
            std::vector<memlens::frame_info> got = memlens::symbolize(stack);
            if (round == 0) {
                seen[k] = std::move(got);
                continue;
            }
            for (std::size_t i = 0; i < got.size(); ++i) {
                same[k] = same[k] && got[i].function == seen[k][i].function &&
                          got[i].file == seen[k][i].file && got[i].line == seen[k][i].line;
            }
        }
    };
    std::thread a(work, 0);
    std::thread b(work, 1);
    a.join();
    b.join();
    CHECK(same[0]);
    CHECK(same[1]);
    REQUIRE(seen[0].size() == stack.size());
    REQUIRE(seen[1].size() == stack.size());
    CHECK(contains(seen[0][0].function, "thread_site_a"));
    CHECK(contains(seen[1][1].function, "thread_site_b"));
    CHECK(contains(seen[0][2].function, "getppid"));
    for (std::size_t i = 0; i < stack.size(); ++i) {
        CHECK(seen[0][i].function == seen[1][i].function);
    }
}

TEST_CASE("a stuck symbolizer is killed and a disabled one never runs", "[symbols]") {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp && tmp[0] ? tmp : "/tmp") + "/memlens-symbols-XXXXXX";
    REQUIRE(::mkdtemp(&dir[0]) != nullptr);
    const std::string tool = dir + "/stuck-symbolizer";
    const int fd = ::open(tool.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    REQUIRE(fd >= 0);
    const char script[] = "#!/bin/sh\nexec sleep 30\n";
    REQUIRE(::write(fd, script, sizeof script - 1) == static_cast<::ssize_t>(sizeof script - 1));
    ::close(fd);

    const char* saved = std::getenv("MEMLENS_SYMBOLIZER");
    const std::string restore = saved ? saved : "";
    ::setenv("MEMLENS_SYMBOLIZER", tool.c_str(), 1);
    memlens::symbolize_options quick;
    quick.timeout_ms = 300;
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t runs_before = memlens::detail::symbolizer_runs.load();
    const memlens::frame_info stuck = memlens::symbolize({timeout_site()}, quick)[0];
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(memlens::detail::symbolizer_runs.load() == runs_before + 1);
    CHECK(waited < std::chrono::seconds(10));
    CHECK(contains(stuck.function, "timeout_site"));
    CHECK(stuck.file.empty());

    ::setenv("MEMLENS_SYMBOLIZER", "", 1);
    const memlens::frame_info off = memlens::symbolize({disabled_site()})[0];
    CHECK(memlens::detail::symbolizer_runs.load() == runs_before + 1);
    CHECK(contains(off.function, "disabled_site"));
    CHECK(off.file.empty());

    if (saved) {
        ::setenv("MEMLENS_SYMBOLIZER", restore.c_str(), 1);
    } else {
        ::unsetenv("MEMLENS_SYMBOLIZER");
    }
    ::unlink(tool.c_str());
    ::rmdir(dir.c_str());
}

// Reads prefixes of `image` and copies with bytes of its header and section table changed.
static void check_damaged_images(const std::vector<unsigned char>& image) {
    // Every prefix length class: inside the header, the section table, the symbol tables.
    std::mt19937_64 random(0x5eed);
    for (int i = 0; i < 200; ++i) {
        const std::size_t cut = i < 64 ? static_cast<std::size_t>(i)
                                       : static_cast<std::size_t>(random() % image.size());
        const std::vector<unsigned char> prefix(image.begin(),
                                                image.begin() + static_cast<std::ptrdiff_t>(cut));
        memlens::detail::read_elf_symbols(prefix.data(), prefix.size());
    }
    // Random bytes in the header and the section headers: offsets and counts become nonsense.
    std::vector<unsigned char> bent = image;
    ElfW(Ehdr) header;
    std::memcpy(&header, image.data(), sizeof header);
    const std::size_t table_at = header.e_shoff;
    const std::size_t table_size = std::size_t{header.e_shnum} * sizeof(ElfW(Shdr));
    REQUIRE(table_at + table_size <= image.size());
    for (int i = 0; i < 300; ++i) {
        bent = image;
        for (int k = 0; k < 8; ++k) {
            const std::size_t at = k % 2 == 0 ? random() % sizeof header
                                              : table_at + random() % table_size;
            bent[at] = static_cast<unsigned char>(random());
        }
        memlens::detail::read_elf_symbols(bent.data(), bent.size());
    }
}

TEST_CASE("truncated and corrupt ELF files read as modules without names", "[symbols]") {
    const std::vector<unsigned char> image = read_file("/proc/self/exe");
    REQUIRE(image.size() > 4096);
    const memlens::detail::symbol_table whole =
        memlens::detail::read_elf_symbols(image.data(), image.size());
    const auto entry = reinterpret_cast<std::uintptr_t>(&hidden_site);
    const memlens::frame_info self = memlens::symbolize({entry + 1}, {false})[0];
    const char* name = whole.find(self.offset - 1);
    REQUIRE(name != nullptr);
    CHECK(contains(name, "hidden_site"));

    CHECK(memlens::detail::read_elf_symbols(nullptr, 0).symbols.empty());
    const unsigned char junk[] = "\x7f" "ELF this is not an object file at all";
    CHECK(memlens::detail::read_elf_symbols(junk, sizeof junk).symbols.empty());

    // The damage is done to a small library (18 KB, where the test program is tens of MB and
    // each case copies the image), so that random cuts and bytes land densely in every part.
    const std::vector<unsigned char> small = read_file(MEMLENS_UNWIND_LIBRARY_A);
    REQUIRE(!memlens::detail::read_elf_symbols(small.data(), small.size()).symbols.empty());
    check_damaged_images(small);
    SUCCEED("no crash");
}


TEST_CASE("the symbolizer runs without memlens's variables and without memlens's own library", "[symbols]") {
    // This test program stands for the library that holds memlens: it is not loaded by
    // LD_PRELOAD here, but the rule only compares files.
    char self[4096] = {};
    const ssize_t length = ::readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(length > 0);
    std::string path_entry = "PATH=/usr/bin";
    std::string mode_entry = "MEMLENS_MODE=sites";
    std::string output_entry = "MEMLENS_OUTPUT=run.%p.html";
    std::string preload_entry = std::string("LD_PRELOAD=/nowhere/first.so:") + self + " /nowhere/last.so";
    std::string home_entry = "HOME=/root";
    char* env[] = {&path_entry[0], &mode_entry[0], &output_entry[0], &preload_entry[0], &home_entry[0], nullptr};
    const std::vector<std::string> kept = memlens::detail::child_environment(env, "/proc/self/exe");
    CHECK(kept == std::vector<std::string>{"PATH=/usr/bin", "LD_PRELOAD=/nowhere/first.so:/nowhere/last.so",
                                           "HOME=/root"});

    // With memlens's library alone in LD_PRELOAD, the variable goes.
    std::string only_self = std::string("LD_PRELOAD=") + self;
    char* alone[] = {&only_self[0], &home_entry[0], nullptr};
    CHECK(memlens::detail::child_environment(alone, "/proc/self/exe") == std::vector<std::string>{"HOME=/root"});
    // Nothing known about this code's file: only the MEMLENS_* variables go.
    CHECK(memlens::detail::child_environment(env, nullptr).size() == 3);
}
