// massif's file format: the text of a hand-built snapshot, and files read by valgrind's own
// ms_print (Debian: valgrind), whose graph, peak and trees must show memlens's figures.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <memlens/view/massif.hpp>

#include "interop_support.hpp"
#include "support.hpp"
#include "tracking_support.hpp"

namespace massif_test {

memlens::frame_info frame(std::uintptr_t address, const char* function, const char* file, unsigned line) {
    memlens::frame_info f;
    f.address = address;
    f.function = function;
    f.file = file;
    f.line = line;
    f.module = "/usr/bin/app";
    return f;
}

// main calls load_index, which allocates 9,000 bytes in three blocks, and parse, which
// allocates 1,000 and 50 bytes from two lines; a lambda allocates 40 bytes. At the peak
// load_index held 20,000 bytes and parse 500.
memlens::snapshot hand_built() {
    memlens::snapshot s;
    s.run.mode = "sites";
    s.run.command_line = "./app --load";
    for (const auto& f : {frame(0x1000, "main", "app/main.cpp", 40), frame(0x2000, "load_index()", "app/index.cpp", 12),
                          frame(0x3000, "parse()", "app/parse.cpp", 8), frame(0x3010, "parse()", "app/parse.cpp", 9),
                          frame(0x4000, "main::{lambda()#1}::operator()() const", "app/main.cpp", 44)}) {
        s.symbols.emplace(f.address, f);
    }
    s.stacks[1] = {0x2000, 0x1000};
    s.stacks[2] = {0x3000, 0x1000};
    s.stacks[3] = {0x3010, 0x1000};
    s.stacks[4] = {0x4000, 0x1000};
    s.allocations = {{0x9000, 3000, 0, 1, 1, 1, false}, {0xa000, 6000, 0, 1, 1, 2, false},
                     {0xb000, 1000, 0, 2, 1, 3, false}, {0xc000, 50, 0, 3, 1, 4, false},
                     {0xd000, 40, 0, 4, 1, 5, false}};
    s.sites = {{1, 5, 30000, 0, 3, 20000}, {2, 2, 2000, 0, 1, 500}, {3, 1, 50, 0, 0, 0}, {4, 1, 40, 0, 0, 0}};
    s.peak_kept = true;
    s.peak_current = 20500;
    s.timeline = {{0, 0, 0, "start"}, {0.25, 20500, 20500, "loaded"}, {0.5, 10090, 20500, "parsed"}};
    return s;
}


TEST_CASE("massif's format: points, the peak's tree and the live tree, small entries summed", "[massif]") {
    const std::string text = memlens::massif_text(hand_built());
    const std::string root = " (heap allocation functions) malloc/new/new[], --alloc-fns, etc.\n";
    CHECK(text ==
          "desc: memlens, sites mode\n"
          "cmd: ./app --load\n"
          "time_unit: ms\n"
          "#-----------\nsnapshot=0\n#-----------\ntime=0\nmem_heap_B=0\nmem_heap_extra_B=0\n"
          "mem_stacks_B=0\nheap_tree=empty\n"
          "#-----------\nsnapshot=1\n#-----------\ntime=250\nmem_heap_B=20500\nmem_heap_extra_B=0\n"
          "mem_stacks_B=0\nheap_tree=peak\n"
          "n2: 20500" + root +
          " n1: 20000 0x2000: load_index() (app/index.cpp:12)\n"
          "  n0: 20000 0x1000: main (app/main.cpp:40)\n"
          " n1: 500 0x3000: parse() (app/parse.cpp:8)\n"
          "  n0: 500 0x1000: main (app/main.cpp:40)\n"
          "#-----------\nsnapshot=2\n#-----------\ntime=250\nmem_heap_B=20500\nmem_heap_extra_B=0\n"
          "mem_stacks_B=0\nheap_tree=empty\n"
          "#-----------\nsnapshot=3\n#-----------\ntime=500\nmem_heap_B=10090\nmem_heap_extra_B=0\n"
          "mem_stacks_B=0\nheap_tree=empty\n"
          "#-----------\nsnapshot=4\n#-----------\ntime=500\nmem_heap_B=10090\nmem_heap_extra_B=0\n"
          "mem_stacks_B=0\nheap_tree=detailed\n"
          "n3: 10090" + root +
          " n1: 9000 0x2000: load_index() (app/index.cpp:12)\n"
          "  n0: 9000 0x1000: main (app/main.cpp:40)\n"
          " n1: 1000 0x3000: parse() (app/parse.cpp:8)\n"
          "  n0: 1000 0x1000: main (app/main.cpp:40)\n"
          " n0: 90 in 2 places, all below massif's threshold (1.00%)\n");
    memlens::massif_options all;
    all.threshold = 0;
    all.depth = 1;
    const std::string deep = memlens::massif_text(hand_built(), all);
    INFO(deep);
    // '#' starts a comment for ms_print: the lambda's name keeps none.
    CHECK(deep.find(" n0: 40 0x4000: main::{lambda()_1}::operator()() const (app/main.cpp:44)\n") !=
          std::string::npos);
    CHECK(deep.find(" n0: 50 0x3010: parse() (app/parse.cpp:9)\n") != std::string::npos);
}

TEST_CASE("a massif file to an unwritable path is a clear error", "[massif]") {
    memlens_test::temporary_directory dir;
    CHECK_THROWS_WITH(memlens::write_massif(hand_built(), dir.path),
                      "memlens: cannot write " + dir.path + ": it is a directory");
    memlens::write_massif(hand_built(), dir / "massif.out.1");
    CHECK(memlens_test::run_tool("cat '" + (dir / "massif.out.1") + "'") == memlens::massif_text(hand_built()));
}

TEST_CASE("ms_print reads the timeline, the peak and the trees of a hand-built snapshot", "[massif][interop]") {
    if (!memlens_test::tool_present("ms_print", "valgrind")) return;
    memlens_test::temporary_directory dir;
    memlens::write_massif(hand_built(), dir / "massif.out.1");
    const std::string printed = memlens_test::run_tool("ms_print '" + (dir / "massif.out.1") + "'");
    INFO(printed);
    CHECK(printed.find("Command:            ./app --load\n") != std::string::npos);
    // The graph's height is the peak, 20,500 bytes: "20.02^" KB, its peak column drawn with '#'.
    CHECK(printed.find("    KB\n20.02^") != std::string::npos);
    CHECK(printed.find('#', printed.find("20.02^")) != std::string::npos);
    // The snapshot table: number, time, total, useful heap, extra heap, stacks.
    CHECK(printed.find("  1            250           20,500           20,500             0            0") !=
          std::string::npos);
    CHECK(printed.find("100.00% (20,500B) (heap allocation functions) malloc/new/new[], --alloc-fns, etc.\n"
                       "->97.56% (20,000B) 0x2000: load_index() (app/index.cpp:12)\n"
                       "| ->97.56% (20,000B) 0x1000: main (app/main.cpp:40)\n") != std::string::npos);
    CHECK(printed.find("100.00% (10,090B) (heap allocation functions) malloc/new/new[], --alloc-fns, etc.\n"
                       "->89.20% (9,000B) 0x2000: load_index() (app/index.cpp:12)\n") != std::string::npos);
    CHECK(printed.find("->00.89% (90B) in 1+ places, all below ms_print's threshold (01.00%)") != std::string::npos);
}

volatile int site_a_count = 3;
char* site_a_blocks[3];
char* site_b_block = nullptr;

MEMLENS_TEST_NOINLINE void massif_test_site_a() {
    for (int i = 0; i < site_a_count; ++i) {
        site_a_blocks[i] = new char[1000];
        memlens_test::keep(site_a_blocks[i]);
    }
}

MEMLENS_TEST_NOINLINE void massif_test_site_b() {
    site_b_block = new char[40000];
    memlens_test::keep(site_b_block);
}


TEST_CASE("ms_print reads a series of real snapshots: the peak and its largest entry, exact", "[massif][interop]") {
    if (!memlens_test::tool_present("ms_print", "valgrind")) return;
    std::vector<memlens::snapshot> series;
    {
        memlens_test::tracking_as sites(memlens::tracking_mode::sites);
        massif_test_site_a();
        series.push_back(memlens::take_snapshot());
        massif_test_site_b();
        series.push_back(memlens::take_snapshot());
        delete[] site_b_block;
        series.push_back(memlens::take_snapshot());
    }
    for (char* p : site_a_blocks) delete[] p;
    for (memlens::snapshot& s : series) memlens::symbolize(s);
    std::uint64_t live[3] = {};
    for (int i = 0; i < 3; ++i) {
        for (const memlens::live_allocation& a : series[static_cast<std::size_t>(i)].allocations) live[i] += a.size;
    }
    // Whatever else the test runner allocated meanwhile, the two sites are there.
    REQUIRE(live[1] >= 43000);
    REQUIRE(live[1] - live[0] >= 40000);

    memlens_test::temporary_directory dir;
    memlens::write_massif(series, dir / "massif.out.2");
    const std::string printed = memlens_test::run_tool("ms_print '" + (dir / "massif.out.2") + "'");
    INFO(printed);
    const std::string peak = memlens::detail::group_digits(live[1]);
    // The second snapshot is the peak: its tree's total, and site B its largest entry.
    const std::size_t tree = printed.find("100.00% (" + peak + "B) (heap allocation functions)");
    REQUIRE(tree != std::string::npos);
    const std::string top = printed.substr(tree, printed.find('\n', printed.find("\n->", tree) + 1) - tree);
    CHECK(top.find("->") != std::string::npos);
    CHECK(top.find("(40,000B) 0x") != std::string::npos);
    CHECK(top.find("massif_test_site_b()") != std::string::npos);
    CHECK(printed.find("Detailed snapshots: [0, 1 (peak), 2]") != std::string::npos);
    // The first snapshot's tree holds site A's three blocks.
    CHECK(printed.find("(3,000B) 0x") != std::string::npos);
    CHECK(printed.find("massif_test_site_a()") != std::string::npos);
}

}  // namespace massif_test
