// Tests of the Flatten layer: PyTorch's NCHW element order from a plain input (a view) and from oneDNN's
// blocked and channels-last convolution outputs (reorders), forward and backward.
#include "trainer_service/engine/flatten.h"

#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/layer_check.h"
#include "trainer_service/engine/conv2d.h"
#include "trainer_service/engine/linear.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::trainer::testing::CheckLayers;
using ::gcprune::trainer::testing::ExpectWithinTolerance;

TEST(FlattenTest, PlainInputIsPassedThroughInOrder) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Flatten>("flatten1", Shape{3, 2, 2}));
  EXPECT_EQ(layers[0]->output_shape(), (Shape{12}));
  Network::Options options;
  options.input_grad = true;
  ASSERT_OK_AND_ASSIGN(auto net, Network::Create(std::move(layers), options));
  ASSERT_OK_AND_ASSIGN(NetworkPlan * plan, net->Prepare(2, PlanMode::kTraining));
  std::vector<float> x(24), other(24);
  std::iota(x.begin(), x.end(), 0.0f);
  std::iota(other.begin(), other.end(), 100.0f);
  ASSERT_OK(net->Forward(plan, x.data()));
  EXPECT_EQ(std::vector<float>(plan->output(), plan->output() + 24), x);
  // A second call with another buffer is seen too (the view follows the input).
  ASSERT_OK(net->Forward(plan, other.data()));
  EXPECT_EQ(std::vector<float>(plan->output(), plan->output() + 24), other);
  std::memcpy(plan->output_grad(), x.data(), sizeof(float) * 24);
  ASSERT_OK(net->Backward(plan));
  EXPECT_EQ(std::vector<float>(plan->input_grad(), plan->input_grad() + 24), x);
}

TEST(FlattenTest, ConvolutionLayoutsFlattenInPyTorchOrder) {
  // Blocked (1 input channel) and channels-last (>= 8) convolution outputs feed a Linear layer, whose
  // weights index the flattened features in NCHW order.
  for (int64_t channels : {1, 8}) {
    SCOPED_TRACE(channels);
    Conv2dOptions options;
    options.out_channels = 17;
    options.kernel = 3;
    ASSERT_OK_AND_ASSIGN(auto conv, Conv2d::Create("conv1", {channels, 6, 6}, options));
    ASSERT_OK_AND_ASSIGN(auto fc, Linear::Create("fc1", {17 * 4 * 4}, 5, true));
    std::vector<std::unique_ptr<Layer>> layers;
    layers.push_back(std::move(conv));
    layers.push_back(std::make_unique<Flatten>("flatten1", Shape{17, 4, 4}));
    layers.push_back(std::move(fc));
    LayerSpec conv_spec, flatten, fc_spec;
    conv_spec.kind = LayerKind::kConv2d;
    conv_spec.out = 17;
    conv_spec.kernel = 3;
    conv_spec.stride = 1;
    flatten.kind = LayerKind::kFlatten;
    fc_spec.kind = LayerKind::kLinear;
    fc_spec.out = 5;
    ExpectWithinTolerance(CheckLayers(std::move(layers), {conv_spec, flatten, fc_spec}, /*batch=*/2, /*seed=*/6));
  }
}

}  // namespace
}  // namespace gcprune::trainer
