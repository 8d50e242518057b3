// A shared object that holds its own copy of memlens's operator new hooks, as a plugin or an
// extension module built with the headers does. Built three ways: linked with -Bsymbolic, its
// hooks serve only its own code; with hidden visibility and opened RTLD_LOCAL, the process's
// lookup never finds them; linked plainly and ahead of libstdc++, they are the process's.
#include <memlens/sources/new.hpp>
#include <memlens/sources/record.hpp>
#include <memlens/track.hpp>
#include <memlens/view/suppressions.hpp>

#include <cstdint>
#include <string>

extern "C" {

__attribute__((visibility("default"))) char* plugin_make_block(std::size_t n) {
    char* p = new char[n];
    p[0] = 'p';
    return p;
}

__attribute__((visibility("default"))) std::string* plugin_make_string() {
    return new std::string(64, 'x');
}

__attribute__((visibility("default"))) void plugin_free_block(char* p) { delete[] p; }

// 0 undecided, 1 the process's operator new, 2 a bystander; see sources/heap.hpp.
__attribute__((visibility("default"))) int plugin_hooks_role() {
    return static_cast<int>(memlens::detail::heap_role.load());
}

__attribute__((visibility("default"))) std::uint64_t plugin_heap_allocs() {
    return memlens::stats(memlens::domain::heap()).allocs;
}

// Where this copy of the headers finds memlens's state: the same address as the program's when
// the process holds one state.
__attribute__((visibility("default"))) const void* plugin_state_address() {
    return &memlens::detail::core;
}

// Counts `bytes` in a domain the plugin names, as a plugin's own allocator would.
__attribute__((visibility("default"))) void plugin_record(std::size_t bytes) {
    static const memlens::domain d = memlens::domain::named("plugin");
    static char block[1];
    memlens::record_alloc(block, bytes, d);
}

// Sets the leak rules in code, as a plugin that knows its own leaks would.
__attribute__((visibility("default"))) void plugin_suppress(const char* pattern) {
    memlens::set_suppressions(memlens::suppressions::parse(std::string("leak:") + pattern, "(in code)"));
}

}  // extern "C"
