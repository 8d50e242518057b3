// A program without memlens's hooks linked with a plugin that holds a copy of them, ahead of
// libstdc++: the process's symbol lookup finds the plugin's operator new first, so the plugin's
// copy is the process's and counts the program's allocations too. Under a sanitizer whose
// runtime comes first, it is a bystander instead; either way nothing may break.
// Exits 0 when every expectation holds.
#include <cstdint>
#include <cstdio>
#include <string>

#include <dlfcn.h>

extern "C" char* plugin_make_block(std::size_t n);
extern "C" void plugin_free_block(char* p);
extern "C" int plugin_hooks_role();
extern "C" std::uint64_t plugin_heap_allocs();

#include "expect.hpp"

using host_test::expect;
using host_test::failures;

int main() {
    // Which object's operator new the process uses, found as the loader finds it.
    Dl_info global{};
    Dl_info plugin{};
    const bool found = ::dladdr(::dlsym(RTLD_DEFAULT, "_Znwm"), &global) != 0 &&
                       ::dladdr(reinterpret_cast<void*>(&plugin_make_block), &plugin) != 0;
    expect(found, "the loader names both objects");
    const bool plugin_is_global = found && global.dli_fbase == plugin.dli_fbase;
    std::fprintf(stdout, "the process's operator new is in %s\n", found ? global.dli_fname : "?");

    const std::uint64_t before = plugin_heap_allocs();
    for (int i = 0; i < 100; ++i) {
        auto* text = new std::string(100, 'y');
        asm volatile("" : : "r"(text) : "memory");
        delete text;
        char* block = plugin_make_block(64);
        delete[] block;
        char* mine = new char[16];
        asm volatile("" : : "r"(mine) : "memory");
        plugin_free_block(mine);
    }
    const std::uint64_t counted = plugin_heap_allocs() - before;
    if (plugin_is_global) {
        expect(plugin_hooks_role() == 1, "the plugin's hooks know they are the process's");
        // Per round: the program's string object and its buffer, the plugin's block, the
        // program's block.
        expect(counted == 400, "the plugin's copy counts the program's allocations and its own");
    } else {
        expect(plugin_hooks_role() == 2, "the plugin's hooks know they are a bystander");
        expect(counted == 0, "a bystander counts nothing");
    }
    if (failures == 0) std::fprintf(stdout, "all expectations hold (%llu counted)\n",
                                    static_cast<unsigned long long>(counted));
    return failures == 0 ? 0 : 1;
}
