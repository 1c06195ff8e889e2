// 2-D convolution layer on oneDNN (direct algorithm), weights stored OIHW as PyTorch.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_CONV2D_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_CONV2D_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "trainer_service/engine/layer.h"

namespace gcprune::trainer {

struct Conv2dOptions {
  int64_t out_channels = 0;  // >= 1
  int64_t kernel = 0;        // square kernel side, >= 1
  int64_t stride = 1;        // >= 1
  int64_t padding = 0;       // zero padding on every side, >= 0 and < kernel
  bool bias = true;
};

// Input [N, C, H, W], output [N, O, OH, OW] with OH = floor((H + 2·padding − kernel) / stride) + 1 (PyTorch).
// Parameters "<name>.weight" [O, C, k, k] (prunable) and, with bias, "<name>.bias" [O]. Inside a plan the
// feature maps and weights use the layouts oneDNN prefers (format_tag::any); the canonical weights stay OIHW
// and are reordered when the layouts differ.
class Conv2d : public Layer {
 public:
  // INVALID_ARGUMENT if `input_shape` is not {C, H, W} with positive sizes, an option is out of range, the
  // output would be empty, or the weight or one example's output would exceed kMaxTensorElements;
  // RESOURCE_EXHAUSTED if the parameter buffers cannot be allocated.
  static absl::StatusOr<std::unique_ptr<Conv2d>> Create(std::string name, const Shape& input_shape,
                                                        const Conv2dOptions& options);

  std::string DebugString() const override;
  std::vector<Parameter*> parameters() override;
  int64_t ForwardMacs() const override;
  bool CanFuseRelu() const override { return true; }
  // Weight and bias ~ U(±1/√(C·k·k)): torch.nn.Conv2d's reset_parameters.
  void ResetParameters(SplitMix64* rng) override;
  LayerPlan Build(const BuildArgs& args) const override;

 private:
  Conv2d(std::string name, const Shape& input_shape, const Shape& output_shape, const Conv2dOptions& options);

  Conv2dOptions options_;
  std::unique_ptr<ParameterTensor> weight_, bias_;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_CONV2D_H_
