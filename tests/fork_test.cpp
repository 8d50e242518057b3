// After fork(), the child's figures carry on from the parent's.
#include <memlens/track.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

TEST_CASE("figures are right in a forked child", "[fork]") {
    const auto d = memlens::domain::named("fork.child");
    memlens::record_alloc(nullptr, 4000, d);
    // A second thread holds unflushed bytes at the moment of the fork.
    std::atomic<int> stage{0};
    std::thread other([&] {
        memlens::record_alloc(nullptr, 600, d);
        stage = 1;
        while (stage.load() != 2) std::this_thread::yield();
    });
    while (stage.load() != 1) std::this_thread::yield();

    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Only this thread exists here: no Catch2 assertions, just an exit code.
        bool ok = memlens::stats(d).current == 4600;
        memlens::record_alloc(nullptr, 400, d);
        ok = ok && memlens::stats(d).current == 5000 && memlens::stats(d).peak == 5000;
        // ThreadSanitizer cannot start threads in a child of a multithreaded process.
#if !defined(__SANITIZE_THREAD__)
        std::thread t([d] { memlens::record_free(nullptr, 600, d); });
        t.join();
        ok = ok && memlens::stats(d).current == 4400;
#endif
        ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    stage = 2;
    other.join();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(memlens::stats(d).current == 4600);
    memlens::record_free(nullptr, 4000, d);
    memlens::record_free(nullptr, 600, d);
}
