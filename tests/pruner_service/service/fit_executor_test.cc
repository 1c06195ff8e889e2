// Tests of the fit executor: queue positions, order, concurrency limit, shutdown dropping queued jobs.
#include "pruner_service/service/fit_executor.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;

TEST(FitExecutorTest, RejectsBadThreadCounts) {
  EXPECT_THAT(FitExecutor::Create(0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(FitExecutor::Create(257), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FitExecutorTest, RunsInOrderOneAtATimeAndReportsQueuePositions) {
  ASSERT_OK_AND_ASSIGN(auto executor, FitExecutor::Create(1));
  absl::Notification release;
  absl::Mutex mutex;
  std::vector<int> order;
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  auto job = [&](int id) {
    return [&, id] {
      max_running = std::max(max_running.load(), ++running);
      if (id == 0) release.WaitForNotification();
      {
        absl::MutexLock lock(&mutex);
        order.push_back(id);
      }
      --running;
    };
  };
  ASSERT_OK_AND_ASSIGN(int ahead0, executor->Submit(job(0)));
  // Job 0 blocks the only thread: the next ones queue behind it.
  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_OK_AND_ASSIGN(int ahead1, executor->Submit(job(1)));
  ASSERT_OK_AND_ASSIGN(int ahead2, executor->Submit(job(2)));
  EXPECT_EQ(ahead0, 0);
  EXPECT_EQ(ahead1, 1);  // first in the queue
  EXPECT_EQ(ahead2, 2);
  release.Notify();
  for (;;) {
    absl::MutexLock lock(&mutex);
    if (order.size() == 3) break;
    mutex.AwaitWithTimeout(absl::Condition(+[](std::vector<int>* o) { return o->size() == 3; }, &order),
                           absl::Seconds(5));
  }
  EXPECT_THAT(order, ::testing::ElementsAre(0, 1, 2));
  EXPECT_EQ(max_running.load(), 1);
}

TEST(FitExecutorTest, ShutdownWaitsForRunningJobsAndDropsQueuedOnes) {
  ASSERT_OK_AND_ASSIGN(auto executor, FitExecutor::Create(1));
  absl::Notification started;
  std::atomic<bool> finished{false};
  std::atomic<bool> queued_ran{false};
  ASSERT_OK(executor->Submit([&] {
    started.Notify();
    absl::SleepFor(absl::Milliseconds(100));
    finished = true;
  }).status());
  started.WaitForNotification();
  ASSERT_OK(executor->Submit([&] { queued_ran = true; }).status());
  executor->Shutdown();
  EXPECT_TRUE(finished);
  EXPECT_FALSE(queued_ran);
  EXPECT_THAT(executor->Submit([] {}), StatusIs(absl::StatusCode::kUnavailable));
  executor->Shutdown();  // idempotent
}

}  // namespace
}  // namespace gcprune::pruner
