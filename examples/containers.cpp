// examples/containers.cpp: which standard container holds a million integers, or 100,000 short
// strings, most cheaply? Each candidate is built from the same data and measured deep with
// memlens::compare_footprints: every byte and block it holds once built, and the slack glibc
// gives beyond what was asked for. Then the per-type counters list what is alive by type.
#include <memlens/hooks.hpp>  // the global operator new hooks: footprints see the heap

#include <memlens/helpers/footprint.hpp>
#include <memlens/observe/types.hpp>
#include <memlens/track.hpp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace {

template <class T>
using vector_of = std::vector<T>;
template <class T>
using deque_of = std::deque<T>;
template <class T>
using list_of = std::list<T>;
template <class T>
using set_of = std::set<T>;
template <class T>
using unordered_set_of = std::unordered_set<T>;
template <class K, class V>
using map_of = std::map<K, V>;
template <class K, class V>
using unordered_map_of = std::unordered_map<K, V>;

template <class T>
vector_of<T> flat_sorted(const std::vector<T>& data) {
    vector_of<T> v(data.begin(), data.end());
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    v.shrink_to_fit();
    return v;
}

void integers(std::size_t n) {
    std::vector<int> data(n);
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<int>(i);

    // In ascending order, which builds the trees in linear time; a node costs the same
    // whatever the order it was inserted in.
    std::printf("%s distinct ints, 0 upwards; maps hold int -> int (key and value equal)\n\n",
                memlens::detail::group_digits(n).c_str());
    const auto rows = memlens::compare_footprints(
        memlens::candidate("vector<int>", [&] { return vector_of<int>(data.begin(), data.end()); }),
        memlens::candidate("vector<int>, push_back",
                           [&] {
                               vector_of<int> v;
                               for (int x : data) v.push_back(x);
                               return v;
                           }),
        memlens::candidate("deque<int>", [&] { return deque_of<int>(data.begin(), data.end()); }),
        memlens::candidate("list<int>", [&] { return list_of<int>(data.begin(), data.end()); }),
        memlens::candidate("set<int>", [&] { return set_of<int>(data.begin(), data.end()); }),
        memlens::candidate("unordered_set<int>",
                           [&] { return unordered_set_of<int>(data.begin(), data.end()); }),
        memlens::candidate("map<int, int>",
                           [&] {
                               map_of<int, int> m;
                               for (int x : data) m.emplace_hint(m.end(), x, x);
                               return m;
                           }),
        memlens::candidate("unordered_map<int, int>",
                           [&] {
                               unordered_map_of<int, int> m;
                               for (int x : data) m.emplace(x, x);
                               return m;
                           }),
        memlens::candidate("flat sorted vector<int>", [&] { return flat_sorted(data); }));
    std::fputs(memlens::format_footprints(rows, n).c_str(), stdout);
}

void strings(std::size_t n) {
    std::mt19937 random(0x5eed);
    std::uniform_int_distribution<int> length(8, 15);
    std::uniform_int_distribution<int> letter('a', 'z');
    std::vector<std::string> data(n);
    for (std::string& s : data) {
        s.resize(static_cast<std::size_t>(length(random)));
        for (char& c : s) c = static_cast<char>(letter(random));
    }
    std::printf("\n%s random strings of 8 to 15 letters: every one fits std::string's 15-byte "
                "small-string buffer, so the strings themselves allocate nothing\n\n",
                memlens::detail::group_digits(n).c_str());
    const auto rows = memlens::compare_footprints(
        memlens::candidate("vector<string>",
                           [&] { return vector_of<std::string>(data.begin(), data.end()); }),
        memlens::candidate("deque<string>",
                           [&] { return deque_of<std::string>(data.begin(), data.end()); }),
        memlens::candidate("list<string>",
                           [&] { return list_of<std::string>(data.begin(), data.end()); }),
        memlens::candidate("set<string>",
                           [&] { return set_of<std::string>(data.begin(), data.end()); }),
        memlens::candidate("unordered_set<string>",
                           [&] { return unordered_set_of<std::string>(data.begin(), data.end()); }),
        memlens::candidate("map<string, int>",
                           [&] {
                               map_of<std::string, int> m;
                               for (const std::string& s : data) m.emplace(s, 0);
                               return m;
                           }),
        memlens::candidate("unordered_map<string, int>",
                           [&] {
                               unordered_map_of<std::string, int> m;
                               for (const std::string& s : data) m.emplace(s, 0);
                               return m;
                           }),
        memlens::candidate("flat sorted vector<string>", [&] { return flat_sorted(data); }));
    std::fputs(memlens::format_footprints(rows, n).c_str(), stdout);
}

struct order : memlens::counted_type<order> {
    int id = 0;
    double price = 0;
};

void types() {
    std::printf("\nLive objects by type while an order book is held (tracking_allocator counts "
                "its nodes, counted_type the orders)\n\n");
    std::map<int, order, std::less<int>, memlens::tracking_allocator<std::pair<const int, order>>>
        book;
    std::vector<order> pending(250);
    const memlens::type_checkpoint before;
    for (int i = 0; i < 1000; ++i) book[i].id = i;
    std::fputs(memlens::format_types(memlens::most_common_types(3)).c_str(), stdout);
    std::printf("\nGrowth since the checkpoint taken before the book was filled\n\n");
    std::fputs(memlens::format_growth(before.growth()).c_str(), stdout);
}

}  // namespace

int main() {
    integers(1'000'000);
    strings(100'000);
    types();
}
