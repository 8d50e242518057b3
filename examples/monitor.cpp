// A workload under the process monitor: a cache that keeps growing (a leak, as far as the monitor
// can tell) and a phase of short-lived buffers, each in a named scope. A growth rule calls back
// when the tracked bytes grow faster than 8 MiB a minute over half a second; at the end the
// timeline, with the scopes' marks, goes to a CSV file (the first argument, else
// monitor_timeline.csv) that a spreadsheet or pandas plots as mprof plot would, and to an HTML
// report beside it (the same name ending in .html) that draws resident and tracked bytes on one
// time axis with the marks.
#include <memlens/hooks.hpp>  // in exactly one file of the program: counts every new-expression
#include <memlens/monitor/monitor.hpp>
#include <memlens/view/html.hpp>
#include <memlens/view/timeline.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<std::unique_ptr<std::string>> cache;  // never trimmed: it only grows

void fill_cache(int rounds) {
    MEMLENS_SCOPE("fill_cache");
    for (int i = 0; i < rounds; ++i) {
        cache.push_back(std::make_unique<std::string>(16 * 1024, 'c'));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

void crunch(int rounds) {
    MEMLENS_SCOPE("crunch");
    for (int i = 0; i < rounds; ++i) {
        std::vector<double> scratch(64 * 1024, 1.0);  // freed at once: no growth
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "monitor_timeline.csv";
    memlens::monitor_config config;
    config.interval = std::chrono::milliseconds(50);
    config.rollup_interval = std::chrono::milliseconds(500);  // PSS now and then: it costs ~1 ms per 64 MiB
    config.rules.push_back(memlens::growth_above(
        8 << 20, std::chrono::milliseconds(500), [](const memlens::alert_event& e) {
            std::printf("alert %s: tracked bytes grow %.1f MiB a minute (limit %.1f) at %.2f s, "
                        "%zu bytes tracked, %zu resident\n",
                        e.state.name.c_str(), e.state.value / (1 << 20), e.state.limit / (1 << 20),
                        e.sample.seconds, static_cast<std::size_t>(e.sample.tracked_bytes),
                        static_cast<std::size_t>(e.sample.process.rss_bytes));
            for (std::size_t i = 0; i < e.grown_sites.size() && i < 3; ++i) {
                std::printf("  grew %lld bytes: %s\n", static_cast<long long>(e.grown_sites[i].bytes_diff),
                            e.grown_sites[i].key.c_str());
            }
        }));
    memlens::monitor monitor(config);

    for (int phase = 0; phase < 3; ++phase) {
        crunch(100);
        fill_cache(200);
    }
    monitor.stop();

    const memlens::monitor_timeline timeline = monitor.timeline();
    memlens::write_timeline(timeline, path);
    const memlens::monitor_sample& last = timeline.samples.back();
    memlens::snapshot report = memlens::take_snapshot();
    memlens::set_timeline(report, timeline);
    const std::string page = path.substr(0, path.rfind('.')) + ".html";
    memlens::write_html(report, page);
    std::printf("%zu samples and %zu scope marks over %.2f s written to %s and %s\n", timeline.samples.size(),
                timeline.marks.size(), last.seconds, path.c_str(), page.c_str());
    std::printf("at the end: %zu bytes resident, %zu tracked, %zu untracked; growth alert fired %llu times\n",
                static_cast<std::size_t>(last.process.rss_bytes), static_cast<std::size_t>(last.tracked_bytes),
                static_cast<std::size_t>(last.untracked_bytes),
                static_cast<unsigned long long>(monitor.alerts()[0].times_fired));
}
