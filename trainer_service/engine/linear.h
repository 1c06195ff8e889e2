// Linear (fully connected) layer on oneDNN inner products: y = x Wᵀ + b, W stored [out, in] as PyTorch.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_LINEAR_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_LINEAR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "trainer_service/engine/layer.h"

namespace gcprune::trainer {

// Input [N, in], output [N, out]. Parameters "<name>.weight" [out, in] (prunable) and, with bias,
// "<name>.bias" [out]. The backward passes read and write the canonical [out, in] buffers directly; the
// forward pass of a small layer uses oneDNN's blocked weight layout (see linear.cc for the measurements).
class Linear : public Layer {
 public:
  // INVALID_ARGUMENT if `input_shape` is not 1-D ({in}), in or out_features is below 1, or the weight would
  // exceed kMaxTensorElements; RESOURCE_EXHAUSTED if its buffers cannot be allocated.
  static absl::StatusOr<std::unique_ptr<Linear>> Create(std::string name, const Shape& input_shape,
                                                        int64_t out_features, bool bias);

  std::string DebugString() const override;
  std::vector<Parameter*> parameters() override;
  int64_t ForwardMacs() const override { return in_ * out_; }
  bool CanFuseRelu() const override { return true; }
  // Weight and bias ~ U(±1/√in): torch.nn.Linear's kaiming_uniform_(a=√5) and bias initialisation.
  void ResetParameters(SplitMix64* rng) override;
  LayerPlan Build(const BuildArgs& args) const override;

 private:
  Linear(std::string name, int64_t in, int64_t out, bool bias);

  int64_t in_, out_;
  std::unique_ptr<ParameterTensor> weight_, bias_;  // bias_ null without bias
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_LINEAR_H_
