// examples/quickstart.cpp: the README's first example: the hooks, a domain of its own, a scope, a
// named scope, and a leak check that says where the block it found was allocated.
#include <memlens/hooks.hpp>  // in exactly one file of the program: hooks the global operator new
#include <memlens/testing/checks.hpp>
#include <memlens/track.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

struct index_domain {  // a domain: the counters of one subsystem
    static constexpr const char* name = "index";
};
using word_counts = std::map<std::string, int, std::less<>,
                             memlens::tracking_allocator<std::pair<const std::string, int>, index_domain>>;

std::vector<std::string> split(const std::string& text) {
    MEMLENS_SCOPE("split");  // every call adds to the totals of "split"
    std::vector<std::string> words;
    std::string word;
    for (char c : text) {
        if (c != ' ') word += c;
        else if (!word.empty()) words.push_back(std::move(word)), word.clear();
    }
    if (!word.empty()) words.push_back(word);
    return words;
}

void count_words(const std::string& text) {
    memlens::scope block;  // measures this thread from here to the end of the function
    word_counts counts;
    for (int round = 0; round < 3; ++round)
        for (const std::string& w : split(text)) ++counts[w];

    const memlens::block_usage u = block.usage();
    std::printf("block: allocated %llu B in %llu allocations, net %lld B, peak %llu B\n",
                static_cast<unsigned long long>(u.allocated), static_cast<unsigned long long>(u.allocs),
                static_cast<long long>(u.net), static_cast<unsigned long long>(u.peak));
}

struct session {
    int id;
    session* next;
};
session* sessions = nullptr;  // every session opened, newest first

// Nothing ever closes a session: the leak that the check in main finds.
void open_session(int id) { sessions = new session{id, sessions}; }

int main() {
    count_words("the quick brown fox jumps over the lazy dog and keeps on running far away");

    const memlens::memory_stats index = memlens::stats(memlens::domain::named("index"));
    std::printf("index: current %zu B, peak %zu B, %llu allocations\n", index.current, index.peak,
                static_cast<unsigned long long>(index.allocs));

    for (const memlens::named_scope_stats& s : memlens::named_scopes())
        std::printf("scope %s: %llu calls, max peak %llu B\n", s.name.c_str(),
                    static_cast<unsigned long long>(s.calls), static_cast<unsigned long long>(s.max_peak));

    std::printf("%s\n", memlens::check_no_leaks([] { open_session(1); }).message.c_str());
}
