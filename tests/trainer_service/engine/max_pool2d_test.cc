// Tests of the MaxPool2d layer: hand-computed forward passes (with padding), gradients against finite
// differences (overlapping windows, blocked and channels-last inputs, a preceding ReLU whose gradient the pool
// applies) and validation.
#include "trainer_service/engine/max_pool2d.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/layer_check.h"
#include "trainer_service/engine/conv2d.h"
#include "trainer_service/engine/relu.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::trainer::testing::CheckLayers;
using ::gcprune::trainer::testing::ExpectWithinTolerance;
using ::gcprune::trainer::testing::RunForward;

std::unique_ptr<MaxPool2d> MakePool(const Shape& input, int64_t kernel, int64_t stride, int64_t padding) {
  absl::StatusOr<std::unique_ptr<MaxPool2d>> layer = MaxPool2d::Create("pool1", input, {kernel, stride, padding});
  EXPECT_OK(layer);
  return *std::move(layer);
}

LayerSpec PoolSpec(int64_t kernel, int64_t stride, int64_t padding) {
  LayerSpec spec;
  spec.kind = LayerKind::kMaxPool2d;
  spec.kernel = kernel;
  spec.stride = stride;
  spec.padding = padding;
  return spec;
}

std::vector<float> Forward4x4(int64_t kernel, int64_t stride, int64_t padding, PlanMode mode) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(MakePool({1, 4, 4}, kernel, stride, padding));
  absl::StatusOr<std::unique_ptr<Network>> net = Network::Create(std::move(layers), {});
  EXPECT_OK(net);
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i);
  return RunForward(net->get(), x, 1, mode);
}

TEST(MaxPool2dTest, ForwardMatchesHandComputedValues) {
  for (PlanMode mode : {PlanMode::kTraining, PlanMode::kInference}) {
    // x = 0..15 row-major in 4x4.
    EXPECT_THAT(Forward4x4(2, 0, 0, mode), ::testing::ElementsAre(5, 7, 13, 15));
    // Padding 1: windows start at −1, 1, 3; the padding never wins.
    EXPECT_THAT(Forward4x4(2, 2, 1, mode), ::testing::ElementsAre(0, 2, 3, 8, 10, 11, 12, 14, 15));
    // Overlapping 3x3 windows, stride 1.
    EXPECT_THAT(Forward4x4(3, 1, 0, mode), ::testing::ElementsAre(10, 11, 14, 15));
  }
}

TEST(MaxPool2dTest, OutputShapeFollowsPyTorch) {
  EXPECT_EQ(MakePool({20, 24, 24}, 2, 0, 0)->output_shape(), (Shape{20, 12, 12}));
  EXPECT_EQ(MakePool({3, 7, 7}, 2, 0, 0)->output_shape(), (Shape{3, 3, 3}));
  EXPECT_EQ(MakePool({3, 7, 7}, 3, 2, 1)->output_shape(), (Shape{3, 4, 4}));
  EXPECT_EQ(MakePool({3, 7, 7}, 2, 0, 0)->DebugString(), "MaxPool2d(kernel_size=2, stride=2, padding=0)");
}

TEST(MaxPool2dTest, GradientsMatchFiniteDifferences) {
  struct Case {
    const char* what;
    Shape input;
    int64_t kernel, stride, padding;
  };
  const Case cases[] = {
      {"2x2, stride 2", {3, 8, 8}, 2, 0, 0},
      {"odd size drops the last row", {2, 7, 9}, 2, 0, 0},
      {"overlapping 3x3, stride 2, padding 1", {4, 9, 9}, 3, 2, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::vector<std::unique_ptr<Layer>> layers;
    layers.push_back(MakePool(c.input, c.kernel, c.stride, c.padding));
    ExpectWithinTolerance(
        CheckLayers(std::move(layers), {PoolSpec(c.kernel, c.stride, c.padding)}, /*batch=*/2, /*seed=*/8));
  }
}

TEST(MaxPool2dTest, GradientsOnConvolutionLayoutsMatchFiniteDifferences) {
  // After a convolution the pool sees oneDNN's blocked (1 input channel) or channels-last (>= 8) layout.
  for (int64_t channels : {1, 9}) {
    SCOPED_TRACE(channels);
    Conv2dOptions options;
    options.out_channels = 6;
    options.kernel = 3;
    ASSERT_OK_AND_ASSIGN(auto conv, Conv2d::Create("conv1", {channels, 10, 10}, options));
    std::vector<std::unique_ptr<Layer>> layers;
    layers.push_back(std::move(conv));
    layers.push_back(MakePool({6, 8, 8}, 2, 0, 0));
    LayerSpec conv_spec;
    conv_spec.kind = LayerKind::kConv2d;
    conv_spec.out = 6;
    conv_spec.kernel = 3;
    conv_spec.stride = 1;
    ExpectWithinTolerance(CheckLayers(std::move(layers), {conv_spec, PoolSpec(2, 0, 0)}, /*batch=*/2, /*seed=*/9));
  }
}

TEST(MaxPool2dTest, AppliesThePrecedingReluGradientOnItsOutput) {
  // A standalone ReLU before the pool leaves its backward to the pool, which masks the pooled gradient;
  // overlapping windows make one input the arg-max of several outputs.
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Relu>("relu1", Shape{3, 9, 9}));
  layers.push_back(MakePool({3, 9, 9}, 3, 2, 1));
  LayerSpec relu;
  relu.kind = LayerKind::kRelu;
  ExpectWithinTolerance(CheckLayers(std::move(layers), {relu, PoolSpec(3, 2, 1)}, /*batch=*/2, /*seed=*/12));
}

TEST(MaxPool2dTest, RejectsInvalidOptions) {
  EXPECT_THAT(MaxPool2d::Create("pool1", {10}, {2, 0, 0}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "needs a CxHxW input"));
  EXPECT_THAT(MaxPool2d::Create("pool1", {1, 4, 4}, {0, 0, 0}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "kernel must be >= 1, got 0"));
  EXPECT_THAT(MaxPool2d::Create("pool1", {1, 4, 4}, {2, -1, 0}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "stride must be >= 1, got -1"));
  EXPECT_THAT(MaxPool2d::Create("pool1", {1, 4, 4}, {2, 2, 2}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "padding must be in [0, kernel/2], got 2"));
  EXPECT_THAT(MaxPool2d::Create("pool1", {1, 4, 4}, {5, 0, 0}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "does not fit the input 1x4x4"));
}

}  // namespace
}  // namespace gcprune::trainer
