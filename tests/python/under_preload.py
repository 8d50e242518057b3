"""The memlens extension module imported by Debian's python3 running under libmemlens_preload.so:
the process holds one memlens state, so the module reads the preloaded library's figures (the
malloc family and operator new) beside its own Python hooks' figures, and each byte counts in
one domain only.

Usage: LD_PRELOAD=libmemlens_preload.so python3 under_preload.py EXTENSION_FOLDER
"""
import ctypes
import sys
import tracemalloc
import unittest

sys.path.insert(0, sys.argv.pop(1))
import memlens  # noqa: E402

PYTHON_DOMAINS = ("python.raw", "python.mem", "python.obj")


def python_current():
    return sum(memlens.stats(name)["current"] for name in PYTHON_DOMAINS)


class UnderPreload(unittest.TestCase):
    def test_the_module_sees_the_preloaded_hooks(self):
        self.assertTrue(memlens.native_heap_counted())
        self.assertIn("malloc", memlens.domains())
        # The interpreter's start-up went through malloc before the module was imported.
        self.assertGreater(memlens.stats("malloc")["allocs"], 1000)

    def test_a_python_block_counts_in_its_python_domain_only(self):
        size = 8_000_000
        malloc_before = memlens.stats("malloc")["current"]
        python_before = python_current()
        keep = bytearray(size)
        python_grew = python_current() - python_before
        malloc_grew = memlens.stats("malloc")["current"] - malloc_before
        self.assertGreaterEqual(python_grew, size)
        # The Python hooks call malloc under memlens's guard, which the preloaded copy shares.
        self.assertLess(malloc_grew, size // 100)
        del keep
        self.assertLess(python_current() - python_before, size // 100)


    def test_arenas_count_in_their_pool_and_not_as_mmap(self):
        arenas_before = memlens.pools()["python.arenas"]
        mmap_before = memlens.stats("mmap")["total"]
        small = [(i, i) for i in range(300_000)]
        arenas = memlens.pools()["python.arenas"]
        # pymalloc maps its 1 MiB arenas through the hooks' guard, which the preloaded mmap
        # source shares: they count once, in the pool.
        self.assertGreater(arenas["total"] - arenas_before["total"], 16 << 20)
        self.assertLess(memlens.stats("mmap")["total"] - mmap_before, 1 << 20)
        self.assertEqual(len(small), 300_000)

    def test_native_blocks_reach_tracemalloc_when_forwarded(self):
        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        domain = 4243
        size = 123_457  # a size nothing else in the interpreter asks for

        def native_sizes():
            memlens.flush_to_tracemalloc()
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, domain)])
            return [trace.size for trace in snapshot.traces]

        tracemalloc.start()
        try:
            self.assertTrue(memlens.forward_to_tracemalloc(domain))
            block = libc.malloc(size)
            self.assertIn(size, native_sizes())
            libc.free(block)
            self.assertNotIn(size, native_sizes())
            memlens.stop_forwarding_to_tracemalloc()
            figures = memlens.tracemalloc_forwarding()
            self.assertGreaterEqual(figures["handed"], 2)
            self.assertEqual(figures["dropped"], 0)
            # Python's own blocks stay in tracemalloc's domain 0, never in the native one.
            python_in_native = [t for t in tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.DomainFilter(True, domain)]).traces if t.size == 8_000_001]
            self.assertEqual(python_in_native, [])
        finally:
            memlens.stop_forwarding_to_tracemalloc()
            tracemalloc.stop()


if __name__ == "__main__":
    unittest.main()
