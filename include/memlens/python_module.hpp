// memlens/python_module.hpp: the `memlens` module for Python code: figures, scopes and
// profiled functions, snapshots and their differences, reports, memory limits for tests, and the
// footprint of a value. A host registers it before starting the interpreter; an extension module
// returns it from its PyInit_memlens. Needs <Python.h> of CPython 3.10 or later; no other memlens
// header includes this one.
#pragma once

// CPython asks to come before any standard header: it sets feature macros they read.
#include "detail/python_headers.hpp"

// Types that cannot be instantiated from Python (Py_TPFLAGS_DISALLOW_INSTANTIATION) are 3.10's.
#if PY_VERSION_HEX < 0x030A0000
#error "memlens/python_module.hpp needs CPython 3.10 or later"
#endif

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/counters.hpp"
#include "detail/format.hpp"
#include "observe/named_scope.hpp"
#include "observe/scope.hpp"
#include "observe/sites.hpp"
#include "sources/heap.hpp"
#include "sources/numpy.hpp"
#include "sources/python.hpp"
#include "view/report.hpp"
#include "view/snapshot.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail { namespace pymod {

// Everything here runs with the GIL held, called from Python code: it allocates freely, and none
// of it is reached from a hook.

// A Python name given to a scope: one scope_site per name for the life of the process, because
// the list of named scopes keeps pointers to its sites and their strings.
struct python_site {
    std::string name;
    std::string file;
    std::string function;
    scope_site site;

    python_site(std::string n, std::string f, unsigned line, std::string fn)
        : name(std::move(n)), file(std::move(f)), function(std::move(fn)),
          site(name.c_str(), file.c_str(), line, function.c_str()) {}
};

// Never destroyed, for the reason above; the GIL orders every access.
MEMLENS_DETAIL_PER_COPY inline std::map<std::string, python_site*>* python_sites = nullptr;

inline scope_site& site_named(const std::string& name, const std::string& file, unsigned line,
                              const std::string& function) {
    if (!python_sites) python_sites = new std::map<std::string, python_site*>();
    python_site*& entry = (*python_sites)[name];
    if (!entry) entry = new python_site(name, file, line, function);
    return entry->site;
}

// The types of the module most recently created; each interpreter start creates them anew.
MEMLENS_DETAIL_PER_COPY inline PyTypeObject* scope_type = nullptr;
MEMLENS_DETAIL_PER_COPY inline PyTypeObject* enter_type = nullptr;
MEMLENS_DETAIL_PER_COPY inline PyTypeObject* descriptor_type = nullptr;
MEMLENS_DETAIL_PER_COPY inline PyTypeObject* profiled_type = nullptr;
MEMLENS_DETAIL_PER_COPY inline PyTypeObject* snapshot_type = nullptr;
MEMLENS_DETAIL_PER_COPY inline PyTypeObject* checkpoint_type = nullptr;

inline PyObject* fail(PyObject* kind, const std::string& message) {
    PyErr_SetString(kind, message.c_str());
    return nullptr;
}

// A C++ exception from memlens as the Python exception a caller expects, with its message.
inline PyObject* from_exception() {
    try {
        throw;
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    } catch (const std::invalid_argument& e) {
        return fail(PyExc_ValueError, e.what());
    } catch (const std::exception& e) {
        return fail(PyExc_RuntimeError, e.what());
    }
}

// A new list of `make(row)` for each of `rows`, or null with the error set by the first that
// failed.
template <class Rows, class Make>
PyObject* python_list(const Rows& rows, Make make) {
    PyObject* out = PyList_New(0);
    if (!out) return nullptr;
    for (const auto& r : rows) {
        PyObject* item = make(r);
        if (!item || PyList_Append(out, item) != 0) {
            Py_XDECREF(item);
            Py_DECREF(out);
            return nullptr;
        }
        Py_DECREF(item);
    }
    return out;
}

inline PyObject* stats_dict(const memory_stats& s) {
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K}", "current", static_cast<unsigned long long>(s.current),
                         "peak", static_cast<unsigned long long>(s.peak), "total",
                         static_cast<unsigned long long>(s.total), "allocs",
                         static_cast<unsigned long long>(s.allocs), "frees",
                         static_cast<unsigned long long>(s.frees));
}

inline PyObject* usage_dict(const block_usage& u) {
    return Py_BuildValue("{s:K,s:K,s:L,s:K,s:K,s:K}", "allocated",
                         static_cast<unsigned long long>(u.allocated), "freed",
                         static_cast<unsigned long long>(u.freed), "net", static_cast<long long>(u.net),
                         "peak", static_cast<unsigned long long>(u.peak), "allocs",
                         static_cast<unsigned long long>(u.allocs), "frees",
                         static_cast<unsigned long long>(u.frees));
}

// The names the process has, for an error message that lists them.
inline std::string known_domains() {
    std::string out;
    for (const domain_stats& d : domains()) {
        if (!out.empty()) out += ", ";
        out += d.domain.name();
    }
    return out;
}

// An existing domain by name: looking it up must not register a new one, as domain::named would.
inline bool find_domain(const std::string& name, domain& out) {
    for (const domain_stats& d : domains()) {
        if (d.domain.name() == name) {
            out = d.domain;
            return true;
        }
    }
    return false;
}

// A byte count as a limit: an int, or a string such as "24 MB" (B, KB, MB, GB, TB in powers
// of 1000; KiB, MiB, GiB, TiB in powers of 1024). False, with a ValueError or TypeError set.
inline bool parse_bytes(PyObject* value, const char* who, std::uint64_t& out) {
    if (PyLong_Check(value)) {
        const unsigned long long n = PyLong_AsUnsignedLongLong(value);
        if (PyErr_Occurred()) {
            PyErr_Clear();
            fail(PyExc_ValueError, std::string(who) + ": the limit must be a byte count of 0 or more");
            return false;
        }
        out = n;
        return true;
    }
    if (!PyUnicode_Check(value)) {
        fail(PyExc_TypeError, std::string(who) + ": the limit must be an int or a string such as \"24 MB\", not " +
                                  Py_TYPE(value)->tp_name);
        return false;
    }
    const char* text = PyUnicode_AsUTF8(value);
    if (!text) return false;
    const std::string s(text);
    const auto bad = [&] {
        fail(PyExc_ValueError, std::string(who) + ": cannot read \"" + s +
                                   "\" as a size: write a number and a unit, e.g. \"24 MB\" (B, KB, MB, "
                                   "GB, TB: powers of 1000; KiB, MiB, GiB, TiB: powers of 1024)");
        return false;
    };
    std::size_t i = 0;
    double number = 0;
    try {
        number = std::stod(s, &i);
    } catch (const std::exception&) {
        return bad();
    }
    while (i < s.size() && s[i] == ' ') ++i;
    std::string unit;
    for (; i < s.size(); ++i) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    static const std::pair<const char*, double> units[] = {
        {"", 1},          {"b", 1},         {"kb", 1e3},       {"mb", 1e6},
        {"gb", 1e9},      {"tb", 1e12},     {"kib", 1024.0},   {"mib", 1048576.0},
        {"gib", 1073741824.0}, {"tib", 1099511627776.0}};
    for (const auto& [name, scale] : units) {
        if (unit != name) continue;
        const double bytes = number * scale;
        if (!(bytes >= 0) || bytes > 1.8e19) return bad();
        out = static_cast<std::uint64_t>(bytes + 0.5);
        return true;
    }
    return bad();
}

// The text of a str; "" for anything else, or for a str that is not valid UTF-8.
inline std::string text_of(PyObject* o) {
    const char* u = o && PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : nullptr;
    if (u) return u;
    PyErr_Clear();
    return {};
}

// The Python frame's file, line and function, for a scope's site.
inline void caller_place(std::string& file, unsigned& line, std::string& function) {
    PyFrameObject* frame = PyEval_GetFrame();
    if (!frame) return;
    line = static_cast<unsigned>(PyFrame_GetLineNumber(frame));
    PyCodeObject* code = PyFrame_GetCode(frame);
    PyObject* c = reinterpret_cast<PyObject*>(code);
    if (PyObject* f = PyObject_GetAttrString(c, "co_filename")) {
        file = text_of(f);
        Py_DECREF(f);
    }
    if (PyObject* n = PyObject_GetAttrString(c, "co_name")) {
        function = text_of(n);
        Py_DECREF(n);
    }
    Py_DECREF(code);
    PyErr_Clear();
}

// ---- scope, limit_memory, limit_leaks -------------------------------------------------------

enum class limit_kind { none, peak, leaks };

struct scope_state {
    scope_site* site = nullptr;  // null for an unnamed scope
    limit_kind limit = limit_kind::none;
    std::uint64_t limit_bytes = 0;
    std::optional<scope> open;  // while a with block runs
    block_usage last{};         // the last closed block or decorated call
    PyObject* enter = nullptr;  // the enter_call the with statement calls; owned
};

struct py_scope {
    PyObject_HEAD
    scope_state state;
};

// What `with` calls for __enter__. CPython binds a method anew at each lookup and frees the bound
// method once __enter__ returns, which is inside the scope: one free that the block did not do.
// This object is made with the scope object and handed out as is, so the with statement itself
// neither allocates nor frees inside the scope.
struct py_enter {
    PyObject_HEAD
    py_scope* owner;  // borrowed: the owner clears it before it goes
};

struct py_descriptor {
    PyObject_HEAD
};

// A function run inside a new thread scope at every call.
struct py_profiled {
    PyObject_HEAD
    PyObject* function;
    py_scope* scope;
    PyObject* dict;  // for functools.update_wrapper
};

inline const char* limit_name(limit_kind k) {
    return k == limit_kind::peak ? "memlens.limit_memory" : "memlens.limit_leaks";
}

// Raises AssertionError, false, when `u` breaks the limit of `s`.
inline bool within_limit(const scope_state& s, const block_usage& u) {
    if (s.limit == limit_kind::none) return true;
    const bool peak = s.limit == limit_kind::peak;
    const std::int64_t measured = peak ? static_cast<std::int64_t>(u.peak) : u.net;
    if (measured <= static_cast<std::int64_t>(s.limit_bytes)) return true;
    const std::uint64_t over = static_cast<std::uint64_t>(measured) - s.limit_bytes;
    const std::string message =
        std::string(limit_name(s.limit)) + ": " + (peak ? "peak " : "leaked (net) ") +
        describe_bytes(static_cast<std::uint64_t>(measured)) + " is " + describe_bytes(over) +
        " over the limit of " + describe_bytes(s.limit_bytes) + "; the block allocated " +
        describe_bytes(u.allocated) + " in " + std::to_string(u.allocs) + plural(u.allocs, " block", " blocks") +
        " and freed " + describe_bytes(u.freed) + " in " + std::to_string(u.frees) + plural(u.frees, " block", " blocks");
    fail(PyExc_AssertionError, message);
    return false;
}

inline void closed(scope_state& s, const block_usage& u) {
    if (s.site) s.site->add(u);
    s.last = u;
}

inline py_scope* new_scope(scope_site* site, limit_kind limit, std::uint64_t limit_bytes) {
    auto* self = PyObject_New(py_scope, scope_type);
    if (!self) return nullptr;
    new (&self->state) scope_state();
    self->state.site = site;
    self->state.limit = limit;
    self->state.limit_bytes = limit_bytes;
    auto* enter = PyObject_New(py_enter, enter_type);
    if (!enter) {
        Py_DECREF(self);
        return nullptr;
    }
    enter->owner = self;
    self->state.enter = reinterpret_cast<PyObject*>(enter);
    return self;
}

inline void scope_dealloc(PyObject* o) {
    auto* self = reinterpret_cast<py_scope*>(o);
    if (auto* enter = reinterpret_cast<py_enter*>(self->state.enter)) {
        enter->owner = nullptr;
        Py_DECREF(enter);
    }
    self->state.~scope_state();
    PyTypeObject* type = Py_TYPE(o);
    PyObject_Free(o);
    Py_DECREF(type);
}

inline PyObject* enter_call(PyObject* o, PyObject* args, PyObject* kwargs) {
    py_scope* owner = reinterpret_cast<py_enter*>(o)->owner;
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs && PyDict_GET_SIZE(kwargs) != 0)) {
        return fail(PyExc_TypeError, "__enter__() takes no arguments");
    }
    if (!owner) return fail(PyExc_RuntimeError, "memlens: this scope object no longer exists");
    if (owner->state.open) {
        return fail(PyExc_RuntimeError, "memlens: this scope is already open; make a new scope object "
                                        "for a nested block");
    }
    Py_INCREF(owner);
    // Last: nothing after it may allocate before the block runs.
    owner->state.open.emplace(scope_kind::thread);
    return reinterpret_cast<PyObject*>(owner);
}

inline void enter_dealloc(PyObject* o) {
    PyTypeObject* type = Py_TYPE(o);
    PyObject_Free(o);
    Py_DECREF(type);
}

inline PyObject* descriptor_get(PyObject* self, PyObject* instance, PyObject*) {
    if (!instance || instance == Py_None) {
        Py_INCREF(self);
        return self;
    }
    if (!PyObject_TypeCheck(instance, scope_type)) {
        return fail(PyExc_TypeError, "memlens: __enter__ belongs to memlens scope objects");
    }
    PyObject* enter = reinterpret_cast<py_scope*>(instance)->state.enter;
    Py_INCREF(enter);
    return enter;
}

inline void descriptor_dealloc(PyObject* o) { enter_dealloc(o); }

// METH_FASTCALL: a tuple of the three arguments would be made while the scope is still open.
inline PyObject* scope_exit(PyObject* o, PyObject* const* args, Py_ssize_t nargs) {
    auto* self = reinterpret_cast<py_scope*>(o);
    if (!self->state.open) return fail(PyExc_RuntimeError, "memlens: __exit__ without __enter__");
    // First: nothing may allocate between the end of the block and the reading of its figures.
    const block_usage u = self->state.open->usage();
    self->state.open.reset();
    closed(self->state, u);
    // An exception from the block goes on as it is; limits judge blocks that completed.
    const bool raised = nargs > 0 && args[0] != Py_None;
    if (!raised && !within_limit(self->state, u)) return nullptr;
    Py_RETURN_FALSE;
}

inline block_usage current_usage(const scope_state& s) { return s.open ? s.open->usage() : s.last; }

// `which` picks the figure, in the order of block_usage's members.
inline PyObject* scope_figure(PyObject* o, void* which) {
    const block_usage u = current_usage(reinterpret_cast<py_scope*>(o)->state);
    switch (reinterpret_cast<std::uintptr_t>(which)) {
    case 0: return PyLong_FromUnsignedLongLong(u.allocated);
    case 1: return PyLong_FromUnsignedLongLong(u.freed);
    case 2: return PyLong_FromLongLong(u.net);
    case 3: return PyLong_FromUnsignedLongLong(u.peak);
    case 4: return PyLong_FromUnsignedLongLong(u.allocs);
    default: return PyLong_FromUnsignedLongLong(u.frees);
    }
}

inline PyObject* scope_name(PyObject* o, void*) {
    const scope_site* site = reinterpret_cast<py_scope*>(o)->state.site;
    if (!site) Py_RETURN_NONE;
    return PyUnicode_FromString(site->name());
}

inline PyObject* scope_usage(PyObject* o, PyObject*) {
    return usage_dict(current_usage(reinterpret_cast<py_scope*>(o)->state));
}

inline PyObject* scope_repr(PyObject* o) {
    const scope_state& s = reinterpret_cast<py_scope*>(o)->state;
    const block_usage u = current_usage(s);
    std::string text = "<memlens.Scope";
    if (s.site) text += std::string(" '") + s.site->name() + "'";
    if (s.limit != limit_kind::none) {
        text += std::string(s.limit == limit_kind::peak ? " peak" : " net") + " limit " +
                std::to_string(s.limit_bytes);
    }
    text += (s.open ? " open: " : ": ") + std::to_string(u.allocated) + " bytes in, " +
            std::to_string(u.freed) + " out, net " + std::to_string(u.net) + ", peak " +
            std::to_string(u.peak) + ">";
    return PyUnicode_FromString(text.c_str());
}

// ---- profiled functions ---------------------------------------------------------------------

inline PyObject* wrap(py_scope* scope, PyObject* function) {
    if (!PyCallable_Check(function)) {
        return fail(PyExc_TypeError, std::string("memlens: a scope decorates a callable, not ") +
                                         Py_TYPE(function)->tp_name);
    }
    auto* self = PyObject_GC_New(py_profiled, profiled_type);
    if (!self) return nullptr;
    Py_INCREF(function);
    Py_INCREF(scope);
    self->function = function;
    self->scope = scope;
    self->dict = nullptr;
    PyObject_GC_Track(self);
    PyObject* wrapper = reinterpret_cast<PyObject*>(self);
    PyObject* functools = PyImport_ImportModule("functools");
    PyObject* done = functools ? PyObject_CallMethod(functools, "update_wrapper", "OO", wrapper, function) : nullptr;
    Py_XDECREF(functools);
    if (!done) {
        Py_DECREF(wrapper);
        return nullptr;
    }
    Py_DECREF(done);
    return wrapper;
}

inline PyObject* scope_call(PyObject* o, PyObject* args, PyObject* kwargs) {
    PyObject* function = nullptr;
    if (kwargs && PyDict_GET_SIZE(kwargs) != 0) return fail(PyExc_TypeError, "memlens: a scope decorates one function");
    if (!PyArg_UnpackTuple(args, "scope", 1, 1, &function)) return nullptr;
    return wrap(reinterpret_cast<py_scope*>(o), function);
}

inline PyObject* profiled_call(PyObject* o, PyObject* args, PyObject* kwargs) {
    auto* self = reinterpret_cast<py_profiled*>(o);
    // Cleared by the collector while in a cycle of garbage; a finalizer may still reach it.
    if (!self->function || !self->scope) return fail(PyExc_RuntimeError, "memlens: this profiled function was collected");
    PyObject* result = nullptr;
    block_usage u{};
    {
        const scope measuring;
        result = PyObject_Call(self->function, args, kwargs);
        u = measuring.usage();
    }
    closed(self->scope->state, u);
    if (result && !within_limit(self->scope->state, u)) Py_CLEAR(result);
    return result;
}

inline PyObject* profiled_get(PyObject* self, PyObject* instance, PyObject*) {
    if (!instance || instance == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, instance);
}

inline int profiled_traverse(PyObject* o, visitproc visit, void* arg) {
    auto* self = reinterpret_cast<py_profiled*>(o);
    Py_VISIT(Py_TYPE(o));
    Py_VISIT(self->function);
    Py_VISIT(self->scope);
    Py_VISIT(self->dict);
    return 0;
}

inline int profiled_clear(PyObject* o) {
    auto* self = reinterpret_cast<py_profiled*>(o);
    Py_CLEAR(self->function);
    Py_CLEAR(self->scope);
    Py_CLEAR(self->dict);
    return 0;
}

inline void profiled_dealloc(PyObject* o) {
    PyTypeObject* type = Py_TYPE(o);
    PyObject_GC_UnTrack(o);
    profiled_clear(o);
    PyObject_GC_Del(o);
    Py_DECREF(type);
}

inline PyObject* profiled_scope(PyObject* o, void*) {
    PyObject* scope = reinterpret_cast<PyObject*>(reinterpret_cast<py_profiled*>(o)->scope);
    if (!scope) Py_RETURN_NONE;
    Py_INCREF(scope);
    return scope;
}

// ---- snapshots ------------------------------------------------------------------------------

struct py_snapshot {
    PyObject_HEAD
    snapshot* data;
};

struct py_checkpoint {
    PyObject_HEAD
    python_object_checkpoint* data;
};

inline void snapshot_dealloc(PyObject* o) {
    delete reinterpret_cast<py_snapshot*>(o)->data;
    PyTypeObject* type = Py_TYPE(o);
    PyObject_Free(o);
    Py_DECREF(type);
}

inline bool parse_group(const char* by, group_by& out) {
    static const std::pair<const char*, group_by> names[] = {
        {"site", group_by::site}, {"function", group_by::function}, {"file", group_by::file},
        {"line", group_by::line}, {"domain", group_by::domain},     {"traceback", group_by::traceback}};
    for (const auto& [name, value] : names) {
        if (std::string(by) == name) {
            out = value;
            return true;
        }
    }
    fail(PyExc_ValueError, std::string("memlens: cannot group by \"") + by +
                               "\": by is one of site, function, file, line, domain, traceback");
    return false;
}

inline PyObject* snapshot_domains(PyObject* o, void*) {
    PyObject* out = PyDict_New();
    if (!out) return nullptr;
    for (const domain_figures& d : reinterpret_cast<py_snapshot*>(o)->data->domains) {
        PyObject* figures = stats_dict(d.figures);
        if (!figures || PyDict_SetItemString(out, d.name.c_str(), figures) != 0) {
            Py_XDECREF(figures);
            Py_DECREF(out);
            return nullptr;
        }
        Py_DECREF(figures);
    }
    return out;
}

inline PyObject* snapshot_totals(PyObject* o, void*) {
    return stats_dict(reinterpret_cast<py_snapshot*>(o)->data->totals);
}

inline PyObject* snapshot_mode(PyObject* o, void*) {
    return PyUnicode_FromString(reinterpret_cast<py_snapshot*>(o)->data->run.mode.c_str());
}

inline PyObject* snapshot_statistics(PyObject* o, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"by", nullptr};
    const char* by = "site";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|s:statistics", const_cast<char**>(keywords), &by)) return nullptr;
    group_by group{};
    if (!parse_group(by, group)) return nullptr;
    try {
        const std::vector<statistic> rows = statistics(*reinterpret_cast<py_snapshot*>(o)->data, group);
        return python_list(rows, [](const statistic& r) {
            return Py_BuildValue("{s:s,s:K,s:K,s:O}", "key", r.key.c_str(), "bytes",
                                 static_cast<unsigned long long>(r.bytes), "count",
                                 static_cast<unsigned long long>(r.count), "estimated",
                                 r.estimated ? Py_True : Py_False);
        });
    } catch (...) {
        return from_exception();
    }
}

// ---- module functions -----------------------------------------------------------------------

inline PyObject* m_stats(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"domain", nullptr};
    PyObject* name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:stats", const_cast<char**>(keywords), &name)) return nullptr;
    if (name == Py_None) return stats_dict(stats());
    if (!PyUnicode_Check(name)) {
        return fail(PyExc_TypeError, std::string("memlens.stats: domain must be a str or None, not ") +
                                         Py_TYPE(name)->tp_name);
    }
    const char* text = PyUnicode_AsUTF8(name);
    if (!text) return nullptr;
    domain d = domain::heap();
    if (!find_domain(text, d)) {
        return fail(PyExc_ValueError, std::string("memlens.stats: no domain is named \"") + text +
                                          "\"; the domains are " + known_domains());
    }
    return stats_dict(stats(d));
}

inline PyObject* m_domains(PyObject*, PyObject*) {
    PyObject* out = PyDict_New();
    if (!out) return nullptr;
    for (const domain_stats& d : domains()) {
        PyObject* figures = stats_dict(d.stats);
        const std::string name(d.domain.name());
        if (!figures || PyDict_SetItemString(out, name.c_str(), figures) != 0) {
            Py_XDECREF(figures);
            Py_DECREF(out);
            return nullptr;
        }
        Py_DECREF(figures);
    }
    return out;
}

// Why numpy's buffers cannot be counted goes through the error handler (standard error by
// default); Python code checks the result.
inline PyObject* m_count_numpy_buffers(PyObject*, PyObject*) { return PyBool_FromLong(install_numpy_hooks()); }

inline PyObject* m_forward_to_tracemalloc(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"domain", nullptr};
    unsigned int domain = tracemalloc_native_domain;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|I:forward_to_tracemalloc", const_cast<char**>(keywords),
                                     &domain)) {
        return nullptr;
    }
    return PyBool_FromLong(start_tracemalloc_forwarding(domain));
}

inline PyObject* m_stop_forwarding_to_tracemalloc(PyObject*, PyObject*) {
    stop_tracemalloc_forwarding();
    Py_RETURN_NONE;
}

inline PyObject* m_flush_to_tracemalloc(PyObject*, PyObject*) {
    return PyLong_FromSize_t(flush_tracemalloc_forwarding());
}

inline PyObject* m_tracemalloc_forwarding(PyObject*, PyObject*) {
    const tracemalloc_forwarding_figures f = tracemalloc_forwarding();
    return Py_BuildValue("{s:K,s:K,s:K,s:K}", "queued", static_cast<unsigned long long>(f.queued), "handed",
                         static_cast<unsigned long long>(f.handed), "ignored",
                         static_cast<unsigned long long>(f.ignored), "dropped",
                         static_cast<unsigned long long>(f.dropped));
}

inline PyObject* m_pools(PyObject*, PyObject*) {
    PyObject* out = PyDict_New();
    if (!out) return nullptr;
    for (const domain_figures& p : pool_figures()) {
        PyObject* figures = stats_dict(p.figures);
        if (!figures || PyDict_SetItemString(out, p.name.c_str(), figures) != 0) {
            Py_XDECREF(figures);
            Py_DECREF(out);
            return nullptr;
        }
        Py_DECREF(figures);
    }
    return out;
}

inline PyObject* m_reset_peak(PyObject*, PyObject*) {
    reset_peak();
    Py_RETURN_NONE;
}

inline PyObject* m_set_mode(PyObject*, PyObject* arg) {
    static const std::pair<const char*, tracking_mode> modes[] = {
        {"off", tracking_mode::off}, {"counters", tracking_mode::counters},
        {"sites", tracking_mode::sites}, {"sampled", tracking_mode::sampled}};
    if (!PyUnicode_Check(arg)) {
        return fail(PyExc_TypeError, std::string("memlens.set_mode: mode must be a str, not ") + Py_TYPE(arg)->tp_name);
    }
    const char* text = PyUnicode_AsUTF8(arg);
    if (!text) return nullptr;
    try {
        for (const auto& [name, mode] : modes) {
            if (std::string(text) != name) continue;
            tracking_config config = current_config();
            const char* previous = mode_name(static_cast<live_mode>(config.mode));
            config.mode = mode;
            if (!configure(config)) return fail(PyExc_RuntimeError, "memlens.set_mode: memlens refused the mode");
            return PyUnicode_FromString(previous);
        }
    } catch (...) {
        return from_exception();
    }
    return fail(PyExc_ValueError, std::string("memlens.set_mode: no mode \"") + text +
                                      "\"; the modes are off, counters, sites, sampled");
}

inline PyObject* m_scope(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"name", nullptr};
    PyObject* name = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:scope", const_cast<char**>(keywords), &name)) return nullptr;
    scope_site* site = nullptr;
    if (name != Py_None) {
        if (!PyUnicode_Check(name)) {
            return fail(PyExc_TypeError, std::string("memlens.scope: name must be a str or None, not ") +
                                             Py_TYPE(name)->tp_name);
        }
        const char* text = PyUnicode_AsUTF8(name);
        if (!text) return nullptr;
        if (*text == '\0') return fail(PyExc_ValueError, "memlens.scope: name must not be empty");
        std::string file, function;
        unsigned line = 0;
        caller_place(file, line, function);
        site = &site_named(text, file, line, function);
    }
    return reinterpret_cast<PyObject*>(new_scope(site, limit_kind::none, 0));
}

// The name, file, line and function of a callable, for the site of a profiled function.
inline scope_site* site_of(PyObject* function) {
    std::string name, file;
    unsigned line = 0;
    for (const char* attribute : {"__qualname__", "__name__"}) {
        PyObject* n = PyObject_GetAttrString(function, attribute);
        name = text_of(n);
        Py_XDECREF(n);
        if (!name.empty()) break;
    }
    if (name.empty()) name = Py_TYPE(function)->tp_name;
    if (PyObject* code = PyObject_GetAttrString(function, "__code__")) {
        if (PyObject* f = PyObject_GetAttrString(code, "co_filename")) {
            file = text_of(f);
            Py_DECREF(f);
        }
        if (PyObject* l = PyObject_GetAttrString(code, "co_firstlineno")) {
            line = static_cast<unsigned>(PyLong_AsUnsignedLong(l));
            Py_DECREF(l);
        }
        Py_DECREF(code);
    }
    PyErr_Clear();
    return &site_named(name, file, line, name);
}

inline PyObject* m_profile(PyObject* module, PyObject* arg) {
    if (PyUnicode_Check(arg)) {
        PyObject* args = PyTuple_Pack(1, arg);
        PyObject* out = args ? m_scope(module, args, nullptr) : nullptr;
        Py_XDECREF(args);
        return out;
    }
    if (!PyCallable_Check(arg)) {
        return fail(PyExc_TypeError, std::string("memlens.profile: decorates a callable, or takes a scope "
                                                 "name (str), not ") + Py_TYPE(arg)->tp_name);
    }
    py_scope* scope = new_scope(site_of(arg), limit_kind::none, 0);
    if (!scope) return nullptr;
    PyObject* out = wrap(scope, arg);
    Py_DECREF(scope);
    return out;
}

inline PyObject* make_limit(PyObject* arg, limit_kind kind) {
    std::uint64_t bytes = 0;
    if (!parse_bytes(arg, limit_name(kind), bytes)) return nullptr;
    return reinterpret_cast<PyObject*>(new_scope(nullptr, kind, bytes));
}

inline PyObject* m_limit_memory(PyObject*, PyObject* arg) { return make_limit(arg, limit_kind::peak); }
inline PyObject* m_limit_leaks(PyObject*, PyObject* arg) { return make_limit(arg, limit_kind::leaks); }

inline PyObject* m_scopes(PyObject*, PyObject*) {
    return python_list(named_scopes(), [](const named_scope_stats& s) {
        return Py_BuildValue("{s:s,s:s,s:I,s:s,s:K,s:K,s:K,s:L,s:K}", "name", s.name.c_str(), "file",
                             s.file.c_str(), "line", s.line, "function", s.function.c_str(), "calls",
                             static_cast<unsigned long long>(s.calls), "allocated",
                             static_cast<unsigned long long>(s.allocated), "allocs",
                             static_cast<unsigned long long>(s.allocs), "net", static_cast<long long>(s.net),
                             "max_peak", static_cast<unsigned long long>(s.max_peak));
    });
}

inline PyObject* m_snapshot(PyObject*, PyObject*) {
    auto* self = PyObject_New(py_snapshot, snapshot_type);
    if (!self) return nullptr;
    self->data = nullptr;
    try {
        self->data = new snapshot(take_snapshot());
    } catch (...) {
        Py_DECREF(self);
        return from_exception();
    }
    return reinterpret_cast<PyObject*>(self);
}

inline bool is_snapshot(PyObject* o, const char* who, const char* what) {
    if (PyObject_TypeCheck(o, snapshot_type)) return true;
    fail(PyExc_TypeError, std::string(who) + ": " + what + " must be a memlens.Snapshot (memlens.snapshot()), not " +
                              Py_TYPE(o)->tp_name);
    return false;
}

inline PyObject* m_compare(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"older", "newer", "by", nullptr};
    PyObject* older = nullptr;
    PyObject* newer = nullptr;
    const char* by = "site";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|s:compare", const_cast<char**>(keywords), &older, &newer, &by)) {
        return nullptr;
    }
    if (!is_snapshot(older, "memlens.compare", "older") || !is_snapshot(newer, "memlens.compare", "newer")) return nullptr;
    group_by group{};
    if (!parse_group(by, group)) return nullptr;
    const snapshot& a = *reinterpret_cast<py_snapshot*>(older)->data;
    const snapshot& b = *reinterpret_cast<py_snapshot*>(newer)->data;
    for (const snapshot* s : {&a, &b}) {
        if (s->run.mode != "sites" && s->run.mode != "sampled") {
            return fail(PyExc_ValueError, "memlens.compare: a snapshot taken in mode \"" + s->run.mode +
                                              "\" records no allocation to compare; call "
                                              "memlens.set_mode(\"sites\") before taking both");
        }
    }
    try {
        const std::vector<statistic_diff> rows = compare(a, b, group);
        return python_list(rows, [](const statistic_diff& r) {
            return Py_BuildValue("{s:s,s:K,s:L,s:K,s:L,s:O}", "key", r.key.c_str(), "bytes",
                                 static_cast<unsigned long long>(r.bytes), "bytes_diff",
                                 static_cast<long long>(r.bytes_diff), "count",
                                 static_cast<unsigned long long>(r.count), "count_diff",
                                 static_cast<long long>(r.count_diff), "estimated",
                                 r.estimated ? Py_True : Py_False);
        });
    } catch (...) {
        return from_exception();
    }
}

inline PyObject* m_write_report(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"path", "snapshot", "title", nullptr};
    PyObject* path = nullptr;
    PyObject* given = Py_None;
    const char* title = "memlens report";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|Os:write_report", const_cast<char**>(keywords), &path,
                                     &given, &title)) {
        return nullptr;
    }
    PyObject* text = PyOS_FSPath(path);
    if (!text) return nullptr;
    if (!PyUnicode_Check(text)) {
        Py_DECREF(text);
        return fail(PyExc_TypeError, "memlens.write_report: path must be a str or os.PathLike of str");
    }
    const char* utf8 = PyUnicode_AsUTF8(text);
    const std::string file = utf8 ? utf8 : "";
    Py_DECREF(text);
    if (!utf8) return nullptr;
    if (given != Py_None && !is_snapshot(given, "memlens.write_report", "snapshot")) return nullptr;
    try {
        if (given != Py_None) {
            write_report(*reinterpret_cast<py_snapshot*>(given)->data, file, title);
        } else {
            write_report(take_snapshot(), file, title);
        }
    } catch (const std::runtime_error& e) {
        // What write_report throws when the file cannot be written.
        return fail(PyExc_OSError, e.what());
    } catch (...) {
        return from_exception();
    }
    Py_RETURN_NONE;
}

inline PyObject* m_native_heap_counted(PyObject*, PyObject*) { return PyBool_FromLong(hooks_installed()); }

inline PyObject* m_gc_stats(PyObject*, PyObject*) {
    return python_list(collector_figures(), [](const collector_generation& g) {
        return Py_BuildValue("{s:I,s:K,s:K,s:K,s:L,s:d,s:d}", "generation", g.generation,
                             "collections", static_cast<unsigned long long>(g.collections),
                             "collected", static_cast<unsigned long long>(g.collected),
                             "uncollectable", static_cast<unsigned long long>(g.uncollectable),
                             "threshold", static_cast<long long>(g.threshold), "seconds", g.seconds,
                             "longest_seconds", g.longest_seconds);
    });
}

// A limit argument: a whole number from 0, or None for every row.
inline bool parse_limit(PyObject* value, const char* who, std::size_t& out) {
    if (value == nullptr || value == Py_None) {
        out = SIZE_MAX;
        return true;
    }
    const long long n = PyLong_Check(value) ? PyLong_AsLongLong(value) : -1;
    if (n < 0) {
        PyErr_Clear();
        fail(PyExc_ValueError, std::string(who) + ": limit must be a whole number from 0, or None");
        return false;
    }
    out = static_cast<std::size_t>(n);
    return true;
}

inline PyObject* m_most_common_types(PyObject*, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"limit", nullptr};
    PyObject* limit_arg = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:most_common_types", const_cast<char**>(keywords), &limit_arg)) {
        return nullptr;
    }
    std::size_t limit = 10;
    if (limit_arg && !parse_limit(limit_arg, "memlens.most_common_types", limit)) return nullptr;
    return python_list(python_object_counts(limit), [](const python_type_count& row) {
        return Py_BuildValue("(sK)", row.name.c_str(), static_cast<unsigned long long>(row.objects));
    });
}

inline void checkpoint_dealloc(PyObject* o) {
    delete reinterpret_cast<py_checkpoint*>(o)->data;
    PyTypeObject* type = Py_TYPE(o);
    PyObject_Free(o);
    Py_DECREF(type);
}

inline PyObject* m_type_checkpoint(PyObject*, PyObject*) {
    py_checkpoint* o = PyObject_New(py_checkpoint, checkpoint_type);
    if (!o) return nullptr;
    o->data = nullptr;
    try {
        o->data = new python_object_checkpoint();
    } catch (...) {
        Py_DECREF(o);
        return from_exception();
    }
    return reinterpret_cast<PyObject*>(o);
}

inline PyObject* checkpoint_growth(PyObject* o, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"limit", nullptr};
    PyObject* limit_arg = nullptr;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:growth", const_cast<char**>(keywords), &limit_arg)) {
        return nullptr;
    }
    std::size_t limit = 10;
    if (limit_arg && !parse_limit(limit_arg, "TypeCheckpoint.growth", limit)) return nullptr;
    return python_list(reinterpret_cast<py_checkpoint*>(o)->data->growth(limit), [](const type_growth& row) {
        return Py_BuildValue("(sKK)", row.name.c_str(), static_cast<unsigned long long>(row.instances),
                             static_cast<unsigned long long>(row.growth));
    });
}

inline PyObject* checkpoint_reset(PyObject* o, PyObject*) {
    reinterpret_cast<py_checkpoint*>(o)->data->reset();
    Py_RETURN_NONE;
}

// The python.* figures, one domain after another.
struct python_figures {
    memory_stats domain[3];
};

inline python_figures read_python() {
    python_figures out;
    for (std::size_t i = 0; i < 3; ++i) out.domain[i] = stats(python_domain(python_domains[i]));
    return out;
}

// Runs `factory` as footprint() says; null with an exception set on failure.
inline PyObject* measure_one(PyObject* factory) {
    if (!PyCallable_Check(factory)) {
        return fail(PyExc_TypeError, std::string("memlens.footprint: factory must be callable (e.g. "
                                                 "lambda: [0] * 1000), not ") + Py_TYPE(factory)->tp_name);
    }
    if (!install_python_hooks()) return fail(PyExc_RuntimeError, "memlens.footprint: cannot install the Python hooks");
    PyObject* gc = PyImport_ImportModule("gc");
    PyObject* collected = gc ? PyObject_CallMethod(gc, "collect", nullptr) : nullptr;
    Py_XDECREF(gc);
    if (!collected) return nullptr;
    Py_DECREF(collected);
    PyObject* warm = PyObject_CallNoArgs(factory);
    if (!warm) return nullptr;
    const python_figures before = read_python();
    PyObject* value = PyObject_CallNoArgs(factory);
    const python_figures after = read_python();
    if (!value) {
        Py_DECREF(warm);
        return nullptr;
    }
    PyObject* getsizeof = PySys_GetObject("getsizeof");
    PyObject* size = getsizeof ? PyObject_CallOneArg(getsizeof, value) : nullptr;
    Py_DECREF(value);
    Py_DECREF(warm);
    if (!size) {
        if (!PyErr_Occurred()) fail(PyExc_RuntimeError, "memlens.footprint: sys.getsizeof is missing");
        return nullptr;
    }
    std::int64_t bytes = 0, blocks = 0;
    PyObject* per_domain = PyDict_New();
    for (std::size_t i = 0; per_domain && i < 3; ++i) {
        const memory_stats& a = before.domain[i];
        const memory_stats& b = after.domain[i];
        const std::int64_t db = static_cast<std::int64_t>(b.total - a.total) -
                                static_cast<std::int64_t>((b.total - b.current) - (a.total - a.current));
        const std::int64_t dn = static_cast<std::int64_t>(b.allocs - a.allocs) - static_cast<std::int64_t>(b.frees - a.frees);
        bytes += db;
        blocks += dn;
        PyObject* pair = Py_BuildValue("(LL)", static_cast<long long>(db), static_cast<long long>(dn));
        if (!pair || PyDict_SetItemString(per_domain, python_domain_names[i], pair) != 0) Py_CLEAR(per_domain);
        Py_XDECREF(pair);
    }
    PyObject* out = per_domain ? Py_BuildValue("{s:L,s:L,s:O,s:O}", "bytes", static_cast<long long>(bytes), "blocks",
                                               static_cast<long long>(blocks), "getsizeof", size, "domains", per_domain)
                               : nullptr;
    Py_XDECREF(per_domain);
    Py_DECREF(size);
    return out;
}

inline PyObject* m_footprint(PyObject*, PyObject* factory) { return measure_one(factory); }

inline PyObject* m_compare_footprints(PyObject*, PyObject* factories) {
    if (!PyDict_Check(factories)) {
        return fail(PyExc_TypeError, std::string("memlens.compare_footprints: takes a dict of name: factory, not ") +
                                         Py_TYPE(factories)->tp_name);
    }
    struct row {
        long long bytes;
        PyObject* name;
        PyObject* figures;
    };
    std::vector<row> rows;
    PyObject* out = nullptr;
    PyObject* name = nullptr;
    PyObject* factory = nullptr;
    Py_ssize_t at = 0;
    bool ok = true;
    while (ok && PyDict_Next(factories, &at, &name, &factory)) {
        if (!PyUnicode_Check(name)) {
            fail(PyExc_TypeError, "memlens.compare_footprints: the names must be str");
            ok = false;
            break;
        }
        PyObject* figures = measure_one(factory);
        if (!figures) {
            ok = false;
            break;
        }
        Py_INCREF(name);
        rows.push_back({PyLong_AsLongLong(PyDict_GetItemString(figures, "bytes")), name, figures});
    }
    if (ok) {
        std::stable_sort(rows.begin(), rows.end(), [](const row& a, const row& b) { return a.bytes < b.bytes; });
        out = python_list(rows, [](const row& r) {
            return Py_BuildValue("{s:O,s:O,s:O,s:O}", "name", r.name, "bytes",
                                 PyDict_GetItemString(r.figures, "bytes"), "blocks",
                                 PyDict_GetItemString(r.figures, "blocks"), "getsizeof",
                                 PyDict_GetItemString(r.figures, "getsizeof"));
        });
    }
    for (const row& r : rows) {
        Py_DECREF(r.name);
        Py_DECREF(r.figures);
    }
    return out;
}

// ---- the module -----------------------------------------------------------------------------

inline PyObject* create_type(PyType_Spec& spec, PyTypeObject*& slot) {
    PyObject* type = PyType_FromSpec(&spec);
    slot = reinterpret_cast<PyTypeObject*>(type);
    return type;
}

inline PyObject* create_module() {
    static PyGetSetDef scope_getset[] = {
        {"name", scope_name, nullptr, "The scope's name; None for an unnamed scope or a limit.", nullptr},
        {"allocated", scope_figure, nullptr, "Bytes allocated in the block (in)", reinterpret_cast<void*>(0)},
        {"freed", scope_figure, nullptr, "Bytes freed in the block (out), memory from before it included",
         reinterpret_cast<void*>(1)},
        {"net", scope_figure, nullptr, "allocated - freed", reinterpret_cast<void*>(2)},
        {"peak", scope_figure, nullptr, "Highest net bytes reached during the block", reinterpret_cast<void*>(3)},
        {"allocs", scope_figure, nullptr, "Allocations in the block", reinterpret_cast<void*>(4)},
        {"frees", scope_figure, nullptr, "Frees in the block", reinterpret_cast<void*>(5)},
        {nullptr, nullptr, nullptr, nullptr, nullptr}};
    static PyMethodDef scope_methods[] = {
        {"__exit__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&scope_exit)), METH_FASTCALL,
         "Closes the block's scope; checks the limit, if any, when the block completed."},
        {"usage", scope_usage, METH_NOARGS,
         "The figures as a dict: allocated, freed, net, peak, allocs, frees (so far while open)."},
        {nullptr, nullptr, 0, nullptr}};
    static PyType_Slot scope_slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&scope_dealloc)},
        {Py_tp_call, reinterpret_cast<void*>(&scope_call)},
        {Py_tp_repr, reinterpret_cast<void*>(&scope_repr)},
        {Py_tp_getset, scope_getset},
        {Py_tp_methods, scope_methods},
        {Py_tp_doc, const_cast<char*>(
             "What a block allocates on this thread, every memlens domain together: a context manager "
             "(with memlens.scope(\"name\") as s:) and a decorator (@memlens.scope(\"name\")). The "
             "figures stay readable after the block; a decorated function's last call sets them.")},
        {0, nullptr}};
    static PyType_Spec scope_spec = {"memlens.Scope", sizeof(py_scope), 0,
                                     Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, scope_slots};

    static PyType_Slot enter_slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&enter_dealloc)},
        {Py_tp_call, reinterpret_cast<void*>(&enter_call)},
        {Py_tp_doc, const_cast<char*>("Opens its scope's block: what `with` calls for __enter__.")},
        {0, nullptr}};
    static PyType_Spec enter_spec = {"memlens._Enter", sizeof(py_enter), 0,
                                     Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, enter_slots};

    static PyType_Slot descriptor_slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&descriptor_dealloc)},
        {Py_tp_descr_get, reinterpret_cast<void*>(&descriptor_get)},
        {Py_tp_doc, const_cast<char*>("Gives each scope its own __enter__, made with it.")},
        {0, nullptr}};
    static PyType_Spec descriptor_spec = {"memlens._EnterDescriptor", sizeof(py_descriptor), 0,
                                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, descriptor_slots};

    static PyMemberDef profiled_members[] = {
        {"__dictoffset__", T_PYSSIZET, offsetof(py_profiled, dict), READONLY, nullptr},
        {nullptr, 0, 0, 0, nullptr}};
    static PyGetSetDef profiled_getset[] = {
        {"scope", profiled_scope, nullptr, "The scope whose figures the last call set.", nullptr},
        {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr}};
    static PyType_Slot profiled_slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&profiled_dealloc)},
        {Py_tp_call, reinterpret_cast<void*>(&profiled_call)},
        {Py_tp_descr_get, reinterpret_cast<void*>(&profiled_get)},
        {Py_tp_traverse, reinterpret_cast<void*>(&profiled_traverse)},
        {Py_tp_clear, reinterpret_cast<void*>(&profiled_clear)},
        {Py_tp_members, profiled_members},
        {Py_tp_getset, profiled_getset},
        {Py_tp_doc, const_cast<char*>("A function measured by a memlens scope at every call.")},
        {0, nullptr}};
    static PyType_Spec profiled_spec = {"memlens.ProfiledFunction", sizeof(py_profiled), 0,
                                        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                        profiled_slots};

    static PyGetSetDef snapshot_getset[] = {
        {"totals", snapshot_totals, nullptr, "Every domain together, as memlens.stats() gives it.", nullptr},
        {"domains", snapshot_domains, nullptr, "Each domain's figures, by name, as memlens.domains() gives them.",
         nullptr},
        {"mode", snapshot_mode, nullptr, "The tracking mode it was taken in: off, counters, sites or sampled.",
         nullptr},
        {nullptr, nullptr, nullptr, nullptr, nullptr}};
    static PyMethodDef snapshot_methods[] = {
        {"statistics", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&snapshot_statistics)),
         METH_VARARGS | METH_KEYWORDS,
         "statistics(by=\"site\") -> list of dicts (key, bytes, count, estimated): the live allocations "
         "recorded (sites or sampled mode), grouped by site, function, file, line, domain or traceback, "
         "largest first."},
        {nullptr, nullptr, 0, nullptr}};
    static PyType_Slot snapshot_slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&snapshot_dealloc)},
        {Py_tp_getset, snapshot_getset},
        {Py_tp_methods, snapshot_methods},
        {Py_tp_doc, const_cast<char*>("What was alive at one moment: memlens.snapshot() takes one.")},
        {0, nullptr}};
    static PyType_Spec snapshot_spec = {"memlens.Snapshot", sizeof(py_snapshot), 0,
                                        Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, snapshot_slots};

    static PyMethodDef functions[] = {
        {"stats", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&m_stats)), METH_VARARGS | METH_KEYWORDS,
         "stats(domain=None) -> dict of current, peak, total (bytes ever allocated), allocs, frees: exact "
         "figures of every domain together, or of the domain named (\"python.obj\", \"heap\", ...). "
         "ValueError for a name that is no domain."},
        {"domains", m_domains, METH_NOARGS, "domains() -> dict of each domain's name to its stats() dict."},
        {"reset_peak", m_reset_peak, METH_NOARGS,
         "reset_peak(): makes every peak equal to the current live bytes, as tracemalloc.reset_peak()."},
        {"set_mode", m_set_mode, METH_O,
         "set_mode(mode) -> the previous mode. \"sites\" records every allocation with its call stack, "
         "which snapshots, compare() and the reports' site tables need; \"sampled\" samples them; "
         "\"counters\" (the default) keeps exact figures only; \"off\" stops the native heap hooks."},
        {"scope", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&m_scope)), METH_VARARGS | METH_KEYWORDS,
         "scope(name=None) -> Scope: measures a with block, or each call of a function it decorates, "
         "on this thread: bytes in (allocated), out (freed), net, peak, allocs and frees. A name adds "
         "every pass to that name's totals (memlens.scopes(), the reports)."},
        {"profile", m_profile, METH_O,
         "profile(function) -> the function, measured at each call under its qualified name (@memlens."
         "profile); profile(\"name\") is scope(\"name\")."},
        {"scopes", m_scopes, METH_NOARGS,
         "scopes() -> list of dicts: each scope name's totals over its passes (calls, allocated, allocs, "
         "net, max_peak) and where it was first opened."},
        {"limit_memory", m_limit_memory, METH_O,
         "limit_memory(limit) -> Scope that raises AssertionError when its block (or each decorated "
         "call) reaches a peak above limit: an int of bytes or a str such as \"24 MB\" (B, KB, MB, GB: "
         "powers of 1000; KiB, MiB, GiB: of 1024)."},
        {"limit_leaks", m_limit_leaks, METH_O,
         "limit_leaks(limit) -> Scope that raises AssertionError when its block (or each decorated "
         "call) leaves more than limit bytes allocated (net). Limits as for limit_memory. Cyclic "
         "garbage counts until collected: call gc.collect() inside the block to leave it out."},
        {"snapshot", m_snapshot, METH_NOARGS,
         "snapshot() -> Snapshot: the figures now and, in sites or sampled mode, every live allocation "
         "recorded."},
        {"compare", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&m_compare)),
         METH_VARARGS | METH_KEYWORDS,
         "compare(older, newer, by=\"site\") -> list of dicts (key, bytes, bytes_diff, count, count_diff, "
         "estimated), largest growth first, as tracemalloc's Snapshot.compare_to. by: site, function, "
         "file, line, domain or traceback. Both snapshots must come from sites or sampled mode."},
        {"write_report", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&m_write_report)),
         METH_VARARGS | METH_KEYWORDS,
         "write_report(path, snapshot=None, title=\"memlens report\"): writes memlens's report of the "
         "snapshot (a new one by default) in the format path's extension names: .html, .json, .txt, "
         ".folded. ValueError for another extension, OSError when the file cannot be written."},
        {"native_heap_counted", m_native_heap_counted, METH_NOARGS,
         "native_heap_counted() -> whether this copy of memlens counts the program's operator new: true "
         "in a host that includes memlens's hooks, false in the extension module, whose copy of memlens "
         "sees only Python's allocators."},
        {"footprint", m_footprint, METH_O,
         "footprint(factory) -> dict: bytes and blocks that building factory()'s value holds through "
         "Python's allocators (python.raw, .mem, .obj; per domain in \"domains\"), with sys.getsizeof "
         "of the value beside them. Runs gc.collect() (which empties CPython's free lists) and one "
         "warm-up call kept alive, so that the measured call's temporaries come from the free lists "
         "and its value from the allocator."},
        {"count_numpy_buffers", m_count_numpy_buffers, METH_NOARGS,
         "count_numpy_buffers() -> bool: counts numpy's array data buffers in the domain \"numpy\" from "
         "now on, in this thread's context (numpy keeps its memory handler in a context variable: other "
         "threads call it too). False when numpy cannot be imported or is older than 1.22."},
        {"forward_to_tracemalloc",
         reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&m_forward_to_tracemalloc)),
         METH_VARARGS | METH_KEYWORDS,
         "forward_to_tracemalloc(domain=0x6d656d6c) -> bool: hands the native allocations and frees memlens "
         "sees (C++ and, under the preload library, malloc) to tracemalloc as traces of that domain "
         "(tracemalloc.DomainFilter), at the interpreter's next check for pending calls; every allocation "
         "is recorded while it is on."},
        {"stop_forwarding_to_tracemalloc", m_stop_forwarding_to_tracemalloc, METH_NOARGS,
         "stop_forwarding_to_tracemalloc(): hands over what is queued and stops."},
        {"flush_to_tracemalloc", m_flush_to_tracemalloc, METH_NOARGS,
         "flush_to_tracemalloc() -> int: hands what is queued to tracemalloc now; the events handed."},
        {"tracemalloc_forwarding", m_tracemalloc_forwarding, METH_NOARGS,
         "tracemalloc_forwarding() -> dict (queued, handed, ignored, dropped): events since the start; "
         "ignored ones came while tracemalloc was not tracing, dropped ones when the queue was full."},
        {"pools", m_pools, METH_NOARGS,
         "pools() -> dict of each runtime pool's name to its stats() dict: memory the interpreter takes "
         "in large pieces and carves the domains' blocks from (\"python.arenas\": pymalloc's arenas and "
         "the frame stacks' chunks). Not in stats(), which counts each byte once."},
        {"gc_stats", m_gc_stats, METH_NOARGS,
         "gc_stats() -> list of dicts (generation, collections, collected, uncollectable, threshold, "
         "seconds, longest_seconds), one per generation of the cyclic garbage collector, youngest first: "
         "totals since memlens began to watch gc (when it was imported)."},
        {"most_common_types", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&m_most_common_types)),
         METH_VARARGS | METH_KEYWORDS,
         "most_common_types(limit=10) -> list of (type name, objects), most first, over the objects "
         "gc.get_objects() gives (containers and class instances), as objgraph's most_common_types; "
         "limit=None for every type."},
        {"type_checkpoint", m_type_checkpoint, METH_NOARGS,
         "type_checkpoint() -> TypeCheckpoint: the objects of each type now; its growth(limit=10) lists "
         "(type name, objects, rise) for the types with more objects since, largest rise first, as "
         "objgraph's show_growth."},
        {"compare_footprints", m_compare_footprints, METH_O,
         "compare_footprints({name: factory}) -> list of dicts (name, bytes, blocks, getsizeof), one "
         "per factory measured as footprint() does, fewest bytes first."},
        {nullptr, nullptr, 0, nullptr}};
    static PyMethodDef checkpoint_methods[] = {
        {"growth", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&checkpoint_growth)),
         METH_VARARGS | METH_KEYWORDS,
         "growth(limit=10) -> list of (type name, objects, rise): the types with more objects than at "
         "the checkpoint, largest rise first; limit=None for every one. Does not move the checkpoint."},
        {"reset", checkpoint_reset, METH_NOARGS, "reset(): counts every type's objects now, as the new checkpoint."},
        {nullptr, nullptr, 0, nullptr}};
    static PyType_Slot checkpoint_slots[] = {
        {Py_tp_dealloc, reinterpret_cast<void*>(&checkpoint_dealloc)},
        {Py_tp_methods, checkpoint_methods},
        {Py_tp_doc, const_cast<char*>("The Python objects of each type at one moment (memlens.type_checkpoint()).")},
        {0, nullptr}};
    static PyType_Spec checkpoint_spec = {"memlens.TypeCheckpoint", sizeof(py_checkpoint), 0,
                                          Py_TPFLAGS_DEFAULT, checkpoint_slots};
    static PyModuleDef definition = {
        PyModuleDef_HEAD_INIT, "memlens",
        "memlens for Python code: exact figures per memlens domain (Python's allocators count into "
        "python.raw, python.mem and python.obj), scopes and profiled functions, snapshots, reports, "
        "memory limits for tests and the footprint of values.",
        -1, functions, nullptr, nullptr, nullptr, nullptr};

    if (!install_python_hooks()) return fail(PyExc_ImportError, "memlens: cannot install the Python allocator hooks");
    // Python's allocations reach the process's state through this copy's hooks: its events must
    // be able to take the peak snapshot when the settings ask for one.
    install_peak_capturer();
    // Collections are rare beside allocations and each costs the callback a few calls, so the
    // module watches gc from the start, as a host that includes memlens's reports would.
    watch_python_gc();
    if (!create_type(scope_spec, scope_type) || !create_type(enter_spec, enter_type) ||
        !create_type(descriptor_spec, descriptor_type) || !create_type(profiled_spec, profiled_type) ||
        !create_type(snapshot_spec, snapshot_type) || !create_type(checkpoint_spec, checkpoint_type)) {
        return nullptr;
    }
    PyObject* descriptor = reinterpret_cast<PyObject*>(PyObject_New(py_descriptor, descriptor_type));
    const bool set = descriptor && PyObject_SetAttrString(reinterpret_cast<PyObject*>(scope_type), "__enter__", descriptor) == 0;
    Py_XDECREF(descriptor);
    if (!set) return nullptr;
    PyObject* module = PyModule_Create(&definition);
    if (!module) return nullptr;
    for (PyTypeObject* type : {scope_type, profiled_type, snapshot_type, checkpoint_type}) {
        const char* dot = std::strrchr(type->tp_name, '.');
        Py_INCREF(type);
        if (PyModule_AddObject(module, dot + 1, reinterpret_cast<PyObject*>(type)) != 0) {
            Py_DECREF(type);
            Py_DECREF(module);
            return nullptr;
        }
    }
    return module;
}

}  // namespace pymod
}  // namespace detail

/// Creates the `memlens` Python module and installs the Python allocator hooks if they are not
/// in (install_python_hooks()). A host registers it with register_python_module(); an extension
/// module returns it from its init function:
/// `PyMODINIT_FUNC PyInit_memlens(void) { return memlens::python_module(); }`. Call it with the
/// GIL held, once per interpreter start. Null, with a Python exception set, on failure.
inline PyObject* python_module() noexcept {
    try {
        return detail::pymod::create_module();
    } catch (...) {
        return detail::pymod::from_exception();
    }
}

/// Makes `import memlens` in the embedded interpreter give python_module(): call it before
/// Py_Initialize, as PyImport_AppendInittab requires. False when CPython refuses.
inline bool register_python_module() noexcept {
    return PyImport_AppendInittab("memlens", &python_module) == 0;
}

MEMLENS_NAMESPACE_END
