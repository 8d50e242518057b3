// examples/showcase.cpp: memlens watching a small text indexer: a synthetic corpus, a tokenizer,
// an inverted index, a document store and an LRU query cache, each phase and subsystem measured.

// This translation unit owns the global operator new / delete hooks (one per program).
#include <memlens/hooks.hpp>

#include <memlens/observe/sites.hpp>
#include <memlens/sources/resource.hpp>
#include <memlens/track.hpp>
#include <memlens/view/report.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <list>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using doc_id = std::uint32_t;

// ---- formatting ----------------------------------------------------------------------------

std::string group_digits(std::uint64_t value) {
    const std::string digits = std::to_string(value);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// One decimal is enough to compare phases by eye; exact figures belong in a JSON report.
std::string human(double bytes) {
    static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024.0 && unit < 4) {
        bytes /= 1024.0;
        ++unit;
    }
    char buffer[32];
    if (unit == 0) std::snprintf(buffer, sizeof buffer, "%.0f B", bytes);
    else std::snprintf(buffer, sizeof buffer, "%.1f %s", bytes, units[unit]);
    return buffer;
}

std::string human(std::uint64_t bytes) { return human(static_cast<double>(bytes)); }

std::string human_signed(std::int64_t bytes) {
    if (bytes == 0) return "0 B";
    const std::string magnitude = human(bytes < 0 ? -static_cast<double>(bytes) : static_cast<double>(bytes));
    return (bytes < 0 ? "-" : "+") + magnitude;
}

std::string percent(double part, double whole) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
    return buffer;
}

std::string fixed(double value, int decimals) {
    char buffer[48];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
    return buffer;
}

// A text table whose columns are as wide as their widest cell: the first column is a label and
// reads left-aligned, the rest are figures and line up on the right.
class text_table {
public:
    explicit text_table(std::vector<std::string> header) : header_(std::move(header)) {}

    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void add_rule() { rows_.emplace_back(); }

    void print(const char* indent = "  ") const {
        std::vector<std::size_t> width(header_.size(), 0);
        auto widen = [&](const std::vector<std::string>& row) {
            for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) {
                width[c] = std::max(width[c], row[c].size());
            }
        };
        widen(header_);
        for (const auto& row : rows_) widen(row);
        std::size_t line = 0;
        for (std::size_t w : width) line += w + 2;
        line -= 2;

        print_row(header_, width, indent);
        std::printf("%s%s\n", indent, std::string(line, '-').c_str());
        for (const auto& row : rows_) {
            if (row.empty()) std::printf("%s%s\n", indent, std::string(line, '-').c_str());
            else print_row(row, width, indent);
        }
    }

private:
    static void print_row(const std::vector<std::string>& row, const std::vector<std::size_t>& width,
                          const char* indent) {
        std::string out = indent;
        for (std::size_t c = 0; c < width.size(); ++c) {
            const std::string& cell = c < row.size() ? row[c] : std::string();
            const std::string pad(width[c] - cell.size(), ' ');
            out += c == 0 ? cell + pad : pad + cell;
            if (c + 1 < width.size()) out += "  ";
        }
        std::printf("%s\n", out.c_str());
    }

    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

// Live and peak bytes after each phase, for the HTML report's memory-over-time plot.
class timeline_recorder {
public:
    timeline_recorder() { points_.reserve(32); }

    void mark(const char* label) {
        const std::chrono::duration<double> since = std::chrono::steady_clock::now() - start_;
        const memlens::memory_stats now = memlens::stats();
        points_.push_back({since.count(), now.current, now.peak, label});
    }

    const std::vector<memlens::timeline_point>& points() const noexcept { return points_; }

private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::vector<memlens::timeline_point> points_;
};

timeline_recorder timeline;

// A phase's one-line report, tagged so the lines stand out from the tables; it also marks the
// phase's end on the timeline.
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void report(const char* tag, const char* format, ...) {
    timeline.mark(tag);
    std::printf("  %-11s", tag);
    std::va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::printf("\n");
}

// ---- deterministic input -------------------------------------------------------------------

// splitmix64: tiny, fast and the same on every platform, so every run profiles the same work.
class prng {
public:
    explicit prng(std::uint64_t seed) : state_(seed) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

private:
    std::uint64_t state_;
};

// Word frequencies in real text fall off roughly as 1 / rank^s; sampling the same way gives the
// index its realistic shape: a few huge posting lists and a long tail of tiny ones.
class zipf_sampler {
public:
    zipf_sampler(std::size_t n, double s) : cdf_(n) {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
            sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
            cdf_[i] = sum;
        }
        for (double& c : cdf_) c /= sum;
    }

    std::size_t operator()(prng& rng) const {
        const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), rng.unit());
        return std::min(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
    }

private:
    std::vector<double> cdf_;
};

// Common words come out short, as in real languages. Bijective base-70 numbering makes every
// syllable string distinct; the suffixes end in a consonant while bare words end in a vowel, so
// suffixed words stay distinct too.
std::string make_word(std::size_t rank) {
    static const char consonants[] = "bdfgklmnprstvz";
    static const char vowels[] = "aeiou";
    static const char* const suffixes[] = {"ism", "ness", "ful", "ing"};
    std::string word;
    for (std::size_t n = rank + 1; n > 0; n /= 70) {
        --n;
        word += consonants[(n % 70) / 5];
        word += vowels[n % 5];
    }
    if (rank >= 3000) word += suffixes[rank % 4];
    return word;
}

struct corpus_options {
    std::uint64_t seed = 0x5eed;
    std::size_t documents = 4000;
    std::size_t vocabulary = 20000;
    std::size_t min_words = 40;
    std::size_t extra_words = 200;  // each document has min_words + [0, extra_words) words
    double zipf_s = 1.05;
};

// ---- document store: std::pmr over a bump arena, counted in "documents" --------------------

class document_store {
public:
    explicit document_store(std::size_t expected) { bodies_.reserve(expected); }

    // The body is copied once at its final size: growing it in place inside a bump arena would
    // strand every outgrown buffer.
    doc_id add(std::string_view body) {
        bodies_.emplace_back(body);
        return static_cast<doc_id>(bodies_.size() - 1);
    }

    std::string_view body(doc_id id) const { return bodies_[id]; }
    std::size_t size() const { return bodies_.size(); }

    static memlens::domain domain() { return memlens::domain::named("documents"); }

private:
    // Documents are appended and never edited, so nothing is given back before the whole store
    // goes; a monotonic arena is the cheapest upstream for that. "documents" counts what the
    // containers ask for; the arena's own chunks are fetched inside the tracking resource's
    // upstream call, where memlens counts nothing, so its slack shows in no domain.
    std::pmr::monotonic_buffer_resource arena_;
    memlens::tracking_resource tracked_{domain(), &arena_};
    std::pmr::vector<std::pmr::string> bodies_{&tracked_};
};

// ---- inverted index: std containers with a tracking_allocator, counted in "index" ----------

struct index_tag {
    static constexpr const char* name = "index";
};
template <class T>
using index_allocator = memlens::tracking_allocator<T, index_tag>;

// Transparent, so that C++20 can look terms up by string_view without building a key.
struct term_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class Map>
auto find_term(Map& map, std::string_view term) {
#if defined(__cpp_lib_generic_unordered_lookup)
    return map.find(term);
#else
    // C++17 unordered maps have no heterogeneous lookup; short terms fit the small-string
    // buffer, so the temporary key usually costs no allocation.
    return map.find(typename Map::key_type(term));
#endif
}

class inverted_index {
public:
    using term = std::basic_string<char, std::char_traits<char>, index_allocator<char>>;
    using postings = std::vector<doc_id, index_allocator<doc_id>>;

    void add(doc_id doc, const std::vector<std::string_view>& tokens) {
        for (std::string_view token : tokens) {
            auto it = find_term(map_, token);
            if (it == map_.end()) it = map_.emplace(term(token), postings()).first;
            // Documents arrive in id order, so a list is sorted and a repeat is always its tail.
            postings& list = it->second;
            if (list.empty() || list.back() != doc) {
                list.push_back(doc);
                ++postings_;
            }
        }
    }

    // Lists grown by doubling carry up to half their size in spare capacity; once the index
    // is built, nothing grows again.
    void compact() {
        for (auto& entry : map_) entry.second.shrink_to_fit();
    }

    const postings* find(std::string_view word) const {
        const auto it = find_term(map_, word);
        return it == map_.end() ? nullptr : &it->second;
    }

    std::size_t terms() const { return map_.size(); }
    std::size_t posting_count() const { return postings_; }

private:
    std::unordered_map<term, postings, term_hash, std::equal_to<>,
                       index_allocator<std::pair<const term, postings>>>
        map_;
    std::size_t postings_ = 0;
};

// ---- LRU query cache: bounded by entry count, counted in "cache" ---------------------------

struct cache_tag {
    static constexpr const char* name = "cache";
};
template <class T>
using cache_allocator = memlens::tracking_allocator<T, cache_tag>;

using result_list = std::vector<doc_id, cache_allocator<doc_id>>;

class lru_cache {
public:
    explicit lru_cache(std::size_t capacity) : capacity_(capacity) {}

    // A hit moves the entry to the front: the back is always the least recently used.
    const result_list* find(std::string_view key) {
        const auto it = where_.find(key);
        if (it == where_.end()) {
            ++misses_;
            return nullptr;
        }
        ++hits_;
        order_.splice(order_.begin(), order_, it->second);
        return &it->second->second;
    }

    const result_list& insert(std::string_view key, result_list result) {
        if (!order_.empty() && order_.size() >= capacity_) {
            where_.erase(order_.back().first);
            order_.pop_back();
            ++evictions_;
        }
        order_.emplace_front(key_string(key), std::move(result));
        // The map's key views the list node's own string, which never moves.
        where_.emplace(order_.front().first, order_.begin());
        return order_.front().second;
    }

    std::size_t size() const { return order_.size(); }
    std::uint64_t hits() const { return hits_; }
    std::uint64_t misses() const { return misses_; }
    std::uint64_t evictions() const { return evictions_; }

private:
    using key_string = std::basic_string<char, std::char_traits<char>, cache_allocator<char>>;
    using entry = std::pair<key_string, result_list>;
    using entry_list = std::list<entry, cache_allocator<entry>>;

    std::size_t capacity_;
    entry_list order_;
    std::unordered_map<std::string_view, entry_list::iterator, std::hash<std::string_view>,
                       std::equal_to<std::string_view>,
                       cache_allocator<std::pair<const std::string_view, entry_list::iterator>>>
        where_;
    std::uint64_t hits_ = 0;
    std::uint64_t misses_ = 0;
    std::uint64_t evictions_ = 0;
};

// ---- the phases ----------------------------------------------------------------------------

struct corpus_figures {
    std::uint64_t words = 0;
    std::uint64_t text_bytes = 0;
};

corpus_figures generate(const corpus_options& options, std::vector<std::string>& vocabulary,
                        document_store& store) {
    MEMLENS_SCOPE("generate");
    vocabulary.reserve(options.vocabulary);
    for (std::size_t rank = 0; rank < options.vocabulary; ++rank) vocabulary.push_back(make_word(rank));
    const zipf_sampler sample(options.vocabulary, options.zipf_s);

    prng rng(options.seed);
    corpus_figures figures;
    // One scratch buffer for every document: after the first few, it never needs to grow.
    std::string scratch;
    for (std::size_t d = 0; d < options.documents; ++d) {
        const std::size_t words = options.min_words + rng.below(options.extra_words);
        scratch.clear();
        for (std::size_t w = 0; w < words; ++w) {
            if (w != 0) scratch += ' ';
            scratch += vocabulary[sample(rng)];
        }
        store.add(scratch);
        figures.words += words;
        figures.text_bytes += scratch.size();
    }
    return figures;
}

using token_lists = std::vector<std::vector<std::string_view>>;

token_lists tokenize(const document_store& store) {
    MEMLENS_SCOPE("tokenize");
    token_lists lists;
    lists.reserve(store.size());
    for (doc_id d = 0; d < store.size(); ++d) {
        const std::string_view body = store.body(d);
        // Counting first sizes each list exactly: one allocation per document, no regrowth.
        std::vector<std::string_view>& tokens = lists.emplace_back();
        tokens.reserve(static_cast<std::size_t>(std::count(body.begin(), body.end(), ' ')) + 1);
        std::size_t start = 0;
        while (start <= body.size()) {
            std::size_t end = body.find(' ', start);
            if (end == std::string_view::npos) end = body.size();
            if (end > start) tokens.push_back(body.substr(start, end - start));
            start = end + 1;
        }
    }
    return lists;
}

void build_index(const token_lists& tokens, inverted_index& index) {
    MEMLENS_SCOPE("index");
    for (doc_id d = 0; d < tokens.size(); ++d) index.add(d, tokens[d]);
}

void compact_index(inverted_index& index) {
    MEMLENS_SCOPE("compact");
    index.compact();
}

struct round_figures {
    std::uint64_t queries = 0;
    std::uint64_t hits = 0;
    std::uint64_t empty = 0;
    std::uint64_t evictions = 0;
};

constexpr std::size_t results_per_query = 20;

// The first `results_per_query` documents holding every term: a walk over sorted lists that
// stops as soon as the page is full.
result_list evaluate(const inverted_index& index, std::string_view a, std::string_view b) {
    result_list out;
    const inverted_index::postings* first = index.find(a);
    const inverted_index::postings* second = b.empty() ? first : index.find(b);
    if (!first || !second) return out;
    out.reserve(std::min({results_per_query, first->size(), second->size()}));
    auto i = first->begin();
    auto j = second->begin();
    while (i != first->end() && j != second->end() && out.size() < results_per_query) {
        if (*i < *j) ++i;
        else if (*j < *i) ++j;
        else {
            out.push_back(*i);
            ++i;
            ++j;
        }
    }
    return out;
}

round_figures run_queries(const inverted_index& index, const std::vector<std::string>& vocabulary,
                          const zipf_sampler& popularity, lru_cache& cache, prng& rng,
                          std::size_t count) {
    MEMLENS_SCOPE("query");
    round_figures figures;
    const std::uint64_t hits_before = cache.hits();
    const std::uint64_t evictions_before = cache.evictions();
    std::string key;
    for (std::size_t q = 0; q < count; ++q) {
        // Users ask for popular words far more often than rare ones: that skew is what makes
        // a small cache worth having.
        std::string_view a = vocabulary[popularity(rng)];
        std::string_view b;
        if (rng.below(10) < 4) b = vocabulary[popularity(rng)];
        if (!b.empty() && b < a) std::swap(a, b);
        if (a == b) b = {};
        key.assign(a);
        if (!b.empty()) key.append(" ").append(b);

        const result_list* results = cache.find(key);
        if (!results) results = &cache.insert(key, evaluate(index, a, b));
        if (results->empty()) ++figures.empty;
        ++figures.queries;
    }
    figures.hits = cache.hits() - hits_before;
    figures.evictions = cache.evictions() - evictions_before;
    return figures;
}

// Everything the indexer keeps, owned in one place so that tearing it down is one measurable step.
struct indexer {
    explicit indexer(const corpus_options& options, std::size_t cache_entries)
        : store(options.documents), cache(cache_entries) {}

    std::vector<std::string> vocabulary;
    document_store store;
    token_lists tokens;
    inverted_index index;
    lru_cache cache;
};

// ---- the summary ---------------------------------------------------------------------------

std::vector<std::string> figures_row(std::string label, const memlens::memory_stats& s) {
    return {std::move(label), human(s.current), human(s.peak), human(s.total),
            group_digits(s.allocs), group_digits(s.frees)};
}

std::string base_name(const std::string& path) {
    const std::size_t slash = path.find_last_of("/\\");
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

void print_summary() {
    // Read everything before building the tables, whose own strings would otherwise count.
    const std::vector<memlens::domain_stats> domains = memlens::domains();
    const memlens::memory_stats process = memlens::stats();
    std::vector<memlens::named_scope_stats> scopes = memlens::named_scopes();

    std::printf("\nMemory by domain (current and peak are live bytes; total is every byte ever "
                "allocated)\n\n");
    text_table by_domain({"domain", "current", "peak", "total", "allocations", "frees"});
    by_domain.add(figures_row("process", process));
    by_domain.add_rule();
    for (const auto& d : domains) by_domain.add(figures_row(std::string(d.domain.name()), d.stats));
    by_domain.print();

    // Biggest allocators first, as a profiler's table reads.
    std::stable_sort(scopes.begin(), scopes.end(),
                     [](const auto& a, const auto& b) { return a.allocated > b.allocated; });
    std::printf("\nNamed scopes (every domain, this thread; max peak is the highest pass)\n\n");
    text_table by_scope({"scope", "calls", "allocated", "allocations", "max peak", "net", "site"});
    for (const auto& s : scopes) {
        by_scope.add({s.name, group_digits(s.calls), human(s.allocated), group_digits(s.allocs),
                      human(s.max_peak), human_signed(s.net),
                      base_name(s.file) + ":" + std::to_string(s.line)});
    }
    by_scope.print();
}

}  // namespace

// A function name short enough for a table column: template arguments and parameters elided.
std::string short_function(std::string name, std::size_t width = 64) {
    const std::string anonymous = "(anonymous namespace)::";
    for (std::size_t at; (at = name.find(anonymous)) != std::string::npos;) name.erase(at, anonymous.size());
    std::string out;
    int depth = 0;
    for (char c : name) {
        if (c == '<' || c == '(') {
            if (depth++ == 0) out += c == '<' ? "<...>" : "(...)";
        } else if (c == '>' || c == ')') {
            --depth;
        } else if (depth == 0) {
            out += c;
        }
    }
    return out.size() > width ? out.substr(0, width - 3) + "..." : out;
}

void print_sites(const memlens::snapshot& before_queries, const memlens::snapshot& after_queries) {
    constexpr std::size_t shown = 6;
    std::printf("\nLive blocks by allocating function after the queries (sites mode; the function is "
                "the first frame outside memlens and the standard library)\n\n");
    text_table live({"function", "live", "blocks"});
    const auto by_function = memlens::statistics(after_queries, memlens::group_by::function);
    for (std::size_t i = 0; i < by_function.size() && i < shown; ++i) {
        live.add({short_function(by_function[i].key), human(by_function[i].bytes),
                  group_digits(by_function[i].count)});
    }
    live.print();

    std::printf("\nGrowth during the query rounds, by function (snapshot diff)\n\n");
    text_table growth({"function", "live after", "change", "blocks change"});
    const auto diff = memlens::compare(before_queries, after_queries, memlens::group_by::function);
    for (std::size_t i = 0; i < diff.size() && i < shown; ++i) {
        if (diff[i].bytes_diff == 0 && diff[i].count_diff == 0) continue;
        growth.add({short_function(diff[i].key), human(diff[i].bytes), human_signed(diff[i].bytes_diff),
                    (diff[i].count_diff > 0 ? "+" : "") + std::to_string(diff[i].count_diff)});
    }
    growth.print();

    std::printf("\nShort-lived allocations (freed before the thread's next allocation), by site\n\n");
    text_table temporary({"site", "temporary", "of allocations"});
    const auto temporaries = memlens::temporaries(after_queries);
    for (std::size_t i = 0; i < temporaries.size() && i < shown; ++i) {
        const auto& t = temporaries[i];
        // The first frame outside the standard library, else the library function itself.
        std::string site = t.traceback.empty() ? "(no stack)" : short_function(t.traceback.front().function);
        for (const memlens::frame_info& f : t.traceback) {
            if (f.function.rfind("std::", 0) != 0 && f.function.rfind("void std::", 0) != 0) {
                site = short_function(f.function);
                break;
            }
        }
        temporary.add({site, group_digits(t.temporaries),
                       percent(static_cast<double>(t.temporaries), static_cast<double>(t.allocs))});
    }
    temporary.print();
}

int main() {
    // Every allocation is recorded with its call stack, for the site tables at the end.
    memlens::tracking_config tracking;
    tracking.mode = memlens::tracking_mode::sites;
    tracking.capture_peak = true;
    memlens::configure(tracking);

    const corpus_options options;
    constexpr std::size_t cache_entries = 512;
    constexpr std::size_t query_rounds = 5;
    constexpr std::size_t queries_per_round = 4000;

    const memlens::domain documents = document_store::domain();
    const memlens::domain index_domain = memlens::tracking_allocator<char, index_tag>::domain();
    const memlens::domain cache_domain = memlens::tracking_allocator<char, cache_tag>::domain();

    std::printf("memlens showcase: a text indexer over %s synthetic documents (seed %#llx)\n\n",
                group_digits(options.documents).c_str(),
                static_cast<unsigned long long>(options.seed));

    auto app = std::make_unique<indexer>(options, cache_entries);

    const auto generated = memlens::measure([&] { return generate(options, app->vocabulary, app->store); });
    const corpus_figures& corpus = generated.value;
    const std::uint64_t store_bytes = memlens::stats(documents).current;
    report("generate", "%s words, %s of text -> \"documents\" %s, %s B per document over the text "
           "(sizeof(std::pmr::string) is %zu)",
           group_digits(corpus.words).c_str(), human(corpus.text_bytes).c_str(), human(store_bytes).c_str(),
           fixed(static_cast<double>(store_bytes - corpus.text_bytes) / static_cast<double>(options.documents), 1)
               .c_str(),
           sizeof(std::pmr::string));

    const auto tokenized = memlens::measure([&] { app->tokens = tokenize(app->store); });
    std::uint64_t token_count = 0;
    for (const auto& list : app->tokens) token_count += list.size();
    report("tokenize", "%s tokens -> %s in %s allocations, %s B per token",
           group_digits(token_count).c_str(), human(tokenized.usage.allocated).c_str(),
           group_digits(tokenized.usage.allocs).c_str(),
           fixed(static_cast<double>(tokenized.usage.net) / static_cast<double>(token_count), 1).c_str());

    const auto indexed = memlens::measure([&] { build_index(app->tokens, app->index); });
    const std::uint64_t index_bytes = memlens::stats(index_domain).current;
    const double postings = static_cast<double>(app->index.posting_count());
    report("index", "%s terms, %s postings -> \"index\" %s, %s B per %zu-byte posting; "
           "%s allocated to get there",
           group_digits(app->index.terms()).c_str(), group_digits(app->index.posting_count()).c_str(),
           human(index_bytes).c_str(), fixed(static_cast<double>(index_bytes) / postings, 1).c_str(),
           sizeof(doc_id), human(indexed.usage.allocated).c_str());

    const auto compacted = memlens::measure([&] { compact_index(app->index); });
    const std::uint64_t compact_bytes = memlens::stats(index_domain).current;
    report("compact", "shrink_to_fit -> net %s (%s copied into exact-size lists), %s B per posting now",
           human_signed(compacted.usage.net).c_str(), human(compacted.usage.allocated).c_str(),
           fixed(static_cast<double>(compact_bytes) / postings, 1).c_str());

    // The lists of token views were only scaffolding for the index.
    const auto released = memlens::measure([&] { token_lists().swap(app->tokens); });
    report("release", "token lists dropped -> net %s in %s frees",
           human_signed(released.usage.net).c_str(), group_digits(released.usage.frees).c_str());

    // Queries favour popular words more steeply than the corpus does, as search logs do.
    const zipf_sampler popularity(options.vocabulary, 1.2);
    prng query_rng(options.seed ^ 0x9e37u);
    struct round_record {
        round_figures figures;
        memlens::block_usage usage;
        std::uint64_t cache_live;
    };
    // Reserved up front so that keeping the records costs nothing between the rounds.
    std::vector<round_record> rounds;
    rounds.reserve(query_rounds);
    const memlens::snapshot before_queries = memlens::take_snapshot();
    for (std::size_t round = 0; round < query_rounds; ++round) {
        const auto ran = memlens::measure([&] {
            return run_queries(app->index, app->vocabulary, popularity, app->cache, query_rng,
                               queries_per_round);
        });
        rounds.push_back({ran.value, ran.usage, memlens::stats(cache_domain).current});
        timeline.mark(("query round " + std::to_string(round + 1)).c_str());
    }

    std::printf("\nQuery rounds (LRU cache bounded at %s entries; a miss evaluates and caches the "
                "first %zu hits)\n\n",
                group_digits(cache_entries).c_str(), results_per_query);
    text_table by_round({"round", "queries", "hit rate", "evicted", "allocated", "allocations",
                         "allocs/miss", "net", "\"cache\" live"});
    for (std::size_t i = 0; i < rounds.size(); ++i) {
        const round_figures& f = rounds[i].figures;
        const memlens::block_usage& u = rounds[i].usage;
        const std::uint64_t misses = f.queries - f.hits;
        by_round.add({"#" + std::to_string(i + 1), group_digits(f.queries),
                      percent(static_cast<double>(f.hits), static_cast<double>(f.queries)),
                      group_digits(f.evictions), human(u.allocated), group_digits(u.allocs),
                      misses ? fixed(static_cast<double>(u.allocs) / static_cast<double>(misses), 2) : "-",
                      human_signed(u.net), human(rounds[i].cache_live)});
    }
    by_round.print();

    print_summary();
    memlens::snapshot after_queries = memlens::take_snapshot();
    print_sites(before_queries, after_queries);

    // For a browser and for other tools: the HTML report (flamegraph led by the peak, which the
    // snapshot carries per stack, then the end's live bytes, everything allocated and the
    // temporaries of the whole run; timeline, tables, recommendations) and the same snapshot as
    // JSON, for read_json and compare().
    after_queries.timeline = timeline.points();
    const char* const html_path = "showcase-report.html";
    const char* const json_path = "showcase-report.json";
    try {
        memlens::write_report(after_queries, html_path, "memlens showcase: a text indexer, its peak and its end");
        memlens::write_report(after_queries, json_path);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "showcase: %s\n", e.what());
        return 1;
    }
    std::printf("\nReports written: %s (the peak at %s live, and after the queries; open it in a "
                "browser) and %s\n",
                html_path, human(after_queries.peak_current).c_str(), json_path);

    const auto torn_down = memlens::measure([&] { app.reset(); });
    std::printf("\n");
    report("teardown", "net %s in %s frees; \"documents\" %s, \"index\" %s, \"cache\" %s live afterwards",
           human_signed(torn_down.usage.net).c_str(), group_digits(torn_down.usage.frees).c_str(),
           human(memlens::stats(documents).current).c_str(), human(memlens::stats(index_domain).current).c_str(),
           human(memlens::stats(cache_domain).current).c_str());
    return 0;
}
