// memlens/track.hpp: the front door. Domains and their exact counters, RAII scopes, measure(),
// named scopes, and record_alloc / record_free for the embedder's own pools.
#pragma once

#include "core/counters.hpp"
#include "observe/named_scope.hpp"
#include "observe/scope.hpp"
#include "sources/allocator.hpp"
#include "sources/record.hpp"
