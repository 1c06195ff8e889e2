// Tests of the ReLU layer: hand-computed forward and backward (gradient 0 at 0, as PyTorch), standalone on
// plain and pooled inputs, and fused after a convolution.
#include "trainer_service/engine/relu.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/layer_check.h"
#include "trainer_service/engine/conv2d.h"
#include "trainer_service/engine/max_pool2d.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::trainer::testing::CheckLayers;
using ::gcprune::trainer::testing::ExpectWithinTolerance;

TEST(ReluTest, ForwardAndBackwardMatchHandComputedValues) {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Relu>("relu1", Shape{5}));
  Network::Options options;
  options.input_grad = true;
  ASSERT_OK_AND_ASSIGN(auto net, Network::Create(std::move(layers), options));
  ASSERT_OK_AND_ASSIGN(NetworkPlan * plan, net->Prepare(1, PlanMode::kTraining));
  const std::vector<float> x = {-1.0f, 0.0f, 2.0f, -3.5f, 4.0f};
  ASSERT_OK(net->Forward(plan, x.data()));
  EXPECT_THAT(std::vector<float>(plan->output(), plan->output() + 5), ::testing::ElementsAre(0, 0, 2, 0, 4));
  const float dy[] = {10, 20, 30, 40, 50};
  std::memcpy(plan->output_grad(), dy, sizeof(dy));
  ASSERT_OK(net->Backward(plan));
  EXPECT_THAT(std::vector<float>(plan->input_grad(), plan->input_grad() + 5),
              ::testing::ElementsAre(0, 0, 30, 0, 50));
}

TEST(ReluTest, StandaloneGradientsMatchFiniteDifferences) {
  LayerSpec relu;
  relu.kind = LayerKind::kRelu;
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Relu>("relu1", Shape{3, 6, 6}));
  ExpectWithinTolerance(CheckLayers(std::move(layers), {relu}, /*batch=*/3, /*seed=*/1));
}

TEST(ReluTest, AfterPoolingAndFusedAfterConvolutionMatchFiniteDifferences) {
  // conv → relu (fused) → maxpool → relu (standalone, on the pool's blocked layout).
  Conv2dOptions options;
  options.out_channels = 5;
  options.kernel = 3;
  ASSERT_OK_AND_ASSIGN(auto conv, Conv2d::Create("conv1", {2, 8, 8}, options));
  ASSERT_OK_AND_ASSIGN(auto pool, MaxPool2d::Create("pool1", {5, 6, 6}, {2, 0, 0}));
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::move(conv));
  layers.push_back(std::make_unique<Relu>("relu1", Shape{5, 6, 6}));
  layers.push_back(std::move(pool));
  layers.push_back(std::make_unique<Relu>("relu2", Shape{5, 3, 3}));
  LayerSpec conv_spec, relu, pool_spec;
  conv_spec.kind = LayerKind::kConv2d;
  conv_spec.out = 5;
  conv_spec.kernel = 3;
  conv_spec.stride = 1;
  relu.kind = LayerKind::kRelu;
  pool_spec.kind = LayerKind::kMaxPool2d;
  pool_spec.kernel = 2;
  ExpectWithinTolerance(
      CheckLayers(std::move(layers), {conv_spec, relu, pool_spec, relu}, /*batch=*/2, /*seed=*/4));
}

}  // namespace
}  // namespace gcprune::trainer
