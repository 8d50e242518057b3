// memlens/testing/catch2.hpp: memory assertions for Catch2 2.x. While a check runs, Catch2's own
// work inside REQUIRE / CHECK (building messages, recording results) is not charged to the block,
// nor failed by failure injection.
#pragma once

#include <catch2/catch.hpp>

#include "checks.hpp"
#include "failure_files.hpp"
#include "failures.hpp"
#include "lost.hpp"

MEMLENS_NAMESPACE_BEGIN namespace catch2 {

/// While alive, stands in for the running test's Catch2 result capture and forwards every call
/// to it inside an `Around` object (constructed before the call, destroyed after). Catch2 routes
/// each assertion through the result capture only after the asserted expression has been
/// evaluated, so `Around` covers the framework's bookkeeping and not the user's expression.
template <class Around>
class wrapped_capture final : public Catch::IResultCapture {
public:
    wrapped_capture() : inner_(&Catch::getResultCapture()) {
        Catch::getCurrentMutableContext().setResultCapture(this);
    }
    ~wrapped_capture() override { restore(); }
    wrapped_capture(const wrapped_capture&) = delete;
    wrapped_capture& operator=(const wrapped_capture&) = delete;

    /// Puts Catch2's own result capture back; called by the destructor at the latest.
    void restore() noexcept {
        if (inner_) Catch::getCurrentMutableContext().setResultCapture(inner_);
        inner_ = nullptr;
    }

    ///@{
    /// Catch2's IResultCapture interface, called by Catch2, not by tests: each call goes to the
    /// test's own result capture, inside an `Around` unless it only reads.
    bool sectionStarted(Catch::SectionInfo const& info, Catch::Counts& assertions) override {
        Around around;
        return inner_->sectionStarted(info, assertions);
    }
    void sectionEnded(Catch::SectionEndInfo const& info) override {
        Around around;
        inner_->sectionEnded(info);
    }
    void sectionEndedEarly(Catch::SectionEndInfo const& info) override {
        Around around;
        inner_->sectionEndedEarly(info);
    }
    auto acquireGeneratorTracker(Catch::StringRef name, Catch::SourceLineInfo const& line)
        -> Catch::IGeneratorTracker& override {
        Around around;
        return inner_->acquireGeneratorTracker(name, line);
    }
#if defined(CATCH_CONFIG_ENABLE_BENCHMARKING)
    void benchmarkPreparing(std::string const& name) override {
        Around around;
        inner_->benchmarkPreparing(name);
    }
    void benchmarkStarting(Catch::BenchmarkInfo const& info) override {
        Around around;
        inner_->benchmarkStarting(info);
    }
    void benchmarkEnded(Catch::BenchmarkStats<> const& stats) override {
        Around around;
        inner_->benchmarkEnded(stats);
    }
    void benchmarkFailed(std::string const& error) override {
        Around around;
        inner_->benchmarkFailed(error);
    }
#endif
    void pushScopedMessage(Catch::MessageInfo const& message) override {
        Around around;
        inner_->pushScopedMessage(message);
    }
    void popScopedMessage(Catch::MessageInfo const& message) override {
        Around around;
        inner_->popScopedMessage(message);
    }
    void emplaceUnscopedMessage(Catch::MessageBuilder const& builder) override {
        Around around;
        inner_->emplaceUnscopedMessage(builder);
    }
    void handleFatalErrorCondition(Catch::StringRef message) override {
        Around around;
        inner_->handleFatalErrorCondition(message);
    }
    void handleExpr(Catch::AssertionInfo const& info, Catch::ITransientExpression const& expr,
                    Catch::AssertionReaction& reaction) override {
        Around around;
        inner_->handleExpr(info, expr, reaction);
    }
    void handleMessage(Catch::AssertionInfo const& info, Catch::ResultWas::OfType type,
                       Catch::StringRef const& message, Catch::AssertionReaction& reaction) override {
        Around around;
        inner_->handleMessage(info, type, message, reaction);
    }
    void handleUnexpectedExceptionNotThrown(Catch::AssertionInfo const& info,
                                            Catch::AssertionReaction& reaction) override {
        Around around;
        inner_->handleUnexpectedExceptionNotThrown(info, reaction);
    }
    void handleUnexpectedInflightException(Catch::AssertionInfo const& info,
                                           std::string const& message,
                                           Catch::AssertionReaction& reaction) override {
        Around around;
        inner_->handleUnexpectedInflightException(info, message, reaction);
    }
    void handleIncomplete(Catch::AssertionInfo const& info) override {
        Around around;
        inner_->handleIncomplete(info);
    }
    void handleNonExpr(Catch::AssertionInfo const& info, Catch::ResultWas::OfType type,
                       Catch::AssertionReaction& reaction) override {
        Around around;
        inner_->handleNonExpr(info, type, reaction);
    }
    bool lastAssertionPassed() override { return inner_->lastAssertionPassed(); }
    void assertionPassed() override {
        Around around;
        inner_->assertionPassed();
    }
    std::string getCurrentTestName() const override {
        Around around;
        return inner_->getCurrentTestName();
    }
    const Catch::AssertionResult* getLastResult() const override { return inner_->getLastResult(); }
    void exceptionEarlyReported() override { inner_->exceptionEarlyReported(); }
    ///@}

private:
    Catch::IResultCapture* inner_;
};

/// Keeps Catch2's own work inside assertions out of the calling thread's scopes while alive.
using framework_excluded = wrapped_capture<unscoped>;

/// A failed check's message, with the profile written for the running test
/// (write_failure_profile) when it has one.
inline std::string failure_message(const check_result& result) {
    return result.message + write_failure_profile(result, Catch::getResultCapture().getCurrentTestName());
}

}  // namespace catch2
MEMLENS_NAMESPACE_END

// Runs `check` with Catch2's bookkeeping excluded, then reports a failure with `fail`.
#define MEMLENS_DETAIL_CATCH2(fail, ...)                                                       \
    do {                                                                                       \
        ::memlens::check_result memlens_result_;                                               \
        {                                                                                      \
            ::memlens::catch2::framework_excluded memlens_excluded_;                           \
            memlens_result_ = __VA_ARGS__;                                                     \
        }                                                                                      \
        if (!memlens_result_.passed) fail(::memlens::catch2::failure_message(memlens_result_)); \
    } while (false)

/// REQUIRE / CHECK that a block (a callable, then optional memlens::check_options) leaks
/// nothing.
///@{
#define MEMLENS_REQUIRE_NO_LEAKS(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_no_leaks(__VA_ARGS__))
#define MEMLENS_CHECK_NO_LEAKS(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_no_leaks(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block (a callable, then optional memlens::check_options and
/// memlens::reach_options) loses nothing by memcheck's rules; still reachable blocks pass.
///@{
#define MEMLENS_REQUIRE_NOTHING_LOST(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_nothing_lost(__VA_ARGS__))
#define MEMLENS_CHECK_NOTHING_LOST(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_nothing_lost(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that no site's still reachable blocks, of those a block allocated, grow on
/// each of N runs: (runs, block[, options][, reach_options]), as check_nothing_new_reachable.
///@{
#define MEMLENS_REQUIRE_NOTHING_NEW_REACHABLE(...) \
    MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_nothing_new_reachable(__VA_ARGS__))
#define MEMLENS_CHECK_NOTHING_NEW_REACHABLE(...) \
    MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_nothing_new_reachable(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block's peak stays below a limit: (limit_bytes, block[, options]).
///@{
#define MEMLENS_REQUIRE_PEAK_BELOW(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_peak_below(__VA_ARGS__))
#define MEMLENS_CHECK_PEAK_BELOW(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_peak_below(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block makes exactly N allocations: (count, block[, options]).
///@{
#define MEMLENS_REQUIRE_ALLOCS(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_allocs(__VA_ARGS__))
#define MEMLENS_CHECK_ALLOCS(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_allocs(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block's peak is at most a limit, inclusive: (limit_bytes, block[, options]).
///@{
#define MEMLENS_REQUIRE_PEAK_AT_MOST(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_peak_at_most(__VA_ARGS__))
#define MEMLENS_CHECK_PEAK_AT_MOST(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_peak_at_most(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block allocates at most N bytes in total: (limit_bytes, block[, options]).
///@{
#define MEMLENS_REQUIRE_ALLOCATED_AT_MOST(...) \
    MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_allocated_at_most(__VA_ARGS__))
#define MEMLENS_CHECK_ALLOCATED_AT_MOST(...) \
    MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_allocated_at_most(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block makes at most N allocations: (count, block[, options]).
///@{
#define MEMLENS_REQUIRE_ALLOCS_AT_MOST(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_allocs_at_most(__VA_ARGS__))
#define MEMLENS_CHECK_ALLOCS_AT_MOST(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_allocs_at_most(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block neither allocates nor frees: (block[, options]).
///@{
#define MEMLENS_REQUIRE_NO_ALLOCS(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_no_allocs(__VA_ARGS__))
#define MEMLENS_CHECK_NO_ALLOCS(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_no_allocs(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block's second run leaks nothing: (block[, options]).
///@{
#define MEMLENS_REQUIRE_NO_LEAKS_AFTER_WARM_UP(...) \
    MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_no_leaks_after_warm_up(__VA_ARGS__))
#define MEMLENS_CHECK_NO_LEAKS_AFTER_WARM_UP(...) \
    MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_no_leaks_after_warm_up(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that no site's live bytes grow on each of N runs: (runs, block[, options]).
///@{
#define MEMLENS_REQUIRE_NO_GROWTH(...) MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::check_no_growth(__VA_ARGS__))
#define MEMLENS_CHECK_NO_GROWTH(...) MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::check_no_growth(__VA_ARGS__))
///@}
/// REQUIRE / CHECK that a block survives the failure of each of its allocations in turn:
/// (block[, verify][, options]), as memlens::for_each_allocation_failure; Catch2 assertions
/// inside the block and `verify` neither count as its allocations nor fail.
///@{
#define MEMLENS_REQUIRE_FAILURE_SAFE(...) \
    MEMLENS_DETAIL_CATCH2(FAIL, ::memlens::detail::sweep_result(::memlens::for_each_allocation_failure(__VA_ARGS__)))
#define MEMLENS_CHECK_FAILURE_SAFE(...) \
    MEMLENS_DETAIL_CATCH2(FAIL_CHECK, ::memlens::detail::sweep_result(::memlens::for_each_allocation_failure(__VA_ARGS__)))
///@}
