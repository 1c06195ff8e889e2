// Tests of Network: validation, the plan cache (reuse per batch size and mode, eviction of the least recently
// used plan) and the contract of Forward/Backward.
#include "trainer_service/engine/network.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "trainer_service/engine/flatten.h"
#include "trainer_service/engine/linear.h"
#include "trainer_service/engine/relu.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

std::vector<std::unique_ptr<Layer>> SmallMlp() {
  std::vector<std::unique_ptr<Layer>> layers;
  layers.push_back(std::make_unique<Flatten>("flatten1", Shape{1, 4, 4}));
  absl::StatusOr<std::unique_ptr<Linear>> fc = Linear::Create("fc1", {16}, 3, true);
  EXPECT_OK(fc);
  layers.push_back(*std::move(fc));
  return layers;
}

TEST(NetworkTest, RejectsInvalidConstruction) {
  EXPECT_THAT(Network::Create({}, {}), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "no layers"));
  std::vector<std::unique_ptr<Layer>> mismatched;
  mismatched.push_back(std::make_unique<Relu>("relu1", Shape{4}));
  mismatched.push_back(std::make_unique<Relu>("relu2", Shape{5}));
  EXPECT_THAT(Network::Create(std::move(mismatched), {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument,
                                  "layer 1 (relu2) expects input 5 but layer 0 (relu1) produces 4"));
  Network::Options options;
  options.max_cached_plans = 0;
  EXPECT_THAT(Network::Create(SmallMlp(), options),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "max_cached_plans must be >= 1, got 0"));
}

TEST(NetworkTest, PlansAreCachedPerBatchSizeAndModeAndEvictedLeastRecentlyUsedFirst) {
  Network::Options options;
  options.max_cached_plans = 2;
  ASSERT_OK_AND_ASSIGN(auto net, Network::Create(SmallMlp(), options));
  ASSERT_OK_AND_ASSIGN(NetworkPlan * train4, net->Prepare(4, PlanMode::kTraining));
  ASSERT_OK_AND_ASSIGN(NetworkPlan * infer4, net->Prepare(4, PlanMode::kInference));
  EXPECT_NE(train4, infer4);
  EXPECT_EQ(train4->batch(), 4);
  EXPECT_EQ(infer4->mode(), PlanMode::kInference);
  ASSERT_OK_AND_ASSIGN(NetworkPlan * again, net->Prepare(4, PlanMode::kTraining));
  EXPECT_EQ(again, train4);  // reused, and now the most recently used
  ASSERT_OK_AND_ASSIGN(NetworkPlan * train7, net->Prepare(7, PlanMode::kTraining));  // evicts infer4
  EXPECT_EQ(train7->batch(), 7);
  ASSERT_OK_AND_ASSIGN(again, net->Prepare(4, PlanMode::kTraining));
  EXPECT_EQ(again, train4);
  EXPECT_THAT(net->Prepare(0, PlanMode::kTraining),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "batch must be >= 1, got 0"));
}

TEST(NetworkTest, BackwardNeedsATrainingPlan) {
  ASSERT_OK_AND_ASSIGN(auto net, Network::Create(SmallMlp(), {}));
  ASSERT_OK_AND_ASSIGN(NetworkPlan * plan, net->Prepare(2, PlanMode::kInference));
  const std::vector<float> x(32, 1.0f);
  ASSERT_OK(net->Forward(plan, x.data()));
  EXPECT_EQ(plan->input_grad(), nullptr);
  EXPECT_THAT(net->Backward(plan), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(NetworkTest, BackwardOverwritesParameterGradients) {
  ASSERT_OK_AND_ASSIGN(auto net, Network::Create(SmallMlp(), {}));
  ASSERT_OK_AND_ASSIGN(NetworkPlan * plan, net->Prepare(2, PlanMode::kTraining));
  std::vector<float> x(32);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 32.0f;
  EXPECT_EQ(plan->input_grad(), nullptr);  // no input gradient unless asked for
  std::vector<std::vector<float>> first;
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_OK(net->Forward(plan, x.data()));
    for (int i = 0; i < 6; ++i) plan->output_grad()[i] = 1.0f;
    ASSERT_OK(net->Backward(plan));
    std::vector<std::vector<float>> grads;
    for (const Parameter* p : net->parameters()) grads.emplace_back(p->grad, p->grad + p->numel);
    if (pass == 0) {
      first = grads;
    } else {
      EXPECT_EQ(grads, first);  // not accumulated
    }
  }
  // dL/db = Σ over the batch of dL/dy = 2 for every output.
  EXPECT_EQ(first[1], std::vector<float>(3, 2.0f));
}

}  // namespace
}  // namespace gcprune::trainer
