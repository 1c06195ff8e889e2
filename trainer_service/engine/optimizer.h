// Optimizers over a model's parameters, mask-aware so pruned weights stay exactly zero.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_OPTIMIZER_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "trainer_service/engine/parameter.h"

namespace gcprune::trainer {

// torch.optim.SGD with dampening 0: d = g + wd·w; b = μ·b + d (b = d at the first step);
// d = d + μ·b (Nesterov) or d = b; w = w − lr·d. All in float32, in torch's operation order.
struct SgdOptions {
  float momentum = 0.0f;      // [0, 1)
  float weight_decay = 0.0f;  // >= 0, L2 added to the gradient (PyTorch semantics)
  bool nesterov = false;      // requires momentum > 0
};

// torch.optim.Adam (amsgrad off): g' = g + wd·w; m = β1·m + (1−β1)·g'; v = β2·v + (1−β2)·g'²;
// w = w − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps). The betas are doubles because torch forms
// 1−β and the bias corrections in double precision from the Python floats; keeping them double lets
// the defaults 0.9 / 0.999 reproduce torch's float32 coefficients exactly.
struct AdamOptions {
  double beta1 = 0.9;         // [0, 1)
  double beta2 = 0.999;       // [0, 1)
  float eps = 1e-8f;          // >= 0
  float weight_decay = 0.0f;  // >= 0, L2 added to the gradient (torch.optim.Adam, not AdamW)
};

// Everything an optimizer carries between steps; used by model snapshots.
struct OptimizerState {
  std::string kind;  // "sgd" or "adam": LoadState refuses another optimizer's state
  int64_t step = 0;  // number of Step calls so far (Adam's t)
  // Per parameter, per slot kind: slots[i * slots_per_parameter + k], each of params[i]->numel values.
  // SGD with momentum: k = 0 momentum buffer; SGD without momentum: none; Adam: k = 0 m, k = 1 v.
  std::vector<std::vector<float>> slots;
};

// Updates parameters from their gradients. For every element whose mask is 0 the step writes 0 to the
// parameter, its gradient and every state slot, so a pruned weight is exactly 0 after any step.
// Masks are read through the Parameter pointers at every step, so a model may set or change a
// parameter's mask between steps. Step does not allocate; tensors above 64k elements are updated by
// all OpenMP threads (OMP_NUM_THREADS, the pool oneDNN uses too; the split is elementwise, so results do
// not depend on the thread count). Where other processes keep the cores busy, OMP_NUM_THREADS=1 avoids
// waiting for descheduled threads. Thread-compatible: one thread at a time.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update with learning rate `lr` (> 0; 0 updates only the state), PyTorch's update rule.
  // A negative or non-finite `lr` leaves parameters and state untouched.
  virtual void Step(float lr) = 0;
  // Zeroes the parameter, its gradient and the state at masked positions now (called when new masks
  // arrive, so momentum gathered before pruning cannot leak into a pruned weight).
  virtual void ApplyMasks() = 0;
  virtual OptimizerState SaveState() const = 0;
  // Restores a SaveState() result verbatim (masks are not applied: call ApplyMasks after changing them).
  // INVALID_ARGUMENT if `state` does not match this optimizer's parameters (kind, slot count or sizes,
  // negative step); the optimizer is unchanged then.
  virtual absl::Status LoadState(const OptimizerState& state) = 0;
};

// The parameters must outlive the optimizer. INVALID_ARGUMENT for options out of range, an empty list,
// a null parameter, a null data/grad pointer, numel not matching the shape, or a parameter listed twice.
absl::StatusOr<std::unique_ptr<Optimizer>> CreateSgd(std::vector<Parameter*> params, const SgdOptions& options);
absl::StatusOr<std::unique_ptr<Optimizer>> CreateAdam(std::vector<Parameter*> params, const AdamOptions& options);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_OPTIMIZER_H_
