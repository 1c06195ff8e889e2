// ReLU layer on oneDNN eltwise primitives; after a Linear or Conv2d it is fused into that layer's forward
// pass as a post-op and only its backward pass runs here, and before a max pooling even that moves to the
// (smaller) pooled output.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_RELU_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_RELU_H_

#include <memory>
#include <string>

#include "trainer_service/engine/layer.h"

namespace gcprune::trainer {

// y = max(x, 0), any shape; the gradient is passed where the output is > 0 (PyTorch's convention at 0).
class Relu : public Layer {
 public:
  Relu(std::string name, const Shape& shape) : Layer(std::move(name), shape, shape) {}
  std::string DebugString() const override { return "ReLU()"; }
  LayerPlan Build(const BuildArgs& args) const override;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_RELU_H_
