"""Tests of the memlens Python module (include/memlens/python_module.hpp).

Run by Debian's python3 with the folder of the extension module as the first argument, and by
tests/python/module_host.cpp, which registers the module in an embedded interpreter. Figures are
CPython 3.11's, the version of Debian 12's python3: the test asserts the exact sizes it asks of
its allocators.
"""
import gc
import json
import os
import pathlib
import sys
import tempfile
import threading
import unittest

if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv.pop(1))
import memlens  # noqa: E402

# The extension module is a file; the module a host registers is built into the host.
IN_HOST = not hasattr(memlens, "__file__")
# A bytearray of n bytes: the object, then its buffer of n + 1 bytes (the trailing NUL).
BYTEARRAY_OBJECT = sys.getsizeof(bytearray())
# An int that is not cached, made by arithmetic or by range: 3.11 asks PyObject_Malloc for
# sizeof(PyLongObject), 32 bytes, for a one-digit int, while sys.getsizeof counts 28 (int("1000")
# asks for 28).
NEW_INT_BYTES = 32


def make_bytearray(n):
    return bytearray(n)


class Figures(unittest.TestCase):
    def test_domains_name_the_python_allocators(self):
        names = memlens.domains()
        for name in ("heap", "python.raw", "python.mem", "python.obj"):
            self.assertIn(name, names)
            figures = memlens.stats(name)
            self.assertEqual(sorted(figures), ["allocs", "current", "frees", "peak", "total"])
            self.assertLessEqual(figures["current"], figures["peak"])
            self.assertGreaterEqual(figures["allocs"], figures["frees"])
        self.assertGreater(memlens.stats("python.obj")["allocs"], 0)

    def test_the_extension_counts_no_native_heap(self):
        # Its copy of memlens has no operator new hooks, and the host's are not visible to it.
        self.assertEqual(memlens.native_heap_counted(), IN_HOST)
        if not IN_HOST:
            self.assertEqual(memlens.stats("heap"), {"current": 0, "peak": 0, "total": 0, "allocs": 0, "frees": 0})

    def test_a_live_bytearray_moves_the_process_figures(self):
        before = memlens.stats("python.obj")
        # Read twice more so that both dicts exist before the difference is taken.
        between = memlens.stats("python.obj")
        keep = bytearray(100_000)
        after = memlens.stats("python.obj")
        made_by_reading = between["total"] - before["total"]
        self.assertEqual(after["total"] - between["total"] - made_by_reading, len(keep) + 1 + BYTEARRAY_OBJECT)

    def test_reset_peak_lowers_the_peak_to_current(self):
        dropped = bytearray(1_000_000)
        del dropped
        memlens.reset_peak()
        figures = memlens.stats("python.obj")
        self.assertLess(figures["peak"] - figures["current"], 1_000_000)


class Scopes(unittest.TestCase):
    def test_an_empty_block_counts_nothing(self):
        with memlens.scope() as s:
            pass
        self.assertEqual(s.usage(), {"allocated": 0, "freed": 0, "net": 0, "peak": 0, "allocs": 0, "frees": 0})

    def test_a_block_counts_what_it_keeps_and_what_it_drops(self):
        with memlens.scope("kept and dropped") as s:
            kept = bytearray(1000)
            dropped = bytearray(100_000)
            del dropped
        self.assertEqual(len(kept), 1000)
        self.assertEqual(s.allocated, 1057 + 100_057)
        self.assertEqual(s.freed, 100_057)
        self.assertEqual(s.net, 1057)
        self.assertEqual(s.peak, 1057 + 100_057)
        self.assertEqual((s.allocs, s.frees), (4, 2))
        self.assertEqual(s.name, "kept and dropped")

    def test_an_open_scope_reports_so_far_and_nested_peaks_fold_in(self):
        # Made before the outer block opens, which would count it.
        inner = memlens.scope()
        with memlens.scope() as outer:
            with inner:
                dropped = bytearray(50_000)
                del dropped
            peak_inside = outer.peak
        # `with inner` binds inner.__exit__ inside the outer block, before the inner one opens.
        self.assertEqual(peak_inside, sys.getsizeof(inner.__exit__) + 50_057)
        self.assertEqual(outer.peak, peak_inside)
        self.assertEqual((inner.net, inner.peak), (0, 50_057))

    def test_named_totals_add_up_every_pass(self):
        name = "three passes " + str(id(self))
        for _ in range(3):
            with memlens.scope(name):
                dropped = bytearray(2000)
                del dropped
        row = [r for r in memlens.scopes() if r["name"] == name]
        self.assertEqual(len(row), 1)
        self.assertEqual((row[0]["calls"], row[0]["allocated"], row[0]["allocs"], row[0]["net"]), (3, 3 * 2057, 6, 0))
        self.assertEqual(row[0]["max_peak"], 2057)
        self.assertEqual(row[0]["function"], "test_named_totals_add_up_every_pass")
        self.assertTrue(row[0]["file"].endswith("module_test.py"))

    def test_a_decorated_function_is_measured_at_each_call(self):
        @memlens.profile
        def build(n):
            """Makes a bytearray."""
            return bytearray(n)

        self.assertEqual(build.__name__, "build")
        self.assertEqual(build.__doc__, "Makes a bytearray.")
        self.assertEqual(len(build(4000)), 4000)
        self.assertEqual((build.scope.allocated, build.scope.allocs, build.scope.net), (4057, 2, 4057))
        build(10)
        self.assertEqual(build.scope.allocated, 67)
        qualname = build.__qualname__
        row = [r for r in memlens.scopes() if r["name"] == qualname][0]
        self.assertEqual((row["calls"], row["allocated"]), (2, 4057 + 67))

    def test_a_scope_decorates_methods(self):
        timed = memlens.scope("method " + str(id(self)))

        class Holder:
            @timed
            def make(self, n):
                return bytearray(n)

        self.assertEqual(len(Holder().make(300)), 300)
        self.assertEqual(timed.allocated, 357)

    def test_a_scope_counts_its_own_thread_only(self):
        kept = [None]
        figures = {}
        go = threading.Event()
        done = threading.Event()

        def work():
            go.wait()
            with memlens.scope() as mine:
                kept[0] = bytearray(1_000_000)
            figures["worker"] = mine.usage()
            done.set()

        worker = threading.Thread(target=work)
        worker.start()
        with memlens.scope() as main:
            go.set()
            done.wait()
        worker.join()
        self.assertEqual((figures["worker"]["allocated"], figures["worker"]["allocs"]), (1_000_057, 2))
        # What the main thread did while it waited (the events' locks), not the worker's bytes.
        self.assertLess(main.allocated, 1_000_000)

    def test_misuse_is_refused(self):
        s = memlens.scope()
        with s:
            with self.assertRaisesRegex(RuntimeError, "already open"):
                s.__enter__()
        with self.assertRaisesRegex(RuntimeError, "without __enter__"):
            s.__exit__(None, None, None)
        with self.assertRaisesRegex(TypeError, "str or None, not int"):
            memlens.scope(3)
        with self.assertRaisesRegex(ValueError, "must not be empty"):
            memlens.scope("")
        with self.assertRaisesRegex(TypeError, "decorates a callable"):
            memlens.profile(3)
        with self.assertRaisesRegex(TypeError, "decorates a callable"):
            memlens.scope("x")(3)
        with self.assertRaises(TypeError):
            memlens.Scope()


class Limits(unittest.TestCase):
    def test_limit_memory_passes_at_the_limit_and_fails_above_it(self):
        with memlens.limit_memory(5057):
            dropped = bytearray(5000)
            del dropped
        with self.assertRaises(AssertionError) as raised:
            with memlens.limit_memory("1 KB"):
                dropped = bytearray(5000)
                del dropped
        self.assertEqual(
            str(raised.exception),
            "memlens.limit_memory: peak 5,057 bytes (4.94 KiB) is 4,057 bytes (3.96 KiB) over the limit of "
            "1,000 bytes; the block allocated 5,057 bytes (4.94 KiB) in 2 blocks and freed 5,057 bytes "
            "(4.94 KiB) in 2 blocks")

    def test_limit_leaks_as_a_decorator(self):
        kept = []

        @memlens.limit_leaks("1 KiB")
        def keep(n):
            kept.append(bytearray(n))

        keep(900)  # 957 bytes stay, under 1024
        with self.assertRaisesRegex(AssertionError, r"^memlens\.limit_leaks: leaked \(net\) 2,057 bytes "
                                                    r"\(2\.01 KiB\) is 1,033 bytes \(1\.01 KiB\) over the limit "
                                                    r"of 1,024 bytes \(1\.00 KiB\)"):
            keep(2000)

    def test_units(self):
        for text, limit in (("24 MB", 24_000_000), ("24MiB", 24 << 20), ("1.5 kb", 1500), ("7 B", 7), ("7", 7)):
            self.assertIn(f"limit {limit}:", repr(memlens.limit_memory(text)))

    def test_an_exception_from_the_block_goes_on_unchanged(self):
        with self.assertRaises(KeyError):
            with memlens.limit_memory(0):
                kept = bytearray(100)
                raise KeyError("from the block")

    def test_bad_limits(self):
        with self.assertRaisesRegex(ValueError, 'cannot read "3 parsecs" as a size'):
            memlens.limit_memory("3 parsecs")
        with self.assertRaisesRegex(ValueError, "0 or more"):
            memlens.limit_leaks(-1)
        with self.assertRaisesRegex(TypeError, "int or a string"):
            memlens.limit_leaks(1.5)


class Snapshots(unittest.TestCase):
    def tearDown(self):
        memlens.set_mode("counters")

    def test_compare_by_domain_is_exact(self):
        self.assertEqual(memlens.set_mode("sites"), "counters")
        keep = [None] * 10
        older = memlens.snapshot()
        for i in range(10):
            keep[i] = bytearray(100)
        newer = memlens.snapshot()
        self.assertEqual(newer.mode, "sites")
        rows = {r["key"]: r for r in memlens.compare(older, newer, by="domain")}
        # Ten bytearrays of two blocks each, and the older snapshot's own object.
        self.assertEqual(rows["python.obj"]["bytes_diff"], 10 * (BYTEARRAY_OBJECT + 101) + sys.getsizeof(older))
        self.assertEqual(rows["python.obj"]["count_diff"], 21)
        by_site = memlens.compare(older, newer)
        self.assertEqual(sum(r["bytes_diff"] for r in by_site), sum(r["bytes_diff"] for r in rows.values()))
        self.assertEqual(set(newer.domains), set(memlens.domains()))
        stats = newer.statistics(by="domain")
        self.assertEqual(sum(r["bytes"] for r in stats), sum(r["bytes"] for r in rows.values()))
        with tempfile.TemporaryDirectory() as folder:
            memlens.write_report(os.path.join(folder, "sites.folded"), snapshot=newer)
            with open(os.path.join(folder, "sites.folded")) as f:
                stacks = f.read().splitlines()
        # One line per stack, ending in its live bytes, which add up to the snapshot's.
        self.assertEqual(sum(int(line.rsplit(" ", 1)[1]) for line in stacks), sum(r["bytes"] for r in stats))

    def test_counters_snapshots_cannot_be_compared(self):
        older = memlens.snapshot()
        newer = memlens.snapshot()
        with self.assertRaisesRegex(ValueError, 'mode "counters" records no allocation'):
            memlens.compare(older, newer)
        with self.assertRaisesRegex(TypeError, "must be a memlens.Snapshot"):
            memlens.compare(older, 3)
        with self.assertRaisesRegex(ValueError, "cannot group by"):
            newer.statistics(by="colour")
        with self.assertRaisesRegex(ValueError, "no mode"):
            memlens.set_mode("everything")


class Reports(unittest.TestCase):
    def test_every_format(self):
        with tempfile.TemporaryDirectory() as folder:
            for name in ("r.html", "r.json", "r.txt", "r.folded"):
                memlens.write_report(os.path.join(folder, name))
            for name in ("r.html", "r.json", "r.txt"):
                self.assertGreater(os.path.getsize(os.path.join(folder, name)), 0, name)
            # Folded stacks need recorded stacks: in counters mode there are none.
            self.assertEqual(os.path.getsize(os.path.join(folder, "r.folded")), 0)
            memlens.write_report(pathlib.Path(folder) / "given.json", snapshot=memlens.snapshot(), title="t")
            with open(os.path.join(folder, "given.json")) as f:
                document = json.load(f)
            self.assertIn("python.obj", json.dumps(document))
            with open(os.path.join(folder, "r.html")) as f:
                self.assertIn("<html", f.read())

    def test_bad_paths_raise_with_memlens_message(self):
        with self.assertRaisesRegex(ValueError, r"^memlens: report\.pdf asks for a report format memlens does "
                                                r"not write; accepted extensions: "):
            memlens.write_report("report.pdf")
        with tempfile.TemporaryDirectory() as folder:
            missing = os.path.join(folder, "no such folder", "r.html")
            with self.assertRaisesRegex(OSError, "^memlens: cannot write " + missing):
                memlens.write_report(missing)
        with self.assertRaises(TypeError):
            memlens.write_report(3)


class Footprints(unittest.TestCase):
    def test_a_bytearray_is_what_getsizeof_says(self):
        f = memlens.footprint(lambda: bytearray(1000))
        self.assertEqual(f["bytes"], 1057)
        self.assertEqual(f["bytes"], f["getsizeof"])
        self.assertEqual(f["blocks"], 2)
        self.assertEqual(f["domains"], {"python.raw": (0, 0), "python.mem": (0, 0), "python.obj": (1057, 2)})

    def test_a_list_of_one_int_a_thousand_times(self):
        f = memlens.footprint(lambda: [0] * 1000)
        self.assertEqual((f["bytes"], f["blocks"], f["getsizeof"]), (8056, 2, 8056))
        # The object with its GC header, and the array of pointers through PyMem_Malloc.
        self.assertEqual(f["domains"]["python.mem"], (8000, 1))
        self.assertEqual(f["domains"]["python.obj"], (56, 1))

    def test_a_list_of_distinct_ints_holds_each_int(self):
        base = 1000
        one = memlens.footprint(lambda: base + 1)
        self.assertEqual((one["bytes"], one["blocks"], one["getsizeof"]), (NEW_INT_BYTES, 1, 28))
        f = memlens.footprint(lambda: list(range(1000)))
        # 0 to 256 are cached ints; the other 743 are made.
        self.assertEqual(f["blocks"], 2 + 743)
        self.assertEqual(f["bytes"], f["getsizeof"] + 743 * NEW_INT_BYTES)

    def test_compare_footprints_sorts_by_bytes(self):
        rows = memlens.compare_footprints({
            "list": lambda: [0] * 1000,
            "tuple": lambda: (0,) * 1000,
            "bytes": lambda: bytes(8000),
        })
        self.assertEqual(rows, [
            {"name": "bytes", "bytes": 8033, "blocks": 1, "getsizeof": 8033},
            {"name": "tuple", "bytes": 8040, "blocks": 1, "getsizeof": 8040},
            {"name": "list", "bytes": 8056, "blocks": 2, "getsizeof": 8056},
        ])

    def test_bad_factories(self):
        with self.assertRaisesRegex(TypeError, "factory must be callable"):
            memlens.footprint(3)
        with self.assertRaisesRegex(TypeError, "takes a dict"):
            memlens.compare_footprints([])
        with self.assertRaisesRegex(ZeroDivisionError, ""):
            memlens.footprint(lambda: 1 / 0)


class Cycle:
    def __init__(self):
        self.me = self


class Blob:
    pass


class GrowingBlob:
    pass


class Collector(unittest.TestCase):
    def test_a_full_collection_is_counted_with_what_it_freed(self):
        gc.disable()
        try:
            before = memlens.gc_stats()
            cycles = [Cycle() for _ in range(250)]
            del cycles
            found = gc.collect()
            after = memlens.gc_stats()
        finally:
            gc.enable()
        self.assertEqual([g["generation"] for g in after], [0, 1, 2])
        self.assertEqual(after[2]["collections"] - before[2]["collections"], 1)
        # gc.collect() returns the unreachable objects it found, freed or not.
        freed = after[2]["collected"] - before[2]["collected"]
        stuck = after[2]["uncollectable"] - before[2]["uncollectable"]
        self.assertEqual(freed + stuck, found)
        self.assertGreaterEqual(freed, 250)
        self.assertGreater(after[2]["seconds"], before[2]["seconds"])
        self.assertGreater(after[2]["longest_seconds"], 0)
        for g, limit in enumerate(gc.get_threshold()):
            self.assertEqual(after[g]["threshold"], limit)

    def test_the_figures_reach_the_reports(self):
        gc.collect()
        with tempfile.TemporaryDirectory() as folder:
            memlens.write_report(os.path.join(folder, "r.json"))
            memlens.write_report(os.path.join(folder, "r.txt"))
            with open(os.path.join(folder, "r.json")) as f:
                collector = json.load(f)["collector"]
            with open(os.path.join(folder, "r.txt")) as f:
                text = f.read()
        self.assertEqual([g["generation"] for g in collector], [0, 1, 2])
        self.assertGreaterEqual(collector[2]["collections"], 1)
        self.assertIn("Garbage collector", text)

    def test_gc_holds_one_memlens_callback(self):
        names = [getattr(c, "__name__", "") for c in gc.callbacks]
        self.assertEqual(names.count("memlens_gc_callback"), 1)


class Pools(unittest.TestCase):
    def test_arenas_count_beside_the_domains(self):
        before = memlens.pools()["python.arenas"]
        small = [(i, i) for i in range(300_000)]
        after = memlens.pools()["python.arenas"]
        self.assertGreater(after["current"] - before["current"], 16 << 20)
        self.assertEqual(after["allocs"] - after["frees"] > 0, True)
        self.assertEqual(len(small), 300_000)


class ObjectTypes(unittest.TestCase):
    def test_counts_are_gc_get_objects_tallied_by_type(self):
        blobs = [Blob() for _ in range(1000)]
        counts = dict(memlens.most_common_types(None))
        tally = {}
        for o in gc.get_objects():
            tally[type(o).__name__] = tally.get(type(o).__name__, 0) + 1
        self.assertEqual(counts["Blob"], 1000)
        self.assertEqual(tally["Blob"], 1000)
        self.assertEqual(counts.get("Cycle", 0), tally.get("Cycle", 0))
        top = memlens.most_common_types(3)
        self.assertEqual(len(top), 3)
        self.assertEqual([n for _, n in top], sorted((n for _, n in top), reverse=True))
        self.assertEqual(len(blobs), 1000)

    def test_a_checkpoint_names_the_type_that_grew(self):
        checkpoint = memlens.type_checkpoint()
        kept = [GrowingBlob() for _ in range(123)]
        growth = checkpoint.growth(None)
        self.assertIn(("GrowingBlob", 123, 123), growth)
        checkpoint.reset()
        self.assertNotIn("GrowingBlob", [name for name, _, _ in checkpoint.growth(None)])
        kept.extend(GrowingBlob() for _ in range(7))
        self.assertIn(("GrowingBlob", 130, 7), checkpoint.growth(None))

    def test_bad_limits(self):
        with self.assertRaisesRegex(ValueError, "limit must be a whole number"):
            memlens.most_common_types(-1)
        with self.assertRaisesRegex(ValueError, "limit must be a whole number"):
            memlens.type_checkpoint().growth("ten")


class Documentation(unittest.TestCase):
    def test_everything_public_has_a_docstring(self):
        self.assertTrue(memlens.__doc__)
        for name in dir(memlens):
            if name.startswith("_"):
                continue
            self.assertTrue(getattr(memlens, name).__doc__, name)
        for name in ("allocated", "freed", "net", "peak", "allocs", "frees", "name", "usage", "__exit__"):
            self.assertTrue(getattr(memlens.Scope, name).__doc__, name)


if __name__ == "__main__":
    gc.collect()
    unittest.main()
