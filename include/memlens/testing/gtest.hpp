// memlens/testing/gtest.hpp: memory assertions for GoogleTest. Failures that GoogleTest records
// while a check runs are held back and replayed after it, so recording them is not charged to
// the block.
#pragma once

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include "checks.hpp"
#include "failure_files.hpp"
#include "failures.hpp"
#include "lost.hpp"

MEMLENS_NAMESPACE_BEGIN namespace gtest {

/// Collects the failures reported on this thread while a check runs.
class held_failures {
public:
    /// Reports every held result to GoogleTest with its type, file and line. GoogleTest's own
    /// assertion macros report through the same helper.
    void replay() const {
        for (int i = 0; i < results_.size(); ++i) {
            const ::testing::TestPartResult& r = results_.GetTestPartResult(i);
            ::testing::internal::AssertHelper(r.type(), r.file_name(), r.line_number(),
                                              r.message()) = ::testing::Message();
        }
    }

private:
    friend class failure_interceptor;
    ::testing::TestPartResultArray results_;
};

/// While alive, this thread's GoogleTest failures go to `held`, recorded outside every scope.
class failure_interceptor final : public ::testing::ScopedFakeTestPartResultReporter {
public:
    /// Starts intercepting this thread's failures into `held`, which must outlive it.
    explicit failure_interceptor(held_failures& held)
        : ScopedFakeTestPartResultReporter(INTERCEPT_ONLY_CURRENT_THREAD, &held.results_) {}

    /// Called by GoogleTest for each failure while intercepting: records it, outside the scopes.
    void ReportTestPartResult(const ::testing::TestPartResult& result) override {
        unscoped u;
        ScopedFakeTestPartResultReporter::ReportTestPartResult(result);
    }
};

/// A failed check's message, with the profile written for the running test ("Suite.Test",
/// write_failure_profile) when it has one.
inline std::string failure_message(const check_result& result) {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string name = test ? std::string(test->test_suite_name()) + "." + test->name() : "test";
    return result.message + write_failure_profile(result, name);
}

}  // namespace gtest
MEMLENS_NAMESPACE_END

#define MEMLENS_DETAIL_GTEST(fail, ...)                                                        \
    do {                                                                                       \
        ::memlens::gtest::held_failures memlens_held_;                                         \
        ::memlens::check_result memlens_result_;                                               \
        {                                                                                      \
            ::memlens::gtest::failure_interceptor memlens_interceptor_(memlens_held_);         \
            memlens_result_ = __VA_ARGS__;                                                     \
        }                                                                                      \
        memlens_held_.replay();                                                                \
        if (!memlens_result_.passed) fail() << ::memlens::gtest::failure_message(memlens_result_); \
    } while (false)

/// ASSERT / EXPECT that a block (a callable, then optional memlens::check_options) leaks nothing.
///@{
#define MEMLENS_ASSERT_NO_LEAKS(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_no_leaks(__VA_ARGS__))
#define MEMLENS_EXPECT_NO_LEAKS(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_no_leaks(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block (a callable, then optional memlens::check_options and
/// memlens::reach_options) loses nothing by memcheck's rules; still reachable blocks pass.
///@{
#define MEMLENS_ASSERT_NOTHING_LOST(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_nothing_lost(__VA_ARGS__))
#define MEMLENS_EXPECT_NOTHING_LOST(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_nothing_lost(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that no site's still reachable blocks, of those a block allocated, grow on
/// each of N runs: (runs, block[, options][, reach_options]), as check_nothing_new_reachable.
///@{
#define MEMLENS_ASSERT_NOTHING_NEW_REACHABLE(...) \
    MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_nothing_new_reachable(__VA_ARGS__))
#define MEMLENS_EXPECT_NOTHING_NEW_REACHABLE(...) \
    MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_nothing_new_reachable(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block's peak stays below a limit: (limit_bytes, block[, options]).
///@{
#define MEMLENS_ASSERT_PEAK_BELOW(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_peak_below(__VA_ARGS__))
#define MEMLENS_EXPECT_PEAK_BELOW(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_peak_below(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block makes exactly N allocations: (count, block[, options]).
///@{
#define MEMLENS_ASSERT_ALLOCS(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_allocs(__VA_ARGS__))
#define MEMLENS_EXPECT_ALLOCS(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_allocs(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block's peak is at most a limit, inclusive: (limit_bytes, block[, options]).
///@{
#define MEMLENS_ASSERT_PEAK_AT_MOST(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_peak_at_most(__VA_ARGS__))
#define MEMLENS_EXPECT_PEAK_AT_MOST(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_peak_at_most(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block allocates at most N bytes in total: (limit_bytes, block[, options]).
///@{
#define MEMLENS_ASSERT_ALLOCATED_AT_MOST(...) \
    MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_allocated_at_most(__VA_ARGS__))
#define MEMLENS_EXPECT_ALLOCATED_AT_MOST(...) \
    MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_allocated_at_most(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block makes at most N allocations: (count, block[, options]).
///@{
#define MEMLENS_ASSERT_ALLOCS_AT_MOST(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_allocs_at_most(__VA_ARGS__))
#define MEMLENS_EXPECT_ALLOCS_AT_MOST(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_allocs_at_most(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block neither allocates nor frees: (block[, options]).
///@{
#define MEMLENS_ASSERT_NO_ALLOCS(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_no_allocs(__VA_ARGS__))
#define MEMLENS_EXPECT_NO_ALLOCS(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_no_allocs(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block's second run leaks nothing: (block[, options]).
///@{
#define MEMLENS_ASSERT_NO_LEAKS_AFTER_WARM_UP(...) \
    MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_no_leaks_after_warm_up(__VA_ARGS__))
#define MEMLENS_EXPECT_NO_LEAKS_AFTER_WARM_UP(...) \
    MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_no_leaks_after_warm_up(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that no site's live bytes grow on each of N runs: (runs, block[, options]).
///@{
#define MEMLENS_ASSERT_NO_GROWTH(...) MEMLENS_DETAIL_GTEST(FAIL, ::memlens::check_no_growth(__VA_ARGS__))
#define MEMLENS_EXPECT_NO_GROWTH(...) MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::check_no_growth(__VA_ARGS__))
///@}
/// ASSERT / EXPECT that a block survives the failure of each of its allocations in turn:
/// (block[, verify][, options]), as memlens::for_each_allocation_failure.
///@{
#define MEMLENS_ASSERT_FAILURE_SAFE(...) \
    MEMLENS_DETAIL_GTEST(FAIL, ::memlens::detail::sweep_result(::memlens::for_each_allocation_failure(__VA_ARGS__)))
#define MEMLENS_EXPECT_FAILURE_SAFE(...) \
    MEMLENS_DETAIL_GTEST(ADD_FAILURE, ::memlens::detail::sweep_result(::memlens::for_each_allocation_failure(__VA_ARGS__)))
///@}
