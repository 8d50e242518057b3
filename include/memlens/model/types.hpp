// memlens/model/types.hpp: the figures of one counted type, and how much it grew.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../detail/config.hpp"

MEMLENS_NAMESPACE_BEGIN

/// One type's figures, read at one moment.
struct type_stats {
    std::string name;               ///< readable (demangled) type name
    std::size_t size = 0;           ///< sizeof the type; bytes are instances times this
    std::uint64_t instances = 0;    ///< live instances now
    std::uint64_t bytes = 0;        ///< live bytes now: instances * size
    /// The highest live instance count seen. Exact when one thread constructs the type's
    /// instances (any threads may destroy them): a construction that could set a new peak sums
    /// every thread's table first, counting the others as they were at this thread's last
    /// sum, which can only overstate them while they only destroy. When other threads also
    /// construct, their rises since that sum are not seen until a later sum, so the peak may
    /// be below the truth; it is then the highest of the sums taken at constructions that
    /// passed their thread's limit and at every read (this one included). A sum reads the
    /// threads' tables one after another, not all at one instant.
    std::uint64_t peak = 0;
    std::uint64_t constructed = 0;  ///< instances ever counted in (constructed or allocated)
};

/// How much one type's live instance count rose, as type_checkpoint::growth() lists it.
struct type_growth {
    std::string name;             ///< readable (demangled) type name
    std::uint64_t instances = 0;  ///< live instances now
    std::uint64_t growth = 0;     ///< rise since the checkpoint
};

MEMLENS_NAMESPACE_END
