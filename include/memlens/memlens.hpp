// memlens/memlens.hpp: every public header of memlens, except the ones that must be chosen on
// purpose: sources/new.hpp (defines the global operator new, so one translation unit only) and
// the test-framework adapters testing/catch2.hpp and testing/gtest.hpp.
#pragma once

#include "core/counters.hpp"
#include "helpers/budget_cache.hpp"
#include "helpers/footprint.hpp"
#include "helpers/slot_pool.hpp"
#include "helpers/weak_cache.hpp"
#include "observe/exit_report.hpp"
#include "observe/named_scope.hpp"
#include "observe/scope.hpp"
#include "observe/sites.hpp"
#include "observe/symbols.hpp"
#include "observe/types.hpp"
#include "sources/allocator.hpp"
#include "sources/heap.hpp"
#include "sources/record.hpp"
#include "sources/resource.hpp"
#include "testing/baseline.hpp"
#include "testing/checks.hpp"
#include "view/folded.hpp"
#include "view/html.hpp"
#include "view/json.hpp"
#include "view/report.hpp"
#include "view/snapshot.hpp"
#include "view/text.hpp"
#include "track.hpp"
