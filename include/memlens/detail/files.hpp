// memlens/detail/files.hpp: writing a report or snapshot to the path a user named, without ever
// replacing what that path is.
//
// The rule, for every file memlens writes (MEMLENS_OUTPUT, write_report, write_json, baselines):
// - a path that does not exist, or names a regular file, gets the whole new text through a
//   temporary file beside it and a rename, so that readers only ever see the old file or the
//   complete new one; an existing file keeps its permissions;
// - a symbolic link is followed: what it points at is written by these rules and the link stays
//   a link; a link to nothing is refused, since the user named the link, not a new file;
// - a character device, a terminal or a FIFO (/dev/stderr, /dev/null, a pipe's /proc/self/fd/N)
//   is written in place; a FIFO without a reader is refused rather than waited on;
// - a directory, a block device or a socket is refused.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

inline std::string system_reason(const std::string& what, int error) {
    return what + ": " + std::strerror(error);
}

// Writes all of `text` to `fd`; on failure says why, naming `path`.
inline bool write_all(int fd, const std::string& path, const std::string& text, std::string& error) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ::ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = system_reason("cannot write " + path, n < 0 ? errno : EIO);
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

inline bool write_in_place(const std::string& path, const std::string& text, std::string& error) {
    // Non-blocking only for the open, so that a FIFO nobody reads is an error and not a hang.
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        error = errno == ENXIO ? "cannot write " + path + ": nothing is reading it"
                               : system_reason("cannot open " + path, errno);
        return false;
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags != -1) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    const bool written = write_all(fd, path, text, error);
    ::close(fd);
    return written;
}

// `existing` is the mode of the regular file being replaced, 0 when there is none.
inline bool replace_regular(const std::string& path, const std::string& text, ::mode_t existing,
                            std::string& error) {
    const std::string temporary = path + ".tmp" + std::to_string(::getpid());
    // O_EXCL: never follow or reuse something that already has the temporary's name.
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        error = system_reason("cannot write " + path + ": cannot create " + temporary, errno);
        return false;
    }
    bool written = write_all(fd, temporary, text, error);
    if (written && existing != 0 && ::fchmod(fd, existing & 07777) != 0) {
        error = system_reason("cannot give " + temporary + " the permissions of " + path, errno);
        written = false;
    }
    if (::close(fd) != 0 && written) {
        error = system_reason("cannot write " + temporary, errno);
        written = false;
    }
    if (written && std::rename(temporary.c_str(), path.c_str()) != 0) {
        error = system_reason("cannot rename " + temporary + " to " + path, errno);
        written = false;
    }
    if (!written) ::unlink(temporary.c_str());
    return written;
}

// The path a symbolic link finally names, for a link whose target is a regular file.
inline bool resolve_link(const std::string& path, std::string& target, std::string& error) {
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) == nullptr) {
        error = system_reason("cannot follow the link " + path, errno);
        return false;
    }
    target = resolved;
    return true;
}

/// Writes `text` to `path` by the rule at the top of this file; on failure returns false with
/// `error` naming the path and the system's reason, and leaves what was there untouched.
inline bool write_output_file(const std::string& path, const std::string& text, std::string& error) {
    if (path.empty()) {
        error = "cannot write a report to an empty path";
        return false;
    }
    struct ::stat named {};
    if (::lstat(path.c_str(), &named) != 0) {
        if (errno == ENOENT) return replace_regular(path, text, 0, error);
        error = system_reason("cannot write " + path, errno);
        return false;
    }
    struct ::stat target = named;
    if (S_ISLNK(named.st_mode) && ::stat(path.c_str(), &target) != 0) {
        error = errno == ENOENT ? "cannot write " + path + ": it is a symbolic link to nothing"
                                : system_reason("cannot follow the link " + path, errno);
        return false;
    }
    if (S_ISREG(target.st_mode)) {
        if (!S_ISLNK(named.st_mode)) return replace_regular(path, text, target.st_mode, error);
        std::string resolved;
        return resolve_link(path, resolved, error) &&
               replace_regular(resolved, text, target.st_mode, error);
    }
    if (S_ISCHR(target.st_mode) || S_ISFIFO(target.st_mode)) return write_in_place(path, text, error);
    const char* kind = S_ISDIR(target.st_mode)   ? "a directory"
                       : S_ISBLK(target.st_mode) ? "a block device"
                       : S_ISSOCK(target.st_mode) ? "a socket"
                                                  : "not a file memlens writes";
    error = "cannot write " + path + ": it is " + kind;
    return false;
}

}  // namespace detail
MEMLENS_NAMESPACE_END
