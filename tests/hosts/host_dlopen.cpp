// A program without memlens's hooks that loads a plugin holding a copy of them, linked with
// -Bsymbolic and opened RTLD_LOCAL (as CPython opens extension modules): the plugin's hooks are
// not the process's operator new, so what the plugin allocates must be freeable by the
// program's operator delete, and the plugin says once why it counts nothing.
// Usage: host_dlopen PLUGIN.so; exits 0 when every expectation holds.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include "expect.hpp"

namespace {

using host_test::expect;
using host_test::failures;
using host_test::read_file;

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s PLUGIN.so\n", argv[0]);
        return 2;
    }
    // The plugin speaks while it loads: catch its stderr.
    char log[] = "/tmp/memlens-host-XXXXXX";
    const int log_fd = ::mkstemp(log);
    const int saved = ::dup(2);
    ::dup2(log_fd, 2);
    void* plugin = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    ::dup2(saved, 2);
    ::close(log_fd);
    const std::string said = read_file(log);
    ::unlink(log);
    if (!plugin) {
        std::fprintf(stdout, "FAILED: dlopen: %s\n", ::dlerror());
        return 1;
    }
    std::fprintf(stdout, "the plugin said: %s", said.c_str());

    auto make_block = reinterpret_cast<char* (*)(std::size_t)>(::dlsym(plugin, "plugin_make_block"));
    auto make_string = reinterpret_cast<std::string* (*)()>(::dlsym(plugin, "plugin_make_string"));
    auto free_block = reinterpret_cast<void (*)(char*)>(::dlsym(plugin, "plugin_free_block"));
    auto role = reinterpret_cast<int (*)()>(::dlsym(plugin, "plugin_hooks_role"));
    auto allocs = reinterpret_cast<unsigned long (*)()>(::dlsym(plugin, "plugin_heap_allocs"));
    if (!make_block || !make_string || !free_block || !role || !allocs) {
        std::fprintf(stdout, "FAILED: the plugin's functions are missing\n");
        return 1;
    }

    expect(role() == 2, "the plugin's hooks know they are not the process's operator new");
    expect(said.find("are not the process's operator new") != std::string::npos,
           "the plugin says why its hooks count nothing");
    expect(said.find("pass each call on to the process's operators, uncounted") != std::string::npos,
           "the plugin says what its hooks do instead");

    // Made by the plugin's operator new, freed by the program's: before, glibc aborted here.
    for (int i = 0; i < 1000; ++i) {
        char* block = make_block(100 + static_cast<std::size_t>(i));
        expect(block[0] == 'p', "the plugin's block is usable");
        delete[] block;
        std::string* text = make_string();
        expect(text->size() == 64, "the plugin's string is usable");
        delete text;
    }
    // Made by the program, freed by the plugin's operator delete.
    char* mine = new char[32];
    std::memset(mine, 0, 32);
    free_block(mine);
    expect(allocs() == 0, "a bystander counts nothing");

    if (failures == 0) std::fprintf(stdout, "all expectations hold\n");
    return failures == 0 ? 0 : 1;
}
