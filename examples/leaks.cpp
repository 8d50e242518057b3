// examples/leaks.cpp: a block-scoped leak check. A request handler that forgets one buffer in
// ten is run 100 times; find_leaks names the line that allocated what is still alive.
#include <memlens/hooks.hpp>

#include <memlens/observe/sites.hpp>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

std::vector<char*> forgotten;

__attribute__((noinline)) std::string render(int request) {
    std::string page = "request " + std::to_string(request) + ": ";
    page.append(200, '.');
    return page;
}

__attribute__((noinline)) void handle(int request) {
    const std::string page = render(request);
    char* copy = new char[page.size() + 1];
    std::memcpy(copy, page.c_str(), page.size() + 1);
    if (request % 10 == 3) {
        forgotten.push_back(copy);  // the bug: kept, and never freed
    } else {
        delete[] copy;
    }
}

}  // namespace

int main() {
    forgotten.reserve(16);
    const memlens::leak_report leaks = memlens::find_leaks([] {
        for (int request = 0; request < 100; ++request) handle(request);
    });
    std::fputs(leaks.describe(5, 4).c_str(), stdout);
    for (char* p : forgotten) delete[] p;
    return leaks.count == 10 ? 0 : 1;
}
