// What one prune iteration did: sparsity per tensor and overall (target and achieved), statistics of the
// fitted coefficients, the fit's own numbers, and a JSON form for services and command-line tools.
// Field for field it follows gcprune.v1.IterationReport, plus a few policy counters.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_REPORT_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_REPORT_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/method_config.h"

namespace gcprune::pruner {

inline constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

// A histogram with explicit edges. For |β| the edges are log10 exponents: bin i counts the values v with
// edges[i] <= log10(v) < edges[i+1]; the last bin also holds v = 10^edges.back().
struct Histogram {
  std::vector<double> edges;    // k + 1 ascending edges (empty when there is nothing to count)
  std::vector<int64_t> counts;  // k counts
};

// Statistics of the coefficients β of one prunable tensor, over the weights kept before the fit (with
// several feature groups, as V1's momentum variant, over all of a weight's coefficients).
struct CoefficientStats {
  int tensor_index = 0;  // index in the Layout
  std::string name;
  int64_t count = 0;  // coefficients counted
  int64_t zero = 0;   // exactly 0
  int64_t positive = 0;
  int64_t negative = 0;
  int64_t nonfinite = 0;  // NaN or ±inf (not in min/max/mean/histogram)
  double min = 0.0;       // over finite coefficients; 0 if there are none
  double max = 0.0;
  double mean = 0.0;
  double mean_abs = 0.0;
  // log10|β| over the finite non-zero coefficients, one bin per decade from the decade of the smallest
  // to that of the largest.
  Histogram log10_abs_histogram;

  double fraction_zero() const { return count > 0 ? static_cast<double>(zero) / static_cast<double>(count) : 0.0; }
};

// Per-tensor coefficient statistics. `beta` holds G · N coefficients (G >= 1 feature groups, group g at
// [g·N, (g+1)·N)); `before` is the mask the fit ran under (N = before.num_features()).
// INVALID_ARGUMENT if beta.size() is not a positive multiple of N.
absl::StatusOr<std::vector<CoefficientStats>> ComputeCoefficientStats(const MaskSet& before,
                                                                      absl::Span<const float> beta);

// Pruned and kept counts of one prunable tensor after the iteration.
struct TensorSparsityReport {
  int tensor_index = 0;  // index in the Layout
  std::string name;
  int64_t num_elements = 0;
  int64_t kept = 0;
  int64_t pruned = 0;
  int64_t pruned_this_iteration = 0;
  double sparsity = 0.0;              // pruned / num_elements
  double target_sparsity = kNoValue;  // the schedule's s(j); NaN when the method sets no target (causal-v1)
};

// The regression fit(s) of a causal iteration.
struct FitReport {
  Solver solver = Solver::kLassoSgd;
  int num_fits = 1;               // V1 per-layer: one per prunable tensor; all other numbers are summed or
                                  // taken over the fits (epochs: the maximum; losses: the mean)
  int epochs = 0;                 // LassoSGD epochs run; exact: coordinate-descent epochs over working sets
  int best_epoch = 0;             // LassoSGD, 1-based epoch whose β was kept (V2)
  bool early_stopped = false;     // LassoSGD: patience ended the fit (any fit, for V1)
  double final_loss = kNoValue;   // LassoSGD: last epoch's mean loss; exact: the objective P(β)
  double best_loss = kNoValue;    // LassoSGD: the kept epoch's mean loss
  double fit_seconds = 0.0;       // wall time of the fit(s)
  bool converged = false;         // exact: the duality-gap tolerance was reached (by every fit)
  double duality_gap = kNoValue;  // exact: the largest gap over the fits
  int64_t nonzero_coefficients = 0;
  int64_t negative_coefficients = 0;
  int64_t updates = 0;               // LassoSGD: coefficient updates (τ)
  std::vector<double> epoch_losses;  // LassoSGD V2: mean loss of every epoch
};

// One prune iteration.
struct IterationReport {
  int iteration = 0;  // 1-based
  Method method = Method::kCausalV2;
  int64_t num_samples = 0;            // samples T of the fit (0 for the baselines)
  int64_t num_features = 0;           // columns of the regression: N, or 3N for V1 momentum (N for the baselines)
  double target_sparsity = kNoValue;  // s(j) of the schedule; NaN for causal-v1
  double achieved_sparsity = 0.0;     // pruned / N after the iteration
  int64_t kept = 0;
  int64_t pruned = 0;
  // The selection: weights asked for (schedule count, or V1's zero coefficients), actually pruned this
  // iteration, missing because of the layer maxima, and the floor deficit left (see ranking.h).
  int64_t requested = 0;
  int64_t pruned_this_iteration = 0;
  int64_t shortfall = 0;
  int64_t unmet_floor = 0;
  std::vector<TensorSparsityReport> tensors;   // per prunable tensor, layout order
  std::vector<CoefficientStats> coefficients;  // causal methods only
  std::optional<FitReport> fit;                // causal methods only
  // Non-finite inputs, replaced by 0 in the regression: targets y_t that were NaN / ±inf, and feature
  // values (Δθ² or products) that were NaN, ±inf or overflowed.
  int64_t target_nan = 0;
  int64_t target_inf = 0;
  int64_t feature_nonfinite = 0;
  double target_mean = kNoValue;  // causal-v2: the mean of y_t that normalised the targets
  double select_seconds = 0.0;    // wall time of scoring and selection
  double total_seconds = 0.0;     // wall time of the whole iteration end
  bool final_iteration = false;   // no more iterations are planned
};

// One JSON object (no trailing newline), keys in the order of the fields above; NaN and ±inf are null;
// doubles are written with the fewest digits that read back exactly. Example (abridged):
//   {"iteration":1,"method":"causal-v2","num_samples":235,...,"tensors":[{"tensor_index":0,...}],...}
std::string IterationReportToJson(const IterationReport& report);

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_REPORT_H_
