// Tests of the learning-rate schedules against torch.optim.lr_scheduler values and of their validation.
#include "trainer_service/engine/lr_schedule.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIsWithMessage;

// Printed by lr_schedule_reference.py (torch 1.13): the rate in force during unit t = 0, 1, ...
// clang-format off
// CosineAnnealingLR(T_max=10, eta_min=0.001), base 0.1, 25 epochs (past T_max)
const std::vector<double> kCosine10 = {0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742, 0.0657963412215599, 0.0505, 0.03520365877844011, 0.02140463001152259, 0.010453658778440109, 0.0034227024433899004, 0.001, 0.0034227024433899004, 0.01045365877844014, 0.02140463001152267, 0.035203658778440255, 0.05050000000000022, 0.06579634122156018, 0.07959536998847777, 0.09054634122156031, 0.09757729755661054, 0.10000000000000045, 0.09757729755661054, 0.09054634122156033, 0.07959536998847778, 0.0657963412215602};
// CosineAnnealingLR(T_max=7, eta_min=0), base 0.05, 8 steps
const std::vector<double> kCosine7 = {0.05, 0.04752422169756048, 0.040587245046468344, 0.030563023348907863, 0.019436976651092144, 0.009412754953531664, 0.002475778302439524, 0.0};
// StepLR(step_size=3, gamma=0.5), base 0.1, 10 epochs
const std::vector<double> kStep3 = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
// clang-format on

// torch steps its schedulers recursively; the closed forms here agree to rounding (~1e-16 per step).
void ExpectTrace(const LrSchedule& schedule, const std::vector<double>& expected) {
  for (size_t t = 0; t < expected.size(); ++t) {
    SCOPED_TRACE(t);
    EXPECT_NEAR(schedule.LearningRate(static_cast<int64_t>(t)), expected[t], 1e-14);
  }
}

TEST(LrScheduleTest, CosineAnnealingMatchesTorch) {
  ASSERT_OK_AND_ASSIGN(LrSchedule cosine, LrSchedule::CosineAnnealing(0.1, 10, 0.001));
  ExpectTrace(cosine, kCosine10);
  EXPECT_EQ(cosine.LearningRate(10), 0.001);  // exactly the floor at t_max
}

TEST(LrScheduleTest, CosineAnnealingPerStep) {
  ASSERT_OK_AND_ASSIGN(LrSchedule cosine, LrSchedule::CosineAnnealing(0.05, 7));
  ExpectTrace(cosine, kCosine7);
}

TEST(LrScheduleTest, CosineIsPeriodicForHugeTimes) {
  ASSERT_OK_AND_ASSIGN(LrSchedule cosine, LrSchedule::CosineAnnealing(0.1, 10, 0.001));
  const int64_t far = 20 * (int64_t{1} << 58);  // a multiple of the period 2 * t_max
  EXPECT_DOUBLE_EQ(cosine.LearningRate(far + 3), cosine.LearningRate(3));
}

TEST(LrScheduleTest, StepDecayMatchesTorch) {
  ASSERT_OK_AND_ASSIGN(LrSchedule step, LrSchedule::StepDecay(0.1, 3, 0.5));
  ExpectTrace(step, kStep3);
}

TEST(LrScheduleTest, ConstantAndNegativeTime) {
  ASSERT_OK_AND_ASSIGN(LrSchedule constant, LrSchedule::Constant(0.01));
  EXPECT_EQ(constant.LearningRate(0), 0.01);
  EXPECT_EQ(constant.LearningRate(123456), 0.01);
  ASSERT_OK_AND_ASSIGN(LrSchedule cosine, LrSchedule::CosineAnnealing(0.1, 10));
  EXPECT_EQ(cosine.LearningRate(-5), 0.1);
  EXPECT_EQ(cosine.DebugString(), "cosine(base_lr=0.1, t_max=10, eta_min=0)");
}

TEST(LrScheduleTest, CreateFromOptions) {
  LrScheduleOptions options;
  options.kind = LrScheduleKind::kStep;
  options.base_lr = 0.1;
  options.step_size = 3;
  options.gamma = 0.5;
  ASSERT_OK_AND_ASSIGN(LrSchedule step, LrSchedule::Create(options));
  ExpectTrace(step, kStep3);
  EXPECT_EQ(step.options().step_size, 3);
}

TEST(LrScheduleTest, RejectsBadOptions) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* what;
    absl::StatusOr<LrSchedule> schedule;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"negative lr", LrSchedule::Constant(-0.1), "LrScheduleOptions.base_lr: -0.1"},
      {"nan lr", LrSchedule::Constant(nan), "LrScheduleOptions.base_lr: nan"},
      {"t_max 0", LrSchedule::CosineAnnealing(0.1, 0), "LrScheduleOptions.t_max: 0"},
      {"negative eta_min", LrSchedule::CosineAnnealing(0.1, 10, -1e-3), "LrScheduleOptions.eta_min: -0.001"},
      {"step_size 0", LrSchedule::StepDecay(0.1, 0, 0.5), "LrScheduleOptions.step_size: 0"},
      {"gamma 0", LrSchedule::StepDecay(0.1, 3, 0.0), "LrScheduleOptions.gamma: 0"},
      {"infinite gamma", LrSchedule::StepDecay(0.1, 3, std::numeric_limits<double>::infinity()),
       "LrScheduleOptions.gamma: inf"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(c.schedule, StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

}  // namespace
}  // namespace gcprune::trainer
