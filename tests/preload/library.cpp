// A library that preload/workload.cpp opens and closes: it allocates as it loads (a static
// std::string and a block its constructor frees) and hands out a block from a function of its own.
#include <cstdlib>
#include <string>

namespace {

std::string loaded_name(200, 'l');

struct on_load {
    on_load() { std::free(std::malloc(500)); }
} loading;

}  // namespace

extern "C" __attribute__((visibility("default"), noinline)) void* library_leak(std::size_t n) {
    return std::malloc(n + loaded_name.size() - 200);
}
