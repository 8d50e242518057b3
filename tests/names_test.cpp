// What stacks name: short and qualified function names, compiler clones folded, paths
// normalized, the symbolizers' answers with inlined calls, and the one rule for a stack's site
// (the first frame, inlined calls included, that is neither memlens, the runtime nor a system
// header), checked on real stacks through an inlined helper and through std::vector.
#include <memlens/detail/names.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/observe/symbols.hpp>
#include <memlens/view/snapshot.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "support.hpp"
#include "symbolizer_support.hpp"

using memlens::detail::normalized_path;
using memlens::detail::short_name;
using memlens::detail::without_clone_suffix;

TEST_CASE("short names collapse template arguments and keep lambdas and operators", "[names]") {
    CHECK(short_name("std::vector<int, std::allocator<int> >::push_back(int const&)") == "std::vector<>::push_back");
    CHECK(short_name("int& std::vector<int, std::allocator<int> >::emplace_back<int>(int&&)") ==
          "std::vector<>::emplace_back<>");
    CHECK(short_name("std::map<int, int, std::less<int>, std::allocator<std::pair<int const, int> > >::"
                     "operator[](int const&)") == "std::map<>::operator[]");
    CHECK(short_name("std::ostream& std::operator<< <std::char_traits<char> >(std::ostream&, char const*)") ==
          "std::operator<< <>");
    CHECK(short_name("bool std::operator< <int>(std::pair<int, int> const&, std::pair<int, int> const&)") ==
          "std::operator< <>");
    CHECK(short_name("main::{lambda(int)#1}::operator()(int) const") == "main::{lambda(int)#1}::operator()");
    CHECK(short_name("void run<main::{lambda()#2}>(main::{lambda()#2}&&)") == "run<>");
    CHECK(short_name("(anonymous namespace)::helper<int>(int)") == "(anonymous namespace)::helper<>");
    CHECK(short_name("Foo::operator bool() const") == "Foo::operator bool");
    // Python's names of code without a name of its own are not template arguments.
    CHECK(short_name("<module>") == "<module>");
    CHECK(short_name("outer.<locals>.inner") == "outer.<locals>.inner");
    CHECK(short_name("Widget.<listcomp>") == "Widget.<listcomp>");
    CHECK(short_name("operator new(unsigned long)") == "operator new");
    CHECK(short_name("main") == "main");
    CHECK(short_name("") == "");
}

TEST_CASE("compiler clones are folded into their function", "[names]") {
    CHECK(without_clone_suffix("f(int) [clone .isra.0]") == "f(int)");
    CHECK(without_clone_suffix("f(int) [clone .constprop.0] [clone .cold]") == "f(int)");
    CHECK(without_clone_suffix("main.cold") == "main");
    CHECK(without_clone_suffix("helper.part.0") == "helper");
    CHECK(without_clone_suffix("f.isra.0.cold") == "f");
    CHECK(without_clone_suffix("helper.constprop.12") == "helper");
    // Names that only look like clones stay.
    CHECK(without_clone_suffix("x.y") == "x.y");
    CHECK(without_clone_suffix("build2") == "build2");
    CHECK(without_clone_suffix(".cold") == ".cold");
    CHECK(without_clone_suffix("") == "");
}

TEST_CASE("source paths are normalized as text", "[names]") {
    CHECK(normalized_path("./include/memlens/sources/../observe/../view/../observe/../detail/live.hpp") ==
          "include/memlens/detail/live.hpp");
    CHECK(normalized_path("/usr/include/c++/12/bits/../bits/stl_vector.h") == "/usr/include/c++/12/bits/stl_vector.h");
    CHECK(normalized_path("a//b/./c") == "a/b/c");
    CHECK(normalized_path("./x.cpp") == "x.cpp");
    CHECK(normalized_path("../a/../../b") == "../../b");
    CHECK(normalized_path("/a/../../b") == "/b");
    CHECK(normalized_path("a/..") == ".");
    CHECK(normalized_path("/") == "/");
    CHECK(normalized_path("") == "");
}

TEST_CASE("system headers and runtime modules are told apart from the program", "[names]") {
    using memlens::detail::runtime_module;
    using memlens::detail::system_file;
    CHECK(system_file("/usr/include/c++/12/bits/stl_vector.h"));
    CHECK(system_file("/usr/lib/gcc/x86_64-linux-gnu/12/include/stddef.h"));
    CHECK(system_file("/opt/gcc-14/include/c++/14/bits/vector.tcc"));
    CHECK_FALSE(system_file("/home/me/app/src/main.cpp"));
    CHECK_FALSE(system_file("src/include/app.hpp"));
    CHECK_FALSE(system_file(""));
    CHECK(runtime_module("/lib/x86_64-linux-gnu/libstdc++.so.6"));
    CHECK(runtime_module("/lib/x86_64-linux-gnu/libc.so.6"));
    CHECK(runtime_module("/lib64/ld-linux-x86-64.so.2"));
    CHECK_FALSE(runtime_module("/usr/lib/libcrypto.so.3"));
    CHECK_FALSE(runtime_module("/home/me/app/build/app"));
}

TEST_CASE("a symbolizer's answer reads as the calls inlined at an address, innermost first", "[names][symbols]") {
    // As addr2line -a -f -i -C and llvm-symbolizer --output-style=GNU -a -f -i print it.
    const std::string text =
        "0x0000000000001234\n"
        "std::vector<int, std::allocator<int> >::push_back(int const&)\n"
        "/usr/include/c++/12/bits/stl_vector.h:1287\n"
        "grow(std::vector<int, std::allocator<int> >&) [clone .isra.0]\n"
        "./src/../src/app.cpp:27 (discriminator 2)\n"
        "0x0000000000005678\n"
        "??\n"
        "??:0\n"
        "0x9abc\n"
        "main\n"
        "app.cpp:?\n";
    const std::vector<memlens::detail::line_answer> answers = memlens::detail::parse_line_answers(text);
    REQUIRE(answers.size() == 3);
    CHECK(answers[0].pc == 0x1234);
    REQUIRE(answers[0].calls.size() == 2);
    CHECK(answers[0].calls[0].function == "std::vector<int, std::allocator<int> >::push_back(int const&)");
    CHECK(answers[0].calls[0].file == "/usr/include/c++/12/bits/stl_vector.h");
    CHECK(answers[0].calls[0].line == 1287);
    CHECK(answers[0].calls[1].function == "grow(std::vector<int, std::allocator<int> >&)");
    CHECK(answers[0].calls[1].file == "src/app.cpp");
    CHECK(answers[0].calls[1].line == 27);
    CHECK(answers[1].pc == 0x5678);
    REQUIRE(answers[1].calls.size() == 1);
    CHECK(answers[1].calls[0].function.empty());
    CHECK(answers[1].calls[0].file.empty());
    CHECK(answers[2].pc == 0x9abc);
    REQUIRE(answers[2].calls.size() == 1);
    CHECK(answers[2].calls[0].function == "main");
    CHECK(answers[2].calls[0].line == 0);
}

namespace {

char* volatile names_test_kept = nullptr;
std::vector<long>* volatile names_test_vector = nullptr;

// Inlined at every optimization level: its call has no frame of its own, only debug information
// says it was there.
constexpr unsigned inlined_new_line = __LINE__ + 3;
__attribute__((always_inline)) inline char* names_test_inlined_new(std::size_t n) {
    memlens_test::keep(&n);
    return new char[n];
}

constexpr unsigned inlined_call_line = __LINE__ + 2;
MEMLENS_TEST_NOINLINE void names_test_calls_inlined() {
    names_test_kept = names_test_inlined_new(48);
    memlens_test::keep(names_test_kept);
}

constexpr unsigned push_back_line = __LINE__ + 3;
MEMLENS_TEST_NOINLINE void names_test_grows_vector() {
    names_test_vector = new std::vector<long>;
    names_test_vector->push_back(7);
    memlens_test::keep(names_test_vector->data());
}

// What `block` left alive, recorded in sites mode.
memlens::snapshot leaked_in_sites_mode(void (*block)()) {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    REQUIRE(memlens::configure(c));
    memlens::snapshot leaked;
    {
        memlens::leak_check check;
        block();
        leaked = check.leaked();
    }
    memlens::configure(memlens::tracking_config{});
    return leaked;
}

std::string described(const std::vector<memlens::frame_info>& frames) {
    std::string out;
    for (const memlens::frame_info& f : frames) out += f.describe() + "\n";
    return out;
}

}  // namespace

TEST_CASE("an inlined call is a frame of its own, at its own line", "[names][sites]") {
    if (!memlens_test::has_symbolizer()) {
        WARN("no llvm-symbolizer or addr2line on PATH: inlined calls not checked");
        return;
    }
    const memlens::snapshot leaked = leaked_in_sites_mode(&names_test_calls_inlined);
    delete[] names_test_kept;
    names_test_kept = nullptr;
    const memlens::leak_report r = memlens::leaks(leaked);
    REQUIRE(r.sites.size() == 1);
    const std::vector<memlens::frame_info>& frames = r.sites[0].traceback;
    INFO(described(frames));
    REQUIRE(frames.size() >= 2);
    if (frames[0].file.empty()) {
        WARN("no file:line for this build (compiled without -g?)");
        return;
    }
    CHECK(frames[0].inline_call);
    // addr2line cannot name a callee without linkage name; memlens then leaves the name empty.
    CHECK((frames[0].function.empty() || frames[0].function.find("names_test_inlined_new") != std::string::npos));
    CHECK(frames[0].file.find("names_test.cpp") != std::string::npos);
    CHECK(frames[0].line == inlined_new_line);
    CHECK(frames[0].describe().find("(inlined)") != std::string::npos);
    CHECK_FALSE(frames[1].inline_call);
    CHECK(frames[1].function.find("names_test_calls_inlined") != std::string::npos);
    CHECK(frames[1].line == inlined_call_line);
    CHECK(frames[0].address == frames[1].address);

    // The site is the innermost line of the program: the inlined helper's own.
    const std::vector<memlens::statistic> lines = memlens::statistics(leaked, memlens::group_by::line);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].key.find("names_test.cpp:" + std::to_string(inlined_new_line)) != std::string::npos);
    CHECK(lines[0].bytes == 48);
}

TEST_CASE("a vector's growth is sited at the line that pushed, whatever was inlined", "[names][sites]") {
    if (!memlens_test::has_symbolizer()) {
        WARN("no llvm-symbolizer or addr2line on PATH: sites not checked");
        return;
    }
    memlens::snapshot leaked = leaked_in_sites_mode(&names_test_grows_vector);
    delete names_test_vector;
    names_test_vector = nullptr;
    memlens::symbolize(leaked);
    const std::vector<memlens::statistic> lines = memlens::statistics(leaked, memlens::group_by::line);
    std::string keys;
    for (const memlens::statistic& s : lines) keys += s.key + "\n";
    INFO(keys);
    // The vector object and its buffer: both from this function, the buffer through std::vector.
    REQUIRE(lines.size() == 2);
    const std::string own = "names_test.cpp:" + std::to_string(push_back_line - 1);
    const std::string pushed = "names_test.cpp:" + std::to_string(push_back_line);
    bool saw_own = false, saw_pushed = false;
    for (const memlens::statistic& s : lines) {
        if (s.key.find("/usr/include") != std::string::npos) FAIL("sited in a system header: " << s.key);
        saw_own = saw_own || s.key.find(own) != std::string::npos;
        saw_pushed = saw_pushed || s.key.find(pushed) != std::string::npos;
    }
    if (keys.find("names_test.cpp") == std::string::npos) {
        WARN("no file:line for this build (compiled without -g?)");
        return;
    }
    CHECK(saw_own);
    CHECK(saw_pushed);
}

TEST_CASE("both symbolizers name the same inlined calls", "[names][symbols]") {
    std::vector<std::string> tools;
    for (const char* tool : {"/usr/bin/addr2line", "/usr/bin/llvm-symbolizer"}) {
        if (::access(tool, X_OK) == 0) tools.emplace_back(tool);
    }
    if (tools.size() < 2) {
        WARN("addr2line and llvm-symbolizer are not both installed: " << tools.size() << " found");
        return;
    }
    const memlens::leak_report r = memlens::leaks(leaked_in_sites_mode(&names_test_calls_inlined));
    delete[] names_test_kept;
    names_test_kept = nullptr;
    REQUIRE(r.sites.size() == 1);
    REQUIRE_FALSE(r.sites[0].traceback.empty());
    const memlens::frame_info& inlined = r.sites[0].traceback[0];
    std::vector<std::vector<memlens::detail::line_answer>> answers;
    for (const std::string& tool : tools) {
        answers.push_back(memlens::detail::ask_symbolizer(tool, inlined.module, {inlined.offset - 1}, 10000));
    }
    REQUIRE(answers[0].size() == 1);
    REQUIRE(answers[1].size() == 1);
    const auto& a = answers[0][0].calls;
    const auto& b = answers[1][0].calls;
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() >= 2);
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO(i << ": " << a[i].function << " / " << b[i].function);
        // addr2line names a function without linkage name by its bare name, or not at all
        // where it would misname it; llvm-symbolizer qualifies it.
        const std::string bare = memlens::detail::qualified_name(a[i].function);
        const std::string full = memlens::detail::qualified_name(b[i].function);
        CHECK(full.size() >= bare.size());
        CHECK(full.compare(full.size() - std::min(full.size(), bare.size()), bare.size(), bare) == 0);
        CHECK(a[i].file == b[i].file);
        CHECK(a[i].line == b[i].line);
    }
    // What each symbolize() call gives for this frame, whichever symbolizer ran.
    CHECK((inlined.function.empty() || inlined.function.find("names_test_inlined_new") != std::string::npos));
}
