// The trainer's view of "whoever decides the masks": the run protocol streams collection steps into a
// PruningLink and asks it for each iteration's masks. PrunerClient (a gRPC Pruner session) is the real
// one; NoPrunerLink serves method NONE without a pruner; tests plug in-process sessions behind it.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_PRUNING_LINK_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_PRUNING_LINK_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "protos/gcprune/v1/common.pb.h"
#include "protos/gcprune/v1/trainer.pb.h"

namespace gcprune::trainer {

// The masks that end one iteration.
struct IterationMasks {
  // True when no masks arrived (fail-open): the model keeps its previous masks. `keep` is then empty.
  bool skipped = false;
  // Why the iteration was skipped, for events and logs.
  std::string skip_reason;
  // The pruner's iteration that produced the masks (1-based; it lags the trainer's after skips).
  int pruner_iteration = 0;
  // MaskUpdate.apply_at_step, -1 when unknown.
  int64_t apply_at_step = -1;
  // The schedule's cumulative target s(j); NaN for causal-v1 or when unknown.
  double target_sparsity = std::numeric_limits<double>::quiet_NaN();
  // Cumulative keep-masks, one per prunable tensor in layout order, numel bytes each: 1 kept, 0 pruned.
  std::vector<std::vector<uint8_t>> keep;
  // The pruner's per-tensor summary (tensor_index = layout index); may be empty.
  std::vector<gcprune::v1::TensorSparsity> tensors;
};

// Counters of a link, for progress events and the report.
struct LinkStats {
  std::string session_id;
  gcprune::v1::PrunerState state = gcprune::v1::PRUNER_STATE_DISABLED;
  int64_t steps_sent = 0;      // StepCommits written, resends included
  int64_t acked_step = -1;     // highest acknowledged step, -1 if none
  int64_t unacked_steps = 0;   // steps queued or sent and not yet acknowledged
  int64_t reconnects = 0;      // successful re-opens after the first open
  int64_t dropped_steps = 0;   // steps dropped because the buffer was full (fail-open), over the run
};

// One collection step as the engine produced it.
struct StepRecord {
  double loss_before = 0.0;
  double loss_after = 0.0;  // causal-v2 only; NaN is sent as 0 for causal-v1, which ignores it
  double learning_rate = 0.0;
  double momentum = 0.0;
  // Signed Δθ per prunable tensor (layout order of the prunable tensors), numel each.
  const std::vector<std::vector<float>>* deltas = nullptr;
};

// Used by one run's thread; implementations may run threads of their own. Calls come in this order:
// Start, then per iteration j = 1..n: BeginIteration(j), AddStep... (causal methods), EndIteration(j);
// finally Close.
class PruningLink {
 public:
  virtual ~PruningLink() = default;
  // Begins (in the background, without waiting for the network) to reach the pruner.
  virtual absl::Status Start() = 0;
  // Collection of trainer iteration `iteration` (1-based) begins.
  virtual absl::Status BeginIteration(int iteration) = 0;
  // Hands over one collection step; the link copies what it keeps. Returns an error only when the run
  // must fail (strict policy), or CANCELLED when the run was cancelled while waiting for buffer space.
  virtual absl::Status AddStep(const StepRecord& step) = 0;
  // Ends the iteration: `weights` are the current prunable weights (layout order, numel each; used only by
  // methods that rank weights). Waits for the masks. Returns skipped masks under fail-open when they do
  // not come; an error when the run must fail (strict) or CANCELLED when the run was cancelled.
  virtual absl::StatusOr<IterationMasks> EndIteration(int iteration,
                                                      const std::vector<absl::Span<const float>>& weights) = 0;
  // Detaches from the pruner; `complete` when the run finished all its iterations. Best effort, bounded.
  virtual void Close(bool complete) = 0;
  virtual LinkStats stats() const = 0;
};

// Method NONE without a pruner address: every iteration keeps all weights.
class NoPrunerLink final : public PruningLink {
 public:
  // `numels`: element counts of the prunable tensors in layout order; `layout_indices` their indices in
  // the layout (for the per-tensor summary).
  NoPrunerLink(std::vector<int64_t> numels, std::vector<int> layout_indices)
      : numels_(std::move(numels)), layout_indices_(std::move(layout_indices)) {}
  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status BeginIteration(int) override { return absl::OkStatus(); }
  absl::Status AddStep(const StepRecord&) override { return absl::OkStatus(); }
  absl::StatusOr<IterationMasks> EndIteration(int iteration, const std::vector<absl::Span<const float>>&) override;
  void Close(bool) override {}
  LinkStats stats() const override { return LinkStats{}; }

 private:
  std::vector<int64_t> numels_;
  std::vector<int> layout_indices_;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_PRUNING_LINK_H_
