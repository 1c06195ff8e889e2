// Phase-shift detection on accuracy-versus-sparsity curves (see phase_shift.h).
#include "pruner_service/causal/phase_shift.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gcprune::pruner {
namespace {

bool InUnitInterval(double value) { return std::isfinite(value) && value >= 0.0 && value <= 1.0; }

absl::Status CheckOptions(const PhaseShiftOptions& options) {
  if (!InUnitInterval(options.max_drop)) {
    return absl::InvalidArgumentError(absl::StrCat("max_drop: must be in [0, 1], got ", options.max_drop));
  }
  const bool has_reference = !std::isnan(options.reference_accuracy);
  if (has_reference && !InUnitInterval(options.reference_accuracy)) {
    return absl::InvalidArgumentError(
        absl::StrCat("reference_accuracy: must be in [0, 1], got ", options.reference_accuracy));
  }
  if (!has_reference && options.rule == PhaseShiftRule::kDropFromReference) {
    return absl::InvalidArgumentError("reference_accuracy: required by rule drop-from-reference, got NaN");
  }
  return absl::OkStatus();
}

absl::Status CheckPoints(const std::vector<AccuracyPoint>& points) {
  if (points.empty()) return absl::InvalidArgumentError("points: empty");
  for (size_t i = 0; i < points.size(); ++i) {
    if (!InUnitInterval(points[i].sparsity)) {
      return absl::InvalidArgumentError(
          absl::StrCat("points[", i, "].sparsity: must be in [0, 1], got ", points[i].sparsity));
    }
    if (!InUnitInterval(points[i].accuracy)) {
      return absl::InvalidArgumentError(
          absl::StrCat("points[", i, "].accuracy: must be in [0, 1], got ", points[i].accuracy));
    }
  }
  return absl::OkStatus();
}

void SetShift(int shift, PhaseShift* result) {
  result->found = true;
  result->shift_index = shift;
  result->shift_sparsity = result->points[shift].sparsity;
  result->shift_accuracy = result->points[shift].accuracy;
  result->recommended_index = shift - 1;
}

}  // namespace

absl::string_view PhaseShiftRuleName(PhaseShiftRule rule) {
  switch (rule) {
    case PhaseShiftRule::kDropFromReference:
      return "drop-from-reference";
    case PhaseShiftRule::kSteepestDrop:
      return "steepest-drop";
  }
  return "unknown";
}

absl::StatusOr<PhaseShift> FindPhaseShift(std::vector<AccuracyPoint> points, const PhaseShiftOptions& options) {
  if (absl::Status status = CheckOptions(options); !status.ok()) return status;
  if (absl::Status status = CheckPoints(points); !status.ok()) return status;
  std::stable_sort(points.begin(), points.end(),
                   [](const AccuracyPoint& a, const AccuracyPoint& b) { return a.sparsity < b.sparsity; });
  for (size_t i = 1; i < points.size(); ++i) {
    if (points[i].sparsity == points[i - 1].sparsity) {
      return absl::InvalidArgumentError(
          absl::StrCat("points: sparsity ", points[i].sparsity, " appears more than once"));
    }
  }

  PhaseShift result;
  const bool has_reference = !std::isnan(options.reference_accuracy);
  if (options.rule == PhaseShiftRule::kSteepestDrop && has_reference) {
    // A measured point at sparsity 0 is the reference itself; keep the measurement.
    if (points.front().sparsity > 0.0) points.insert(points.begin(), {0.0, options.reference_accuracy});
  }
  result.points = std::move(points);
  const std::vector<AccuracyPoint>& curve = result.points;
  const int n = static_cast<int>(curve.size());

  if (options.rule == PhaseShiftRule::kDropFromReference) {
    const double floor = options.reference_accuracy - options.max_drop;
    for (int i = 0; i < n; ++i) {
      if (curve[i].accuracy < floor) {
        SetShift(i, &result);
        result.drop = options.reference_accuracy - curve[i].accuracy;
        break;
      }
    }
  } else {
    int best = -1;
    double best_slope = 0.0;
    for (int i = 0; i + 1 < n; ++i) {
      const double drop = curve[i].accuracy - curve[i + 1].accuracy;
      if (!(drop > options.max_drop)) continue;
      const double slope = drop / (curve[i + 1].sparsity - curve[i].sparsity);
      if (best < 0 || slope > best_slope) {
        best = i + 1;
        best_slope = slope;
      }
    }
    if (best >= 0) {
      SetShift(best, &result);
      result.drop = best_slope;
    }
  }

  if (!result.found) result.recommended_index = n - 1;
  if (result.recommended_index >= 0) {
    result.recommended_sparsity = curve[result.recommended_index].sparsity;
    result.recommended_accuracy = curve[result.recommended_index].accuracy;
  }
  return result;
}

}  // namespace gcprune::pruner
