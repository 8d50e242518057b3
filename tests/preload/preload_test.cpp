// libmemlens_preload.so and memlens-run on a program built without memlens (workload.cpp): the
// reports of the program, of its forked child and of the program it execs name exactly the
// blocks each one leaked, in the domain of the function that allocated them, and every
// malloc-family form is counted at its call.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <memlens/view/json.hpp>

#include "../support.hpp"

namespace {

// Blocks and bytes whose stack passes through `function`, and the domain of the last of them.
struct through {
    std::uint64_t blocks = 0;
    std::uint64_t bytes = 0;
    std::string domain;
};

bool passes_through(const memlens::snapshot& s, std::uint32_t stack, const std::string& function) {
    const auto frames = s.stacks.find(stack);
    if (frames == s.stacks.end()) return false;
    for (std::uintptr_t address : frames->second) {
        const auto symbol = s.symbols.find(address);
        if (symbol != s.symbols.end() && symbol->second.function == function) return true;
    }
    return false;
}

through alive_through(const memlens::snapshot& s, const std::string& function) {
    through t;
    for (const memlens::live_allocation& a : s.allocations) {
        if (!passes_through(s, a.stack, function)) continue;
        t.blocks += s.weight(a);
        t.bytes += s.bytes(a);
        t.domain = s.domain_names.at(a.domain);
    }
    return t;
}

through allocated_through(const memlens::snapshot& s, const std::string& function) {
    through t;
    for (const memlens::site_record& r : s.sites) {
        if (!passes_through(s, r.stack, function)) continue;
        t.blocks += r.allocs;
        t.bytes += r.bytes;
    }
    return t;
}

std::vector<std::string> reports_in(const std::string& directory) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(directory.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
                names.push_back(directory + "/" + name);
            }
        }
        ::closedir(d);
    }
    return names;
}

// Runs `command` with sh and returns its exit status (-1 when it did not exit).
int run(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Through bash, so that the script needs no mode bits (meson configures it without them).
const std::string run_script = std::string("bash ") + MEMLENS_RUN_SCRIPT;
const std::string workload = MEMLENS_PRELOAD_WORKLOAD;

}  // namespace

TEST_CASE("a program built without memlens is profiled whole: its leaks, its child's, its exec's", "[preload]") {
    memlens_test::temporary_directory dir;
    const int status = run(run_script + " --mode sites --output '" + dir.path + "/run.%p.json' -- " +
                           workload + " > /dev/null");
    CHECK(status == 3);
    const std::vector<std::string> reports = reports_in(dir.path);
    // One per process: the program, its forked child and the program it exec'd; the symbolizers
    // that memlens starts at each exit write none.
    REQUIRE(reports.size() == 3);

    int parents = 0, children = 0, execs = 0;
    for (const std::string& path : reports) {
        const memlens::snapshot s = memlens::read_json(path);
        INFO(path);
        if (alive_through(s, "leak_after_exec").blocks != 0) {
            ++execs;
            const through exec_leak = alive_through(s, "leak_after_exec");
            CHECK(exec_leak.blocks == 1);
            CHECK(exec_leak.bytes == 7000);
            CHECK(exec_leak.domain == "malloc");
            CHECK(alive_through(s, "leak_with_malloc").blocks == 0);
            continue;
        }
        // The parent and the forked child both hold the parent's leaks; the child has one more.
        const through child_leak = alive_through(s, "leak_in_child");
        if (child_leak.blocks != 0) {
            ++children;
            CHECK(child_leak.blocks == 1);
            CHECK(child_leak.bytes == 5000);
        } else {
            ++parents;
            CHECK(s.run.pid != 0);
        }
        const through from_malloc = alive_through(s, "leak_with_malloc");
        CHECK(from_malloc.blocks == 1);
        CHECK(from_malloc.bytes == 100);
        CHECK(from_malloc.domain == "malloc");
        const through from_array = alive_through(s, "leak_with_new_array");
        CHECK(from_array.blocks == 1);
        CHECK(from_array.bytes == 200);
        CHECK(from_array.domain == "heap");
        // Three frames up, through the callers that kept their frames.
        CHECK(alive_through(s, "leak_at_depth_3").bytes == 200);
        const through from_new = alive_through(s, "leak_with_operator_new");
        CHECK(from_new.blocks == 1);
        CHECK(from_new.bytes == 300);
        CHECK(from_new.domain == "heap");

        // Every form at its call: calloc 100 and realloc to 1000; posix_memalign 100 moved by
        // realloc to 200, aligned_alloc 256, memalign 10, valloc 10; reallocarray 100 and
        // strdup's 8. All of it freed.
        const through calloc_realloc = allocated_through(s, "churn_calloc_realloc");
        CHECK(calloc_realloc.blocks == 2);
        CHECK(calloc_realloc.bytes == 1100);
        const through aligned = allocated_through(s, "churn_aligned");
        CHECK(aligned.blocks == 5);
        CHECK(aligned.bytes == 576);
        const through array = allocated_through(s, "churn_reallocarray");
        CHECK(array.blocks == 2);
        CHECK(array.bytes == 108);
        CHECK(alive_through(s, "churn_calloc_realloc").blocks == 0);
        CHECK(alive_through(s, "churn_aligned").blocks == 0);
        CHECK(alive_through(s, "churn_reallocarray").blocks == 0);
    }
    CHECK(parents == 1);
    CHECK(children == 1);
    CHECK(execs == 1);
}

TEST_CASE("memlens-run refuses what it cannot run, and a lost report is said, not fatal", "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode everything -- " + workload + " 2> '" + dir.path + "/mode.txt'") == 2);
    CHECK(read_text(dir.path + "/mode.txt").find("accepted: counters, sites, sampled") != std::string::npos);
    CHECK(run(run_script + " 2> /dev/null") == 2);
    CHECK(run(run_script + " --output 2> /dev/null") == 2);

    // The program runs to its own end; the report that cannot be written is named on stderr.
    CHECK(run(run_script + " --output '" + dir.path + "/missing/run.json' -- " + workload + " > /dev/null 2> '" +
              dir.path + "/lost.txt'") == 3);
    CHECK(read_text(dir.path + "/lost.txt").find("the exit report is lost") != std::string::npos);
}

TEST_CASE("memlens-run passes the exit status through and prints the text report with --output -", "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode counters --output - -- " + workload + " > /dev/null 2> '" + dir.path +
              "/text.txt'") == 3);
    // Counters mode says how much is alive, once per process (the child and the exec as well).
    const std::string text = read_text(dir.path + "/text.txt");
    CHECK(text.find("still alive at exit") != std::string::npos);
}

TEST_CASE("the runtime's own blocks are listed as suppressed, not as the program's leaks", "[preload]") {
    memlens_test::temporary_directory dir;
    REQUIRE(run(run_script + " --mode sites --output '" + dir.path + "/run.txt' -- " + workload + " mmap > /dev/null") == 0);
    const std::string text = read_text(dir.path + "/run.txt");
    // libstdc++'s emergency exception pool, allocated while the loader runs its initialisers.
    const std::size_t suppressed = text.find("  suppressed: ");
    REQUIRE(suppressed != std::string::npos);
    const std::size_t pool = text.find(" by leak:^_dl_init$ ((built in)", suppressed);
    CHECK(pool != std::string::npos);
    // The leaks listed before the suppressed line (if any are left) name no initialiser's block.
    const std::size_t alive = text.find("still alive");
    if (alive != std::string::npos && alive < suppressed) {
        CHECK(text.substr(alive, suppressed - alive).find("_dl_init") == std::string::npos);
    }
}

TEST_CASE("a thread's TLS vector, kept after the thread ends, is listed as suppressed, not as a leak",
          "[preload]") {
    memlens_test::temporary_directory dir;
    REQUIRE(run(run_script + " --mode sites --output '" + dir.path + "/run.txt' -- " + workload +
                " thread-ended > /dev/null") == 0);
    const std::string text = read_text(dir.path + "/run.txt");
    INFO(text);
    const std::size_t suppressed = text.find("  suppressed: ");
    REQUIRE(suppressed != std::string::npos);
    // glibc's block for the ended thread's dynamic thread vector, beneath pthread_create.
    CHECK(text.find(" by leak:^_dl_allocate_tls$ ((built in)", suppressed) != std::string::npos);
    // The program leaks nothing: every block left alive is the runtime's.
    CHECK(text.find("memlens: 0 allocations still alive, 0 bytes") != std::string::npos);
}

TEST_CASE("fork() while other threads are inside the allocator leaves every child able to run", "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode sites --output '" + dir.path + "/run.%p.json' -- " + workload +
              " fork-threads") == 0);
    // The children leave with _exit(), which writes no report.
    const std::vector<std::string> reports = reports_in(dir.path);
    REQUIRE(reports.size() == 1);
    const memlens::snapshot s = memlens::read_json(reports[0]);
    CHECK(s.run.pid != 0);
}

TEST_CASE("exit() from a thread writes the report on that thread and passes its status", "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode sites --output '" + dir.path + "/run.json' -- " + workload + " exit-thread") ==
          4);
    const memlens::snapshot s = memlens::read_json(dir.path + "/run.json");
    const through leak = alive_through(s, "leak_in_exiting_thread");
    CHECK(leak.blocks == 1);
    CHECK(leak.bytes == 6000);
    CHECK(leak.domain == "malloc");
}

TEST_CASE("a library opened and closed again keeps its leaks in the report", "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode sites --output '" + dir.path + "/run.json' -- " + workload + " dlopen " +
              MEMLENS_PRELOAD_TEST_LIBRARY) == 0);
    const memlens::snapshot s = memlens::read_json(dir.path + "/run.json");
    const through after = alive_through(s, "leak_after_dlclose");
    CHECK(after.blocks == 1);
    CHECK(after.bytes == 9000);
    // The library's own block outlives the library, whose frames can no longer be named; what it
    // allocated as it loaded went with it.
    std::uint64_t from_library = 0;
    std::uint64_t loading = 0;
    for (const memlens::live_allocation& a : s.allocations) {
        if (s.bytes(a) == 8000 * s.weight(a)) from_library += s.weight(a);
        if (s.bytes(a) == 200 * s.weight(a) || s.bytes(a) == 201 * s.weight(a)) loading += s.weight(a);
    }
    CHECK(from_library == 1);
    CHECK(loading == 0);
}

TEST_CASE("what the program maps counts in mmap, in pages, partial unmaps and mremap included, and "
          "a fork while another thread maps leaves the child able to map",
          "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode counters --output '" + dir.path + "/run.json' -- " + workload + " mmap") == 0);
    const memlens::snapshot s = memlens::read_json(dir.path + "/run.json");
    bool found = false;
    for (const memlens::domain_figures& d : s.domains) {
        if (d.name != "mmap") continue;
        found = true;
        // 1 MiB less its upper half, and 64 KiB grown to 128 KiB; the 40 KiB region is gone.
        CHECK(d.figures.current == (512u << 10) + (128u << 10));
        CHECK(d.figures.peak == (1u << 20) + (64u << 10) + 10 * 4096);
        // Three mappings and the one mremap made; half of one, the old place of the moved one
        // and the third returned; the pages the other thread mapped while the program forked
        // were each returned.
        CHECK(d.figures.allocs >= 4);
        CHECK(d.figures.allocs - d.figures.frees == 1);
    }
    CHECK(found);
}

TEST_CASE("realloc of an over-aligned block counts the old block freed before the new one, as "
          "glibc's realloc and heaptrack do: the peak never holds both",
          "[preload]") {
    memlens_test::temporary_directory dir;
    CHECK(run(run_script + " --mode counters --output '" + dir.path + "/run.json' -- " + workload +
              " grow-aligned") == 0);
    const memlens::snapshot s = memlens::read_json(dir.path + "/run.json");
    bool found = false;
    for (const memlens::domain_figures& d : s.domains) {
        if (d.name != "malloc") continue;
        found = true;
        // The 2 MiB block and the runtime's few small blocks; with both blocks it was 3 MiB.
        CHECK(d.figures.peak >= (2u << 20));
        CHECK(d.figures.peak < (2u << 20) + (256u << 10));
    }
    CHECK(found);
}
