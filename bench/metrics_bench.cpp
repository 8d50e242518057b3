// bench/metrics_bench.cpp: what /metrics costs: rendering the Prometheus text for 100 domains and
// 1,000 named scopes (goal: under 1 ms), gathering the live figures, and one whole request over
// loopback to the endpoint (connect, request, response, close).
#include <memlens/monitor/endpoint.hpp>
#include <memlens/sources/record.hpp>

#include <benchmark/benchmark.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ratio_reporter.hpp"

namespace {

constexpr int domain_count = 100;
constexpr int scope_count = 1000;

memlens::metrics_input plain_input() {
    memlens::metrics_input in;
    in.totals = {123456789, 987654321, 55555555555, 1234567, 1234000};
    for (int d = 0; d < domain_count; ++d) {
        in.domains.push_back({"subsystem_" + std::to_string(d) + ".cache",
                              {std::size_t(1000 * d), std::size_t(5000 * d), std::size_t(900000 * d),
                               std::uint64_t(17 * d), std::uint64_t(15 * d)}});
    }
    for (int s = 0; s < scope_count; ++s) {
        memlens::named_scope_stats n;
        n.name = "app::subsystem_" + std::to_string(s % 97) + "::handler_" + std::to_string(s);
        n.calls = std::uint64_t(s) * 31;
        n.allocated = std::uint64_t(s) * 4096;
        n.allocs = std::uint64_t(s) * 3;
        n.net = s % 2 ? s * 8 : -s;
        n.max_peak = std::uint64_t(s) * 512;
        in.scopes.push_back(std::move(n));
    }
    memlens::process_figures p;
    p.rss_bytes = 100 << 20;
    p.has_status = true;
    p.has_fds = true;
    p.has_stat = true;
    p.has_rollup = true;
    in.process = p;
    return in;
}

void BM_render_metrics(benchmark::State& state) {
    const memlens::metrics_input in = plain_input();
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::string text = memlens::to_prometheus(in);
        bytes = text.size();
        benchmark::DoNotOptimize(text.data());
    }
    state.counters["text_KiB"] = static_cast<double>(bytes) / 1024;
}

// Live named scopes and domains, registered once for the benchmarks that read live state: as
// many domains as the build allows (MEMLENS_MAX_DOMAINS), 1,000 scope sites.
struct live_figures {
    std::vector<std::string> names;
    std::vector<std::unique_ptr<memlens::scope_site>> sites;
    live_figures() {
        names.reserve(scope_count);
        for (int s = 0; s < scope_count; ++s) {
            names.push_back("app::subsystem_" + std::to_string(s % 97) + "::handler_" + std::to_string(s));
            sites.push_back(std::make_unique<memlens::scope_site>(names.back().c_str(), "bench.cpp", 1u, "f"));
            sites.back()->add(memlens::block_usage{64, 0, 64, 64, 1, 0});
        }
        for (int d = 0; d < MEMLENS_MAX_DOMAINS - 4; ++d) {
            memlens::record_alloc(nullptr, 100, memlens::domain::named("bench.domain_" + std::to_string(d)));
        }
    }
};

const live_figures& live() {
    static const live_figures f;
    return f;
}

void BM_collect_metrics(benchmark::State& state) {
    live();
    for (auto _ : state) {
        const memlens::metrics_input in = memlens::collect_metrics();
        benchmark::DoNotOptimize(in.scopes.data());
    }
}

std::string scrape(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<::sockaddr*>(&a), sizeof a) == 0) {
        static constexpr char request[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
        if (::send(fd, request, sizeof request - 1, MSG_NOSIGNAL) > 0) {
            char buffer[16384];
            for (::ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
                out.append(buffer, static_cast<std::size_t>(n));
            }
        }
    }
    ::close(fd);
    return out;
}

void BM_scrape_over_loopback(benchmark::State& state) {
    live();
    memlens::metrics_endpoint endpoint = memlens::serve_metrics();
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::string response = scrape(endpoint.port());
        bytes = response.size();
        benchmark::DoNotOptimize(response.data());
    }
    if (bytes < 1000) state.SkipWithError("no /metrics response");
    state.counters["response_KiB"] = static_cast<double>(bytes) / 1024;
}

}  // namespace

BENCHMARK(BM_render_metrics)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_collect_metrics)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_scrape_over_loopback)->Unit(benchmark::kMicrosecond)->UseRealTime();

int main(int argc, char** argv) { return memlens_bench::run(argc, argv, {}, "/metrics"); }
