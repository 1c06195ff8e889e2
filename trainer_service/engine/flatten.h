// Flatten layer: [N, C, H, W] → [N, C·H·W] in PyTorch's (NCHW) element order.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_FLATTEN_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_FLATTEN_H_

#include <memory>
#include <string>

#include "trainer_service/engine/layer.h"

namespace gcprune::trainer {

// Free (a view of the same buffer) when the input is in plain NCHW; otherwise one reorder forward and one
// backward convert between oneDNN's blocked layout and the plain order the next Linear layer expects.
class Flatten : public Layer {
 public:
  Flatten(std::string name, const Shape& input_shape)
      : Layer(std::move(name), input_shape, Shape{ShapeNumel(input_shape)}) {}
  std::string DebugString() const override { return "Flatten()"; }
  LayerPlan Build(const BuildArgs& args) const override;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_FLATTEN_H_
