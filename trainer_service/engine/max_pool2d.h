// 2-D max pooling layer on oneDNN (square window, PyTorch's floor output size).
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_MAX_POOL2D_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_MAX_POOL2D_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "trainer_service/engine/layer.h"

namespace gcprune::trainer {

struct MaxPool2dOptions {
  int64_t kernel = 0;   // window side, >= 1
  int64_t stride = 0;   // >= 1; 0 means `kernel` (PyTorch's default)
  int64_t padding = 0;  // implicit -inf padding, 0 <= padding <= kernel / 2 (PyTorch's rule)
};

// Input [N, C, H, W], output [N, C, OH, OW] with OH = floor((H + 2·padding − kernel) / stride) + 1. Training
// plans keep oneDNN's workspace (the arg-max positions) for the backward pass. After a ReLU, the pooling
// backward also applies ReLU's gradient mask, on its own output (BuildArgs::input_is_relu_output).
class MaxPool2d : public Layer {
 public:
  // INVALID_ARGUMENT if `input_shape` is not {C, H, W} with positive sizes, an option is out of range or the
  // output would be empty.
  static absl::StatusOr<std::unique_ptr<MaxPool2d>> Create(std::string name, const Shape& input_shape,
                                                           const MaxPool2dOptions& options);
  std::string DebugString() const override;
  LayerPlan Build(const BuildArgs& args) const override;

 private:
  MaxPool2d(std::string name, const Shape& input_shape, const Shape& output_shape, const MaxPool2dOptions& options)
      : Layer(std::move(name), input_shape, output_shape), options_(options) {}

  MaxPool2dOptions options_;  // stride resolved (never 0)
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_MAX_POOL2D_H_
