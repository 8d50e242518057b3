// memlens/view/suppressions.hpp: leak suppressions in LeakSanitizer's syntax (`leak:pattern`
// lines), the runtime's own blocks suppressed by default, and the list that leak reports use:
// built-in rules, then MEMLENS_SUPPRESSIONS's file, then the rules a program sets.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <pthread.h>

#include "../core/state.hpp"
#include "../detail/sys.hpp"
#include "../model/frames.hpp"

MEMLENS_NAMESPACE_BEGIN

/// One `leak:` rule and where it was read.
struct suppression {
    std::string pattern;  ///< what follows `leak:`, trimmed
    std::string source;   ///< the file it was read from, or "(built in)" / "(in code)"
    unsigned line = 0;    ///< its line in `source`, from 1

    /// "leak:pattern (source:line)", as reports name the rule.
    std::string describe() const { return "leak:" + pattern + " (" + source + ":" + std::to_string(line) + ")"; }
};

/// A list of leak suppressions, in LeakSanitizer's syntax: one `leak:pattern` a line; `#` starts
/// a comment line; blank lines and surrounding spaces are ignored. A pattern matches a frame when
/// it matches the frame's function (demangled), source file or module path anywhere: `*` stands
/// for any run of characters, a leading `^` anchors it at the start and a trailing `$` at the
/// end. A leak is suppressed when any frame of its stack (inlined calls included) matches.
class suppressions {
public:
    /// Parses `text`, named `source` in errors. A malformed line (no `leak:` kind, another kind,
    /// an empty pattern) is skipped and kept in errors() as "source:line: why"; each is also
    /// reported through memlens's error handler unless `quiet`. Never throws but std::bad_alloc.
    static suppressions parse(std::string_view text, const std::string& source, bool quiet = false) {
        suppressions out;
        unsigned number = 0;
        std::size_t at = 0;
        while (at <= text.size()) {
            std::size_t end = text.find('\n', at);
            if (end == std::string_view::npos) end = text.size();
            ++number;
            out.parse_line(trim(text.substr(at, end - at)), source, number, quiet);
            if (end == text.size()) break;
            at = end + 1;
        }
        return out;
    }

    /// Reads and parses the file at `path`; a file that cannot be read is one error, reported
    /// as parse() reports a malformed line.
    static suppressions read_file(const std::string& path, bool quiet = false) {
        std::string text;
        if (!read_whole_file(path, text)) {
            suppressions out;
            out.fail(path + ": cannot read the suppressions file", quiet);
            return out;
        }
        return parse(text, path, quiet);
    }

    /// Appends `more`'s rules and errors after this list's.
    void add(const suppressions& more) {
        rules_.insert(rules_.end(), more.rules_.begin(), more.rules_.end());
        errors_.insert(errors_.end(), more.errors_.begin(), more.errors_.end());
    }

    /// The rules, in the order read.
    const std::vector<suppression>& rules() const noexcept { return rules_; }
    /// The lines skipped, each "source:line: why".
    const std::vector<std::string>& errors() const noexcept { return errors_; }
    /// Whether the list has no rule.
    bool empty() const noexcept { return rules_.empty(); }

    /// The first rule that matches a frame of `traceback`, or null.
    const suppression* match(const std::vector<frame_info>& traceback) const {
        for (const suppression& rule : rules_) {
            for (const frame_info& f : traceback) {
                if (frame_matches(rule.pattern, f)) return &rule;
                for (const frame_info& inner : f.inlined) {
                    if (frame_matches(rule.pattern, inner)) return &rule;
                }
            }
        }
        return nullptr;
    }

    /// Whether `pattern` matches `text` as LeakSanitizer matches: anywhere unless anchored by a
    /// leading `^` or a trailing `$`, `*` for any run of characters.
    static bool pattern_matches(std::string_view pattern, std::string_view text) noexcept {
        const bool at_start = !pattern.empty() && pattern.front() == '^';
        if (at_start) pattern.remove_prefix(1);
        const bool at_end = !pattern.empty() && pattern.back() == '$';
        if (at_end) pattern.remove_suffix(1);
        // The pattern as a glob: an unanchored end is a `*` more.
        const std::size_t lead = at_start ? 0 : 1;
        const std::size_t size = pattern.size() + lead + (at_end ? 0 : 1);
        const auto at = [&](std::size_t i) {
            if (i < lead || i - lead >= pattern.size()) return '*';
            return pattern[i - lead];
        };
        std::size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
        while (t < text.size()) {
            if (p < size && at(p) == '*') {
                star = ++p;
                resume = t;
            } else if (p < size && at(p) == text[t]) {
                ++p;
                ++t;
            } else if (star != std::string_view::npos) {
                p = star;
                t = ++resume;
            } else {
                return false;
            }
        }
        while (p < size && at(p) == '*') ++p;
        return p == size;
    }

private:
    static std::string_view trim(std::string_view s) noexcept {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
        return s;
    }

    static bool frame_matches(const std::string& pattern, const frame_info& f) {
        return (!f.function.empty() && pattern_matches(pattern, f.function)) ||
               (!f.file.empty() && pattern_matches(pattern, f.file)) ||
               (!f.module.empty() && pattern_matches(pattern, f.module));
    }

    static bool read_whole_file(const std::string& path, std::string& out) {
        std::FILE* f = std::fopen(path.c_str(), "rb");
        if (!f) return false;
        char buffer[4096];
        std::size_t n = 0;
        while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) out.append(buffer, n);
        const bool ok = std::ferror(f) == 0;
        std::fclose(f);
        return ok;
    }

    void fail(std::string message, bool quiet) {
        if (!quiet) detail::report_error(("suppressions: " + message + "; the line is skipped").c_str());
        errors_.push_back(std::move(message));
    }

    void parse_line(std::string_view line, const std::string& source, unsigned number, bool quiet) {
        if (line.empty() || line.front() == '#') return;
        const std::string where = source + ":" + std::to_string(number) + ": ";
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            fail(where + "expected \"leak:pattern\", got \"" + std::string(line) + "\"", quiet);
            return;
        }
        const std::string_view kind = trim(line.substr(0, colon));
        if (kind != "leak") {
            fail(where + "\"" + std::string(kind) + "\" is not a kind memlens suppresses (only \"leak\")", quiet);
            return;
        }
        const std::string_view pattern = trim(line.substr(colon + 1));
        if (pattern.empty() || pattern == "^" || pattern == "$" || pattern == "^$") {
            fail(where + "\"leak:\" has no pattern", quiet);
            return;
        }
        rules_.push_back({std::string(pattern), source, number});
    }

    std::vector<suppression> rules_;
    std::vector<std::string> errors_;
};

/// The rules for blocks that the C and C++ runtimes allocate once and keep for the life of the
/// process, which leak reports list as suppressed: blocks allocated while the loader runs a
/// library's static initialisers (`_dl_init`: libstdc++'s emergency exception pool, 72,704 bytes
/// from eh_alloc.cc, and the like), stdio's buffers (`_IO_file_doallocate`: stdout's
/// buffer at its first write), each thread's TLS vector (`_dl_allocate_tls`, glibc's
/// exported entry beneath pthread_create: 304 bytes on x86-64, kept with a thread's cached stack
/// after the thread ends) and a running thread's block for a dlopen'd library's thread-locals
/// (`__tls_get_addr`). Only the malloc family's hooks (the preload library) see them.
inline suppressions runtime_suppressions() {
    return suppressions::parse("# memlens's rules for the runtime's own blocks\n"
                               "leak:^_dl_init$\n"
                               "leak:^_IO_file_doallocate$\n"
                               "leak:^_dl_allocate_tls$\n"
                               "leak:^__tls_get_addr$\n",
                               "(built in)", true);
}

namespace detail {

struct suppression_state {
    std::mutex lock;
    std::string environment_path;  // the MEMLENS_SUPPRESSIONS that from_environment was read from
    suppressions from_environment;
    suppressions from_code;
};

// One list per process, whichever copy of the headers (the program's, a plugin's, the preload
// library's) makes it first.
MEMLENS_DETAIL_SHARED inline std::atomic<suppression_state*> suppression_state_slot{nullptr};
// Whether fork handlers for the list's lock are registered: once per process.
MEMLENS_DETAIL_SHARED inline std::atomic<bool> suppression_fork_handled{false};
// The list whose lock the forking thread took before fork(), to release after it: the list may be
// made between the two.
MEMLENS_DETAIL_SHARED inline suppression_state* suppression_fork_locked = nullptr;

// A thread of the parent that holds the lock at fork() does not exist in the child, which would
// wait for the lock for ever; the forking thread takes it across the fork instead.
inline void suppressions_fork_prepare() noexcept {
    suppression_state* s = suppression_state_slot.load(std::memory_order_acquire);
    if (s) s->lock.lock();
    suppression_fork_locked = s;
}

inline void suppressions_fork_release() noexcept {
    suppression_state* s = suppression_fork_locked;
    suppression_fork_locked = nullptr;
    if (s) s->lock.unlock();
}

MEMLENS_NOINLINE inline suppression_state& make_suppression_list() {
    guard quiet;
    // Registered before the list is published, so that no fork finds its lock unhandled.
    if (!suppression_fork_handled.exchange(true, std::memory_order_acq_rel)) {
        ::pthread_atfork(&suppressions_fork_prepare, &suppressions_fork_release, &suppressions_fork_release);
    }
    auto* made = new suppression_state();
    suppression_state* first = nullptr;
    if (suppression_state_slot.compare_exchange_strong(first, made, std::memory_order_acq_rel,
                                                       std::memory_order_acquire)) {
        return *made;
    }
    delete made;
    return *first;
}

// Never destroyed, so that the exit report reads it after static destructors; allocated outside
// the counts, so that it is no leak itself.
inline suppression_state& suppression_list() {
    suppression_state* s = suppression_state_slot.load(std::memory_order_acquire);
    return MEMLENS_LIKELY(s != nullptr) ? *s : make_suppression_list();
}

}  // namespace detail

/// Replaces the rules set in code (not the built-in ones nor MEMLENS_SUPPRESSIONS's) with
/// `rules`. Thread safe, and safe across fork(). One list per process: a plugin's copy of
/// memlens sets the program's.
inline void set_suppressions(const suppressions& rules) {
    detail::suppression_state& s = detail::suppression_list();
    detail::guard quiet;
    std::lock_guard<std::mutex> hold(s.lock);
    s.from_code = rules;
}

/// The rules leak reports use: runtime_suppressions(), then the file MEMLENS_SUPPRESSIONS names
/// (read at the first call that sees the variable name it, its malformed lines reported then),
/// then those set_suppressions() set. Thread safe; allocates.
inline suppressions active_suppressions() {
    detail::suppression_state& s = detail::suppression_list();
    detail::guard quiet;
    std::lock_guard<std::mutex> hold(s.lock);
    const char* path = std::getenv("MEMLENS_SUPPRESSIONS");
    const std::string named = path ? path : "";
    if (named != s.environment_path) {
        s.environment_path = named;
        s.from_environment = named.empty() ? suppressions() : suppressions::read_file(named);
    }
    suppressions all = runtime_suppressions();
    all.add(s.from_environment);
    all.add(s.from_code);
    return all;
}

MEMLENS_NAMESPACE_END
