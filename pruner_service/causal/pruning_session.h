// A pruning session: "samples in, masks out". It holds the layout, the method configuration, the masks
// and their history, the iteration counter and the current iteration's samples, and at the end of each
// iteration fits the causal model (or runs a baseline) and prunes by the schedule.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_PRUNING_SESSION_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_PRUNING_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "pruner_service/causal/baselines.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/report.h"
#include "pruner_service/causal/sample_builder.h"
#include "pruner_service/causal/sample_store.h"
#include "pruner_service/causal/schedule.h"

namespace gcprune::pruner {

// Server-side settings of a session; not part of its serialised state.
struct SessionOptions {
  // Sample memory when the config's memory_budget_bytes is 0, in bytes, >= 0.
  int64_t default_memory_budget_bytes = int64_t{1} << 30;
  // OpenMP threads of the LassoSGD fits, >= 1 (results do not depend on it).
  int solver_threads = 2;
};

// The outcome of one iteration.
struct IterationResult {
  int iteration = 0;  // 1-based
  MaskSet masks;      // cumulative masks after the iteration
  IterationReport report;
};

// Lifecycle: Create (or Deserialize); per iteration j = 1..n: steps (causal methods) via BeginStep /
// AddDeltas / EndStep or AddStep, then EndIteration(weights for the magnitude methods), which returns
// the masks and the report and clears the samples. After iteration n the session is finished.
//
// Determinism: the masks depend only on the layout, the config (its seed included) and the samples and
// weights given, never on timing or thread counts.
//
// Thread-safety: none; the owner serialises all calls (a service typically runs EndIteration on a worker
// thread while holding the session). The session starts no threads itself; the LassoSGD fits use
// `solver_threads` OpenMP threads inside EndIteration.
class PruningSession {
 public:
  // INVALID_ARGUMENT for an invalid config (ValidateMethodConfig, naming the field) or options (negative
  // default budget, solver_threads < 1).
  static absl::StatusOr<std::unique_ptr<PruningSession>> Create(Layout layout, const MethodConfig& config,
                                                                SessionOptions options = {});

  const Layout& layout() const { return layout_; }
  // The resolved config: every default filled in.
  const MethodConfig& config() const { return config_; }
  const Schedule& schedule() const { return schedule_; }
  // The current cumulative masks.
  const MaskSet& masks() const { return masks_; }

  int completed_iterations() const { return completed_; }
  int total_iterations() const { return schedule_.num_iterations(); }
  // The iteration being collected, completed_iterations() + 1 (n + 1 when finished).
  int current_iteration() const { return completed_ + 1; }
  bool finished() const { return completed_ >= total_iterations(); }
  // Whether the method consumes steps (causal-v2, causal-v1) and current weights (magnitude-*).
  bool wants_steps() const { return IsCausal(config_.method); }
  bool wants_weights() const { return NeedsWeights(config_.method); }

  // Samples stored for the current iteration, and the store (nullptr for non-causal methods).
  int64_t num_samples() const { return store_ ? store_->num_rows() : 0; }
  const SampleStore* samples() const { return store_.get(); }
  int64_t memory_budget_bytes() const { return memory_budget_; }

  // Steps, as SampleBuilder (sample_builder.h), whose errors they return unchanged; in addition
  // FAILED_PRECONDITION when the method takes no steps or the session is finished. `tensor` is a
  // Layout index.
  absl::Status BeginStep(const StepHeader& header);
  absl::Status AddDeltas(int tensor, int64_t offset, absl::Span<const float> deltas);
  absl::Status EndStep();
  void AbortStep();
  // A whole step: `deltas` holds every prunable tensor's signed Δθ (TensorWeights order, numel each).
  // On error the step is aborted and the error returned (INVALID_ARGUMENT for a wrong tensor count).
  absl::Status AddStep(const StepHeader& header, const TensorWeights& deltas);

  // Ends iteration j = current_iteration(): fits the samples (causal) or ranks `weights` (magnitude,
  // TensorWeights order) or random keys, prunes by the schedule, clears the samples and advances j.
  // `weights` is ignored by the other methods. On error nothing changes (samples are kept; the call may
  // be retried). FAILED_PRECONDITION: the session is finished, a step is open, a causal iteration has no
  // samples, or a magnitude method got no weights. INVALID_ARGUMENT: malformed weights (see
  // MagnitudeKeys). Solver errors are passed through.
  absl::StatusOr<IterationResult> EndIteration(const TensorWeights& weights = {});

  // The cumulative masks after iteration i, 0 <= i <= completed_iterations() (0: all kept).
  // OUT_OF_RANGE otherwise.
  absl::StatusOr<MaskSet> MasksAfter(int iteration) const;
  // The iteration that pruned feature k (0 = still kept), for k in [0, N).
  int PruneIteration(int64_t feature) const { return prune_iteration_[static_cast<size_t>(feature)]; }

  // The session's metadata as a compact binary blob: layout, resolved config, completed iterations and
  // the iteration that pruned each weight (so every earlier mask can be rebuilt), with a CRC-32. Samples
  // are not included: the owner journals steps itself and replays those of the current iteration after
  // Deserialize. Format (little-endian): "GCPSESS1", u32 version = 1, u32 tensors, per tensor {u32 name
  // length, name, u8 prunable, u32 rank, i64 dims...}, u32 config length, config text
  // (FormatMethodConfig), i32 completed iterations, i64 N, N × u16 prune iteration, u32 CRC-32 (IEEE,
  // as zlib's crc32) of all preceding bytes. About 2 bytes per prunable weight.
  std::string Serialize() const;
  // Rebuilds a session from Serialize()'s output, with no samples. DATA_LOSS for a truncated, corrupt or
  // inconsistent blob (bad magic, CRC mismatch, invalid layout or config, prune iterations beyond the
  // completed ones), naming what is wrong; FAILED_PRECONDITION for an unknown format version.
  static absl::StatusOr<std::unique_ptr<PruningSession>> Deserialize(absl::string_view blob,
                                                                     SessionOptions options = {});

 private:
  PruningSession(Layout layout, MethodConfig config, Schedule schedule, SessionOptions options);
  absl::Status InitSamples();
  absl::Status CheckStepsAllowed() const;

  // The fits of the causal methods; each fills `beta` (G · N coefficients) and report.fit and the input
  // counters of `report`.
  absl::Status FitV2(std::vector<float>* beta, IterationReport* report) const;
  absl::Status FitV1(std::vector<float>* beta, IterationReport* report) const;
  // Chooses the weights to prune at iteration j; fills the selection fields of `report`.
  absl::StatusOr<Selection> Select(int j, const TensorWeights& weights, IterationReport* report) const;

  Layout layout_;
  MethodConfig config_;
  Schedule schedule_;
  SessionOptions options_;
  int64_t memory_budget_ = 0;
  MaskSet masks_;
  std::vector<uint16_t> prune_iteration_;  // per feature: iteration that pruned it, 0 = kept
  int completed_ = 0;
  std::unique_ptr<SampleStore> store_;      // causal methods only
  std::unique_ptr<SampleBuilder> builder_;  // causal methods only
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_PRUNING_SESSION_H_
