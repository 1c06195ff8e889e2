// Tests of SGD and Adam: torch.optim reference values, option and parameter validation, masks that
// keep pruned weights and their state at exactly 0, snapshots, and the multi-threaded path.
#include "trainer_service/engine/optimizer.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

// A parameter with its own storage.
class Tensor {
 public:
  Tensor(std::string name, std::vector<float> values, bool prunable = true)
      : data_(std::move(values)), grad_(data_.size(), 0.0f) {
    param_.name = std::move(name);
    param_.shape = {static_cast<int64_t>(data_.size())};
    param_.numel = static_cast<int64_t>(data_.size());
    param_.prunable = prunable;
    param_.data = data_.data();
    param_.grad = grad_.data();
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  Parameter* param() { return &param_; }
  std::vector<float>& data() { return data_; }
  std::vector<float>& grad() { return grad_; }
  void SetMask(std::vector<uint8_t> mask) {
    mask_ = std::move(mask);
    param_.mask = mask_.data();
  }
  const std::vector<uint8_t>& mask() const { return mask_; }

 private:
  std::vector<float> data_, grad_;
  std::vector<uint8_t> mask_;
  Parameter param_;
};

// Reference values printed by optimizer_reference.py (torch 1.13, float32): weights after each of
// three steps from w0 with the gradients kGrads, then the state slots after the third step.
struct Reference {
  std::vector<std::vector<float>> steps;
  std::vector<std::vector<float>> slots;
};
const std::vector<float> kW0 = {0.5f, -1.25f, 2.0f};
const std::vector<std::vector<float>> kGrads = {{0.1f, -0.2f, 0.3f}, {-0.4f, 0.05f, 0.25f}, {0.3f, 0.3f, -0.1f}};

// clang-format off
const Reference kSgdPlain = {{{0.49000001f, -1.23000002f, 1.97000003f}, {0.530000031f, -1.23500001f, 1.94500005f}, {0.5f, -1.26499999f, 1.95500004f}}, {}};
const Reference kSgdMomentum = {{{0.49000001f, -1.23000002f, 1.97000003f}, {0.521000028f, -1.21700001f, 1.91799998f}, {0.518900037f, -1.23530006f, 1.88119996f}}, {{0.0210000277f, 0.183000028f, 0.367999971f}}};
const Reference kSgdMomentumWeightDecay = {{{0.489499986f, -1.22874999f, 1.96800005f}, {0.519560516f, -1.21339619f, 1.91223204f}, {0.5160954f, -1.22836447f, 1.87012863f}}, {{0.0346511304f, 0.149682313f, 0.421034306f}}};
const Reference kSgdNesterov = {{{0.480049998f, -1.20962501f, 1.93920004f}, {0.546632886f, -1.19961417f, 1.86209559f}, {0.512950957f, -1.24191391f, 1.83240891f}}, {{0.0348367989f, 0.149992242f, 0.420273721f}}};
const Reference kAdamDefault = {{{0.49000001f, -1.24000001f, 1.99000001f}, {0.495595038f, -1.23530531f, 1.98008823f}, {0.495331854f, -1.23851788f, 1.97425222f}}, {{0.00210000062f, 0.0183000006f, 0.0367999971f}, {0.000259820052f, 0.000132417554f, 0.000162257609f}}};
const Reference kAdamWeightDecay = {{{0.490000099f, -1.24000001f, 1.99000001f}, {0.495965928f, -1.23516834f, 1.98012578f}, {0.495186657f, -1.23875046f, 1.97443962f}}, {{0.0112159392f, 0.0363456607f, 0.0681042522f}, {0.00258348975f, 0.00128398824f, 0.00178911642f}}};
// clang-format on

using Factory = std::function<absl::StatusOr<std::unique_ptr<Optimizer>>(std::vector<Parameter*>)>;

Factory Sgd(float momentum, float weight_decay, bool nesterov) {
  return [=](std::vector<Parameter*> params) {
    SgdOptions options;
    options.momentum = momentum;
    options.weight_decay = weight_decay;
    options.nesterov = nesterov;
    return CreateSgd(std::move(params), options);
  };
}

Factory Adam(double beta1, double beta2, float eps, float weight_decay) {
  return [=](std::vector<Parameter*> params) {
    AdamOptions options;
    options.beta1 = beta1;
    options.beta2 = beta2;
    options.eps = eps;
    options.weight_decay = weight_decay;
    return CreateAdam(std::move(params), options);
  };
}

// Within 4 ulps (EXPECT_FLOAT_EQ): torch and this code may round a coefficient differently by one ulp.
void ExpectFloatsEq(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    SCOPED_TRACE(i);
#ifdef __FMA__
    EXPECT_FLOAT_EQ(actual[i], expected[i]);
#else
    // The references come from torch on an FMA CPU. Built without FMA (GCPRUNE_NATIVE=OFF, as in the Docker
    // images) MulAdd rounds twice, as torch does on such a CPU, which moves some values by a few more ulps.
    EXPECT_NEAR(actual[i], expected[i], 1e-5f * std::fabs(expected[i]));
#endif
  }
}

TEST(OptimizerTest, MatchesTorchOptim) {
  struct Case {
    const char* name;
    Factory make;
    float lr;
    const Reference& expected;
  };
  const std::vector<Case> cases = {
      {"sgd", Sgd(0.0f, 0.0f, false), 0.1f, kSgdPlain},
      {"sgd momentum", Sgd(0.9f, 0.0f, false), 0.1f, kSgdMomentum},
      {"sgd momentum weight decay", Sgd(0.9f, 0.01f, false), 0.1f, kSgdMomentumWeightDecay},
      {"sgd nesterov weight decay", Sgd(0.9f, 0.01f, true), 0.1f, kSgdNesterov},
      {"adam", Adam(0.9, 0.999, 1e-8f, 0.0f), 0.01f, kAdamDefault},
      {"adam betas eps weight decay", Adam(0.8, 0.99, 1e-6f, 0.01f), 0.01f, kAdamWeightDecay},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor w("w", kW0);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> optimizer, c.make({w.param()}));
    for (size_t step = 0; step < kGrads.size(); ++step) {
      SCOPED_TRACE(step);
      w.grad() = kGrads[step];
      optimizer->Step(c.lr);
      ExpectFloatsEq(w.data(), c.expected.steps[step]);
      EXPECT_EQ(w.grad(), kGrads[step]);  // the gradient is read, not modified
    }
    const OptimizerState state = optimizer->SaveState();
    EXPECT_EQ(state.step, 3);
    ASSERT_EQ(state.slots.size(), c.expected.slots.size());
    for (size_t s = 0; s < state.slots.size(); ++s) ExpectFloatsEq(state.slots[s], c.expected.slots[s]);
  }
}

TEST(OptimizerTest, RejectsBadOptions) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    const char* what;
    Factory make;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"negative momentum", Sgd(-0.1f, 0.0f, false), "SgdOptions.momentum"},
      {"momentum 1", Sgd(1.0f, 0.0f, false), "SgdOptions.momentum"},
      {"nan momentum", Sgd(nan, 0.0f, false), "SgdOptions.momentum"},
      {"negative weight decay", Sgd(0.9f, -1e-4f, false), "SgdOptions.weight_decay"},
      {"nan weight decay", Sgd(0.9f, nan, false), "SgdOptions.weight_decay"},
      {"nesterov without momentum", Sgd(0.0f, 0.0f, true), "SgdOptions.nesterov"},
      {"beta1 1", Adam(1.0, 0.999, 1e-8f, 0.0f), "AdamOptions.beta1"},
      {"negative beta2", Adam(0.9, -0.5, 1e-8f, 0.0f), "AdamOptions.beta2"},
      {"negative eps", Adam(0.9, 0.999, -1e-8f, 0.0f), "AdamOptions.eps"},
      {"infinite weight decay", Adam(0.9, 0.999, 1e-8f, std::numeric_limits<float>::infinity()),
       "AdamOptions.weight_decay"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Tensor w("w", kW0);
    EXPECT_THAT(c.make({w.param()}), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(OptimizerTest, RejectsBadParameters) {
  Tensor a("fc1.weight", {1.0f, 2.0f, 3.0f, 4.0f});
  Tensor b("fc1.bias", {1.0f, 2.0f});
  Parameter wrong_numel = *b.param();
  wrong_numel.name = "wrong";
  wrong_numel.shape = {3};
  Parameter null_grad = *b.param();
  null_grad.name = "nograd";
  null_grad.data = nullptr;
  null_grad.grad = nullptr;
  null_grad.numel = 2;
  struct Case {
    const char* what;
    std::vector<Parameter*> params;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"empty", {}, "empty parameter list"},
      {"null", {a.param(), nullptr}, "params[1] is null"},
      {"twice", {a.param(), b.param(), a.param()}, "params[2] ('fc1.weight'): listed twice"},
      {"numel", {&wrong_numel}, "('wrong'): numel 2 does not match its shape (3 elements)"},
      {"null grad", {&null_grad}, "('nograd'): null data or grad"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(Sgd(0.9f, 0.0f, false)(c.params), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
    EXPECT_THAT(Adam(0.9, 0.999, 1e-8f, 0.0f)(c.params), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(OptimizerTest, InvalidLearningRateLeavesEverythingUntouched) {
  Tensor w("w", kW0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> optimizer, Adam(0.9, 0.999, 1e-8f, 0.0f)({w.param()}));
  w.grad() = kGrads[0];
  for (float lr : {-0.1f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    optimizer->Step(lr);
  }
  EXPECT_EQ(w.data(), kW0);
  EXPECT_EQ(optimizer->SaveState().step, 0);
}

std::vector<uint8_t> RandomMask(size_t n, std::mt19937* rng) {
  std::bernoulli_distribution keep(0.5);
  std::vector<uint8_t> mask(n);
  for (auto& m : mask) m = keep(*rng) ? 1 : 0;
  return mask;
}

void FillRandomGradients(Tensor* t, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& g : t->grad()) g = normal(*rng);
}

// Every masked element of `t` is exactly 0 in the weights, the gradient and every state slot
// `first_slot`, `first_slot + 1`, ... of `state`.
void ExpectPrunedZero(Tensor& t, const OptimizerState& state, size_t first_slot, size_t num_slots) {
  int64_t pruned = 0, kept_nonzero = 0;
  for (size_t j = 0; j < t.mask().size(); ++j) {
    if (t.mask()[j]) {
      kept_nonzero += t.data()[j] != 0.0f;
      continue;
    }
    ++pruned;
    ASSERT_EQ(t.data()[j], 0.0f) << j;
    ASSERT_EQ(t.grad()[j], 0.0f) << j;
    for (size_t s = first_slot; s < first_slot + num_slots; ++s) ASSERT_EQ(state.slots[s][j], 0.0f) << j;
  }
  EXPECT_GT(pruned, 0);
  EXPECT_GT(kept_nonzero, 0);  // the unpruned part really trained
}

TEST(OptimizerTest, PrunedWeightsAndStateStayZero) {
  struct Case {
    const char* name;
    Factory make;
    float lr;
    size_t slots_per_parameter;
  };
  const std::vector<Case> cases = {
      {"sgd momentum 0.9 wd 5e-4", Sgd(0.9f, 5e-4f, false), 0.01f, 1},
      {"sgd nesterov", Sgd(0.9f, 5e-4f, true), 0.01f, 1},
      {"adam", Adam(0.9, 0.999, 1e-8f, 5e-4f), 1e-3f, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> init(1000);
    for (float& v : init) v = normal(rng);
    Tensor weight("fc.weight", init);
    Tensor bias("fc.bias", std::vector<float>(init.begin(), init.begin() + 10), false);
    weight.SetMask(RandomMask(init.size(), &rng));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> optimizer, c.make({weight.param(), bias.param()}));
    const size_t first_pruned = std::find(weight.mask().begin(), weight.mask().end(), 0) - weight.mask().begin();
    for (int step = 0; step < 200; ++step) {
      FillRandomGradients(&weight, &rng);
      FillRandomGradients(&bias, &rng);
      // A non-finite gradient of a pruned weight must not leak into its value or state.
      weight.grad()[first_pruned] = std::numeric_limits<float>::quiet_NaN();
      optimizer->Step(c.lr);
    }
    ExpectPrunedZero(weight, optimizer->SaveState(), 0, c.slots_per_parameter);
    for (float b : bias.data()) EXPECT_NE(b, 0.0f);
  }
}

TEST(OptimizerTest, MasksAppliedMidTrainingAreHonoured) {
  struct Case {
    const char* name;
    Factory make;
    float lr;
    size_t slots_per_parameter;
  };
  const std::vector<Case> cases = {
      {"sgd momentum", Sgd(0.9f, 5e-4f, false), 0.01f, 1},
      {"adam", Adam(0.9, 0.999, 1e-8f, 5e-4f), 1e-3f, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::mt19937 rng(11);
    Tensor weight("conv.weight", std::vector<float>(500, 0.25f));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> optimizer, c.make({weight.param()}));
    for (int step = 0; step < 20; ++step) {
      FillRandomGradients(&weight, &rng);
      optimizer->Step(c.lr);
    }
    const OptimizerState before = optimizer->SaveState();
    for (float m : before.slots[0]) ASSERT_NE(m, 0.0f);  // momentum built up

    weight.SetMask(RandomMask(500, &rng));
    optimizer->ApplyMasks();
    ExpectPrunedZero(weight, optimizer->SaveState(), 0, c.slots_per_parameter);
    for (int step = 0; step < 50; ++step) {
      FillRandomGradients(&weight, &rng);
      optimizer->Step(c.lr);
      ASSERT_NO_FATAL_FAILURE(ExpectPrunedZero(weight, optimizer->SaveState(), 0, c.slots_per_parameter));
    }
  }
}

TEST(OptimizerTest, StepAloneZeroesStateOfNewlyMaskedWeights) {
  std::mt19937 rng(3);
  Tensor weight("w", std::vector<float>(64, 1.0f));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> optimizer, Sgd(0.9f, 0.0f, false)({weight.param()}));
  for (int step = 0; step < 5; ++step) {
    FillRandomGradients(&weight, &rng);
    optimizer->Step(0.1f);
  }
  weight.SetMask(RandomMask(64, &rng));
  FillRandomGradients(&weight, &rng);
  optimizer->Step(0.1f);  // no ApplyMasks: the step itself enforces the mask
  ExpectPrunedZero(weight, optimizer->SaveState(), 0, 1);
}

TEST(OptimizerTest, LoadStateResumesBitIdentically) {
  for (const Factory& make : {Sgd(0.9f, 5e-4f, true), Adam(0.9, 0.999, 1e-8f, 0.0f)}) {
    std::mt19937 rng(5);
    Tensor weight("w", std::vector<float>(100, 0.5f));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> optimizer, make({weight.param()}));
    std::vector<std::vector<float>> grads(10, std::vector<float>(100));
    for (auto& g : grads) {
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& v : g) v = normal(rng);
    }
    for (int step = 0; step < 5; ++step) {
      weight.grad() = grads[step];
      optimizer->Step(0.01f);
    }
    const OptimizerState snapshot = optimizer->SaveState();
    const std::vector<float> weights_at_snapshot = weight.data();
    for (int step = 5; step < 10; ++step) {
      weight.grad() = grads[step];
      optimizer->Step(0.01f);
    }
    const std::vector<float> final_weights = weight.data();

    ASSERT_OK(optimizer->LoadState(snapshot));
    weight.data() = weights_at_snapshot;
    for (int step = 5; step < 10; ++step) {
      weight.grad() = grads[step];
      optimizer->Step(0.01f);
    }
    EXPECT_EQ(weight.data(), final_weights);
  }
}

TEST(OptimizerTest, LoadStateRejectsMismatchedState) {
  Tensor weight("fc.weight", std::vector<float>(6, 1.0f));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> adam, Adam(0.9, 0.999, 1e-8f, 0.0f)({weight.param()}));
  const OptimizerState good = adam->SaveState();
  ASSERT_EQ(good.kind, "adam");
  ASSERT_EQ(good.slots.size(), 2u);

  OptimizerState wrong_kind = good;
  wrong_kind.kind = "sgd";
  OptimizerState negative_step = good;
  negative_step.step = -1;
  OptimizerState missing_slot = good;
  missing_slot.slots.pop_back();
  OptimizerState short_slot = good;
  short_slot.slots[1].resize(5);
  struct Case {
    const char* what;
    const OptimizerState& state;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"kind", wrong_kind, "OptimizerState.kind: 'sgd'"},
      {"step", negative_step, "OptimizerState.step: -1"},
      {"slot count", missing_slot, "OptimizerState.slots: 1 slots, this optimizer has 2"},
      {"slot size", short_slot, "OptimizerState.slots[1]: 5 values, parameter 'fc.weight' has 6"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(adam->LoadState(c.state), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  ASSERT_OK(adam->LoadState(good));
}

// Tensors above the parallel threshold are split across threads; the update must be the same bits as
// the single-threaded one, which two half-size tensors below the threshold get.
TEST(OptimizerTest, ParallelUpdateMatchesSerial) {
  constexpr size_t kBig = 100000, kHalf = kBig / 2;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> init(kBig);
  for (float& v : init) v = normal(rng);
  std::vector<uint8_t> mask = RandomMask(kBig, &rng);

  for (const Factory& make : {Sgd(0.9f, 5e-4f, false), Adam(0.9, 0.999, 1e-8f, 5e-4f)}) {
    Tensor big("big", init);
    Tensor lo("lo", std::vector<float>(init.begin(), init.begin() + kHalf));
    Tensor hi("hi", std::vector<float>(init.begin() + kHalf, init.end()));
    big.SetMask(mask);
    lo.SetMask(std::vector<uint8_t>(mask.begin(), mask.begin() + kHalf));
    hi.SetMask(std::vector<uint8_t>(mask.begin() + kHalf, mask.end()));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> parallel, make({big.param()}));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Optimizer> serial, make({lo.param(), hi.param()}));
    for (int step = 0; step < 3; ++step) {
      for (size_t j = 0; j < kBig; ++j) big.grad()[j] = normal(rng);
      std::copy(big.grad().begin(), big.grad().begin() + kHalf, lo.grad().begin());
      std::copy(big.grad().begin() + kHalf, big.grad().end(), hi.grad().begin());
      parallel->Step(0.01f);
      serial->Step(0.01f);
    }
    std::vector<float> joined = lo.data();
    joined.insert(joined.end(), hi.data().begin(), hi.data().end());
    EXPECT_EQ(big.data(), joined);
  }
}

}  // namespace
}  // namespace gcprune::trainer
