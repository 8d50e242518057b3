// bench/scale_workload.cpp: two workloads that keep millions of blocks alive, for scale.sh, which
// times them untracked, under memlens in each mode and under heaptrack. Built twice: with
// memlens's hooks (the mode then comes from MEMLENS_MODE) and without, as the untracked baseline.
// Prints one line on stdout, "checksum <hex>", the same in every build and mode, and on stderr the
// peak resident set of this process, whatever runs it.
//
//   map [keys]        a std::map<std::string, std::vector<int>> of 1,000,000 keys: inserted,
//                     every other one erased and inserted again, then all read
//   document [size]   a JSON-like document of 100,000 records (about 3.2M live blocks at its
//                     peak): written as text, parsed into a tree, edited, written again
#if defined(MEMLENS_WORKLOAD_HOOKS)
#include <memlens/hooks.hpp>
#endif

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>

namespace {

// FNV-1a, fed with everything the workloads build, so that no allocation can be dropped as unused.
struct checksum {
    std::uint64_t value = 14695981039346656037ull;

    void add(const char* data, std::size_t size) {
        for (std::size_t i = 0; i < size; ++i) {
            value ^= static_cast<unsigned char>(data[i]);
            value *= 1099511628211ull;
        }
    }
    void add(const std::string& s) { add(s.data(), s.size()); }
    void add(std::uint64_t n) { add(reinterpret_cast<const char*>(&n), sizeof n); }
};

// A bijection of 64-bit numbers (splitmix64's finalizer): distinct keys in a scattered order.
std::uint64_t scramble(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// ---- map: a std::map of long string keys to small vectors --------------------------------------

using int_map = std::map<std::string, std::vector<int>>;

// "key-" and 24 digits: 28 characters, past the 15 that std::string keeps inline.
std::string map_key(std::uint64_t i) {
    char text[32];
    std::snprintf(text, sizeof text, "key-%024" PRIu64, scramble(i));
    return text;
}

std::vector<int> small_vector(std::uint64_t i, int length) {
    std::vector<int> v;
    v.reserve(static_cast<std::size_t>(length));
    for (int k = 0; k < length; ++k) v.push_back(static_cast<int>(i) + k);
    return v;
}

std::uint64_t run_map(std::uint64_t keys) {
    int_map m;
    for (std::uint64_t i = 0; i < keys; ++i) m.emplace(map_key(i), small_vector(i, 3));
    for (std::uint64_t i = 0; i < keys; i += 2) m.erase(map_key(i));
    for (std::uint64_t i = 0; i < keys; i += 2) m.emplace(map_key(i), small_vector(i, 4));
    checksum sum;
    sum.add(static_cast<std::uint64_t>(m.size()));
    for (const auto& [key, values] : m) {
        sum.add(key);
        for (int v : values) sum.add(static_cast<std::uint64_t>(v));
    }
    return sum.value;
}

// ---- document: a JSON-like tree ----------------------------------------------------------------

struct json_value;
using json_object = std::map<std::string, json_value>;

// One value of the tree. An object is held through a pointer (as nlohmann::json holds its map), since
// std::map, unlike std::vector, may not be given a type that is not complete yet.
struct json_value {
    enum class kind : unsigned char { null, boolean, number, string, array, object };

    kind type = kind::null;
    long long number = 0;  // booleans as 0 or 1; the generated document has no fractions
    std::string text;
    std::vector<json_value> items;
    std::unique_ptr<json_object> members;

    static json_value make(kind k) {
        json_value v;
        v.type = k;
        if (k == kind::object) v.members = std::make_unique<json_object>();
        return v;
    }
};

const char* const words[] = {"harbour", "lantern", "meridian", "quartz", "saffron", "tundra",
                             "velvet", "whistle", "cobalt", "ember", "granite", "juniper"};
constexpr std::size_t word_count = sizeof words / sizeof words[0];

const char* word(std::uint64_t n) { return words[n % word_count]; }

// One record: 32 or so heap blocks once parsed (map nodes, the strings longer than 15 characters,
// vector buffers), with nested objects and arrays.
void write_record(std::string& out, std::uint64_t i) {
    const std::uint64_t r = scramble(i);
    char text[1024];
    const int length = std::snprintf(
        text, sizeof text,
        "{\"id\": %" PRIu64 ", \"name\": \"record number %" PRIu64 " of the generated document\", "
        "\"email\": \"user.%" PRIu64 "@%s-%s.example.invalid\", \"active\": %s, "
        "\"tags\": [\"%s and %s together\", \"tagged by the %s pass\", \"%s\"], "
        "\"scores\": [%d, %d, %d, %d, %d], "
        "\"address\": {\"street\": \"%" PRIu64 " %s %s boulevard, building %d\", "
        "\"city\": \"the city of %s on the %s river\", \"postcode\": \"%s-%05" PRIu64 "-%s\"}, "
        "\"history\": [{\"at\": %" PRIu64 ", \"event\": \"created by the %s import of %s\"}, "
        "{\"at\": %" PRIu64 ", \"event\": \"updated by the %s sweep of %s\"}]}",
        i, i, r % 100000, word(r), word(r >> 8), (r & 1) ? "true" : "false", word(r >> 12),
        word(r >> 16), word(r >> 20), word(r >> 24), static_cast<int>(r % 97),
        static_cast<int>(r % 89), static_cast<int>(r % 83), static_cast<int>(r % 79),
        static_cast<int>(r % 73), r % 9000 + 1, word(r >> 28), word(r >> 32),
        static_cast<int>(r % 40), word(r >> 36), word(r >> 40), word(r >> 44), r % 100000,
        word(r >> 48), 1700000000 + r % 100000000, word(r >> 52), word(r >> 56),
        1800000000 + r % 100000000, word(r >> 60), word(r >> 4));
    if (length < 0 || static_cast<std::size_t>(length) >= sizeof text) std::abort();
    out.append(text, static_cast<std::size_t>(length));
}

std::string write_document(std::uint64_t records) {
    std::string out = "[";
    for (std::uint64_t i = 0; i < records; ++i) {
        if (i != 0) out += ",\n";
        write_record(out, i);
    }
    out += "]\n";
    return out;
}

// A recursive-descent reader that reads strings a character at a time, as a hand-written JSON
// reader does: strings grow by push_back, arrays by push_back of each value, objects by one map
// node per key. Malformed input is counted, for main to fail on, not thrown.
class reader {
public:
    explicit reader(const std::string& text) : text_(text) {}

    std::size_t errors() const { return errors_; }

    json_value value() {
        switch (skip_space()) {
        case '{': return object();
        case '[': return array();
        case '"': {
            json_value v = json_value::make(json_value::kind::string);
            v.text = string();
            return v;
        }
        case 't': return literal("true", 1);
        case 'f': return literal("false", 0);
        default: return number();
        }
    }

private:
    json_value object() {
        json_value v = json_value::make(json_value::kind::object);
        expect('{');
        while (skip_space() == '"') {
            std::string key = string();
            expect(':');
            v.members->emplace(std::move(key), value());
            if (skip_space() == ',') ++at_;
        }
        expect('}');
        return v;
    }

    json_value array() {
        json_value v = json_value::make(json_value::kind::array);
        expect('[');
        while (skip_space() != ']' && at_ < text_.size()) {
            v.items.push_back(value());
            if (skip_space() == ',') ++at_;
        }
        expect(']');
        return v;
    }

    std::string string() {
        std::string out;
        expect('"');
        while (at_ < text_.size() && text_[at_] != '"') out.push_back(text_[at_++]);
        expect('"');
        return out;
    }

    json_value literal(const char* spelling, long long truth) {
        const std::size_t length = std::strlen(spelling);
        if (text_.compare(at_, length, spelling) != 0) ++errors_;
        at_ += length;
        json_value v = json_value::make(json_value::kind::boolean);
        v.number = truth;
        return v;
    }

    json_value number() {
        json_value v = json_value::make(json_value::kind::number);
        const std::size_t start = at_;
        while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') {
            v.number = v.number * 10 + (text_[at_++] - '0');
        }
        if (at_ == start) {
            ++errors_;
            ++at_;  // never stall on a character nothing reads
        }
        return v;
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

json_value string_value(std::string text) {
    json_value v = json_value::make(json_value::kind::string);
    v.text = std::move(text);
    return v;
}

// Edits every record: a longer name, one tag and one score more, the e-mail address dropped, an
// object added, the oldest history entry dropped. Returns how many records it found.
std::size_t edit(json_value& document) {
    std::size_t edited = 0;
    for (json_value& record : document.items) {
        if (record.type != json_value::kind::object) continue;
        json_object& fields = *record.members;
        fields["name"].text += " (edited, checked against the source)";
        fields["tags"].items.push_back(string_value("added by the edit pass " + std::to_string(edited)));
        json_value score = json_value::make(json_value::kind::number);
        score.number = static_cast<long long>(edited % 101);
        fields["scores"].items.push_back(std::move(score));
        fields.erase("email");
        json_value check = json_value::make(json_value::kind::object);
        check.members->emplace("checked_by", string_value("the consistency sweep of the edit pass"));
        check.members->emplace("checked_record", string_value("record " + std::to_string(edited)));
        fields.emplace("verification", std::move(check));
        std::vector<json_value>& history = fields["history"].items;
        if (!history.empty()) history.erase(history.begin());
        ++edited;
    }
    return edited;
}

void write_value(std::string& out, const json_value& v) {
    switch (v.type) {
    case json_value::kind::null: out += "null"; break;
    case json_value::kind::boolean: out += v.number ? "true" : "false"; break;
    case json_value::kind::number: out += std::to_string(v.number); break;
    case json_value::kind::string:
        out += '"';
        out += v.text;
        out += '"';
        break;
    case json_value::kind::array: {
        out += '[';
        bool first = true;
        for (const json_value& item : v.items) {
            if (!first) out += ", ";
            first = false;
            write_value(out, item);
        }
        out += ']';
        break;
    }
    case json_value::kind::object: {
        out += '{';
        bool first = true;
        for (const auto& [key, item] : *v.members) {
            if (!first) out += ", ";
            first = false;
            out += '"';
            out += key;
            out += "\": ";
            write_value(out, item);
        }
        out += '}';
        break;
    }
    }
}

std::uint64_t run_document(std::uint64_t records) {
    checksum sum;
    std::size_t errors = 0;
    {
        const std::string text = write_document(records);
        reader parse(text);
        json_value document = parse.value();
        errors = parse.errors();
        sum.add(static_cast<std::uint64_t>(edit(document)));
        std::string out;
        write_value(out, document);
        sum.add(static_cast<std::uint64_t>(text.size()));
        sum.add(out);
    }
    if (errors != 0) {
        std::fprintf(stderr, "the document workload misread its own text %zu times\n", errors);
        std::exit(1);
    }
    return sum.value;
}

int usage(const char* program) {
    std::fprintf(stderr, "usage: %s map [keys > 0] | document [records > 0]\n", program);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 3) return usage(argv[0]);
    const bool map = std::strcmp(argv[1], "map") == 0;
    if (!map && std::strcmp(argv[1], "document") != 0) return usage(argv[0]);
    std::uint64_t size = map ? 1000000 : 100000;
    if (argc == 3) {
        char* end = nullptr;
        const long long n = std::strtoll(argv[2], &end, 10);
        if (n <= 0 || *end != '\0') return usage(argv[0]);
        size = static_cast<std::uint64_t>(n);
    }
    const std::uint64_t sum = map ? run_map(size) : run_document(size);
    std::printf("checksum %016" PRIx64 "\n", sum);

    // Read here, before exit, so that it is this process's figure under any profiler that runs it.
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::fprintf(stderr, "peak_rss_kb %ld\n", usage.ru_maxrss);
    return 0;
}
