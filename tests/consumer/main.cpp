// Consumer check: built against an installed or vendored memlens by each
// integration route (CMake package, add_subdirectory, FetchContent, pkg-config, meson).
#include <memlens/track.hpp>

#include <cstdio>
#include <vector>

int main() {
    memlens::scope s;
    {
        std::vector<int, memlens::tracking_allocator<int>> v(1000);
        v.back() = 1;
    }
    const auto allocated = s.usage().allocated;
    std::printf("memlens consumer: %llu bytes allocated\n", static_cast<unsigned long long>(allocated));
    return allocated >= 1000 * sizeof(int) ? 0 : 1;
}
