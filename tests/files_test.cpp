// Report paths: what a path names is written by its kind and never replaced by something else.
#include <memlens/detail/files.hpp>
#include <memlens/view/report.hpp>

#include <catch2/catch.hpp>

#include "support.hpp"

#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using memlens::detail::write_output_file;

std::string read_all(const std::string& path) {
    std::string text;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        char buffer[4096];
        std::size_t n;
        while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
        std::fclose(f);
    }
    return text;
}

std::size_t entries(const std::string& dir) {
    std::size_t count = 0;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            const std::string name = e->d_name;
            if (name != "." && name != "..") ++count;
        }
        ::closedir(d);
    }
    return count;
}

::mode_t kind_of(const std::string& path) {
    struct ::stat s {};
    REQUIRE(::lstat(path.c_str(), &s) == 0);
    return s.st_mode & S_IFMT;
}

}  // namespace

TEST_CASE("a new path gets the whole text and no temporary is left", "[files]") {
    memlens_test::temporary_directory dir;
    std::string error;
    REQUIRE(write_output_file(dir / "report.txt", "hello\n", error));
    CHECK(error.empty());
    CHECK(read_all(dir / "report.txt") == "hello\n");
    CHECK(entries(dir.path) == 1);
}

TEST_CASE("a regular file is replaced whole and keeps its permissions", "[files]") {
    memlens_test::temporary_directory dir;
    const std::string path = dir / "report.txt";
    std::string error;
    REQUIRE(write_output_file(path, "old", error));
    REQUIRE(::chmod(path.c_str(), 0600) == 0);
    // A reader that opened the old file keeps reading the old file: the new one is renamed in.
    const int reader = ::open(path.c_str(), O_RDONLY);
    REQUIRE(reader >= 0);
    REQUIRE(write_output_file(path, "new text", error));
    char buffer[16] = {};
    CHECK(::read(reader, buffer, sizeof buffer - 1) == 3);
    CHECK(std::string(buffer) == "old");
    ::close(reader);
    CHECK(read_all(path) == "new text");
    struct ::stat s {};
    REQUIRE(::stat(path.c_str(), &s) == 0);
    CHECK((s.st_mode & 07777) == 0600);
    CHECK(entries(dir.path) == 1);
}

TEST_CASE("a symbolic link stays a link and its target gets the text", "[files]") {
    memlens_test::temporary_directory dir;
    const std::string target = dir / "target.json";
    const std::string link = dir / "link.json";
    std::string error;
    REQUIRE(write_output_file(target, "{}", error));
    REQUIRE(::symlink("target.json", link.c_str()) == 0);
    REQUIRE(write_output_file(link, "{\"a\":1}", error));
    CHECK(kind_of(link) == S_IFLNK);
    CHECK(read_all(target) == "{\"a\":1}");
    CHECK(entries(dir.path) == 2);
}

TEST_CASE("a link to nothing is refused and nothing is created", "[files]") {
    memlens_test::temporary_directory dir;
    const std::string link = dir / "dangling.txt";
    REQUIRE(::symlink("missing.txt", link.c_str()) == 0);
    std::string error;
    CHECK_FALSE(write_output_file(link, "text", error));
    CHECK(error == "cannot write " + link + ": it is a symbolic link to nothing");
    CHECK(kind_of(link) == S_IFLNK);
    CHECK(entries(dir.path) == 1);
}

TEST_CASE("a FIFO is written in place for its reader and stays a FIFO", "[files]") {
    memlens_test::temporary_directory dir;
    const std::string fifo = dir / "report.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string received;
    std::thread reader([&] { received = read_all(fifo); });
    // The writer refuses a FIFO nobody has opened yet; wait until the reader has.
    std::string error;
    bool written = false;
    for (int i = 0; i < 2000 && !written; ++i) {
        written = write_output_file(fifo, "through the pipe", error);
        if (!written) ::usleep(1000);
    }
    reader.join();
    CHECK(written);
    CHECK(received == "through the pipe");
    CHECK(kind_of(fifo) == S_IFIFO);
    CHECK(entries(dir.path) == 1);
}

TEST_CASE("a FIFO without a reader is refused at once", "[files]") {
    memlens_test::temporary_directory dir;
    const std::string fifo = dir / "nobody.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string error;
    CHECK_FALSE(write_output_file(fifo, "lost?", error));
    CHECK(error == "cannot write " + fifo + ": nothing is reading it");
    CHECK(kind_of(fifo) == S_IFIFO);
}

TEST_CASE("a pipe named through /proc/self/fd is written in place", "[files]") {
    // What /dev/stderr is when a program's stderr is a pipe.
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    std::string error;
    CHECK(write_output_file("/proc/self/fd/" + std::to_string(ends[1]), "piped", error));
    ::close(ends[1]);
    char buffer[16] = {};
    CHECK(::read(ends[0], buffer, sizeof buffer - 1) == 5);
    CHECK(std::string(buffer) == "piped");
    ::close(ends[0]);
}

TEST_CASE("a device is written in place and never replaced", "[files]") {
    std::string error;
    CHECK(write_output_file("/dev/null", "discarded", error));
    CHECK(kind_of("/dev/null") == S_IFCHR);
    // Run as root, a rename would replace the device node; the device must say it is full.
    CHECK_FALSE(write_output_file("/dev/full", "no room", error));
    CHECK(error == "cannot write /dev/full: " + std::string(std::strerror(ENOSPC)));
    CHECK(kind_of("/dev/full") == S_IFCHR);
}

TEST_CASE("directories and missing folders are refused with the path named", "[files]") {
    memlens_test::temporary_directory dir;
    std::string error;
    CHECK_FALSE(write_output_file(dir.path, "text", error));
    CHECK(error == "cannot write " + dir.path + ": it is a directory");
    const std::string nowhere = dir / "missing/report.txt";
    CHECK_FALSE(write_output_file(nowhere, "text", error));
    CHECK(error.rfind("cannot write " + nowhere + ": cannot create ", 0) == 0);
    CHECK(entries(dir.path) == 0);
    CHECK_FALSE(write_output_file("", "text", error));
    CHECK(error == "cannot write a report to an empty path");
}

TEST_CASE("write_report follows the same rule and throws with the reason", "[files]") {
    memlens_test::temporary_directory dir;
    const std::string fifo = dir / "report.txt";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const memlens::snapshot empty;
    CHECK_THROWS_WITH(memlens::write_report(empty, fifo), "memlens: cannot write " + fifo + ": nothing is reading it");
    CHECK(kind_of(fifo) == S_IFIFO);
    CHECK_THROWS_WITH(memlens::write_report(empty, "/dev/full"),
                      "memlens: cannot write /dev/full: " + std::string(std::strerror(ENOSPC)));
    CHECK(kind_of("/dev/full") == S_IFCHR);
}

TEST_CASE("a report's format comes from its extension, and an unknown one is refused", "[files]") {
    using memlens::report_format;
    using memlens::report_format_for;
    CHECK(report_format_for("out.json") == report_format::json);
    CHECK(report_format_for("out.html") == report_format::html);
    CHECK(report_format_for("out.htm") == report_format::html);
    CHECK(report_format_for("out.folded") == report_format::folded);
    CHECK(report_format_for("leaks.txt") == report_format::text);
    CHECK(report_format_for("run.log") == report_format::text);
    CHECK(report_format_for("/dev/stderr") == report_format::text);
    CHECK(report_format_for("/tmp/a.d/report") == report_format::text);
    CHECK(report_format_for(".hidden") == report_format::text);
    CHECK_THROWS_WITH(report_format_for("report.pdf"),
                      "memlens: report.pdf asks for a report format memlens does not write; accepted "
                      "extensions: none, .txt, .text or .log for text, .json, .html or .htm, .folded");
    memlens_test::temporary_directory dir;
    CHECK_THROWS_AS(memlens::write_report(memlens::snapshot{}, dir / "report.pdf"), std::invalid_argument);
    CHECK(entries(dir.path) == 0);
}
