// DHAT's JSON file from a hand-built snapshot: its fields, program points merged where their
// frames read the same, and a clear error for a path it cannot write. valgrind's own viewer
// reads a real run's file in tests/html/check_dhat.mjs.
#include <catch2/catch.hpp>

#include <string>

#include <memlens/view/dhat.hpp>

#include "support.hpp"

namespace dhat_test {

memlens::frame_info frame(std::uintptr_t address, const char* function, const char* file, unsigned line) {
    memlens::frame_info f;
    f.address = address;
    f.function = function;
    f.file = file;
    f.line = line;
    f.module = "/usr/bin/app";
    return f;
}

// main calls load, which allocated 5 blocks (2 alive, 3 at the peak) through operator new and
// operator new[] (two stacks that differ only in memlens's frames: one program point), and
// "say", whose name needs escaping; 16 bytes were allocated without a stack.
memlens::snapshot hand_built(bool peak_kept) {
    memlens::snapshot s;
    s.run.command_line = "./app \"quoted\"";
    s.run.pid = 42;
    s.totals.total = 90000;
    for (const auto& f : {frame(0x1000, "main", "app/main.cpp", 40), frame(0x2000, "load()", "app/load.cpp", 12),
                          frame(0x3000, "say(\"hi\")", "", 0), frame(0x4000, "operator new(unsigned long)", "", 0),
                          frame(0x5000, "operator new[](unsigned long)", "", 0)}) {
        s.symbols.emplace(f.address, f);
    }
    s.stacks[1] = {0x4000, 0x2000, 0x1000};
    s.stacks[2] = {0x5000, 0x2000, 0x1000};
    s.stacks[3] = {0x3000, 0x1000};
    s.sites = {{0, 1, 16, 0, 0, 0}, {1, 3, 3000, 0, 2, 2000}, {2, 2, 500, 0, 1, 250}, {3, 1, 7, 0, 0, 0}};
    s.allocations = {{0x9000, 1000, 0, 1, 1, 1, false}, {0xa000, 250, 0, 2, 1, 2, false}};
    s.peak_kept = peak_kept;
    return s;
}


TEST_CASE("DHAT's file: totals, at the end and at the peak per program point, frames by index", "[dhat]") {
    CHECK(memlens::dhat_json(hand_built(true)) ==
          "{\"dhatFileVersion\":2,\"mode\":\"heap\",\"verb\":\"Allocated\",\"bklt\":false,\"bkacc\":false,"
          "\"tu\":\"bytes\",\"Mtu\":\"MB\",\"cmd\":\"./app \\\"quoted\\\"\",\"pid\":42,\"te\":90000,\"pps\":[\n"
          "{\"tb\":16,\"tbk\":1,\"gb\":0,\"gbk\":0,\"eb\":0,\"ebk\":0,\"fs\":[1]},\n"
          "{\"tb\":3500,\"tbk\":5,\"gb\":2250,\"gbk\":3,\"eb\":1250,\"ebk\":2,\"fs\":[2,3]},\n"
          "{\"tb\":7,\"tbk\":1,\"gb\":0,\"gbk\":0,\"eb\":0,\"ebk\":0,\"fs\":[4,3]}\n"
          "],\n\"ftbl\":[\n\"[root]\",\n\"[no stack]\",\n\"0x2000: load() (app/load.cpp:12)\",\n"
          "\"0x1000: main (app/main.cpp:40)\",\n\"0x3000: say(\\\"hi\\\") (in /usr/bin/app)\"\n]\n}\n");
    // Without a peak kept, "at the peak" is not written rather than written as 0.
    const std::string unkept = memlens::dhat_json(hand_built(false));
    CHECK(unkept.find("\"gb\"") == std::string::npos);
    CHECK(unkept.find("{\"tb\":3500,\"tbk\":5,\"eb\":1250,\"ebk\":2,\"fs\":[2,3]}") != std::string::npos);
}

TEST_CASE("an empty snapshot is a DHAT file without program points", "[dhat]") {
    CHECK(memlens::dhat_json(memlens::snapshot{}) ==
          "{\"dhatFileVersion\":2,\"mode\":\"heap\",\"verb\":\"Allocated\",\"bklt\":false,\"bkacc\":false,"
          "\"tu\":\"bytes\",\"Mtu\":\"MB\",\"cmd\":\"(unknown)\",\"pid\":0,\"te\":0,\"pps\":[\n],\n"
          "\"ftbl\":[\n\"[root]\"\n]\n}\n");
}

TEST_CASE("a DHAT file to an unwritable path is a clear error", "[dhat]") {
    memlens_test::temporary_directory dir;
    CHECK_THROWS_WITH(memlens::write_dhat(hand_built(true), dir.path),
                      "memlens: cannot write " + dir.path + ": it is a directory");
    CHECK_THROWS_WITH(memlens::write_dhat(hand_built(true), dir / "missing/dhat.out.1"),
                      Catch::StartsWith("memlens: cannot write " + (dir / "missing/dhat.out.1")));
    memlens::write_dhat(hand_built(true), dir / "dhat.out.1");
}

}  // namespace dhat_test
