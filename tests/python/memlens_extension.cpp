// The memlens module built as a CPython extension in a folder of its own, where nothing else can
// be imported by mistake: tests/python/module_test.py imports it from Debian's python3.
#include <memlens/python_module.hpp>

PyMODINIT_FUNC PyInit_memlens() { return memlens::python_module(); }
