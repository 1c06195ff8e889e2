// Tests of the self-pipe signal watcher with real signals.
#include "common/shutdown_signal.h"

#include <signal.h>

#include <atomic>
#include <cstring>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIs;

TEST(ShutdownSignalWatcherTest, RunsCallbackOnceForSigterm) {
  absl::Notification called;
  std::atomic<int> calls{0};
  std::atomic<int> received{-1};
  ASSERT_OK_AND_ASSIGN(auto watcher, ShutdownSignalWatcher::Install([&](int signo) {
                         received = signo;
                         if (calls.fetch_add(1) == 0) called.Notify();
                       }));
  ASSERT_EQ(raise(SIGTERM), 0);
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(10)));
  watcher->RequestShutdown();  // after a signal: no second call
  watcher.reset();
  EXPECT_EQ(received.load(), SIGTERM);
  EXPECT_EQ(calls.load(), 1);
}

TEST(ShutdownSignalWatcherTest, RequestShutdownRunsCallbackWithZero) {
  absl::Notification called;
  std::atomic<int> received{-1};
  ASSERT_OK_AND_ASSIGN(auto watcher, ShutdownSignalWatcher::Install([&](int signo) {
                         received = signo;
                         called.Notify();
                       }));
  watcher->RequestShutdown();
  watcher->RequestShutdown();
  ASSERT_TRUE(called.WaitForNotificationWithTimeout(absl::Seconds(10)));
  watcher.reset();
  EXPECT_EQ(received.load(), 0);
}

TEST(ShutdownSignalWatcherTest, OnlyOneWatcherAtATime) {
  ASSERT_OK_AND_ASSIGN(auto first, ShutdownSignalWatcher::Install([](int) {}));
  EXPECT_THAT(ShutdownSignalWatcher::Install([](int) {}), StatusIs(absl::StatusCode::kFailedPrecondition));
  first.reset();
  ASSERT_OK_AND_ASSIGN(auto second, ShutdownSignalWatcher::Install([](int) {}));
}

void MarkerHandler(int) {}

TEST(ShutdownSignalWatcherTest, RestoresPreviousHandlers) {
  struct sigaction marker;
  std::memset(&marker, 0, sizeof(marker));
  marker.sa_handler = MarkerHandler;
  struct sigaction saved;
  ASSERT_EQ(sigaction(SIGINT, &marker, &saved), 0);
  {
    ASSERT_OK_AND_ASSIGN(auto watcher, ShutdownSignalWatcher::Install([](int) {}));
    struct sigaction during;
    ASSERT_EQ(sigaction(SIGINT, nullptr, &during), 0);
    EXPECT_NE(during.sa_handler, MarkerHandler);
  }
  struct sigaction after;
  ASSERT_EQ(sigaction(SIGINT, &saved, &after), 0);
  EXPECT_EQ(after.sa_handler, MarkerHandler);
}

TEST(ShutdownSignalWatcherDeathTest, SecondSignalExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        absl::Notification never;
        auto watcher = ShutdownSignalWatcher::Install([&never](int) {
          // A shutdown that hangs: only the second signal can end the process.
          never.WaitForNotification();
        });
        if (!watcher.ok()) _exit(1);
        raise(SIGINT);
        absl::SleepFor(absl::Milliseconds(100));
        raise(SIGINT);
        absl::SleepFor(absl::Seconds(10));
        _exit(2);
      },
      ::testing::ExitedWithCode(128 + SIGINT), "");
}

}  // namespace
}  // namespace gcprune::common
