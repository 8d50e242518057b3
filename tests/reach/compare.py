#!/usr/bin/env python3
"""Runs tests/reach/accuracy.cpp twice: built with memlens's hooks, where it prints
classify_leaks()'s leak summary, and built without them under valgrind's memcheck, which checks
it at the same point through VALGRIND_DO_LEAK_CHECK. Fails unless both give the same bytes and
blocks for each kind, and those are the figures the program was written to leave.

memcheck's figures are summed over its loss records whose stack passes through one of the
program's reach_case_ functions: it also sees glibc's and libstdc++'s own blocks (a new thread's
DTV, the exception pool), which memlens's operator new hooks never see.

Skips (77) when valgrind is not on PATH, unless --require is given."""
import argparse
import os
import re
import shutil
import subprocess
import sys

SKIP = 77

KINDS = ["definitely lost", "indirectly lost", "possibly lost", "still reachable"]

# What the program leaves, by construction (see accuracy.cpp): at its leak check, and at exit,
# once its two threads have ended and the blocks they held are lost with them.
EXPECTED = {
    "definitely lost": (48, 1),
    "indirectly lost": (96, 2),
    "possibly lost": (64, 1),
    "still reachable": (600, 3),
}
EXPECTED_AT_EXIT = {
    "definitely lost": (548, 3),
    "indirectly lost": (96, 2),
    "possibly lost": (64, 1),
    "still reachable": (100, 1),
}

SUMMARY = re.compile(r"^\s*(definitely lost|indirectly lost|possibly lost|still reachable): "
                     r"([\d,]+) bytes in ([\d,]+) blocks")
RECORD = re.compile(r"^==\d+== ([\d,]+)(?: \(([\d,]+) direct, [\d,]+ indirect\))? bytes in ([\d,]+) "
                    r"blocks are (definitely lost|indirectly lost|possibly lost|still reachable) in loss record")


def number(text):
    return int(text.replace(",", ""))


def summary_figures(text):
    figures = {}
    for line in text.splitlines():
        m = SUMMARY.match(line)
        if m and m.group(1) not in figures:
            figures[m.group(1)] = (number(m.group(2)), number(m.group(3)))
    return figures


def memlens_figures(program):
    """The program's own summary on stdout, and MEMLENS_LEAKS_AT_EXIT=kinds's on stderr."""
    env = dict(os.environ, MEMLENS_LEAKS_AT_EXIT="kinds")
    env.pop("MEMLENS_OUTPUT", None)
    out = subprocess.run([program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                         env=env)
    if out.returncode != 0:
        sys.exit("the memlens build failed (%d):\n%s%s" % (out.returncode, out.stdout, out.stderr))
    return summary_figures(out.stdout), summary_figures(out.stderr), out.stdout + out.stderr


def memcheck_figures(valgrind, program):
    out = subprocess.run([valgrind, "--leak-check=full", "--show-leak-kinds=all",
                          "--errors-for-leak-kinds=none", program],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit("valgrind failed (%d):\n%s" % (out.returncode, out.stderr))
    checks = [{k: (0, 0) for k in KINDS}]
    record = None
    for line in out.stderr.splitlines():
        if "LEAK SUMMARY" in line:
            # The client request's check ends here; the exit's check follows.
            checks.append({k: (0, 0) for k in KINDS})
            record = None
            continue
        figures = checks[-1]
        m = RECORD.match(line)
        if m:
            direct = m.group(2) or m.group(1)
            record = (m.group(4), number(direct), number(m.group(3)))
            continue
        if record and "reach_case_" in line:
            kind, size, blocks = record
            figures[kind] = (figures[kind][0] + size, figures[kind][1] + blocks)
            record = None
        elif record and not line.strip("= 0123456789"):
            record = None
    if len(checks) < 3:
        sys.exit("memcheck gave fewer than two leak checks:\n" + out.stderr)
    return checks[0], checks[1], out.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hooked", required=True, help="accuracy.cpp built with memlens's hooks")
    parser.add_argument("--plain", required=True, help="accuracy.cpp built without them")
    parser.add_argument("--valgrind", default=None)
    parser.add_argument("--require", action="store_true", help="fail instead of skipping without valgrind")
    args = parser.parse_args()
    valgrind = args.valgrind or shutil.which("valgrind")
    if not valgrind:
        print("valgrind not found (Debian: valgrind)")
        return 1 if args.require else SKIP

    ours, ours_at_exit, our_text = memlens_figures(args.hooked)
    theirs, theirs_at_exit, their_text = memcheck_figures(valgrind, args.plain)
    failed = False
    for title, mine_all, memcheck_all, expected_all in (
            ("at the program's leak check", ours, theirs, EXPECTED),
            ("at exit (MEMLENS_LEAKS_AT_EXIT=kinds)", ours_at_exit, theirs_at_exit, EXPECTED_AT_EXIT)):
        print(title)
        for kind in KINDS:
            mine = mine_all.get(kind)
            memcheck = memcheck_all.get(kind)
            expected = expected_all[kind]
            status = "ok" if mine == memcheck == expected else "MISMATCH"
            failed = failed or status != "ok"
            print("  %-16s memlens %-16s memcheck %-16s expected %-16s %s" % (
                kind, "%s bytes in %s" % mine if mine else "-",
                "%s bytes in %s" % memcheck if memcheck else "-", "%s bytes in %s" % expected, status))
    if failed:
        print("--- memlens ---\n" + our_text)
        print("--- memcheck ---\n" + their_text)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
