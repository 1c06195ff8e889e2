// Tests of phase-shift detection on crafted accuracy-versus-sparsity curves.
#include "pruner_service/causal/phase_shift.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A causal-like curve: flat to 0.9, collapse at 0.95.
std::vector<AccuracyPoint> CollapsingCurve() {
  return {{0.3, 0.90}, {0.5, 0.895}, {0.7, 0.89}, {0.8, 0.88}, {0.9, 0.87}, {0.95, 0.60}, {0.98, 0.20}};
}

PhaseShiftOptions FromReference(double reference, double max_drop = 0.05) {
  PhaseShiftOptions options;
  options.rule = PhaseShiftRule::kDropFromReference;
  options.reference_accuracy = reference;
  options.max_drop = max_drop;
  return options;
}

PhaseShiftOptions Steepest(double reference = kNaN, double max_drop = 0.05) {
  PhaseShiftOptions options;
  options.rule = PhaseShiftRule::kSteepestDrop;
  options.reference_accuracy = reference;
  options.max_drop = max_drop;
  return options;
}

TEST(PhaseShiftTest, DropFromReferenceFindsFirstCollapsedPoint) {
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(CollapsingCurve(), FromReference(0.90)));
  EXPECT_TRUE(shift.found);
  EXPECT_EQ(shift.shift_index, 5);
  EXPECT_DOUBLE_EQ(shift.shift_sparsity, 0.95);
  EXPECT_DOUBLE_EQ(shift.shift_accuracy, 0.60);
  EXPECT_EQ(shift.recommended_index, 4);
  EXPECT_DOUBLE_EQ(shift.recommended_sparsity, 0.9);
  EXPECT_DOUBLE_EQ(shift.recommended_accuracy, 0.87);
  EXPECT_NEAR(shift.drop, 0.30, 1e-12);
}

TEST(PhaseShiftTest, SortsUnorderedPoints) {
  std::vector<AccuracyPoint> points = CollapsingCurve();
  std::swap(points[0], points[6]);
  std::swap(points[2], points[5]);
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(points, FromReference(0.90)));
  ASSERT_EQ(shift.points.size(), 7u);
  for (size_t i = 1; i < shift.points.size(); ++i) EXPECT_LT(shift.points[i - 1].sparsity, shift.points[i].sparsity);
  EXPECT_DOUBLE_EQ(shift.shift_sparsity, 0.95);
  EXPECT_DOUBLE_EQ(shift.recommended_sparsity, 0.9);
}

TEST(PhaseShiftTest, ThresholdIsStrictAndTunable) {
  struct Case {
    const char* what;
    double max_drop;
    double shift_sparsity;
  };
  // Drops below 0.90: 0.005, 0.01, 0.02, 0.03, 0.30, 0.70.
  const std::vector<Case> cases = {
      {"five points", 0.05, 0.95},
      {"exactly the drop at 0.8 does not count", 0.02, 0.9},
      {"one point", 0.01, 0.8},
      {"zero tolerance", 0.0, 0.5},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(CollapsingCurve(), FromReference(0.90, c.max_drop)));
    EXPECT_TRUE(shift.found);
    EXPECT_DOUBLE_EQ(shift.shift_sparsity, c.shift_sparsity);
  }
}

TEST(PhaseShiftTest, NoCollapseRecommendsSparsestPoint) {
  const std::vector<AccuracyPoint> flat = {{0.3, 0.90}, {0.5, 0.89}, {0.9, 0.88}};
  for (const PhaseShiftOptions& options : {FromReference(0.90), Steepest(0.90)}) {
    SCOPED_TRACE(PhaseShiftRuleName(options.rule));
    ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(flat, options));
    EXPECT_FALSE(shift.found);
    EXPECT_EQ(shift.shift_index, -1);
    EXPECT_TRUE(std::isnan(shift.shift_sparsity));
    EXPECT_TRUE(std::isnan(shift.drop));
    EXPECT_DOUBLE_EQ(shift.recommended_sparsity, 0.9);
    EXPECT_DOUBLE_EQ(shift.recommended_accuracy, 0.88);
  }
}

TEST(PhaseShiftTest, CollapseAtFirstPointRecommendsNothing) {
  const std::vector<AccuracyPoint> broken = {{0.3, 0.40}, {0.5, 0.30}};
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(broken, FromReference(0.90)));
  EXPECT_TRUE(shift.found);
  EXPECT_EQ(shift.shift_index, 0);
  EXPECT_EQ(shift.recommended_index, -1);
  EXPECT_TRUE(std::isnan(shift.recommended_sparsity));
}

TEST(PhaseShiftTest, SteepestDropPicksLargestSlopeNotLargestStep) {
  // 0.5 -> 0.9 drops 0.20 over 0.4 (slope 0.5); 0.9 -> 0.95 drops 0.15 over 0.05 (slope 3).
  const std::vector<AccuracyPoint> curve = {{0.3, 0.90}, {0.5, 0.88}, {0.9, 0.68}, {0.95, 0.53}};
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(curve, Steepest()));
  EXPECT_TRUE(shift.found);
  EXPECT_DOUBLE_EQ(shift.shift_sparsity, 0.95);
  EXPECT_DOUBLE_EQ(shift.recommended_sparsity, 0.9);
  EXPECT_NEAR(shift.drop, 3.0, 1e-9);
  // The drop-from-reference rule on the same curve stops at the first point 5 points down.
  ASSERT_OK_AND_ASSIGN(PhaseShift first, FindPhaseShift(curve, FromReference(0.90)));
  EXPECT_DOUBLE_EQ(first.shift_sparsity, 0.9);
  EXPECT_DOUBLE_EQ(first.recommended_sparsity, 0.5);
}

TEST(PhaseShiftTest, SteepestDropIgnoresSegmentsWithinTolerance) {
  // Steep but tiny wiggles (0.03 over 0.01) do not count; the real collapse does.
  const std::vector<AccuracyPoint> curve = {{0.3, 0.90}, {0.31, 0.87}, {0.5, 0.88}, {0.9, 0.70}};
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(curve, Steepest()));
  EXPECT_DOUBLE_EQ(shift.shift_sparsity, 0.9);
  EXPECT_DOUBLE_EQ(shift.recommended_sparsity, 0.5);
}

TEST(PhaseShiftTest, SteepestDropWithReferenceCanRecommendDense) {
  const std::vector<AccuracyPoint> curve = {{0.5, 0.40}, {0.9, 0.35}};
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(curve, Steepest(0.90)));
  ASSERT_EQ(shift.points.size(), 3u);
  EXPECT_DOUBLE_EQ(shift.points[0].sparsity, 0.0);
  EXPECT_EQ(shift.shift_index, 1);
  EXPECT_EQ(shift.recommended_index, 0);
  EXPECT_DOUBLE_EQ(shift.recommended_sparsity, 0.0);
  EXPECT_DOUBLE_EQ(shift.recommended_accuracy, 0.90);
}

TEST(PhaseShiftTest, MeasuredDensePointIsNotDuplicated) {
  const std::vector<AccuracyPoint> curve = {{0.0, 0.91}, {0.5, 0.90}, {0.9, 0.50}};
  ASSERT_OK_AND_ASSIGN(PhaseShift shift, FindPhaseShift(curve, Steepest(0.90)));
  EXPECT_EQ(shift.points.size(), 3u);
  EXPECT_DOUBLE_EQ(shift.points[0].accuracy, 0.91);
  EXPECT_DOUBLE_EQ(shift.shift_sparsity, 0.9);
}

TEST(PhaseShiftTest, SinglePoint) {
  ASSERT_OK_AND_ASSIGN(PhaseShift steep, FindPhaseShift({{0.5, 0.8}}, Steepest()));
  EXPECT_FALSE(steep.found);
  EXPECT_DOUBLE_EQ(steep.recommended_sparsity, 0.5);
  ASSERT_OK_AND_ASSIGN(PhaseShift dropped, FindPhaseShift({{0.5, 0.8}}, FromReference(0.9)));
  EXPECT_TRUE(dropped.found);
  EXPECT_EQ(dropped.recommended_index, -1);
}

TEST(PhaseShiftTest, RejectsMalformedInput) {
  struct Case {
    const char* what;
    std::vector<AccuracyPoint> points;
    PhaseShiftOptions options;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"no points", {}, FromReference(0.9), "points: empty"},
      {"NaN sparsity", {{0.5, 0.8}, {kNaN, 0.7}}, FromReference(0.9), "points[1].sparsity"},
      {"sparsity above 1", {{1.5, 0.8}}, FromReference(0.9), "points[0].sparsity: must be in [0, 1], got 1.5"},
      {"negative accuracy", {{0.5, -0.1}}, Steepest(), "points[0].accuracy"},
      {"infinite accuracy", {{0.5, std::numeric_limits<double>::infinity()}}, Steepest(), "points[0].accuracy"},
      {"duplicate sparsity", {{0.5, 0.8}, {0.7, 0.7}, {0.5, 0.79}}, Steepest(), "sparsity 0.5 appears more than once"},
      {"missing reference", {{0.5, 0.8}}, FromReference(kNaN), "reference_accuracy: required"},
      {"reference above 1", {{0.5, 0.8}}, Steepest(1.2), "reference_accuracy: must be in [0, 1], got 1.2"},
      {"negative max_drop", {{0.5, 0.8}}, FromReference(0.9, -0.01), "max_drop"},
      {"NaN max_drop", {{0.5, 0.8}}, Steepest(kNaN, kNaN), "max_drop"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(FindPhaseShift(c.points, c.options),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(PhaseShiftTest, RuleNames) {
  EXPECT_EQ(PhaseShiftRuleName(PhaseShiftRule::kDropFromReference), "drop-from-reference");
  EXPECT_EQ(PhaseShiftRuleName(PhaseShiftRule::kSteepestDrop), "steepest-drop");
}

}  // namespace
}  // namespace gcprune::pruner
