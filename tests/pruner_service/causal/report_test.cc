// Tests of the iteration report: coefficient statistics, decade histograms and the JSON form.
#include "pruner_service/causal/report.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::testing::ElementsAre;

MaskSet TwoTensorMask() {
  absl::StatusOr<Layout> layout = Layout::Create({{"a", {6}, true}, {"bias", {2}, false}, {"b", {2}, true}});
  EXPECT_TRUE(layout.ok());
  return MaskSet(*layout);
}

TEST(ReportTest, CoefficientStatsCountOnlyWeightsKeptBeforeTheFit) {
  MaskSet before = TwoTensorMask();
  ASSERT_OK(before.Prune({5}));
  const std::vector<float> beta = {0.0f, 1e-3f, -2e-3f, 0.5f, std::nanf(""), 7.0f, /* b: */ 0.0f, 0.0f};
  ASSERT_OK_AND_ASSIGN(std::vector<CoefficientStats> stats, ComputeCoefficientStats(before, beta));
  ASSERT_EQ(stats.size(), 2u);
  const CoefficientStats& a = stats[0];
  EXPECT_EQ(a.tensor_index, 0);
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.count, 5);  // the pruned 7.0 is left out
  EXPECT_EQ(a.zero, 1);
  EXPECT_EQ(a.positive, 2);
  EXPECT_EQ(a.negative, 1);
  EXPECT_EQ(a.nonfinite, 1);
  EXPECT_DOUBLE_EQ(a.fraction_zero(), 0.2);
  EXPECT_FLOAT_EQ(a.min, -2e-3f);
  EXPECT_FLOAT_EQ(a.max, 0.5f);
  EXPECT_NEAR(a.mean, (1e-3 - 2e-3 + 0.5) / 4, 1e-9);
  EXPECT_NEAR(a.mean_abs, (1e-3 + 2e-3 + 0.5) / 4, 1e-9);
  EXPECT_THAT(a.log10_abs_histogram.edges, ElementsAre(-3, -2, -1, 0));
  EXPECT_THAT(a.log10_abs_histogram.counts, ElementsAre(2, 0, 1));
  const CoefficientStats& b = stats[1];
  EXPECT_EQ(b.tensor_index, 2);
  EXPECT_EQ(b.zero, 2);
  EXPECT_DOUBLE_EQ(b.fraction_zero(), 1.0);
  EXPECT_TRUE(b.log10_abs_histogram.edges.empty());
  EXPECT_EQ(b.min, 0.0);
}

TEST(ReportTest, PowersOfTenFallIntoTheirOwnDecade) {
  absl::StatusOr<Layout> layout = Layout::Create({{"w", {5}, true}});
  ASSERT_OK(layout);
  const MaskSet before(*layout);
  // 1, 10 and 1000 are exact floats; 1e-5f is just below 1e-5, so it belongs to the decade of 1e-6.
  const std::vector<float> beta = {1.0f, 10.0f, 9.99f, 1000.0f, 1e-5f};
  ASSERT_OK_AND_ASSIGN(std::vector<CoefficientStats> stats, ComputeCoefficientStats(before, beta));
  const Histogram& h = stats[0].log10_abs_histogram;
  ASSERT_EQ(h.edges.size(), 11u);
  EXPECT_EQ(h.edges.front(), -6);
  EXPECT_EQ(h.edges.back(), 4);
  EXPECT_THAT(h.counts, ElementsAre(1, 0, 0, 0, 0, 0, 2, 1, 0, 1));
}

TEST(ReportTest, CoefficientStatsSpanFeatureGroups) {
  const MaskSet before = TwoTensorMask();
  std::vector<float> beta(16, 0.0f);
  beta[8 + 6] = 2.0f;  // group 1, tensor b, weight 0
  ASSERT_OK_AND_ASSIGN(std::vector<CoefficientStats> stats, ComputeCoefficientStats(before, beta));
  EXPECT_EQ(stats[1].count, 4);
  EXPECT_EQ(stats[1].positive, 1);
  EXPECT_EQ(stats[0].count, 12);
  EXPECT_THAT(ComputeCoefficientStats(before, std::vector<float>(9)),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "9 values is not a positive multiple of 8"));
  EXPECT_THAT(ComputeCoefficientStats(before, {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "0 values"));
}

TEST(ReportTest, JsonOfABaselineIteration) {
  IterationReport r;
  r.iteration = 2;
  r.method = Method::kMagnitudeGlobal;
  r.num_features = 10;
  r.target_sparsity = 0.25;
  r.achieved_sparsity = 0.3;
  r.kept = 7;
  r.pruned = 3;
  r.requested = 2;
  r.pruned_this_iteration = 2;
  r.tensors.push_back({0, "conv\"1\"\n", 10, 7, 3, 2, 0.3, 0.25});
  r.select_seconds = 0.001;
  r.total_seconds = 0.5;
  EXPECT_EQ(IterationReportToJson(r),
            "{\"iteration\":2,\"method\":\"magnitude-global\",\"num_samples\":0,\"num_features\":10,"
            "\"target_sparsity\":0.25,\"achieved_sparsity\":0.3,\"kept\":7,\"pruned\":3,\"requested\":2,"
            "\"pruned_this_iteration\":2,\"shortfall\":0,\"unmet_floor\":0,"
            "\"tensors\":[{\"tensor_index\":0,\"name\":\"conv\\\"1\\\"\\n\",\"num_elements\":10,\"kept\":7,"
            "\"pruned\":3,\"pruned_this_iteration\":2,\"sparsity\":0.3,\"target_sparsity\":0.25}],"
            "\"coefficients\":[],\"fit\":null,\"target_nan\":0,\"target_inf\":0,\"feature_nonfinite\":0,"
            "\"target_mean\":null,\"select_seconds\":0.001,\"total_seconds\":0.5,\"final_iteration\":false}");
}

TEST(ReportTest, JsonOfACausalIterationHasFitAndCoefficients) {
  IterationReport r;
  r.iteration = 1;
  r.target_sparsity = kNoValue;
  FitReport fit;
  fit.epochs = 3;
  fit.best_epoch = 1;
  fit.early_stopped = true;
  fit.final_loss = 0.1 + 0.2;  // needs 17 digits
  fit.epoch_losses = {1.5, std::nan("")};
  r.fit = fit;
  CoefficientStats c;
  c.name = "w";
  c.log10_abs_histogram = {{-2, -1}, {4}};
  r.coefficients.push_back(c);
  const std::string json = IterationReportToJson(r);
  EXPECT_NE(json.find("\"target_sparsity\":null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"fit\":{\"solver\":\"lasso-sgd\",\"num_fits\":1,\"epochs\":3,\"best_epoch\":1,"
                      "\"early_stopped\":true,\"final_loss\":0.30000000000000004,"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"epoch_losses\":[1.5,null]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"log10_abs_histogram\":{\"edges\":[-2,-1],\"counts\":[4]}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"fraction_zero\":0,"), std::string::npos) << json;
}

}  // namespace
}  // namespace gcprune::pruner
