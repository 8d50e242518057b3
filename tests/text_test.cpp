// Text views (summary, site table, call tree) and folded stacks: golden text on hand-built
// snapshots, and a real leak check whose tree and folded stacks name the leaking function.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <memlens/observe/sites.hpp>
#include <memlens/view/folded.hpp>
#include <memlens/view/snapshot.hpp>
#include <memlens/view/text.hpp>

#include "support.hpp"

namespace {

memlens::frame_info frame(std::uintptr_t address, const char* function, const char* file,
                          unsigned line) {
    memlens::frame_info f;
    f.address = address;
    f.function = function;
    f.file = file;
    f.line = line;
    f.module = "app";
    f.offset = address;
    return f;
}

void allocate(memlens::snapshot& s, std::uint32_t stack, std::uint64_t size, int times,
              bool sampled = false) {
    for (int i = 0; i < times; ++i) {
        memlens::live_allocation a;
        a.address = 0x10000 + 0x100 * s.allocations.size();
        a.size = size;
        a.stack = stack;
        a.thread = 1;
        a.sequence = s.allocations.size() + 1;
        a.sampled = sampled;
        s.allocations.push_back(a);
    }
}

// Every figure below follows from these stacks (innermost frame first):
//   1: operator new <- parse_line <- load_index (index.cpp:12) <- run <- main   3 x 1,000 bytes
//   2: operator new <- std::vector::reserve <- load_index (index.cpp:15) <- run <- main   4,096
//   3: an unnamed frame (app+0x700) <- run <- main                               2 x 100 bytes
//   4: tiny <- main                                                              8 bytes
//   5: churn <- main: everything it allocated was freed
//   and one allocation of 16 bytes without a stack.
// Live: 7,320 bytes in 8 allocations.
memlens::snapshot sample_snapshot() {
    memlens::snapshot s;
    const memlens::frame_info frames[] = {
        frame(0x100, "main", "app/main.cpp", 40),
        frame(0x200, "run(int)", "app/main.cpp", 30),
        frame(0x300, "load_index()", "app/index.cpp", 12),
        frame(0x310, "load_index()", "app/index.cpp", 15),
        frame(0x400, "parse_line(std::string const&)", "app/parse.cpp", 8),
        frame(0x500, "std::vector<int, std::allocator<int> >::reserve(unsigned long)",
              "bits/vector.tcc", 72),
        frame(0x600, "operator new(unsigned long)", "", 0),
        frame(0x700, "", "", 0),
        frame(0x800, "tiny()", "app/main.cpp", 50),
        frame(0x900, "churn()", "app/main.cpp", 60),
    };
    for (const memlens::frame_info& f : frames) s.symbols.emplace(f.address, f);
    s.stacks[1] = {0x600, 0x400, 0x300, 0x200, 0x100};
    s.stacks[2] = {0x600, 0x500, 0x310, 0x200, 0x100};
    s.stacks[3] = {0x700, 0x200, 0x100};
    s.stacks[4] = {0x800, 0x100};
    s.stacks[5] = {0x900, 0x100};
    allocate(s, 1, 1000, 3);
    allocate(s, 2, 4096, 1);
    allocate(s, 3, 100, 2);
    allocate(s, 4, 8, 1);
    allocate(s, 0, 16, 1);
    s.sites = {{1, 10, 10000, 0}, {2, 2, 8192, 0}, {3, 2, 200, 0}, {4, 1, 8, 0}, {5, 500, 64000, 480}};
    s.domain_names = {"process", "heap", "index"};
    s.totals = {7320, 20000, 90000, 600, 592};
    s.domains = {{"heap", {7320, 20000, 90000, 598, 590}},
                 {"index", {0, 4096, 8192, 2, 2}},
                 {"unused", {}}};
    memlens::named_scope_stats load;
    load.name = "load";
    load.file = "app/index.cpp";
    load.line = 10;
    load.function = "load_index()";
    load.calls = 2;
    load.allocated = 12288;
    load.allocs = 12;
    load.net = 7096;
    load.max_peak = 8192;
    s.scopes = {load};
    memlens::type_stats order;
    order.name = "order";
    order.size = 24;
    order.instances = 10;
    order.bytes = 240;
    order.peak = 12;
    order.constructed = 15;
    s.types = {order};
    return s;
}

// One sampled allocation of 1 KiB at a 1 KiB mean interval stands for 1 / (1 - e^-1) = 1.58
// allocations, 1,620 bytes.
memlens::snapshot sampled_snapshot() {
    memlens::snapshot s;
    s.symbols.emplace(0x100, frame(0x100, "main", "app/main.cpp", 40));
    s.symbols.emplace(0x200, frame(0x200, "run(int)", "app/main.cpp", 30));
    s.stacks[1] = {0x200, 0x100};
    s.sample_bytes = 1024;
    allocate(s, 1, 1024, 1, true);
    return s;
}

}  // namespace

TEST_CASE("the summary shows totals, live allocations, top sites, domains, scopes and types",
          "[text]") {
    memlens::summary_options o;
    o.top_sites = 3;
    CHECK(memlens::format_summary(sample_snapshot(), o) ==
          "Totals (every domain)\n"
          "  current 7.1 KiB, peak 19.5 KiB, total 87.9 KiB in 600 allocations, 592 frees\n"
          "\n"
          "Live allocations in this snapshot\n"
          "  8 allocations, 7.1 KiB\n"
          "\n"
          "Top sites by live bytes\n"
          "    bytes  share  allocations  site\n"
          "  4.0 KiB  56.0%            1  load_index at app/index.cpp:15\n"
          "  2.9 KiB  41.0%            3  parse_line at app/parse.cpp:8\n"
          "    200 B   2.7%            2  app+0x700\n"
          "  ... 2 more sites\n"
          "\n"
          "Domains\n"
          "  domain  current      peak     total  allocations  frees\n"
          "  heap    7.1 KiB  19.5 KiB  87.9 KiB          598    590\n"
          "  index       0 B   4.0 KiB   8.0 KiB            2      2\n"
          "\n"
          "Named scopes\n"
          "  scope  calls  allocated  allocations  max peak       net  site\n"
          "  load       2   12.0 KiB           12   8.0 KiB  +6.9 KiB  app/index.cpp:10\n"
          "\n"
          "Counted types\n"
          "  type   instances  bytes  peak\n"
          "  order         10  240 B    12\n");
}

TEST_CASE("the summary shows runtime pools and the garbage collector's generations", "[text]") {
    memlens::snapshot s;
    s.pools = {{"python.arenas", {3145728, 5242880, 9437184, 9, 6}}};
    s.collector = {{0, 1200, 35000, 0, 700, 0.0123, 0.0004}, {1, 109, 2100, 0, 10, 0.0206, 0.0011},
                   {2, 3, 48000, 2, 10, 0.25, 0.1234}};
    CHECK(memlens::format_summary(s) ==
          "Runtime pools (the domains' blocks are carved from these; not in the totals)\n"
          "  pool           current     peak    total  pieces  frees\n"
          "  python.arenas  3.0 MiB  5.0 MiB  9.0 MiB       9      6\n"
          "\n"
          "Garbage collector\n"
          "  generation  collections  collected  uncollectable  threshold      time   longest\n"
          "           0        1,200     35,000              0        700   12.3 ms    0.4 ms\n"
          "           1          109      2,100              0         10   20.6 ms    1.1 ms\n"
          "           2            3     48,000              2         10  250.0 ms  123.4 ms\n");
}

TEST_CASE("the summary leaves out empty sections and marks sampled estimates", "[text]") {
    CHECK(memlens::format_summary(memlens::snapshot{}).empty());
    CHECK(memlens::format_summary(sampled_snapshot()) ==
          "Live allocations in this snapshot\n"
          "  about 2 allocations, about 1.6 KiB (estimated from sampling)\n"
          "\n"
          "Top sites by live bytes\n"
          "     bytes   share  allocations  site\n"
          "  ~1.6 KiB  100.0%           ~2  run at app/main.cpp:30\n");
}

TEST_CASE("the site table sorts by own bytes, total bytes or count", "[text]") {
    const memlens::snapshot s = sample_snapshot();
    memlens::table_options o;
    CHECK(memlens::format_site_table(s, o) ==
          "Live allocations by function, by own bytes: 8 allocations, 7.1 KiB; 5 of 8 functions shown\n"
          "      own  share    total  share  allocations  function    where\n"
          "  4.0 KiB  56.0%  6.9 KiB  96.9%            1  load_index  app/index.cpp\n"
          "  2.9 KiB  41.0%  2.9 KiB  41.0%            3  parse_line  app/parse.cpp:8\n"
          "    200 B   2.7%    200 B   2.7%            2  app+0x700\n"
          "     16 B   0.2%     16 B   0.2%            1  (no stack)\n"
          "      8 B   0.1%      8 B   0.1%            1  tiny        app/main.cpp:50\n");

    o.order = memlens::site_order::total_bytes;
    CHECK(memlens::format_site_table(s, o) ==
          "Live allocations by function, by total bytes: 8 allocations, 7.1 KiB; 8 of 8 functions shown\n"
          "      own  share    total  share  allocations  function                where\n"
          "      0 B   0.0%  7.1 KiB  99.8%            0  main                    app/main.cpp:40\n"
          "      0 B   0.0%  7.1 KiB  99.7%            0  run                     app/main.cpp:30\n"
          "  4.0 KiB  56.0%  6.9 KiB  96.9%            1  load_index              app/index.cpp\n"
          "      0 B   0.0%  4.0 KiB  56.0%            0  std::vector<>::reserve  bits/vector.tcc:72\n"
          "  2.9 KiB  41.0%  2.9 KiB  41.0%            3  parse_line              app/parse.cpp:8\n"
          "    200 B   2.7%    200 B   2.7%            2  app+0x700\n"
          "     16 B   0.2%     16 B   0.2%            1  (no stack)\n"
          "      8 B   0.1%      8 B   0.1%            1  tiny                    app/main.cpp:50\n");

    o.order = memlens::site_order::count;
    CHECK(memlens::format_site_table(s, o) ==
          "Live allocations by function, by allocations: 8 allocations, 7.1 KiB; 5 of 8 functions shown\n"
          "      own  share    total  share  allocations  function    where\n"
          "  2.9 KiB  41.0%  2.9 KiB  41.0%            3  parse_line  app/parse.cpp:8\n"
          "    200 B   2.7%    200 B   2.7%            2  app+0x700\n"
          "  4.0 KiB  56.0%  6.9 KiB  96.9%            1  load_index  app/index.cpp\n"
          "     16 B   0.2%     16 B   0.2%            1  (no stack)\n"
          "      8 B   0.1%      8 B   0.1%            1  tiny        app/main.cpp:50\n");
}

TEST_CASE("the site table leaves out rows below its thresholds and beyond its limit", "[text]") {
    const memlens::snapshot s = sample_snapshot();
    memlens::table_options o;
    o.min_bytes = 200;
    CHECK(memlens::format_site_table(s, o) ==
          "Live allocations by function, by own bytes: 8 allocations, 7.1 KiB; 3 of 8 functions shown\n"
          "      own  share    total  share  allocations  function    where\n"
          "  4.0 KiB  56.0%  6.9 KiB  96.9%            1  load_index  app/index.cpp\n"
          "  2.9 KiB  41.0%  2.9 KiB  41.0%            3  parse_line  app/parse.cpp:8\n"
          "    200 B   2.7%    200 B   2.7%            2  app+0x700\n");

    o.min_bytes = 0;
    o.min_share = 0.5;
    CHECK(memlens::format_site_table(s, o) ==
          "Live allocations by function, by own bytes: 8 allocations, 7.1 KiB; 1 of 8 functions shown\n"
          "      own  share    total  share  allocations  function    where\n"
          "  4.0 KiB  56.0%  6.9 KiB  96.9%            1  load_index  app/index.cpp\n");

    o.min_share = 0;
    o.order = memlens::site_order::total_bytes;
    o.limit = 2;
    CHECK(memlens::format_site_table(s, o) ==
          "Live allocations by function, by total bytes: 8 allocations, 7.1 KiB; 2 of 8 functions shown (row limit 2)\n"
          "  own  share    total  share  allocations  function  where\n"
          "  0 B   0.0%  7.1 KiB  99.8%            0  main      app/main.cpp:40\n"
          "  0 B   0.0%  7.1 KiB  99.7%            0  run       app/main.cpp:30\n");
}

TEST_CASE("the call tree runs from main down and folds small branches", "[text]") {
    const memlens::snapshot s = sample_snapshot();
    memlens::tree_options o;
    o.min_share = 0.01;
    CHECK(memlens::format_tree(s, o) ==
          "Live allocations by call path: 8 allocations, 7.1 KiB\n"
          "├── 7.1 KiB  99.8%  7 allocations  main\n"
          "│   ├── 7.1 KiB  99.7%  6 allocations  run\n"
          "│   │   ├── 6.9 KiB  96.9%  4 allocations  load_index\n"
          "│   │   │   ├── 4.0 KiB  56.0%  1 allocation  std::vector<>::reserve\n"
          "│   │   │   └── 2.9 KiB  41.0%  3 allocations  parse_line\n"
          "│   │   └── 200 B  2.7%  2 allocations  app+0x700\n"
          "│   └── 1 smaller branch: 8 B  0.1%  1 allocation\n"
          "└── 1 smaller branch: 16 B  0.2%  1 allocation\n");

    o.ascii = true;
    o.min_share = 0.05;
    o.max_depth = 3;
    CHECK(memlens::format_tree(s, o) ==
          "Live allocations by call path: 8 allocations, 7.1 KiB\n"
          "|-- 7.1 KiB  99.8%  7 allocations  main\n"
          "|   |-- 7.1 KiB  99.7%  6 allocations  run\n"
          "|   |   |-- 6.9 KiB  96.9%  4 allocations  load_index\n"
          "|   |   |   `-- ... deeper frames not shown\n"
          "|   |   `-- 1 smaller branch: 200 B  2.7%  2 allocations\n"
          "|   `-- 1 smaller branch: 8 B  0.1%  1 allocation\n"
          "`-- 1 smaller branch: 16 B  0.2%  1 allocation\n");
}

TEST_CASE("text views colour only when asked, and the tree marks sampled estimates", "[text]") {
    const memlens::snapshot s = sample_snapshot();
    memlens::tree_options o;
    CHECK(memlens::format_tree(s, o).find('\x1b') == std::string::npos);
    o.colour = true;
    const std::string coloured = memlens::format_tree(s, o);
    CHECK(coloured.rfind("\x1b[1mLive allocations by call path", 0) == 0);
    CHECK(coloured.find("\x1b[2m├── \x1b[0m7.1 KiB  99.8%") != std::string::npos);
    memlens::summary_options so;
    so.colour = true;
    CHECK(memlens::format_summary(s, so).find("\x1b[1mDomains\x1b[0m") != std::string::npos);

    CHECK(memlens::format_tree(sampled_snapshot()) ==
          "Live allocations by call path: ~2 allocations, ~1.6 KiB\n"
          "└── ~1.6 KiB  100.0%  ~2 allocations  main\n"
          "    └── ~1.6 KiB  100.0%  ~2 allocations  run\n");
}

TEST_CASE("printing to a file that is not a terminal writes no colour", "[text]") {
    std::FILE* f = std::tmpfile();
    REQUIRE(f);
    CHECK(memlens::print_tree(f, sample_snapshot()));
    std::rewind(f);
    std::string written;
    for (int c = std::fgetc(f); c != EOF; c = std::fgetc(f)) written += static_cast<char>(c);
    std::fclose(f);
    CHECK(written == memlens::format_tree(sample_snapshot()));
}

TEST_CASE("folded stacks of live and of all allocations, by bytes and by count", "[folded]") {
    const memlens::snapshot s = sample_snapshot();
    memlens::folded_options o;
    CHECK(memlens::folded_stacks(s, o) ==
          "(no stack) 16\n"
          "main;run(int);app+0x700 200\n"
          "main;run(int);load_index();parse_line(std::string const&) 3000\n"
          "main;run(int);load_index();std::vector<int, std::allocator<int> >::reserve(unsigned long) 4096\n"
          "main;tiny() 8\n");
    o.weight = memlens::folded_weight::count;
    CHECK(memlens::folded_stacks(s, o) ==
          "(no stack) 1\n"
          "main;run(int);app+0x700 2\n"
          "main;run(int);load_index();parse_line(std::string const&) 3\n"
          "main;run(int);load_index();std::vector<int, std::allocator<int> >::reserve(unsigned long) 1\n"
          "main;tiny() 1\n");
    o.source = memlens::folded_source::allocated;
    CHECK(memlens::folded_stacks(s, o) ==
          "main;churn() 500\n"
          "main;run(int);app+0x700 2\n"
          "main;run(int);load_index();parse_line(std::string const&) 10\n"
          "main;run(int);load_index();std::vector<int, std::allocator<int> >::reserve(unsigned long) 2\n"
          "main;tiny() 1\n");
    o.weight = memlens::folded_weight::bytes;
    CHECK(memlens::folded_stacks(s, o) ==
          "main;churn() 64000\n"
          "main;run(int);app+0x700 200\n"
          "main;run(int);load_index();parse_line(std::string const&) 10000\n"
          "main;run(int);load_index();std::vector<int, std::allocator<int> >::reserve(unsigned long) 8192\n"
          "main;tiny() 8\n");
}

TEST_CASE("folded frame names cannot break the format, and samples count by weight", "[folded]") {
    memlens::snapshot s;
    s.symbols.emplace(0x100, frame(0x100, "main", "", 0));
    s.symbols.emplace(0x200, frame(0x200, "odd;name\nsplit", "", 0));
    s.stacks[1] = {0x200, 0x100};
    allocate(s, 1, 10, 1);
    CHECK(memlens::folded_stacks(s) == "main;odd:name split 10\n");

    CHECK(memlens::folded_stacks(sampled_snapshot()) == "main;run(int) 1620\n");
}

namespace {
std::vector<char*> text_test_blocks;
}  // namespace

__attribute__((noinline)) void text_test_leak_here() {
    text_test_blocks.push_back(new char[3000]);
    memlens_test::keep(text_test_blocks.back());
}

__attribute__((noinline)) void text_test_caller() {
    text_test_leak_here();
    memlens_test::keep(&text_test_blocks);
}

__attribute__((noinline)) void text_test_churn() {
    for (int i = 0; i < 100; ++i) {
        char* p = new char[64];
        memlens_test::keep(p);
        delete[] p;
    }
}

TEST_CASE("a real leak check's tree, table and folded stacks name the leaking function",
          "[text][folded]") {
    text_test_blocks.reserve(4);
    memlens::snapshot leaked;
    {
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        REQUIRE(memlens::configure(c));
        memlens::leak_check check;
        text_test_churn();
        text_test_caller();
        leaked = check.leaked();
        memlens::configure(memlens::tracking_config{});
    }
    for (char* p : text_test_blocks) delete[] p;
    text_test_blocks.clear();

    REQUIRE(leaked.allocations.size() == 1);
    memlens::symbolize(leaked);

    const std::string tree = memlens::format_tree(leaked);
    INFO(tree);
    CHECK(tree.find("1 allocation, 2.9 KiB") != std::string::npos);
    const std::size_t caller = tree.find("text_test_caller");
    const std::size_t leak = tree.find("text_test_leak_here");
    REQUIRE(caller != std::string::npos);
    REQUIRE(leak != std::string::npos);
    CHECK(caller < leak);
    CHECK(tree.find("operator new") == std::string::npos);

    const std::string table = memlens::format_site_table(leaked);
    INFO(table);
    CHECK(table.find("  2.9 KiB  100.0%  2.9 KiB  100.0%            1  text_test_leak_here") !=
          std::string::npos);

    const std::string folded = memlens::folded_stacks(leaked);
    INFO(folded);
    CHECK(folded.find("text_test_caller();text_test_leak_here() 3000\n") != std::string::npos);

    memlens::folded_options all;
    all.source = memlens::folded_source::allocated;
    all.weight = memlens::folded_weight::count;
    const std::string allocated = memlens::folded_stacks(leaked, all);
    INFO(allocated);
    CHECK(allocated.find("text_test_churn() 100\n") != std::string::npos);
}

TEST_CASE("function names keep lambdas, anonymous namespaces and operators whole", "[text]") {
    using memlens::detail::qualified_name;
    CHECK(qualified_name("main::{lambda(int)#1}::operator()(int) const") == "main::{lambda(int)#1}::operator()");
    CHECK(qualified_name("void run<main::{lambda()#2}>(main::{lambda()#2}&&)") == "run<main::{lambda()#2}>");
    CHECK(qualified_name("(anonymous namespace)::helper(int)") == "(anonymous namespace)::helper");
    CHECK(qualified_name("operator new(unsigned long)") == "operator new");
    CHECK(qualified_name("operator delete[](void*, unsigned long)") == "operator delete[]");
    CHECK(qualified_name("std::ostream& std::operator<< <std::char_traits<char> >(std::ostream&, char const*)") ==
          "std::operator<< <std::char_traits<char> >");
    CHECK(qualified_name("Foo::operator<(Foo const&) const") == "Foo::operator<");
    CHECK(qualified_name("Foo::operator bool() const") == "Foo::operator bool");
    CHECK(qualified_name("void ns::f<int>(int) const") == "ns::f<int>");
    CHECK(qualified_name("main") == "main");
}

TEST_CASE("tables and trees name functions briefly, and whole when asked", "[text][names]") {
    memlens::snapshot s;
    const memlens::frame_info frames[] = {
        frame(0x100, "main", "app/main.cpp", 40),
        frame(0x200, "void fill<int>(std::vector<int, std::allocator<int> >&)", "app/fill.hpp", 7),
        frame(0x300, "void fill<long>(std::vector<long, std::allocator<long> >&)", "app/fill.hpp", 7),
    };
    for (const memlens::frame_info& f : frames) s.symbols.emplace(f.address, f);
    // An inlined call at 0x200: a frame of its own in every view.
    memlens::frame_info inlined = frame(0x200, "grow_buffer(unsigned long)", "app/buffer.hpp", 3);
    inlined.inline_call = true;
    s.symbols[0x200].inlined.push_back(inlined);
    s.stacks[1] = {0x200, 0x100};
    s.stacks[2] = {0x300, 0x100};
    allocate(s, 1, 100, 1);
    allocate(s, 2, 50, 2);

    memlens::table_options brief;
    brief.limit = 0;
    const std::string table = memlens::format_site_table(s, brief);
    INFO(table);
    // Both instantiations on one row, 100 + 2 x 50 bytes under it; the inlined call its own row.
    CHECK(table.find("fill<>") != std::string::npos);
    CHECK(table.find("fill<int>") == std::string::npos);
    CHECK(table.find("grow_buffer") != std::string::npos);

    memlens::table_options full = brief;
    full.names = memlens::name_form::full;
    const std::string whole = memlens::format_site_table(s, full);
    INFO(whole);
    // fill<int> owns nothing (the call inlined into it is the site) and is left out.
    CHECK(whole.find("void fill<long>(std::vector<long, std::allocator<long> >&)") != std::string::npos);
    CHECK(whole.find("grow_buffer(unsigned long)") != std::string::npos);
    CHECK(whole.find("fill<>") == std::string::npos);

    memlens::tree_options tree;
    tree.min_share = 0;
    const std::string lines = memlens::format_tree(s, tree);
    INFO(lines);
    CHECK(lines.find("fill<>") != std::string::npos);
    CHECK(lines.find("grow_buffer") != std::string::npos);
    tree.names = memlens::name_form::full;
    CHECK(memlens::format_tree(s, tree).find("fill<long>(std::vector<long") != std::string::npos);

    // The leak report names them briefly too, the inlined call first and marked.
    const memlens::leak_report leaked = memlens::leaks(s);
    const std::string report = leaked.describe();
    INFO(report);
    CHECK(report.find("#0 grow_buffer at app/buffer.hpp:3 (inlined)") != std::string::npos);
    CHECK(report.find("#1 fill<> at app/fill.hpp:7") != std::string::npos);
    CHECK(leaked.describe(10, 12, memlens::name_form::full).find("#1 void fill<int>(std::vector<int") != std::string::npos);
}
