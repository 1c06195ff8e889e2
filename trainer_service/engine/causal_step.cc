// Causal steps: ForwardBackward, one fused pass per tensor that updates the weights and writes Δθ, and for
// V2 a second forward pass on the same batch.
#include "trainer_service/engine/causal_step.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer_service/engine/elementwise.h"

namespace gcprune::trainer {

absl::StatusOr<std::unique_ptr<CausalStepper>> CausalStepper::Create(Model* model, const CausalStepOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("CausalStepper: model is null");
  if (!(std::isfinite(options.lr) && options.lr > 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("CausalStepper: lr must be finite and > 0, got ", options.lr));
  }
  if (!(options.momentum >= 0.0f && options.momentum < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CausalStepper: momentum must be in [0, 1), got ", options.momentum));
  }
  return std::unique_ptr<CausalStepper>(new CausalStepper(model, options));
}

CausalStepper::CausalStepper(Model* model, const CausalStepOptions& options) : model_(model), options_(options) {}

void CausalStepper::Update(bool use_momentum, CausalSample* sample) {
  const std::vector<Parameter*>& params = model_->parameters();
  sample->deltas.resize(model_->prunable_parameters().size());
  if (use_momentum && momentum_.empty()) {
    momentum_.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i) momentum_[i].assign(params[i]->numel, 0.0f);
  }
  size_t k = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    Parameter& p = *params[i];
    float* delta = nullptr;
    if (p.prunable) {
      std::vector<float>& d = sample->deltas[k++];
      d.resize(p.numel);
      delta = d.data();
    }
    if (use_momentum) {
      SgdMomentumStep(p.data, p.grad, momentum_[i].data(), !momentum_started_, options_.momentum, p.mask,
                      options_.lr, delta, p.numel);
    } else {
      SgdStep(p.data, p.grad, p.mask, options_.lr, delta, p.numel);
    }
  }
  if (use_momentum) momentum_started_ = true;
}

absl::Status CausalStepper::StepV2(absl::Span<const float> images, absl::Span<const int32_t> labels,
                                   CausalSample* sample) {
  if (options_.momentum != 0.0f) {
    return absl::FailedPreconditionError(
        absl::StrCat("CausalStepper::StepV2: plain SGD only, but momentum is ", options_.momentum));
  }
  GCPRUNE_ASSIGN_OR_RETURN(sample->loss_before, model_->ForwardBackward(images, labels));
  Update(/*use_momentum=*/false, sample);
  GCPRUNE_ASSIGN_OR_RETURN(sample->loss_after, model_->Loss(images, labels));
  return absl::OkStatus();
}

absl::Status CausalStepper::StepV1(absl::Span<const float> images, absl::Span<const int32_t> labels,
                                   CausalSample* sample) {
  GCPRUNE_ASSIGN_OR_RETURN(sample->loss_before, model_->ForwardBackward(images, labels));
  Update(/*use_momentum=*/options_.momentum != 0.0f, sample);
  sample->loss_after = std::numeric_limits<float>::quiet_NaN();
  return absl::OkStatus();
}

absl::StatusOr<CausalSample> CausalStep(Model* model, absl::Span<const float> images,
                                        absl::Span<const int32_t> labels, float lr) {
  CausalStepOptions options;
  options.lr = lr;
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<CausalStepper> stepper, CausalStepper::Create(model, options));
  CausalSample sample;
  GCPRUNE_RETURN_IF_ERROR(stepper->StepV2(images, labels, &sample));
  return sample;
}

}  // namespace gcprune::trainer
