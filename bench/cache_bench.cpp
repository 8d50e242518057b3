// bench/cache_bench.cpp: what weak_cache and budget_cache cost per lookup and per insertion
// against a plain std::unordered_map doing the same work. In the ratio table, "pair" reads as
// one lookup or one insertion. Global operator new is the system's here, so budget_cache's
// measured mode pays for opening its scopes but sees no allocation to count.
#include <memlens/helpers/budget_cache.hpp>
#include <memlens/helpers/weak_cache.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

constexpr int keys = 1024;  // a power of two: the key of an iteration is a mask away

// Lookups of keys that are all present, in a fixed scattered order.
int key_at(std::size_t i) { return static_cast<int>((i * 617) & (keys - 1)); }

std::size_t by_size(const int&, const int&) { return sizeof(int); }

void BM_unordered_map_find(benchmark::State& state) {
    std::unordered_map<int, int> map;
    for (int k = 0; k < keys; ++k) map.emplace(k, k);
    std::size_t i = 0;
    for (auto _ : state) {
        const auto it = map.find(key_at(i++));
        benchmark::DoNotOptimize(&it->second);
    }
}

// The baseline of weak_cache: the same result, a shared owner, from a map that owns it.
void BM_unordered_map_find_shared(benchmark::State& state) {
    static std::unordered_map<int, std::shared_ptr<int>> map = [] {
        std::unordered_map<int, std::shared_ptr<int>> m;
        for (int k = 0; k < keys; ++k) m.emplace(k, std::make_shared<int>(k));
        return m;
    }();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 31;
    for (auto _ : state) {
        std::shared_ptr<int> p = map.find(key_at(i++))->second;
        benchmark::DoNotOptimize(p.get());
    }
}

void BM_weak_cache_hit(benchmark::State& state) {
    static memlens::weak_cache<int, int> cache;
    static std::vector<std::shared_ptr<int>> owners = [] {
        std::vector<std::shared_ptr<int>> v;
        for (int k = 0; k < keys; ++k)
            v.push_back(cache.get_or_create(k, [k] { return std::make_shared<int>(k); }));
        return v;
    }();
    std::size_t i = static_cast<std::size_t>(state.thread_index()) * 31;
    for (auto _ : state) {
        std::shared_ptr<int> p =
            cache.get_or_create(key_at(i++), [] { return std::make_shared<int>(0); });
        benchmark::DoNotOptimize(p.get());
    }
}

void BM_budget_cache_hit(benchmark::State& state) {
    memlens::budget_cache<int, int> cache(keys * sizeof(int), by_size);
    for (int k = 0; k < keys; ++k) cache.put(k, k);
    std::size_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(cache.get(key_at(i++)));
}

// Insertions at a steady size: each adds a new key and drops the oldest one.
void BM_unordered_map_churn(benchmark::State& state) {
    std::unordered_map<int, int> map;
    for (int k = 0; k < keys; ++k) map.emplace(k, k);
    int next = keys;
    for (auto _ : state) {
        map.emplace(next, next);
        map.erase(next - keys);
        ++next;
    }
    benchmark::DoNotOptimize(map.size());
}

void BM_budget_cache_churn(benchmark::State& state) {
    memlens::budget_cache<int, int> cache(keys * sizeof(int), by_size);
    int next = 0;
    for (; next < keys; ++next) cache.put(next, next);
    for (auto _ : state) {
        cache.put(next, next);  // evicts the least recent, next - keys
        ++next;
    }
    benchmark::DoNotOptimize(cache.size());
}

void BM_budget_cache_measured_churn(benchmark::State& state) {
    using cache_t = memlens::budget_cache<int, int>;
    cache_t probe(1 << 20);
    probe.put(0, 0);
    cache_t cache(keys * probe.cost_of(0));
    int next = 0;
    for (; next < keys; ++next) cache.put(next, next);
    for (auto _ : state) {
        cache.put(next, next);
        ++next;
    }
    benchmark::DoNotOptimize(cache.size());
}

// A new key whose value nobody keeps: a miss, a creation, and expired entries purged as the
// map doubles.
void BM_weak_cache_churn(benchmark::State& state) {
    memlens::weak_cache<int, int> cache;
    int next = 0;
    for (auto _ : state) {
        const int k = next++;
        benchmark::DoNotOptimize(cache.get_or_create(k, [k] { return std::make_shared<int>(k); }));
    }
}

// The baseline: a map that owns the value and erases it once it has been handed out.
void BM_unordered_map_shared_churn(benchmark::State& state) {
    std::unordered_map<int, std::shared_ptr<int>> map;
    int next = 0;
    for (auto _ : state) {
        const int k = next++;
        std::shared_ptr<int> p = map.emplace(k, std::make_shared<int>(k)).first->second;
        map.erase(k);
        benchmark::DoNotOptimize(p.get());
    }
}

void hit_threads(benchmark::internal::Benchmark* b) { b->Threads(1)->Threads(2)->UseRealTime(); }

}  // namespace

BENCHMARK(BM_unordered_map_find)->UseRealTime();
BENCHMARK(BM_budget_cache_hit)->UseRealTime();
BENCHMARK(BM_unordered_map_find_shared)->Apply(hit_threads);
BENCHMARK(BM_weak_cache_hit)->Apply(hit_threads);
BENCHMARK(BM_unordered_map_churn)->UseRealTime();
BENCHMARK(BM_budget_cache_churn)->UseRealTime();
BENCHMARK(BM_budget_cache_measured_churn)->UseRealTime();
BENCHMARK(BM_unordered_map_shared_churn)->UseRealTime();
BENCHMARK(BM_weak_cache_churn)->UseRealTime();

int main(int argc, char** argv) {
    return memlens_bench::run(argc, argv,
                              {{"BM_budget_cache_hit", "BM_unordered_map_find"},
                               {"BM_weak_cache_hit", "BM_unordered_map_find_shared"},
                               {"BM_budget_cache_churn", "BM_unordered_map_churn"},
                               {"BM_budget_cache_measured_churn", "BM_unordered_map_churn"},
                               {"BM_weak_cache_churn", "BM_unordered_map_shared_churn"}});
}
