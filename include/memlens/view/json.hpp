// memlens/view/json.hpp: a snapshot as a self-contained JSON file (symbols included, so that any
// process can read it without a symbolizer) and a strict reader, for diffs across runs and CI
// baselines.
//
// Schema "memlens.snapshot", version 1. One object whose members come in exactly this order (a
// reader may rely on the order; this one refuses any other, and any member it does not know):
//
//   "format"            "memlens.snapshot"
//   "version"           1; a change that an older reader would misread raises it
//   "run"               {"unix_time_ms", "pid", "command_line", "build", "mode"}
//   "totals"            {"current", "peak", "total", "allocs", "frees"}: every domain together
//   "domains"           [{"name", "current", "peak", "total", "allocs", "frees"}, ...]
//   "domain_names"      ["name", ...]: a domain id in "allocations" indexes this list
//   "sample_bytes"      mean sampling interval when any allocation was sampled, else 0
//   "temporary_window"  allocations within which a free makes a block temporary
//   "scopes"            [{"name", "file", "line", "function", "calls", "allocated", "allocs",
//                         "net", "max_peak"}, ...]
//   "types"             [{"name", "size", "instances", "bytes", "peak", "constructed"}, ...]
//   "timeline"          [{"seconds", "current", "peak", "label"}, ...]
//   "modules"           ["path", ...]: executables and shared objects, referred to by index
//   "symbols"           [[address, "function", "file", line, module, offset], ...]: every frame
//                       address of every stack, in ascending order; module indexes "modules"
//   "stacks"            [[id, [address, ...]], ...]: return addresses, innermost first; ids above
//                       0, in ascending order
//   "sites"             [[stack, allocs, bytes, temporaries], ...]: everything ever recorded at
//                       a stack up to the snapshot
//   "allocations"       [[address, size, domain, stack, thread, sequence, sampled], ...]: the
//                       live allocations; stack 0 is "no stack", sampled is 0 or 1
//
// Rows of the large tables are arrays rather than objects to keep files small and fast to read.
// Numbers are integers written exactly (unsigned 64-bit unless said otherwise: "pid",
// "unix_time_ms" and a scope's "net" are signed; "line", "domain", "stack", "thread" and stack
// ids are 32-bit), except "seconds", a double (null when not finite). Strings are the bytes the
// program had, escaped as RFC 8259 asks; bytes that are not UTF-8 pass through unchanged.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../detail/files.hpp"
#include "../detail/json_text.hpp"
#include "snapshot.hpp"

namespace memlens {

/// Why a snapshot file was refused: the message names the position (line, column, byte offset)
/// and what was expected there.
class json_error : public std::runtime_error {
public:
    json_error(const std::string& message, std::size_t line, std::size_t column, std::size_t offset)
        : std::runtime_error(message), line_(line), column_(column), offset_(offset) {}

    /// Where the input went wrong: 1-based line and column (in bytes), 0-based byte offset.
    std::size_t line() const noexcept { return line_; }
    std::size_t column() const noexcept { return column_; }
    std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t line_, column_, offset_;
};

namespace detail {

// `"name":` after a comma unless it is the first member.
inline void append_json_key(std::string& out, const char* name, bool first = false) {
    if (!first) out += ',';
    out += '"';
    out += name;
    out += "\":";
}

inline void append_json_stats(std::string& out, const memory_stats& m, bool first) {
    append_json_key(out, "current", first);
    append_json_uint(out, m.current);
    append_json_key(out, "peak");
    append_json_uint(out, m.peak);
    append_json_key(out, "total");
    append_json_uint(out, m.total);
    append_json_key(out, "allocs");
    append_json_uint(out, m.allocs);
    append_json_key(out, "frees");
    append_json_uint(out, m.frees);
}

// The text of a snapshot whose symbol table already covers its stacks.
inline std::string snapshot_json_text(const snapshot& s) {
    std::string out;
    // Rows are about 40 to 60 bytes: one reservation instead of a dozen doublings of a large text.
    out.reserve(4096 + 64 * s.allocations.size() + 48 * s.sites.size() + 96 * s.symbols.size());
    out += "{\"format\":\"memlens.snapshot\",\"version\":1,\n\"run\":{";
    append_json_key(out, "unix_time_ms", true);
    append_json_int(out, s.run.unix_time_ms);
    append_json_key(out, "pid");
    append_json_int(out, s.run.pid);
    append_json_key(out, "command_line");
    append_json_string(out, s.run.command_line);
    append_json_key(out, "build");
    append_json_string(out, s.run.build);
    append_json_key(out, "mode");
    append_json_string(out, s.run.mode);
    out += "},\n\"totals\":{";
    append_json_stats(out, s.totals, true);
    out += "},\n\"domains\":[";
    for (std::size_t i = 0; i < s.domains.size(); ++i) {
        out += i ? ",\n{" : "\n{";
        append_json_key(out, "name", true);
        append_json_string(out, s.domains[i].name);
        append_json_stats(out, s.domains[i].figures, false);
        out += '}';
    }
    out += "],\n\"domain_names\":[";
    for (std::size_t i = 0; i < s.domain_names.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, s.domain_names[i]);
    }
    out += "],\n";
    append_json_key(out, "sample_bytes", true);
    append_json_uint(out, s.sample_bytes);
    append_json_key(out, "temporary_window");
    append_json_uint(out, s.temporary_window);
    out += ",\n\"scopes\":[";
    for (std::size_t i = 0; i < s.scopes.size(); ++i) {
        const named_scope_stats& n = s.scopes[i];
        out += i ? ",\n{" : "\n{";
        append_json_key(out, "name", true);
        append_json_string(out, n.name);
        append_json_key(out, "file");
        append_json_string(out, n.file);
        append_json_key(out, "line");
        append_json_uint(out, n.line);
        append_json_key(out, "function");
        append_json_string(out, n.function);
        append_json_key(out, "calls");
        append_json_uint(out, n.calls);
        append_json_key(out, "allocated");
        append_json_uint(out, n.allocated);
        append_json_key(out, "allocs");
        append_json_uint(out, n.allocs);
        append_json_key(out, "net");
        append_json_int(out, n.net);
        append_json_key(out, "max_peak");
        append_json_uint(out, n.max_peak);
        out += '}';
    }
    out += "],\n\"types\":[";
    for (std::size_t i = 0; i < s.types.size(); ++i) {
        const type_stats& t = s.types[i];
        out += i ? ",\n{" : "\n{";
        append_json_key(out, "name", true);
        append_json_string(out, t.name);
        append_json_key(out, "size");
        append_json_uint(out, t.size);
        append_json_key(out, "instances");
        append_json_uint(out, t.instances);
        append_json_key(out, "bytes");
        append_json_uint(out, t.bytes);
        append_json_key(out, "peak");
        append_json_uint(out, t.peak);
        append_json_key(out, "constructed");
        append_json_uint(out, t.constructed);
        out += '}';
    }
    out += "],\n\"timeline\":[";
    for (std::size_t i = 0; i < s.timeline.size(); ++i) {
        const timeline_point& p = s.timeline[i];
        out += i ? ",\n{" : "\n{";
        append_json_key(out, "seconds", true);
        append_json_number(out, p.seconds);
        append_json_key(out, "current");
        append_json_uint(out, p.current);
        append_json_key(out, "peak");
        append_json_uint(out, p.peak);
        append_json_key(out, "label");
        append_json_string(out, p.label);
        out += '}';
    }

    // Sorted, so that the same snapshot always gives the same text.
    std::vector<const frame_info*> symbols;
    symbols.reserve(s.symbols.size());
    for (const auto& entry : s.symbols) symbols.push_back(&entry.second);
    std::sort(symbols.begin(), symbols.end(),
              [](const frame_info* a, const frame_info* b) { return a->address < b->address; });
    std::vector<std::string_view> modules;
    std::unordered_map<std::string_view, std::uint64_t> module_index;
    std::vector<std::uint64_t> module_of(symbols.size());
    for (std::size_t i = 0; i < symbols.size(); ++i) {
        auto found = module_index.emplace(symbols[i]->module, modules.size());
        if (found.second) modules.push_back(symbols[i]->module);
        module_of[i] = found.first->second;
    }
    out += "],\n\"modules\":[";
    for (std::size_t i = 0; i < modules.size(); ++i) {
        out += i ? ",\n" : "\n";
        append_json_string(out, modules[i]);
    }
    out += "],\n\"symbols\":[";
    for (std::size_t i = 0; i < symbols.size(); ++i) {
        const frame_info& f = *symbols[i];
        out += i ? ",\n[" : "\n[";
        append_json_uint(out, f.address);
        out += ',';
        append_json_string(out, f.function);
        out += ',';
        append_json_string(out, f.file);
        out += ',';
        append_json_uint(out, f.line);
        out += ',';
        append_json_uint(out, module_of[i]);
        out += ',';
        append_json_uint(out, f.offset);
        out += ']';
    }
    out += "],\n\"stacks\":[";
    bool first = true;
    for (const auto& [id, frames] : s.stacks) {
        out += first ? "\n[" : ",\n[";
        first = false;
        append_json_uint(out, id);
        out += ",[";
        for (std::size_t i = 0; i < frames.size(); ++i) {
            if (i) out += ',';
            append_json_uint(out, frames[i]);
        }
        out += "]]";
    }
    out += "],\n\"sites\":[";
    for (std::size_t i = 0; i < s.sites.size(); ++i) {
        const site_record& r = s.sites[i];
        out += i ? ",\n[" : "\n[";
        append_json_uint(out, r.stack);
        out += ',';
        append_json_uint(out, r.allocs);
        out += ',';
        append_json_uint(out, r.bytes);
        out += ',';
        append_json_uint(out, r.temporaries);
        out += ']';
    }
    out += "],\n\"allocations\":[";
    for (std::size_t i = 0; i < s.allocations.size(); ++i) {
        const live_allocation& a = s.allocations[i];
        out += i ? ",\n[" : "\n[";
        append_json_uint(out, a.address);
        out += ',';
        append_json_uint(out, a.size);
        out += ',';
        append_json_uint(out, a.domain);
        out += ',';
        append_json_uint(out, a.stack);
        out += ',';
        append_json_uint(out, a.thread);
        out += ',';
        append_json_uint(out, a.sequence);
        out += a.sampled ? ",1]" : ",0]";
    }
    out += "]}\n";
    return out;
}

// A strict reader of exactly the version 1 schema. It never recurses (the schema has a fixed
// depth), and everything it allocates holds what it has read, so memory is bounded by the input.
class snapshot_reader {
public:
    explicit snapshot_reader(std::string_view text) : text_(text) {}

    snapshot read() {
        snapshot s;
        expect('{', "'{' to open the snapshot object");
        key("format", true);
        std::string format;
        const std::size_t format_at = position();
        string(format, "the format name");
        if (format != "memlens.snapshot") {
            fail_at(format_at, "expected the format \"memlens.snapshot\", found \"" + printable(format) + "\"");
        }
        key("version");
        const std::size_t version_at = position();
        const auto version = whole<std::uint64_t>("the schema version");
        if (version != 1) fail_at(version_at, "expected version 1 (the version this reader knows), found " + std::to_string(version));
        key("run");
        read_run(s.run);
        key("totals");
        expect('{', "'{' to open \"totals\"");
        read_stats(s.totals, true);
        expect('}', "'}' to close \"totals\"");
        key("domains");
        list("domains", [&] {
            domain_figures d;
            expect('{', "'{' to open a domain");
            key("name", true);
            string(d.name, "a domain name");
            read_stats(d.figures, false);
            expect('}', "'}' to close a domain");
            s.domains.push_back(std::move(d));
        });
        key("domain_names");
        list("domain_names", [&] {
            s.domain_names.emplace_back();
            string(s.domain_names.back(), "a domain name");
        });
        key("sample_bytes");
        s.sample_bytes = whole<std::uint64_t>("\"sample_bytes\"");
        key("temporary_window");
        s.temporary_window = whole<std::uint32_t>("\"temporary_window\"");
        key("scopes");
        list("scopes", [&] { s.scopes.push_back(read_scope()); });
        key("types");
        list("types", [&] { s.types.push_back(read_type()); });
        key("timeline");
        list("timeline", [&] { s.timeline.push_back(read_point()); });
        std::vector<std::string> modules;
        key("modules");
        list("modules", [&] {
            modules.emplace_back();
            string(modules.back(), "a module path");
        });
        key("symbols");
        list("symbols", [&] { read_symbol(s, modules); });
        key("stacks");
        list("stacks", [&] { read_stack(s); });
        key("sites");
        list("sites", [&] {
            site_record r;
            expect('[', "'[' to open a site");
            r.stack = known_stack("a site's stack id");
            comma("a site");
            r.allocs = whole<std::uint64_t>("a site's allocation count");
            comma("a site");
            r.bytes = whole<std::uint64_t>("a site's bytes");
            comma("a site");
            r.temporaries = whole<std::uint64_t>("a site's temporary count");
            expect(']', "']' to close a site (it has 4 numbers)");
            s.sites.push_back(r);
        });
        key("allocations");
        // A row takes 40 bytes or more with real addresses: one reservation instead of twenty
        // doublings, and never more than the input can fill.
        s.allocations.reserve((text_.size() - at_) / 40);
        list("allocations", [&] {
            live_allocation a;
            expect('[', "'[' to open an allocation");
            a.address = whole<std::uintptr_t>("an allocation's address");
            comma("an allocation");
            a.size = whole<std::uint64_t>("an allocation's size");
            comma("an allocation");
            a.domain = whole<std::uint32_t>("an allocation's domain");
            comma("an allocation");
            a.stack = known_stack("an allocation's stack id");
            comma("an allocation");
            a.thread = whole<std::uint32_t>("an allocation's thread");
            comma("an allocation");
            a.sequence = whole<std::uint64_t>("an allocation's sequence number");
            comma("an allocation");
            const std::size_t at = position();
            const auto sampled = whole<std::uint64_t>("an allocation's sampled flag");
            if (sampled > 1) fail_at(at, "expected 0 or 1 for an allocation's sampled flag, found " + std::to_string(sampled));
            a.sampled = sampled == 1;
            expect(']', "']' to close an allocation (it has 7 numbers)");
            s.allocations.push_back(a);
        });
        expect('}', "'}' to close the snapshot object (\"allocations\" is its last member)");
        space();
        if (at_ < text_.size()) fail("the end of the input after the snapshot object");
        return s;
    }

private:
    std::size_t position() {
        space();
        return at_;
    }

    [[noreturn]] void fail_at(std::size_t offset, const std::string& message) const {
        std::size_t line = 1, column = 1;
        for (std::size_t i = 0; i < offset && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        throw json_error("memlens snapshot JSON, line " + std::to_string(line) + ", column " +
                             std::to_string(column) + " (byte " + std::to_string(offset) +
                             "): " + message,
                         line, column, offset);
    }

    // "expected <what>, found <the next byte>" at the current position.
    [[noreturn]] void fail(const std::string& what) const {
        std::string found;
        if (at_ >= text_.size()) {
            found = "the end of the input";
        } else {
            const unsigned char c = static_cast<unsigned char>(text_[at_]);
            if (c >= 0x20 && c < 0x7f) {
                found = std::string("'") + static_cast<char>(c) + "'";
            } else {
                static const char hex[] = "0123456789abcdef";
                found = std::string("byte 0x") + hex[c >> 4] + hex[c & 0xf];
            }
        }
        fail_at(at_, "expected " + what + ", found " + found);
    }

    static std::string printable(const std::string& s) {
        std::string out;
        append_json_string(out, s.size() > 40 ? s.substr(0, 40) : s);
        return out.substr(1, out.size() - 2);
    }

    void space() noexcept {
        while (at_ < text_.size()) {
            const char c = text_[at_];
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
            ++at_;
        }
    }

    bool next_is(char c) {
        space();
        return at_ < text_.size() && text_[at_] == c;
    }

    void expect(char c, const char* what) {
        if (!next_is(c)) fail(what);
        ++at_;
    }

    void comma(const char* row) {
        if (!next_is(',')) fail(std::string("',' and the next number of ") + row);
        ++at_;
    }

    // `"name":`, after a comma unless it is the first member of its object.
    void key(const char* name, bool first = false) {
        if (!first) {
            if (!next_is(',')) fail(std::string("',' and member \"") + name + "\"");
            ++at_;
        }
        space();
        const std::size_t n = std::strlen(name);
        if (text_.size() - at_ < n + 2 || text_[at_] != '"' || text_.compare(at_ + 1, n, name) != 0 ||
            text_[at_ + 1 + n] != '"') {
            fail(std::string("member \"") + name + "\" (members come in the order of the version 1 schema)");
        }
        at_ += n + 2;
        expect(':', "':' after a member name");
    }

    // An array whose elements `element` reads.
    template <class Element>
    void list(const char* name, Element&& element) {
        if (!next_is('[')) fail(std::string("'[' to open \"") + name + "\"");
        ++at_;
        if (next_is(']')) {
            ++at_;
            return;
        }
        for (;;) {
            element();
            space();
            if (at_ < text_.size() && text_[at_] == ',') {
                ++at_;
                continue;
            }
            if (at_ < text_.size() && text_[at_] == ']') {
                ++at_;
                return;
            }
            fail(std::string("',' or ']' after an element of \"") + name + "\"");
        }
    }

    // Moves past a number as RFC 8259 writes it and says whether it has neither fraction nor
    // exponent; false without moving when no number starts here.
    bool skip_number(bool& integral) {
        const auto digit = [&](std::size_t i) { return i < text_.size() && text_[i] >= '0' && text_[i] <= '9'; };
        std::size_t i = at_;
        if (i < text_.size() && text_[i] == '-') ++i;
        if (!digit(i)) return false;
        if (text_[i] == '0') {
            ++i;
        } else {
            while (digit(i)) ++i;
        }
        integral = true;
        if (i < text_.size() && text_[i] == '.') {
            integral = false;
            if (!digit(++i)) {
                at_ = i;
                fail("a digit after the decimal point");
            }
            while (digit(i)) ++i;
        }
        if (i < text_.size() && (text_[i] == 'e' || text_[i] == 'E')) {
            integral = false;
            ++i;
            if (i < text_.size() && (text_[i] == '+' || text_[i] == '-')) ++i;
            if (!digit(i)) {
                at_ = i;
                fail("a digit in the exponent");
            }
            while (digit(i)) ++i;
        }
        at_ = i;
        return true;
    }

    // Messages are built only on failure: this runs for every number of the file.
    template <class T>
    static std::string whole_expected(const char* what) {
        if constexpr (std::numeric_limits<T>::is_signed) return std::string("a whole number from -2^63 to 2^63 - 1 for ") + what;
        return std::string("a whole number from 0 to ") +
               std::to_string(std::numeric_limits<T>::max()) + " for " + what;
    }

    [[noreturn]] void fail_range(std::size_t start, const std::string& expected) const {
        const std::string_view digits = text_.substr(start, at_ - start);
        fail_at(start, "expected " + expected + ", found " + std::string(digits.substr(0, 40)) +
                           (digits.size() > 40 ? "..." : ""));
    }

    template <class T>
    T whole(const char* what) {
        space();
        const std::size_t start = at_;
        bool integral = false;
        if (!skip_number(integral) || !integral || (!std::numeric_limits<T>::is_signed && text_[start] == '-')) {
            at_ = start;
            fail(whole_expected<T>(what));
        }
        T value{};
        const auto result = std::from_chars(text_.data() + start, text_.data() + at_, value);
        if (result.ec != std::errc()) fail_range(start, whole_expected<T>(what));
        return value;
    }


    // A double, or null for one that was not finite when written.
    double real(const char* what) {
        space();
        if (text_.compare(at_, 4, "null") == 0) {
            at_ += 4;
            return std::numeric_limits<double>::quiet_NaN();
        }
        const std::size_t start = at_;
        bool integral = false;
        if (!skip_number(integral)) fail(std::string("a number or null for ") + what);
        double value = 0;
        const auto result = std::from_chars(text_.data() + start, text_.data() + at_, value);
        if (result.ec != std::errc()) {
            fail_range(start, std::string("a number or null for ") + what + " within the range of a double");
        }
        return value;
    }

    unsigned hex4() {
        unsigned value = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = at_ < text_.size() ? text_[at_] : '\0';
            unsigned d;
            if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
            else fail("four hexadecimal digits after \\u");
            value = value * 16 + d;
            ++at_;
        }
        return value;
    }

    static void append_utf8(std::string& out, unsigned c) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xe0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }

    void string(std::string& out, const char* what) {
        if (!next_is('"')) fail(std::string("a string for ") + what);
        ++at_;
        out.clear();
        for (;;) {
            std::size_t run = at_;
            while (run < text_.size() && text_[run] != '"' && text_[run] != '\\' &&
                   static_cast<unsigned char>(text_[run]) >= 0x20) {
                ++run;
            }
            out.append(text_.data() + at_, run - at_);
            at_ = run;
            if (at_ >= text_.size()) fail(std::string("'\"' to close a string for ") + what);
            const char c = text_[at_];
            if (c == '"') {
                ++at_;
                return;
            }
            if (c != '\\') fail("a character of a string (control characters must be escaped)");
            ++at_;
            const char e = at_ < text_.size() ? text_[at_] : '\0';
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                ++at_;
                unsigned code = hex4();
                if (code >= 0xdc00 && code <= 0xdfff) {
                    at_ -= 6;
                    fail("a high surrogate before the low surrogate \\u" + std::string(text_.substr(at_ + 2, 4)));
                }
                if (code >= 0xd800 && code <= 0xdbff) {
                    if (text_.compare(at_, 2, "\\u") != 0) fail("\\u and a low surrogate after a high surrogate");
                    at_ += 2;
                    const unsigned low = hex4();
                    if (low < 0xdc00 || low > 0xdfff) {
                        at_ -= 6;
                        fail("a low surrogate (\\udc00 to \\udfff) after a high surrogate");
                    }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                }
                append_utf8(out, code);
                continue;
            }
            default: fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and four hex digits) after a backslash");
            }
            ++at_;
        }
    }

    void read_run(run_info& r) {
        expect('{', "'{' to open \"run\"");
        key("unix_time_ms", true);
        r.unix_time_ms = whole<std::int64_t>("\"unix_time_ms\"");
        key("pid");
        r.pid = whole<std::int64_t>("\"pid\"");
        key("command_line");
        string(r.command_line, "\"command_line\"");
        key("build");
        string(r.build, "\"build\"");
        key("mode");
        string(r.mode, "\"mode\"");
        expect('}', "'}' to close \"run\"");
    }

    void read_stats(memory_stats& m, bool first) {
        key("current", first);
        m.current = whole<std::size_t>("\"current\"");
        key("peak");
        m.peak = whole<std::size_t>("\"peak\"");
        key("total");
        m.total = whole<std::size_t>("\"total\"");
        key("allocs");
        m.allocs = whole<std::uint64_t>("\"allocs\"");
        key("frees");
        m.frees = whole<std::uint64_t>("\"frees\"");
    }

    named_scope_stats read_scope() {
        named_scope_stats n;
        expect('{', "'{' to open a scope");
        key("name", true);
        string(n.name, "a scope's name");
        key("file");
        string(n.file, "a scope's file");
        key("line");
        n.line = whole<unsigned>("a scope's line");
        key("function");
        string(n.function, "a scope's function");
        key("calls");
        n.calls = whole<std::uint64_t>("a scope's calls");
        key("allocated");
        n.allocated = whole<std::uint64_t>("a scope's allocated bytes");
        key("allocs");
        n.allocs = whole<std::uint64_t>("a scope's allocations");
        key("net");
        n.net = whole<std::int64_t>("a scope's net bytes");
        key("max_peak");
        n.max_peak = whole<std::uint64_t>("a scope's max_peak");
        expect('}', "'}' to close a scope");
        return n;
    }

    type_stats read_type() {
        type_stats t;
        expect('{', "'{' to open a type");
        key("name", true);
        string(t.name, "a type's name");
        key("size");
        t.size = whole<std::size_t>("a type's size");
        key("instances");
        t.instances = whole<std::uint64_t>("a type's instances");
        key("bytes");
        t.bytes = whole<std::uint64_t>("a type's bytes");
        key("peak");
        t.peak = whole<std::uint64_t>("a type's peak");
        key("constructed");
        t.constructed = whole<std::uint64_t>("a type's constructed count");
        expect('}', "'}' to close a type");
        return t;
    }

    timeline_point read_point() {
        timeline_point p;
        expect('{', "'{' to open a timeline point");
        key("seconds", true);
        p.seconds = real("a timeline point's seconds");
        key("current");
        p.current = whole<std::uint64_t>("a timeline point's current bytes");
        key("peak");
        p.peak = whole<std::uint64_t>("a timeline point's peak");
        key("label");
        string(p.label, "a timeline point's label");
        expect('}', "'}' to close a timeline point");
        return p;
    }

    void read_symbol(snapshot& s, const std::vector<std::string>& modules) {
        frame_info f;
        expect('[', "'[' to open a symbol");
        const std::size_t at = position();
        f.address = whole<std::uintptr_t>("a symbol's address");
        comma("a symbol");
        string(f.function, "a symbol's function");
        comma("a symbol");
        string(f.file, "a symbol's file");
        comma("a symbol");
        f.line = whole<unsigned>("a symbol's line");
        comma("a symbol");
        const std::size_t module_at = position();
        const auto module = whole<std::uint64_t>("a symbol's module index");
        if (module >= modules.size()) {
            fail_at(module_at, "expected an index into \"modules\" (" + std::to_string(modules.size()) +
                                   " entries) for a symbol's module, found " + std::to_string(module));
        }
        f.module = modules[module];
        comma("a symbol");
        f.offset = whole<std::uintptr_t>("a symbol's offset");
        expect(']', "']' to close a symbol (it has 6 fields)");
        if (!symbol_addresses_.empty() && f.address <= symbol_addresses_.back()) {
            fail_at(at, "expected symbol addresses in ascending order, each once; " +
                            std::to_string(f.address) + " follows " + std::to_string(symbol_addresses_.back()));
        }
        symbol_addresses_.push_back(f.address);
        const std::uintptr_t address = f.address;
        s.symbols.emplace(address, std::move(f));
    }

    void read_stack(snapshot& s) {
        expect('[', "'[' to open a stack");
        const std::size_t at = position();
        const auto id = whole<std::uint32_t>("a stack id");
        if (id == 0) fail_at(at, "expected a stack id above 0 (0 means \"no stack\")");
        if (!stack_ids_.empty() && id <= stack_ids_.back()) {
            fail_at(at, "expected stack ids in ascending order, each once; " + std::to_string(id) +
                            " follows " + std::to_string(stack_ids_.back()));
        }
        stack_ids_.push_back(id);
        std::vector<std::uintptr_t>& frames = s.stacks.emplace_hint(s.stacks.end(), id, std::vector<std::uintptr_t>{})->second;
        if (!next_is(',')) fail("',' and the frames of a stack");
        ++at_;
        list("a stack's frames", [&] {
            const std::size_t frame_at = position();
            const auto address = whole<std::uintptr_t>("a frame address");
            if (!std::binary_search(symbol_addresses_.begin(), symbol_addresses_.end(), address)) {
                fail_at(frame_at, "expected every frame address in \"symbols\"; " + std::to_string(address) + " of stack " + std::to_string(id) + " is not there");
            }
            frames.push_back(address);
        });
        expect(']', "']' to close a stack");
    }

    std::uint32_t known_stack(const char* what) {
        const std::size_t at = position();
        const auto id = whole<std::uint32_t>(what);
        // Interned ids are mostly dense from 1, which makes most lookups one comparison.
        const bool dense = id != 0 && id <= stack_ids_.size() && stack_ids_[id - 1] == id;
        if (id != 0 && !dense && !std::binary_search(stack_ids_.begin(), stack_ids_.end(), id)) {
            fail_at(at, "expected 0 or an id from \"stacks\" for " + std::string(what) + ", found " + std::to_string(id));
        }
        return id;
    }

    std::string_view text_;
    std::size_t at_ = 0;
    // Both ascending, as the writer puts them: lookups by binary search, far cheaper than the
    // snapshot's own map for a million allocations.
    std::vector<std::uintptr_t> symbol_addresses_;
    std::vector<std::uint32_t> stack_ids_;
};

}  // namespace detail

/// The JSON text of `s` in the "memlens.snapshot" version 1 schema (see the top of this
/// header). Symbolizes `s` first (a copy: pass an rvalue to avoid it), so that the text carries
/// every frame's function, file:line and module and any process can read it. Allocates the
/// text, about 50 bytes per live allocation.
inline std::string to_json(snapshot s) {
    detail::guard quiet;
    symbolize(s);
    return detail::snapshot_json_text(s);
}

/// Writes to_json(s) to `path` through a temporary file and a rename, so that readers never see
/// half a file. Throws std::runtime_error naming the path and the system's reason when it
/// cannot be written.
inline void write_json(const snapshot& s, const std::string& path) {
    std::string error;
    if (!detail::write_file_atomically(path, to_json(s), error)) {
        throw std::runtime_error("memlens: cannot write the snapshot to " + path + ": " + error);
    }
}

/// The snapshot that `text` holds. Throws json_error, naming the line, column and byte offset
/// and what was expected there, for anything but a complete "memlens.snapshot" version 1
/// document (truncated, corrupt, another format or version, numbers out of range, frames
/// missing from "symbols"). Never recurses; memory is bounded by the size of `text`.
inline snapshot from_json(std::string_view text) {
    detail::guard quiet;
    return detail::snapshot_reader(text).read();
}

/// The snapshot in the file at `path`. Throws std::runtime_error when the file cannot be read,
/// and json_error (its message starting with the path) when its text is refused.
inline snapshot read_json(const std::string& path) {
    std::string text;
    {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("memlens: cannot open " + path + ": " + std::strerror(errno));
        struct ::stat info {};
        if (::fstat(fd, &info) == 0 && info.st_size > 0) text.reserve(static_cast<std::size_t>(info.st_size));
        char buffer[65536];
        for (;;) {
            const ::ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int e = errno;
                ::close(fd);
                throw std::runtime_error("memlens: cannot read " + path + ": " + std::strerror(e));
            }
            if (n == 0) break;
            text.append(buffer, static_cast<std::size_t>(n));
        }
        ::close(fd);
    }
    try {
        return from_json(text);
    } catch (const json_error& e) {
        throw json_error(path + ": " + e.what(), e.line(), e.column(), e.offset());
    }
}

}  // namespace memlens
