// memlens/helpers/slot_pool.hpp: slot_pool, fixed-size slots carved from large blocks with an
// intrusive free list, and pool_allocator, which puts the nodes of node-based containers
// (std::list, std::map, std::set, std::unordered_*) in such pools.
//
// What the figures say: a pool counts the blocks it takes from its upstream (the aligned global
// operator new) into its memlens domain, one allocation of block_bytes() per block, and one
// free per block given back. The domain therefore shows the pool's real footprint, not the
// bytes its users asked for; which slots are in use, and the slack no slot can use, are in
// stats(). The global operator new hooks do not count the blocks again in "heap".
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#include "../core/counters.hpp"
#include "../sources/record.hpp"

MEMLENS_NAMESPACE_BEGIN

/// Thread policy of a pool that one thread at a time uses: no locking at all.
struct single_thread {
    static constexpr bool is_thread_safe = false;  ///< false: the caller keeps to one thread
    void lock() noexcept {}    ///< Does nothing.
    void unlock() noexcept {}  ///< Does nothing.
};

/// Thread policy of a pool that several threads use at once: every operation takes a mutex.
struct thread_safe {
    static constexpr bool is_thread_safe = true;  ///< true: any thread may use the pool at any time
    void lock() { mutex_.lock(); }               ///< Locks the mutex; may throw std::system_error.
    void unlock() noexcept { mutex_.unlock(); }  ///< Unlocks it.

private:
    std::mutex mutex_;
};

/// A pool's own figures, as stats() reads them at one moment.
struct pool_stats {
    std::size_t blocks = 0;       ///< blocks held from the upstream
    std::size_t block_bytes = 0;  ///< bytes of those blocks: what the pool's domain shows live
    std::size_t slots_total = 0;  ///< slots those blocks hold, in use or not
    std::size_t slots_in_use = 0; ///< slots handed out and not given back
    std::size_t slack_bytes = 0;  ///< block bytes that can never be a slot (tail and block header)
};

/// The domain pools and pool allocators count into when none is named: "slot_pool".
/// Thread safe; does not allocate; the first call registers the domain.
inline domain default_pool_domain() noexcept {
    static const domain d = domain::named("slot_pool");
    return d;
}

/// Bytes a pool asks its upstream for at a time unless told otherwise.
inline constexpr std::size_t default_pool_block_bytes = 64 * 1024;

namespace detail {

constexpr std::size_t pool_round_up(std::size_t n, std::size_t to) noexcept {
    return (n + to - 1) / to * to;
}

// A free slot holds the address of the next free slot. The link is copied in and out with
// memcpy so that a slot whose alignment is below a pointer's (T = char[12], say) needs no
// padding to hold it.
constexpr std::size_t pool_slot_size(std::size_t size, std::size_t align) noexcept {
    return pool_round_up(size > sizeof(void*) ? size : sizeof(void*), align);
}

// Untyped pool of slots of one size and alignment; slot_pool and pool_allocator are typed
// faces of it. Every member that touches the free list or the blocks holds the policy's lock.
template <class Policy>
class raw_pool {
public:
    raw_pool(std::size_t slot_size, std::size_t slot_align, std::size_t block_bytes, domain d)
        : slot_size_(slot_size),
          slot_align_(slot_align),
          block_align_(slot_align > alignof(block_header) ? slot_align : alignof(block_header)),
          domain_(d) {
        // The block header sits at the end, so an over-aligned slot type loses no leading
        // padding to it; the block must hold the header and at least one slot.
        const std::size_t header = pool_round_up(sizeof(block_header), alignof(block_header));
        const std::size_t least = pool_round_up(slot_size_, alignof(block_header)) + header;
        block_bytes_ = pool_round_up(block_bytes > least ? block_bytes : least, block_align_);
        header_offset_ = block_bytes_ - header;
        slots_per_block_ = header_offset_ / slot_size_;
    }

    raw_pool(const raw_pool&) = delete;
    raw_pool& operator=(const raw_pool&) = delete;

    ~raw_pool() { free_blocks(); }

    void* allocate() {
        std::lock_guard<Policy> hold(lock_);
        std::byte* slot = free_;
        if (slot) {
            free_ = next_of(slot);
        } else {
            if (bump_ == bump_end_) add_block();
            slot = bump_;
            bump_ += slot_size_;
        }
        ++in_use_;
        return slot;
    }

    void deallocate(void* p) noexcept {
        if (!p) return;
        std::lock_guard<Policy> hold(lock_);
        auto* slot = static_cast<std::byte*>(p);
        std::memcpy(slot, &free_, sizeof free_);
        free_ = slot;
        --in_use_;
    }

    bool release() noexcept {
        std::lock_guard<Policy> hold(lock_);
        if (in_use_ != 0) return false;
        free_blocks();
        return true;
    }

    pool_stats stats() const noexcept {
        std::lock_guard<Policy> hold(lock_);
        return stats_locked();
    }

    // Adds this pool's figures to `sum`, under the pool's lock.
    void add_stats(pool_stats& sum) const noexcept {
        std::lock_guard<Policy> hold(lock_);
        const pool_stats s = stats_locked();
        sum.blocks += s.blocks;
        sum.block_bytes += s.block_bytes;
        sum.slots_total += s.slots_total;
        sum.slots_in_use += s.slots_in_use;
        sum.slack_bytes += s.slack_bytes;
    }

    std::size_t slot_size() const noexcept { return slot_size_; }
    std::size_t slot_align() const noexcept { return slot_align_; }
    std::size_t block_bytes() const noexcept { return block_bytes_; }
    std::size_t slots_per_block() const noexcept { return slots_per_block_; }
    domain tracked_domain() const noexcept { return domain_; }

private:
    struct block_header {
        block_header* next;
    };

    static std::byte* next_of(std::byte* slot) noexcept {
        std::byte* next;
        std::memcpy(&next, slot, sizeof next);
        return next;
    }

    pool_stats stats_locked() const noexcept {
        pool_stats s;
        s.blocks = blocks_;
        s.block_bytes = blocks_ * block_bytes_;
        s.slots_total = blocks_ * slots_per_block_;
        s.slots_in_use = in_use_;
        s.slack_bytes = blocks_ * (block_bytes_ - slots_per_block_ * slot_size_);
        return s;
    }

    // New slots are carved from the newest block as they are needed rather than threaded on
    // the free list up front, so a fresh block is not touched, page by page, before it is used.
    void add_block() {
        void* memory;
        {
            // The domain counts the block; the hooks must not count it again in "heap".
            guard quiet;
            memory = ::operator new(block_bytes_, std::align_val_t(block_align_));
        }
        record_alloc(memory, block_bytes_, domain_);
        auto* base = static_cast<std::byte*>(memory);
        auto* header = ::new (static_cast<void*>(base + header_offset_)) block_header{head_};
        head_ = header;
        ++blocks_;
        bump_ = base;
        bump_end_ = base + slots_per_block_ * slot_size_;
    }

    void free_blocks() noexcept {
        while (head_) {
            block_header* next = head_->next;
            std::byte* base = reinterpret_cast<std::byte*>(head_) - header_offset_;
            record_free(base, block_bytes_, domain_);
            guard quiet;
            ::operator delete(base, std::align_val_t(block_align_));
            head_ = next;
        }
        blocks_ = 0;
        in_use_ = 0;
        free_ = nullptr;
        bump_ = bump_end_ = nullptr;
    }

    std::size_t slot_size_;
    std::size_t slot_align_;
    std::size_t block_align_;
    std::size_t block_bytes_ = 0;
    std::size_t header_offset_ = 0;
    std::size_t slots_per_block_ = 0;
    domain domain_;
    mutable Policy lock_;
    block_header* head_ = nullptr;
    std::byte* free_ = nullptr;
    std::byte* bump_ = nullptr;
    std::byte* bump_end_ = nullptr;
    std::size_t blocks_ = 0;
    std::size_t in_use_ = 0;
};

// The pools behind a pool_allocator and every allocator copied or rebound from it: one pool
// per slot shape (size and alignment), made when a node type of that shape first allocates and
// kept until the last allocator sharing the family is gone. Types of the same shape share a
// pool.
template <class Policy>
class pool_family {
public:
    pool_family(domain d, std::size_t block_bytes) noexcept : domain_(d), block_bytes_(block_bytes) {}

    pool_family(const pool_family&) = delete;
    pool_family& operator=(const pool_family&) = delete;

    ~pool_family() {
        while (head_) {
            entry* next = head_->next;
            delete head_;
            head_ = next;
        }
    }

    // The pool of this shape, made if there is none yet; may allocate and throw.
    raw_pool<Policy>& pool_for(std::size_t size, std::size_t align) {
        std::lock_guard<Policy> hold(lock_);
        if (raw_pool<Policy>* p = find_locked(size, align)) return *p;
        head_ = new entry{raw_pool<Policy>(size, align, block_bytes_, domain_), head_};
        return head_->pool;
    }

    // The pool of this shape; memory of that shape came from it, so it exists.
    raw_pool<Policy>* find(std::size_t size, std::size_t align) const noexcept {
        std::lock_guard<Policy> hold(lock_);
        return find_locked(size, align);
    }

    pool_stats stats() const noexcept {
        std::lock_guard<Policy> hold(lock_);
        pool_stats sum;
        for (const entry* e = head_; e; e = e->next) e->pool.add_stats(sum);
        return sum;
    }

    domain tracked_domain() const noexcept { return domain_; }
    std::size_t block_bytes() const noexcept { return block_bytes_; }

private:
    struct entry {
        raw_pool<Policy> pool;
        entry* next;
    };

    raw_pool<Policy>* find_locked(std::size_t size, std::size_t align) const noexcept {
        for (entry* e = head_; e; e = e->next) {
            if (e->pool.slot_size() == size && e->pool.slot_align() == align) return &e->pool;
        }
        return nullptr;
    }

    domain domain_;
    std::size_t block_bytes_;
    mutable Policy lock_;
    entry* head_ = nullptr;
};

}  // namespace detail

/// Fixed-size slots for objects of type T, carved from blocks of block_bytes() bytes that the
/// pool takes from the aligned global operator new, with freed slots kept on an intrusive free
/// list. A slot is max(sizeof(T), sizeof(void*)) rounded up to alignof(T) bytes, aligned for T
/// (over-aligned types included). Blocks are given back when the pool is destroyed or
/// release()d; the pool counts each block into its domain (see the top of this header).
/// ThreadPolicy is single_thread (no locking: one thread at a time) or thread_safe (a mutex
/// around every operation). Neither copyable nor movable: slots point into it.
template <class T, class ThreadPolicy = single_thread>
class slot_pool {
    static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_abstract_v<T>,
                  "slot_pool holds complete object types");

public:
    using value_type = T;              ///< the type of the objects in the slots
    using policy_type = ThreadPolicy;  ///< single_thread or thread_safe

    /// Bytes of one slot.
    static constexpr std::size_t slot_size = detail::pool_slot_size(sizeof(T), alignof(T));

    /// A pool counting into `d` that takes blocks of `block_bytes` (rounded up to hold its
    /// header and at least one slot, and to a multiple of the block alignment). Does not
    /// allocate: the first block is taken by the first allocate().
    explicit slot_pool(domain d = default_pool_domain(),
                       std::size_t block_bytes = default_pool_block_bytes)
        : raw_(slot_size, alignof(T), block_bytes, d) {}

    slot_pool(const slot_pool&) = delete;
    slot_pool& operator=(const slot_pool&) = delete;

    /// Gives every block back, whether or not its slots are still in use: objects still in
    /// slots are not destroyed, and pointers to them dangle.
    ~slot_pool() = default;

    /// An uninitialised slot for one T. Constant time: a free-list pop, or carving the next slot
    /// of the newest block, or (once per slots_per_block() slots) a new block from the upstream,
    /// which may throw std::bad_alloc. Thread safe under thread_safe.
    T* allocate() { return static_cast<T*>(raw_.allocate()); }

    /// Gives back a slot from allocate() of this pool (the object in it already destroyed);
    /// null is ignored. Constant time, never allocates. Thread safe under thread_safe.
    void deallocate(T* p) noexcept { raw_.deallocate(p); }

    /// A T constructed in a new slot from `args`; if the constructor throws, the slot is given
    /// back and the exception passes on. Costs allocate() plus the constructor.
    template <class... Args>
    T* create(Args&&... args) {
        T* slot = allocate();
        try {
            return ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
        } catch (...) {
            deallocate(slot);
            throw;
        }
    }

    /// Destroys the object at `p` (from create() of this pool) and gives its slot back; null is
    /// ignored. Never allocates.
    void destroy(T* p) noexcept {
        if (!p) return;
        p->~T();
        deallocate(p);
    }

    /// Gives every block back to the upstream if no slot is in use, and says whether it did;
    /// the next allocate() starts a new block. Linear in the blocks; never allocates.
    bool release() noexcept { return raw_.release(); }

    /// The pool's figures now. Constant time; never allocates; thread safe under thread_safe.
    pool_stats stats() const noexcept { return raw_.stats(); }

    /// Bytes of each block, as counted into the domain.
    std::size_t block_bytes() const noexcept { return raw_.block_bytes(); }

    /// Slots in each block.
    std::size_t slots_per_block() const noexcept { return raw_.slots_per_block(); }

    /// The domain the blocks are counted into.
    domain tracked_domain() const noexcept { return raw_.tracked_domain(); }

private:
    detail::raw_pool<ThreadPolicy> raw_;
};

/// A standard allocator for node-based containers: every allocate(1) takes a slot from a pool
/// of that type's slot shape; allocate(n) with n != 1 (bucket arrays, say) goes straight to the
/// aligned global operator new, where the hooks count it in "heap" as usual.
///
/// Contract: a pool_allocator made by the default or (domain, block_bytes) constructor starts
/// a new family of pools (one small heap allocation); copies and rebound copies share that
/// family, made pools included, and compare equal; allocators of different families never
/// compare equal. Propagation on copy, move and swap is on, so containers that trade contents
/// also trade families. The family and its blocks live until the last allocator sharing it is
/// gone, so a container's nodes live as long as the container. Under single_thread, every
/// container sharing a family must be used by one thread at a time; thread_safe lifts that.
template <class T, class ThreadPolicy = single_thread>
class pool_allocator {
    template <class U, class P>
    friend class pool_allocator;

    using family = detail::pool_family<ThreadPolicy>;

public:
    using value_type = T;              ///< the element type allocated
    using policy_type = ThreadPolicy;  ///< single_thread or thread_safe
    using propagate_on_container_copy_assignment = std::true_type;  ///< The family goes with the contents.
    using propagate_on_container_move_assignment = std::true_type;  ///< The family goes with the contents.
    using propagate_on_container_swap = std::true_type;  ///< The family goes with the contents.
    using is_always_equal = std::false_type;  ///< Equal only when sharing a family.

    /// The allocator for `U` in the same family, as containers ask for their nodes.
    template <class U>
    struct rebind {
        using other = pool_allocator<U, ThreadPolicy>;  ///< The rebound allocator type.
    };

    /// A new family counting into "slot_pool" with default-size blocks. Allocates the family;
    /// may throw std::bad_alloc.
    pool_allocator() : pool_allocator(default_pool_domain(), default_pool_block_bytes) {}

    /// A new family counting its blocks into `d`, each block `block_bytes` (see slot_pool).
    /// Allocates the family; may throw std::bad_alloc.
    explicit pool_allocator(domain d, std::size_t block_bytes = default_pool_block_bytes)
        : family_(std::make_shared<family>(d, block_bytes)) {}

    /// Shares `other`'s family. Never allocates.
    pool_allocator(const pool_allocator& other) noexcept = default;

    /// Shares `other`'s family (a rebound copy). Never allocates.
    template <class U>
    pool_allocator(const pool_allocator<U, ThreadPolicy>& other) noexcept
        : family_(other.family_) {}

    /// Shares `other`'s family from now on. Never allocates.
    pool_allocator& operator=(const pool_allocator& other) noexcept = default;

    /// Room for `n` T. For n == 1 a pool slot: a lookup of T's pool in the family on the first
    /// call of this allocator object (which may make the pool), then slot_pool::allocate().
    /// Otherwise the aligned global operator new. May throw std::bad_alloc, or
    /// std::bad_array_new_length when n * sizeof(T) overflows.
    T* allocate(std::size_t n) {
        if (n == 1) {
            if (!pool_) pool_ = &family_->pool_for(slot_size, alignof(T));
            return static_cast<T*>(pool_->allocate());
        }
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))));
    }

    /// Gives back `p` from allocate(n) of an allocator equal to this one. Constant time (one
    /// lookup when this object has not used T's pool yet); never allocates.
    void deallocate(T* p, std::size_t n) noexcept {
        if (n == 1) {
            if (!pool_) pool_ = family_->find(slot_size, alignof(T));
            pool_->deallocate(p);
            return;
        }
        ::operator delete(p, std::align_val_t(alignof(T)));
    }

    /// Figures of every pool of the family together. Never allocates; thread safe under
    /// thread_safe; linear in the family's pools.
    pool_stats stats() const noexcept { return family_->stats(); }

    /// The domain the family's blocks are counted into.
    domain tracked_domain() const noexcept { return family_->tracked_domain(); }

    // operator== (below) compares families of any two element types.
    template <class A, class B, class P>
    friend bool operator==(const pool_allocator<A, P>& a, const pool_allocator<B, P>& b) noexcept;

private:
    static constexpr std::size_t slot_size = detail::pool_slot_size(sizeof(T), alignof(T));

    std::shared_ptr<family> family_;
    // T's pool in the family, found on first use: keeps the lookup off the per-node path.
    detail::raw_pool<ThreadPolicy>* pool_ = nullptr;
};

/// Equal when they share a family: then either can free what the other allocated.
template <class A, class B, class P>
bool operator==(const pool_allocator<A, P>& a, const pool_allocator<B, P>& b) noexcept {
    return a.family_ == b.family_;
}

/// Not equal when their families differ.
template <class A, class B, class P>
bool operator!=(const pool_allocator<A, P>& a, const pool_allocator<B, P>& b) noexcept {
    return !(a == b);
}

MEMLENS_NAMESPACE_END
