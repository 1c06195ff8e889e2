// The paper's measurement step (METHOD.md §3.1 V2 and §4 V1): a plain SGD step that also reports the loss
// change it caused and the signed parameter changes Δθ of every prunable tensor.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_CAUSAL_STEP_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_CAUSAL_STEP_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "trainer_service/engine/model.h"

namespace gcprune::trainer {

struct CausalStepOptions {
  float lr = 1e-3f;        // η, finite and > 0 (METHOD.md: 1e-3)
  float momentum = 0.0f;   // μ in [0, 1); StepV1 only (V1's momentum variant), StepV2 requires 0
};

// One collection sample.
struct CausalSample {
  float loss_before = 0.0f;  // L(θ_t; B_t), mean label-smoothed loss of the batch
  // StepV2: L(θ_{t+1}; B_t) on the same batch; StepV1: NaN (the caller differences consecutive steps).
  float loss_after = std::numeric_limits<float>::quiet_NaN();
  // Δθ = θ_{t+1} − θ_t (the float difference actually applied), one buffer per prunable tensor in
  // Model::prunable_parameters() order, each flattened in PyTorch order. Pruned entries are 0.
  std::vector<std::vector<float>> deltas;

  // L(θ_{t+1}; B_t) − L(θ_t; B_t) (StepV2).
  float loss_delta() const { return loss_after - loss_before; }
};

// Runs causal steps on a model. It owns the momentum buffers of V1 and nothing else; the model must outlive
// it. Reusing one CausalSample across steps reuses its buffers (no allocation after the first step).
// Thread-compatible.
class CausalStepper {
 public:
  // INVALID_ARGUMENT if lr is not finite and > 0 or momentum is outside [0, 1).
  static absl::StatusOr<std::unique_ptr<CausalStepper>> Create(Model* model, const CausalStepOptions& options);

  // V2 (METHOD.md §3.1): L0 = loss and gradients on the batch; plain SGD θ ← θ − η·g on ALL parameters (no
  // momentum, no weight decay; masked weights stay exactly 0); L1 = loss on the SAME batch, forward only;
  // fills loss_before = L0, loss_after = L1 and the deltas. Training continues from θ_{t+1}.
  // FAILED_PRECONDITION if the stepper was created with momentum; errors of Model::ForwardBackward
  // (INVALID_ARGUMENT for a malformed batch, nothing is changed then).
  absl::Status StepV2(absl::Span<const float> images, absl::Span<const int32_t> labels, CausalSample* sample);

  // V1 (METHOD.md §4): loss_before = L(θ_t; B_t) with gradients, then one SGD step with the stepper's
  // momentum (torch.optim.SGD semantics; the buffers persist across calls) and the deltas, which include the
  // momentum. loss_after is NaN. Errors as StepV2 except the momentum one.
  absl::Status StepV1(absl::Span<const float> images, absl::Span<const int32_t> labels, CausalSample* sample);

  // Forgets the momentum: the next StepV1 starts the buffers with its gradient, as a fresh torch optimizer.
  void ResetMomentum() { momentum_started_ = false; }

 private:
  CausalStepper(Model* model, const CausalStepOptions& options);
  // SGD over all parameters (with momentum when `use_momentum`), writing the prunable tensors' deltas.
  void Update(bool use_momentum, CausalSample* sample);

  Model* model_;
  CausalStepOptions options_;
  std::vector<std::vector<float>> momentum_;  // per parameter, allocated on first use
  bool momentum_started_ = false;
};

// One V2 step with a fresh sample: a convenience for tests and one-off use (allocates the deltas).
// INVALID_ARGUMENT for lr not finite and > 0; otherwise as CausalStepper::StepV2.
absl::StatusOr<CausalSample> CausalStep(Model* model, absl::Span<const float> images,
                                        absl::Span<const int32_t> labels, float lr);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_CAUSAL_STEP_H_
