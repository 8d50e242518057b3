"""Checks memlens's allocation sites against heaptrack's on the same binary.

Runs the workload (tests/attribution/workload.cpp) once in memlens's sites mode, where it prints
memlens's view of its leaks, and once under heaptrack. Then, for every leak:
  (i)   memlens's site is heaptrack's site, heaptrack's frames read with memlens's site rule;
  (ii)  each line the sources mark "expect-site: <name>" is the site of one of memlens's leaks,
        and that leak's stack passes every line marked "expect-frame: <name>";
  (iii) every inlined call heaptrack shows between the allocation and the site is a frame of
        memlens's stack too.
Exits with SKIP (CTest's SKIP_RETURN_CODE) when heaptrack is not installed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

# memlens's operator new puts a 16-byte header before each block (include/memlens/sources/
# heap.hpp), so heaptrack, which sees the malloc behind it, counts 16 bytes more per allocation.
HEADER_BYTES = 16

TAG = re.compile(r"//\s*expect-(site|frame):\s*(\w+)")


class Frame:
    def __init__(self, function, file, line, inline, module=""):
        self.function = function
        self.file = file
        self.line = line
        self.inline = inline
        self.module = module

    def place(self):
        return "%s:%d" % (self.file, self.line)

    def __str__(self):
        where = " at %s" % self.place() if self.file else ""
        module = " in %s" % os.path.basename(self.module) if self.module else ""
        return "%s%s%s%s" % (self.function or "??", where, module, " (inlined)" if self.inline else "")


class Leak:
    def __init__(self, bytes, count, site, frames):
        self.bytes = bytes
        self.count = count
        self.site = site  # "file:line", or what the tool says instead
        self.frames = frames

    def describe(self, tool):
        # memlens counts the live allocations of the stack, heaptrack every call it made.
        counted = "allocations" if tool == "memlens" else "calls"
        lines = ["  %s: %d bytes leaked by %d %s, site %s" % (tool, self.bytes, self.count, counted, self.site)]
        lines += ["    #%d %s" % (i, f) for i, f in enumerate(self.frames)]
        return "\n".join(lines)


# The site rule of include/memlens/view/snapshot.hpp (resolved_stacks::site, memlens_frame,
# runtime_frame) and include/memlens/detail/names.hpp, restated for heaptrack's frames: a change
# there is a change here.

OPERATOR = re.compile(r"operator(\(\)|\[\]| [A-Za-z_]\w*(\[\])?|[<>=!+\-*/%^&|~,]+)")
ANONYMOUS = "(anonymous namespace)"


def qualified_name(function):
    """'void ns::f<int>(int) const' -> 'ns::f<int>', as detail::qualified_name reads it."""
    depth = 0
    start = 0
    i = 0
    while i < len(function):
        if function.startswith(ANONYMOUS, i):
            i += len(ANONYMOUS)
            continue
        if depth == 0 and function.startswith("operator", i) and (i == 0 or not (function[i - 1].isalnum() or function[i - 1] == "_")):
            match = OPERATOR.match(function, i)
            if match:
                i = match.end()
                continue
        c = function[i]
        if c in "<{" or (c == "(" and depth > 0):
            depth += 1
        elif c in ">}" or (c == ")" and depth > 0):
            depth -= 1
        elif depth == 0 and c == "(" and i > 0:
            return function[start:i]
        elif depth == 0 and c == " ":
            start = i + 1
        i += 1
    return function[start:]


def memlens_frame(f):
    name = qualified_name(f.function)
    return name.startswith(("memlens::", "operator new")) or f.function.startswith("operator new")


def runtime_function(name):
    return name.startswith(("std::", "__gnu_cxx::", "__cxxabiv1::", "__cxx", "operator new", "operator delete"))


def system_file(file):
    return file.startswith(("/usr/include/", "/usr/lib/gcc/", "/usr/local/include/", "/usr/lib/llvm-")) or "/include/c++/" in file


RUNTIME_MODULES = ("libc.so", "libstdc++.so", "libc++.so", "libc++abi.so", "libgcc_s.so", "libm.so",
                   "libpthread.so", "ld-linux", "ld64.so", "libdl.so")


def runtime_frame(f):
    return runtime_function(qualified_name(f.function)) or system_file(f.file) or \
        os.path.basename(f.module).startswith(RUNTIME_MODULES)


def below_memlens(frames):
    """The stack without memlens's own frames at its top, as resolved_stacks keeps it."""
    first = 0
    while first < len(frames) and memlens_frame(frames[first]):
        first += 1
    return frames[first:]


def site_index(frames):
    for i, f in enumerate(frames):
        if not memlens_frame(f) and not runtime_frame(f):
            return i
    return 0 if frames else None


def normalized(path):
    """A source path as memlens prints it, where heaptrack's differs: heaptrack joins the
    compilation directory to a path that is already absolute ("/build//src/a.cpp") and keeps
    ".." (Clang, CMake); both are undone here."""
    if not path:
        return path
    if "//" in path:
        path = "/" + path.rsplit("//", 1)[1]
    return os.path.normpath(path)


def same_file(a, b):
    """Equal paths; or, when only one is absolute, it ends with the other. heaptrack prints a
    relative path as the compiler recorded it, without the compilation directory that memlens
    joins to it ("../src/a.cpp" from meson's build directory): its leading ".." are dropped."""
    a, b = normalized(a), normalized(b)
    if not a or not b:
        return False
    if a == b:
        return True
    if os.path.isabs(a) != os.path.isabs(b):
        absolute, relative = (a, b) if os.path.isabs(a) else (b, a)
        while relative.startswith("../"):
            relative = relative[3:]
        return absolute.endswith("/" + relative)
    return False


def same_place(a, b):
    """Whether two "file:line" texts name one line."""
    file_a, _, line_a = a.rpartition(":")
    file_b, _, line_b = b.rpartition(":")
    return line_a == line_b and line_a.isdigit() and same_file(file_a, file_b)


def read_tags(paths):
    """{name: {"site": [places], "frame": [places]}} from the sources' expect- comments."""
    tags = {}
    for path in paths:
        with open(path, encoding="utf-8") as source:
            for number, text in enumerate(source, 1):
                for kind, name in TAG.findall(text):
                    tags.setdefault(name, {"site": [], "frame": []})[kind].append("%s:%d" % (path, number))
    return tags


def read_memlens(text):
    """The workload's records: "leak\tbytes\tcount\tsite", then "frame\tinline\tfile:line\tfunction"."""
    leaks = []
    for row in text.splitlines():
        fields = row.split("\t")
        if fields[0] == "leak" and len(fields) == 4:
            leaks.append(Leak(int(fields[1]), int(fields[2]), fields[3], []))
        elif fields[0] == "frame" and len(fields) == 4 and leaks:
            file, _, line = fields[2].rpartition(":")
            leaks[-1].frames.append(Frame(fields[3], normalized(file), int(line or 0), fields[1] == "1"))
    return leaks


LEAK_HEADER = re.compile(r"^(\d+)B leaked over (\d+) calls from$")
INEXACT_HEADER = re.compile(r"^\S+ leaked over \d+ calls from$")


def add_frame_row(frames, row):
    """Reads one row of a heaptrack stack into `frames`, innermost first: "  <function or
    0xaddress>" starts a frame, "    at <file>:<line>" when known and "    in <module>" (on the
    first frame of each return address only) describe the last one. Other rows are ignored."""
    if row.startswith("    at ") and frames:
        file, _, line = row[len("    at "):].rpartition(":")
        frames[-1].file = normalized(file)
        frames[-1].line = int(line) if line.isdigit() else 0
    elif row.startswith("    in ") and frames:
        frames[-1].module = row[len("    in "):]
    elif row.startswith("  ") and not row.startswith("   "):
        frames.append(Frame(row.strip(), "", 0, False))


def link_frames(frames):
    """Marks inlined calls and gives every frame its module, once a stack is read: the frames
    from one "in" line up to the next are the calls inlined at that address, innermost first,
    and the function they were inlined into, last."""
    # Outermost first: a frame is an inlined call unless the frame after it starts another
    # address (or there is none).
    outer_starts = True
    for f in reversed(frames):
        f.inline = not outer_starts
        outer_starts = f.module != ""
    module = ""
    for f in frames:
        module = f.module or module
        f.module = module


def heaptrack_site(frames):
    """A heaptrack stack's site as memlens's rule names it, "(no stack)" for none."""
    stack = below_memlens(frames)
    at = site_index(stack)
    return stack[at].place() if at is not None else "(no stack)"


def read_heaptrack(text):
    """The MEMORY LEAKS section of `heaptrack_print --print-leaks=1 --merge-backtraces=0`.

    Each leak is "<n>B leaked over <k> calls from" (larger sizes in K, M, G, inexact; <k> counts
    every call from the stack, freed or not), then its frames as add_frame_row reads them.
    """
    leaks = []
    section = False
    current = None
    for row in text.splitlines():
        if row == "MEMORY LEAKS":
            section = True
            continue
        if not section:
            continue
        header = LEAK_HEADER.match(row)
        if header:
            current = Leak(int(header.group(1)), int(header.group(2)), "", [])
            leaks.append(current)
        elif INEXACT_HEADER.match(row):
            current = None  # no size to match: its frames are skipped
        elif row and not row.startswith(" "):
            break  # the section has ended
        elif current is None or not row.strip():
            continue
        else:
            add_frame_row(current.frames, row)
    for leak in leaks:
        link_frames(leak.frames)
        leak.site = heaptrack_site(leak.frames)
    return leaks


def run(command, env, timeout=300):
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=timeout)
    if result.returncode != 0:
        sys.exit("%s exited with %d\nstdout:\n%s\nstderr:\n%s" %
                 (" ".join(command), result.returncode, result.stdout, result.stderr))
    return result.stdout


def environment(mode):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    env["MEMLENS_MODE"] = mode
    return env


def heaptrack_report(heaptrack, heaptrack_print, workload, sections):
    """Runs `workload` under heaptrack and returns what heaptrack_print says of it, with the
    `sections` options (such as "--print-leaks=1") and every stack whole and apart."""
    with tempfile.TemporaryDirectory(prefix="memlens-attribution-") as directory:
        # memlens in off mode: its hooks pass each call straight to malloc, so heaptrack sees the
        # program's own calls, and memlens neither records nor starts a symbolizer, which would
        # run under heaptrack's preload too. The mode changes nothing between the program's line
        # and the malloc call: the hooks read it after malloc has returned.
        run([heaptrack, "-o", os.path.join(directory, "x"), workload], environment("off"))
        data = [name for name in os.listdir(directory) if name.startswith("x.")]
        if len(data) != 1:
            sys.exit("heaptrack left %s in its output directory, not one x.* file" % sorted(os.listdir(directory)))
        return run([heaptrack_print] + sections + ["--merge-backtraces=0", "--shorten-templates=0",
                                                   "-f", os.path.join(directory, data[0])], environment("off"))


def heaptrack_leaks(heaptrack, heaptrack_print, workload):
    text = heaptrack_report(heaptrack, heaptrack_print, workload,
                            ["--print-leaks=1", "--print-allocators=0", "--print-peaks=0", "--print-temporary=0"])
    return read_heaptrack(text), text


def find_tool(given, name):
    if given:
        return given if os.access(given, os.X_OK) else None
    return shutil.which(name)


def command_line(description, workload, sources):
    """The arguments both comparisons take, and heaptrack's two programs, or None without them."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workload", required=True, help=workload)
    parser.add_argument("--sources", nargs="+", required=True, help=sources)
    parser.add_argument("--heaptrack", help="heaptrack (default: on PATH)")
    parser.add_argument("--heaptrack-print", help="heaptrack_print (default: on PATH)")
    args = parser.parse_args()
    tools = (find_tool(args.heaptrack, "heaptrack"), find_tool(args.heaptrack_print, "heaptrack_print"))
    if not all(tools):
        print("heaptrack or heaptrack_print not found (Debian: heaptrack): nothing to compare against")
        return args, None
    return args, tools


def main():
    args, tools = command_line(__doc__.splitlines()[0], "the built workload program",
                               "its sources, with expect- tags")
    if tools is None:
        return SKIP
    heaptrack, heaptrack_print = tools

    tags = read_tags(args.sources)
    ours = read_memlens(run([args.workload], environment("sites")))
    theirs, heaptrack_text = heaptrack_leaks(heaptrack, heaptrack_print, args.workload)

    failures = []

    def fail(what, mine=None, other=None):
        text = what
        if mine:
            text += "\n" + mine.describe("memlens")
        if other:
            text += "\n" + other.describe("heaptrack")
        failures.append(text)

    def name_of(leak):
        for name, tag in tags.items():
            if any(same_place(leak.site, place) for place in tag["site"]):
                return name
        return "the leak of %d bytes" % leak.bytes

    # (ii) the marked lines are memlens's sites, and their stacks reach the marked callers.
    for name, tag in sorted(tags.items()):
        if len(tag["site"]) != 1:
            fail("%s: %d lines say expect-site, not one" % (name, len(tag["site"])))
            continue
        expected = tag["site"][0]
        mine = [leak for leak in ours if same_place(leak.site, expected)]
        if not mine:
            fail("%s: no leak of memlens's has the site %s; its leaks' sites: %s" %
                 (name, expected, ", ".join(leak.site for leak in ours) or "none"))
            continue
        for place in tag["frame"]:
            if not any(same_place(f.place(), place) for f in mine[0].frames):
                fail("%s: memlens's stack does not reach %s" % (name, place), mine[0])

    # (i) every leak of memlens's is one of heaptrack's, with the same site; (iii) heaptrack's
    # inlined calls between the allocation and the site are memlens's frames too.
    matched = []
    inlined_checked = {}
    for mine in ours:
        name = name_of(mine)
        expected_bytes = mine.bytes + HEADER_BYTES * mine.count
        candidates = [leak for leak in theirs if leak.bytes == expected_bytes]
        if not candidates:
            fail("%s: heaptrack has no leak of %d bytes (memlens's %d and its headers)" %
                 (name, expected_bytes, mine.bytes), mine)
            continue
        other = next((leak for leak in candidates if same_place(leak.site, mine.site)), candidates[0])
        matched.append(other)
        if not same_place(other.site, mine.site):
            fail("%s: the sites differ: memlens says %s, heaptrack says %s" % (name, mine.site, other.site),
                 mine, other)
            continue
        stack = below_memlens(other.frames)
        inlined = [f for f in stack[:site_index(stack) + 1] if f.inline and f.file]
        inlined_checked[id(mine)] = len(inlined)
        for f in inlined:
            if not any(same_place(g.place(), f.place()) for g in mine.frames):
                fail("%s: heaptrack's inlined call %s is not in memlens's stack" % (name, f), mine, other)

    # Nothing the program leaked through memlens's operator new from its own lines is missing.
    for other in theirs:
        if other in matched or not any(memlens_frame(f) for f in other.frames):
            continue
        if any(same_file(other.site.rpartition(":")[0], source) for source in args.sources):
            fail("heaptrack sees a leak from %s that memlens does not report" % other.site, None, other)

    if failures:
        print("memlens and heaptrack disagree:\n")
        print("\n\n".join(failures))
        print("\nheaptrack_print said:\n" + heaptrack_text)
        return 1
    for mine in ours:
        print("%-8s %4d bytes  site %s  agrees with heaptrack (%d inlined calls of its stack checked)" %
              (name_of(mine), mine.bytes, mine.site, inlined_checked[id(mine)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
