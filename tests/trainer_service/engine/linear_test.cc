// Tests of the Linear layer: a hand-computed forward pass, gradients against finite differences of a
// double-precision reference (with and without bias, with a fused ReLU), initialisation and validation.
#include "trainer_service/engine/linear.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/layer_check.h"
#include "trainer_service/engine/relu.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::trainer::testing::CheckLayers;
using ::gcprune::trainer::testing::ExpectWithinTolerance;
using ::gcprune::trainer::testing::RunForward;

std::unique_ptr<Linear> MakeLinear(int64_t in, int64_t out, bool bias) {
  absl::StatusOr<std::unique_ptr<Linear>> layer = Linear::Create("fc1", {in}, out, bias);
  EXPECT_OK(layer);
  return *std::move(layer);
}

LayerSpec LinearSpec(int64_t out, bool bias) {
  LayerSpec spec;
  spec.kind = LayerKind::kLinear;
  spec.out = out;
  spec.bias = bias;
  return spec;
}

TEST(LinearTest, ForwardMatchesHandComputedValues) {
  std::unique_ptr<Linear> layer = MakeLinear(2, 3, true);
  std::vector<Parameter*> params = layer->parameters();
  ASSERT_EQ(params.size(), 2u);
  const float w[] = {1, 2, 3, 4, 5, 6};  // [out=3, in=2]
  const float b[] = {0.5f, -1, 0};
  std::copy(w, w + 6, params[0]->data);
  std::copy(b, b + 3, params[1]->data);
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::move(layer));
  ASSERT_OK_AND_ASSIGN(auto net, Network::Create(std::move(layers), {}));
  // x0 = (1, −1): (1−2+0.5, 3−4−1, 5−6+0); x1 = (0.5, 2): (0.5+4+0.5, 1.5+8−1, 2.5+12).
  const std::vector<float> y = RunForward(net.get(), {1, -1, 0.5f, 2}, 2, PlanMode::kTraining);
  EXPECT_THAT(y, ::testing::ElementsAre(-0.5f, -2.0f, -1.0f, 5.0f, 8.5f, 14.5f));
  EXPECT_EQ(RunForward(net.get(), {1, -1, 0.5f, 2}, 2, PlanMode::kInference), y);
}

TEST(LinearTest, ParametersHavePyTorchNamesAndShapes) {
  std::unique_ptr<Linear> layer = MakeLinear(800, 500, true);
  std::vector<Parameter*> params = layer->parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "fc1.weight");
  EXPECT_EQ(params[0]->shape, (std::vector<int64_t>{500, 800}));
  EXPECT_EQ(params[0]->numel, 400000);
  EXPECT_TRUE(params[0]->prunable);
  EXPECT_EQ(params[1]->name, "fc1.bias");
  EXPECT_FALSE(params[1]->prunable);
  EXPECT_EQ(layer->ForwardMacs(), 400000);
  EXPECT_EQ(MakeLinear(784, 40, false)->parameters().size(), 1u);
  EXPECT_EQ(layer->DebugString(), "Linear(in_features=800, out_features=500, bias=True)");
}

TEST(LinearTest, InitialisationIsUniformWithinOneOverSqrtFanIn) {
  std::unique_ptr<Linear> layer = MakeLinear(400, 300, true);
  SplitMix64 rng(7);
  layer->ResetParameters(&rng);
  const float bound = 1.0f / std::sqrt(400.0f);
  for (const Parameter* p : layer->parameters()) {
    double sum = 0.0, sum_sq = 0.0;
    float lo = 1e9f, hi = -1e9f;
    for (int64_t i = 0; i < p->numel; ++i) {
      sum += p->data[i];
      sum_sq += double{p->data[i]} * p->data[i];
      lo = std::min(lo, p->data[i]);
      hi = std::max(hi, p->data[i]);
    }
    SCOPED_TRACE(p->name);
    EXPECT_GE(lo, -bound);
    EXPECT_LT(hi, bound);
    if (p->numel > 1000) {
      // U(−b, b): mean 0, variance b²/3.
      EXPECT_NEAR(sum / p->numel, 0.0, 0.01 * bound);
      EXPECT_NEAR(sum_sq / p->numel, bound * bound / 3.0, 0.02 * bound * bound);
      EXPECT_LT(lo, -0.99f * bound);
      EXPECT_GT(hi, 0.99f * bound);
    }
  }
}

TEST(LinearTest, GradientsMatchFiniteDifferences) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "bias" : "no bias");
    std::vector<std::unique_ptr<Layer>> layers;
    layers.push_back(MakeLinear(37, 19, bias));
    ExpectWithinTolerance(CheckLayers(std::move(layers), {LinearSpec(19, bias)}, /*batch=*/5, /*seed=*/11));
  }
}

TEST(LinearTest, GradientsWithFusedReluMatchFiniteDifferences) {
  // Linear + ReLU + Linear: the ReLU runs as a post-op of the first layer and its backward in place.
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(MakeLinear(30, 24, true));
  layers.push_back(std::make_unique<Relu>("relu1", Shape{24}));
  ASSERT_OK_AND_ASSIGN(auto fc2, Linear::Create("fc2", {24}, 7, true));
  layers.push_back(std::move(fc2));
  LayerSpec relu;
  relu.kind = LayerKind::kRelu;
  ExpectWithinTolerance(
      CheckLayers(std::move(layers), {LinearSpec(24, true), relu, LinearSpec(7, true)}, /*batch=*/6, /*seed=*/3));
}

TEST(LinearTest, RejectsInvalidShapes) {
  EXPECT_THAT(Linear::Create("fc1", {1, 28, 28}, 10, true),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "add a flatten layer"));
  EXPECT_THAT(Linear::Create("fc1", {0}, 10, true),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "in_features must be >= 1, got 0"));
  EXPECT_THAT(Linear::Create("fc1", {10}, 0, true),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "out_features must be >= 1, got 0"));
  EXPECT_THAT(Linear::Create("fc1", {1 << 20}, 1 << 20, true),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument,
                                  "fc1: weight 1048576x1048576 exceeds 268435456 elements"));
}

}  // namespace
}  // namespace gcprune::trainer
