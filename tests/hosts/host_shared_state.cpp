// A program with memlens's hooks that opens a plugin holding its own copy of the headers (linked
// with -Bsymbolic, built with hidden visibility, or plain), RTLD_LOCAL as CPython opens extension
// modules: the process must keep one memlens state, so that what the plugin counts is the
// program's figures and the reverse.
// Usage: host_shared_state PLUGIN.so; exits 0 when every expectation holds.
#include <memlens/sources/new.hpp>
#include <memlens/track.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <dlfcn.h>

#include "expect.hpp"

namespace {

using host_test::expect;
using host_test::failures;

template <class F>
F find(void* plugin, const char* name) {
    return reinterpret_cast<F>(::dlsym(plugin, name));
}

std::uint64_t heap_allocs() { return memlens::stats(memlens::domain::heap()).allocs; }

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
        return 2;
    }
    void* plugin = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!plugin) {
        std::fprintf(stdout, "FAILED: dlopen: %s\n", ::dlerror());
        return 1;
    }
    auto state_address = find<const void* (*)()>(plugin, "plugin_state_address");
    auto make_block = find<char* (*)(std::size_t)>(plugin, "plugin_make_block");
    auto free_block = find<void (*)(char*)>(plugin, "plugin_free_block");
    auto plugin_allocs = find<std::uint64_t (*)()>(plugin, "plugin_heap_allocs");
    auto record = find<void (*)(std::size_t)>(plugin, "plugin_record");
    if (!state_address || !make_block || !free_block || !plugin_allocs || !record) {
        std::fprintf(stdout, "FAILED: the plugin's functions are missing\n");
        return 1;
    }

    expect(state_address() == &memlens::detail::core, "the plugin's copy finds the program's state");

    const std::uint64_t before = heap_allocs();
    char* block = make_block(100);
    expect(block[0] == 'p', "the plugin's block is usable");
    expect(heap_allocs() == before + 1, "the program counts what the plugin allocates, once");
    expect(plugin_allocs() == heap_allocs(), "the plugin reads the program's figures");
    delete[] block;
    expect(heap_allocs() == before + 1 && memlens::stats(memlens::domain::heap()).frees >= 1,
           "a plugin block freed by the program leaves the count alone");

    char* mine = new char[32];
    std::memset(mine, 0, 32);
    const std::size_t live = memlens::stats(memlens::domain::heap()).current;
    free_block(mine);
    expect(memlens::stats(memlens::domain::heap()).current == live - 32,
           "a program block freed by the plugin is counted as freed");

    record(4096);
    bool seen = false;
    for (const auto& d : memlens::domains()) {
        if (d.domain.name() == "plugin") seen = d.stats.current == 4096 && d.stats.allocs == 1;
    }
    expect(seen, "a domain the plugin names is one of the program's, with its figures");

    if (failures == 0) std::fprintf(stdout, "all expectations hold\n");
    return failures == 0 ? 0 : 1;
}
