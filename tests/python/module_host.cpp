// A host that embeds CPython with memlens's hooks on its operator new and on Python's allocators,
// registers the memlens module and runs the script it is given: tests/python/module_test.py, the
// tests the extension module passes in Debian's python3, here with the module built into the
// program and with the sanitizers of the build.
#include <memlens/python_module.hpp>
#include <memlens/sources/new.hpp>

#include <cstdio>

// CPython 3.11 keeps some of its start-up allocations to the end (see tests/python/python_test.cpp);
// their stacks are libpython's alone.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpython3"; }

int main(int argc, char** argv) {
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    PyStatus status = Py_PreInitialize(&pre);
    if (PyStatus_Exception(status)) Py_ExitStatusException(status);
    if (!memlens::install_python_hooks() || !memlens::register_python_module()) {
        std::fprintf(stderr, "module_host: cannot install the hooks or register the module\n");
        return 1;
    }
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) Py_ExitStatusException(status);
    return Py_RunMain();
}
