// The memlens module for the Python interpreters that memlens-run starts (python_module.hpp),
// imported by tools/preload/sitecustomize.py.
#include <memlens/python_module.hpp>

PyMODINIT_FUNC PyInit_memlens() { return memlens::python_module(); }
