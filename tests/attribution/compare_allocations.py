"""Checks memlens's count of allocations per site against heaptrack's on the same binary.

Runs the document workload (tests/attribution/document.cpp) once in memlens's sites mode, where
it prints, per stack, every allocation memlens recorded (freed or not) and the stack's site, and
once under heaptrack. heaptrack's stacks are read with memlens's site rule (compare.py) and their
calls summed per site; then every site in the workload's sources must have as many allocations
in memlens as calls in heaptrack. Counts are compared, not bytes: heaptrack's allocators section
gives each stack's calls exactly but no bytes allocated, only a peak, and that inexactly.
Exits with SKIP (CTest's SKIP_RETURN_CODE) when heaptrack is not installed.
"""

import re
import sys

# compare.py is imported from the source tree, which a test must not write to.
sys.dont_write_bytecode = True

from compare import (SKIP, Frame, add_frame_row, below_memlens, command_line, environment, heaptrack_report,
                     heaptrack_site, link_frames, memlens_frame, normalized, qualified_name, run, same_file)


class Stack:
    def __init__(self, count, site, frames, bytes=None):
        self.count = count
        self.bytes = bytes  # memlens's alone: heaptrack's allocators section has no such figure
        self.site = site  # "file:line", or what the tool says instead
        self.frames = frames

    def describe(self, tool):
        # memlens counts the allocations it recorded, heaptrack the calls it saw.
        counted = "allocations" if tool == "memlens" else "calls"
        size = " (%d bytes)" % self.bytes if self.bytes is not None else ""
        lines = ["  %s: %d %s%s from this stack, site %s" % (tool, self.count, counted, size, self.site)]
        lines += ["    #%d %s" % (i, f) for i, f in enumerate(self.frames)]
        return "\n".join(lines)


def read_memlens(text):
    """The workload's records: "stack\tallocations\tbytes\tsite", then
    "frame\tinline\tfile:line\tfunction" for each of its frames."""
    stacks = []
    for row in text.splitlines():
        fields = row.split("\t")
        if fields[0] == "stack" and len(fields) == 4:
            stacks.append(Stack(int(fields[1]), fields[3], [], int(fields[2])))
        elif fields[0] == "frame" and len(fields) == 4 and stacks:
            file, _, line = fields[2].rpartition(":")
            stacks[-1].frames.append(Frame(fields[3], normalized(file), int(line or 0), fields[1] == "1"))
    return stacks


ALLOCATORS_HEADER = re.compile(r"^(\d+) calls to allocation functions with \S+ peak consumption from$")
TOTAL_CALLS = re.compile(r"^calls to allocation functions: (\d+) ")


def read_heaptrack(text):
    """The MOST CALLS TO ALLOCATION FUNCTIONS section of `heaptrack_print --print-allocators=1
    --merge-backtraces=0`, and the run's total of calls from the summary after it.

    Each stack is "<k> calls to allocation functions with <peak> peak consumption from", <k>
    exact (the peak is not: 1000 bytes and more are printed in K, M, G), then its frames as
    compare.add_frame_row reads them. Stacks are listed up to --peak-limit only.
    """
    stacks = []
    total = None
    section = False
    for row in text.splitlines():
        calls = TOTAL_CALLS.match(row)
        if calls:
            total = int(calls.group(1))
        if row == "MOST CALLS TO ALLOCATION FUNCTIONS":
            section = True
            continue
        if not section:
            continue
        header = ALLOCATORS_HEADER.match(row)
        if header:
            stacks.append(Stack(int(header.group(1)), "", []))
        elif row and not row.startswith(" "):
            section = False
        elif stacks and row.strip():
            add_frame_row(stacks[-1].frames, row)
    for stack in stacks:
        link_frames(stack.frames)
        stack.site = heaptrack_site(stack.frames)
    return stacks, total


def source_of(site, sources):
    """(source, line) when the site is a line of one of the workload's sources, else None."""
    file, _, line = site.rpartition(":")
    if not line.isdigit():
        return None
    for source in sources:
        if same_file(file, source):
            return source, int(line)
    return None


def main():
    args, tools = command_line(__doc__.splitlines()[0], "the built document workload",
                               "its sources: the sites compared")
    if tools is None:
        return SKIP
    heaptrack, heaptrack_print = tools

    ours = read_memlens(run([args.workload], environment("sites")))
    # heaptrack's run is in off mode, for compare.heaptrack_report's reasons; the workload then
    # also takes no snapshot and prints nothing, which would allocate where memlens's run does not
    # look. A peak limit above any count of stacks, so that none is left out: the total checked
    # below says whether that held.
    heaptrack_text = heaptrack_report(heaptrack, heaptrack_print, args.workload,
                                      ["--print-allocators=1", "--peak-limit=1000000", "--print-leaks=0",
                                       "--print-peaks=0", "--print-temporary=0"])
    theirs, total = read_heaptrack(heaptrack_text)

    failures = []
    if total is None or sum(s.count for s in theirs) != total:
        failures.append("heaptrack_print listed stacks with %d calls in all, but says the run made %s" %
                        (sum(s.count for s in theirs), total))

    # Only the sites in the workload's own sources are compared. Elsewhere the tools see different
    # things by design: heaptrack also sees the C++ runtime's start-up (its exception pool, its
    # locale) and everything that calls malloc, memlens only its operator new and only from the
    # moment its state exists.
    per_site = {}

    def tally(stack, tool):
        place = source_of(stack.site, args.sources)
        if place is None:
            return
        entry = per_site.setdefault(place, {"memlens": [], "heaptrack": []})
        entry[tool].append(stack)

    for stack in ours:
        tally(stack, "memlens")
    for stack in theirs:
        if not any(memlens_frame(f) for f in stack.frames):
            # Not through memlens's operator new, so memlens cannot see it: a workload's own line
            # that allocates so (malloc, stdio, an exception) has no place in this comparison.
            if source_of(stack.site, args.sources):
                failures.append("heaptrack sees %d calls from %s that bypass operator new, where memlens "
                                "cannot count them; the workload should not make them\n%s" %
                                (stack.count, stack.site, stack.describe("heaptrack")))
            continue
        if any(qualified_name(f.function).startswith("memlens::") for f in below_memlens(stack.frames)):
            # memlens's own allocations: heaptrack sees them, memlens leaves them out by design (its
            # reentrancy guard), whichever line of the program called into memlens.
            continue
        tally(stack, "heaptrack")

    if not per_site:
        failures.append("neither tool saw an allocation from %s" % ", ".join(args.sources))
    for (source, line), entry in sorted(per_site.items()):
        mine = sum(s.count for s in entry["memlens"])
        other = sum(s.count for s in entry["heaptrack"])
        if mine == other:
            continue
        text = ["%s:%d: memlens counts %d allocations from this site, heaptrack %d calls" %
                (normalized(source), line, mine, other)]
        text += [s.describe("memlens") for s in entry["memlens"]]
        text += [s.describe("heaptrack") for s in entry["heaptrack"]]
        failures.append("\n".join(text))

    if failures:
        print("memlens and heaptrack disagree:\n")
        print("\n\n".join(failures))
        print("\nheaptrack_print said:\n" + heaptrack_text)
        return 1
    for (source, line), entry in sorted(per_site.items()):
        print("%s:%d  %6d allocations (%d bytes) from %d stacks in memlens, %d in heaptrack: agreed" %
              (normalized(source), line, sum(s.count for s in entry["memlens"]),
               sum(s.bytes for s in entry["memlens"]), len(entry["memlens"]), len(entry["heaptrack"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
