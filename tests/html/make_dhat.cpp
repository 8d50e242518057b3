// tests/html/make_dhat.cpp: writes the DHAT files that check_dhat.mjs opens in valgrind's own
// viewer (dh_view.html), from a real run whose blocks come from two known functions: in sites
// mode, and again in per-block mode with lifetimes (<name>.lifetimes, bklt true). Beside each,
// <file>.figures.json holds what the viewer must show, taken from the snapshot's site records
// (their lifetime figures for the second), not from the DHAT writer.
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

// The timed figures of the sites whose stacks name `function` (one site each here).
memlens::site_lifetimes timed_at(const memlens::snapshot& s, const char* function) {
    const memlens::detail::resolved_stacks resolved(s);
    memlens::site_lifetimes out;
    for (const memlens::site_record& r : s.sites) {
        bool named = false;
        for (const memlens::frame_info& f : resolved.frames(r.stack)) {
            named = named || f.function.find(function) != std::string::npos;
        }
        if (named && r.life.allocs != 0) out = r.life;
    }
    return out;
}

std::string point_figures(const char* function, const memlens::site_lifetimes& l) {
    const auto n = [](std::uint64_t v) { return std::to_string(v); };
    return "{\"function\":\"" + std::string(function) + "\",\"bytes\":" + n(l.bytes) +
           ",\"blocks\":" + n(l.allocs) + ",\"lifetimes\":" + n(l.lifetimes) +
           ",\"max_bytes\":" + n(l.max_bytes) + ",\"max_blocks\":" + n(l.max_allocs) +
           ",\"gmax_bytes\":" + n(l.peak_bytes) + ",\"gmax_blocks\":" + n(l.peak_allocs) +
           ",\"end_bytes\":" + n(l.live_bytes) + ",\"end_blocks\":" + n(l.live_allocs) + "}";
}

// The same run with every block timed. Clock (bytes allocated while timed): the small blocks
// are born at 1,000, 2,000 and 3,000, the large one at 43,000, the highest; the first small
// block dies at 43,000. At the snapshot: small 42,000 + 41,000 + 40,000 = 123,000 in lifetimes,
// large 0.
int write_with_lifetimes(const std::string& path) {
    memlens::tracking_config c;
    c.mode = memlens::tracking_mode::sites;
    c.blocks = true;
    c.lifetimes = true;
    if (!memlens::configure(c)) return 1;
    const std::uint64_t start = memlens::take_snapshot().lifetime_clock;
    dhat_small_blocks();
    dhat_large_block();
    delete[] blocks[0];
    blocks[0] = nullptr;
    memlens::snapshot s = memlens::take_snapshot();
    for (char*& p : blocks) {
        delete[] p;
        p = nullptr;
    }
    memlens::configure(memlens::tracking_config{});
    memlens::symbolize(s);
    memlens::write_dhat(s, path);
    const memlens::site_lifetimes small = timed_at(s, "dhat_small_blocks"), large = timed_at(s, "dhat_large_block");
    if (small.lifetimes != 123000 || large.lifetimes != 0 || s.lifetime_clock - start != 43000 ||
        s.lifetime_peak_clock - start != 43000) {
        std::fprintf(stderr, "make_dhat: lifetimes %llu and %llu, clock %llu, not 123000, 0 and 43000\n",
                     static_cast<unsigned long long>(small.lifetimes),
                     static_cast<unsigned long long>(large.lifetimes),
                     static_cast<unsigned long long>(s.lifetime_clock - start));
        return 1;
    }
    std::uint64_t bytes = 0, count = 0;
    for (const memlens::site_record& r : s.sites) {
        bytes += r.life.bytes;
        count += r.life.allocs;
    }
    const std::string figures =
        "{\"total_bytes\":" + std::to_string(bytes) + ",\"total_blocks\":" + std::to_string(count) +
        ",\"t_end\":" + std::to_string(s.lifetime_clock) + ",\"t_gmax\":" + std::to_string(s.lifetime_peak_clock) +
        ",\"points\":[" + point_figures("dhat_large_block()", large) + "," +
        point_figures("dhat_small_blocks()", small) + "]}\n";
    std::string error;
    if (!memlens::detail::write_output_file(path + ".figures.json", figures, error)) {
        std::fprintf(stderr, "make_dhat: %s\n", error.c_str());
        return 1;
    }
    return 0;
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
        return write_with_lifetimes(std::string(argv[1]) + ".lifetimes");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_dhat: %s\n", e.what());
        return 1;
    }
    return 0;
}
