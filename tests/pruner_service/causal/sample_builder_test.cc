// Tests of sample building from steps: V2 targets and scaling, V1 consecutive differences, the momentum
// variant's features and indexing, validation and step bookkeeping.
#include "pruner_service/causal/sample_builder.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

// conv.weight (4 features), conv.bias (not prunable), fc.weight (3 features): N = 7.
Layout TinyLayout() {
  absl::StatusOr<Layout> layout =
      Layout::Create({{"conv.weight", {1, 1, 2, 2}, true}, {"conv.bias", {1}, false}, {"fc.weight", {1, 3}, true}});
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *layout;
}

std::unique_ptr<SampleStore> MakeStore(int groups) {
  absl::StatusOr<std::unique_ptr<SampleStore>> store =
      SampleStore::Create(TinyLayout(), SampleStoreOptions{SampleEncoding::kFloat32, 1 << 20, groups});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(store).value();
}

// Deltas of step s: element k of the 7 features is (s + 1) * 0.001 * (k + 1), negative when k + s is odd
// (so consecutive steps have opposite signs).
std::vector<float> Deltas(int s) {
  std::vector<float> d(7);
  for (int k = 0; k < 7; ++k) {
    d[static_cast<size_t>(k)] = static_cast<float>(s + 1) * 0.001f * static_cast<float>(k + 1) * ((k + s) % 2 == 1 ? -1.0f : 1.0f);
  }
  return d;
}

// Sends step s's deltas as three chunks, fc first.
absl::Status SendDeltas(SampleBuilder* builder, int s) {
  const std::vector<float> d = Deltas(s);
  absl::Status status = builder->AddDeltas(2, 1, absl::MakeConstSpan(d).subspan(5, 2));
  if (status.ok()) status = builder->AddDeltas(0, 0, absl::MakeConstSpan(d).subspan(0, 4));
  if (status.ok()) status = builder->AddDeltas(2, 0, absl::MakeConstSpan(d).subspan(4, 1));
  return status;
}

absl::Status RunStep(SampleBuilder* builder, const StepHeader& header) {
  absl::Status status = builder->BeginStep(header);
  if (status.ok()) status = SendDeltas(builder, static_cast<int>(header.step));
  if (status.ok()) status = builder->EndStep();
  return status;
}

TEST(SampleBuilderTest, V2TargetsAndScaledSquares) {
  auto store = MakeStore(1);
  ASSERT_OK_AND_ASSIGN(auto builder, SampleBuilder::Create(store.get(), {CausalVariant::kV2, false}));
  ASSERT_OK(RunStep(builder.get(), {0, 2.30, 2.25, 1e-3}));
  ASSERT_OK(RunStep(builder.get(), {1, 2.20, 2.18, 2e-3}));
  ASSERT_EQ(store->num_rows(), 2);
  EXPECT_DOUBLE_EQ(store->target(0), 2.25 - 2.30);
  EXPECT_DOUBLE_EQ(store->target(1), 2.18 - 2.20);
  for (int s = 0; s < 2; ++s) {
    const float scale = static_cast<float>(1.0 / ((s + 1) * 1e-3 * (s + 1) * 1e-3));
    const std::vector<float> d = Deltas(s);
    const float* x = store->Row(s, nullptr);
    for (int k = 0; k < 7; ++k) EXPECT_FLOAT_EQ(x[k], d[k] * d[k] * scale) << s << " " << k;
  }
  // x = Δθ²/η²: step 0, feature 2 is (0.003)² / (1e-3)² = 9.
  EXPECT_NEAR(store->Row(0, nullptr)[2], 9.0f, 1e-4f);
  EXPECT_EQ(builder->samples_committed(), 2);
}

TEST(SampleBuilderTest, V1UsesConsecutiveLossesAndRawSquares) {
  auto store = MakeStore(1);
  ASSERT_OK_AND_ASSIGN(auto builder, SampleBuilder::Create(store.get(), {CausalVariant::kV1, false}));
  const double losses[] = {2.5, 2.25, 2.0, 1.5};
  for (int s = 0; s < 4; ++s) {
    ASSERT_OK(RunStep(builder.get(), {10 + s, losses[s], 0.0, 1e-3}));
    EXPECT_EQ(store->num_rows(), s);  // sample s-1 is committed when step s begins
  }
  builder->EndIteration();  // the last step gives no sample
  ASSERT_EQ(store->num_rows(), 3);
  EXPECT_FALSE(store->pending());
  for (int t = 0; t < 3; ++t) {
    EXPECT_DOUBLE_EQ(store->target(t), losses[t + 1] - losses[t]) << t;
    const std::vector<float> d = Deltas(10 + t);
    const float* x = store->Row(t, nullptr);
    for (int k = 0; k < 7; ++k) EXPECT_EQ(x[k], d[k] * d[k]) << t << " " << k;
  }
  // A new iteration may start from any step number.
  ASSERT_OK(RunStep(builder.get(), {100, 1.0, 0.0, 1e-3}));
  ASSERT_OK(RunStep(builder.get(), {101, 0.75, 0.0, 1e-3}));
  builder->EndIteration();
  ASSERT_EQ(store->num_rows(), 4);
  EXPECT_DOUBLE_EQ(store->target(3), -0.25);
}

TEST(SampleBuilderTest, V1MomentumFeaturesAndIndexing) {
  auto store = MakeStore(3);
  ASSERT_OK_AND_ASSIGN(auto builder, SampleBuilder::Create(store.get(), {CausalVariant::kV1, true}));
  const double losses[] = {3.0, 2.5, 2.25, 2.0, 1.0};
  for (int s = 0; s < 5; ++s) ASSERT_OK(RunStep(builder.get(), {s, losses[s], 0.0, 1e-3}));
  builder->EndIteration();
  // S = 5 steps give S - 2 = 3 samples: t pairs Δθ_t and Δθ_{t+1} with target L_{t+2} − L_{t+1}.
  ASSERT_EQ(store->num_rows(), 3);
  ASSERT_EQ(store->num_cols(), 21);
  for (int t = 0; t < 3; ++t) {
    SCOPED_TRACE(t);
    EXPECT_DOUBLE_EQ(store->target(t), losses[t + 2] - losses[t + 1]);
    const std::vector<float> a = Deltas(t);
    const std::vector<float> b = Deltas(t + 1);
    const float* x = store->Row(t, nullptr);
    for (int k = 0; k < 7; ++k) {
      EXPECT_EQ(x[k], a[k] * a[k]) << k;
      EXPECT_EQ(x[7 + k], b[k] * b[k]) << k;
      EXPECT_EQ(x[14 + k], a[k] * b[k]) << k;
      EXPECT_LT(x[14 + k], 0.0f) << k;  // the product keeps the deltas' signs
    }
  }
  EXPECT_FALSE(store->pending());
}

TEST(SampleBuilderTest, ValidatesHeaders) {
  auto store = MakeStore(1);
  ASSERT_OK_AND_ASSIGN(auto builder, SampleBuilder::Create(store.get(), {CausalVariant::kV2, false}));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    StepHeader header;
    const char* message;
  };
  const Case cases[] = {
      {{3, nan, 1.0, 1e-3}, "step 3 loss_before: nan"},
      {{3, 1.0, nan, 1e-3}, "step 3 loss_after: nan"},
      {{3, 1.0, 1.0, 0.0}, "step 3 lr: 0"},
      {{3, 1.0, 1.0, -0.1}, "step 3 lr: -0.1"},
      {{3, 1.0, 1.0, nan}, "step 3 lr: nan"},
      {{3, 1.0, 1.0, std::numeric_limits<double>::infinity()}, "step 3 lr: inf"},
      {{3, 1.0, 1.0, 1e-30}, "1/lr² is not representable"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(builder->BeginStep(c.header), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  EXPECT_FALSE(builder->step_open());
  EXPECT_FALSE(store->pending());
  // V1 ignores loss_after.
  auto store1 = MakeStore(1);
  ASSERT_OK_AND_ASSIGN(auto v1, SampleBuilder::Create(store1.get(), {CausalVariant::kV1, false}));
  EXPECT_OK(v1->BeginStep({0, 1.0, nan, 1e-3}));
}

TEST(SampleBuilderTest, StepBookkeeping) {
  auto store = MakeStore(1);
  ASSERT_OK_AND_ASSIGN(auto builder, SampleBuilder::Create(store.get(), {CausalVariant::kV1, false}));
  const std::vector<float> d(4, 1.0f);
  EXPECT_THAT(builder->AddDeltas(0, 0, d), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(builder->EndStep(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(builder->BeginStep({5, 2.0, 0.0, 1e-3}));
  EXPECT_THAT(builder->BeginStep({6, 2.0, 0.0, 1e-3}),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "step 5 is still open"));
  ASSERT_OK(builder->AddDeltas(0, 0, d));
  EXPECT_THAT(builder->AddDeltas(0, 3, {1.0f}), StatusIs(absl::StatusCode::kInvalidArgument));  // overlap
  EXPECT_THAT(builder->EndStep(), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'fc.weight'"));
  EXPECT_TRUE(builder->step_open());  // still open: the missing chunk may come
  ASSERT_OK(builder->AddDeltas(2, 0, std::vector<float>(3, 1.0f)));
  ASSERT_OK(builder->EndStep());
  EXPECT_THAT(builder->BeginStep({7, 2.0, 0.0, 1e-3}),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "expected step 6"));
  // An aborted step may be sent again; its predecessor's sample is committed exactly once.
  ASSERT_OK(builder->BeginStep({6, 1.5, 0.0, 1e-3}));
  EXPECT_EQ(store->num_rows(), 1);
  ASSERT_OK(builder->AddDeltas(0, 0, d));
  builder->AbortStep();
  EXPECT_FALSE(store->pending());
  ASSERT_OK(RunStep(builder.get(), {6, 1.5, 0.0, 1e-3}));
  EXPECT_EQ(store->num_rows(), 1);
  EXPECT_DOUBLE_EQ(store->target(0), -0.5);
  ASSERT_OK(RunStep(builder.get(), {7, 1.25, 0.0, 1e-3}));
  EXPECT_EQ(store->num_rows(), 2);
  EXPECT_DOUBLE_EQ(store->target(1), -0.25);
}

TEST(SampleBuilderTest, BudgetRefusalLeavesTheBuilderUsable) {
  // One float32 row of 7 features is padded to 64 bytes; a budget of 64 holds exactly one sample.
  ASSERT_OK_AND_ASSIGN(auto store, SampleStore::Create(TinyLayout(), SampleStoreOptions{SampleEncoding::kFloat32, 64, 1}));
  ASSERT_OK_AND_ASSIGN(auto builder, SampleBuilder::Create(store.get(), {CausalVariant::kV2, false}));
  ASSERT_OK(RunStep(builder.get(), {0, 2.0, 1.9, 1e-3}));
  EXPECT_THAT(builder->BeginStep({1, 1.9, 1.8, 1e-3}), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_FALSE(builder->step_open());
  store->Clear();
  ASSERT_OK(RunStep(builder.get(), {1, 1.9, 1.8, 1e-3}));
  EXPECT_EQ(store->num_rows(), 1);
}

TEST(SampleBuilderTest, CreateChecksTheStoreShape) {
  auto one = MakeStore(1);
  auto three = MakeStore(3);
  EXPECT_THAT(SampleBuilder::Create(one.get(), {CausalVariant::kV1, true}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "feature_groups 1"));
  EXPECT_THAT(SampleBuilder::Create(three.get(), {CausalVariant::kV1, false}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SampleBuilder::Create(three.get(), {CausalVariant::kV2, true}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "v1_momentum"));
  EXPECT_THAT(SampleBuilder::Create(nullptr, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::pruner
