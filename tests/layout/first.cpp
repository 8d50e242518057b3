// A program whose units were built with different MEMLENS_MAX_DOMAINS: this unit, built with the
// default, starts first; second.cpp, built with another value, must be refused with a message,
// count nothing, and leave this unit's figures exact.
#include <cstdio>

#include <memlens/track.hpp>

bool second_unit_refused();

int main() {
    static char block[100];
    const memlens::domain first = memlens::domain::named("first");
    memlens::record_alloc(block, sizeof block, first);
    if (memlens::stats(first).current != sizeof block) {
        std::puts("the first unit's domain does not count its allocation");
        return 1;
    }
    if (!second_unit_refused()) return 1;
    if (memlens::stats(first).current != sizeof block || memlens::stats(first).allocs != 1) {
        std::puts("the refused unit changed the first unit's figures");
        return 1;
    }
    memlens::record_free(block, sizeof block, first);
    std::puts("the unit with other layout options was refused with a message");
    return 0;
}
