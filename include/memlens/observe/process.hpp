// memlens/observe/process.hpp: what Linux and glibc say of the process (resident and virtual
// size, swap, threads, page faults, open files, PSS and the split by mapping, mallinfo2,
// malloc_trim) and how much of the resident set memlens does not track.
//
// Every parser is a pure function of the file's text, so that the tests run it on files
// recorded from a real kernel (tests/monitor/proc); every reader opens the file with open() and
// reads it into a buffer on the stack, so that the cheap figures (status, stat, the fd count,
// smaps_rollup) never allocate. A file or a line the kernel does not give (a container, a
// sandbox, an old kernel) leaves its figures 0 and its has_* flag false, and the reader says
// what was missing in the read_error it returns; the readers never call the error handler
// themselves, so that a caller polling them decides how often to say it.
//
// Untracked bytes: rss_bytes - tracked_bytes, or 0 when the resident set is below it, where
// tracked_bytes is memlens's live bytes over every domain together (stats().current). Each byte
// is counted once there: a tracking allocator's or resource's upstream call is not counted
// again in "heap", the preload library counts a malloc block in "malloc" and a new-expression's
// in "heap", never both, and CPython's blocks in the python.* domains only. The one exception is
// a tracking source stacked over another (a tracking_resource over a pool over another tracking
// resource), whose bytes count once per domain they pass through: name the inner domains in
// monitor_config::nested_domains (or subtract them yourself) and they are left out. Tracked
// bytes are requested sizes, and a block need not be resident, so untracked bytes are a lower
// bound of what the allocator's overhead, fragmentation, caches, untracked allocators, thread
// stacks and the program's code hold.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../core/counters.hpp"
#include "../model/process.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What a reader or parser could not read: the file and the figures missing, or why the file
/// could not be opened. Held in a fixed buffer, so that reporting it never allocates; empty
/// (false) when everything was read.
class read_error {
public:
    /// True when something was missing.
    explicit operator bool() const noexcept { return length_ != 0; }
    /// The message, "" when nothing was missing; e.g. "/proc/self/status: no VmSwap line".
    const char* what() const noexcept { return text_; }
    /// Appends `part` (cut at the buffer's end), after "; " when a message is there already.
    void add(std::string_view part) noexcept {
        if (length_ != 0) append("; ");
        append(part);
    }
    /// Appends `text` to the message as it stands (no separator).
    void append(std::string_view text) noexcept {
        const std::size_t room = sizeof text_ - 1 - length_;
        const std::size_t n = text.size() < room ? text.size() : room;
        std::memcpy(text_ + length_, text.data(), n);
        length_ += n;
        text_[length_] = '\0';
    }
    /// Appends another error's message after "; ".
    void add(const read_error& other) noexcept {
        if (other) add(std::string_view(other.text_, other.length_));
    }

private:
    char text_[320] = {};
    std::size_t length_ = 0;
};

namespace detail {

// The complete lines of `text` in turn: a last line without its newline is a cut read (a file
// larger than the buffer, a truncated copy) and is left out, so that a number cut short is never
// taken for the figure.
template <class F>
void for_each_line(std::string_view text, F&& f) {
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t end = text.find('\n', at);
        if (end == std::string_view::npos) return;
        f(text.substr(at, end - at));
        at = end + 1;
    }
}

// "Key:   1234 kB" -> 1234 * 1024 when the line's key is `key`; false for another key or a line
// without a whole number after the colon. A value without a unit is taken as it is.
inline bool keyed_number(std::string_view line, std::string_view key, std::uint64_t& value) noexcept {
    if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 || line[key.size()] != ':') {
        return false;
    }
    std::size_t at = key.size() + 1;
    while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
    if (at == line.size() || line[at] < '0' || line[at] > '9') return false;
    std::uint64_t n = 0;
    for (; at < line.size() && line[at] >= '0' && line[at] <= '9'; ++at) {
        if (n > (UINT64_MAX - 9) / 10) return false;
        n = n * 10 + static_cast<std::uint64_t>(line[at] - '0');
    }
    while (at < line.size() && line[at] == ' ') ++at;
    const std::string_view unit = line.substr(at);
    if (unit == "kB") {
        if (n > UINT64_MAX / 1024) return false;
        n *= 1024;
    } else if (!unit.empty()) {
        return false;
    }
    value = n;
    return true;
}

// One figure a parser looks for: its key, where it goes, and whether it was seen.
struct keyed_field {
    std::string_view key;
    std::uint64_t* value;
    bool found = false;
};

// Fills the fields from `text`'s lines; names the missing ones in `error`, after `file`.
template <std::size_t N>
void read_keyed(std::string_view text, keyed_field (&fields)[N], const char* file, read_error& error) {
    std::size_t left = N;
    for_each_line(text, [&](std::string_view line) {
        if (left == 0) return;
        for (keyed_field& f : fields) {
            if (!f.found && keyed_number(line, f.key, *f.value)) {
                f.found = true;
                --left;
                break;
            }
        }
    });
    if (left == 0) return;
    read_error missing;
    missing.append(file);
    missing.append(": no ");
    bool first = true;
    for (const keyed_field& f : fields) {
        if (f.found) continue;
        if (!first) missing.append(", ");
        missing.append(f.key);
        first = false;
    }
    missing.append(left == 1 ? " line" : " lines");
    if (text.empty()) missing.append(" (the file is empty)");
    else if (text.back() != '\n') missing.append(" (the file is cut short)");
    error.add(missing);
}

// "<path>: <what>: <strerror(error)>", without allocating.
inline read_error system_error(const char* path, const char* what, int error) noexcept {
    read_error e;
    e.append(path);
    e.append(": ");
    e.append(what);
    e.append(": ");
    char buffer[128];
    // The GNU strerror_r returns the message, which may or may not be in `buffer`.
    e.append(::strerror_r(error, buffer, sizeof buffer));
    return e;
}

inline int open_for_reading(const char* path) noexcept {
    int fd;
    do {
        fd = ::open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

// Reads `fd` until the end or until `buffer` is full; the bytes read, or -1 with errno set.
inline long read_into(int fd, char* buffer, std::size_t capacity) noexcept {
    std::size_t done = 0;
    while (done < capacity) {
        const ::ssize_t n = ::read(fd, buffer + done, capacity - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return static_cast<long>(done);
}

// A small /proc file whole (or its first `capacity` bytes) into `buffer`, with open and read
// only; an empty view and the reason in `error` when it cannot be read.
inline std::string_view read_small_file(const char* path, char* buffer, std::size_t capacity,
                                        read_error& error) noexcept {
    const int fd = open_for_reading(path);
    if (fd < 0) {
        error.add(system_error(path, "cannot open", errno));
        return {};
    }
    const long n = read_into(fd, buffer, capacity);
    const int saved = errno;
    ::close(fd);
    if (n < 0) {
        error.add(system_error(path, "cannot read", saved));
        return {};
    }
    return std::string_view(buffer, static_cast<std::size_t>(n));
}

// Big enough for /proc/self/status (about 1.5 KiB; its figures come in the first half) and
// smaps_rollup (under 1 KiB).
constexpr std::size_t proc_buffer_bytes = 8192;

}  // namespace detail

/// Fills rss_bytes, rss_peak_bytes, vms_bytes, swap_bytes and threads from the text of a
/// /proc/PID/status file (VmRSS, VmHWM, VmSize, VmSwap, Threads); has_status once VmRSS was
/// found. Returns what was missing, naming the file as `file`. Pure; does not allocate.
inline read_error parse_status(std::string_view text, process_figures& out,
                               const char* file = "/proc/self/status") noexcept {
    std::uint64_t threads = 0;
    detail::keyed_field fields[] = {{"VmRSS", &out.rss_bytes},
                                    {"VmHWM", &out.rss_peak_bytes},
                                    {"VmSize", &out.vms_bytes},
                                    {"VmSwap", &out.swap_bytes},
                                    {"Threads", &threads}};
    for (auto& f : fields) *f.value = 0;
    read_error error;
    detail::read_keyed(text, fields, file, error);
    out.threads = static_cast<std::uint32_t>(threads);
    out.has_status = fields[0].found;
    return error;
}

/// Fills minor_faults and major_faults (fields 10 and 12) from the text of a /proc/PID/stat
/// file; has_stat once both were read. The command name in parentheses may hold spaces and
/// parentheses: fields are counted from the last ')'. Pure; does not allocate.
inline read_error parse_stat(std::string_view text, process_figures& out,
                             const char* file = "/proc/self/stat") noexcept {
    out.minor_faults = 0;
    out.major_faults = 0;
    out.has_stat = false;
    read_error error;
    const std::size_t close = text.rfind(')');
    if (close == std::string_view::npos) {
        error.append(file);
        error.append(text.empty() ? ": the file is empty" : ": no ')' after the command name");
        return error;
    }
    // After ") ": field 3 (the state) is token 0, so field n is token n - 3. A token counts only
    // when a space or the newline ends it: a number cut short by a truncated read does not.
    std::uint64_t tokens[10] = {};
    std::size_t count = 0;
    std::size_t at = close + 1;
    while (count < 10) {
        while (at < text.size() && text[at] == ' ') ++at;
        const std::size_t begin = at;
        while (at < text.size() && text[at] != ' ' && text[at] != '\n') ++at;
        if (at == begin || at == text.size()) break;
        std::uint64_t n = 0;
        for (std::size_t i = begin; i < at; ++i) {
            const char c = text[i];
            if (c >= '0' && c <= '9' && n <= (UINT64_MAX - 9) / 10) n = n * 10 + static_cast<std::uint64_t>(c - '0');
        }
        tokens[count++] = n;
    }
    if (count < 10) {
        error.append(file);
        error.append(count < 8 ? ": no minflt or majflt field (fields 10 and 12)"
                               : ": no majflt field (field 12)");
        if (at == text.size()) error.append(" (the file is cut short)");
        if (count >= 8) out.minor_faults = tokens[7];
        return error;
    }
    out.minor_faults = tokens[7];
    out.major_faults = tokens[9];
    out.has_stat = true;
    return error;
}

/// Fills pss_bytes, anonymous_bytes and file_bytes (Rss - Anonymous) from the text of a
/// /proc/PID/smaps_rollup file; has_rollup once Rss was read. rss_bytes is left alone (status
/// gives it at the same moment as the other status figures). Pure; does not allocate.
inline read_error parse_smaps_rollup(std::string_view text, process_figures& out,
                                     const char* file = "/proc/self/smaps_rollup") noexcept {
    std::uint64_t rss = 0;
    detail::keyed_field fields[] = {
        {"Rss", &rss}, {"Pss", &out.pss_bytes}, {"Anonymous", &out.anonymous_bytes}};
    out.pss_bytes = 0;
    out.anonymous_bytes = 0;
    out.file_bytes = 0;
    read_error error;
    detail::read_keyed(text, fields, file, error);
    out.has_rollup = fields[0].found;
    if (fields[0].found && fields[2].found) {
        out.file_bytes = rss > out.anonymous_bytes ? rss - out.anonymous_bytes : 0;
    }
    return error;
}

/// Reads the status figures from `path` (by default /proc/self/status) with open and read into
/// a buffer on the stack. About 10-20 us; does not allocate. Thread safe.
inline read_error read_status(process_figures& out, const char* path = "/proc/self/status") noexcept {
    char buffer[detail::proc_buffer_bytes];
    read_error error;
    const std::string_view text = detail::read_small_file(path, buffer, sizeof buffer, error);
    if (error) {
        out.rss_bytes = out.rss_peak_bytes = out.vms_bytes = out.swap_bytes = 0;
        out.threads = 0;
        out.has_status = false;
        return error;
    }
    return parse_status(text, out, path);
}

/// Reads the fault counts from `path` (by default /proc/self/stat). A few microseconds; does not
/// allocate. Thread safe.
inline read_error read_stat(process_figures& out, const char* path = "/proc/self/stat") noexcept {
    char buffer[1024];
    read_error error;
    const std::string_view text = detail::read_small_file(path, buffer, sizeof buffer, error);
    if (error) {
        out.minor_faults = out.major_faults = 0;
        out.has_stat = false;
        return error;
    }
    return parse_stat(text, out, path);
}

/// Counts the entries of `path` (by default /proc/self/fd) into open_fds, less the descriptor
/// this count itself holds open while it reads: the process's open file descriptors. Reads the
/// directory with getdents64 into a buffer on the stack (opendir would allocate); costs about
/// 1 us per 30 descriptors. Thread safe; another thread opening or closing files meanwhile may
/// be counted or not.
inline read_error count_open_fds(process_figures& out, const char* path = "/proc/self/fd") noexcept {
    out.open_fds = 0;
    out.has_fds = false;
    int fd;
    do {
        fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return detail::system_error(path, "cannot open", errno);
    alignas(8) char buffer[4096];
    std::uint64_t entries = 0;
    for (;;) {
        const long n = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int saved = errno;
            ::close(fd);
            return detail::system_error(path, "cannot list", saved);
        }
        if (n == 0) break;
        for (long at = 0; at < n;) {
            // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
            unsigned short length;
            std::memcpy(&length, buffer + at + 16, sizeof length);
            const char* name = buffer + at + 19;
            if (name[0] != '.') ++entries;
            if (length == 0) break;
            at += length;
        }
    }
    ::close(fd);
    out.open_fds = static_cast<std::uint32_t>(entries > 0 ? entries - 1 : 0);
    out.has_fds = true;
    return {};
}

/// Reads the smaps_rollup figures from `path` (by default /proc/self/smaps_rollup, Linux 4.14
/// and later). Not free: the kernel walks every page table of the process, about 1 ms per
/// 64 MiB resident (bench/README.md). Does not allocate. Thread safe.
inline read_error read_smaps_rollup(process_figures& out,
                                    const char* path = "/proc/self/smaps_rollup") noexcept {
    char buffer[detail::proc_buffer_bytes];
    read_error error;
    const std::string_view text = detail::read_small_file(path, buffer, sizeof buffer, error);
    if (error) {
        out.pss_bytes = out.anonymous_bytes = out.file_bytes = 0;
        out.has_rollup = false;
        return error;
    }
    return parse_smaps_rollup(text, out, path);
}

/// The cheap figures into `out`: status, stat and the open descriptors (about 25-40 us in all,
/// bench/README.md); smaps_rollup only `with_rollup`. Does not allocate. Returns what any of
/// them missed. Thread safe.
inline read_error read_process_figures(process_figures& out, bool with_rollup = false) noexcept {
    read_error error;
    error.add(read_status(out));
    error.add(read_stat(out));
    error.add(count_open_fds(out));
    if (with_rollup) {
        error.add(read_smaps_rollup(out));
    } else {
        out.pss_bytes = out.anonymous_bytes = out.file_bytes = 0;
        out.has_rollup = false;
    }
    return error;
}

/// Reads /proc/self/smaps line by line, fed in chunks of any size, and sums its mappings into
/// rows by kind: "[heap]" (the brk heap), "[stack]" (the main thread's), "[thread stacks]",
/// "[anon]" (every other anonymous mapping: malloc's arenas and large blocks, memlens's own
/// tables), a named kind the kernel gives ("[vdso]", "[anon:name]"), or a file's path.
/// A thread stack is told by its guard: an anonymous read-write mapping that starts where an
/// anonymous PROT_NONE mapping ends, neither of them MAP_NORESERVE ("nr" in VmFlags; glibc's
/// arenas reserve their address space so, and their read-write part starts on a 64 MiB
/// boundary, which is checked too for kernels without VmFlags). The guard counts in the row.
class smaps_parser {
public:
    /// Parses `chunk`, which may end anywhere (a line is kept until its end arrives).
    void feed(std::string_view chunk) {
        while (!chunk.empty()) {
            const std::size_t end = chunk.find('\n');
            if (end == std::string_view::npos) {
                carry_.append(chunk.data(), chunk.size());
                return;
            }
            if (carry_.empty()) {
                line(chunk.substr(0, end));
            } else {
                carry_.append(chunk.data(), end);
                line(carry_);
                carry_.clear();
            }
            chunk.remove_prefix(end + 1);
        }
    }

    /// The rows, the largest resident first (then by name); ends the parse. A last line without
    /// its newline (a cut read) is left out.
    std::vector<mapping_figures> finish() {
        close_mapping();
        flush_guard();
        std::vector<mapping_figures> out = std::move(rows_);
        rows_.clear();
        std::sort(out.begin(), out.end(), [](const mapping_figures& a, const mapping_figures& b) {
            return a.rss_bytes != b.rss_bytes ? a.rss_bytes > b.rss_bytes : a.name < b.name;
        });
        return out;
    }

    /// Mappings whose header was read.
    std::uint64_t mappings() const noexcept { return mapping_count_; }
    /// Mappings whose Rss line never came (a cut read): their other figures are kept.
    std::uint64_t incomplete() const noexcept { return incomplete_; }

private:
    struct mapping {
        std::uint64_t start = 0, end = 0;
        bool readable = false, writable = false, shared = false, none = false;
        bool anonymous = false, noreserve = false, has_rss = false;
        std::string name;
        mapping_figures figures;
    };

    static bool hex(std::string_view text, std::uint64_t& value) {
        if (text.empty() || text.size() > 16) return false;
        std::uint64_t n = 0;
        for (char c : text) {
            int d;
            if (c >= '0' && c <= '9') d = c - '0';
            else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
            else return false;
            n = n * 16 + static_cast<std::uint64_t>(d);
        }
        value = n;
        return true;
    }

    // "start-end perms offset dev inode   path": false when `text` is not such a line.
    bool header(std::string_view text, mapping& m) {
        const std::size_t dash = text.find('-');
        const std::size_t space = text.find(' ');
        if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) return false;
        if (!hex(text.substr(0, dash), m.start) || !hex(text.substr(dash + 1, space - dash - 1), m.end)) {
            return false;
        }
        // Five fields before the path: range, perms, offset, dev, inode.
        std::size_t at = space;
        std::string_view perms;
        for (int field = 1; field < 5; ++field) {
            while (at < text.size() && text[at] == ' ') ++at;
            const std::size_t begin = at;
            while (at < text.size() && text[at] != ' ') ++at;
            if (begin == at) return false;
            if (field == 1) perms = text.substr(begin, at - begin);
        }
        if (perms.size() < 4) return false;
        while (at < text.size() && text[at] == ' ') ++at;
        m.name.assign(text.data() + at, text.size() - at);
        m.readable = perms[0] == 'r';
        m.writable = perms[1] == 'w';
        m.shared = perms[3] == 's';
        m.none = perms[0] == '-' && perms[1] == '-' && perms[2] == '-';
        m.anonymous = m.name.empty();
        return true;
    }

    void line(std::string_view text) {
        if (!text.empty() && text.find(':') != std::string_view::npos &&
            text.find(':') < text.find(' ')) {
            if (!open_) return;
            if (text.compare(0, 8, "VmFlags:") == 0) {
                // Two-letter flags separated by spaces.
                for (std::size_t at = 8; at + 1 < text.size(); ++at) {
                    if (text[at] == 'n' && text[at + 1] == 'r' && text[at - 1] == ' ' &&
                        (at + 2 == text.size() || text[at + 2] == ' ')) {
                        current_.noreserve = true;
                    }
                }
                return;
            }
            std::uint64_t value = 0;
            mapping_figures& f = current_.figures;
            if (detail::keyed_number(text, "Size", value)) f.size_bytes = value;
            else if (detail::keyed_number(text, "Rss", value)) f.rss_bytes = value, current_.has_rss = true;
            else if (detail::keyed_number(text, "Pss", value)) f.pss_bytes = value;
            else if (detail::keyed_number(text, "Anonymous", value)) f.anonymous_bytes = value;
            else if (detail::keyed_number(text, "Swap", value)) f.swap_bytes = value;
            return;
        }
        mapping next;
        if (!header(text, next)) return;
        close_mapping();
        current_ = std::move(next);
        open_ = true;
        ++mapping_count_;
    }

    void add(const std::string& name, const mapping_figures& f) {
        if (last_ < rows_.size() && rows_[last_].name == name) {
            sum(rows_[last_], f);
            return;
        }
        for (std::size_t i = 0; i < rows_.size(); ++i) {
            if (rows_[i].name == name) {
                last_ = i;
                sum(rows_[i], f);
                return;
            }
        }
        mapping_figures row;
        row.name = name;
        sum(row, f);
        rows_.push_back(std::move(row));
        last_ = rows_.size() - 1;
    }

    static void sum(mapping_figures& row, const mapping_figures& f) {
        row.size_bytes += f.size_bytes;
        row.rss_bytes += f.rss_bytes;
        row.pss_bytes += f.pss_bytes;
        row.anonymous_bytes += f.anonymous_bytes;
        row.swap_bytes += f.swap_bytes;
        row.mappings += 1;
    }

    void flush_guard() {
        if (!guard_open_) return;
        add("[anon]", guard_.figures);
        guard_open_ = false;
    }

    void close_mapping() {
        if (!open_) return;
        open_ = false;
        mapping& m = current_;
        if (!m.has_rss) ++incomplete_;
        const bool plain = m.anonymous && !m.shared && !m.noreserve;
        if (plain && m.none) {
            flush_guard();
            guard_ = std::move(m);
            guard_open_ = true;
            return;
        }
        constexpr std::uint64_t arena_alignment = std::uint64_t{64} << 20;
        if (guard_open_ && plain && m.readable && m.writable && m.start == guard_.end &&
            m.start % arena_alignment != 0) {
            add("[thread stacks]", guard_.figures);
            add("[thread stacks]", m.figures);
            guard_open_ = false;
            return;
        }
        flush_guard();
        add(m.anonymous ? std::string("[anon]") : m.name, m.figures);
    }

    std::string carry_;
    std::vector<mapping_figures> rows_;
    std::size_t last_ = 0;
    mapping current_;
    bool open_ = false;
    mapping guard_;
    bool guard_open_ = false;
    std::uint64_t mapping_count_ = 0;
    std::uint64_t incomplete_ = 0;
};

/// The rows of a whole smaps text, as smaps_parser gives them. `error` (when given) says when
/// the text held no mapping or some mapping lacked its Rss line. Pure.
inline std::vector<mapping_figures> parse_smaps(std::string_view text, read_error* error = nullptr,
                                               const char* file = "/proc/self/smaps") {
    smaps_parser parser;
    parser.feed(text);
    std::vector<mapping_figures> rows = parser.finish();
    if (error) {
        if (parser.mappings() == 0) {
            error->append(file);
            error->append(": no mapping");
        } else if (parser.incomplete() != 0) {
            error->append(file);
            error->append(": some mapping has no Rss line (the file is cut short?)");
        }
    }
    return rows;
}

/// The process's mappings from `path` (by default /proc/self/smaps), summed by kind as
/// smaps_parser says, largest resident first. Streams the file in 64 KiB chunks read into a
/// buffer on the stack; allocates the rows. Costs more than smaps_rollup (the kernel prints
/// every mapping): call it on demand. Thread safe.
inline std::vector<mapping_figures> read_mappings(read_error* error = nullptr,
                                                  const char* path = "/proc/self/smaps") {
    const int fd = detail::open_for_reading(path);
    if (fd < 0) {
        if (error) error->add(detail::system_error(path, "cannot open", errno));
        return {};
    }
    smaps_parser parser;
    char buffer[65536];
    for (;;) {
        const ::ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (error) error->add(detail::system_error(path, "cannot read", errno));
            break;
        }
        if (n == 0) break;
        parser.feed(std::string_view(buffer, static_cast<std::size_t>(n)));
    }
    ::close(fd);
    std::vector<mapping_figures> rows = parser.finish();
    if (error && parser.mappings() == 0 && !*error) {
        error->append(path);
        error->append(": no mapping");
    }
    return rows;
}

/// glibc's own figures (mallinfo2; mallinfo before glibc 2.33, whose int fields wrap past
/// 2 GiB). Not free: glibc walks every arena's free lists under that arena's lock, so
/// allocating threads wait meanwhile: from microseconds to milliseconds with many free chunks
/// (bench/README.md). Does not allocate. Thread safe.
inline allocator_figures read_allocator_figures() noexcept {
    allocator_figures out;
#if __GLIBC_PREREQ(2, 33)
    const struct ::mallinfo2 m = ::mallinfo2();
#else
    const struct ::mallinfo m = ::mallinfo();
#endif
    out.arena_bytes = static_cast<std::uint64_t>(m.arena);
    out.mmapped_bytes = static_cast<std::uint64_t>(m.hblkhd);
    out.in_use_bytes = static_cast<std::uint64_t>(m.uordblks);
    out.free_bytes = static_cast<std::uint64_t>(m.fordblks);
    out.releasable_bytes = static_cast<std::uint64_t>(m.keepcost);
    return out;
}

/// Asks glibc to give its free memory back to the system (malloc_trim(0): the top of every
/// arena and the free whole pages inside them) and says what the resident set did around it.
/// Walks every arena under its lock: milliseconds on a large heap. Does not allocate. Thread
/// safe.
inline trim_figures trim() noexcept {
    trim_figures out;
    process_figures before, after;
    read_status(before);
    out.trimmed = ::malloc_trim(0) != 0;
    read_status(after);
    out.has_rss = before.has_status && after.has_status;
    out.rss_before = before.rss_bytes;
    out.rss_after = after.rss_bytes;
    out.released_bytes = out.has_rss && before.rss_bytes > after.rss_bytes ? before.rss_bytes - after.rss_bytes : 0;
    return out;
}

/// Live bytes memlens tracks now, each byte counted once as this file's header says: every
/// domain together (stats().current). Thread safe; does not allocate.
inline std::uint64_t tracked_bytes() noexcept { return stats().current; }

/// `rss` less `tracked`, or 0 when the resident set is below what memlens tracks.
constexpr std::uint64_t untracked_bytes(std::uint64_t rss, std::uint64_t tracked) noexcept {
    return rss > tracked ? rss - tracked : 0;
}

/// The resident bytes memlens does not track: `figures.rss_bytes` less tracked_bytes() now, or
/// 0 below it (and 0 when the status figures were not read). Thread safe; does not allocate.
inline std::uint64_t untracked_bytes(const process_figures& figures) noexcept {
    return figures.has_status ? untracked_bytes(figures.rss_bytes, tracked_bytes()) : 0;
}

MEMLENS_NAMESPACE_END
