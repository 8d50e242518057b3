// memlens/view/prometheus.hpp: memlens's figures in Prometheus's text exposition format 0.0.4,
// written from plain data (metrics_input), and collect_metrics(), which gathers that data.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../core/counters.hpp"
#include "../model/process.hpp"
#include "../model/scopes.hpp"
#include "../model/snapshot.hpp"
#include "../observe/named_scope.hpp"

MEMLENS_NAMESPACE_BEGIN

/// The content type of to_prometheus()'s text, for an HTTP response.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// What to_prometheus() writes: plain data, filled by collect_metrics() or by the caller.
/// Domain, scope and rule names should be unique within their list: Prometheus drops a scrape's
/// repeated series.
struct metrics_input {
    memory_stats totals;                    ///< every domain together (stats())
    std::vector<domain_figures> domains;    ///< each domain's figures (domains())
    std::vector<named_scope_stats> scopes;  ///< each named scope's totals (named_scopes())
    std::optional<process_figures> process; ///< Linux's figures of the process, when known
    std::vector<alert_state> alerts;        ///< each alert rule's state, when there is a monitor
};

/// Gathers the process's figures now: stats(), domains() and named_scopes(), with `process`
/// (may be null) and `alerts` as given. Thread safe; allocates the result, uncounted (its own
/// allocations do not move the figures it reads).
inline metrics_input collect_metrics(const process_figures* process = nullptr,
                                     const std::vector<alert_state>& alerts = {});

/// Appends the exposition of `in` to `out`: one family per figure, each with `# HELP` and
/// `# TYPE` lines; counters end in `_total`, byte figures in `_bytes`; label values escaped as
/// the format asks, bytes that are not UTF-8 replaced by U+FFFD. Process figures appear only
/// where their `has_*` flag is set. Reads nothing but `in`; allocates only `out`'s growth.
inline void append_prometheus(std::string& out, const metrics_input& in);

/// The exposition of `in` as one text; see append_prometheus().
inline std::string to_prometheus(const metrics_input& in) {
    std::string out;
    append_prometheus(out, in);
    return out;
}

namespace detail {

inline void prom_append_uint(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

inline void prom_append_int(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

// The format's spellings of the values outside the finite numbers.
inline void prom_append_double(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        const int n = std::snprintf(buf, sizeof buf, "%.17g", v);
        out.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    }
}

// Length of the valid UTF-8 sequence at `s[i]`, or 0 when it is not one.
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c == 0xE0) n = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC) n = 3;
    else if (c == 0xED) n = 3, hi = 0x9F;  // no surrogates
    else if (c >= 0xEE && c <= 0xEF) n = 3;
    else if (c == 0xF0) n = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 4;
    else if (c == 0xF4) n = 4, hi = 0x8F;
    else return 0;
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k) {
        if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
    }
    return n;
}

// A label value as the format writes it: backslash, double quote and line feed escaped. A
// scrape with a label value that is not UTF-8 is refused whole, so such bytes become U+FFFD.
inline void prom_append_label_value(std::string& out, std::string_view value) {
    std::size_t run = 0;  // start of the bytes that are copied as they are
    for (std::size_t i = 0; i < value.size();) {
        const unsigned char c = static_cast<unsigned char>(value[i]);
        if (c != '\\' && c != '"' && c != '\n' && c < 0x80) {
            ++i;
            continue;
        }
        const std::size_t n = c < 0x80 ? 1 : utf8_sequence(value, i);
        if (n > 1) {
            i += n;
            continue;
        }
        out.append(value.data() + run, i - run);
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += "\xEF\xBF\xBD";
        run = ++i;
    }
    out.append(value.data() + run, value.size() - run);
}

inline void prom_family(std::string& out, std::string_view name, std::string_view type,
                        std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

inline void prom_name(std::string& out, std::string_view name, std::string_view label,
                      std::string_view value) {
    out += name;
    if (!label.empty()) {
        out += '{';
        out += label;
        out += "=\"";
        prom_append_label_value(out, value);
        out += "\"}";
    }
    out += ' ';
}

inline void prom_sample(std::string& out, std::string_view name, std::uint64_t v,
                        std::string_view label = {}, std::string_view value = {}) {
    prom_name(out, name, label, value);
    prom_append_uint(out, v);
    out += '\n';
}

inline void prom_sample_signed(std::string& out, std::string_view name, std::int64_t v,
                               std::string_view label, std::string_view value) {
    prom_name(out, name, label, value);
    prom_append_int(out, v);
    out += '\n';
}

inline void prom_sample_double(std::string& out, std::string_view name, double v,
                               std::string_view label, std::string_view value) {
    prom_name(out, name, label, value);
    prom_append_double(out, v);
    out += '\n';
}

// One family with one sample per element of `rows`, labelled `label` = name_of(row).
template <class Rows, class Name, class Value>
void prom_rows(std::string& out, std::string_view name, std::string_view type, std::string_view help,
               const Rows& rows, std::string_view label, Name name_of, Value value_of) {
    if (rows.empty()) return;
    prom_family(out, name, type, help);
    for (const auto& row : rows) prom_sample(out, name, value_of(row), label, name_of(row));
}

}  // namespace detail

inline void append_prometheus(std::string& out, const metrics_input& in) {
    using namespace detail;
    // One reservation instead of regrowth: a sample line is its family's name (under 40
    // bytes), its label and value (under 35) and the label's value.
    std::size_t names = 0;
    for (const domain_figures& d : in.domains) names += d.name.size();
    for (const named_scope_stats& sc : in.scopes) names += sc.name.size();
    for (const alert_state& a : in.alerts) names += a.name.size();
    out.reserve(out.size() + 4096 + 5 * names +
                75 * (5 * in.domains.size() + 5 * in.scopes.size() + 4 * in.alerts.size()));
    const memory_stats& t = in.totals;
    prom_family(out, "memlens_live_bytes", "gauge", "Bytes allocated and not yet freed, every domain together.");
    prom_sample(out, "memlens_live_bytes", t.current);
    prom_family(out, "memlens_peak_bytes", "gauge", "Highest live bytes since start or the last reset_peak().");
    prom_sample(out, "memlens_peak_bytes", t.peak);
    prom_family(out, "memlens_allocated_bytes_total", "counter", "Bytes ever allocated, every domain together.");
    prom_sample(out, "memlens_allocated_bytes_total", t.total);
    prom_family(out, "memlens_allocations_total", "counter", "Allocations counted, every domain together.");
    prom_sample(out, "memlens_allocations_total", t.allocs);
    prom_family(out, "memlens_frees_total", "counter", "Frees counted, every domain together.");
    prom_sample(out, "memlens_frees_total", t.frees);

    const auto domain_name = [](const domain_figures& d) -> std::string_view { return d.name; };
    prom_rows(out, "memlens_domain_live_bytes", "gauge", "Live bytes of one domain.", in.domains,
              "domain", domain_name, [](const domain_figures& d) -> std::uint64_t { return d.figures.current; });
    prom_rows(out, "memlens_domain_peak_bytes", "gauge", "Peak live bytes of one domain.", in.domains,
              "domain", domain_name, [](const domain_figures& d) -> std::uint64_t { return d.figures.peak; });
    prom_rows(out, "memlens_domain_allocated_bytes_total", "counter", "Bytes ever allocated in one domain.",
              in.domains, "domain", domain_name,
              [](const domain_figures& d) -> std::uint64_t { return d.figures.total; });
    prom_rows(out, "memlens_domain_allocations_total", "counter", "Allocations counted in one domain.",
              in.domains, "domain", domain_name, [](const domain_figures& d) { return d.figures.allocs; });
    prom_rows(out, "memlens_domain_frees_total", "counter", "Frees counted in one domain.", in.domains,
              "domain", domain_name, [](const domain_figures& d) { return d.figures.frees; });

    const auto scope_name = [](const named_scope_stats& s) -> std::string_view { return s.name; };
    prom_rows(out, "memlens_scope_calls_total", "counter", "Closed passes through one named scope.",
              in.scopes, "scope", scope_name, [](const named_scope_stats& s) { return s.calls; });
    prom_rows(out, "memlens_scope_allocated_bytes_total", "counter",
              "Bytes allocated inside one named scope, all passes together.", in.scopes, "scope",
              scope_name, [](const named_scope_stats& s) { return s.allocated; });
    prom_rows(out, "memlens_scope_allocations_total", "counter",
              "Allocations inside one named scope, all passes together.", in.scopes, "scope",
              scope_name, [](const named_scope_stats& s) { return s.allocs; });
    if (!in.scopes.empty()) {
        prom_family(out, "memlens_scope_net_bytes", "gauge",
                    "Bytes still held from all passes through one named scope (negative when it freed more).");
        for (const named_scope_stats& s : in.scopes) {
            prom_sample_signed(out, "memlens_scope_net_bytes", s.net, "scope", s.name);
        }
    }
    prom_rows(out, "memlens_scope_max_peak_bytes", "gauge", "Highest peak of any one pass through one named scope.",
              in.scopes, "scope", scope_name, [](const named_scope_stats& s) { return s.max_peak; });

    if (in.process) {
        const process_figures& p = *in.process;
        const auto one = [&out](std::string_view name, std::string_view type, std::string_view help,
                                std::uint64_t v) {
            prom_family(out, name, type, help);
            prom_sample(out, name, v);
        };
        if (p.has_status) {
            one("memlens_process_resident_bytes", "gauge", "Resident set size (VmRSS).", p.rss_bytes);
            one("memlens_process_resident_peak_bytes", "gauge", "Highest resident set size (VmHWM).",
                p.rss_peak_bytes);
            one("memlens_process_virtual_bytes", "gauge", "Virtual memory size (VmSize).", p.vms_bytes);
            one("memlens_process_swap_bytes", "gauge", "Bytes swapped out (VmSwap).", p.swap_bytes);
            one("memlens_process_threads", "gauge", "Threads of the process.", p.threads);
        }
        if (p.has_fds) one("memlens_process_open_fds", "gauge", "Open file descriptors.", p.open_fds);
        if (p.has_stat) {
            one("memlens_process_minor_faults_total", "counter", "Page faults served without I/O.",
                p.minor_faults);
            one("memlens_process_major_faults_total", "counter", "Page faults that read from disk.",
                p.major_faults);
        }
        if (p.has_rollup) {
            one("memlens_process_proportional_bytes", "gauge", "Proportional set size (smaps_rollup Pss).",
                p.pss_bytes);
            one("memlens_process_anonymous_bytes", "gauge", "Resident anonymous memory.", p.anonymous_bytes);
            one("memlens_process_file_bytes", "gauge", "Resident file-backed memory.", p.file_bytes);
        }
    }

    if (!in.alerts.empty()) {
        const auto rule = [](const alert_state& a) -> std::string_view { return a.name; };
        prom_rows(out, "memlens_alert_firing", "gauge", "1 while the alert rule fires, else 0.", in.alerts,
                  "rule", rule, [](const alert_state& a) -> std::uint64_t { return a.firing ? 1 : 0; });
        prom_rows(out, "memlens_alert_fired_total", "counter", "Times the alert rule went from quiet to firing.",
                  in.alerts, "rule", rule, [](const alert_state& a) { return a.times_fired; });
        prom_family(out, "memlens_alert_value", "gauge", "The figure the alert rule last compared.");
        for (const alert_state& a : in.alerts) prom_sample_double(out, "memlens_alert_value", a.value, "rule", a.name);
        prom_family(out, "memlens_alert_limit", "gauge", "The limit the alert rule compares against.");
        for (const alert_state& a : in.alerts) prom_sample_double(out, "memlens_alert_limit", a.limit, "rule", a.name);
    }
}

inline metrics_input collect_metrics(const process_figures* process, const std::vector<alert_state>& alerts) {
    detail::guard quiet;
    metrics_input in;
    in.totals = stats();
    const std::vector<domain_stats> all = domains();
    in.domains.reserve(all.size());
    for (const domain_stats& d : all) in.domains.push_back({std::string(d.domain.name()), d.stats});
    in.scopes = named_scopes();
    if (process) in.process = *process;
    in.alerts = alerts;
    return in;
}

MEMLENS_NAMESPACE_END
