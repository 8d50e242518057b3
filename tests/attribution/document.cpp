// A JSON-like document workload for compare_allocations.py (allocation_sites_agree_with_heaptrack):
// it writes a few hundred records as text, parses them back character by character into maps of
// string vectors, copies and edits them. In sites mode it then prints, from memlens's views, how
// many allocations each stack made, freed or not, and the site of each; in any other mode it only
// allocates, for heaptrack to record.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <memlens/hooks.hpp>
#include <memlens/memlens.hpp>

namespace {

using record = std::map<std::string, std::vector<std::string>>;

constexpr std::size_t record_count = 300;

// The sizes of what the work built, written where the compiler must keep them: a string or
// container whose contents nobody reads may be dropped with its new and delete.
volatile std::size_t observed = 0;

// Words longer than the 15 characters libstdc++ keeps inside a std::string, so that each one
// read or copied is a heap block of its own.
std::string word(std::uint32_t& seed) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz";
    seed = seed * 1103515245u + 12345u;
    const std::size_t length = 16 + (seed >> 16) % 40;
    std::string out;
    for (std::size_t i = 0; i < length; ++i) {
        seed = seed * 1103515245u + 12345u;
        out += letters[(seed >> 16) % 26];
    }
    return out;
}

// [{"key": ["value", ...], ...}, ...]: each record has two to five keys, each key up to six
// values, all of them long words; the text grows by appends.
std::string write_records(std::size_t count) {
    std::uint32_t seed = 2024;
    std::string text = "[";
    for (std::size_t r = 0; r < count; ++r) {
        if (r != 0) text += ",\n";
        text += '{';
        const std::size_t keys = 2 + r % 4;
        for (std::size_t k = 0; k < keys; ++k) {
            if (k != 0) text += ", ";
            text += '"' + word(seed) + "\": [";
            for (std::size_t v = 0; v < r % 7; ++v) {
                if (v != 0) text += ", ";
                text += '"' + word(seed) + '"';
            }
            text += ']';
        }
        text += '}';
    }
    text += "]\n";
    return text;
}

// A parser that reads one character at a time, as a hand-written JSON reader does: strings grow
// by push_back, arrays by push_back of each string read, objects by one map node per key.
class reader {
public:
    explicit reader(const std::string& text) : text_(text) {}

    // A malformed document is the workload's own bug: counted rather than thrown, so that the
    // run allocates the same in every mode, and failed by main.
    std::size_t errors() const { return errors_; }

    std::vector<record> records() {
        std::vector<record> out;
        expect('[');
        while (skip_space() == '{') {
            out.push_back(object());
            if (skip_space() == ',') ++at_;
        }
        expect(']');
        return out;
    }

private:
    record object() {
        record out;
        expect('{');
        while (skip_space() == '"') {
            std::string key = string();
            expect(':');
            out[key] = array();
            if (skip_space() == ',') ++at_;
        }
        expect('}');
        return out;
    }

    std::vector<std::string> array() {
        std::vector<std::string> out;
        expect('[');
        while (skip_space() == '"') {
            out.push_back(string());
            if (skip_space() == ',') ++at_;
        }
        expect(']');
        return out;
    }

    std::string string() {
        std::string out;
        expect('"');
        while (at_ < text_.size() && text_[at_] != '"') out.push_back(text_[at_++]);
        expect('"');
        return out;
    }

    char skip_space() {
        while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n')) ++at_;
        return at_ < text_.size() ? text_[at_] : '\0';
    }

    void expect(char c) {
        if (skip_space() == c) {
            ++at_;
        } else {
            ++errors_;
        }
    }

    const std::string& text_;
    std::size_t at_ = 0;
    std::size_t errors_ = 0;
};

// Copies every record and edits the copies: one value more for each key, and a key fewer in
// every third record, so that map nodes and vectors are both copied and changed.
std::vector<record> edited(const std::vector<record>& records) {
    std::vector<record> out = records;
    for (std::size_t r = 0; r < out.size(); ++r) {
        for (auto& entry : out[r]) entry.second.push_back(entry.first + "_edited");
        if (r % 3 == 0 && !out[r].empty()) out[r].erase(out[r].begin());
    }
    return out;
}

std::size_t size_of(const std::vector<record>& records) {
    std::size_t total = 0;
    for (const record& r : records) {
        for (const auto& entry : r) {
            total += entry.first.size();
            for (const std::string& value : entry.second) total += value.size();
        }
    }
    return total;
}

// The whole workload, everything it allocates freed on return; the parser's errors.
std::size_t read_and_edit() {
    const std::string text = write_records(record_count);
    reader parse(text);
    const std::vector<record> records = parse.records();
    const std::vector<record> copies = edited(records);
    observed = size_of(records) + size_of(copies) + text.size();
    return parse.errors();
}

void print_frame(const memlens::frame_info& f) {
    std::printf("frame\t%d\t%s:%u\t%s\n", f.inline_call ? 1 : 0, f.file.c_str(), f.line, f.function.c_str());
}

// One record per stack that allocated, freed or not: "stack\tallocations\tbytes\tsite", the
// site's file:line as statistics(group_by::line) names it, then the whole stack as leaks() gives
// it. Each stack is put alone into a snapshot with one allocation from it, so that memlens's own
// views apply the site rule; the counts are the snapshot's site_records, every allocation made.
void print_sites(memlens::snapshot all) {
    memlens::symbolize(all);
    memlens::snapshot one;
    one.symbols = std::move(all.symbols);
    one.domain_names = all.domain_names;
    for (const memlens::site_record& site : all.sites) {
        one.stacks = {{site.stack, all.stacks.at(site.stack)}};
        memlens::live_allocation probe;
        probe.stack = site.stack;
        one.allocations.assign(1, probe);
        const memlens::statistic grouped = memlens::statistics(one, memlens::group_by::line).at(0);
        std::printf("stack\t%llu\t%llu\t%s\n", static_cast<unsigned long long>(site.allocs),
                    static_cast<unsigned long long>(site.bytes), grouped.key.c_str());
        const memlens::leak_report stack = memlens::leaks(one);
        for (const memlens::frame_info& f : stack.sites.at(0).traceback) print_frame(f);
    }
}

}  // namespace

int main() {
    if (const std::size_t errors = read_and_edit(); errors != 0) {
        std::fprintf(stderr, "the workload misread its own document %zu times\n", errors);
        return 1;
    }
    if (memlens::current_config().mode != memlens::tracking_mode::sites) return 0;
    // Taken before the printing, whose own allocations heaptrack's run, which prints nothing,
    // never makes.
    print_sites(memlens::take_snapshot());
    return 0;
}
