// Leaks from six kinds of call site, for compare.py (the sites_agree_with_heaptrack test): each
// line that must be a leak's site says so with "expect-site: <name>", each caller its stack must
// reach with "expect-frame: <name>". In sites mode the program prints memlens's view of what it
// leaked; in any other mode it only leaks, for heaptrack to record.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <memlens/hooks.hpp>
#include <memlens/memlens.hpp>

extern "C" char* memlens_attribution_block(std::size_t size);

namespace {

// Every leaked block is stored here: a block whose pointer never escapes may be dropped by the
// compiler together with its allocation.
void* volatile kept[16];
std::size_t kept_count = 0;

void keep(void* block) { kept[kept_count++] = block; }

// Placement storage for the objects that own the leaked blocks: the objects themselves are no
// heap blocks, so that each leak is one allocation of a size no other leak has.
alignas(std::runtime_error) unsigned char error_storage[sizeof(std::runtime_error)];
alignas(std::vector<std::uint64_t>) unsigned char vector_storage[sizeof(std::vector<std::uint64_t>)];

// std::runtime_error copies its message inside libstdc++.so, in C++17 and C++20 alike: a stack
// from there to this line passes through code without frame pointers.
__attribute__((noinline)) void leak_string() {
    const std::string message(300, 'm');
    keep(new (error_storage) std::runtime_error(message));  // expect-site: string
}

// 40 elements: the last growth leaves a buffer of 64, 512 bytes.
__attribute__((noinline)) void leak_vector() {
    auto* values = new (vector_storage) std::vector<std::uint64_t>;
    for (std::uint64_t i = 0; i < 40; ++i) {
        values->push_back(i);  // expect-site: vector
    }
    keep(values);
}

__attribute__((noinline)) void leak_in_library() {
    keep(memlens_attribution_block(777));  // expect-frame: library
}

__attribute__((always_inline)) inline char* make_inline_block(std::size_t size) {
    return new char[size];  // expect-site: inlined
}

__attribute__((noinline)) void leak_inlined() {
    keep(make_inline_block(613));  // expect-frame: inlined
}

__attribute__((noinline)) void leak_in_thread() {
    std::thread worker([] {
        keep(new char[431]);  // expect-site: lambda
    });
    worker.join();
}

// A branch that ends in a throw is one GCC predicts is never taken: it moves the branch into
// the function's ".cold" part (Clang keeps it in place), so the allocation's return address lies
// outside the function's main body. The common path does some work, or GCC would make the
// branch the body.
__attribute__((noinline)) std::size_t take_path(int value) {
    if (value < 0) {
        keep(new char[919]);  // expect-site: cold
        throw std::invalid_argument("negative value");
    }
    return kept_count * static_cast<std::size_t>(value);
}

// Called through this pointer, take_path has no caller GCC knows of: it would otherwise be one
// that main alone calls, which GCC places whole among the unlikely code, without a ".cold" part.
std::size_t (*volatile take_path_call)(int) = take_path;

void print_frame(const memlens::frame_info& f) {
    std::printf("frame\t%d\t%s:%u\t%s\n", f.inline_call ? 1 : 0, f.file.c_str(), f.line, f.function.c_str());
}

// One record per leaked stack, through memlens's public views: the site's file:line as
// statistics(group_by::line) names it, then the whole stack as leaks() gives it.
void print_leaks(const memlens::snapshot& leaked) {
    memlens::snapshot all = leaked;
    memlens::symbolize(all);
    for (const auto& stack : all.stacks) {
        memlens::snapshot one = all;
        one.allocations.clear();
        for (const memlens::live_allocation& a : all.allocations) {
            if (a.stack == stack.first) one.allocations.push_back(a);
        }
        if (one.allocations.empty()) continue;
        const memlens::statistic site = memlens::statistics(one, memlens::group_by::line).at(0);
        std::printf("leak\t%llu\t%llu\t%s\n", static_cast<unsigned long long>(site.bytes),
                    static_cast<unsigned long long>(site.count), site.key.c_str());
        const memlens::leak_report report = memlens::leaks(one);
        for (const memlens::frame_info& f : report.sites.at(0).traceback) print_frame(f);
    }
    for (const memlens::live_allocation& a : all.allocations) {
        if (a.stack == 0) std::printf("leak\t%llu\t1\t(no stack)\n", static_cast<unsigned long long>(a.size));
    }
}

}  // namespace

int main(int argc, char**) {
    std::optional<memlens::leak_check> check;
    if (memlens::current_config().mode == memlens::tracking_mode::sites) check.emplace(memlens::scope_kind::process);
    leak_string();
    leak_vector();
    leak_in_library();
    leak_inlined();
    leak_in_thread();
    try {
        kept_count += take_path_call(argc > 100 ? 1 : -1);
    } catch (const std::invalid_argument&) {
    }
    if (check) print_leaks(check->leaked());
    return 0;
}
