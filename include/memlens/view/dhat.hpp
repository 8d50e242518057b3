// memlens/view/dhat.hpp: a snapshot as the JSON file of valgrind's DHAT (dhat.out.N, heap mode),
// which DHAT's own viewer (dh_view.html) opens: per program point the bytes and blocks
// allocated, those alive at the end and at the peak, and with lifetimes kept the blocks'
// lifetimes and the most bytes alive at once.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "../detail/files.hpp"
#include "../detail/index.hpp"
#include "../detail/json_text.hpp"
#include "massif.hpp"

MEMLENS_NAMESPACE_BEGIN

namespace detail {

struct dhat_point {
    std::vector<std::uint32_t> frames;  // indexes into the frame table, innermost first
    std::uint64_t bytes = 0;            // allocated
    std::uint64_t blocks = 0;
    live_sum live;                       // alive at the snapshot
    std::uint64_t peak_bytes = 0;
    std::uint64_t peak_blocks = 0;
    site_lifetimes life{};  // with snapshot::lifetimes_kept; max_* summed over the point's stacks
};

// DHAT's threshold for "short-lived" blocks (`tuth`, 500 instructions in DHAT): in memlens's
// clock, a block is short-lived when less than a page of bytes was allocated while it lived.
constexpr std::uint64_t dhat_short_lived_bytes = 4096;

inline void dhat_field(std::string& out, const char* name, std::uint64_t value) {
    append_all(out, {",\"", name, "\":", number(value)});
}

// A point's frames, and the end of its object.
inline void dhat_frames(std::string& out, const std::vector<std::uint32_t>& frames) {
    out += ",\"fs\":[";
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (i != 0) out += ',';
        append_number(out, frames[i]);
    }
    out += "]}";
}

}  // namespace detail

/// `s` as DHAT's JSON file (dhatFileVersion 2, mode "heap"): a program point per stack (stacks
/// whose frames read the same are one point; memlens's own frames are left out), with the
/// bytes and blocks allocated there (`tb`, `tbk`, from snapshot::sites), those alive when the
/// snapshot was taken (`eb`, `ebk`) and, when the peak was kept (snapshot::peak_kept), at the
/// peak (`gb`, `gbk`); frames as valgrind names them ("0x4005E4: main (prog.c:20)"), the calls
/// inlined at an address each a frame of its own. Time is in bytes allocated (`tu` "bytes").
/// Without lifetimes `bklt` is false, `te` is the process's total bytes, and `tl` and `mb` are
/// left out: DHAT's viewer shows the totals. When the snapshot has lifetimes
/// (snapshot::lifetimes_kept, tracking_config::lifetimes) `bklt` is true and every figure is of
/// the timed blocks (site_record::life): `tl` their summed lifetimes, `mb`/`mbk` the most bytes
/// alive at once and the blocks then (summed over stacks that read as one point, rare, then an
/// upper bound), `gb`/`gbk` at the timed blocks' highest, `eb`/`ebk` at the snapshot, `te` and
/// `tg` the lifetime clock then and at that highest, `tuth` 4096 bytes. memlens measures no
/// accesses: `bkacc` is false. Sampled allocations count by their weight, rounded. Allocates.
inline std::string dhat_json(const snapshot& s) {
    using namespace detail;
    guard quiet;
    const resolved_stacks resolved(s);
    string_index frame_rows;
    std::vector<std::string> frame_table = {"[root]"};
    frame_rows.insert(frame_table.front());
    std::unordered_map<const frame_info*, std::uint32_t> frame_ids;
    string_index point_rows;  // by frames
    std::vector<dhat_point> points;
    key_index stack_rows;
    std::vector<std::uint32_t> point_of_stack;
    auto point = [&](std::uint32_t stack) -> dhat_point& {
        const auto [row, added] = stack_rows.insert(stack);
        if (!added) return points[point_of_stack[row]];
        std::vector<std::uint32_t> frames;
        std::string key;
        const frame_range range = resolved.frames(stack);
        if (range.empty()) {
            frame_table.push_back("[no stack]");
            const auto [id, fresh] = frame_rows.insert(frame_table.back());
            if (!fresh) frame_table.pop_back();
            frames.push_back(id);
        }
        for (const frame_info& f : range) {
            // Each frame of the resolved stacks is one address's: labelled once.
            const auto [cached, fresh] = frame_ids.emplace(&f, 0);
            if (fresh) {
                std::string label = valgrind_frame_label(f);
                const auto [id, new_label] = frame_rows.insert(label);
                if (new_label) frame_table.push_back(std::move(label));
                cached->second = id;
            }
            frames.push_back(cached->second);
        }
        for (const std::uint32_t id : frames) append_all(key, {number(id), ","});
        const auto [at, new_point] = point_rows.insert(key);
        if (new_point) points.push_back({std::move(frames), 0, 0, {}, 0, 0, {}});
        point_of_stack.push_back(at);
        return points[at];
    };
    for (const site_record& site : s.sites) {
        dhat_point& p = point(site.stack);
        p.bytes += site.bytes;
        p.blocks += site.allocs;
        p.peak_bytes += site.peak_bytes;
        p.peak_blocks += site.peak_allocs;
        if (!s.lifetimes_kept || site.life.allocs == 0) continue;
        site_lifetimes& l = p.life;
        l.allocs += site.life.allocs;
        l.bytes += site.life.bytes;
        l.lifetimes += site.life.lifetimes;
        l.max_bytes += site.life.max_bytes;
        l.max_allocs += site.life.max_allocs;
        l.peak_bytes += site.life.peak_bytes;
        l.peak_allocs += site.life.peak_allocs;
        l.live_bytes += site.life.live_bytes;
        l.live_allocs += site.life.live_allocs;
    }
    const bool timed = s.lifetimes_kept;
    if (!timed) {
        for (const live_sum& w : live_by_stack(s, false)) point(w.stack).live.add(w);
    }

    std::string out = "{\"dhatFileVersion\":2,\"mode\":\"heap\",\"verb\":\"Allocated\",\"bklt\":";
    out += timed ? "true" : "false";
    out += ",\"bkacc\":false,\"tu\":\"bytes\",\"Mtu\":\"MB\",\"cmd\":";
    append_json_string(out, s.run.command_line.empty() ? std::string("(unknown)") : s.run.command_line);
    append_all(out, {",\"pid\":", number(s.run.pid > 0 ? static_cast<std::uint64_t>(s.run.pid) : 0),
                     ",\"te\":", number(timed ? s.lifetime_clock : s.totals.total)});
    if (timed) {
        append_all(out, {",\"tg\":", number(s.lifetime_peak_clock),
                         ",\"tuth\":", number(dhat_short_lived_bytes)});
    }
    out += ",\"pps\":[";
    bool first = true;
    for (const dhat_point& p : points) {
        if (timed) {
            if (p.life.allocs == 0) continue;
            const site_lifetimes& l = p.life;
            out += first ? "\n{" : ",\n{";
            first = false;
            append_all(out, {"\"tb\":", number(l.bytes)});
            dhat_field(out, "tbk", l.allocs);
            dhat_field(out, "tl", l.lifetimes);
            dhat_field(out, "mb", l.max_bytes);
            dhat_field(out, "mbk", l.max_allocs);
            dhat_field(out, "gb", l.peak_bytes);
            dhat_field(out, "gbk", l.peak_allocs);
            dhat_field(out, "eb", l.live_bytes);
            dhat_field(out, "ebk", l.live_allocs);
            dhat_frames(out, p.frames);
            continue;
        }
        const std::uint64_t live_bytes = rounded(p.live.bytes), live_blocks = rounded(p.live.count);
        if (p.bytes == 0 && p.blocks == 0 && live_bytes == 0 && live_blocks == 0) continue;
        out += first ? "\n{" : ",\n{";
        first = false;
        // A block alive at the snapshot was allocated: the totals hold it even where the site
        // record began after it (a snapshot read back from an older file).
        append_all(out, {"\"tb\":", number(p.bytes > live_bytes ? p.bytes : live_bytes)});
        dhat_field(out, "tbk", p.blocks > live_blocks ? p.blocks : live_blocks);
        if (s.peak_kept) {
            dhat_field(out, "gb", p.peak_bytes);
            dhat_field(out, "gbk", p.peak_blocks);
        }
        dhat_field(out, "eb", live_bytes);
        dhat_field(out, "ebk", live_blocks);
        dhat_frames(out, p.frames);
    }
    out += "\n],\n\"ftbl\":[";
    for (std::size_t i = 0; i < frame_table.size(); ++i) {
        out += i == 0 ? "\n" : ",\n";
        append_json_string(out, frame_table[i]);
    }
    out += "\n]\n}\n";
    return out;
}

/// Writes dhat_json(s) to `path` by the rule of detail/files.hpp (as write_report does);
/// throws std::runtime_error naming the path and the reason when it cannot be written. Not one
/// of write_report's formats: the exit report does not compile it.
inline void write_dhat(const snapshot& s, const std::string& path) {
    const std::string text = dhat_json(s);
    std::string error;
    if (!detail::write_output_file(path, text, error)) throw std::runtime_error("memlens: " + error);
}

MEMLENS_NAMESPACE_END
