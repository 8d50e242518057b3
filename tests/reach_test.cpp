// classify_leaks(): leak kinds by reachability, back-references, and the nothing-lost check.
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <catch2/catch.hpp>
#include <memlens/testing/catch2.hpp>
#include <memlens/view/leak_kinds.hpp>

#include "support.hpp"
#include "tracking_support.hpp"

// Under AddressSanitizer with detect_stack_use_after_return (as CI runs it) locals live in
// fake frames off the thread stacks, where no scan of stacks finds them, and ThreadSanitizer
// delays signals to points of its own: the kinds would be wrong for reasons that are not
// memlens's, so the scan is tested without them.
#if !defined(MEMLENS_DETAIL_SANITIZED)

namespace {

// Addresses are kept scrambled, so that no copy of a lost block's pointer stays in the test's
// frame to keep it reachable.
constexpr std::uintptr_t scramble = 0x5a5a5a5a5a5a5a5aull;

struct link_node {
    link_node* next;
    std::uint64_t payload[3];
};

link_node* volatile held_list = nullptr;
char* volatile held_inside = nullptr;

// A cycle of two nodes whose every pointer is dropped: memcheck calls one definitely lost, the
// other indirectly lost.
__attribute__((noinline)) std::uintptr_t lost_cycle() {
    auto* a = new link_node{};
    auto* b = new link_node{};
    a->next = b;
    b->next = a;
    return reinterpret_cast<std::uintptr_t>(a) ^ scramble;
}

// A global holds the first of three nodes: all still reachable.
__attribute__((noinline)) void reachable_list() {
    auto* c = new link_node{};
    auto* b = new link_node{c, {}};
    held_list = new link_node{b, {}};
}

// A global holds a pointer into the middle of a block, which holds the start of another: both
// possibly lost (a block reached from a possibly lost one is possibly lost too).
__attribute__((noinline)) std::uintptr_t possible_pair() {
    auto* inner = new link_node{};
    auto* outer = new link_node{inner, {}};
    held_inside = reinterpret_cast<char*>(outer) + 8;
    return reinterpret_cast<std::uintptr_t>(inner) ^ scramble;
}

__attribute__((noinline)) void drop_one_block() {
    auto* lost = new link_node{};
    memlens::keep_observable(lost);
}

memlens::leak_kind kind_at(const memlens::leak_kinds& r, std::uintptr_t address) {
    const std::ptrdiff_t row = r.find(address);
    REQUIRE(row >= 0);
    return r.reach[static_cast<std::size_t>(row)].kind;
}

struct blocked_thread {
    int pipe_fds[2] = {-1, -1};
    std::atomic<int> ready{0};
    std::atomic<long> read_result{0};
    std::atomic<int> read_errno{0};
    std::atomic<std::uintptr_t> block{0};
    std::atomic<int> tid{0};
    bool block_signal = false;
};

// Waits until thread `tid` sleeps (in its read()), so that a loaded machine cannot scan it
// before it gets there.
void wait_until_sleeping(int tid) {
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
    for (int attempt = 0; attempt < 10000; ++attempt) {
        if (FILE* f = std::fopen(path.c_str(), "r")) {
            char text[512] = {};
            const std::size_t n = std::fread(text, 1, sizeof text - 1, f);
            std::fclose(f);
            const char* close = std::strrchr(text, ')');
            if (n > 0 && close && close[1] == ' ' && close[2] == 'S') return;
        }
        ::usleep(1000);
    }
    FAIL("thread " << tid << " never went to sleep in read()");
}

void* blocked_reader(void* arg) {
    auto* t = static_cast<blocked_thread*>(arg);
    if (t->block_signal) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGRTMAX - 2);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }
    t->tid.store(static_cast<int>(::syscall(SYS_gettid)));
    char* volatile on_stack = new char[48]();
    t->block.store(reinterpret_cast<std::uintptr_t>(on_stack) ^ scramble);
    t->ready.store(1);
    char c = 0;
    const long n = ::read(t->pipe_fds[0], &c, 1);
    t->read_result.store(n);
    t->read_errno.store(n < 0 ? errno : 0);
    delete[] on_stack;
    return nullptr;
}

}  // namespace

TEST_CASE("classify_leaks tells the four kinds apart as memcheck does", "[reach]") {
    memlens_test::per_block_mode on;
    const std::uintptr_t cycle_scrambled = lost_cycle();
    reachable_list();
    const std::uintptr_t inner_scrambled = possible_pair();

    const memlens::leak_kinds r = memlens::classify_leaks();
    const std::uintptr_t cycle = cycle_scrambled ^ scramble;
    const std::uintptr_t inner = inner_scrambled ^ scramble;
    REQUIRE(r.unstopped.empty());
    CHECK(kind_at(r, reinterpret_cast<std::uintptr_t>(held_list)) == memlens::leak_kind::still_reachable);
    CHECK(kind_at(r, reinterpret_cast<std::uintptr_t>(held_list->next)) == memlens::leak_kind::still_reachable);
    CHECK(kind_at(r, reinterpret_cast<std::uintptr_t>(held_list->next->next)) ==
          memlens::leak_kind::still_reachable);
    // The cycle's node at the lower address leads its clique, as in memcheck, which visits
    // blocks by address; the other is indirectly lost.
    const auto* a = reinterpret_cast<const link_node*>(cycle);
    const auto low = std::min(cycle, reinterpret_cast<std::uintptr_t>(a->next));
    const auto high = std::max(cycle, reinterpret_cast<std::uintptr_t>(a->next));
    CHECK(kind_at(r, low) == memlens::leak_kind::definitely_lost);
    CHECK(kind_at(r, high) == memlens::leak_kind::indirectly_lost);
    CHECK(kind_at(r, reinterpret_cast<std::uintptr_t>(held_inside) - 8) == memlens::leak_kind::possibly_lost);
    CHECK(kind_at(r, inner) == memlens::leak_kind::possibly_lost);
    // An interior address finds its block.
    CHECK(r.find(cycle + 5) == r.find(cycle));

    // The totals count each row once, in its kind.
    std::uint64_t blocks = 0, bytes = 0;
    for (const memlens::kind_figures& f : r.totals) {
        blocks += f.blocks;
        bytes += f.bytes;
    }
    CHECK(blocks == r.blocks.allocations.size());
    std::uint64_t sum = 0;
    for (const memlens::live_allocation& x : r.blocks.allocations) sum += x.size;
    CHECK(bytes == sum);

    const std::string text = memlens::describe(r);
    CHECK(text.find("definitely lost: ") != std::string::npos);
    CHECK(text.find("indirectly lost: ") != std::string::npos);
    CHECK(text.find("possibly lost: ") != std::string::npos);
    CHECK(text.find("still reachable: ") != std::string::npos);
    CHECK(text.find("lost_cycle") != std::string::npos);

    auto* b = a->next;
    delete a;
    delete b;
    delete reinterpret_cast<link_node*>(inner);
    delete reinterpret_cast<link_node*>(held_inside - 8);
    held_inside = nullptr;
    link_node* n = held_list;
    held_list = nullptr;
    while (n) {
        link_node* next = n->next;
        delete n;
        n = next;
    }
}

namespace {

void* volatile* volatile untracked_slot = nullptr;

// A new block whose one pointer is stored at `slot`.
__attribute__((noinline)) std::uintptr_t hold_at(void* volatile* slot) {
    auto* n = new link_node{};
    *slot = n;
    return reinterpret_cast<std::uintptr_t>(n) ^ scramble;
}

}  // namespace

TEST_CASE("memory memlens does not track is neither root nor scanned: what only it holds is lost", "[reach]") {
    memlens_test::per_block_mode on;
    // A malloc block (the operator new hooks do not see malloc) that a global holds, and a
    // mapping of the program's own: memcheck would scan both and call their blocks reachable.
    auto* from_malloc = static_cast<void* volatile*>(std::malloc(sizeof(void*)));
    untracked_slot = from_malloc;
    void* mapping = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mapping != MAP_FAILED);
    const std::uintptr_t via_malloc = hold_at(from_malloc);  // scrambled until the scan is done
    const std::uintptr_t via_mapping = hold_at(static_cast<void* volatile*>(mapping));
    // A tracked block that holds the same kind of pointer keeps its block reachable.
    auto* tracked = new link_node{};
    held_list = tracked;
    const std::uintptr_t via_tracked = hold_at(reinterpret_cast<void* volatile*>(&tracked->next));

    const memlens::leak_kinds r = memlens::classify_leaks();
    CHECK(r.find(reinterpret_cast<std::uintptr_t>(from_malloc)) < 0);
    CHECK(kind_at(r, via_malloc ^ scramble) == memlens::leak_kind::definitely_lost);
    CHECK(kind_at(r, via_mapping ^ scramble) == memlens::leak_kind::definitely_lost);
    CHECK(kind_at(r, via_tracked ^ scramble) == memlens::leak_kind::still_reachable);

    delete reinterpret_cast<link_node*>(via_malloc ^ scramble);
    delete reinterpret_cast<link_node*>(via_mapping ^ scramble);
    delete tracked->next;
    delete tracked;
    held_list = nullptr;
    untracked_slot = nullptr;
    std::free(const_cast<void**>(from_malloc));
    ::munmap(mapping, 4096);
}

TEST_CASE("describe_backrefs follows the chain from a block to its root", "[reach]") {
    memlens_test::per_block_mode on;
    reachable_list();
    const auto last = reinterpret_cast<std::uintptr_t>(held_list->next->next);
    const memlens::leak_kinds r = memlens::classify_leaks();
    const std::string chain = memlens::describe_backrefs(r, last + 3);
    INFO(chain);
    // Two holders, each at offset 0 (link_node::next), then the global.
    std::size_t holders = 0;
    for (std::size_t at = chain.find("<- at offset 0 of block"); at != std::string::npos;
         at = chain.find("<- at offset 0 of block", at + 1)) {
        ++holders;
    }
    CHECK(holders == 2);
    CHECK(chain.find("<- root: ") != std::string::npos);
    CHECK(chain.find("global") != std::string::npos);
    CHECK(chain.find("reachable_list") != std::string::npos);
    CHECK(memlens::describe_backrefs(r, 0).find("is in no block") != std::string::npos);
    link_node* n = held_list;
    held_list = nullptr;
    while (n) {
        link_node* next = n->next;
        delete n;
        n = next;
    }
}

TEST_CASE("a block held only on another thread's stack is reachable, and its read() is not interrupted", "[reach]") {
    memlens_test::per_block_mode on;
    blocked_thread t;
    REQUIRE(::pipe(t.pipe_fds) == 0);
    pthread_t thread;
    REQUIRE(pthread_create(&thread, nullptr, blocked_reader, &t) == 0);
    while (t.ready.load() == 0) ::usleep(1000);
    wait_until_sleeping(t.tid.load());
    const memlens::leak_kinds r = memlens::classify_leaks();
    CHECK(r.unstopped.empty());
    CHECK(kind_at(r, t.block.load() ^ scramble) == memlens::leak_kind::still_reachable);
    REQUIRE(::write(t.pipe_fds[1], "x", 1) == 1);
    pthread_join(thread, nullptr);
    // SA_RESTART: the read went on after the stop and got its byte.
    CHECK(t.read_result.load() == 1);
    CHECK(t.read_errno.load() == 0);
    ::close(t.pipe_fds[0]);
    ::close(t.pipe_fds[1]);
}

TEST_CASE("a thread that blocks the stop signal is reported, and its stack is still read", "[reach]") {
    memlens_test::per_block_mode on;
    blocked_thread t;
    t.block_signal = true;
    REQUIRE(::pipe(t.pipe_fds) == 0);
    pthread_t thread;
    REQUIRE(pthread_create(&thread, nullptr, blocked_reader, &t) == 0);
    while (t.ready.load() == 0) ::usleep(1000);
    wait_until_sleeping(t.tid.load());
    memlens::reach_options o;
    o.stop_timeout_ms = 50;
    const memlens::leak_kinds r = memlens::classify_leaks(o);
    REQUIRE(r.unstopped.size() == 1);
    CHECK(memlens::describe(r).find("did not stop") != std::string::npos);
    // Blocked in read(), its stack pointer is known: its whole stack mapping was read.
    CHECK(kind_at(r, t.block.load() ^ scramble) == memlens::leak_kind::still_reachable);
    REQUIRE(::write(t.pipe_fds[1], "x", 1) == 1);
    pthread_join(thread, nullptr);
    CHECK(t.read_result.load() == 1);
    ::close(t.pipe_fds[0]);
    ::close(t.pipe_fds[1]);
    // The signal stays pending until the thread ends; a later scan is not disturbed by it.
    const memlens::leak_kinds again = memlens::classify_leaks(o);
    CHECK(again.unstopped.empty());
}

TEST_CASE("check_nothing_lost passes what stays reachable and fails what is lost", "[reach]") {
    const memlens::check_result kept = memlens::check_nothing_lost([] { reachable_list(); });
    INFO(kept.message);
    CHECK(kept.passed);
    link_node* n = held_list;
    held_list = nullptr;
    while (n) {
        link_node* next = n->next;
        delete n;
        n = next;
    }

    const memlens::check_result dropped = memlens::check_nothing_lost([] { drop_one_block(); });
    INFO(dropped.message);
    CHECK_FALSE(dropped.passed);
    CHECK(dropped.message.find("definitely lost: 32 bytes in 1 blocks") != std::string::npos);
    CHECK(dropped.message.find("drop_one_block") != std::string::npos);

    MEMLENS_CHECK_NOTHING_LOST([] {
        auto* p = new link_node{};
        memlens::keep_observable(p);
        delete p;
    });
}

namespace {

// A registry that only grows: each call appends a node at its tail, so that the newest node is
// held by the one before it, and the first by a global.
link_node* volatile registry_head = nullptr;

__attribute__((noinline)) void grow_registry() {
    auto* n = new link_node{};
    if (!registry_head) {
        registry_head = n;
        return;
    }
    link_node* tail = registry_head;
    while (tail->next) tail = tail->next;
    tail->next = n;
}

// A cache of four entries: the first call fills it, each later call replaces one entry.
char* volatile bounded_entries[4] = {};
int bounded_calls = 0;

__attribute__((noinline)) void use_bounded_cache() {
    if (!bounded_entries[0]) {
        for (char* volatile& e : bounded_entries) e = new char[40]();
    } else {
        char* volatile& e = bounded_entries[bounded_calls % 4];
        delete[] e;
        e = new char[40]();
    }
    ++bounded_calls;
}

void free_registry() {
    link_node* n = registry_head;
    registry_head = nullptr;
    while (n) {
        link_node* next = n->next;
        delete n;
        n = next;
    }
}

void free_bounded_cache() {
    for (char* volatile& e : bounded_entries) {
        delete[] e;
        e = nullptr;
    }
}

}  // namespace

TEST_CASE("check_nothing_new_reachable fails a registry that only grows and passes a bounded cache", "[reach]") {
    const memlens::check_result grows = memlens::check_nothing_new_reachable(3, [] { grow_registry(); });
    free_registry();
    INFO(grows.message);
    CHECK_FALSE(grows.passed);
    CHECK(grows.message.find("still reachable 32 bytes in 1 block, 64 bytes in 2 blocks, 96 bytes in 3 blocks "
                             "after runs 1..3 (+32 bytes a run)") != std::string::npos);
    CHECK(grows.message.find("grow_registry") != std::string::npos);
    // The newest node is held at offset 0 of the node before it, that one by the one before,
    // and the first by the global.
    CHECK(grows.message.find("memlens: what keeps ") != std::string::npos);
    const std::size_t chain = grows.message.find("<- at offset 0 of block");
    CHECK(chain != std::string::npos);
    CHECK(grows.message.find("<- at offset 0 of block", chain + 1) != std::string::npos);
    CHECK(grows.message.find("<- root: ") != std::string::npos);
    REQUIRE(grows.profile);
    CHECK(grows.profile->allocations.size() == 3);

    const memlens::check_result bounded = memlens::check_nothing_new_reachable(4, [] { use_bounded_cache(); });
    INFO(bounded.message);
    CHECK(bounded.passed);
    CHECK_FALSE(bounded.profile);
    free_bounded_cache();
    MEMLENS_CHECK_NOTHING_NEW_REACHABLE(3, [] { use_bounded_cache(); });
    // Filled before the check, the cache turns over one entry a run: the block's own entries in
    // it grow for four runs, and a check of three runs cannot tell that from a registry.
    const memlens::check_result turning = memlens::check_nothing_new_reachable(3, [] { use_bounded_cache(); });
    CHECK_FALSE(turning.passed);
    const memlens::check_result turned = memlens::check_nothing_new_reachable(6, [] { use_bounded_cache(); });
    CHECK(turned.passed);
    free_bounded_cache();

    // What a block frees, or loses, is not still reachable: it passes this check.
    const memlens::check_result lost = memlens::check_nothing_new_reachable(3, [] { drop_one_block(); });
    CHECK(lost.passed);

    const memlens::check_result once = memlens::check_nothing_new_reachable(1, [] { grow_registry(); });
    CHECK_FALSE(once.passed);
    CHECK(once.message == "memlens: check_nothing_new_reachable needs at least 2 runs to see growth, got 1");
    free_registry();
}

TEST_CASE("MEMLENS_REQUIRE_NOTHING_NEW_REACHABLE fails a registry that only grows", "[reach][!shouldfail]") {
    memlens_test::temporary_directory profiles;  // where the failure's profile goes
    ::setenv("MEMLENS_FAILURE_DIR", profiles.path.c_str(), 1);
    struct cleanup {
        ~cleanup() {
            ::unsetenv("MEMLENS_FAILURE_DIR");
            free_registry();
        }
    } at_end;
    MEMLENS_REQUIRE_NOTHING_NEW_REACHABLE(3, [] { grow_registry(); });
}

TEST_CASE("MEMLENS_LEAKS_AT_EXIT=kinds asks for every block and a classified exit report", "[reach][config]") {
    memlens::detail::live_settings s;
    ::setenv("MEMLENS_LEAKS_AT_EXIT", "kinds", 1);
    memlens::detail::read_environment(s);
    CHECK(s.leaks_at_exit);
    CHECK(s.leak_kinds_at_exit);
    CHECK(s.blocks);
    CHECK(s.mode == memlens::detail::live_mode::sites);

    std::string refused;
    static std::string* sink = nullptr;
    sink = &refused;
    memlens::set_error_handler([](const char* m) noexcept { *sink = m; });
    ::setenv("MEMLENS_LEAKS_AT_EXIT", "kindz", 1);
    memlens::detail::live_settings t;
    memlens::detail::read_environment(t);
    CHECK_FALSE(t.leaks_at_exit);
    CHECK_FALSE(t.leak_kinds_at_exit);
    ::unsetenv("MEMLENS_LEAKS_AT_EXIT");
    CHECK(refused == "MEMLENS_LEAKS_AT_EXIT=\"kindz\" is not valid; accepted: 0, 1, kinds; not reporting leaks at exit");

    memlens::tracking_config c = memlens::current_config();
    c.leak_kinds_at_exit = true;
    c.blocks = false;
    CHECK_FALSE(memlens::configure(c));
    CHECK(refused.find("leak_kinds_at_exit needs mode = sites and blocks = true") != std::string::npos);
    memlens::set_error_handler(nullptr);
}

#endif
