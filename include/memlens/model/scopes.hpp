// memlens/model/scopes.hpp: what a scope measured, and a named scope's totals over its passes.
#pragma once

#include <cstdint>
#include <string>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN

/// What a block allocated while it ran. Exact for thread scopes; see scope_kind::process.
struct block_usage {
    std::uint64_t allocated = 0; ///< bytes allocated in the block
    std::uint64_t freed = 0;     ///< bytes freed in the block (including memory from before it)
    std::int64_t net = 0;        ///< allocated - freed
    std::uint64_t peak = 0;      ///< highest net reached during the block (never below 0)
    std::uint64_t allocs = 0;    ///< allocations in the block
    std::uint64_t frees = 0;     ///< frees in the block
};

/// One named scope's totals over every pass through it.
struct named_scope_stats {
    std::string name;      ///< the name given to MEMLENS_SCOPE / scope_site
    std::string file;      ///< where the first site with this name was opened
    unsigned line = 0;     ///< the line of that site; 0 when unknown
    std::string function;  ///< the function that site is in
    std::uint64_t calls = 0;      ///< passes that have closed
    std::uint64_t allocated = 0;  ///< bytes allocated, all passes together
    std::uint64_t allocs = 0;     ///< allocations, all passes together
    std::int64_t net = 0;         ///< bytes still held from all passes together
    std::uint64_t max_peak = 0;   ///< the highest peak of any one pass
};

MEMLENS_NAMESPACE_END
