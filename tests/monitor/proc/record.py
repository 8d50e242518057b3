#!/usr/bin/python3
"""Records this process's /proc files for the monitor's parser tests (tests/monitor_test.cpp).

Run it as `/usr/bin/python3 tests/monitor/proc/record.py tests/monitor/proc`: a Python process with
three threads waiting (each has a thread stack with a guard page below it), an 8 MiB bytearray
(a block glibc maps on its own) and a file mapped read-only writes its status, stat,
smaps_rollup and smaps as they are, and `cat` writes its own small smaps. The files are what this
kernel prints, unedited; the *_missing and *_truncated variants beside them are cut from them by
hand, and the tests say what each one lacks.
"""
import mmap
import os
import subprocess
import sys
import threading

folder = sys.argv[1] if len(sys.argv) > 1 else "."
release = threading.Event()
threads = [threading.Thread(target=release.wait) for _ in range(3)]
for t in threads:
    t.start()
block = bytearray(8 * 1024 * 1024)
block[::4096] = b"x" * len(block[::4096])  # touch every page, so that it is resident
with open("/usr/bin/python3", "rb") as f:
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    mapped[0]  # one page of it resident

# Each file read whole in one go, so that its figures agree with each other as far as the kernel
# lets them (smaps moves by a page or two as Python itself allocates while reading).
texts = {}
for name in ("status", "stat", "smaps_rollup", "smaps"):
    with open("/proc/self/" + name, "rb") as f:
        texts[name] = f.read()
for name, text in texts.items():
    with open(os.path.join(folder, name), "wb") as f:
        f.write(text)
with open(os.path.join(folder, "smaps_small"), "wb") as f:
    f.write(subprocess.run(["cat", "/proc/self/smaps"], check=True, capture_output=True).stdout)

release.set()
for t in threads:
    t.join()
