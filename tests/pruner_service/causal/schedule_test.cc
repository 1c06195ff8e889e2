// Tests of the pruning schedules: METHOD.md's check values, per-iteration fractions, exact counts.
#include "pruner_service/causal/schedule.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

constexpr int64_t kLeNetFeatures = 430500;

TEST(ScheduleTest, CubicMatchesMethodCheckValues) {
  ASSERT_OK_AND_ASSIGN(Schedule schedule, Schedule::Create(ScheduleKind::kCubic, 0.9, 10));
  const std::vector<double> expected = {.2439, .4392, .5913, .7056, .7875, .8424, .8757, .8928, .8991, .9000};
  ASSERT_EQ(schedule.num_iterations(), 10);
  EXPECT_EQ(schedule.TargetSparsity(0), 0.0);
  for (int j = 1; j <= 10; ++j) {
    SCOPED_TRACE(j);
    EXPECT_NEAR(schedule.TargetSparsity(j), expected[j - 1], 5e-5);
  }
  EXPECT_DOUBLE_EQ(schedule.TargetSparsity(11), 0.9);
  EXPECT_DOUBLE_EQ(schedule.final_sparsity(), 0.9);
}

TEST(ScheduleTest, CubicIterationFractions) {
  ASSERT_OK_AND_ASSIGN(Schedule schedule, Schedule::Create(ScheduleKind::kCubic, 0.9, 10));
  // a_j = (s(j) - s(j-1)) / (1 - s(j-1)), computed in Python from the same formula.
  const std::vector<double> expected = {0.243900, 0.258299, 0.271220, 0.279667, 0.278193,
                                        0.258353, 0.211294, 0.137570, 0.058769, 0.008920};
  for (int j = 1; j <= 10; ++j) {
    SCOPED_TRACE(j);
    EXPECT_NEAR(schedule.IterationFraction(j), expected[j - 1], 5e-7);
    const double s0 = schedule.TargetSparsity(j - 1), s1 = schedule.TargetSparsity(j);
    EXPECT_NEAR(s0 + schedule.IterationFraction(j) * (1 - s0), s1, 1e-15);
  }
  EXPECT_EQ(schedule.IterationFraction(11), 0.0);
}

TEST(ScheduleTest, GeometricPrunesAFixedFractionOfTheRemainder) {
  ASSERT_OK_AND_ASSIGN(Schedule schedule, Schedule::Create(ScheduleKind::kGeometric, 0.9, 10));
  for (int j = 1; j <= 10; ++j) {
    SCOPED_TRACE(j);
    EXPECT_DOUBLE_EQ(schedule.IterationFraction(j), 0.2056717652757185);
    EXPECT_NEAR(schedule.TargetSparsity(j), 1 - std::pow(0.1, j / 10.0), 1e-15);
  }
  EXPECT_NEAR(schedule.final_sparsity(), 0.9, 1e-15);
}

TEST(ScheduleTest, OneShotAndCustom) {
  ASSERT_OK_AND_ASSIGN(Schedule one_shot, Schedule::Create(ScheduleKind::kOneShot, 0.7, 3));
  EXPECT_EQ(one_shot.TargetSparsity(1), 0.7);
  EXPECT_EQ(one_shot.TargetSparsity(3), 0.7);
  EXPECT_EQ(one_shot.IterationFraction(1), 0.7);
  EXPECT_EQ(one_shot.IterationFraction(2), 0.0);

  ASSERT_OK_AND_ASSIGN(Schedule custom, Schedule::Create(ScheduleKind::kCustom, 0, 0, {0.5, 0.5, 0.75}));
  EXPECT_EQ(custom.num_iterations(), 3);
  EXPECT_EQ(custom.TargetSparsity(2), 0.5);
  EXPECT_EQ(custom.IterationFraction(2), 0.0);
  EXPECT_EQ(custom.IterationFraction(3), 0.5);
}

TEST(ScheduleTest, RoundHalfEvenMatchesPythonRound) {
  const std::vector<std::pair<double, int64_t>> cases = {
      {0.5, 0},   {1.5, 2},       {2.5, 2},       {3.5, 4},           {-0.5, 0}, {-1.5, -2},
      {-2.5, -2}, {2.4999999, 2}, {2.5000001, 3}, {104998.6, 104999}, {7.0, 7},  {0.0, 0}};
  for (const auto& [x, expected] : cases) {
    SCOPED_TRACE(x);
    EXPECT_EQ(RoundHalfEven(x), expected);
  }
}

// Replays a schedule on N features, pruning exactly PruneCount each time; returns the pruned totals.
std::vector<int64_t> Replay(const Schedule& schedule, int64_t n) {
  std::vector<int64_t> totals;
  int64_t pruned = 0;
  for (int j = 1; j <= schedule.num_iterations(); ++j) {
    absl::StatusOr<int64_t> count = schedule.PruneCount(j, n, pruned);
    EXPECT_TRUE(count.ok()) << count.status();
    EXPECT_GE(*count, 0);
    const int64_t target = schedule.TargetPrunedCount(j, n, pruned);
    pruned += *count;
    EXPECT_EQ(pruned, target) << "iteration " << j;
    totals.push_back(pruned);
  }
  return totals;
}

TEST(ScheduleTest, CumulativeCountsHitTheRoundedTargetExactly) {
  struct Case {
    const char* what;
    ScheduleKind kind;
    double target;
    int iterations;
    std::vector<double> custom;
  };
  const std::vector<Case> cases = {
      {"cubic", ScheduleKind::kCubic, 0.9, 10, {}},
      {"cubic 0.5 x 5", ScheduleKind::kCubic, 0.5, 5, {}},
      {"geometric", ScheduleKind::kGeometric, 0.9, 10, {}},
      {"geometric 0.99", ScheduleKind::kGeometric, 0.99, 7, {}},
      {"one-shot", ScheduleKind::kOneShot, 0.8, 1, {}},
      {"custom", ScheduleKind::kCustom, 0, 0, {0.1, 0.35, 0.35, 0.6, 0.95}},
  };
  for (const Case& c : cases) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{32360}, kLeNetFeatures}) {
      SCOPED_TRACE(::testing::Message() << c.what << " N=" << n);
      ASSERT_OK_AND_ASSIGN(Schedule schedule, Schedule::Create(c.kind, c.target, c.iterations, c.custom));
      const std::vector<int64_t> totals = Replay(schedule, n);
      for (int j = 1; j <= schedule.num_iterations(); ++j) {
        EXPECT_EQ(totals[j - 1], RoundHalfEven(schedule.TargetSparsity(j) * static_cast<double>(n)));
      }
    }
  }
}

TEST(ScheduleTest, LeNetCountsForBothRules) {
  // Python: [round(s(j) * 430500)] and the reference's running round(a_j * unpruned), which drifts by one
  // at iteration 8.
  const std::vector<int64_t> cumulative = {104999, 189076, 254555, 303761, 339019,
                                           362653, 376989, 384350, 387063, 387450};
  const std::vector<int64_t> reference = {104999, 189076, 254555, 303761, 339019,
                                          362653, 376989, 384351, 387063, 387450};
  ASSERT_OK_AND_ASSIGN(Schedule c, Schedule::Create(ScheduleKind::kCubic, 0.9, 10));
  EXPECT_EQ(Replay(c, kLeNetFeatures), cumulative);
  ASSERT_OK_AND_ASSIGN(Schedule r,
                       Schedule::Create(ScheduleKind::kCubic, 0.9, 10, {}, CountRule::kReferenceIncremental));
  EXPECT_EQ(Replay(r, kLeNetFeatures), reference);
}

TEST(ScheduleTest, CumulativeCountCorrectsForExternallyPrunedWeights) {
  ASSERT_OK_AND_ASSIGN(Schedule schedule, Schedule::Create(ScheduleKind::kCubic, 0.9, 10));
  // 1000 weights, 300 already pruned by someone else: iteration 1 (target 244) prunes nothing.
  EXPECT_EQ(*schedule.PruneCount(1, 1000, 300), 0);
  EXPECT_EQ(*schedule.PruneCount(2, 1000, 300), 139);  // round(439.2) - 300
  EXPECT_EQ(*schedule.PruneCount(10, 1000, 1000), 0);
}

TEST(ScheduleTest, RejectsInvalidArguments) {
  struct Case {
    const char* what;
    ScheduleKind kind;
    double target;
    int iterations;
    std::vector<double> custom;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"target above 1", ScheduleKind::kCubic, 1.5, 10, {}, "schedule.target: 1.5"},
      {"negative target", ScheduleKind::kGeometric, -0.1, 10, {}, "schedule.target"},
      {"NaN target", ScheduleKind::kCubic, std::nan(""), 10, {}, "schedule.target"},
      {"zero iterations", ScheduleKind::kCubic, 0.9, 0, {}, "schedule.iterations: 0"},
      {"list for cubic", ScheduleKind::kCubic, 0.9, 3, {0.1}, "only 'custom'"},
      {"empty custom", ScheduleKind::kCustom, 0, 0, {}, "schedule.custom: 0 entries"},
      {"decreasing custom", ScheduleKind::kCustom, 0, 0, {0.5, 0.4}, "schedule.custom[1]"},
      {"custom above 1", ScheduleKind::kCustom, 0, 0, {1.2}, "schedule.custom[0]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(Schedule::Create(c.kind, c.target, c.iterations, c.custom),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  ASSERT_OK_AND_ASSIGN(Schedule schedule, Schedule::Create(ScheduleKind::kCubic, 0.9, 10));
  EXPECT_THAT(schedule.PruneCount(0, 10, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(schedule.PruneCount(1, 0, 0), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(schedule.PruneCount(1, 10, 11), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ScheduleTest, NamesRoundTrip) {
  for (ScheduleKind k :
       {ScheduleKind::kCubic, ScheduleKind::kGeometric, ScheduleKind::kOneShot, ScheduleKind::kCustom}) {
    EXPECT_EQ(*ParseScheduleKind(ScheduleKindName(k)), k);
  }
  for (CountRule r : {CountRule::kCumulative, CountRule::kReferenceIncremental}) {
    EXPECT_EQ(*ParseCountRule(CountRuleName(r)), r);
  }
  EXPECT_THAT(ParseScheduleKind("linear"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'linear'"));
  EXPECT_THAT(ParseCountRule("floor"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::pruner
