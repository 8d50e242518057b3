// memlens/view/pprof.hpp: a snapshot as a pprof heap profile (profile.proto, gzipped or plain),
// which `go tool pprof` and the other pprof readers open: allocated and live objects and bytes
// per stack, each frame with its function, file and line and the calls inlined there.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../detail/files.hpp"
#include "../detail/gzip.hpp"
#include "../detail/index.hpp"
#include "snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What pprof_profile() writes.
struct pprof_options {
    /// Gzip the encoded profile, as pprof files usually are (stored deflate blocks: readers
    /// inflate it, but it is no smaller); false for the bare protocol buffer.
    bool gzip = true;
};

namespace detail {

// The protocol buffer wire format, as much of it as profile.proto needs.
inline void pb_varint(std::string& out, std::uint64_t value) {
    while (value >= 0x80) {
        out += static_cast<char>((value & 0x7Fu) | 0x80u);
        value >>= 7;
    }
    out += static_cast<char>(value);
}

// A varint field; proto3 leaves fields at 0 out.
inline void pb_number(std::string& out, std::uint32_t field, std::uint64_t value) {
    if (value == 0) return;
    pb_varint(out, std::uint64_t{field} << 3);
    pb_varint(out, value);
}

// A length-delimited field: a string or an encoded message, written even when empty.
inline void pb_bytes(std::string& out, std::uint32_t field, const std::string& bytes) {
    pb_varint(out, (std::uint64_t{field} << 3) | 2);
    pb_varint(out, bytes.size());
    out += bytes;
}

inline void pb_packed(std::string& out, std::uint32_t field, const std::vector<std::uint64_t>& values) {
    std::string packed;
    for (const std::uint64_t v : values) pb_varint(packed, v);
    pb_bytes(out, field, packed);
}

// One profile being encoded: its string table and its functions, locations and mappings by key.
class pprof_builder {
public:
    pprof_builder() { string(""); }

    std::uint64_t string(const std::string& text) {
        const auto [row, added] = strings_.insert(text);
        if (added) pb_bytes(string_table_, 6, text);
        return row;
    }

    // Frames are looked up by their address in the resolved stacks (each address resolves to
    // one frame_info), so that each is named and hashed by its strings once.
    std::uint64_t function(const frame_info& f) {
        const auto [cached, fresh] = function_of_frame_.emplace(&f, 0);
        if (!fresh) return cached->second;
        const std::string name = frame_name(f);
        const auto [row, added] = functions_.insert(name + '\0' + f.file);
        if (added) {
            std::string m;
            pb_number(m, 1, row + 1);
            pb_number(m, 2, string(name));
            pb_number(m, 3, string(name));
            pb_number(m, 4, string(f.file));
            pb_bytes(body_, 5, m);
        }
        cached->second = row + 1;
        return row + 1;
    }

    // The mapping of `f`'s module, widened to hold its address; 0 for an unmapped frame.
    std::uint64_t mapping(const frame_info& f) {
        if (f.module.empty()) return 0;
        // A snapshot read from a file may say anything: the start never passes the address.
        const std::uintptr_t start = f.offset <= f.address ? f.address - f.offset : f.address;
        const auto [row, added] = mapping_rows_.insert(f.module);
        if (added) mappings_.push_back({f.module, start, f.address + 1});
        pprof_mapping& m = mappings_[row];
        if (start < m.start) m.start = start;
        if (f.address + 1 > m.limit) m.limit = f.address + 1;
        return row + 1;
    }

    // The location of one address: `frames` are the calls inlined there, innermost first, and
    // last the frame of the function they were inlined into, as profile.proto orders its lines.
    std::uint64_t location(const std::vector<const frame_info*>& frames) {
        const frame_info& outer = *frames.back();
        // The frame and how many of its lines are kept (memlens's own inlined frames are cut
        // at the top of a stack): user-space pointers fit in 48 bits.
        const std::uint64_t key = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&outer)) ^
                                  (std::uint64_t{frames.size()} << 48);
        const auto [row, added] = locations_.insert(key);
        const std::uint64_t id = row + 1;
        if (!added) return id;
        std::string m;
        pb_number(m, 1, id);
        pb_number(m, 2, mapping(outer));
        pb_number(m, 3, outer.address);
        for (const frame_info* f : frames) {
            std::string line;
            pb_number(line, 1, function(*f));
            pb_number(line, 2, f->line);
            pb_bytes(m, 4, line);
        }
        pb_bytes(body_, 4, m);
        return id;
    }

    // The location ids of a stack, leaf first: one per address, its inlined calls as lines.
    std::vector<std::uint64_t> stack(const frame_range& frames) {
        std::vector<std::uint64_t> ids;
        std::vector<const frame_info*> run;
        for (const frame_info& f : frames) {
            run.push_back(&f);
            if (f.inline_call) continue;
            ids.push_back(location(run));
            run.clear();
        }
        if (!run.empty()) ids.push_back(location(run));
        if (ids.empty()) {
            no_stack_.function = "(no stack)";
            ids.push_back(location({&no_stack_}));
        }
        return ids;
    }

    void sample(const std::vector<std::uint64_t>& locations, const std::vector<std::uint64_t>& values) {
        std::string m;
        pb_packed(m, 1, locations);
        pb_packed(m, 2, values);
        pb_bytes(samples_, 2, m);
    }

    std::string finish(const snapshot& s) {
        std::string out;
        const char* const sample_types[][2] = {{"alloc_objects", "count"},
                                        {"alloc_space", "bytes"},
                                        {"inuse_objects", "count"},
                                        {"inuse_space", "bytes"}};
        for (const auto& t : sample_types) out += value_type(1, t[0], t[1]);
        out += samples_;
        for (std::size_t i = 0; i < mappings_.size(); ++i) {
            std::string m;
            pb_number(m, 1, i + 1);
            pb_number(m, 2, mappings_[i].start);
            pb_number(m, 3, mappings_[i].limit);
            pb_number(m, 5, string(mappings_[i].file));
            pb_number(m, 7, 1);  // has_functions
            pb_number(m, 8, 1);  // has_filenames
            pb_number(m, 9, 1);  // has_line_numbers
            pb_number(m, 10, 1);  // has_inline_frames
            pb_bytes(out, 3, m);
        }
        out += body_;
        const std::uint64_t when = s.run.unix_time_ms > 0 ? static_cast<std::uint64_t>(s.run.unix_time_ms) : 0;
        pb_number(out, 9, when * 1000000);
        out += value_type(11, "space", "bytes");
        pb_number(out, 12, s.sample_bytes);
        pb_number(out, 14, string("inuse_space"));
        return string_table_ + out;
    }

private:
    struct pprof_mapping {
        std::string file;
        std::uintptr_t start;
        std::uintptr_t limit;
    };

    std::string value_type(std::uint32_t field, const char* type, const char* unit) {
        std::string m;
        pb_number(m, 1, string(type));
        pb_number(m, 2, string(unit));
        std::string out;
        pb_bytes(out, field, m);
        return out;
    }

    string_index strings_;
    string_index functions_;
    string_index mapping_rows_;
    std::vector<pprof_mapping> mappings_;
    std::unordered_map<const frame_info*, std::uint64_t> function_of_frame_;
    key_index locations_;
    frame_info no_stack_;  // the one frame of allocations without a stack
    std::string string_table_;  // written first, so that readers meet the strings before use
    std::string samples_;
    std::string body_;  // functions and locations
};

}  // namespace detail

/// `s` as a pprof profile (github.com/google/pprof, proto/profile.proto): one sample per stack
/// with four values, alloc_objects and alloc_space (everything recorded there, snapshot::sites)
/// and inuse_objects and inuse_space (its live allocations, the default); a location per
/// return address whose lines are the calls inlined there, innermost first, then the function
/// they were inlined into; a mapping per module, marked as carrying functions, files and lines.
/// Stacks with nothing recorded and nothing alive are left out; memlens's own frames too.
/// Sampled allocations count by their weight, rounded. Returns the bytes, gzipped unless
/// `options` say otherwise. Allocates.
inline std::string pprof_profile(const snapshot& s, const pprof_options& options = {}) {
    using namespace detail;
    guard quiet;
    const resolved_stacks resolved(s);
    key_index rows;
    std::vector<std::uint32_t> stack_ids;
    std::vector<std::uint64_t> allocated;  // objects, bytes per row
    std::vector<live_sum> live;
    auto row = [&](std::uint32_t stack) {
        const auto [at, added] = rows.insert(stack);
        if (added) {
            stack_ids.push_back(stack);
            allocated.insert(allocated.end(), {0, 0});
            live.emplace_back();
        }
        return at;
    };
    for (const site_record& site : s.sites) {
        const std::uint32_t at = row(site.stack);
        allocated[2 * at] += site.allocs;
        allocated[2 * at + 1] += site.bytes;
    }
    for (const live_sum& w : live_by_stack(s, false)) {
        const std::uint32_t at = row(w.stack);
        live[at].add(w);
    }
    pprof_builder profile;
    for (std::uint32_t at = 0; at < stack_ids.size(); ++at) {
        const std::vector<std::uint64_t> values = {allocated[2 * at], allocated[2 * at + 1],
                                                   rounded(live[at].count), rounded(live[at].bytes)};
        if (values[0] == 0 && values[1] == 0 && values[2] == 0 && values[3] == 0) continue;
        profile.sample(profile.stack(resolved.frames(stack_ids[at])), values);
    }
    std::string encoded = profile.finish(s);
    return options.gzip ? gzip_stored(encoded) : encoded;
}

/// Writes pprof_profile(s, options) to `path` by the rule of detail/files.hpp (as
/// write_report does). Throws std::runtime_error naming the path and the reason when it cannot
/// be written. Not one of write_report's formats: the exit report does not compile it.
inline void write_pprof(const snapshot& s, const std::string& path, const pprof_options& options = {}) {
    const std::string bytes = pprof_profile(s, options);
    std::string error;
    if (!detail::write_output_file(path, bytes, error)) throw std::runtime_error("memlens: " + error);
}

MEMLENS_NAMESPACE_END
