// Tests of the Conv2d layer: hand-computed forward passes (with stride and padding), gradients against
// finite differences of a double-precision reference for both layout paths (few input channels: plain
// source; many: channels-last), fused ReLU, initialisation and validation.
#include "trainer_service/engine/conv2d.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/layer_check.h"
#include "trainer_service/engine/max_pool2d.h"
#include "trainer_service/engine/relu.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::trainer::testing::CheckLayers;
using ::gcprune::trainer::testing::ExpectWithinTolerance;
using ::gcprune::trainer::testing::RunForward;

std::unique_ptr<Conv2d> MakeConv(const Shape& input, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                 bool bias, const std::string& name = "conv1") {
  Conv2dOptions options;
  options.out_channels = out;
  options.kernel = kernel;
  options.stride = stride;
  options.padding = padding;
  options.bias = bias;
  absl::StatusOr<std::unique_ptr<Conv2d>> layer = Conv2d::Create(name, input, options);
  EXPECT_OK(layer);
  return *std::move(layer);
}

LayerSpec ConvSpec(int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias) {
  LayerSpec spec;
  spec.kind = LayerKind::kConv2d;
  spec.out = out;
  spec.kernel = kernel;
  spec.stride = stride;
  spec.padding = padding;
  spec.bias = bias;
  return spec;
}

std::vector<float> Forward1x3x3(std::unique_ptr<Conv2d> conv, PlanMode mode) {
  std::vector<Parameter*> params = conv->parameters();
  const float kernel[] = {1, 2, 3, 4};
  std::copy(kernel, kernel + 4, params[0]->data);
  if (params.size() > 1) params[1]->data[0] = 0.5f;
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::move(conv));
  absl::StatusOr<std::unique_ptr<Network>> net = Network::Create(std::move(layers), {});
  EXPECT_OK(net);
  return RunForward(net->get(), {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, mode);
}

TEST(Conv2dTest, ForwardMatchesHandComputedValues) {
  // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], b = 0.5.
  for (PlanMode mode : {PlanMode::kTraining, PlanMode::kInference}) {
    EXPECT_THAT(Forward1x3x3(MakeConv({1, 3, 3}, 1, 2, 1, 0, true), mode),
                ::testing::ElementsAre(37.5f, 47.5f, 67.5f, 77.5f));
    // Padding 1, stride 2: windows start at −1 and 1 in each direction.
    EXPECT_THAT(Forward1x3x3(MakeConv({1, 3, 3}, 1, 2, 2, 1, false), mode),
                ::testing::ElementsAre(4.0f, 18.0f, 36.0f, 77.0f));
  }
}

TEST(Conv2dTest, ShapesNamesAndMacs) {
  std::unique_ptr<Conv2d> conv = MakeConv({20, 12, 12}, 50, 5, 1, 0, true, "conv2");
  EXPECT_EQ(conv->output_shape(), (Shape{50, 8, 8}));
  EXPECT_EQ(conv->ForwardMacs(), 50 * 8 * 8 * 20 * 25);
  std::vector<Parameter*> params = conv->parameters();
  ASSERT_EQ(params.size(), 2u);
  EXPECT_EQ(params[0]->name, "conv2.weight");
  EXPECT_EQ(params[0]->shape, (std::vector<int64_t>{50, 20, 5, 5}));
  EXPECT_TRUE(params[0]->prunable);
  EXPECT_EQ(params[1]->name, "conv2.bias");
  EXPECT_FALSE(params[1]->prunable);
  // PyTorch's floor: (7 + 0 − 3) / 2 + 1 = 3.
  EXPECT_EQ(MakeConv({1, 7, 6}, 2, 3, 2, 0, false)->output_shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(conv->DebugString(), "Conv2d(20, 50, kernel_size=5, stride=1, padding=0, bias=True)");
}

TEST(Conv2dTest, InitialisationBoundIsOneOverSqrtFanIn) {
  std::unique_ptr<Conv2d> conv = MakeConv({20, 12, 12}, 50, 5, 1, 0, true);
  SplitMix64 rng(3);
  conv->ResetParameters(&rng);
  const float bound = 1.0f / std::sqrt(500.0f);
  for (const Parameter* p : conv->parameters()) {
    const auto [lo, hi] = std::minmax_element(p->data, p->data + p->numel);
    EXPECT_GE(*lo, -bound) << p->name;
    EXPECT_LT(*hi, bound) << p->name;
    EXPECT_LT(*lo, -0.9f * bound) << p->name;
    EXPECT_GT(*hi, 0.9f * bound) << p->name;
  }
}

TEST(Conv2dTest, GradientsMatchFiniteDifferences) {
  struct Case {
    const char* what;
    Shape input;
    int64_t out, kernel, stride, padding;
    bool bias;
  };
  const Case cases[] = {
      {"one channel (first-layer layout)", {1, 10, 10}, 4, 5, 1, 0, true},
      {"three channels, stride 2, padding 1, no bias", {3, 9, 8}, 5, 3, 2, 1, false},
      {"channels-last, padding 1", {12, 7, 7}, 10, 3, 1, 1, true},
      {"channels-last, stride 2 leaving a remainder", {16, 8, 9}, 20, 3, 2, 0, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<std::unique_ptr<Layer>> layers;
    layers.push_back(MakeConv(c.input, c.out, c.kernel, c.stride, c.padding, c.bias));
    ExpectWithinTolerance(CheckLayers(std::move(layers), {ConvSpec(c.out, c.kernel, c.stride, c.padding, c.bias)},
                                      /*batch=*/2, /*seed=*/21));
  }
}

TEST(Conv2dTest, GradientsThroughReluPoolAndSecondConvMatchFiniteDifferences) {
  // LeNet-5's feature extractor in small: conv (fused ReLU) → maxpool → conv (channels-last, fused ReLU).
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(MakeConv({1, 12, 12}, 10, 3, 1, 0, true, "conv1"));
  layers.push_back(std::make_unique<Relu>("relu1", Shape{10, 10, 10}));
  ASSERT_OK_AND_ASSIGN(auto pool, MaxPool2d::Create("pool1", {10, 10, 10}, {2, 0, 0}));
  layers.push_back(std::move(pool));
  layers.push_back(MakeConv({10, 5, 5}, 12, 3, 1, 0, true, "conv2"));
  layers.push_back(std::make_unique<Relu>("relu2", Shape{12, 3, 3}));
  LayerSpec relu, pool_spec;
  relu.kind = LayerKind::kRelu;
  pool_spec.kind = LayerKind::kMaxPool2d;
  pool_spec.kernel = 2;
  ExpectWithinTolerance(CheckLayers(std::move(layers),
                                    {ConvSpec(10, 3, 1, 0, true), relu, pool_spec, ConvSpec(12, 3, 1, 0, true), relu},
                                    /*batch=*/3, /*seed=*/5));
}

TEST(Conv2dTest, RejectsInvalidOptions) {
  struct Case {
    const char* what;
    Shape input;
    Conv2dOptions options;
    const char* message;
  };
  const Case cases[] = {
      {"flat input", {784}, {20, 5, 1, 0, true}, "needs a CxHxW input"},
      {"zero channels", {1, 28, 28}, {0, 5, 1, 0, true}, "out_channels must be >= 1, got 0"},
      {"zero kernel", {1, 28, 28}, {20, 0, 1, 0, true}, "kernel must be >= 1, got 0"},
      {"zero stride", {1, 28, 28}, {20, 5, 0, 0, true}, "stride must be >= 1, got 0"},
      {"padding as large as the kernel", {1, 28, 28}, {20, 3, 1, 3, true}, "padding must be in [0, kernel), got 3"},
      {"kernel larger than input", {1, 4, 4}, {20, 5, 1, 0, true}, "does not fit the input 1x4x4"},
      {"huge output", {1, 1 << 20, 1 << 20}, {1 << 20, 1, 1, 0, true}, "exceeds 268435456 elements"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(Conv2d::Create("conv1", c.input, c.options),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

}  // namespace
}  // namespace gcprune::trainer
