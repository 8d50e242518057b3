// tests/html/make_dhat.cpp: writes the DHAT file that check_dhat.mjs opens in valgrind's own
// viewer (dh_view.html), from a real run in sites mode whose blocks come from two known
// functions. Beside it, <name>.figures.json holds what the viewer must show, summed from the
// snapshot's site records and live allocations, not from the DHAT writer.
//
//   make_dhat <dhat.json>
#include <memlens/sources/new.hpp>

#include <memlens/detail/files.hpp>
#include <memlens/observe/sites.hpp>
#include <memlens/view/dhat.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

namespace {

char* blocks[4];
volatile int small_count = 3;

// Three blocks of 1,000 bytes from one line, and one of 40,000 bytes.
__attribute__((noinline)) void dhat_small_blocks() {
    for (int i = 0; i < small_count; ++i) {
        blocks[i] = new char[1000];
        asm volatile("" : : "r"(blocks[i]) : "memory");
    }
}

__attribute__((noinline)) void dhat_large_block() {
    blocks[3] = new char[40000];
    asm volatile("" : : "r"(blocks[3]) : "memory");
}

// Bytes and blocks allocated at the stacks that name `function`, and in all.
struct sums {
    std::uint64_t bytes = 0, blocks = 0;
};

sums allocated_at(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    sums out;
    for (const memlens::site_record& r : s.sites) {
        bool named = function == nullptr;
        for (const memlens::frame_info& f : resolved.frames(r.stack)) {
            named = named || f.function.find(function) != std::string::npos;
        }
        if (!named) continue;
        out.bytes += r.bytes;
        out.blocks += r.allocs;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_dhat <dhat.json>\n");
        return 2;
    }
    try {
        memlens::tracking_config c;
        c.mode = memlens::tracking_mode::sites;
        if (!memlens::configure(c)) return 1;
        dhat_small_blocks();
        dhat_large_block();
        delete[] blocks[0];
        blocks[0] = nullptr;
        memlens::snapshot s = memlens::take_snapshot();
        memlens::configure(memlens::tracking_config{});
        for (char* p : blocks) delete[] p;
        memlens::symbolize(s);
        memlens::write_dhat(s, argv[1]);
        const sums all = allocated_at(s, nullptr), small = allocated_at(s, "dhat_small_blocks"),
                   large = allocated_at(s, "dhat_large_block");
        if (small.bytes != 3000 || large.bytes != 40000) {
            std::fprintf(stderr, "make_dhat: the sites hold %llu and %llu bytes, not 3000 and 40000\n",
                         static_cast<unsigned long long>(small.bytes),
                         static_cast<unsigned long long>(large.bytes));
            return 1;
        }
        std::string figures = "{\"total_bytes\":" + std::to_string(all.bytes) +
                              ",\"total_blocks\":" + std::to_string(all.blocks) +
                              ",\"points\":[{\"function\":\"dhat_large_block()\",\"bytes\":" +
                              std::to_string(large.bytes) + ",\"blocks\":" + std::to_string(large.blocks) +
                              "},{\"function\":\"dhat_small_blocks()\",\"bytes\":" +
                              std::to_string(small.bytes) + ",\"blocks\":" + std::to_string(small.blocks) +
                              "}]}\n";
        std::string error;
        if (!memlens::detail::write_output_file(std::string(argv[1]) + ".figures.json", figures, error)) {
            std::fprintf(stderr, "make_dhat: %s\n", error.c_str());
            return 1;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_dhat: %s\n", e.what());
        return 1;
    }
    return 0;
}
