// Tests of the causal step: Δθ = −η·g from an independently computed gradient, the two losses against
// Model::Loss on the same batch, the first-order Taylor term, masks, V1 with momentum, and validation.
#include "trainer_service/engine/causal_step.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/reference_net.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::trainer::testing::RandomFloats;

std::unique_ptr<Model> MakePreset(const char* name, uint64_t seed) {
  absl::StatusOr<ModelSpec> spec = PresetModelSpec(name);
  EXPECT_OK(spec);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*spec, seed);
  EXPECT_OK(model);
  return *std::move(model);
}

std::vector<int32_t> Labels(int64_t n) {
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((i * 3 + 1) % 10);
  return labels;
}

std::vector<std::vector<float>> Values(Model* model) {
  std::vector<std::vector<float>> values;
  for (const Parameter* p : model->parameters()) values.emplace_back(p->data, p->data + p->numel);
  return values;
}

std::vector<std::vector<float>> Grads(Model* model) {
  std::vector<std::vector<float>> grads;
  for (const Parameter* p : model->parameters()) grads.emplace_back(p->grad, p->grad + p->numel);
  return grads;
}

// |actual − expected| within the rounding of w1 = w0 − η·g to float: half an ulp of the larger weight.
void ExpectUpdate(float w0, float w1, float expected_change, float actual_change) {
  const float bound = std::ldexp(std::max(std::abs(w0), std::abs(w1)), -23) + 1e-12f;
  ASSERT_LE(std::abs(actual_change - expected_change), bound) << "w0 " << w0 << " w1 " << w1;
}

TEST(CausalStepTest, DeltasAreMinusLrTimesAnIndependentGradient) {
  for (const char* name : {"mlp", "lenet5"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Model> model = MakePreset(name, 7), twin = MakePreset(name, 7);
    const std::vector<float> x = RandomFloats(16 * 784, 2);
    const std::vector<int32_t> labels = Labels(16);
    ASSERT_OK_AND_ASSIGN(float twin_loss, twin->ForwardBackward(x, labels));
    const std::vector<std::vector<float>> g = Grads(twin.get()), w0 = Values(twin.get());
    const float lr = 1e-3f;
    ASSERT_OK_AND_ASSIGN(CausalSample sample, CausalStep(model.get(), x, labels, lr));
    EXPECT_EQ(sample.loss_before, twin_loss);
    ASSERT_EQ(sample.deltas.size(), model->prunable_parameters().size());
    size_t k = 0;
    for (size_t t = 0; t < w0.size(); ++t) {
      const Parameter& p = *model->parameters()[t];
      SCOPED_TRACE(p.name);
      for (int64_t i = 0; i < p.numel; ++i) {
        // Every parameter moved by −η·g, biases included.
        ExpectUpdate(w0[t][i], p.data[i], -lr * g[t][i], p.data[i] - w0[t][i]);
      }
      if (!p.prunable) continue;
      const std::vector<float>& delta = sample.deltas[k++];
      ASSERT_EQ(static_cast<int64_t>(delta.size()), p.numel);
      for (int64_t i = 0; i < p.numel; ++i) {
        ASSERT_EQ(delta[i], p.data[i] - w0[t][i]) << i;  // the difference actually applied
        ExpectUpdate(w0[t][i], p.data[i], -lr * g[t][i], delta[i]);
      }
    }
  }
}

TEST(CausalStepTest, LossAfterIsTheSameBatchLossOfTheUpdatedModel) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 3);
  const std::vector<float> x = RandomFloats(32 * 784, 5);
  const std::vector<int32_t> labels = Labels(32);
  ASSERT_OK_AND_ASSIGN(float before, model->Loss(x, labels));
  ASSERT_OK_AND_ASSIGN(auto stepper, CausalStepper::Create(model.get(), {1e-2f, 0.0f}));
  CausalSample sample;
  ASSERT_OK(stepper->StepV2(x, labels, &sample));
  EXPECT_EQ(sample.loss_before, before);
  ASSERT_OK_AND_ASSIGN(float after, model->Loss(x, labels));
  EXPECT_EQ(sample.loss_after, after);
  EXPECT_EQ(sample.loss_delta(), sample.loss_after - sample.loss_before);
  EXPECT_LT(sample.loss_delta(), 0.0f);  // a small gradient step lowers the loss on its own batch
}

TEST(CausalStepTest, LossChangeMatchesTheFirstOrderTerm) {
  // METHOD.md §1: ΔL ≈ gᵀΔθ = −(1/η)·Σ Δθ² for small η.
  std::unique_ptr<Model> model = MakePreset("mlp", 4);
  const std::vector<float> x = RandomFloats(64 * 784, 6);
  const std::vector<int32_t> labels = Labels(64);
  ASSERT_OK_AND_ASSIGN(auto stepper, CausalStepper::Create(model.get(), {1e-3f, 0.0f}));
  CausalSample sample;
  ASSERT_OK(stepper->StepV2(x, labels, &sample));
  double sum_sq = 0.0;
  for (const std::vector<float>& d : sample.deltas) {
    for (float v : d) sum_sq += double{v} * v;
  }
  const double first_order = -sum_sq / 1e-3;
  EXPECT_NEAR(sample.loss_delta(), first_order, 0.1 * std::abs(first_order));
}

TEST(CausalStepTest, MaskedWeightsStayZeroAndHaveZeroDeltas) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 8);
  std::vector<std::vector<uint8_t>> masks;
  for (const Parameter* p : model->prunable_parameters()) {
    std::vector<uint8_t> mask(p->numel, 1);
    for (int64_t i = 0; i < p->numel; i += 3) mask[i] = 0;
    masks.push_back(mask);
  }
  ASSERT_OK(model->SetMasks(masks));
  ASSERT_OK_AND_ASSIGN(auto stepper, CausalStepper::Create(model.get(), {0.05f, 0.0f}));
  const std::vector<float> x = RandomFloats(8 * 784, 9);
  CausalSample sample;
  for (int step = 0; step < 5; ++step) ASSERT_OK(stepper->StepV2(x, Labels(8), &sample));
  for (size_t k = 0; k < masks.size(); ++k) {
    const Parameter& p = *model->prunable_parameters()[k];
    int64_t moved = 0;
    for (int64_t i = 0; i < p.numel; ++i) {
      if (i % 3 == 0) {
        ASSERT_EQ(p.data[i], 0.0f);
        ASSERT_EQ(sample.deltas[k][i], 0.0f);
      } else {
        moved += sample.deltas[k][i] != 0.0f;
      }
    }
    EXPECT_GT(moved, 0) << p.name;
  }
}

TEST(CausalStepTest, V1WithMomentumFollowsTorchSgd) {
  std::unique_ptr<Model> model = MakePreset("mlp", 5), twin = MakePreset("mlp", 5);
  const float lr = 0.01f, mu = 0.9f;
  ASSERT_OK_AND_ASSIGN(auto stepper, CausalStepper::Create(model.get(), {lr, mu}));
  std::vector<std::vector<float>> buf;
  CausalSample sample;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> x = RandomFloats(8 * 784, 20 + step);
    const std::vector<int32_t> labels = Labels(8);
    // The twin does torch.optim.SGD(momentum=μ) by hand: b = g at the first step, then b = μ·b + g.
    ASSERT_OK_AND_ASSIGN(float twin_loss, twin->ForwardBackward(x, labels));
    const std::vector<std::vector<float>> g = Grads(twin.get());
    if (buf.empty()) {
      buf = g;
    } else {
      for (size_t t = 0; t < g.size(); ++t)
        for (size_t i = 0; i < g[t].size(); ++i) buf[t][i] = mu * buf[t][i] + g[t][i];
    }
    std::vector<std::vector<float>> expected_delta(g.size());
    for (size_t t = 0; t < g.size(); ++t) {
      Parameter& p = *twin->parameters()[t];
      for (int64_t i = 0; i < p.numel; ++i) {
        const float w0 = p.data[i];
        p.data[i] = w0 - lr * buf[t][i];
        expected_delta[t].push_back(p.data[i] - w0);
      }
    }
    ASSERT_OK(stepper->StepV1(x, labels, &sample));
    EXPECT_EQ(sample.loss_before, twin_loss);
    EXPECT_TRUE(std::isnan(sample.loss_after));
    for (size_t t = 0; t < g.size(); ++t) {
      const Parameter& p = *model->parameters()[t];
      const Parameter& q = *twin->parameters()[t];
      for (int64_t i = 0; i < p.numel; ++i) {
        // Float rounding only (the two may contract μ·b + g differently).
        ASSERT_NEAR(p.data[i], q.data[i], 1e-6f * (1.0f + std::abs(q.data[i]))) << step << " " << p.name;
        ASSERT_NEAR(sample.deltas[t][i], expected_delta[t][i], 1e-6f) << step << " " << p.name;
      }
    }
  }
  EXPECT_THAT(stepper->StepV2(RandomFloats(784, 1), Labels(1), &sample),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "momentum is 0.9"));
}

TEST(CausalStepTest, ResetMomentumRestartsTheBuffers) {
  std::unique_ptr<Model> a = MakePreset("mlp", 6), b = MakePreset("mlp", 6);
  ASSERT_OK_AND_ASSIGN(auto with_reset, CausalStepper::Create(a.get(), {0.01f, 0.5f}));
  ASSERT_OK_AND_ASSIGN(auto plain, CausalStepper::Create(b.get(), {0.01f, 0.0f}));
  const std::vector<float> x = RandomFloats(4 * 784, 3);
  CausalSample sa, sb;
  for (int step = 0; step < 3; ++step) {
    // After a reset the buffer is the gradient itself: the step equals plain SGD's.
    with_reset->ResetMomentum();
    ASSERT_OK(with_reset->StepV1(x, Labels(4), &sa));
    ASSERT_OK(plain->StepV1(x, Labels(4), &sb));
    EXPECT_EQ(sa.deltas, sb.deltas);
  }
}

TEST(CausalStepTest, RejectsBadOptionsAndBatches) {
  std::unique_ptr<Model> model = MakePreset("mlp", 1);
  EXPECT_THAT(CausalStepper::Create(model.get(), {0.0f, 0.0f}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "lr must be finite and > 0, got 0"));
  EXPECT_THAT(CausalStepper::Create(model.get(), {NAN, 0.0f}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CausalStepper::Create(model.get(), {1e-3f, 1.0f}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "momentum must be in [0, 1), got 1"));
  EXPECT_THAT(CausalStepper::Create(nullptr, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CausalStep(model.get(), RandomFloats(784, 1), Labels(1), -1.0f),
              StatusIs(absl::StatusCode::kInvalidArgument));
  const std::vector<std::vector<float>> before = Values(model.get());
  EXPECT_THAT(CausalStep(model.get(), RandomFloats(784, 1), std::vector<int32_t>{11}, 1e-3f),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "labels[0] = 11"));
  EXPECT_EQ(Values(model.get()), before);
}

}  // namespace
}  // namespace gcprune::trainer
