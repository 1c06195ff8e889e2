// A sequential stack of layers and its execution plans: for each (batch size, mode) the oneDNN primitives
// and memories of a whole forward and backward pass, built once on first use and reused at every step.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_NETWORK_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_NETWORK_H_

#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "trainer_service/engine/dnnl_context.h"
#include "trainer_service/engine/layer.h"

namespace gcprune::trainer {

enum class PlanMode {
  kTraining,   // forward_training primitives, backward ops, gradient buffers
  kInference,  // forward_inference primitives only
};

// The executable state of a network for one batch size and mode. The network input is plain NCHW (or
// [N, F]) and is read in place from the caller's buffer; the output is plain [N, ...].
class NetworkPlan {
 public:
  int64_t batch() const { return batch_; }
  PlanMode mode() const { return mode_; }
  // The network output after Forward, plain, batch × output numel floats.
  float* output() const { return static_cast<float*>(output_.get_data_handle()); }
  // Training plans: where the caller writes dLoss/dOutput (plain, same size as output) before Backward.
  float* output_grad() const { return static_cast<float*>(output_grad_.get_data_handle()); }
  // Training plans of networks created with input_grad: dLoss/dInput after Backward (plain), else null.
  const float* input_grad() const {
    return input_grad_ ? static_cast<const float*>(input_grad_.get_data_handle()) : nullptr;
  }

 private:
  friend class Network;
  int64_t batch_ = 0;
  PlanMode mode_ = PlanMode::kInference;
  dnnl::memory input_, input_grad_, output_, output_grad_;
  std::vector<Op> forward_, backward_;
};

// Thread-compatible: one thread at a time (the plans own mutable buffers).
class Network {
 public:
  struct Options {
    // Also compute the gradient w.r.t. the network input (tests). Otherwise the layers before the first one
    // with parameters compute no input gradient at all, which for a first convolution saves oneDNN's slowest
    // primitive.
    bool input_grad = false;
    // Plans kept; the least recently used one is dropped beyond this (>= 1).
    int max_cached_plans = 8;
  };

  // INVALID_ARGUMENT if `layers` is empty, a layer's input shape differs from the previous layer's output
  // shape, or max_cached_plans < 1; INTERNAL if oneDNN cannot create a CPU engine.
  static absl::StatusOr<std::unique_ptr<Network>> Create(std::vector<std::unique_ptr<Layer>> layers,
                                                         const Options& options);

  const Shape& input_shape() const { return layers_.front()->input_shape(); }
  const Shape& output_shape() const { return layers_.back()->output_shape(); }
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }
  // All parameters, layer by layer (weight, then bias).
  std::vector<Parameter*> parameters() const;

  // The plan for `batch` examples in `mode`, built on first use. The pointer stays valid until a later
  // Prepare call evicts it (more than max_cached_plans distinct plans in use).
  // INVALID_ARGUMENT if batch < 1; RESOURCE_EXHAUSTED if the buffers cannot be allocated; INTERNAL if oneDNN
  // rejects a primitive.
  absl::StatusOr<NetworkPlan*> Prepare(int64_t batch, PlanMode mode);

  // Runs the forward pass of `plan` on `input` (plan->batch() examples, plain layout, not modified; must stay
  // valid until the call returns). INTERNAL/RESOURCE_EXHAUSTED from oneDNN.
  absl::Status Forward(NetworkPlan* plan, const float* input);
  // Runs the backward pass of a training plan after Forward and after the caller wrote output_grad(): writes
  // every parameter's grad (overwriting it) and, with Options::input_grad, input_grad().
  // FAILED_PRECONDITION for an inference plan; INTERNAL/RESOURCE_EXHAUSTED from oneDNN.
  absl::Status Backward(NetworkPlan* plan);

 private:
  Network(std::unique_ptr<DnnlContext> context, std::vector<std::unique_ptr<Layer>> layers, const Options& options)
      : context_(std::move(context)), layers_(std::move(layers)), options_(options) {}
  absl::StatusOr<std::unique_ptr<NetworkPlan>> BuildPlan(int64_t batch, PlanMode mode);
  void Run(const std::vector<Op>& ops);

  std::unique_ptr<DnnlContext> context_;
  std::vector<std::unique_ptr<Layer>> layers_;
  Options options_;
  std::list<std::unique_ptr<NetworkPlan>> plans_;  // most recently used first
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_NETWORK_H_
