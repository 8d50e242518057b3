// memlens/sources/allocator.hpp: tracking_allocator, a standard allocator that counts every
// allocation of any container into a memlens domain and forwards to an upstream allocator.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

#include "../core/counters.hpp"
#include "../core/events.hpp"
#include "../core/type_table.hpp"

MEMLENS_NAMESPACE_BEGIN

/// The domain tracking_allocator counts into when none is named.
struct allocator_domain {
    static constexpr const char* name = "allocator";  ///< the domain's name, as domain::named takes it
};

namespace detail {

// A domain tag is any type with a static `name` convertible to std::string_view.
template <class Tag>
domain tag_domain() noexcept {
    static const domain d = domain::named(Tag::name);
    return d;
}

// The address a possibly fancy pointer holds, for the live table.
template <class Pointer>
const void* address_of(const Pointer& p) noexcept {
    if constexpr (std::is_pointer_v<Pointer>) {
        return p;
    } else {
        return p ? static_cast<const void*>(std::addressof(*p)) : nullptr;
    }
}

template <class Upstream, bool = std::is_empty_v<Upstream> && !std::is_final_v<Upstream>>
class upstream_holder : private Upstream {
public:
    upstream_holder() = default;
    explicit upstream_holder(const Upstream& u) : Upstream(u) {}
    Upstream& get() noexcept { return *this; }
    const Upstream& get() const noexcept { return *this; }
};

template <class Upstream>
class upstream_holder<Upstream, false> {
public:
    upstream_holder() = default;
    explicit upstream_holder(const Upstream& u) : upstream_(u) {}
    Upstream& get() noexcept { return upstream_; }
    const Upstream& get() const noexcept { return upstream_; }

private:
    Upstream upstream_;
};

}  // namespace detail

/// A standard allocator that counts `n * sizeof(T)` bytes per allocation into the domain named
/// by `Domain::name` and gets the memory from `Upstream`. Works with every standard container;
/// rebinding, propagation and equality follow the upstream. Counting costs what a hooked
/// operator new adds. The global operator new hooks do not count what this allocator's upstream
/// asks them for, so the bytes are not in "heap" as well; another tracking source below this one
/// does count them, in its own domain.
template <class T, class Domain = allocator_domain, class Upstream = std::allocator<T>>
class tracking_allocator : private detail::upstream_holder<Upstream> {
    using holder = detail::upstream_holder<Upstream>;
    using traits = std::allocator_traits<Upstream>;
    static_assert(std::is_same_v<typename traits::value_type, T>,
                  "the upstream allocator's value_type must be T");

public:
    using value_type = T;               ///< the element type allocated
    using upstream_type = Upstream;     ///< the allocator memory comes from
    using domain_type = Domain;         ///< the tag naming the domain counted into
    using pointer = typename traits::pointer;                        ///< The upstream's type.
    using const_pointer = typename traits::const_pointer;            ///< The upstream's type.
    using void_pointer = typename traits::void_pointer;              ///< The upstream's type.
    using const_void_pointer = typename traits::const_void_pointer;  ///< The upstream's type.
    using size_type = typename traits::size_type;                    ///< The upstream's type.
    using difference_type = typename traits::difference_type;        ///< The upstream's type.
    /// As the upstream's.
    using propagate_on_container_copy_assignment =
        typename traits::propagate_on_container_copy_assignment;
    /// As the upstream's.
    using propagate_on_container_move_assignment =
        typename traits::propagate_on_container_move_assignment;
    using propagate_on_container_swap = typename traits::propagate_on_container_swap;  ///< As the upstream's.
    using is_always_equal = typename traits::is_always_equal;  ///< As the upstream's.

    /// The same allocator for `U`, over the upstream rebound to `U`, counting into the same domain.
    template <class U>
    struct rebind {
        /// The rebound allocator type.
        using other = tracking_allocator<U, Domain, typename traits::template rebind_alloc<U>>;
    };

    tracking_allocator() = default;
    /// Counts into `Domain` and takes memory from a copy of `upstream`.
    explicit tracking_allocator(const Upstream& upstream) : holder(upstream) {}
    /// The rebinding copy that containers make for their nodes: same domain, the upstream
    /// converted from `other`'s.
    template <class U, class OtherUpstream>
    tracking_allocator(const tracking_allocator<U, Domain, OtherUpstream>& other) noexcept
        : holder(Upstream(other.upstream())) {}

    /// Room for `n` objects from the upstream, then counted as `n * sizeof(T)` bytes (and as `n`
    /// instances when T is a counted type). Throws what the upstream throws, and then counts
    /// nothing.
    pointer allocate(size_type n) {
        pointer p;
        {
            detail::guard quiet;
            p = traits::allocate(this->get(), n);
        }
        detail::type_allocated<T>(n);
        detail::on_alloc(detail::address_of(p), n * sizeof(T), domain().id(), false);
        return p;
    }

    /// Uncounts `n * sizeof(T)` bytes, then gives the block back to the upstream. `n` must be
    /// the count `p` was allocated with, as the standard requires.
    void deallocate(pointer p, size_type n) noexcept {
        detail::type_freed<T>(n);
        detail::on_free(detail::address_of(p), n * sizeof(T), domain().id());
        detail::guard quiet;
        traits::deallocate(this->get(), p, n);
    }

    /// What a copied container gets: the upstream's choice, counting into the same domain.
    tracking_allocator select_on_container_copy_construction() const {
        return tracking_allocator(traits::select_on_container_copy_construction(this->get()));
    }

    /// The upstream allocator memory comes from.
    const Upstream& upstream() const noexcept { return this->get(); }

    /// The domain this allocator counts into.
    static memlens::domain domain() noexcept { return detail::tag_domain<Domain>(); }

    template <class U, class OtherUpstream>
    friend bool operator==(const tracking_allocator& a,
                           const tracking_allocator<U, Domain, OtherUpstream>& b) noexcept {
        return a.upstream() == b.upstream();
    }
    template <class U, class OtherUpstream>
    friend bool operator!=(const tracking_allocator& a,
                           const tracking_allocator<U, Domain, OtherUpstream>& b) noexcept {
        return !(a == b);
    }
};

MEMLENS_NAMESPACE_END
