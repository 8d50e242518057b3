// A program with memlens's hooks that opens a plugin holding its own copy of the headers (linked
// with -Bsymbolic, built with hidden visibility, or plain), RTLD_LOCAL as CPython opens extension
// modules: the process must keep one memlens state, so that what the plugin counts is the
// program's figures and the reverse. A plugin built with other layout options cannot share it:
// its copy must refuse to count, and say so, rather than corrupt the program's state. A plugin
// whose copy the loader cannot join (its state's symbols hidden, as a Clang-built -Bsymbolic
// plugin's are bound to itself) must say that its figures are apart.
// Usage: host_shared_state [--other-layout | --apart] PLUGIN.so; exits 0 when every expectation
// holds.
#include <memlens/sources/new.hpp>
#include <memlens/track.hpp>
#include <memlens/view/suppressions.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include <dlfcn.h>
#include <unistd.h>

#include "expect.hpp"

namespace {

using host_test::expect;
using host_test::failures;

template <class F>
F find(void* plugin, const char* name) {
    return reinterpret_cast<F>(::dlsym(plugin, name));
}

std::uint64_t heap_allocs() { return memlens::stats(memlens::domain::heap()).allocs; }

bool has_domain(const char* name) {
    for (const auto& d : memlens::domains()) {
        if (d.domain.name() == name) return true;
    }
    return false;
}

// What `call` writes to stderr.
template <class F>
std::string said_by(F call) {
    char path[] = "/tmp/memlens-host-XXXXXX";
    const int fd = ::mkstemp(path);
    const int saved = ::dup(2);
    ::dup2(fd, 2);
    call();
    ::dup2(saved, 2);
    ::close(saved);
    ::close(fd);
    const std::string text = host_test::read_file(path);
    ::unlink(path);
    return text;
}

// A plugin whose copy keeps a state apart: it says `reason` at its first event.
int apart(void* plugin, const char* reason, bool counts) {
    auto state_address = find<const void* (*)()>(plugin, "plugin_state_address");
    auto record = find<void (*)(std::size_t)>(plugin, "plugin_record");
    if (!state_address || !record) {
        std::fprintf(stdout, "FAILED: the plugin's functions are missing\n");
        return 1;
    }
    expect(state_address() != &memlens::detail::core, "the plugin's copy has a state apart");
    const std::string said = said_by([&] { record(4096); });
    std::fprintf(stdout, "the plugin said: %s", said.c_str());
    expect(said.find(reason) != std::string::npos, "the plugin's copy says why its figures are apart");
    expect(!has_domain("plugin"), "nothing the plugin's copy counted reaches the program");
    if (counts) {
        auto plugin_allocs = find<std::uint64_t (*)()>(plugin, "plugin_heap_allocs");
        expect(plugin_allocs && plugin_allocs() != heap_allocs(), "the plugin's copy reads figures of its own");
    }
    if (failures == 0) std::fprintf(stdout, "all expectations hold\n");
    return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const bool other = argc == 3 && std::strcmp(argv[1], "--other-layout") == 0;
    const bool split = argc == 3 && std::strcmp(argv[1], "--apart") == 0;
    if (argc != 2 && !other && !split) {
        std::fprintf(stderr, "usage: %s [--other-layout | --apart] PLUGIN.so\n", argv[0]);
        return 2;
    }
    // The program's state starts before the plugin's copy looks for one.
    char* volatile first = new char[1];
    delete[] first;
    void* plugin = ::dlopen(argv[argc - 1], RTLD_NOW | RTLD_LOCAL);
    if (!plugin) {
        std::fprintf(stdout, "FAILED: dlopen: %s\n", ::dlerror());
        return 1;
    }
    if (other) return apart(plugin, "different MEMLENS_MAX_DOMAINS", false);
    if (split) return apart(plugin, "keeps a memlens state of its own", true);
    auto state_address = find<const void* (*)()>(plugin, "plugin_state_address");
    auto make_block = find<char* (*)(std::size_t)>(plugin, "plugin_make_block");
    auto free_block = find<void (*)(char*)>(plugin, "plugin_free_block");
    auto plugin_allocs = find<std::uint64_t (*)()>(plugin, "plugin_heap_allocs");
    auto record = find<void (*)(std::size_t)>(plugin, "plugin_record");
    auto suppress = find<void (*)(const char*)>(plugin, "plugin_suppress");
    if (!state_address || !make_block || !free_block || !plugin_allocs || !record || !suppress) {
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

    // The leak rules are the process's too: what the plugin sets, the program's reports use.
    suppress("plugin_cache_*");
    const memlens::suppressions active = memlens::active_suppressions();
    expect(!active.empty() && active.rules().back().pattern == "plugin_cache_*",
           "the rules the plugin sets are the program's");
    memlens::set_suppressions(memlens::suppressions());

    if (failures == 0) std::fprintf(stdout, "all expectations hold\n");
    return failures == 0 ? 0 : 1;
}
