// memlens/hooks.hpp: the global operator new / delete hooks (sources/new.hpp) and the report
// that MEMLENS_OUTPUT and MEMLENS_LEAKS_AT_EXIT ask for at exit, in every format. Include it in
// exactly one translation unit of the program; that unit alone compiles the report writers.
// A program that wants the hooks without any writer includes sources/new.hpp instead.
#pragma once

#include "sources/new.hpp"
#include "view/exit_report.hpp"

MEMLENS_NAMESPACE_BEGIN namespace detail {

// A static in the one unit that includes this header: the writers are emitted there only.
[[maybe_unused]] static const bool exit_report_installed = install_exit_report();

}  // namespace detail
MEMLENS_NAMESPACE_END
