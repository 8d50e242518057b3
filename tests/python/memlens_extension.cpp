// The memlens module built as a CPython extension: tests/python/module_test.py imports it from
// Debian's python3. Its copy of memlens is its own (one state per process across shared objects
// is not built yet): it installs the Python allocator hooks and counts the python.* domains.
#include <memlens/python_module.hpp>

PyMODINIT_FUNC PyInit_memlens() { return memlens::python_module(); }
