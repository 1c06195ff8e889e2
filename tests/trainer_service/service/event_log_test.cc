// Tests of the bounded sequenced event log: sequence numbers, replay, dropping the oldest events,
// closing with RunFinished, and subscriber notifications.
#include "trainer_service/service/event_log.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

v1::RunEvent Progress(int64_t batch) {
  v1::RunEvent event;
  event.mutable_step_progress()->set_batch(batch);
  return event;
}

TEST(EventLogTest, SequencesStartAtOneWithoutGapsAndAreStamped) {
  EventLog log("run-1", 10);
  EXPECT_EQ(log.Append(Progress(1)), 1);
  EXPECT_EQ(log.Append(Progress(2)), 2);
  EXPECT_EQ(log.Append(Progress(3)), 3);
  EXPECT_EQ(log.last_sequence(), 3);
  std::optional<v1::RunEvent> first = log.Next(0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sequence(), 1);
  EXPECT_EQ(first->run_id(), "run-1");
  EXPECT_GT(first->time_unix_ms(), 0);
  ASSERT_TRUE(log.Next(2).has_value());
  EXPECT_EQ(log.Next(2)->step_progress().batch(), 3);
  EXPECT_FALSE(log.Next(3).has_value());
}

TEST(EventLogTest, KeepsTheNewestEventsAndShowsTheGap) {
  EventLog log("run-1", 3);
  for (int i = 1; i <= 5; ++i) log.Append(Progress(i));
  EXPECT_EQ(log.first_retained_sequence(), 3);
  ASSERT_TRUE(log.Next(0).has_value());
  EXPECT_EQ(log.Next(0)->sequence(), 3);  // 1 and 2 are gone: the reader sees the jump
  EXPECT_EQ(log.Next(1)->sequence(), 3);
  EXPECT_EQ(log.Next(4)->sequence(), 5);
}

TEST(EventLogTest, RunFinishedClosesTheLog) {
  EventLog log("run-1", 10);
  log.Append(Progress(1));
  EXPECT_FALSE(log.closed());
  v1::RunEvent finished;
  finished.mutable_finished()->set_state(v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(log.Append(finished), 2);
  EXPECT_TRUE(log.closed());
  EXPECT_EQ(log.Append(Progress(2)), 0);
  EXPECT_EQ(log.last_sequence(), 2);
}

TEST(EventLogTest, NotifiesSubscribersUntilTheyUnsubscribe) {
  EventLog log("run-1", 10);
  std::atomic<int> a{0};
  std::atomic<int> b{0};
  const int64_t id_a = log.Subscribe([&a] { ++a; });
  const int64_t id_b = log.Subscribe([&b] { ++b; });
  log.Append(Progress(1));
  log.Unsubscribe(id_a);
  log.Append(Progress(2));
  EXPECT_EQ(a.load(), 1);
  EXPECT_EQ(b.load(), 2);
  log.Unsubscribe(id_b);
}

TEST(EventLogTest, ConcurrentAppendsGetDistinctSequences) {
  EventLog log("run-1", 100000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log] {
      for (int i = 0; i < 1000; ++i) log.Append(Progress(i));
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(log.last_sequence(), 4000);
  int64_t expected = 1;
  for (int64_t after = 0;; ++expected) {
    std::optional<v1::RunEvent> next = log.Next(after);
    if (!next.has_value()) break;
    ASSERT_EQ(next->sequence(), expected);
    after = next->sequence();
  }
  EXPECT_EQ(expected, 4001);
}

}  // namespace
}  // namespace gcprune::trainer
