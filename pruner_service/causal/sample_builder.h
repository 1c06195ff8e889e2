// Turns a stream of training steps (losses, learning rate, chunked parameter deltas Δθ) into the causal
// regression's samples in a SampleStore, for both method variants, so the service stays a thin layer.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_SAMPLE_BUILDER_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_SAMPLE_BUILDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pruner_service/causal/chunk_coverage.h"
#include "pruner_service/causal/sample_store.h"

namespace gcprune::pruner {

enum class CausalVariant {
  kV2,  // METHOD.md §3: same-batch loss change, x = Δθ²/η² (the default)
  kV1,  // METHOD.md §4: consecutive-step loss change, x = Δθ² raw
};

struct SampleBuilderOptions {
  CausalVariant variant = CausalVariant::kV2;
  // V1 only: the momentum variant, 3N features per sample (the store needs feature_groups = 3).
  bool v1_momentum = false;
};

// What a step says about itself, before its deltas arrive.
struct StepHeader {
  int64_t step = 0;           // step number; within an iteration consecutive steps differ by 1
  double loss_before = 0.0;   // L(θ_t; B_t), before the optimizer step
  double loss_after = 0.0;    // V2: L(θ_{t+1}; B_t), same batch, after the step; ignored by V1
  double lr = 0.0;            // the collection optimizer's learning rate η (> 0)
};

// Sample definitions (t = step index inside an iteration, L_t = loss_before of step t, Δθ_t = the
// deltas of step t, S = steps received in the iteration):
//   V2:           y_t = loss_after_t − loss_before_t,  x_t = Δθ_t² / lr_t².          S samples.
//   V1:           y_t = L_{t+1} − L_t,                 x_t = Δθ_t².                  S − 1 samples;
//                 sample t is committed when step t+1's header arrives, the iteration's last step
//                 gives none.
//   V1 momentum:  y_t = L_{t+2} − L_{t+1} (= V1's y_{t+1}, the target ΔL_{t+1}),
//                 x_t = [Δθ_t², Δθ_{t+1}², Δθ_t ⊙ Δθ_{t+1}] (groups 0, 1, 2 of the store).  S − 2
//                 samples; sample t is written when step t+1 ends and committed when step t+2's
//                 header arrives.
//
// Use per step: BeginStep(header); AddDeltas(...) for every chunk; EndStep(). AbortStep() drops a
// step that will be resent. EndIteration() ends the iteration (and drops what cannot become a sample).
// Not thread-safe. The store must outlive the builder, and nobody else may write to it meanwhile.
class SampleBuilder {
 public:
  // INVALID_ARGUMENT when the store's feature_groups does not match (3 for V1 momentum, else 1) or
  // momentum is asked for V2.
  static absl::StatusOr<std::unique_ptr<SampleBuilder>> Create(SampleStore* store, SampleBuilderOptions options);

  // Starts step `header.step`. INVALID_ARGUMENT naming the field and value for a NaN loss_before
  // (or loss_after for V2), or lr NaN/inf/<= 0; FAILED_PRECONDITION when a step is already open or
  // `step` is not the previous step + 1 within the iteration; RESOURCE_EXHAUSTED from the store.
  // On error nothing changes.
  absl::Status BeginStep(const StepHeader& header);

  // Adds the deltas Δθ of elements [offset, offset + deltas.size()) of layout tensor `tensor`.
  // FAILED_PRECONDITION without an open step; INVALID_ARGUMENT for out-of-range, overlapping or empty
  // chunks (see ChunkCoverage).
  absl::Status AddDeltas(int tensor, int64_t offset, absl::Span<const float> deltas);

  // Ends the open step. V2 commits its sample; V1 momentum writes sample t-1 into the store (to be
  // committed by the next BeginStep). FAILED_PRECONDITION without an open step; INVALID_ARGUMENT naming
  // the first missing range if some deltas are missing (the step stays open); RESOURCE_EXHAUSTED from
  // the store (V1 momentum; the step stays open and may be retried or aborted).
  absl::Status EndStep();

  // Drops the open step's data (if any); the same step may then begin again.
  void AbortStep();

  // Ends the iteration: drops an open step and any sample still waiting for its target; the next
  // BeginStep may use any step number. Committed samples stay in the store.
  void EndIteration();

  bool step_open() const { return step_open_; }
  // Samples this builder committed since it was created.
  int64_t samples_committed() const { return samples_committed_; }

 private:
  SampleBuilder(SampleStore* store, SampleBuilderOptions options);
  absl::Status ValidateHeader(const StepHeader& header) const;
  absl::Status CommitWaiting(double y);
  absl::Status WriteMomentumSample();

  SampleStore* store_;
  SampleBuilderOptions options_;
  bool step_open_ = false;
  StepHeader current_{};
  std::optional<int64_t> last_step_;   // last step ended in this iteration
  double last_loss_before_ = 0.0;     // its loss_before
  bool waiting_for_target_ = false;   // V1: a complete sample in the store awaits y

  // V1 momentum: signed deltas of the previous and the current step, and the current step's coverage.
  std::vector<float> prev_delta_;
  std::vector<float> cur_delta_;
  bool have_prev_delta_ = false;
  std::unique_ptr<ChunkCoverage> delta_coverage_;
  int64_t samples_committed_ = 0;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_SAMPLE_BUILDER_H_
