#!/usr/bin/env python3
"""Under libmemlens_preload.so every allocator of the process is tracked, so memlens's leak
summary is compared WHOLE with memcheck's: every kind, bytes and blocks, glibc's and libstdc++'s
own blocks included (a new thread's DTV, the exception emergency pool), nothing filtered by
function.

Two checks of tests/reach/accuracy.cpp:
  * mid-run: the build with memlens's headers and no hooks (MEMLENS_REACH_PRELOADED) runs under
    the preload library and calls classify_leaks() through its shared state; the build without
    memlens runs under memcheck, which checks at the same point (VALGRIND_DO_LEAK_CHECK).
  * at exit: the build without memlens runs under the preload library with
    MEMLENS_LEAKS_AT_EXIT=kinds, and under memcheck with --run-libc-freeres=no and
    --run-cxx-freeres=no, so that valgrind frees nothing the program leaves (by default it frees
    glibc's and libstdc++'s blocks before its check).

Two differences remain, each checked to be exactly what it is, everything else compared exactly:
  * DTV size: glibc gives each thread a DTV with one 16-byte slot per module with TLS, and the
    preload library is one such module more than valgrind's preload: each DTV (a block whose
    stack passes through allocate_dtv) is 16 bytes larger under memlens, same kind, same count.
  * At exit only, blocks held only by threads that have exited: glibc keeps an exited thread's
    stack mapped (its stack cache), with its static TLS and control block. memcheck scans every
    writable mapping, so the thread_local's block stays still reachable and the DTVs possibly
    lost (the control block points into them); memlens scans the stacks of the threads that
    exist, and finds both definitely lost.

Skips (77) when valgrind is not on PATH, unless --require is given."""
import argparse
import os
import re
import shutil
import subprocess
import sys

SKIP = 77

KINDS = ["definitely lost", "indirectly lost", "possibly lost", "still reachable"]
DTV_SLOT = 16

SUMMARY = re.compile(r"^\s*(definitely lost|indirectly lost|possibly lost|still reachable): "
                     r"([\d,]+) bytes in ([\d,]+) blocks")
RECORD = re.compile(r"^==\d+== ([\d,]+)(?: \(([\d,]+) direct, [\d,]+ indirect\))? bytes in ([\d,]+) "
                    r"blocks are (definitely lost|indirectly lost|possibly lost|still reachable) in loss record")
SECTION = re.compile(r"^(definitely lost|indirectly lost|possibly lost|still reachable), by site:$")
SITE = re.compile(r"^  ([\d,]+) bytes in ([\d,]+) blocks in \"")
# The blocks of a kind that a suppression rule matched, named by the rule, without a stack.
SUPPRESSED = re.compile(r"^  suppressed: ([\d,]+) bytes in ([\d,]+) blocks by (\S+)")


def number(text):
    return int(text.replace(",", ""))


class Group:
    """Blocks of one kind with one stack: bytes, blocks, and the stack's text."""

    def __init__(self, kind, size, blocks):
        self.kind, self.bytes, self.blocks, self.stack = kind, size, blocks, ""


def memlens_groups(text):
    """The summary and the sites of memlens's describe() (with every site listed)."""
    summary, groups, kind = {}, [], None
    for line in text.splitlines():
        m = SUMMARY.match(line)
        if m and m.group(1) not in summary and not groups:
            summary[m.group(1)] = (number(m.group(2)), number(m.group(3)))
            continue
        m = SECTION.match(line)
        if m:
            kind = m.group(1)
            continue
        m = SITE.match(line)
        if m and kind:
            groups.append(Group(kind, number(m.group(1)), number(m.group(2))))
            continue
        m = SUPPRESSED.match(line)
        if m and kind:
            groups.append(Group(kind, number(m.group(1)), number(m.group(2))))
            groups[-1].stack = "suppressed by " + m.group(3) + "\n"
        elif groups and line.startswith("    #"):
            groups[-1].stack += line + "\n"
        elif line.startswith("  ... and "):
            sys.exit("memlens listed only some sites:\n" + text)
    # What the sites leave out of the summary (the exit report lists no still reachable site,
    # and a site that a suppression rule matches, as libstdc++'s emergency pool, is not listed)
    # counts as one group of no stack.
    listed = totals(groups)
    for kind, (size, blocks) in summary.items():
        if blocks > listed[kind][1]:
            groups.append(Group(kind, size - listed[kind][0], blocks - listed[kind][1]))
    return summary, groups


def memcheck_checks(text):
    """Each leak check of memcheck's log: its summary and its loss records."""
    checks, records, record = [], [], None
    for line in text.splitlines():
        if "LEAK SUMMARY" in line:
            checks.append([{}, records])
            records, record = [], None
            continue
        m = SUMMARY.match(line.split("== ", 1)[-1]) if line.startswith("==") else None
        if m and checks and m.group(1) not in checks[-1][0] and not records:
            checks[-1][0][m.group(1)] = (number(m.group(2)), number(m.group(3)))
            continue
        m = RECORD.match(line)
        if m:
            record = Group(m.group(4), number(m.group(2) or m.group(1)), number(m.group(3)))
            records.append(record)
        elif record and line.strip("= 0123456789"):
            record.stack += line + "\n"
        else:
            record = None
    return checks


def totals(groups, keep=lambda g: True):
    out = {k: (0, 0) for k in KINDS}
    for g in groups:
        if keep(g):
            out[g.kind] = (out[g.kind][0] + g.bytes, out[g.kind][1] + g.blocks)
    return out


def is_dtv(g):
    # memlens lists the DTVs as suppressed by their default rule (their stack is not shown).
    return "allocate_dtv" in g.stack or "leak:^_dl_allocate_tls$" in g.stack


def of_exited_thread(g):
    return "tls_thread" in g.stack and not is_dtv(g)


def show(figures):
    return "%s bytes in %s" % figures


def compare(title, ours, theirs, exited_threads):
    """Prints a row per kind and per difference; True when everything is as the docstring says."""
    our_summary, our_groups = ours
    their_summary, their_groups = theirs
    ok = True
    print(title)
    # The listings add up to the summaries: nothing is left out of the comparison.
    for name, summary, groups in (("memlens", our_summary, our_groups), ("memcheck", their_summary, their_groups)):
        if not summary:
            print("  no leak summary from " + name)
            ok = False
        if {k: summary.get(k, (0, 0)) for k in KINDS} != totals(groups):
            print("  %s's sites do not add up to its summary: %s against %s" % (name, totals(groups), summary))
            ok = False
    plain = lambda g: not is_dtv(g) and not (exited_threads and of_exited_thread(g))
    mine, memcheck = totals(our_groups, plain), totals(their_groups, plain)
    for kind in KINDS:
        same = mine[kind] == memcheck[kind]
        ok = ok and same
        print("  %-16s memlens %-22s memcheck %-22s %s" % (kind, show(mine[kind]), show(memcheck[kind]),
                                                         "ok" if same else "MISMATCH"))
    our_dtv, their_dtv = totals(our_groups, is_dtv), totals(their_groups, is_dtv)
    if exited_threads:
        # memcheck: possibly lost through the exited threads' control blocks; memlens: definitely.
        our_dtv = {"possibly lost" if k == "definitely lost" else k: v for k, v in our_dtv.items() if k != "possibly lost"}
        our_dtv.setdefault("definitely lost", (0, 0))
    for kind in KINDS:
        mine_b, theirs_b = our_dtv.get(kind, (0, 0)), their_dtv.get(kind, (0, 0))
        same = mine_b[1] == theirs_b[1] and mine_b[0] == theirs_b[0] + DTV_SLOT * theirs_b[1]
        ok = ok and same
        if mine_b[1] or theirs_b[1]:
            print("  DTVs %-11s memlens %-22s memcheck %-22s %s" % (
                kind if not exited_threads else "(exited)", show(mine_b), show(theirs_b),
                "ok: 16 bytes a DTV more, for the preload library's TLS" if same else "MISMATCH"))
    if exited_threads:
        our_tls, their_tls = totals(our_groups, of_exited_thread), totals(their_groups, of_exited_thread)
        same = (our_tls["definitely lost"] == their_tls["still reachable"] == (200, 1) and
                sum(b for _, b in our_tls.values()) == 1 and sum(b for _, b in their_tls.values()) == 1)
        ok = ok and same
        print("  exited thread's thread_local: memlens definitely lost %s, memcheck still reachable %s %s" % (
            show(our_tls["definitely lost"]), show(their_tls["still reachable"]),
            "ok" if same else "MISMATCH"))
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preloaded", required=True, help="accuracy.cpp built with MEMLENS_REACH_PRELOADED")
    parser.add_argument("--plain", required=True, help="accuracy.cpp built without memlens")
    parser.add_argument("--library", required=True, help="libmemlens_preload.so")
    parser.add_argument("--valgrind", default=None)
    parser.add_argument("--require", action="store_true", help="fail instead of skipping without valgrind")
    args = parser.parse_args()
    valgrind = args.valgrind or shutil.which("valgrind")
    if not valgrind:
        print("valgrind not found (Debian: valgrind)")
        return 1 if args.require else SKIP

    env = dict(os.environ, LD_PRELOAD=os.path.abspath(args.library))
    for name in ("MEMLENS_OUTPUT", "MEMLENS_LEAKS_AT_EXIT", "MEMLENS_MODE", "MEMLENS_BLOCKS"):
        env.pop(name, None)
    # Every block from the first, as MEMLENS_LEAKS_AT_EXIT=kinds asks (the program turns the
    # same mode on in main, after libstdc++ allocated its pool).
    mid = subprocess.run([args.preloaded], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=120, env=dict(env, MEMLENS_MODE="sites", MEMLENS_BLOCKS="1"))
    at_exit = subprocess.run([args.plain], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=120, env=dict(env, MEMLENS_LEAKS_AT_EXIT="kinds"))
    for run in (mid, at_exit):
        if run.returncode != 0:
            sys.exit("the run under the preload library failed (%d):\n%s%s" % (run.returncode, run.stdout, run.stderr))
    memcheck = subprocess.run([valgrind, "--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=none",
                               "--run-libc-freeres=no", "--run-cxx-freeres=no", args.plain],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if memcheck.returncode != 0:
        sys.exit("valgrind failed (%d):\n%s" % (memcheck.returncode, memcheck.stderr))
    checks = memcheck_checks(memcheck.stderr)
    if len(checks) < 2:
        sys.exit("memcheck gave fewer than two leak checks:\n" + memcheck.stderr)
    ok = compare("at the program's leak check (classify_leaks through the preload library's state)",
                 memlens_groups(mid.stdout), (checks[0][0], checks[0][1]), False)
    ok = compare("at exit (MEMLENS_LEAKS_AT_EXIT=kinds)", memlens_groups(at_exit.stderr),
                 (checks[1][0], checks[1][1]), True) and ok
    if not ok:
        print("--- memlens, mid-run ---\n" + mid.stdout + mid.stderr)
        print("--- memlens, at exit ---\n" + at_exit.stderr)
        print("--- memcheck ---\n" + memcheck.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
