"""Put ahead of the interpreter's own sitecustomize by memlens-run: importing memlens wraps
CPython's allocators with memlens's hooks, which join the preloaded library's state, so that the
report shows Python's allocations in the python.* domains and Python frames in the stacks. The
sitecustomize this one hides runs after it."""
import importlib.machinery
import importlib.util
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))

try:
    import memlens  # noqa: F401
except ImportError as error:
    # Another Python than the one the module was built for: the preloaded library still counts
    # its native allocations.
    sys.stderr.write(f"memlens: Python's allocators are not wrapped in this interpreter: {error}\n")

_others = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != _here]
_spec = importlib.machinery.PathFinder.find_spec("sitecustomize", _others)
if _spec is not None and _spec.loader is not None:
    _hidden = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_hidden)
