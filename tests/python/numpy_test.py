"""numpy's array buffers counted by the memlens extension module (sources/numpy.hpp), beside
numpy's own reports to tracemalloc, which puts them in a tracemalloc domain of numpy's.

Usage: python3 numpy_test.py EXTENSION_FOLDER (Debian's python3 with python3-numpy)
"""
import sys
import threading
import tracemalloc
import unittest

sys.path.insert(0, sys.argv.pop(1))
import memlens  # noqa: E402
import numpy  # noqa: E402

# numpy's domain number in tracemalloc (numpy/core/include/numpy/ndarraytypes.h NPY_TRACE_DOMAIN).
NUMPY_TRACE_DOMAIN = 389047


def numpy_traced():
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.DomainFilter(True, NUMPY_TRACE_DOMAIN)])
    return sum(stat.size for stat in snapshot.statistics("filename")), len(snapshot.traces)


class NumpyBuffers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert memlens.count_numpy_buffers()

    def test_buffers_count_exactly_in_their_domain(self):
        before = memlens.stats("numpy")
        a = numpy.zeros(1_000_000, dtype=numpy.float64)
        b = numpy.ones((300, 7), dtype=numpy.int16)
        after = memlens.stats("numpy")
        self.assertEqual(after["current"] - before["current"], a.nbytes + b.nbytes)
        # numpy.ones fills through a one-element scalar array, freed at once.
        self.assertEqual((after["allocs"] - after["frees"]) - (before["allocs"] - before["frees"]), 2)
        del a, b
        self.assertEqual(memlens.stats("numpy")["current"], before["current"])

    def test_resizing_counts_the_new_size_once(self):
        before = memlens.stats("numpy")
        a = numpy.arange(1000, dtype=numpy.int64)
        a.resize(250_000, refcheck=False)
        self.assertEqual(memlens.stats("numpy")["current"] - before["current"], 250_000 * 8)
        del a
        self.assertEqual(memlens.stats("numpy")["current"], before["current"])

    def test_equal_to_what_numpy_reports_to_tracemalloc(self):
        tracemalloc.start()
        try:
            traced_before, _ = numpy_traced()
            before = memlens.stats("numpy")["current"]
            kept = [numpy.empty(n, dtype=numpy.uint8) for n in (1, 100, 4096, 1 << 20)]
            kept.append(numpy.random.default_rng(7).random(12345))
            kept.append(numpy.concatenate([kept[1], kept[2]]))
            traced_after, _ = numpy_traced()
            self.assertEqual(memlens.stats("numpy")["current"] - before, traced_after - traced_before)
            self.assertEqual(memlens.stats("numpy")["current"] - before, sum(k.nbytes for k in kept))
        finally:
            tracemalloc.stop()

    def test_buffers_do_not_count_as_python_objects(self):
        obj_before = memlens.stats("python.obj")["current"]
        a = numpy.zeros(4_000_000, dtype=numpy.uint8)
        self.assertLess(memlens.stats("python.obj")["current"] - obj_before, 4096)
        self.assertEqual(a.nbytes, 4_000_000)

    def test_another_thread_keeps_numpy_default_handler_until_it_asks(self):
        grew = {}

        def work(ask):
            if ask:
                self.assertTrue(memlens.count_numpy_buffers())
            before = memlens.stats("numpy")["current"]
            a = numpy.zeros(500_000, dtype=numpy.uint8)
            grew[ask] = memlens.stats("numpy")["current"] - before
            del a

        for ask in (False, True):
            t = threading.Thread(target=work, args=(ask,))
            t.start()
            t.join()
        self.assertEqual(grew, {False: 0, True: 500_000})


    def test_under_the_preload_library_buffers_count_once(self):
        if "malloc" not in memlens.domains():
            self.skipTest("run without the preload library")
        # The handler calls numpy's malloc inside memlens's guard, which the preloaded copy shares.
        malloc_before = memlens.stats("malloc")["current"]
        a = numpy.zeros(3_000_000, dtype=numpy.uint8)
        self.assertLess(memlens.stats("malloc")["current"] - malloc_before, 30_000)
        self.assertEqual(a.nbytes, 3_000_000)


if __name__ == "__main__":
    unittest.main()
