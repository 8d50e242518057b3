// examples/metrics_server.cpp: loads a small document cache, then serves memlens's figures at
// /metrics for Prometheus (and /snapshot.json, /report.html) until interrupted, with a process
// monitor whose budget rule for the cache fires. Prints the URL and the figures it expects a
// scraper to see: they stay fixed while it waits, because neither the endpoint's nor the
// monitor's own work is counted. Usage: metrics_server [port] (default 0: any free port).
#include <memlens/hooks.hpp>  // in exactly one file of the program: hooks the global operator new
#include <memlens/monitor/endpoint.hpp>
#include <memlens/track.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <thread>

#include <pthread.h>

struct cache_domain {  // the counters of the document cache
    static constexpr const char* name = "document_cache";
};
using cache_string = std::basic_string<char, std::char_traits<char>, memlens::tracking_allocator<char, cache_domain>>;

std::vector<cache_string, memlens::tracking_allocator<cache_string, cache_domain>> load_documents(int count) {
    MEMLENS_SCOPE("load_documents");
    std::vector<cache_string, memlens::tracking_allocator<cache_string, cache_domain>> documents;
    documents.reserve(static_cast<std::size_t>(count));
    for (int k = 0; k < count; ++k) documents.emplace_back(static_cast<std::size_t>(1000 + k), 'x');
    return documents;
}

int main(int argc, char** argv) {
    // SIGINT and SIGTERM wait for sigwait below; blocked before the endpoint's thread starts,
    // so that it inherits the mask and the main thread receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    const auto documents = load_documents(200);

    memlens::monitor_config config;
    config.interval = std::chrono::milliseconds(100);
    memlens::alert_rule budget = memlens::domain_above("document_cache", 64 * 1024);
    budget.name = "document_cache_budget";
    config.rules.push_back(budget);
    memlens::monitor monitor(config);

    memlens::endpoint_options options;
    options.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
    memlens::report_monitor(options, monitor);
    memlens::metrics_endpoint endpoint(std::move(options));

    // The cache is over its budget from the first sample on.
    for (int i = 0; i < 100 && !monitor.alerts().front().firing; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const memlens::alert_state rule = monitor.alerts().front();

    const memlens::memory_stats all = memlens::stats();
    const memlens::memory_stats cache = memlens::stats(memlens::domain::named("document_cache"));
    std::printf("serving http://%s:%u/metrics\n", endpoint.address().c_str(), unsigned(endpoint.port()));
    std::printf("memlens_live_bytes %zu\n", all.current);
    std::printf("memlens_allocations_total %llu\n", static_cast<unsigned long long>(all.allocs));
    std::printf("memlens_domain_live_bytes{domain=\"document_cache\"} %zu\n", cache.current);
    std::printf("memlens_alert_firing{rule=\"%s\"} %d\n", rule.name.c_str(), rule.firing ? 1 : 0);
    std::printf("memlens_alert_fired_total{rule=\"%s\"} %llu\n", rule.name.c_str(),
                static_cast<unsigned long long>(rule.times_fired));
    std::fflush(stdout);

    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::printf("stopped by signal %d; %zu documents were cached\n", signal, documents.size());
    return 0;
}
