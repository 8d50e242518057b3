// A CPython extension module with its own copy of memlens's operator new hooks, as an extension
// built with the headers has: CPython opens it RTLD_LOCAL, so its hooks are not the process's
// operator new. Importing it and using C++ containers in it must neither crash nor corrupt the
// heap; tests/hosts/import_module.py drives it from Debian's python3.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <memlens/sources/new.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

// Builds and drops C++ containers; returns a figure computed from them so that none is elided.
PyObject* churn(PyObject*, PyObject* args) {
    int rounds = 0;
    if (!PyArg_ParseTuple(args, "i", &rounds)) return nullptr;
    long long total = 0;
    for (int i = 0; i < rounds; ++i) {
        std::map<std::string, std::vector<int>> table;
        for (int k = 0; k < 50; ++k) table[std::string(40, static_cast<char>('a' + k % 26)) + std::to_string(k)].assign(k, k);
        auto owned = std::make_unique<std::string>(100, 'z');
        for (const auto& [key, values] : table) total += static_cast<long long>(key.size() + values.size());
        total += static_cast<long long>(owned->size());
    }
    return PyLong_FromLongLong(total);
}

// 0 undecided, 1 the process's operator new, 2 a bystander; see sources/heap.hpp.
PyObject* hooks_role(PyObject*, PyObject*) {
    return PyLong_FromLong(static_cast<long>(memlens::detail::heap_role.load()));
}

PyMethodDef methods[] = {
    {"churn", churn, METH_VARARGS, "Build and drop C++ containers; returns a figure from them."},
    {"hooks_role", hooks_role, METH_NOARGS, "The role memlens's hooks in this module took."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "memlens_probe", nullptr, -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit_memlens_probe() { return PyModule_Create(&module); }
