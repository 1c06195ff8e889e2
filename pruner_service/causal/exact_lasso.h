// The exact Lasso solver of the causal core: coordinate descent with working sets and gap-safe screening,
// run to a duality-gap tolerance on the row-major causal samples. The alternative to LassoSGD when the fit
// must be the Lasso's minimiser (V1-style selection by alpha, or T comparable with N).
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_EXACT_LASSO_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_EXACT_LASSO_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pruner_service/causal/row_source.h"

namespace gcprune::pruner {

// Objective, as scikit-learn's Lasso(fit_intercept=False):
//
//     P(β) = (1/(2T)) ‖y − Xβ‖² + α ‖β‖₁,     β_k = 0 for every frozen k (active[k] == 0),
//
// X: T rows (samples) × N columns (features), y: T targets. The solution has at most T non-zeros
// (generically), so with N ≫ T it selects features rather than ranking all of them.
//
// Relation to LassoSGD's penalty α_sgd (LassoSGD approximately minimises its mean minibatch loss plus
// α_sgd ‖β‖₁, since the cumulative penalty adds lr·α_sgd per update):
//   V2: loss = mean squared error without ½:  (1/T)‖y − Xβ‖² + α_sgd‖β‖₁ = 2·P(β) with α = α_sgd / 2,
//       so α = α_sgd / 2 = l1 / (2N).
//   V1: loss = ½ (y_t − ŷ_t)² per sample:     (1/T) Σ ½ r_t² + α_sgd‖β‖₁ = P(β) with α = α_sgd,
//       so α = α_sgd = l1 (not divided by N).
// The objectives coincide; the minimisers do not have to, because LassoSGD stops after a few epochs.
inline double ExactAlphaFromLassoSgdV2(double alpha_sgd) { return alpha_sgd / 2; }
inline double ExactAlphaFromLassoSgdV1(double alpha_sgd) { return alpha_sgd; }

struct ExactLassoOptions {
  // Converged when the duality gap P(β) − D(ν) ≤ tol · ‖y‖² / T: scikit-learn's criterion for the same tol
  // (‖y‖²/(2T) is P(0), so the gap is below 2·tol relative to the objective at β = 0). >= 0. Gaps below
  // about 1e-13 · ‖y‖²/T are under double rounding; asking for less may not converge. At α = 0 (least
  // squares) the dual point must be 0, so the gap certifies only solutions that interpolate y (r = 0);
  // otherwise converged stays false and the limits (or a stalled iterate) end the solve.
  double tol = 1e-4;
  // Outer iterations: each solves one working-set subproblem and then makes one pass over X to compute
  // the full gradient and gap (plus one gather pass when new columns enter the working set). >= 1.
  int max_iterations = 100;
  // Coordinate-descent epochs over working sets, summed over all outer iterations. >= 1.
  int64_t max_epochs = 1'000'000;
  // Size of the first working set; later ones hold max(this, 2 · non-zeros, previous size) columns, and
  // double when they would not change. >= 1.
  int64_t initial_working_set = 64;
  // Cap on the working set, in columns. The gathered columns take max_working_set · T · 4 bytes. >= 1.
  int64_t max_working_set = 16384;
  // Optional warm start: empty, or N coefficients (e.g. the solution at the previous α of a path); frozen
  // coordinates must be 0. Must stay valid during Solve().
  absl::Span<const float> warm_start;
  // Optional; polled between outer iterations and at each gap check. Returning true ends Solve() with
  // CANCELLED.
  std::function<bool()> should_stop;
};

struct ExactLassoResult {
  std::vector<float> beta;      // N coefficients; frozen coordinates are exactly 0
  double objective = 0;         // P(β) of the double-precision solution (β is rounded to float on return)
  double duality_gap = 0;       // P(β) − D(ν) >= 0, same units as the objective; bounds P(β) − min P
  double gap_tolerance = 0;     // tol · ‖y‖² / T
  bool converged = false;       // duality_gap <= gap_tolerance
  int iterations = 0;           // outer iterations (working-set subproblems solved); 0 when β = 0 at once
  int64_t epochs = 0;           // coordinate-descent epochs over working sets, summed
  int64_t gradient_passes = 0;  // full passes over X (X_kᵀr for every column) made by this Solve() call
  int64_t gather_passes = 0;    // passes copying working-set columns: each reads T rows, but only the
                                // gathered entries of each row if Row() returns a pointer into storage
  int64_t num_nonzero = 0;      // non-zero coefficients
  int64_t working_set_size = 0; // columns in the last working set
  int64_t num_screened = 0;     // active columns proved zero by the gap-safe rule when Solve() returned
};

// An exact Lasso problem over a RowSource. Create() makes one pass over X (column norms, Xᵀy, α_max);
// each Solve(α) then runs coordinate descent from there, so a path over α pays that pass once.
//
// Why working sets: X is stored row-major (a row per sample; at LeNet-5 scale T = 235, N = 430,500, i.e.
// ~400 MB of float32), but coordinate descent walks columns. Rather than materialising a transposed copy,
// each outer iteration (1) computes the full gradient Xᵀr/T in one streaming pass over rows, blocked 8 rows
// at a time so the double accumulators are read and written once per block, (2) discards columns with the
// gap-safe sphere test, (3) picks a small working set of columns closest to violating their dual constraint
// (plus the current support), (4) gathers only those columns into a column-major float copy, and
// (5) solves the subproblem there by cyclic coordinate descent with a residual vector in double. The
// solution has at most ~T non-zeros, so working sets stay a few hundred columns, and a handful of passes
// over X suffice. At least one subproblem is solved when α < α_max, as scikit-learn makes at least one
// epoch. Hitting max_iterations or max_epochs is not an error: Solve() returns OK with converged = false
// and the last β, whose gap is reported.
//
// Memory: the object keeps ~17·N bytes (norms, Xᵀy, mask); a Solve() call uses ~90·N bytes more at its
// peak (N-sized state, 8 rows of scratch for decoding sources), plus 4·T bytes per gathered column:
// ~45 MB at LeNet-5 scale. Single-threaded.
//
// Thread-safety: Solve() is const and keeps its state local; concurrent calls on one object are safe
// because RowSource allows concurrent reads. The RowSource must outlive the object and must not change.
class ExactLasso {
 public:
  // `x` is not owned. `y`: T = x->num_rows() targets; `active`: N = x->num_cols() bytes, 0 = frozen
  // (coefficient fixed at 0, never selected). Both are copied.
  // INVALID_ARGUMENT: x null, no rows, size mismatch of y or active, a non-finite y[t], a non-finite value
  // in an active column of X. INTERNAL: the source returned no row.
  static absl::StatusOr<std::unique_ptr<ExactLasso>> Create(const RowSource* x, absl::Span<const float> y,
                                                            absl::Span<const uint8_t> active);

  // Smallest α at which β = 0 is the solution: max over active k of |X_kᵀy| / T (0 if nothing is active).
  double alpha_max() const { return alpha_max_; }
  int64_t num_rows() const { return num_rows_; }
  int64_t num_cols() const { return num_cols_; }

  // Minimises P(β) at this α. Returns OK also when the limits stop it first (converged = false).
  // INVALID_ARGUMENT: α negative or not finite, bad options (named), warm_start of the wrong size, with a
  // non-finite value or non-zero on a frozen coordinate. CANCELLED: should_stop returned true.
  // INTERNAL: the source returned no row.
  absl::StatusOr<ExactLassoResult> Solve(double alpha, const ExactLassoOptions& options = {}) const;

 private:
  ExactLasso() = default;

  const RowSource* x_ = nullptr;
  int64_t num_rows_ = 0;
  int64_t num_cols_ = 0;
  std::vector<double> y_;
  std::vector<uint8_t> active_;
  std::vector<double> col_sq_norms_;  // ‖X_k‖², double accumulation
  std::vector<double> xty_over_t_;    // X_kᵀy / T
  double yy_ = 0;                     // ‖y‖²
  double alpha_max_ = 0;
};

// One-shot helpers: Create() then Solve() or alpha_max(); same errors.
absl::StatusOr<ExactLassoResult> SolveExactLasso(const RowSource& x, absl::Span<const float> y,
                                                 absl::Span<const uint8_t> active, double alpha,
                                                 const ExactLassoOptions& options = {});
absl::StatusOr<double> ComputeLassoAlphaMax(const RowSource& x, absl::Span<const float> y,
                                            absl::Span<const uint8_t> active);

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_EXACT_LASSO_H_
