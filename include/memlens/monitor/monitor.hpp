// memlens/monitor/monitor.hpp: a thread that samples the process's figures and memlens's counters
// into a bounded timeline, marks where named scopes enter and leave, and calls back when an alert
// rule's figure crosses its limit (RSS, tracked bytes, a domain's budget, sustained growth), as a
// psutil loop with alerts and mprof do for a Python program.
//
// What a sample costs (bench/README.md): /proc/self/status, /proc/self/stat and the entries of
// /proc/self/fd, read with open/read into buffers on the stack, and one pass over memlens's
// per-thread counters per domain column: tens of microseconds, the same at 64 MiB and at 1 GiB
// resident. smaps_rollup (the kernel walks every page table: about 1 ms per 64 MiB resident)
// and mallinfo2 (glibc walks every arena's free lists under the arena's lock, stalling the
// threads that allocate there) are not read unless monitor_config asks, each at its own lower
// rate.
//
// The monitor's own memory does not count in the program's figures: the ring of samples, the
// marks and every rule's history are allocated once when the monitor starts, and everything the
// monitor allocates (those, the thread, snapshots for the growth rule, the events it hands to
// callbacks) is allocated under memlens's guard, as memlens's own work is, so that no domain
// counts it, no scope or leak check sees it, and stats() reads the same with a monitor running.
// It is resident all the same, and so part of untracked_bytes. The callbacks are the program's
// code and run unguarded: what they allocate counts as the program's.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <unistd.h>

#include "../core/counters.hpp"
#include "../model/process.hpp"
#include "../observe/named_scope.hpp"
#include "../observe/process.hpp"
#include "../observe/sites.hpp"
#include "../view/snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What an alert rule compares with its limit.
enum class alert_kind {
    rss_above,      ///< the resident set (VmRSS), in bytes
    tracked_above,  ///< the live bytes memlens tracks (monitor_sample::tracked_bytes)
    domain_above,   ///< one domain's live bytes: its budget
    growth_above,   ///< growth in bytes per minute over the rule's window: a leak suspicion
};

/// Which figure a growth rule watches grow.
enum class growth_source {
    tracked,  ///< the live bytes memlens tracks (the default): the sites can say who grew
    rss,      ///< the resident set
};

/// What a rule's callback is given when the rule fires.
struct alert_event {
    /// The rule's state now: firing, how often it has fired (this time included), the value it
    /// compared and its limit.
    alert_state state;
    /// The sample the rule fired on.
    monitor_sample sample;
    /// A growth rule's window as it was measured: seconds between the two figures it compared
    /// (the snapshots' when sites_compared).
    double window_seconds = 0;
    /// Whether `grown_sites` comes from comparing two snapshots: a growth rule while sites or
    /// sampled mode records allocations (configure(), MEMLENS_MODE).
    bool sites_compared = false;
    /// A growth rule's sites whose live bytes grew between a snapshot taken at the window's
    /// start (the newest one at least a window old, else the oldest; snapshots are taken every
    /// half window) and one taken when it fired, largest growth first, grouped by site
    /// (compare(older, newer, group_by::site)). Empty when sites_compared is false.
    std::vector<statistic_diff> grown_sites;
};

/// Called on the monitor's thread each time a rule fires. It may call the monitor's readers
/// (timeline(), alerts(), latest()) but not sample_now() or stop(), and must not destroy the
/// monitor; while it runs, the monitor takes no sample. An exception it throws is reported
/// through the error handler and dropped. What it allocates counts as the program's.
using alert_callback = std::function<void(const alert_event&)>;

/// One alert rule. It fires when its figure rises above `limit` (the callback is called once),
/// and can fire again only after the figure has fallen below its clear level: `clear_below`
/// when set, else limit * (1 - hysteresis). alert_state::firing says which side it is on.
struct alert_rule {
    std::string name;                          ///< the name in alert_state; empty: the kind's name
    alert_kind kind = alert_kind::rss_above;   ///< the figure compared
    /// Bytes for the *_above rules; bytes per minute for growth_above. More than 0.
    std::uint64_t limit = 0;
    std::string domain;                        ///< domain_above: the domain's name
    /// How far below the limit, as a fraction of it, the figure must fall before the rule can
    /// fire again: 0 to below 1 (default 0.1).
    double hysteresis = 0.1;
    /// When above 0, the level the figure must fall below instead (for growth_above in bytes
    /// per minute); it must be below `limit`.
    std::uint64_t clear_below = 0;
    /// growth_above: the window growth is measured over, from twice the monitor's interval to
    /// 24 hours (default a minute). The rule is quiet until the monitor has run that long.
    std::chrono::milliseconds window{60000};
    growth_source source = growth_source::tracked;  ///< growth_above: which figure grows
    alert_callback callback;                   ///< called when the rule fires; may be empty
};

/// A rule that fires when the resident set rises above `bytes`.
inline alert_rule rss_above(std::uint64_t bytes, alert_callback callback = {}) {
    alert_rule r;
    r.kind = alert_kind::rss_above;
    r.limit = bytes;
    r.callback = std::move(callback);
    return r;
}

/// A rule that fires when the live bytes memlens tracks rise above `bytes`.
inline alert_rule tracked_above(std::uint64_t bytes, alert_callback callback = {}) {
    alert_rule r;
    r.kind = alert_kind::tracked_above;
    r.limit = bytes;
    r.callback = std::move(callback);
    return r;
}

/// A rule that fires when the domain called `domain` holds more than `bytes` (its budget).
inline alert_rule domain_above(std::string domain, std::uint64_t bytes, alert_callback callback = {}) {
    alert_rule r;
    r.kind = alert_kind::domain_above;
    r.domain = std::move(domain);
    r.limit = bytes;
    r.callback = std::move(callback);
    return r;
}

/// A rule that fires when the tracked bytes grow faster than `bytes_per_minute` over `window`.
inline alert_rule growth_above(std::uint64_t bytes_per_minute, std::chrono::milliseconds window,
                               alert_callback callback = {}) {
    alert_rule r;
    r.kind = alert_kind::growth_above;
    r.limit = bytes_per_minute;
    r.window = window;
    r.callback = std::move(callback);
    return r;
}

/// How a monitor samples and what it keeps.
struct monitor_config {
    /// Time between samples: 10 ms to 1 hour (default 1 s).
    std::chrono::milliseconds interval{1000};
    /// Samples the timeline keeps, the newest: 2 to 10,000,000 (default 3600, an hour at 1 s).
    /// Allocated when the monitor starts: about 200 bytes plus 8 per domain column each.
    std::size_t capacity = 3600;
    /// Named-scope marks the timeline keeps, the newest: 0 (no marks; named scopes then cost
    /// nothing more) to 10,000,000 (default 4096), 64 bytes each.
    std::size_t mark_capacity = 4096;
    /// Read /proc/self/smaps_rollup (PSS, anonymous and file-backed bytes) at the first sample
    /// at least this long after the last read: 0 never (the default), else at least `interval`.
    std::chrono::milliseconds rollup_interval{0};
    /// Read glibc's mallinfo2 likewise: 0 never (the default), else at least `interval`.
    std::chrono::milliseconds allocator_interval{0};
    /// Domains whose live bytes each sample lists (monitor_sample::domain_bytes), by id from 0
    /// (all domains) up: 1 to MEMLENS_MAX_DOMAINS (default 16: the sum, "heap", "overflow" and
    /// the first 13 named domains).
    std::size_t domain_columns = 16;
    /// Domains whose bytes another domain counts too (a tracking source stacked over another):
    /// left out of tracked_bytes, so that each byte is counted once.
    std::vector<std::string> nested_domains;
    /// The alert rules.
    std::vector<alert_rule> rules;
};

/// Why `config` would be refused ("" when it is good), naming the field, the value and what is
/// accepted.
inline std::string check_monitor_config(const monitor_config& config) {
    using std::to_string;
    const auto ms = [](std::chrono::milliseconds d) { return to_string(d.count()) + " ms"; };
    if (config.interval < std::chrono::milliseconds(10) || config.interval > std::chrono::hours(1)) {
        return "monitor_config::interval " + ms(config.interval) + " is not valid; accepted: 10 ms to 1 hour";
    }
    if (config.capacity < 2 || config.capacity > 10000000) {
        return "monitor_config::capacity " + to_string(config.capacity) +
               " is not valid; accepted: 2 to 10,000,000 samples";
    }
    if (config.mark_capacity > 10000000) {
        return "monitor_config::mark_capacity " + to_string(config.mark_capacity) +
               " is not valid; accepted: 0 to 10,000,000 marks";
    }
    const auto check_rate = [&](const char* field, std::chrono::milliseconds d) -> std::string {
        if (d.count() == 0 || (d >= config.interval && d <= std::chrono::hours(24))) return {};
        return std::string("monitor_config::") + field + " " + ms(d) +
               " is not valid; accepted: 0 (never) or from the interval (" + ms(config.interval) +
               ") to 24 hours";
    };
    std::string error = check_rate("rollup_interval", config.rollup_interval);
    if (error.empty()) error = check_rate("allocator_interval", config.allocator_interval);
    if (!error.empty()) return error;
    if (config.domain_columns < 1 || config.domain_columns > detail::max_domains) {
        return "monitor_config::domain_columns " + to_string(config.domain_columns) +
               " is not valid; accepted: 1 to " + to_string(detail::max_domains);
    }
    for (const std::string& name : config.nested_domains) {
        if (name.empty()) return "monitor_config::nested_domains holds an empty name";
    }
    for (std::size_t i = 0; i < config.rules.size(); ++i) {
        const alert_rule& r = config.rules[i];
        const std::string which = "alert rule " + to_string(i) + (r.name.empty() ? "" : " (" + r.name + ")");
        if (r.limit == 0) return which + ": the limit is 0; accepted: more than 0";
        if (!(r.hysteresis >= 0 && r.hysteresis < 1)) {
            return which + ": hysteresis " + to_string(r.hysteresis) + " is not valid; accepted: 0 to below 1";
        }
        if (r.clear_below >= r.limit) {
            return which + ": clear_below " + to_string(r.clear_below) + " is not below the limit " +
                   to_string(r.limit);
        }
        if (r.kind == alert_kind::domain_above && r.domain.empty()) {
            return which + ": domain_above needs a domain name";
        }
        if (r.kind == alert_kind::growth_above &&
            (r.window < 2 * config.interval || r.window > std::chrono::hours(24))) {
            return which + ": window " + ms(r.window) + " is not valid; accepted: twice the interval (" +
                   ms(2 * config.interval) + ") to 24 hours";
        }
    }
    return {};
}

namespace detail {

inline const char* alert_kind_name(alert_kind k) noexcept {
    switch (k) {
    case alert_kind::rss_above: return "rss_above";
    case alert_kind::tracked_above: return "tracked_above";
    case alert_kind::domain_above: return "domain_above";
    case alert_kind::growth_above: return "growth_above";
    }
    return "?";
}

inline std::int64_t unix_time_ms() noexcept {
    ::timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<std::int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// A scope mark as the monitor keeps it: fixed size, so that keeping one never allocates.
struct kept_mark {
    double seconds = 0;
    std::uint32_t thread = 0;
    bool entered = false;
    char scope[scope_mark_name_words * sizeof(std::uint64_t)] = {};
};

// A growth rule's past: (time, figure) no closer together than 1/1024 of its window, so that
// the figure a window ago is known to that precision from at most 1026 entries.
class growth_history {
public:
    void reset(std::chrono::milliseconds window) {
        window_ns_ = static_cast<std::int64_t>(window.count()) * 1000000;
        spacing_ns_ = window_ns_ / 1024;
        entries_.assign(1026, {});
        head_ = count_ = 0;
    }

    void add(std::int64_t time_ns, double value) {
        if (count_ != 0 && time_ns - newest().first < spacing_ns_) return;
        entries_[(head_ + count_) % entries_.size()] = {time_ns, value};
        if (count_ < entries_.size()) ++count_;
        else head_ = (head_ + 1) % entries_.size();
    }

    // The newest entry at least a window before `now_ns`; false when the history is younger.
    bool window_ago(std::int64_t now_ns, std::pair<std::int64_t, double>& out) const {
        bool found = false;
        for (std::size_t i = 0; i < count_; ++i) {
            const auto& e = entries_[(head_ + i) % entries_.size()];
            if (now_ns - e.first < window_ns_) break;
            out = e;
            found = true;
        }
        return found;
    }

private:
    const std::pair<std::int64_t, double>& newest() const {
        return entries_[(head_ + count_ - 1) % entries_.size()];
    }

    std::int64_t window_ns_ = 0;
    std::int64_t spacing_ns_ = 0;
    std::vector<std::pair<std::int64_t, double>> entries_;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
};

struct rule_runtime {
    alert_rule rule;
    alert_state state;
    std::uint32_t domain_id = 0;
    double clear_level = 0;
    growth_history history;
    // Seconds between the two figures the growth rule last compared.
    double measured_window_seconds = 0;
    // Snapshots for the growth rule in sites mode: (time, snapshot), oldest first, at most 3.
    std::vector<std::pair<std::int64_t, snapshot>> snapshots;
    std::int64_t next_snapshot_ns = 0;
};

// Reports `e` through the error handler once per `reported` flag, after "monitor: ".
inline void report_once(bool& reported, const read_error& e) noexcept {
    if (!e || reported) return;
    reported = true;
    read_error message;
    message.append("monitor: ");
    message.append(e.what());
    report_error(message.what());
}

}  // namespace detail

/// A thread that samples the process every monitor_config::interval into a bounded timeline and
/// checks the alert rules at each sample. Starts in its constructor; stop() or the destructor
/// stops and joins it. Its readers are thread safe. See this file's header for what a sample
/// costs and why the monitor's memory does not count in the program's figures.
class monitor {
public:
    /// Starts sampling with `config`, the first sample at once. Throws std::invalid_argument
    /// with check_monitor_config's message for a bad configuration, std::system_error when no
    /// thread can be started.
    explicit monitor(const monitor_config& config = {}) {
        // The copy of the configuration too: the program's figures are the same with a
        // monitor as without.
        detail::guard quiet;
        const std::string error = check_monitor_config(config);
        if (!error.empty()) throw std::invalid_argument("memlens: " + error);
        config_ = config;
        const std::size_t columns = config_.domain_columns;
        ring_.resize(config_.capacity);
        for (monitor_sample& s : ring_) s.domain_bytes.reserve(columns);
        scratch_.domain_bytes.reserve(columns);
        marks_.resize(config_.mark_capacity);
        for (const std::string& name : config_.nested_domains) {
            nested_.push_back(domain::named(name).id());
        }
        rules_.resize(config_.rules.size());
        for (std::size_t i = 0; i < rules_.size(); ++i) {
            detail::rule_runtime& r = rules_[i];
            r.rule = config_.rules[i];
            r.state.name = r.rule.name.empty() ? detail::alert_kind_name(r.rule.kind) : r.rule.name;
            r.state.limit = static_cast<double>(r.rule.limit);
            r.clear_level = r.rule.clear_below != 0
                                ? static_cast<double>(r.rule.clear_below)
                                : static_cast<double>(r.rule.limit) * (1 - r.rule.hysteresis);
            if (r.rule.kind == alert_kind::domain_above) r.domain_id = domain::named(r.rule.domain).id();
            if (r.rule.kind == alert_kind::growth_above) {
                r.history.reset(r.rule.window);
                r.snapshots.reserve(4);
            }
        }
        fired_.reserve(rules_.size());
        pid_ = ::getpid();
        start_ns_ = detail::monotonic_ns();
        start_unix_ms_ = detail::unix_time_ms();
        if (config_.mark_capacity != 0) {
            marks_on_ = detail::want_scope_marks();
            mark_cursor_ = detail::scope_mark_head();
        }
        try {
            thread_ = std::thread([this] { run(); });
        } catch (...) {
            if (marks_on_) detail::unwant_scope_marks();
            throw;
        }
        // At most 15 bytes and a NUL: "memlens-monitor" fits.
        ::pthread_setname_np(thread_.native_handle(), "memlens-monitor");
    }

    /// Stops and joins the thread.
    ~monitor() { stop(); }

    monitor(const monitor&) = delete;
    monitor& operator=(const monitor&) = delete;

    /// Stops sampling and joins the thread, then reads the scope marks left since the last
    /// sample; the timeline and alert states stay readable. Waits for a sample or callback in
    /// progress. Idempotent; must not be called from a callback.
    void stop() noexcept {
        {
            std::lock_guard<std::mutex> hold(wake_lock_);
            if (stopping_) return;
            stopping_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) {
            if (::getpid() == pid_) {
                thread_.join();
            } else {
                // A child after fork(): the thread stayed in the parent. The handle is left
                // unjoined (joining a thread of another process would never return).
                detail::guard quiet;
                new std::thread(std::move(thread_));
            }
        }
        if (marks_on_) {
            // The marks since the last sample: a scope left just before stop() is on the timeline.
            std::lock_guard<std::mutex> sampling(sample_lock_);
            std::lock_guard<std::mutex> hold(data_lock_);
            detail::guard quiet;
            drain_marks();
            detail::unwant_scope_marks();
            marks_on_ = false;
        }
    }

    /// Whether the thread still samples.
    bool running() const noexcept {
        std::lock_guard<std::mutex> hold(wake_lock_);
        return !stopping_;
    }

    /// Takes a sample now on the calling thread (between the thread's own), checking the rules,
    /// whose callbacks then run on the calling thread. Thread safe.
    void sample_now() { take_sample(); }

    /// A copy of the timeline as it stands: the samples and marks the rings hold, oldest first,
    /// and the domains' names. Thread safe; allocates the copy (counted as the caller's).
    monitor_timeline timeline() const {
        monitor_timeline out;
        out.interval_seconds = static_cast<double>(config_.interval.count()) / 1000.0;
        out.start_unix_time_ms = start_unix_ms_;
        std::lock_guard<std::mutex> hold(data_lock_);
        const std::size_t capacity = ring_.size();
        const std::size_t kept = written_ < capacity ? static_cast<std::size_t>(written_) : capacity;
        out.dropped_samples = written_ - kept;
        out.samples.reserve(kept);
        for (std::uint64_t i = written_ - kept; i < written_; ++i) out.samples.push_back(ring_[i % capacity]);
        const std::size_t mark_capacity = marks_.size();
        const std::size_t marks_kept =
            marks_written_ < mark_capacity ? static_cast<std::size_t>(marks_written_) : mark_capacity;
        out.dropped_marks = marks_lost_ + (marks_written_ - marks_kept);
        out.marks.reserve(marks_kept);
        for (std::uint64_t i = marks_written_ - marks_kept; i < marks_written_; ++i) {
            const detail::kept_mark& m = marks_[i % mark_capacity];
            out.marks.push_back({m.seconds, m.scope, m.entered, m.thread});
        }
        const std::uint32_t count = detail::core.slot_count.load(std::memory_order_acquire);
        const std::size_t names = count < config_.domain_columns ? count : config_.domain_columns;
        for (std::uint32_t i = 0; i < names; ++i) {
            out.domain_names.emplace_back(detail::domain_access::make(i).name());
        }
        return out;
    }

    /// The newest sample into `out`; false before the first. Thread safe.
    bool latest(monitor_sample& out) const {
        std::lock_guard<std::mutex> hold(data_lock_);
        if (written_ == 0) return false;
        out = ring_[(written_ - 1) % ring_.size()];
        return true;
    }

    /// Every rule's state, in the order of monitor_config::rules. Thread safe; allocates.
    std::vector<alert_state> alerts() const {
        std::lock_guard<std::mutex> hold(data_lock_);
        std::vector<alert_state> out;
        out.reserve(rules_.size());
        for (const detail::rule_runtime& r : rules_) out.push_back(r.state);
        return out;
    }

    /// Samples taken so far, those the ring has let go included. Thread safe.
    std::uint64_t samples_taken() const {
        std::lock_guard<std::mutex> hold(data_lock_);
        return written_;
    }

    /// What the last sample could not read ("" when it read everything), e.g. a container
    /// without /proc/self/smaps_rollup. Each such message also goes once through the error
    /// handler. Thread safe.
    std::string last_error() const {
        std::lock_guard<std::mutex> hold(data_lock_);
        return last_error_.what();
    }

    /// The configuration it runs with.
    const monitor_config& config() const noexcept { return config_; }

private:
    void run() {
        std::int64_t next = start_ns_;
        for (;;) {
            take_sample();
            const std::int64_t interval = static_cast<std::int64_t>(config_.interval.count()) * 1000000;
            next += interval;
            const std::int64_t now = detail::monotonic_ns();
            // Samples missed (a stopped process, a slow callback) are skipped, not caught up.
            if (next <= now) next += ((now - next) / interval + 1) * interval;
            const auto deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(next));
            std::unique_lock<std::mutex> hold(wake_lock_);
            if (wake_.wait_until(hold, deadline, [this] { return stopping_; })) return;
        }
    }

    // Reads every figure into scratch_, outside any lock the readers take.
    void read_figures(std::int64_t now_ns) {
        monitor_sample& s = scratch_;
        s.seconds = static_cast<double>(now_ns - start_ns_) / 1e9;
        s.unix_time_ms = detail::unix_time_ms();
        read_error error;
        read_error part = read_status(s.process);
        detail::report_once(reported_[0], part);
        error.add(part);
        part = read_stat(s.process);
        detail::report_once(reported_[1], part);
        error.add(part);
        part = count_open_fds(s.process);
        detail::report_once(reported_[2], part);
        error.add(part);
        s.process.pss_bytes = s.process.anonymous_bytes = s.process.file_bytes = 0;
        s.process.has_rollup = false;
        const auto due = [&](std::chrono::milliseconds every, std::int64_t& last) {
            if (every.count() == 0) return false;
            const std::int64_t span = static_cast<std::int64_t>(every.count()) * 1000000;
            // Half an interval early still counts, so that a rate equal to the interval holds.
            const std::int64_t slack = static_cast<std::int64_t>(config_.interval.count()) * 500000;
            if (last != 0 && now_ns - last + slack < span) return false;
            last = now_ns;
            return true;
        };
        if (due(config_.rollup_interval, last_rollup_ns_)) {
            part = read_smaps_rollup(s.process);
            detail::report_once(reported_[3], part);
            error.add(part);
        }
        s.has_allocator = due(config_.allocator_interval, last_allocator_ns_);
        s.allocator = s.has_allocator ? read_allocator_figures() : allocator_figures{};

        const memory_stats all = stats();
        const std::uint32_t count = detail::core.slot_count.load(std::memory_order_acquire);
        const std::size_t columns = count < config_.domain_columns ? count : config_.domain_columns;
        s.domain_bytes.resize(columns);
        if (columns != 0) s.domain_bytes[0] = all.current;
        for (std::uint32_t i = 1; i < columns; ++i) s.domain_bytes[i] = detail::read_slot(i).current;
        std::uint64_t nested = 0;
        for (std::uint32_t id : nested_) nested += stats(detail::domain_access::make(id)).current;
        s.tracked_bytes = all.current > nested ? all.current - nested : 0;
        if (s.tracked_bytes > highest_tracked_) highest_tracked_ = s.tracked_bytes;
        s.tracked_peak = highest_tracked_;
        if (nested_.empty() && all.peak > s.tracked_peak) s.tracked_peak = all.peak;
        s.untracked_bytes = s.process.has_status ? untracked_bytes(s.process.rss_bytes, s.tracked_bytes) : 0;
        error_ = error;
    }

    // The value `r` compares now; false when this sample does not give it.
    bool rule_value(detail::rule_runtime& r, std::int64_t now_ns, double& value) {
        const monitor_sample& s = scratch_;
        switch (r.rule.kind) {
        case alert_kind::rss_above:
            value = static_cast<double>(s.process.rss_bytes);
            return s.process.has_status;
        case alert_kind::tracked_above:
            value = static_cast<double>(s.tracked_bytes);
            return true;
        case alert_kind::domain_above:
            value = static_cast<double>(stats(detail::domain_access::make(r.domain_id)).current);
            return true;
        case alert_kind::growth_above: {
            const bool rss = r.rule.source == growth_source::rss;
            if (rss && !s.process.has_status) return false;
            const double now = static_cast<double>(rss ? s.process.rss_bytes : s.tracked_bytes);
            r.history.add(now_ns, now);
            std::pair<std::int64_t, double> then;
            if (!r.history.window_ago(now_ns, then)) return false;
            value = (now - then.second) * 60e9 / static_cast<double>(now_ns - then.first);
            r.measured_window_seconds = static_cast<double>(now_ns - then.first) / 1e9;
            return true;
        }
        }
        return false;
    }

    // Sites or sampled mode: snapshots are worth taking.
    static bool recording_sites() {
        const tracking_mode mode = current_config().mode;
        return mode == tracking_mode::sites || mode == tracking_mode::sampled;
    }

    // A growth rule's snapshot every half window, the last three kept.
    void keep_snapshots(detail::rule_runtime& r, std::int64_t now_ns) {
        if (r.rule.kind != alert_kind::growth_above || now_ns < r.next_snapshot_ns) return;
        r.next_snapshot_ns = now_ns + static_cast<std::int64_t>(r.rule.window.count()) * 500000;
        if (!recording_sites()) {
            r.snapshots.clear();
            return;
        }
        if (r.snapshots.size() == 3) r.snapshots.erase(r.snapshots.begin());
        r.snapshots.emplace_back(now_ns, take_snapshot());
    }

    void grown_sites(detail::rule_runtime& r, std::int64_t now_ns, alert_event& event) {
        if (r.rule.kind != alert_kind::growth_above || r.snapshots.empty() || !recording_sites()) return;
        const std::int64_t window_ns = static_cast<std::int64_t>(r.rule.window.count()) * 1000000;
        const std::pair<std::int64_t, snapshot>* start = &r.snapshots.front();
        for (const auto& s : r.snapshots) {
            if (now_ns - s.first >= window_ns) start = &s;
        }
        const snapshot newer = take_snapshot();
        event.sites_compared = true;
        event.window_seconds = static_cast<double>(now_ns - start->first) / 1e9;
        for (statistic_diff& d : compare(start->second, newer, group_by::site)) {
            if (d.bytes_diff > 0) event.grown_sites.push_back(std::move(d));
        }
    }

    void take_sample() {
        std::lock_guard<std::mutex> sampling(sample_lock_);
        std::vector<alert_event> events;
        {
            detail::guard quiet;
            const std::int64_t now_ns = detail::monotonic_ns();
            read_figures(now_ns);
            fired_.clear();
            {
                std::lock_guard<std::mutex> hold(data_lock_);
                ring_[written_ % ring_.size()] = scratch_;
                ++written_;
                last_error_ = error_;
                if (marks_on_) drain_marks();
                for (std::size_t i = 0; i < rules_.size(); ++i) {
                    detail::rule_runtime& r = rules_[i];
                    double value = 0;
                    if (!rule_value(r, now_ns, value)) continue;
                    r.state.value = value;
                    if (!r.state.firing && value > r.state.limit) {
                        r.state.firing = true;
                        ++r.state.times_fired;
                        fired_.push_back(i);
                    } else if (r.state.firing && value < r.clear_level) {
                        r.state.firing = false;
                    }
                }
            }
            for (detail::rule_runtime& r : rules_) keep_snapshots(r, now_ns);
            for (std::size_t i : fired_) {
                detail::rule_runtime& r = rules_[i];
                if (!r.rule.callback) continue;
                alert_event event;
                {
                    std::lock_guard<std::mutex> hold(data_lock_);
                    event.state = r.state;
                }
                event.sample = scratch_;
                if (r.rule.kind == alert_kind::growth_above) {
                    event.window_seconds = r.measured_window_seconds;
                    grown_sites(r, now_ns, event);
                }
                events.push_back(std::move(event));
            }
        }
        std::size_t e = 0;
        for (std::size_t i : fired_) {
            if (!rules_[i].rule.callback) continue;
            try {
                rules_[i].rule.callback(events[e++]);
            } catch (...) {
                detail::report_error("monitor: an alert callback threw an exception; it is ignored");
            }
        }
        detail::guard quiet;
        events.clear();
        events.shrink_to_fit();
    }

    // Called with data_lock_ held: the marks written since the last sample into the mark ring.
    void drain_marks() {
        const std::size_t capacity = marks_.size();
        marks_lost_ += detail::read_scope_marks(
            mark_cursor_, [&](std::int64_t time_ns, std::uint32_t thread, bool entered, const char* name) {
                detail::kept_mark& m = marks_[marks_written_ % capacity];
                m.seconds = static_cast<double>(time_ns - start_ns_) / 1e9;
                m.thread = thread;
                m.entered = entered;
                std::memcpy(m.scope, name, sizeof m.scope);
                ++marks_written_;
            });
    }

    monitor_config config_;
    std::vector<monitor_sample> ring_;
    std::uint64_t written_ = 0;
    std::vector<detail::kept_mark> marks_;
    std::uint64_t marks_written_ = 0;
    std::uint64_t marks_lost_ = 0;
    std::uint64_t mark_cursor_ = 0;
    bool marks_on_ = false;
    std::vector<std::uint32_t> nested_;
    std::vector<detail::rule_runtime> rules_;
    std::vector<std::size_t> fired_;
    monitor_sample scratch_;
    std::uint64_t highest_tracked_ = 0;
    read_error error_;
    read_error last_error_;
    bool reported_[4] = {};
    std::int64_t last_rollup_ns_ = 0;
    std::int64_t last_allocator_ns_ = 0;
    std::int64_t start_ns_ = 0;
    std::int64_t start_unix_ms_ = 0;
    ::pid_t pid_ = 0;

    mutable std::mutex data_lock_;   // the rings, the rule states, last_error_
    std::mutex sample_lock_;         // one sample at a time: the thread's or sample_now()'s
    mutable std::mutex wake_lock_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

MEMLENS_NAMESPACE_END
