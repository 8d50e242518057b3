// memlens/sources/resource.hpp: tracking_resource, a std::pmr::memory_resource that counts
// into a memlens domain and forwards to an upstream resource.
#pragma once

#include <cstddef>
#include <memory_resource>

#include "../core/counters.hpp"
#include "../core/events.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Counts every allocate / deallocate (requested bytes) into a domain and forwards it to
/// `upstream`, which must outlive it. Thread safe when the upstream is. Two tracking resources
/// compare equal when they count into the same domain over equal upstreams. The global operator
/// new hooks do not count what the upstream asks them for; a tracking resource further down
/// (say under a pool) counts what the pool takes, in its own domain.
class tracking_resource : public std::pmr::memory_resource {
public:
    /// Counts into `d` and forwards to `upstream` (by default the default resource when
    /// constructed), which is not owned.
    explicit tracking_resource(domain d,
                               std::pmr::memory_resource* upstream = std::pmr::get_default_resource()) noexcept
        : domain_(d), upstream_(upstream) {}

    /// The domain this resource counts into.
    domain tracked_domain() const noexcept { return domain_; }

    /// The resource memory comes from.
    std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
        void* p;
        {
            detail::guard quiet;
            p = upstream_->allocate(bytes, alignment);
        }
        detail::on_alloc(p, bytes, domain_.id(), false);
        return p;
    }

    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
        detail::on_free(p, bytes, domain_.id());
        detail::guard quiet;
        upstream_->deallocate(p, bytes, alignment);
    }

    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
        if (this == &other) return true;
        const auto* o = dynamic_cast<const tracking_resource*>(&other);
        return o && o->domain_ == domain_ && upstream_->is_equal(*o->upstream_);
    }

    domain domain_;
    std::pmr::memory_resource* upstream_;
};

MEMLENS_NAMESPACE_END
