// A trainable tensor of a model as the optimizers, masks and the causal step see it.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_PARAMETER_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_PARAMETER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace gcprune::trainer {

// A view of one parameter tensor owned by a layer. Storage is contiguous float32 in PyTorch's plain
// layout, so flattened indices match torch's `weight.flatten()`:
//   Linear weight [out, in], Conv2d weight [O, I, kH, kW] (OIHW), biases [out].
// `data` and `grad` stay valid for the life of the model (layers never reallocate them).
struct Parameter {
  std::string name;             // e.g. "conv1.weight", "fc2.bias"
  std::vector<int64_t> shape;   // PyTorch shape
  int64_t numel = 0;            // product of shape
  bool prunable = false;        // weights of Linear and Conv2d layers (METHOD.md §2)
  float* data = nullptr;        // numel values
  float* grad = nullptr;        // numel values, written by backward passes
  // Keep-mask, one byte per element (1 = keep, 0 = pruned), or null when nothing is pruned.
  // Owned by the model; only prunable parameters ever have one.
  const uint8_t* mask = nullptr;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_PARAMETER_H_
