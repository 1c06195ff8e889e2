// The phase shift of METHOD.md §7: where test accuracy measured right after pruning (before fine-tuning)
// collapses as the pruned fraction grows, and the sparsity to recommend, the last one before the collapse.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_PHASE_SHIFT_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_PHASE_SHIFT_H_

#include <limits>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gcprune::pruner {

// One run of a sparsity sweep.
struct AccuracyPoint {
  double sparsity = 0.0;  // achieved global sparsity of the prunable weights, in [0, 1]
  double accuracy = 0.0;  // test accuracy right after the last prune iteration, in [0, 1]
};

// How the shift is located on a curve sorted by sparsity.
enum class PhaseShiftRule {
  // The first point whose accuracy lies more than `max_drop` below `reference_accuracy` (the dense
  // model's). Robust to noise: small wiggles never count, only a real loss of accuracy.
  kDropFromReference,
  // The right end of the segment with the largest accuracy drop per unit of sparsity,
  // (a_i − a_{i+1}) / (s_{i+1} − s_i), among segments that drop by more than `max_drop` in accuracy. With
  // a finite `reference_accuracy` the point (0, reference_accuracy) starts the curve.
  kSteepestDrop,
};

struct PhaseShiftOptions {
  PhaseShiftRule rule = PhaseShiftRule::kDropFromReference;
  // Accuracy of the unpruned model, in [0, 1]. Required by kDropFromReference; optional (NaN: none) for
  // kSteepestDrop.
  double reference_accuracy = std::numeric_limits<double>::quiet_NaN();
  // Accuracy drop (absolute, in [0, 1]) that counts as a collapse; 0.05 = five percentage points.
  double max_drop = 0.05;
};

struct PhaseShift {
  // The points sorted by ascending sparsity (for kSteepestDrop with a reference, the reference point
  // (0, reference_accuracy) first).
  std::vector<AccuracyPoint> points;
  // Whether the curve collapses within the sweep. When false, the shift fields are NaN / -1 and the
  // recommendation is the sparsest point (the shift lies beyond the sweep).
  bool found = false;
  int shift_index = -1;  // index in `points` of the first collapsed point
  double shift_sparsity = std::numeric_limits<double>::quiet_NaN();
  double shift_accuracy = std::numeric_limits<double>::quiet_NaN();
  // Last point before the shift; index -1 (and NaN values) when the very first point already collapsed.
  int recommended_index = -1;
  double recommended_sparsity = std::numeric_limits<double>::quiet_NaN();
  double recommended_accuracy = std::numeric_limits<double>::quiet_NaN();
  // kSteepestDrop: the chosen segment's drop per unit sparsity (accuracy / sparsity, > 0); kDropFromReference:
  // the shift point's drop below the reference (accuracy). NaN when not found.
  double drop = std::numeric_limits<double>::quiet_NaN();
};

// Locates the phase shift of `points` under `options`. INVALID_ARGUMENT, naming the field and value, for:
// no points; a sparsity or accuracy that is not finite or outside [0, 1] ("points[i].sparsity ...");
// two points with the same sparsity; max_drop not in [0, 1]; a reference accuracy outside [0, 1], or
// missing (NaN) with kDropFromReference.
absl::StatusOr<PhaseShift> FindPhaseShift(std::vector<AccuracyPoint> points, const PhaseShiftOptions& options);

// "drop-from-reference" / "steepest-drop".
absl::string_view PhaseShiftRuleName(PhaseShiftRule rule);

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_PHASE_SHIFT_H_
