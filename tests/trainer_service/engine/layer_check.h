// Runs engine layers as a network and checks them against the double-precision reference: forward values,
// and input and parameter gradients against central finite differences of the reference. Test-only.
#ifndef GCPRUNE_TESTS_TRAINER_SERVICE_ENGINE_LAYER_CHECK_H_
#define GCPRUNE_TESTS_TRAINER_SERVICE_ENGINE_LAYER_CHECK_H_

#include <cstdio>
#include <cstring>
#include <string>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/reference_net.h"
#include "trainer_service/engine/network.h"

namespace gcprune::trainer::testing {

// Errors of one check, each max |engine − reference| / max(1, max |reference|) over the tensor.
struct LayerCheckResult {
  double forward_error = 0.0;            // training plan output vs reference
  double inference_forward_error = 0.0;  // inference plan output vs reference
  double input_grad_error = 0.0;         // dΣ(r⊙y)/dx vs finite differences
  std::vector<double> param_grad_errors;  // per parameter, same
  int64_t checked_coordinates = 0;
};

// The forward output of `network` on `x` (batch × input numel floats) with a plan in `mode`.
inline std::vector<float> RunForward(Network* network, const std::vector<float>& x, int64_t batch, PlanMode mode) {
  absl::StatusOr<NetworkPlan*> plan = network->Prepare(batch, mode);
  EXPECT_OK(plan);
  if (!plan.ok()) return {};
  EXPECT_OK(network->Forward(*plan, x.data()));
  const int64_t n = batch * ShapeNumel(network->output_shape());
  return std::vector<float>((*plan)->output(), (*plan)->output() + n);
}

// Coordinates to check by finite differences: all of them up to `max`, else a fixed random subset.
inline std::vector<int64_t> CheckedIndices(int64_t n, int64_t max, uint32_t seed) {
  std::vector<int64_t> idx;
  if (n <= max) {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int64_t> dist(0, n - 1);
  for (int64_t i = 0; i < max; ++i) idx.push_back(dist(gen));
  return idx;
}

// Builds a network of `layers` (their parameters initialised from `seed`; biases too), runs forward and
// backward on a random batch with dL/dy = r random, and compares with the reference described by `specs`.
inline LayerCheckResult CheckLayers(std::vector<std::unique_ptr<Layer>> layers, const std::vector<LayerSpec>& specs,
                                    int64_t batch, uint32_t seed, int64_t max_coordinates = 300) {
  LayerCheckResult result;
  SplitMix64 rng(seed);
  for (auto& layer : layers) layer->ResetParameters(&rng);
  Network::Options options;
  options.input_grad = true;
  absl::StatusOr<std::unique_ptr<Network>> created = Network::Create(std::move(layers), options);
  EXPECT_OK(created);
  if (!created.ok()) return result;
  Network& net = **created;
  const Shape in_shape = net.input_shape();
  const int64_t in_numel = batch * ShapeNumel(in_shape);
  const int64_t out_numel = batch * ShapeNumel(net.output_shape());
  const std::vector<float> x = RandomFloats(in_numel, seed + 1);
  const std::vector<float> r = RandomFloats(out_numel, seed + 2);

  absl::StatusOr<NetworkPlan*> plan = net.Prepare(batch, PlanMode::kTraining);
  EXPECT_OK(plan);
  if (!plan.ok()) return result;
  EXPECT_OK(net.Forward(*plan, x.data()));
  const std::vector<double> y = ToDouble((*plan)->output(), out_numel);
  std::memcpy((*plan)->output_grad(), r.data(), sizeof(float) * out_numel);
  EXPECT_OK(net.Backward(*plan));
  const std::vector<double> input_grad = ToDouble((*plan)->input_grad(), in_numel);
  std::vector<std::vector<double>> param_grads;
  for (const Parameter* p : net.parameters()) param_grads.push_back(ToDouble(p->grad, p->numel));

  std::vector<std::vector<double>> params = ParamsToDouble(net.parameters());
  RefTensor ref_x{batch, in_shape, ToDouble(x.data(), in_numel)};
  const RefTensor ref_y = RefForward(specs, params, ref_x);
  result.forward_error = MaxRelativeError(y, ref_y.v);
  const std::vector<float> y_inference = RunForward(&net, x, batch, PlanMode::kInference);
  result.inference_forward_error = MaxRelativeError(ToDouble(y_inference.data(), out_numel), ref_y.v);

  auto objective = [&]() { return Project(RefForward(specs, params, ref_x), r); };
  auto check = [&](std::vector<double>* values, const std::vector<double>& engine_grad, uint32_t s) {
    const std::vector<int64_t> idx = CheckedIndices(static_cast<int64_t>(values->size()), max_coordinates, s);
    std::vector<double> numeric, analytic;
    for (int64_t i : idx) {
      const double saved = (*values)[i];
      const double h = 1e-6;
      (*values)[i] = saved + h;
      const double plus = objective();
      (*values)[i] = saved - h;
      const double minus = objective();
      (*values)[i] = saved;
      numeric.push_back((plus - minus) / (2 * h));
      analytic.push_back(engine_grad[i]);
    }
    result.checked_coordinates += static_cast<int64_t>(idx.size());
    return MaxRelativeError(analytic, numeric);
  };
  result.input_grad_error = check(&ref_x.v, input_grad, seed + 3);
  for (size_t i = 0; i < params.size(); ++i) {
    result.param_grad_errors.push_back(check(&params[i], param_grads[i], seed + 4 + static_cast<uint32_t>(i)));
  }
  return result;
}

// The bounds every layer check asserts: float32 arithmetic inside oneDNN against exact (double) references.
constexpr double kForwardTolerance = 5e-6;
constexpr double kGradientTolerance = 1e-5;

inline void ExpectWithinTolerance(const LayerCheckResult& r) {
  std::string params;
  for (double e : r.param_grad_errors) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), " %.2e", e);
    params += buffer;
  }
  std::printf("    errors: forward %.2e, inference %.2e, input grad %.2e, parameter grads%s (%lld coordinates)\n",
              r.forward_error, r.inference_forward_error, r.input_grad_error, params.c_str(),
              static_cast<long long>(r.checked_coordinates));
  EXPECT_LT(r.forward_error, kForwardTolerance);
  EXPECT_LT(r.inference_forward_error, kForwardTolerance);
  EXPECT_LT(r.input_grad_error, kGradientTolerance);
  for (size_t i = 0; i < r.param_grad_errors.size(); ++i) {
    EXPECT_LT(r.param_grad_errors[i], kGradientTolerance) << "parameter " << i;
  }
  EXPECT_GT(r.checked_coordinates, 0);
}

}  // namespace gcprune::trainer::testing

#endif  // GCPRUNE_TESTS_TRAINER_SERVICE_ENGINE_LAYER_CHECK_H_
