// Coordinate descent for the Lasso over row-major samples: streaming gradient passes, gap-safe screening,
// working sets gathered into a column-major copy. The design is explained in exact_lasso.h.
#include "pruner_service/causal/exact_lasso.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace gcprune::pruner {
namespace {

// Rows accumulated together in a gradient pass: the N double accumulators are read and written once per
// block instead of once per row, which halves the memory traffic of a pass at LeNet-5 scale.
constexpr int kRowBlock = 8;
// Inner gap checks happen after epochs 1, 2, 4 and 8 (warm-started subproblems are often solved at once),
// then every kGapCheckPeriod epochs, and whenever the iterate stops moving. A check costs about an epoch.
constexpr int kGapCheckPeriod = 10;
bool IsGapCheckEpoch(int64_t epoch) {
  return epoch == 1 || epoch == 2 || epoch == 4 || epoch == 8 || epoch % kGapCheckPeriod == 0;
}
// Subproblems are solved to this fraction of the outer tolerance, so that one more gradient pass usually
// confirms convergence (passes over X cost far more than epochs over a working set).
constexpr double kInnerTolFraction = 0.3;
// Relative slack of the screening test, so that rounding in X_kᵀr never discards a selected feature.
constexpr double kScreenSlack = 1e-9;

// out[k] += Σ_i w[i] · rows[i][k] for k < n; also sq[k] += Σ_i rows[i][k]² when kSquares.
template <int B, bool kSquares>
void AccumulateRows(const float* const* rows, const double* w, int64_t n, double* out, double* sq) {
  const float* p[B];
  double wl[B];
  for (int i = 0; i < B; ++i) {
    p[i] = rows[i];
    wl[i] = w[i];
  }
  for (int64_t k = 0; k < n; ++k) {
    double s = out[k];
    double q = 0;
    for (int i = 0; i < B; ++i) {
      const double v = p[i][k];
      s += wl[i] * v;
      if constexpr (kSquares) q += v * v;
    }
    out[k] = s;
    if constexpr (kSquares) sq[k] += q;
  }
}

absl::Status RowNotReturned(int64_t t) {
  return absl::InternalError(absl::StrCat("x: Row(", t, ") returned no data"));
}

// out[k] = scale · Σ_t w[t] · x_tk over all N columns, in one pass over the rows of x; with sq non-null
// also sq[k] = Σ_t x_tk². `scratch` holds kRowBlock · N floats for sources that decode rows.
absl::Status RowPass(const RowSource& x, const std::vector<double>& w, double scale, double* out, double* sq,
                     float* scratch) {
  const int64_t num_rows = x.num_rows();
  const int64_t n = x.num_cols();
  std::fill(out, out + n, 0.0);
  if (sq != nullptr) std::fill(sq, sq + n, 0.0);
  const float* rows[kRowBlock];
  int64_t t = 0;
  for (; t + kRowBlock <= num_rows; t += kRowBlock) {
    for (int i = 0; i < kRowBlock; ++i) {
      rows[i] = x.Row(t + i, scratch + i * n);
      if (rows[i] == nullptr) return RowNotReturned(t + i);
    }
    if (sq != nullptr) {
      AccumulateRows<kRowBlock, true>(rows, &w[t], n, out, sq);
    } else {
      AccumulateRows<kRowBlock, false>(rows, &w[t], n, out, sq);
    }
  }
  for (; t < num_rows; ++t) {
    rows[0] = x.Row(t, scratch);
    if (rows[0] == nullptr) return RowNotReturned(t);
    if (sq != nullptr) {
      AccumulateRows<1, true>(rows, &w[t], n, out, sq);
    } else {
      AccumulateRows<1, false>(rows, &w[t], n, out, sq);
    }
  }
  for (int64_t k = 0; k < n; ++k) out[k] *= scale;
  return absl::OkStatus();
}

// Σ_t a[t] · b[t] with eight partial sums, so the loop is not bound by the latency of one add chain.
double Dot(const float* a, const double* b, int64_t n) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    for (int i = 0; i < 8; ++i) s[i] += static_cast<double>(a[t + i]) * b[t + i];
  }
  for (; t < n; ++t) s[0] += static_cast<double>(a[t]) * b[t];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double SoftThreshold(double z, double threshold) {
  if (z > threshold) return z - threshold;
  if (z < -threshold) return z + threshold;
  return 0;
}

// Columns of X gathered into column-major float storage, T floats per slot. Gathering reads each row
// once and only the requested entries of it (all of it for sources that decode rows).
class ColumnStore {
 public:
  ColumnStore(int64_t num_rows, int64_t num_cols) : num_rows_(num_rows), slot_of_col_(num_cols, -1) {}

  int64_t size() const { return static_cast<int64_t>(cols_.size()); }
  bool Has(int64_t col) const { return slot_of_col_[col] >= 0; }
  const float* Column(int64_t col) const { return data_.data() + slot_of_col_[col] * num_rows_; }

  void Clear() {
    for (int64_t col : cols_) slot_of_col_[col] = -1;
    cols_.clear();
    data_.clear();
  }

  // Appends the columns `cols` (not yet stored, ascending).
  absl::Status Gather(const RowSource& x, const std::vector<int64_t>& cols, float* scratch) {
    const int64_t first = size();
    data_.resize((first + static_cast<int64_t>(cols.size())) * num_rows_);
    for (size_t j = 0; j < cols.size(); ++j) {
      slot_of_col_[cols[j]] = first + static_cast<int64_t>(j);
      cols_.push_back(cols[j]);
    }
    for (int64_t t = 0; t < num_rows_; ++t) {
      const float* row = x.Row(t, scratch);
      if (row == nullptr) return RowNotReturned(t);
      float* dst = data_.data() + first * num_rows_ + t;
      for (size_t j = 0; j < cols.size(); ++j) dst[static_cast<int64_t>(j) * num_rows_] = row[cols[j]];
    }
    return absl::OkStatus();
  }

 private:
  int64_t num_rows_;
  std::vector<int64_t> slot_of_col_;  // -1 when not stored
  std::vector<int64_t> cols_;
  std::vector<float> data_;
};

struct GapParts {
  double primal = 0;
  double gap = 0;
  double dual_scale = 1;  // s in ν = s · r / T
};

// Duality gap of P at β with residual r, using the dual point ν = s·r/T rescaled into the feasible set
// {max_k |X_kᵀν| ≤ α}: D(ν) = ⟨y, ν⟩ − (T/2)‖ν‖². `max_abs_grad` = max over active k of |X_kᵀr| / T.
GapParts ComputeGap(double rr, double yr, double l1, double max_abs_grad, double alpha, int64_t num_rows) {
  GapParts g;
  const double t = static_cast<double>(num_rows);
  if (max_abs_grad > alpha) g.dual_scale = alpha / max_abs_grad;
  const double s = g.dual_scale;
  g.primal = rr / (2 * t) + alpha * l1;
  const double dual = s * yr / t - s * s * rr / (2 * t);
  g.gap = std::max(0.0, g.primal - dual);
  return g;
}

absl::Status ValidateOptions(const ExactLassoOptions& o, int64_t num_cols, const std::vector<uint8_t>& active) {
  if (!(o.tol >= 0) || !std::isfinite(o.tol)) {
    return absl::InvalidArgumentError(absl::StrCat("options.tol: ", o.tol, " is not a finite value >= 0"));
  }
  if (o.max_iterations < 1) {
    return absl::InvalidArgumentError(absl::StrCat("options.max_iterations: ", o.max_iterations, " < 1"));
  }
  if (o.max_epochs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("options.max_epochs: ", o.max_epochs, " < 1"));
  }
  if (o.initial_working_set < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("options.initial_working_set: ", o.initial_working_set, " < 1"));
  }
  if (o.max_working_set < 1) {
    return absl::InvalidArgumentError(absl::StrCat("options.max_working_set: ", o.max_working_set, " < 1"));
  }
  if (!o.warm_start.empty() && static_cast<int64_t>(o.warm_start.size()) != num_cols) {
    return absl::InvalidArgumentError(absl::StrCat("options.warm_start: ", o.warm_start.size(),
                                                   " values, expected x.num_cols() = ", num_cols));
  }
  for (size_t k = 0; k < o.warm_start.size(); ++k) {
    const float w = o.warm_start[k];
    if (!std::isfinite(w)) {
      return absl::InvalidArgumentError(absl::StrCat("options.warm_start[", k, "]: ", w, " is not finite"));
    }
    if (w != 0 && !active[k]) {
      return absl::InvalidArgumentError(
          absl::StrCat("options.warm_start[", k, "]: ", w, " on a frozen coordinate (must be 0)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Cancelled() { return absl::CancelledError("exact Lasso: stopped by should_stop"); }

// One solve: the mutable state of Solve(), kept out of the const ExactLasso so calls do not interfere.
class Solver {
 public:
  Solver(const RowSource& x, const std::vector<double>& y, const std::vector<uint8_t>& active,
         const std::vector<double>& col_sq_norms, double alpha, const ExactLassoOptions& options)
      : x_(x),
        y_(y),
        active_(active),
        col_sq_norms_(col_sq_norms),
        alpha_(alpha),
        options_(options),
        num_rows_(x.num_rows()),
        num_cols_(x.num_cols()),
        store_(num_rows_, num_cols_),
        beta_(num_cols_, 0.0),
        r_(y),
        grad_(num_cols_, 0.0),
        screened_(num_cols_, 0) {}

  // Runs the outer loop. `xty_over_t` is the gradient at β = 0, used when there is no warm start.
  absl::StatusOr<ExactLassoResult> Run(const std::vector<double>& xty_over_t, double gap_tolerance);

 private:
  absl::Status WarmStart();
  absl::Status GradientPass();
  // Gap of the full problem from grad_ (X_kᵀr/T for the current r) and the working set.
  GapParts GlobalGap() const;
  void Screen(const GapParts& g);
  // Picks the next working set into ws_ (ascending); gathers its missing columns.
  absl::Status SelectWorkingSet(const GapParts& g);
  // Coordinate descent on ws_ until its own gap is below tol_in, the iterate stops moving or the epoch
  // budget is spent. *moved tells whether any coefficient changed.
  absl::Status SolveSubproblem(double tol_in, bool* moved);
  void RecomputeResidual();
  float* RowScratch(int64_t rows);

  const RowSource& x_;
  const std::vector<double>& y_;
  const std::vector<uint8_t>& active_;
  const std::vector<double>& col_sq_norms_;
  const double alpha_;
  const ExactLassoOptions& options_;
  const int64_t num_rows_;
  const int64_t num_cols_;

  ColumnStore store_;
  std::vector<double> beta_;   // N; non-zero only inside ws_
  std::vector<double> r_;      // y − Xβ
  std::vector<double> grad_;   // X_kᵀr / T after the last pass
  std::vector<uint8_t> screened_;
  std::vector<int64_t> ws_;    // working set, ascending column indices
  int64_t ws_target_ = 0;
  std::unique_ptr<float[]> scratch_;
  int64_t scratch_rows_ = 0;
  ExactLassoResult result_;
};

float* Solver::RowScratch(int64_t rows) {
  if (scratch_rows_ < rows) {
    scratch_ = std::make_unique<float[]>(rows * num_cols_);
    scratch_rows_ = rows;
  }
  return scratch_.get();
}

absl::Status Solver::WarmStart() {
  const absl::Span<const float> w = options_.warm_start;
  for (int64_t k = 0; k < num_cols_; ++k) {
    // Validated by ValidateOptions(): finite, and 0 on frozen coordinates. A zero column's optimal
    // coefficient is 0 whatever the warm start says.
    if (w[k] == 0 || col_sq_norms_[k] == 0) continue;
    beta_[k] = w[k];
    ws_.push_back(k);
  }
  if (ws_.empty()) return absl::OkStatus();
  GCPRUNE_RETURN_IF_ERROR(store_.Gather(x_, ws_, RowScratch(1)));
  ++result_.gather_passes;
  RecomputeResidual();
  return absl::OkStatus();
}

absl::Status Solver::GradientPass() {
  GCPRUNE_RETURN_IF_ERROR(
      RowPass(x_, r_, 1.0 / static_cast<double>(num_rows_), grad_.data(), nullptr, RowScratch(kRowBlock)));
  ++result_.gradient_passes;
  return absl::OkStatus();
}

void Solver::RecomputeResidual() {
  r_ = y_;
  for (int64_t k : ws_) {
    if (beta_[k] == 0) continue;
    const float* xk = store_.Column(k);
    const double b = beta_[k];
    for (int64_t t = 0; t < num_rows_; ++t) r_[t] -= b * xk[t];
  }
}

GapParts Solver::GlobalGap() const {
  double max_abs_grad = 0;
  for (int64_t k = 0; k < num_cols_; ++k) {
    if (active_[k]) max_abs_grad = std::max(max_abs_grad, std::abs(grad_[k]));
  }
  double l1 = 0;
  for (int64_t k : ws_) l1 += std::abs(beta_[k]);
  double rr = 0, yr = 0;
  for (int64_t t = 0; t < num_rows_; ++t) {
    rr += r_[t] * r_[t];
    yr += y_[t] * r_[t];
  }
  return ComputeGap(rr, yr, l1, max_abs_grad, alpha_, num_rows_);
}

// Gap-safe sphere test (Fercoq, Gramfort & Salmon 2015), in this objective's units: D is T-strongly
// concave, so the optimal dual point lies within sqrt(2·gap/T) of ν, and feature k is zero at the optimum
// when |X_kᵀν| + sqrt(2·gap/T)·‖X_k‖ < α, i.e. α − s·|X_kᵀr|/T > sqrt(2·gap/T)·‖X_k‖.
void Solver::Screen(const GapParts& g) {
  const double radius = std::sqrt(2 * g.gap / static_cast<double>(num_rows_));
  for (int64_t k = 0; k < num_cols_; ++k) {
    if (!active_[k] || screened_[k] || beta_[k] != 0) continue;
    const double slack = alpha_ - g.dual_scale * std::abs(grad_[k]);
    if (slack > radius * std::sqrt(col_sq_norms_[k]) * (1 + kScreenSlack) + kScreenSlack * alpha_) {
      screened_[k] = 1;
    }
  }
}

absl::Status Solver::SelectWorkingSet(const GapParts& g) {
  // Candidates are ranked by the distance of ν to their dual constraint, (α − s|X_kᵀr|/T) / ‖X_k‖
  // (Celer's rule): the closer, the likelier the feature enters. The support always stays in.
  struct Candidate {
    double distance;
    double closeness;  // tie-break (e.g. at α = 0): larger normalised gradient first
    int64_t col;
    bool operator<(const Candidate& o) const {
      if (distance != o.distance) return distance < o.distance;
      if (closeness != o.closeness) return closeness > o.closeness;
      return col < o.col;
    }
  };
  std::vector<int64_t> support;
  std::vector<Candidate> candidates;
  for (int64_t k = 0; k < num_cols_; ++k) {
    if (!active_[k] || screened_[k] || col_sq_norms_[k] == 0) continue;
    if (beta_[k] != 0) {
      support.push_back(k);
      continue;
    }
    const double norm = std::sqrt(col_sq_norms_[k]);
    const double grad = std::abs(grad_[k]);
    candidates.push_back({(alpha_ - g.dual_scale * grad) / norm, grad / norm, k});
  }
  const int64_t num_support = static_cast<int64_t>(support.size());
  const int64_t limit = std::min<int64_t>(num_support + static_cast<int64_t>(candidates.size()),
                                          std::max(options_.max_working_set, num_support));
  int64_t target = std::max({options_.initial_working_set, 2 * num_support, ws_target_});
  std::vector<int64_t> next;
  for (;;) {
    target = std::min(target, limit);
    const int64_t extra = target - num_support;
    if (extra < static_cast<int64_t>(candidates.size())) {
      std::nth_element(candidates.begin(), candidates.begin() + extra, candidates.end());
    }
    next = support;
    for (int64_t i = 0; i < extra; ++i) next.push_back(candidates[i].col);
    std::sort(next.begin(), next.end());
    // The same working set again would reproduce the same subproblem: grow it instead.
    if (next != ws_ || target >= limit) break;
    target *= 2;
  }
  ws_target_ = target;
  ws_ = std::move(next);

  std::vector<int64_t> missing;
  for (int64_t k : ws_) {
    if (!store_.Has(k)) missing.push_back(k);
  }
  if (missing.empty()) return absl::OkStatus();
  if (store_.size() + static_cast<int64_t>(missing.size()) > options_.max_working_set) {
    // Columns left over from earlier working sets would exceed the memory cap: keep only this one.
    store_.Clear();
    missing = ws_;
  }
  GCPRUNE_RETURN_IF_ERROR(store_.Gather(x_, missing, RowScratch(1)));
  ++result_.gather_passes;
  return absl::OkStatus();
}

absl::Status Solver::SolveSubproblem(double tol_in, bool* moved) {
  *moved = false;
  const double t = static_cast<double>(num_rows_);
  const int64_t w = static_cast<int64_t>(ws_.size());
  std::vector<const float*> cols(w);
  std::vector<double> lipschitz(w);  // ‖X_k‖² / T
  for (int64_t j = 0; j < w; ++j) {
    cols[j] = store_.Column(ws_[j]);
    lipschitz[j] = col_sq_norms_[ws_[j]] / t;
  }
  for (int64_t epoch = 1; result_.epochs < options_.max_epochs; ++epoch) {
    double max_delta = 0, max_beta = 0;
    for (int64_t j = 0; j < w; ++j) {
      double& b = beta_[ws_[j]];
      const double old = b;
      const double rho = Dot(cols[j], r_.data(), num_rows_) / t + lipschitz[j] * old;
      b = SoftThreshold(rho, alpha_) / lipschitz[j];
      max_beta = std::max(max_beta, std::abs(b));
      if (b == old) continue;
      const double delta = b - old;
      max_delta = std::max(max_delta, std::abs(delta));
      const float* xk = cols[j];
      for (int64_t s = 0; s < num_rows_; ++s) r_[s] -= delta * xk[s];
    }
    ++result_.epochs;
    const bool stalled = max_delta == 0;
    if (!stalled) *moved = true;
    if (!stalled && !IsGapCheckEpoch(epoch) && max_delta > options_.tol * max_beta) continue;
    if (options_.should_stop && options_.should_stop()) return Cancelled();
    double max_abs_grad = 0, l1 = 0, rr = 0, yr = 0;
    for (int64_t j = 0; j < w; ++j) {
      max_abs_grad = std::max(max_abs_grad, std::abs(Dot(cols[j], r_.data(), num_rows_)) / t);
      l1 += std::abs(beta_[ws_[j]]);
    }
    for (int64_t s = 0; s < num_rows_; ++s) {
      rr += r_[s] * r_[s];
      yr += y_[s] * r_[s];
    }
    if (stalled || ComputeGap(rr, yr, l1, max_abs_grad, alpha_, num_rows_).gap <= tol_in) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<ExactLassoResult> Solver::Run(const std::vector<double>& xty_over_t, double gap_tolerance) {
  result_.gap_tolerance = gap_tolerance;
  bool have_gradient = false;
  if (!options_.warm_start.empty()) GCPRUNE_RETURN_IF_ERROR(WarmStart());
  if (ws_.empty()) {
    grad_ = xty_over_t;
    have_gradient = true;
  }
  for (;;) {
    if (!have_gradient) GCPRUNE_RETURN_IF_ERROR(GradientPass());
    have_gradient = false;
    const GapParts g = GlobalGap();
    result_.objective = g.primal;
    result_.duality_gap = g.gap;
    // Like scikit-learn, which makes at least one epoch, solve at least one subproblem: near α_max the
    // gap of β = 0 is already below loose tolerances although β = 0 is not the solution.
    if (g.gap <= gap_tolerance && result_.iterations > 0) {
      result_.converged = true;
      break;
    }
    if (result_.iterations >= options_.max_iterations || result_.epochs >= options_.max_epochs) break;
    if (options_.should_stop && options_.should_stop()) return Cancelled();
    Screen(g);
    const std::vector<int64_t> old_ws = ws_;
    GCPRUNE_RETURN_IF_ERROR(SelectWorkingSet(g));
    ++result_.iterations;
    bool moved = false;
    GCPRUNE_RETURN_IF_ERROR(SolveSubproblem(kInnerTolFraction * gap_tolerance, &moved));
    // At the rounding floor nothing moves any more; another pass would give the same gap.
    if (!moved && ws_ == old_ws) {
      result_.converged = g.gap <= gap_tolerance;
      break;
    }
    RecomputeResidual();
  }
  result_.beta.assign(num_cols_, 0.0f);
  for (int64_t k : ws_) {
    result_.beta[k] = static_cast<float>(beta_[k]);
    if (beta_[k] != 0) ++result_.num_nonzero;
  }
  result_.working_set_size = static_cast<int64_t>(ws_.size());
  result_.num_screened = std::count(screened_.begin(), screened_.end(), uint8_t{1});
  return std::move(result_);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExactLasso>> ExactLasso::Create(const RowSource* x, absl::Span<const float> y,
                                                               absl::Span<const uint8_t> active) {
  if (x == nullptr) return absl::InvalidArgumentError("x: null");
  const int64_t num_rows = x->num_rows();
  const int64_t num_cols = x->num_cols();
  if (num_rows < 1) return absl::InvalidArgumentError(absl::StrCat("x: num_rows() = ", num_rows, ", need >= 1"));
  if (num_cols < 0) return absl::InvalidArgumentError(absl::StrCat("x: num_cols() = ", num_cols, " < 0"));
  if (static_cast<int64_t>(y.size()) != num_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("y: ", y.size(), " values, expected x.num_rows() = ", num_rows));
  }
  if (static_cast<int64_t>(active.size()) != num_cols) {
    return absl::InvalidArgumentError(
        absl::StrCat("active: ", active.size(), " values, expected x.num_cols() = ", num_cols));
  }
  auto lasso = std::unique_ptr<ExactLasso>(new ExactLasso());
  lasso->x_ = x;
  lasso->num_rows_ = num_rows;
  lasso->num_cols_ = num_cols;
  lasso->y_.resize(num_rows);
  for (int64_t t = 0; t < num_rows; ++t) {
    if (!std::isfinite(y[t])) {
      return absl::InvalidArgumentError(absl::StrCat("y[", t, "]: ", y[t], " is not finite"));
    }
    lasso->y_[t] = y[t];
    lasso->yy_ += lasso->y_[t] * lasso->y_[t];
  }
  lasso->active_.assign(active.begin(), active.end());
  lasso->col_sq_norms_.resize(num_cols);
  lasso->xty_over_t_.resize(num_cols);
  auto scratch = std::make_unique<float[]>(kRowBlock * num_cols);
  GCPRUNE_RETURN_IF_ERROR(RowPass(*x, lasso->y_, 1.0 / static_cast<double>(num_rows), lasso->xty_over_t_.data(),
                                  lasso->col_sq_norms_.data(), scratch.get()));
  for (int64_t k = 0; k < num_cols; ++k) {
    if (!active[k]) continue;
    if (!std::isfinite(lasso->col_sq_norms_[k])) {
      return absl::InvalidArgumentError(
          absl::StrCat("x: column ", k, " (active) holds a non-finite value"));
    }
    lasso->alpha_max_ = std::max(lasso->alpha_max_, std::abs(lasso->xty_over_t_[k]));
  }
  return lasso;
}

absl::StatusOr<ExactLassoResult> ExactLasso::Solve(double alpha, const ExactLassoOptions& options) const {
  if (!(alpha >= 0) || !std::isfinite(alpha)) {
    return absl::InvalidArgumentError(absl::StrCat("alpha: ", alpha, " is not a finite value >= 0"));
  }
  GCPRUNE_RETURN_IF_ERROR(ValidateOptions(options, num_cols_, active_));
  const double gap_tolerance = options.tol * yy_ / static_cast<double>(num_rows_);
  if (alpha >= alpha_max_) {
    // 0 ∈ ∂P(0): β = 0 is the solution and the gap is exactly 0.
    ExactLassoResult result;
    result.beta.assign(num_cols_, 0.0f);
    result.objective = yy_ / (2 * static_cast<double>(num_rows_));
    result.gap_tolerance = gap_tolerance;
    result.converged = true;
    return result;
  }
  Solver solver(*x_, y_, active_, col_sq_norms_, alpha, options);
  return solver.Run(xty_over_t_, gap_tolerance);
}

absl::StatusOr<ExactLassoResult> SolveExactLasso(const RowSource& x, absl::Span<const float> y,
                                                 absl::Span<const uint8_t> active, double alpha,
                                                 const ExactLassoOptions& options) {
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<ExactLasso> lasso, ExactLasso::Create(&x, y, active));
  return lasso->Solve(alpha, options);
}

absl::StatusOr<double> ComputeLassoAlphaMax(const RowSource& x, absl::Span<const float> y,
                                            absl::Span<const uint8_t> active) {
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<ExactLasso> lasso, ExactLasso::Create(&x, y, active));
  return lasso->alpha_max();
}

}  // namespace gcprune::pruner
