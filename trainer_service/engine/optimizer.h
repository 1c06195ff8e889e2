// Optimizers over a model's parameters, mask-aware so pruned weights stay exactly zero.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_OPTIMIZER_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer_service/engine/parameter.h"

namespace gcprune::trainer {

struct SgdOptions {
  float momentum = 0.0f;      // [0, 1)
  float weight_decay = 0.0f;  // >= 0, L2 added to the gradient (PyTorch semantics)
  bool nesterov = false;      // requires momentum > 0
};

struct AdamOptions {
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // L2 added to the gradient (torch.optim.Adam, not AdamW)
};

// Everything an optimizer carries between steps; used by model snapshots.
struct OptimizerState {
  int64_t step = 0;
  std::vector<std::vector<float>> slots;  // per parameter, per slot kind (momentum, Adam m and v)
};

// Updates parameters from their gradients. For every element whose mask is 0 the step writes 0 to the
// parameter, its gradient and every state slot, so a pruned weight is exactly 0 after any step.
// Thread-compatible: one thread at a time.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update with learning rate `lr` (> 0), PyTorch's update rule.
  virtual void Step(float lr) = 0;
  // Zeroes the state at masked positions now (called when new masks arrive).
  virtual void ApplyMasks() = 0;
  virtual OptimizerState SaveState() const = 0;
  // INVALID_ARGUMENT if `state` does not match this optimizer's parameters.
  virtual absl::Status LoadState(const OptimizerState& state) = 0;
};

// The parameters must outlive the optimizer. INVALID_ARGUMENT for options out of range.
absl::StatusOr<std::unique_ptr<Optimizer>> CreateSgd(std::vector<Parameter*> params, const SgdOptions& options);
absl::StatusOr<std::unique_ptr<Optimizer>> CreateAdam(std::vector<Parameter*> params, const AdamOptions& options);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_OPTIMIZER_H_
