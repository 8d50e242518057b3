// view/prometheus.hpp: the text exposition format 0.0.4, with exact figures from a known workload,
// escaped label values, and every line checked against the format's grammar.
#include <memlens/observe/named_scope.hpp>
#include <memlens/sources/record.hpp>
#include <memlens/view/prometheus.hpp>

#include <catch2/catch.hpp>

#include <limits>
#include <map>
#include <string>
#include <vector>

#include "prometheus_grammar.hpp"

namespace {

const memlens::domain prom_blocks = memlens::domain::named("prom.blocks");

void prom_parse_document(std::size_t keep) {
    MEMLENS_SCOPE("prom.parse");
    memlens::record_alloc(nullptr, 1000, prom_blocks);
    memlens::record_alloc(nullptr, keep, prom_blocks);
    memlens::record_free(nullptr, 1000, prom_blocks);
}

}  // namespace

TEST_CASE("the exposition carries the exact figures of a domain and a named scope", "[prometheus]") {
    const memlens::memory_stats before = memlens::stats(prom_blocks);
    prom_parse_document(24);
    prom_parse_document(40);
    const memlens::metrics_input in = memlens::collect_metrics();
    const std::string text = memlens::to_prometheus(in);
    const auto samples = prometheus_grammar::check(text);

    const std::string d = "{domain=\"prom.blocks\"}";
    CHECK(samples.at("memlens_domain_live_bytes" + d) == double(before.current + 64));
    CHECK(samples.at("memlens_domain_allocated_bytes_total" + d) == double(before.total + 2064));
    CHECK(samples.at("memlens_domain_allocations_total" + d) == double(before.allocs + 4));
    CHECK(samples.at("memlens_domain_frees_total" + d) == double(before.frees + 2));
    CHECK(samples.at("memlens_domain_peak_bytes" + d) >= double(before.current + 1040));

    const std::string s = "{scope=\"prom.parse\"}";
    CHECK(samples.at("memlens_scope_calls_total" + s) >= 2);
    const auto scopes = memlens::named_scopes();
    for (const auto& scope : scopes) {
        if (scope.name != "prom.parse") continue;
        CHECK(samples.at("memlens_scope_calls_total" + s) == double(scope.calls));
        CHECK(samples.at("memlens_scope_allocated_bytes_total" + s) == double(scope.allocated));
        CHECK(samples.at("memlens_scope_allocations_total" + s) == double(scope.allocs));
        CHECK(samples.at("memlens_scope_net_bytes" + s) == double(scope.net));
        CHECK(samples.at("memlens_scope_max_peak_bytes" + s) == double(scope.max_peak));
    }
    CHECK(samples.at("memlens_live_bytes") == double(in.totals.current));
    CHECK(samples.at("memlens_allocations_total") == double(in.totals.allocs));
    // No process figures or alerts were given, so none are written.
    CHECK(text.find("memlens_process_") == std::string::npos);
    CHECK(text.find("memlens_alert_") == std::string::npos);
}

TEST_CASE("the exposition of plain data is exact, byte for byte", "[prometheus]") {
    memlens::metrics_input in;
    in.totals.current = 300;
    in.totals.peak = 4096;
    in.totals.total = 18446744073709551615ull;
    in.totals.allocs = 7;
    in.totals.frees = 3;
    memlens::domain_figures heap;
    heap.name = "heap";
    heap.figures.current = 300;
    heap.figures.peak = 4096;
    heap.figures.total = 5000;
    heap.figures.allocs = 7;
    heap.figures.frees = 3;
    in.domains.push_back(heap);
    const std::string text = memlens::to_prometheus(in);
    const std::string expected =
        "# HELP memlens_live_bytes Bytes allocated and not yet freed, every domain together.\n"
        "# TYPE memlens_live_bytes gauge\n"
        "memlens_live_bytes 300\n"
        "# HELP memlens_peak_bytes Highest live bytes since start or the last reset_peak().\n"
        "# TYPE memlens_peak_bytes gauge\n"
        "memlens_peak_bytes 4096\n"
        "# HELP memlens_allocated_bytes_total Bytes ever allocated, every domain together.\n"
        "# TYPE memlens_allocated_bytes_total counter\n"
        "memlens_allocated_bytes_total 18446744073709551615\n"
        "# HELP memlens_allocations_total Allocations counted, every domain together.\n"
        "# TYPE memlens_allocations_total counter\n"
        "memlens_allocations_total 7\n"
        "# HELP memlens_frees_total Frees counted, every domain together.\n"
        "# TYPE memlens_frees_total counter\n"
        "memlens_frees_total 3\n"
        "# HELP memlens_domain_live_bytes Live bytes of one domain.\n"
        "# TYPE memlens_domain_live_bytes gauge\n"
        "memlens_domain_live_bytes{domain=\"heap\"} 300\n"
        "# HELP memlens_domain_peak_bytes Peak live bytes of one domain.\n"
        "# TYPE memlens_domain_peak_bytes gauge\n"
        "memlens_domain_peak_bytes{domain=\"heap\"} 4096\n"
        "# HELP memlens_domain_allocated_bytes_total Bytes ever allocated in one domain.\n"
        "# TYPE memlens_domain_allocated_bytes_total counter\n"
        "memlens_domain_allocated_bytes_total{domain=\"heap\"} 5000\n"
        "# HELP memlens_domain_allocations_total Allocations counted in one domain.\n"
        "# TYPE memlens_domain_allocations_total counter\n"
        "memlens_domain_allocations_total{domain=\"heap\"} 7\n"
        "# HELP memlens_domain_frees_total Frees counted in one domain.\n"
        "# TYPE memlens_domain_frees_total counter\n"
        "memlens_domain_frees_total{domain=\"heap\"} 3\n";
    CHECK(text == expected);
    prometheus_grammar::check(text);
}

TEST_CASE("label values are escaped and kept valid UTF-8", "[prometheus]") {
    memlens::metrics_input in;
    memlens::named_scope_stats odd;
    odd.name = "a\\b\"c\nd \xC3\xA9 \xFF\xC3";
    odd.calls = 2;
    odd.net = -5;
    in.scopes.push_back(odd);
    const std::string text = memlens::to_prometheus(in);
    CHECK(text.find("memlens_scope_calls_total{scope=\"a\\\\b\\\"c\\nd \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\"} 2\n") !=
          std::string::npos);
    CHECK(text.find("memlens_scope_net_bytes{scope=\"a\\\\b\\\"c\\nd \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\"} -5\n") !=
          std::string::npos);
    const auto samples = prometheus_grammar::check(text);
    // The checker unescapes label values: the name comes back, invalid bytes replaced.
    CHECK(samples.count("memlens_scope_calls_total{scope=\"a\\b\"c\nd \xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD\"}") == 1);
}

TEST_CASE("process figures appear where they were read, alerts with their rule", "[prometheus]") {
    memlens::metrics_input in;
    memlens::process_figures p;
    p.rss_bytes = 1 << 20;
    p.rss_peak_bytes = 2 << 20;
    p.vms_bytes = 3 << 20;
    p.swap_bytes = 0;
    p.threads = 4;
    p.has_status = true;
    p.open_fds = 9;
    p.has_fds = true;
    p.pss_bytes = 5;  // has_rollup stays false: absent, not written
    in.process = p;
    memlens::alert_state a;
    a.name = "rss \"high\"";
    a.firing = true;
    a.times_fired = 3;
    a.value = 1.5e9;
    a.limit = 1e9;
    in.alerts.push_back(a);
    memlens::alert_state b;
    b.name = "quiet";
    b.value = std::numeric_limits<double>::quiet_NaN();
    b.limit = std::numeric_limits<double>::infinity();
    in.alerts.push_back(b);
    const std::string text = memlens::to_prometheus(in);
    const auto samples = prometheus_grammar::check(text);
    CHECK(samples.at("memlens_process_resident_bytes") == 1048576);
    CHECK(samples.at("memlens_process_resident_peak_bytes") == 2097152);
    CHECK(samples.at("memlens_process_virtual_bytes") == 3145728);
    CHECK(samples.at("memlens_process_swap_bytes") == 0);
    CHECK(samples.at("memlens_process_threads") == 4);
    CHECK(samples.at("memlens_process_open_fds") == 9);
    CHECK(samples.count("memlens_process_minor_faults_total") == 0);
    CHECK(samples.count("memlens_process_proportional_bytes") == 0);
    CHECK(samples.at("memlens_alert_firing{rule=\"rss \"high\"\"}") == 1);
    CHECK(samples.at("memlens_alert_fired_total{rule=\"rss \"high\"\"}") == 3);
    CHECK(samples.at("memlens_alert_value{rule=\"rss \"high\"\"}") == 1.5e9);
    CHECK(samples.at("memlens_alert_firing{rule=\"quiet\"}") == 0);
    CHECK(text.find("memlens_alert_value{rule=\"quiet\"} NaN\n") != std::string::npos);
    CHECK(text.find("memlens_alert_limit{rule=\"quiet\"} +Inf\n") != std::string::npos);
}

TEST_CASE("the grammar checker refuses what Prometheus refuses", "[prometheus]") {
    CHECK_THROWS(prometheus_grammar::check("memlens_x{a=\"b} 1\n"));
    CHECK_THROWS(prometheus_grammar::check("memlens_x{a=\"\\q\"} 1\n"));
    CHECK_THROWS(prometheus_grammar::check("0bad 1\n"));
    CHECK_THROWS(prometheus_grammar::check("memlens_x one\n"));
    CHECK_THROWS(prometheus_grammar::check("memlens_x 1\n# TYPE memlens_x gauge\n"));
    CHECK_THROWS(prometheus_grammar::check("memlens_x 1\nmemlens_y 1\nmemlens_x{a=\"b\"} 1\n"));
    CHECK_THROWS(prometheus_grammar::check("memlens_x 1\nmemlens_x 2\n"));
    CHECK_THROWS(prometheus_grammar::check("# TYPE memlens_x gauge\nmemlens_x 1\n# TYPE memlens_x gauge\n"));
    CHECK_THROWS(prometheus_grammar::check("# TYPE memlens_x counter\nmemlens_x 1\n"));
    CHECK_THROWS(prometheus_grammar::check("memlens_x 1"));
    CHECK_NOTHROW(prometheus_grammar::check("# TYPE memlens_x_total counter\nmemlens_x_total 1\n"));
}

TEST_CASE("sites sharing a name make one series, their passes added", "[prometheus]") {
    static memlens::scope_site first("prom.shared", "a.cpp", 1, "f");
    static memlens::scope_site second("prom.shared", "b.cpp", 2, "g");
    first.add({100, 0, 100, 100, 1, 0});
    second.add({20, 0, 20, 40, 2, 0});
    const auto samples = prometheus_grammar::check(memlens::to_prometheus(memlens::collect_metrics()));
    CHECK(samples.at("memlens_scope_calls_total{scope=\"prom.shared\"}") == 2);
    CHECK(samples.at("memlens_scope_allocated_bytes_total{scope=\"prom.shared\"}") == 120);
    CHECK(samples.at("memlens_scope_allocations_total{scope=\"prom.shared\"}") == 3);
    CHECK(samples.at("memlens_scope_max_peak_bytes{scope=\"prom.shared\"}") == 100);
}
