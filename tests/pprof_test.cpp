// The pprof profile: the gzip and CRC-32 it is wrapped in, and profiles read back by
// `go tool pprof` (Debian: golang-go), whose figures must be memlens's own, byte for byte.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <memlens/view/pprof.hpp>

#include "interop_support.hpp"
#include "support.hpp"
#include "tracking_support.hpp"

namespace pprof_test {

// Site A allocates three blocks of 1,000 bytes from one call site (a bound the compiler cannot
// see keeps the loop a loop), site B one of 4,096.
volatile int site_a_count = 3;
char* site_a_blocks[3];
char* site_b_block = nullptr;

MEMLENS_TEST_NOINLINE void pprof_test_site_a() {
    for (int i = 0; i < site_a_count; ++i) {
        site_a_blocks[i] = new char[1000];
        memlens_test::keep(site_a_blocks[i]);
    }
}

MEMLENS_TEST_NOINLINE void pprof_test_site_b() {
    site_b_block = new char[4096];
    memlens_test::keep(site_b_block);
}

// Live bytes and allocations at the sites whose stacks name `function`, as the snapshot has them.
struct figures {
    std::uint64_t live_bytes = 0;
    std::uint64_t allocs = 0;
    std::uint64_t bytes = 0;
};

figures figures_at(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    auto names = [&](std::uint32_t stack) {
        for (const memlens::frame_info& f : resolved.frames(stack)) {
            if (f.function.find(function) != std::string::npos) return true;
        }
        return false;
    };
    figures out;
    for (const memlens::live_allocation& a : s.allocations) {
        if (names(a.stack)) out.live_bytes += a.size;
    }
    for (const memlens::site_record& r : s.sites) {
        if (!names(r.stack)) continue;
        out.allocs += r.allocs;
        out.bytes += r.bytes;
    }
    return out;
}

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

// `go tool pprof` with `arguments`, its own files kept in `dir`.
std::string pprof(const memlens_test::temporary_directory& dir, const std::string& arguments) {
    return memlens_test::run_tool("HOME='" + dir.path + "' PPROF_TMPDIR='" + dir.path +
                                  "' GOCACHE='" + dir.path + "/cache' go tool pprof " + arguments);
}


TEST_CASE("gzip of stored blocks carries the CRC-32 and length of its data", "[pprof]") {
    CHECK(memlens::detail::crc32("123456789", 9) == 0xCBF43926u);
    CHECK(memlens::detail::crc32("", 0) == 0);
    const std::string empty = memlens::detail::gzip_stored("");
    CHECK(empty.size() == 23);
    CHECK(empty.substr(10, 5) == std::string("\x01\x00\x00\xff\xff", 5));
    // 70,000 bytes take two blocks: 65,535 then the final 4,465.
    const std::string big = memlens::detail::gzip_stored(std::string(70000, 'x'));
    CHECK(big.size() == 70000 + 10 + 2 * 5 + 8);
    CHECK(big.substr(10, 5) == std::string("\x00\xff\xff\x00\x00", 5));
    CHECK(big.substr(10 + 5 + 65535, 5) == std::string("\x01\x71\x11\x8e\xee", 5));
    CHECK(big.substr(big.size() - 4) == std::string("\x70\x11\x01\x00", 4));
}

TEST_CASE("gzip's own reader inflates the stored blocks", "[pprof]") {
    if (!memlens_test::tool_present("gzip", "gzip")) return;
    memlens_test::temporary_directory dir;
    std::string data;
    for (int i = 0; i < 20000; ++i) data += std::to_string(i) + '\n';
    {
        std::ofstream out(dir / "data.gz", std::ios::binary);
        out << memlens::detail::gzip_stored(data);
    }
    CHECK(memlens_test::run_tool("gzip -t '" + (dir / "data.gz") + "' && echo ok") == "ok\n");
    CHECK(memlens_test::run_tool("gzip -dc '" + (dir / "data.gz") + "'") == data);
}

TEST_CASE("a profile is plain protobuf or gzip, and an unwritable path is a clear error", "[pprof]") {
    memlens::snapshot s;
    memlens::pprof_options plain;
    plain.gzip = false;
    const std::string encoded = memlens::pprof_profile(s, plain);
    // The string table starts with the empty string: field 6, length 0.
    CHECK(encoded.substr(0, 2) == std::string("\x32\x00", 2));
    const std::string zipped = memlens::pprof_profile(s);
    CHECK(zipped.substr(0, 3) == "\x1f\x8b\x08");
    CHECK(zipped.substr(zipped.size() - 4) ==
          std::string(1, static_cast<char>(encoded.size())) + std::string(3, '\0'));
    memlens_test::temporary_directory dir;
    CHECK_THROWS_WITH(memlens::write_pprof(s, dir.path),
                      "memlens: cannot write " + dir.path + ": it is a directory");
    CHECK_THROWS_WITH(memlens::write_pprof(s, dir / "missing/heap.pb.gz"),
                      Catch::StartsWith("memlens: cannot write " + (dir / "missing/heap.pb.gz")));
}

TEST_CASE("go tool pprof reads memlens's figures at each site, exact, and a -base difference",
          "[pprof][interop]") {
    if (!memlens_test::tool_present("go", "golang-go")) return;
    memlens::snapshot before, after;
    {
        memlens_test::tracking_as sites(memlens::tracking_mode::sites);
        pprof_test_site_a();
        before = memlens::take_snapshot();
        pprof_test_site_b();
        after = memlens::take_snapshot();
    }
    for (char* p : site_a_blocks) delete[] p;
    delete[] site_b_block;
    memlens::symbolize(before);
    memlens::symbolize(after);
    const figures a = figures_at(after, "pprof_test_site_a");
    const figures b = figures_at(after, "pprof_test_site_b");
    CHECK(a.live_bytes == 3000);
    CHECK(a.allocs == 3);
    CHECK(b.live_bytes == 4096);

    memlens_test::temporary_directory dir;
    memlens::write_pprof(before, dir / "before.pb.gz");
    memlens::write_pprof(after, dir / "after.pb.gz");
    const std::string focus = " -focus=pprof_test_site -nodefraction=0 -nodecount=100 ";
    const std::string inuse = pprof(dir, "-top -unit=B -sample_index=inuse_space" + focus + "'" +
                                             (dir / "after.pb.gz") + "'");
    INFO(inuse);
    CHECK(memlens_test::top_flat(inuse, "pprof_test_site_a") == static_cast<long long>(a.live_bytes));
    CHECK(memlens_test::top_flat(inuse, "pprof_test_site_b") == static_cast<long long>(b.live_bytes));
    const std::string objects = pprof(dir, "-top -sample_index=alloc_objects" + focus + "'" +
                                               (dir / "after.pb.gz") + "'");
    INFO(objects);
    CHECK(memlens_test::top_flat(objects, "pprof_test_site_a") == static_cast<long long>(a.allocs));
    const std::string space = pprof(dir, "-top -unit=B -sample_index=alloc_space" + focus + "'" +
                                             (dir / "after.pb.gz") + "'");
    INFO(space);
    CHECK(memlens_test::top_flat(space, "pprof_test_site_b") == static_cast<long long>(b.bytes));

    // After minus before: only site B grew.
    const std::string grown = pprof(dir, "-top -unit=B -sample_index=inuse_space" + focus + "-base '" +
                                             (dir / "before.pb.gz") + "' '" + (dir / "after.pb.gz") + "'");
    INFO(grown);
    CHECK(memlens_test::top_flat(grown, "pprof_test_site_b") == 4096);
    CHECK(memlens_test::top_flat(grown, "pprof_test_site_a") == -1);
}

TEST_CASE("go tool pprof shows the calls inlined at an address as lines of one location",
          "[pprof][interop]") {
    if (!memlens_test::tool_present("go", "golang-go")) return;
    memlens::snapshot s;
    auto frame = [](std::uintptr_t address, const char* function, const char* file, unsigned line) {
        memlens::frame_info f;
        f.address = address;
        f.function = function;
        f.file = file;
        f.line = line;
        f.module = "/usr/bin/app";
        f.offset = address - 0x1000;
        return f;
    };
    memlens::frame_info outer = frame(0x1200, "load_index()", "app/index.cpp", 12);
    memlens::frame_info helper = frame(0x1200, "read_row()", "app/rows.hpp", 30);
    helper.inline_call = true;
    memlens::frame_info leaf = frame(0x1200, "grow_buffer()", "app/buffer.hpp", 7);
    leaf.inline_call = true;
    outer.inlined = {leaf, helper};
    s.symbols.emplace(0x1200, outer);
    s.symbols.emplace(0x1100, frame(0x1100, "main", "app/main.cpp", 40));
    s.stacks[1] = {0x1200, 0x1100};
    s.allocations = {{0x9000, 640, 0, 1, 1, 1, false}};
    s.sites = {{1, 2, 1280, 0, 0, 0}};
    memlens_test::temporary_directory dir;
    memlens::write_pprof(s, dir / "inlined.pb.gz");
    const std::string traces = pprof(dir, "-traces -sample_index=inuse_space '" + (dir / "inlined.pb.gz") + "'");
    INFO(traces);
    // Leaf first; pprof marks the lines inlined into the next as "(inline)".
    const std::size_t at = traces.find("grow_buffer()");
    REQUIRE(at != std::string::npos);
    const std::string trace = traces.substr(at);
    const std::size_t helper_at = trace.find("read_row()");
    const std::size_t outer_at = trace.find("load_index()");
    const std::size_t main_at = trace.find("main");
    CHECK(helper_at != std::string::npos);
    CHECK(helper_at < outer_at);
    CHECK(outer_at < main_at);
    CHECK(trace.substr(0, trace.find('\n')).find("(inline)") != std::string::npos);
    CHECK(traces.find("640") != std::string::npos);
    const std::string lines = pprof(dir, "-top -lines -unit=B -sample_index=alloc_space '" +
                                             (dir / "inlined.pb.gz") + "'");
    INFO(lines);
    CHECK(lines.find("app/buffer.hpp:7") != std::string::npos);
    CHECK(memlens_test::top_flat(lines, "grow_buffer()") == 1280);
}

}  // namespace pprof_test
