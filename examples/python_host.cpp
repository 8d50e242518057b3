// examples/python_host.cpp: a C++ program that embeds CPython, counts what the interpreter
// allocates, and lets the Python code it runs measure itself with the memlens module: named
// scopes over dicts, lists, strings, a JSON round trip and a leak made on purpose, then the
// footprint of three containers, memlens's HTML report and a short summary.
// Usage: python_host [report.html]
#include <memlens/python_module.hpp>
#include <memlens/sources/new.hpp>  // in exactly one file of the program: hooks the global operator new

#include <cstdio>
#include <string>

namespace {

// The Python side. leak() keeps every list it builds in a module-level list, as a cache that is
// never trimmed would.
const char* const workload = R"py(
import array
import json
import memlens

retained = []

@memlens.profile
def build_records(n):
    return [{"id": i, "name": f"user{i}", "tags": ["a", "b"]} for i in range(n)]

@memlens.profile
def build_text(n):
    return ",".join(str(i) for i in range(n))

@memlens.profile
def json_round_trip(records):
    return json.loads(json.dumps(records))

@memlens.profile
def leak(n):
    retained.append([bytearray(1000) for _ in range(n)])

def run():
    with memlens.scope("workload") as whole:
        records = build_records(20_000)
        text = build_text(50_000)
        assert json_round_trip(records) == records
        for _ in range(5):
            leak(100)
        del records, text
    print(f"python: the workload allocated {whole.allocated:,} bytes in {whole.allocs:,} blocks, "
          f"peak {whole.peak:,}, still held {whole.net:,}")

run()
print("python: footprints (bytes through Python's allocators, sys.getsizeof beside them)")
for row in memlens.compare_footprints({
    "list": lambda: list(range(1000)),
    "tuple": lambda: tuple(range(1000)),
    "array": lambda: array.array("q", range(1000)),
}):
    print(f"  {row['name']:6} {row['bytes']:>7,} bytes in {row['blocks']:>4} blocks"
          f"  (getsizeof {row['getsizeof']:,})")
)py";

void print_figures() {
    std::printf("\n%-12s %12s %12s %14s %10s\n", "domain", "current", "peak", "allocated", "blocks");
    for (const memlens::domain_stats& d : memlens::domains()) {
        const std::string name(d.domain.name());
        std::printf("%-12s %12zu %12zu %14zu %10llu\n", name.c_str(), d.stats.current, d.stats.peak,
                    d.stats.total, static_cast<unsigned long long>(d.stats.allocs));
    }
    std::printf("\n%-18s %6s %14s %12s %12s\n", "scope", "calls", "allocated", "net", "max peak");
    for (const memlens::named_scope_stats& s : memlens::named_scopes()) {
        std::printf("%-18s %6llu %14llu %12lld %12llu\n", s.name.c_str(),
                    static_cast<unsigned long long>(s.calls), static_cast<unsigned long long>(s.allocated),
                    static_cast<long long>(s.net), static_cast<unsigned long long>(s.max_peak));
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string report = argc > 1 ? argv[1] : "python_host.html";

    // Pre-initialisation sets the allocators PYTHONMALLOC names; the hooks wrap whichever it set.
    PyPreConfig pre;
    PyPreConfig_InitPythonConfig(&pre);
    const PyStatus status = Py_PreInitialize(&pre);
    if (PyStatus_Exception(status)) Py_ExitStatusException(status);
    if (!memlens::install_python_hooks() || !memlens::register_python_module()) {
        std::fprintf(stderr, "python_host: cannot install memlens's Python hooks or module\n");
        return 1;
    }
    Py_InitializeEx(0);

    const int failed = PyRun_SimpleString(workload);
    if (failed == 0) {
        print_figures();
        try {
            memlens::write_report(memlens::take_snapshot(), report, "python_host");
            std::printf("\nreport: %s\n", report.c_str());
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
        }
    }
    const bool finalized = Py_FinalizeEx() == 0;
    return failed == 0 && finalized ? 0 : 1;
}
