// Sample building from training steps, V2 and V1 (see sample_builder.h for the exact definitions).
#include "pruner_service/causal/sample_builder.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_format.h"

namespace gcprune::pruner {

absl::StatusOr<std::unique_ptr<SampleBuilder>> SampleBuilder::Create(SampleStore* store,
                                                                     SampleBuilderOptions options) {
  if (store == nullptr) return absl::InvalidArgumentError("sample builder store: null");
  if (options.variant != CausalVariant::kV1 && options.variant != CausalVariant::kV2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sample builder variant: unknown value %d", static_cast<int>(options.variant)));
  }
  if (options.v1_momentum && options.variant != CausalVariant::kV1) {
    return absl::InvalidArgumentError("sample builder v1_momentum: true, but the variant is V2");
  }
  const int groups = options.v1_momentum ? 3 : 1;
  if (store->feature_groups() != groups) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sample builder: the store has feature_groups %d, the %s variant needs %d", store->feature_groups(),
        options.v1_momentum ? "V1 momentum" : (options.variant == CausalVariant::kV1 ? "V1" : "V2"), groups));
  }
  return std::unique_ptr<SampleBuilder>(new SampleBuilder(store, options));
}

SampleBuilder::SampleBuilder(SampleStore* store, SampleBuilderOptions options) : store_(store), options_(options) {
  if (options_.v1_momentum) {
    const size_t n = static_cast<size_t>(store_->layout().num_features());
    prev_delta_.assign(n, 0.0f);
    cur_delta_.assign(n, 0.0f);
    delta_coverage_ = std::make_unique<ChunkCoverage>(&store_->layout(), 1);
  }
}

absl::Status SampleBuilder::ValidateHeader(const StepHeader& header) const {
  if (std::isnan(header.loss_before)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("step %d loss_before: %g, must not be NaN", header.step, header.loss_before));
  }
  if (options_.variant == CausalVariant::kV2 && std::isnan(header.loss_after)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("step %d loss_after: %g, must not be NaN", header.step, header.loss_after));
  }
  if (!(header.lr > 0.0) || !std::isfinite(header.lr)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("step %d lr: %g, must be finite and > 0", header.step, header.lr));
  }
  if (options_.variant == CausalVariant::kV2 && !std::isfinite(static_cast<float>(1.0 / (header.lr * header.lr)))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("step %d lr: %g, 1/lr² is not representable as float32", header.step, header.lr));
  }
  if (step_open_) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "step %d begun while step %d is still open (EndStep or AbortStep first)", header.step, current_.step));
  }
  if (last_step_.has_value() && header.step != *last_step_ + 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "step %d: the previous step of this iteration was %d, expected step %d", header.step, *last_step_,
        *last_step_ + 1));
  }
  return absl::OkStatus();
}

absl::Status SampleBuilder::CommitWaiting(double y) {
  absl::StatusOr<int64_t> row = store_->CommitSample(y);
  if (!row.ok()) return row.status();
  waiting_for_target_ = false;
  ++samples_committed_;
  return absl::OkStatus();
}

absl::Status SampleBuilder::BeginStep(const StepHeader& header) {
  absl::Status status = ValidateHeader(header);
  if (!status.ok()) return status;
  const bool momentum = options_.v1_momentum;
  if (!momentum && !waiting_for_target_) {
    // The row must exist before the step's chunks arrive; only then is anything changed.
    status = store_->BeginSample();
    if (!status.ok()) return status;
  } else if (!momentum && waiting_for_target_) {
    // V1: the previous step's complete x waits in the store; its target needs this step's loss. The
    // next row can only be taken after the commit; if that fails, the commit is kept and the error
    // returned (the step can be begun again: the target is not re-committed).
    status = CommitWaiting(header.loss_before - last_loss_before_);
    if (!status.ok()) return status;
    status = store_->BeginSample();
    if (!status.ok()) return status;
  } else if (waiting_for_target_) {
    // V1 momentum: sample (t-2, t-1) waits for y = L_t − L_{t-1}.
    status = CommitWaiting(header.loss_before - last_loss_before_);
    if (!status.ok()) return status;
  }
  if (momentum) delta_coverage_->Reset();
  current_ = header;
  step_open_ = true;
  return absl::OkStatus();
}

absl::Status SampleBuilder::AddDeltas(int tensor, int64_t offset, absl::Span<const float> deltas) {
  if (!step_open_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("deltas of tensor %d at offset %d arrived outside a step (BeginStep first)", tensor, offset));
  }
  if (options_.v1_momentum) {
    absl::Status status = delta_coverage_->Claim(tensor, offset, static_cast<int64_t>(deltas.size()), 0);
    if (!status.ok()) return status;
    const int64_t base = store_->layout().feature_offset(tensor) + offset;
    std::copy(deltas.begin(), deltas.end(), cur_delta_.begin() + base);
    return absl::OkStatus();
  }
  const float scale =
      options_.variant == CausalVariant::kV2 ? static_cast<float>(1.0 / (current_.lr * current_.lr)) : 1.0f;
  return store_->AppendSquaredDeltas(tensor, offset, deltas, scale);
}

absl::Status SampleBuilder::WriteMomentumSample() {
  absl::Status status = store_->BeginSample();
  if (!status.ok()) return status;
  const Layout& layout = store_->layout();
  std::vector<float> product;
  for (int i = 0; i < layout.num_tensors(); ++i) {
    const int64_t base = layout.feature_offset(i);
    if (base < 0) continue;
    const int64_t n = layout.tensor(i).numel();
    const absl::Span<const float> prev(prev_delta_.data() + base, static_cast<size_t>(n));
    const absl::Span<const float> cur(cur_delta_.data() + base, static_cast<size_t>(n));
    product.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) product[static_cast<size_t>(k)] = prev[k] * cur[k];
    status = store_->AppendSquaredDeltas(i, 0, prev, 1.0f, 0);
    if (status.ok()) status = store_->AppendSquaredDeltas(i, 0, cur, 1.0f, 1);
    if (status.ok()) status = store_->AppendFeatures(i, 0, product, 2);
    if (!status.ok()) {
      store_->DiscardSample();
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status SampleBuilder::EndStep() {
  if (!step_open_) return absl::FailedPreconditionError("EndStep without an open step");
  if (options_.v1_momentum) {
    absl::Status status = delta_coverage_->CheckComplete();
    if (!status.ok()) return status;
    if (have_prev_delta_) {
      status = WriteMomentumSample();
      if (!status.ok()) return status;
      waiting_for_target_ = true;
    }
    std::swap(prev_delta_, cur_delta_);
    have_prev_delta_ = true;
  } else if (options_.variant == CausalVariant::kV2) {
    absl::Status status = CommitWaiting(current_.loss_after - current_.loss_before);
    if (!status.ok()) return status;
  } else {
    absl::Status status = store_->CheckPendingComplete();
    if (!status.ok()) return status;
    waiting_for_target_ = true;
  }
  step_open_ = false;
  last_step_ = current_.step;
  last_loss_before_ = current_.loss_before;
  return absl::OkStatus();
}

void SampleBuilder::AbortStep() {
  if (!step_open_) return;
  step_open_ = false;
  if (options_.v1_momentum) {
    delta_coverage_->Reset();
    return;
  }
  store_->DiscardSample();
}

void SampleBuilder::EndIteration() {
  AbortStep();
  if (waiting_for_target_) store_->DiscardSample();
  waiting_for_target_ = false;
  have_prev_delta_ = false;
  last_step_.reset();
}

}  // namespace gcprune::pruner
