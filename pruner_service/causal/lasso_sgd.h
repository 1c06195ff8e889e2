// LassoSGD: the truncated-gradient Lasso with cumulative L1 penalty (Tsuruoka, Tsujii & Ananiadou 2009)
// that fits the causal model ΔL ≈ Σ_k β_k x_k, for V2 (METHOD.md §3.3: one global fit, minibatches) and
// V1 (METHOD.md §4: one fit per layer, one update per sample). Deterministic for a seed.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_LASSO_SGD_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_LASSO_SGD_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/row_source.h"

namespace gcprune::pruner {

// The common update (per minibatch B of samples, τ counting minibatches from 1, r_i = x_i·β − Y_i):
//   lr_τ = lr0 / τ^lr_power
//   g_k = clamp(c/|B| · Σ_{i∈B} r_i x_ik, ±grad_clamp)   c = 2 (V2: MSE) or 1 (V1: ½ squared error)
//   z_k = β_k − lr_τ g_k;   u += lr_τ · α
//   β_k = max(0, z_k − (u + q_k)) if z_k > 0;  min(0, z_k + (u − q_k)) if z_k < 0;  0 if z_k = 0
//   q_k += β_k − z_k
// only for active k; inactive (already pruned) coefficients stay exactly 0 and are never touched.
// β, q and the gradient are float32 (as the reference's tensors); u, the dot products, the residuals and
// the losses are double. Epochs: the samples are visited in a splitmix64 Fisher–Yates order drawn per
// epoch from one generator seeded with `seed` (splitmix64.h). After each epoch its loss (the mean over
// its minibatches of the minibatch loss, measured at the forward pass, before that minibatch's update)
// is compared with the best so far: below best − tol makes it the new best (β saved),
// otherwise one more epoch without improvement; the fit stops after `patience` of them in a row or
// after max_epochs. The best epoch's β is returned.
//
// Determinism: the dot products are summed over fixed column chunks whose partial sums are added in
// chunk order, and the update is element-wise, so the result is bit-identical for the same inputs,
// options and build, whatever num_threads is.

struct LassoSgdV2Options {
  int minibatch = 16;         // samples per minibatch (the last one may be smaller)
  double lr0 = 0.1;           // lr_τ = lr0 / τ^lr_power
  double lr_power = 0.1;
  double l1 = 1e-3;           // α = l1 / N, N = active.size(): all prunable weights, pruned included
  double grad_clamp = 1e12;   // each gradient component is clamped to ±grad_clamp
  int max_epochs = 30;
  int patience = 2;           // stop after this many epochs in a row without improvement
  double tol = 1e-7;          // an epoch improves if its loss < best − tol
  uint64_t seed = 0;          // the session seed
  int num_threads = 2;        // OpenMP threads (results do not depend on it)
  // Performance only (results are bit-identical for any value >= 0): a minibatch is read in
  // sub-batches of at most this many bytes of rows (at least one row), so that the gradient pass finds
  // them in cache. 0 = one row at a time. 4–8 MiB measured best at LeNet-5 scale.
  int64_t sub_batch_bytes = int64_t{6} << 20;
};

struct LassoSgdV1Options {
  int minibatch = 1;          // METHOD.md §4: one update per sample
  double lr0 = 0.01;          // lr_τ = lr0 / τ^lr_power, τ counting updates of this fit
  double lr_power = 0.25;
  double l1 = 1e-14;          // α = l1, not divided by N (the reference's LeNet-5 value)
  double grad_clamp = 1e12;
  int max_epochs = 30;
  int patience = 2;
  double tol = 1e-7;
  uint64_t seed = 0;          // every per-layer fit starts its own generator with this seed
  int num_threads = 2;
  int64_t sub_batch_bytes = int64_t{6} << 20;  // as LassoSgdV2Options
};

// What one fit did.
struct LassoSgdReport {
  int epochs_run = 0;
  bool stopped_early = false;           // stopped by `patience` before max_epochs
  int best_epoch = 0;                   // 1-based epoch whose β is returned (0 if no epoch ran)
  std::vector<double> epoch_losses;     // per epoch run: mean minibatch loss
  double best_loss = 0.0;               // epoch_losses[best_epoch - 1]
  double final_loss = 0.0;              // epoch_losses.back()
  int64_t updates = 0;                  // τ at the end: minibatch (V2) or sample (V1) updates
  int64_t nonzero = 0;                  // non-zero coefficients of the returned β
  int64_t negative = 0;                 // negative coefficients of the returned β
  double fit_seconds = 0.0;             // wall time of the fit
};

struct LassoSgdV2Result {
  std::vector<float> beta;  // num_cols coefficients: the best epoch's β (the default ranking)
  // The coefficients the reference implementation ranks by (METHOD.md's `reference_ranking` option):
  // β as it was at the last forward pass of the fit, i.e. after every update except the very last
  // minibatch update of the last epoch run (the state in which that minibatch's predictions were
  // computed), not restored to the best epoch. All zeros if no update ran.
  std::vector<float> reference_beta;
  std::vector<double> normalized_targets;  // Y as fitted (NormalizeTargetsV2)
  LassoSgdReport report;
};

struct ColumnRange {
  int64_t begin = 0;  // first column
  int64_t end = 0;    // one past the last column
};

struct LassoSgdV1Result {
  std::vector<float> beta;              // num_cols coefficients; columns in no fit stay 0
  std::vector<LassoSgdReport> reports;  // one per fit, in the order given
};

// Y_t = y_t / mean_t(y_t) (no centring); NaN and ±inf results become 0 (so a zero or non-finite mean
// gives all zeros).
std::vector<double> NormalizeTargetsV2(absl::Span<const double> y);

// METHOD.md §3.3: fits Y = NormalizeTargetsV2(y) ≈ X β over all columns of `x` (T rows, N columns; a
// SampleStore is read in its own encoding without copies; other sources that decode into scratch are
// copied once into T × N floats). `active` has one byte per weight (1 = unpruned, 0 = frozen at 0); its
// length must divide num_cols, column c uses active[c % active.size()].
// INVALID_ARGUMENT for: y.size() != T, T == 0, bad `active` length, or an option out of range
// (minibatch < 1, lr0 <= 0, lr_power < 0, l1 < 0, grad_clamp <= 0, max_epochs < 1,
// patience < 1, tol < 0, num_threads < 1, sub_batch_bytes < 0), each naming the field and value.
absl::StatusOr<LassoSgdV2Result> FitLassoSgdV2(const RowSource& x, absl::Span<const double> y,
                                               absl::Span<const uint8_t> active, const LassoSgdV2Options& options);

// METHOD.md §4: one independent fit per entry of `fits` (each a set of column ranges: one layer's
// features, e.g. PerLayerFits), on the raw targets y (no normalisation), loss ½(y − ŷ)² (mean over the
// minibatch, by default of 1 sample),
// α = l1; τ, u and q start afresh for every fit. Errors as FitLassoSgdV2, plus INVALID_ARGUMENT for
// empty, reversed, out-of-range or overlapping column ranges.
absl::StatusOr<LassoSgdV1Result> FitLassoSgdV1(const RowSource& x, absl::Span<const double> y,
                                               absl::Span<const uint8_t> active,
                                               const std::vector<std::vector<ColumnRange>>& fits,
                                               const LassoSgdV1Options& options);

// One fit per prunable tensor of `layout`: its features in each of `feature_groups` groups
// (group g occupies columns [g·N, (g+1)·N)).
std::vector<std::vector<ColumnRange>> PerLayerFits(const Layout& layout, int feature_groups = 1);

// V1's mask rule: weight k (0 <= k < num_weights) is kept iff any of beta[k + g·num_weights] is non-zero
// (g over beta.size() / num_weights groups). Returns one byte per weight, 1 = keep.
// REQUIRES: num_weights > 0 and divides beta.size().
std::vector<uint8_t> NonzeroWeights(absl::Span<const float> beta, int64_t num_weights);

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_LASSO_SGD_H_
