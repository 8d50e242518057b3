// examples/quickstart.cpp: the README's first example: a domain, a scope, a named scope and a
// memory check around ordinary standard-library code.
#include <memlens/sources/new.hpp>  // in exactly one file: hooks the global operator new

#include <memlens/testing/checks.hpp>
#include <memlens/track.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

struct parser_domain {
    static constexpr const char* name = "parser";
};

std::vector<std::string> split(const std::string& text) {
    MEMLENS_SCOPE("split");
    std::vector<std::string> words;
    std::string word;
    for (char c : text) {
        if (c != ' ') word += c;
        else if (!word.empty()) words.push_back(std::move(word)), word.clear();
    }
    if (!word.empty()) words.push_back(word);
    return words;
}

int main() {
    const std::string text = "the quick brown fox jumps over the lazy dog and keeps on running far away";

    memlens::scope block;
    std::map<std::string, int, std::less<>,
             memlens::tracking_allocator<std::pair<const std::string, int>, parser_domain>>
        counts;
    for (int round = 0; round < 3; ++round) {
        for (const std::string& w : split(text)) ++counts[w];
    }
    const memlens::block_usage u = block.usage();
    std::printf("block:  allocated %llu B in %llu allocations, net %lld B, peak %llu B\n",
                static_cast<unsigned long long>(u.allocated), static_cast<unsigned long long>(u.allocs),
                static_cast<long long>(u.net), static_cast<unsigned long long>(u.peak));

    const memlens::memory_stats parser = memlens::stats(memlens::domain::named("parser"));
    std::printf("parser: current %zu B, peak %zu B, %llu allocations\n", parser.current, parser.peak,
                static_cast<unsigned long long>(parser.allocs));

    for (const memlens::named_scope_stats& s : memlens::named_scopes()) {
        const std::string file = s.file.substr(s.file.rfind('/') + 1);
        std::printf("scope %s (%s:%u): %llu calls, max peak %llu B\n", s.name.c_str(), file.c_str(),
                    s.line, static_cast<unsigned long long>(s.calls),
                    static_cast<unsigned long long>(s.max_peak));
    }

    const memlens::check_result r = memlens::check_no_leaks([&] { counts.emplace("leaked", 1); });
    std::printf("%s\n", r.message.c_str());
}
