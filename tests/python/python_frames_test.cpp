// Tests of the Python frames that sources/python.hpp joins into the native stacks of MEM and OBJ
// allocations. Part of memlens_python_tests, whose listener (python_test.cpp) runs the
// interpreter with the hooks installed.
#include <memlens/sources/python.hpp>

#include <memlens/memlens.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace pyframes_test {

// The functions the joined stacks must name: outside any anonymous namespace and never inlined,
// so that the symbolizer finds them under these names.
__attribute__((noinline)) void call_into_python(const std::string& code) {
    REQUIRE(PyRun_SimpleString(code.c_str()) == 0);
    asm volatile("" ::: "memory");
}

__attribute__((noinline)) PyObject* cpp_calls_python(PyObject*, PyObject* function) {
    PyObject* result = PyObject_CallNoArgs(function);
    asm volatile("" ::: "memory");
    return result;
}

PyMethodDef call_back_def{"call_back", &cpp_calls_python, METH_O, nullptr};

// A folder on sys.path holding the modules the tests write.
const std::string& module_dir() {
    static const std::string dir = [] {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/memlens_pyframes_XXXXXX";
        REQUIRE(::mkdtemp(&pattern[0]));
        PyObject* builtins = PyEval_GetBuiltins();
        PyObject* call_back = PyCFunction_New(&call_back_def, nullptr);
        REQUIRE(PyDict_SetItemString(builtins, "call_back", call_back) == 0);
        Py_DECREF(call_back);
        call_into_python("import sys\nsys.dont_write_bytecode = True\nsys.path.insert(0, '" + pattern + "')");
        return pattern;
    }();
    return dir;
}

// Writes module `name` and returns its path.
std::string write_module(const std::string& name, const std::string& text) {
    const std::string path = module_dir() + "/" + name + ".py";
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return path;
}

long python_long(const std::string& expression) {
    call_into_python("import builtins\nbuiltins._memlens_value = " + expression);
    PyObject* builtins = PyEval_GetBuiltins();
    PyObject* value = PyDict_GetItemString(builtins, "_memlens_value");
    REQUIRE(value);
    return PyLong_AsLong(value);
}

// Sites mode with room for every native frame, for one test.
struct sites_mode {
    memlens::tracking_config before = memlens::current_config();
    sites_mode() {
        memlens::tracking_config c = before;
        c.mode = memlens::tracking_mode::sites;
        c.stack_depth = 128;
        REQUIRE(memlens::configure(c));
    }
    ~sites_mode() { memlens::configure(before); }
};

bool is(const memlens::frame_info& f, const std::string& function, const std::string& file, unsigned line) {
    return f.module == "python" && f.function == function && f.file == file && f.line == line;
}

bool names(const memlens::frame_info& f, const char* function) {
    return f.function.find(function) != std::string::npos;
}

// The index of the first frame at or after `from` that `match` accepts; the size when none.
template <typename Match>
std::size_t find(const std::vector<memlens::frame_info>& stack, std::size_t from, Match match) {
    for (std::size_t i = from; i < stack.size(); ++i) {
        if (match(stack[i])) return i;
    }
    return stack.size();
}

// The sites of `domain` whose innermost Python frame is (function, file, line).
std::vector<memlens::leak_site> sites_at(const memlens::leak_report& r, const std::string& domain,
                                         const std::string& function, const std::string& file, unsigned line) {
    std::vector<memlens::leak_site> out;
    for (const memlens::leak_site& s : r.sites) {
        if (s.domain != domain) continue;
        const std::size_t first = find(s.traceback, 0, [](const memlens::frame_info& f) { return f.module == "python"; });
        if (first < s.traceback.size() && is(s.traceback[first], function, file, line)) out.push_back(s);
    }
    return out;
}

std::size_t python_frames(const std::vector<memlens::frame_info>& stack) {
    std::size_t n = 0;
    for (const memlens::frame_info& f : stack) n += f.module == "python" ? 1 : 0;
    return n;
}

std::string describe(const std::vector<memlens::frame_info>& stack) {
    std::string out;
    for (const memlens::frame_info& f : stack) out += "  " + f.describe() + "\n";
    return out;
}

}  // namespace pyframes_test

using namespace pyframes_test;

TEST_CASE("a leak made in Python is reported at its Python line and at the C++ caller, in one stack") {
    const std::string path = write_module("leak_module",
                                          "held = []\n"
                                          "def leaky():\n"
                                          "    block = b'\\x01' * 100000\n"
                                          "    held.append(block)\n");
    memlens::snapshot s;
    {
        sites_mode on;
        call_into_python("import leak_module\nleak_module.leaky()");
        s = memlens::take_snapshot();
    }
    const long size = python_long("sys.getsizeof(leak_module.held[0])");
    const std::vector<memlens::leak_site> found =
        sites_at(memlens::leaks(s), "python.obj", "leaky", path, 3);
    REQUIRE(found.size() == 1);
    const memlens::leak_site& site = found.front();
    INFO(describe(site.traceback));
    CHECK(site.count == 1);
    CHECK(site.bytes == static_cast<std::uint64_t>(size));
    const auto& stack = site.traceback;
    const std::size_t module = find(stack, 0, [](const memlens::frame_info& f) { return is(f, "<module>", "<string>", 2); });
    const std::size_t host = find(stack, 0, [](const memlens::frame_info& f) { return names(f, "call_into_python"); });
    CHECK(module < host);
    CHECK(host < stack.size());
    // The eval loop's native frames are replaced, not kept beside the Python ones.
    CHECK(find(stack, 0, [](const memlens::frame_info& f) { return names(f, "_PyEval_EvalFrameDefault"); }) ==
          stack.size());
    std::printf("joined stack of the Python leak:\n%s", describe(stack).c_str());
}

TEST_CASE("C++ calling Python calling C++ calling Python is one path, in order") {
    const std::string path = write_module("round_trip",
                                          "kept = []\n"
                                          "def inner():\n"
                                          "    kept.append(b'\\x02' * 70000)\n"
                                          "def outer():\n"
                                          "    call_back(inner)\n");
    memlens::snapshot s;
    {
        sites_mode on;
        call_into_python("import round_trip\nround_trip.outer()");
        s = memlens::take_snapshot();
    }
    const std::vector<memlens::leak_site> found = sites_at(memlens::leaks(s), "python.obj", "inner", path, 3);
    REQUIRE(found.size() == 1);
    const auto& stack = found.front().traceback;
    INFO(describe(stack));
    CHECK(found.front().count == 1);
    const std::size_t cpp = find(stack, 1, [](const memlens::frame_info& f) { return names(f, "cpp_calls_python"); });
    const std::size_t outer = find(stack, cpp, [&](const memlens::frame_info& f) { return is(f, "outer", path, 5); });
    const std::size_t module = find(stack, outer, [](const memlens::frame_info& f) { return is(f, "<module>", "<string>", 2); });
    const std::size_t host = find(stack, module, [](const memlens::frame_info& f) { return names(f, "call_into_python"); });
    CHECK(cpp < stack.size());
    CHECK(outer < stack.size());
    CHECK(module < stack.size());
    CHECK(host < stack.size());
    // Nothing of Python between the innermost frame and the C++ function but `inner` itself.
    CHECK(python_frames(std::vector<memlens::frame_info>(stack.begin(), stack.begin() + static_cast<std::ptrdiff_t>(cpp))) == 1);
    std::printf("joined stack of C++ -> Python -> C++ -> Python:\n%s", describe(stack).c_str());
}

TEST_CASE("Python threads and the main thread each get their own Python frames") {
    const std::string path = write_module("threaded",
                                          "import threading\n"
                                          "held = []\n"
                                          "def work(size):\n"
                                          "    for _ in range(50):\n"
                                          "        held.append(b'\\x03' * size)\n"
                                          "def main_work():\n"
                                          "    for _ in range(50):\n"
                                          "        held.append(b'\\x04' * 6000)\n"
                                          "def run():\n"
                                          "    threads = [threading.Thread(target=work, args=(5000 + i,)) for i in range(4)]\n"
                                          "    for t in threads:\n"
                                          "        t.start()\n"
                                          "    main_work()\n"
                                          "    for t in threads:\n"
                                          "        t.join()\n");
    memlens::snapshot s;
    {
        sites_mode on;
        call_into_python("import threaded\nthreaded.run()");
        s = memlens::take_snapshot();
    }
    const memlens::leak_report r = memlens::leaks(s);
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
    for (const memlens::leak_site& site : sites_at(r, "python.obj", "work", path, 5)) {
        INFO(describe(site.traceback));
        count += site.count;
        bytes += site.bytes;
        // A thread's stack starts in the thread module, not in the host's call.
        CHECK(find(site.traceback, 0, [](const memlens::frame_info& f) { return f.function == "Thread._bootstrap_inner"; }) <
              site.traceback.size());
        CHECK(find(site.traceback, 0, [](const memlens::frame_info& f) { return names(f, "call_into_python"); }) ==
              site.traceback.size());
    }
    CHECK(count == 200);
    CHECK(bytes == static_cast<std::uint64_t>(python_long("sum(sys.getsizeof(b) for b in threaded.held if len(b) < 5500)")));
    std::uint64_t main_count = 0;
    for (const memlens::leak_site& site : sites_at(r, "python.obj", "main_work", path, 8)) {
        INFO(describe(site.traceback));
        main_count += site.count;
        CHECK(find(site.traceback, 0, [&](const memlens::frame_info& f) { return is(f, "run", path, 13); }) <
              site.traceback.size());
        CHECK(find(site.traceback, 0, [](const memlens::frame_info& f) { return names(f, "call_into_python"); }) <
              site.traceback.size());
    }
    CHECK(main_count == 50);
}

TEST_CASE("interned Python frames outlive their code objects") {
    const std::string path = write_module("short_lived",
                                          "def make():\n"
                                          "    return b'\\x05' * 60000\n"
                                          "kept = make()\n");
    memlens::snapshot s;
    {
        sites_mode on;
        call_into_python("import short_lived");
    }
    call_into_python("import gc, sys, weakref, builtins\n"
                     "builtins._memlens_kept = short_lived.kept\n"
                     "_memlens_code = weakref.ref(short_lived.make.__code__)\n"
                     "del sys.modules['short_lived'], short_lived\n"
                     "gc.collect()\n"
                     "builtins._memlens_value = int(_memlens_code() is None)");
    REQUIRE(python_long("_memlens_value") == 1);
    s = memlens::take_snapshot();
    const std::vector<memlens::leak_site> found = sites_at(memlens::leaks(s), "python.obj", "make", path, 2);
    REQUIRE(found.size() == 1);
    INFO(describe(found.front().traceback));
    CHECK(found.front().count == 1);
    CHECK(find(found.front().traceback, 0, [&](const memlens::frame_info& f) { return is(f, "<module>", path, 3); }) <
          found.front().traceback.size());
}

TEST_CASE("the Python depth keeps the innermost frames only") {
    const std::string path = write_module("recursive",
                                          "def rec(n, size):\n"
                                          "    if n == 0:\n"
                                          "        return b'\\x06' * size\n"
                                          "    return rec(n - 1, size)\n");
    const auto run = [&](std::size_t depth, const char* name) {
        memlens::set_python_stack_depth(depth);
        memlens::snapshot s;
        {
            sites_mode on;
            call_into_python(std::string("import recursive, builtins\nbuiltins.") + name + " = recursive.rec(10, " + std::to_string(50000 + depth) + ")");
            s = memlens::take_snapshot();
        }
        memlens::set_python_stack_depth(32);
        // Earlier runs' blocks are still alive, at the same Python line: this run's is told
        // by its size.
        const auto size = static_cast<std::uint64_t>(python_long(std::string("sys.getsizeof(builtins.") + name + ")"));
        std::vector<memlens::leak_site> found;
        for (const memlens::leak_site& site : sites_at(memlens::leaks(s), "python.obj", "rec", path, 3)) {
            if (site.bytes == size) found.push_back(site);
        }
        REQUIRE(found.size() == 1);
        INFO(describe(found.front().traceback));
        CHECK(found.front().count == 1);
        return found.front().traceback;
    };
    // rec at line 3, ten calls of rec at line 4, and the string's module.
    const std::vector<memlens::frame_info> whole = run(32, "_memlens_whole");
    CHECK(python_frames(whole) == 12);
    CHECK(find(whole, 0, [](const memlens::frame_info& f) { return names(f, "call_into_python"); }) < whole.size());
    const std::vector<memlens::frame_info> cut = run(2, "_memlens_cut");
    CHECK(python_frames(cut) == 2);
    CHECK(is(cut[find(cut, 0, [](const memlens::frame_info& f) { return f.module == "python"; }) + 1], "rec", path, 4));
    // The host's call still shows below the frames left out.
    CHECK(find(cut, 0, [](const memlens::frame_info& f) { return names(f, "call_into_python"); }) < cut.size());
    memlens::set_python_stack_depth(0);
    memlens::snapshot s;
    {
        sites_mode on;
        call_into_python("import recursive, builtins\nbuiltins._memlens_none = recursive.rec(10, 61000)");
        s = memlens::take_snapshot();
    }
    memlens::set_python_stack_depth(32);
    const auto size = static_cast<std::uint64_t>(python_long("sys.getsizeof(builtins._memlens_none)"));
    std::size_t seen = 0;
    for (const memlens::leak_site& site : memlens::leaks(s).sites) {
        if (site.domain != "python.obj" || site.bytes != size) continue;
        ++seen;
        INFO(describe(site.traceback));
        CHECK(python_frames(site.traceback) == 0);
        CHECK(find(site.traceback, 0, [](const memlens::frame_info& f) { return names(f, "call_into_python"); }) <
              site.traceback.size());
    }
    CHECK(seen == 1);
}
