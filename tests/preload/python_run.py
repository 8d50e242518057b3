"""memlens-run on Debian's python3, unmodified: the interpreter imports the memlens module through
memlens-run's sitecustomize, so the report of the preloaded library shows Python's allocations
with the Python functions and lines that made them, joined with the interpreter's native frames.

Usage: python3 python_run.py MEMLENS_RUN   (runs this file again as the workload, with --workload)
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

BLOCKS = 20_000
BLOCK_BYTES = 1_000


def make_blocks():
    return [bytearray(BLOCK_BYTES) for _ in range(BLOCKS)]  # the line the report must name


def workload():
    import memlens

    blocks = make_blocks()
    # Every bytearray's buffer is one python.raw or python.mem block of BLOCK_BYTES + 1 bytes.
    python = sum(memlens.stats(name)["current"] for name in ("python.raw", "python.mem", "python.obj"))
    assert python >= BLOCKS * (BLOCK_BYTES + 1), python
    del blocks
    sys.exit(3)


MAKE_LINE = next(n for n, line in enumerate(open(__file__), 1) if "the line the report must name" in line)


class PythonUnderMemlensRun(unittest.TestCase):
    def test_python_frames_in_the_preloaded_report(self):
        with tempfile.TemporaryDirectory() as folder:
            report = os.path.join(folder, "run.txt")
            run = subprocess.run(
                # Through bash: meson's copy of the script is not executable.
                ["bash", MEMLENS_RUN, "--mode", "sites", "--output", report, "--", "/usr/bin/python3", __file__, "--workload"],
                capture_output=True, text=True)
            self.assertEqual(run.returncode, 3, run.stderr)
            with open(report) as f:
                text = f.read()
        # The peak section's largest site: the buffers, made at the list comprehension's line.
        first = re.split(r"\n  (?=\d)", text)[1]
        count = int(re.match(r"([\d,]+) allocations", first).group(1).replace(",", ""))
        self.assertGreaterEqual(count, BLOCKS * 9 // 10, first)
        # The file as the interpreter was given it, which meson's test runner does not normalize.
        named = re.search(rf"make_blocks at (\S+):{MAKE_LINE}\n", first)
        self.assertIsNotNone(named, first)
        self.assertEqual(os.path.realpath(named.group(1)), os.path.realpath(__file__))
        self.assertIn(f"workload at {named.group(1)}:", first)
        # Native frames of the interpreter sit around the Python ones.
        self.assertIn("PyByteArray", first)
        self.assertIn("Py_BytesMain", text)

    def test_no_python_leaves_the_allocators_alone(self):
        with tempfile.TemporaryDirectory() as folder:
            report = os.path.join(folder, "run.txt")
            run = subprocess.run(
                ["bash", MEMLENS_RUN, "--no-python", "--mode", "sites", "--output", report, "--", "/usr/bin/python3",
                 "-c", "import sys; print('memlens' in sys.modules)"],
                capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertEqual(run.stdout.strip(), "False")


if __name__ == "__main__":
    if sys.argv[1:] == ["--workload"]:
        workload()
    MEMLENS_RUN = sys.argv.pop(1)
    unittest.main()
