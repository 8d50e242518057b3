// memlens/testing/baseline.hpp: a memory-regression gate for CI: compares a snapshot with one
// stored in a JSON file, group by group, and fails when a group or the total grew past a tolerance.
//
// Environment:
//   MEMLENS_UPDATE_BASELINES=1  every gate writes its snapshot as the new baseline and passes
//   MEMLENS_BASELINE_STRICT=1   a missing baseline fails instead of being written (for CI, where
//                               baselines must come from the repository)
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "../detail/format.hpp"
#include "../view/json.hpp"
#include "../view/snapshot.hpp"
#include "checks.hpp"

MEMLENS_NAMESPACE_BEGIN

/// How check_against_baseline compares.
struct baseline_options {
    /// How live allocations are grouped on both sides; groups match by their symbolized key.
    group_by by = group_by::site;
    /// A group (or the total) fails when it grew by more than this fraction of its baseline
    /// bytes and by more than `absolute_bytes`: small groups may move by a page, large ones by 10%.
    double relative = 0.10;
    /// The growth in bytes a group (or the total) may show whatever its size; see `relative`.
    std::uint64_t absolute_bytes = 4096;
    /// Applied to both snapshots before grouping, e.g. to leave out the test framework.
    std::vector<snapshot_filter> filters;
    /// How many grown groups a failure lists, largest growth first.
    std::size_t shown = 10;
};

namespace detail {

inline bool environment_flag(const char* name) {
    const char* value = std::getenv(name);
    return value && std::strcmp(value, "1") == 0;
}

inline bool file_exists(const std::string& path) {
    struct ::stat info {};
    return ::stat(path.c_str(), &info) == 0;
}

inline bool grew_too_much(std::uint64_t before, std::int64_t growth, const baseline_options& o) {
    if (growth <= 0) return false;
    const auto g = static_cast<std::uint64_t>(growth);
    return g > o.absolute_bytes && static_cast<double>(g) > o.relative * static_cast<double>(before);
}

// "+1,024 bytes (1.00 KiB)" or "-16 bytes": a change, always with its sign.
inline std::string describe_change(std::int64_t bytes) {
    return (bytes > 0 ? "+" : "") + describe_signed_bytes(bytes);
}

inline check_result baseline_result(bool passed, std::string message) {
    check_result r;
    r.passed = passed;
    r.message = "memlens: " + std::move(message);
    return r;
}

}  // namespace detail

/// Compares the live allocations of `now` with the snapshot stored at `baseline_path`, grouped
/// by `options.by`. Passes when no group and not the total grew past the tolerance; a failure
/// names each grown group (key, bytes before -> after, difference) and the totals. When the
/// baseline is missing, or MEMLENS_UPDATE_BASELINES=1, writes `now` there (symbolized) and
/// passes, saying so; under MEMLENS_BASELINE_STRICT=1 a missing baseline fails instead. A
/// baseline that cannot be read or written fails with the reason. Symbolizes both snapshots.
inline check_result check_against_baseline(const snapshot& now, const std::string& baseline_path,
                                           const baseline_options& options = {}) {
    using detail::baseline_result;
    const bool update = detail::environment_flag("MEMLENS_UPDATE_BASELINES");
    if (update || !detail::file_exists(baseline_path)) {
        if (!update && detail::environment_flag("MEMLENS_BASELINE_STRICT")) {
            return baseline_result(false, "the baseline " + baseline_path +
                                              " is missing, and MEMLENS_BASELINE_STRICT=1 forbids "
                                              "writing it; run once without it and commit the file");
        }
        try {
            write_json(now, baseline_path);
        } catch (const std::exception& e) {
            return baseline_result(false, e.what());
        }
        return baseline_result(true, std::string(update ? "updated" : "wrote") + " the baseline " +
                                         baseline_path);
    }
    snapshot before;
    try {
        before = read_json(baseline_path);
    } catch (const std::exception& e) {
        return baseline_result(false, std::string("the baseline cannot be used: ") + e.what());
    }
    const std::vector<statistic_diff> diffs = compare(before, now, options.by, options.filters);
    std::uint64_t total_before = 0, total_after = 0;
    std::vector<const statistic_diff*> grown;
    for (const statistic_diff& d : diffs) {
        const auto old_bytes = static_cast<std::uint64_t>(static_cast<std::int64_t>(d.bytes) - d.bytes_diff);
        total_before += old_bytes;
        total_after += d.bytes;
        if (detail::grew_too_much(old_bytes, d.bytes_diff, options)) grown.push_back(&d);
    }
    const std::int64_t total_growth =
        static_cast<std::int64_t>(total_after) - static_cast<std::int64_t>(total_before);
    const bool total_grew = detail::grew_too_much(total_before, total_growth, options);
    using detail::describe_bytes;
    std::string totals = "live bytes " + describe_bytes(total_before) + " -> " +
                         describe_bytes(total_after) + ", " + detail::describe_change(total_growth) +
                         ", against " + baseline_path;
    char tolerance[96];
    std::snprintf(tolerance, sizeof tolerance, "more than %.0f%% and more than ", options.relative * 100);
    const std::string limit = tolerance + describe_bytes(options.absolute_bytes);
    if (grown.empty() && !total_grew) {
        return baseline_result(true, "no group grew by " + limit + "; " + totals);
    }
    std::string message = std::to_string(grown.size()) + (grown.size() == 1 ? " group" : " groups") +
                          (total_grew ? " and the total" : "") + " grew by " + limit + "; " +
                          totals;
    const std::size_t shown = std::min(options.shown, grown.size());
    for (std::size_t i = 0; i < shown; ++i) {
        const statistic_diff& d = *grown[i];
        const auto old_bytes = static_cast<std::uint64_t>(static_cast<std::int64_t>(d.bytes) - d.bytes_diff);
        message += "\n  " + d.key + ": " + describe_bytes(old_bytes) + " -> " +
                   describe_bytes(d.bytes) + ", " + detail::describe_change(d.bytes_diff) +
                   (d.estimated ? " (estimated)" : "");
    }
    if (shown < grown.size()) message += "\n  ... and " + std::to_string(grown.size() - shown) + " more";
    return baseline_result(false, message);
}

MEMLENS_NAMESPACE_END
