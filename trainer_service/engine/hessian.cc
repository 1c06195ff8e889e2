// Hessian-vector products by central differences and the Lanczos eigen-solver on them (see hessian.h).
#include "trainer_service/engine/hessian.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

constexpr int kMaxBatch = 65536;
constexpr int kMaxLanczosSteps = 1000;
constexpr int kMaxQlSweeps = 60;

double Dot(absl::Span<const double> a, absl::Span<const double> b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// x ← x − c·y
void SubtractScaled(double c, absl::Span<const double> y, absl::Span<double> x) {
  for (size_t i = 0; i < x.size(); ++i) x[i] -= c * y[i];
}

int64_t TotalElements(const std::vector<Parameter*>& params) {
  int64_t total = 0;
  for (const Parameter* param : params) total += param->numel;
  return total;
}

absl::Status CheckVectorOptions(const HessianVectorOptions& options) {
  if (!std::isfinite(options.epsilon) || !(options.epsilon > 0.0)) {
    return absl::InvalidArgumentError(absl::StrCat("hvp.epsilon: must be finite and > 0, got ", options.epsilon));
  }
  if (options.batch_size < 1 || options.batch_size > kMaxBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("hvp.batch_size: must be in [1, ", kMaxBatch, "], got ", options.batch_size));
  }
  if (options.subspace != HessianSubspace::kAllParameters && options.subspace != HessianSubspace::kUnpruned) {
    return absl::InvalidArgumentError(
        absl::StrCat("hvp.subspace: unknown value ", static_cast<int>(options.subspace)));
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(const HessianOptions& options) {
  GCPRUNE_RETURN_IF_ERROR(CheckVectorOptions(options.hvp));
  if (options.max_iterations < 1 || options.max_iterations > kMaxLanczosSteps) {
    return absl::InvalidArgumentError(absl::StrCat("max_iterations: must be in [1, ", kMaxLanczosSteps, "], got ",
                                                   options.max_iterations));
  }
  if (options.num_eigenvalues < 1 || options.num_eigenvalues > options.max_iterations) {
    return absl::InvalidArgumentError(absl::StrCat("num_eigenvalues: must be in [1, max_iterations = ",
                                                   options.max_iterations, "], got ", options.num_eigenvalues));
  }
  if (!std::isfinite(options.tolerance) || options.tolerance < 0.0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tolerance: must be finite and >= 0, got ", options.tolerance));
  }
  return absl::OkStatus();
}

// A standard normal number from two uniform draws (Box–Muller).
double Gaussian(SplitMix64* rng) {
  constexpr double kScale = 1.0 / 9007199254740992.0;  // 2^-53
  const double u1 = (static_cast<double>(rng->Next() >> 11) + 0.5) * kScale;
  const double u2 = static_cast<double>(rng->Next() >> 11) * kScale;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace

absl::string_view HessianSubspaceName(HessianSubspace subspace) {
  switch (subspace) {
    case HessianSubspace::kAllParameters:
      return "all";
    case HessianSubspace::kUnpruned:
      return "unpruned";
  }
  return "unknown";
}

absl::StatusOr<double> DatasetLossAndGradient(Model* model, const Dataset& data, int batch_size,
                                              std::vector<double>* gradient) {
  if (batch_size < 1 || batch_size > kMaxBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size: must be in [1, ", kMaxBatch, "], got ", batch_size));
  }
  if (data.size <= 0) return absl::InvalidArgumentError("data: empty data set");
  if (data.image_numel() != model->input_numel() ||
      data.images.size() != static_cast<size_t>(data.size * data.image_numel()) ||
      data.labels.size() != static_cast<size_t>(data.size)) {
    return absl::InvalidArgumentError(absl::StrCat("data: ", data.size, " examples of ", data.channels, "x",
                                                   data.height, "x", data.width, " do not fit the model's input of ",
                                                   model->input_numel(), " values"));
  }
  const std::vector<Parameter*>& params = model->parameters();
  gradient->assign(static_cast<size_t>(TotalElements(params)), 0.0);
  BatchIterator batches(data, batch_size, /*shuffle=*/false, 0, 0);
  std::vector<float> images;
  std::vector<int32_t> labels;
  double loss_sum = 0.0;
  for (int n = batches.Next(&images, &labels); n > 0; n = batches.Next(&images, &labels)) {
    GCPRUNE_ASSIGN_OR_RETURN(const float loss, model->ForwardBackward(images, labels));
    loss_sum += static_cast<double>(loss) * n;
    double* out = gradient->data();
    for (const Parameter* param : params) {
      for (int64_t i = 0; i < param->numel; ++i) out[i] += static_cast<double>(param->grad[i]) * n;
      out += param->numel;
    }
  }
  const double inverse = 1.0 / static_cast<double>(data.size);
  for (double& g : *gradient) g *= inverse;
  return loss_sum * inverse;
}

HessianVectorProduct::HessianVectorProduct(Model* model, const Dataset* data, const HessianVectorOptions& options)
    : model_(model), data_(data), options_(options), snapshot_(model->Snapshot()) {}

HessianVectorProduct::~HessianVectorProduct() {
  // The snapshot was taken from this model, so restoring it cannot fail.
  (void)model_->Restore(snapshot_);
}

absl::StatusOr<std::unique_ptr<HessianVectorProduct>> HessianVectorProduct::Create(
    Model* model, const Dataset* data, const HessianVectorOptions& options) {
  GCPRUNE_RETURN_IF_ERROR(CheckVectorOptions(options));
  std::unique_ptr<HessianVectorProduct> hvp(new HessianVectorProduct(model, data, options));
  const bool all = options.subspace == HessianSubspace::kAllParameters;
  if (all) model->ClearMasks();
  for (const Parameter* param : model->parameters()) {
    for (int64_t i = 0; i < param->numel; ++i) {
      const bool free = all || param->mask == nullptr || param->mask[i] != 0;
      hvp->free_.push_back(free ? 1 : 0);
      hvp->dimension_ += free ? 1 : 0;
    }
  }
  std::vector<double> gradient;
  GCPRUNE_ASSIGN_OR_RETURN(hvp->loss_, DatasetLossAndGradient(model, *data, options.batch_size, &gradient));
  double norm2 = 0.0;
  for (size_t i = 0; i < gradient.size(); ++i) norm2 += hvp->free_[i] ? gradient[i] * gradient[i] : 0.0;
  hvp->gradient_norm_ = std::sqrt(norm2);
  return hvp;
}

void HessianVectorProduct::ResetParameters() {
  const std::vector<Parameter*>& params = model_->parameters();
  for (size_t p = 0; p < params.size(); ++p) {
    std::copy(snapshot_.values[p].begin(), snapshot_.values[p].end(), params[p]->data);
  }
}

absl::Status HessianVectorProduct::GradientAt(absl::Span<const double> v, double step,
                                              std::vector<double>* gradient) {
  const std::vector<Parameter*>& params = model_->parameters();
  size_t k = 0;
  for (size_t p = 0; p < params.size(); ++p) {
    const std::vector<float>& base = snapshot_.values[p];
    for (int64_t i = 0; i < params[p]->numel; ++i, ++k) {
      params[p]->data[i] = free_[k] ? static_cast<float>(static_cast<double>(base[i]) + step * v[k]) : base[i];
    }
  }
  return DatasetLossAndGradient(model_, *data_, options_.batch_size, gradient).status();
}

absl::Status HessianVectorProduct::Apply(absl::Span<const double> v, absl::Span<double> hv) {
  if (static_cast<int64_t>(v.size()) != size() || static_cast<int64_t>(hv.size()) != size()) {
    return absl::InvalidArgumentError(absl::StrCat("v and hv: need ", size(), " entries each, got ", v.size(),
                                                   " and ", hv.size()));
  }
  double norm2 = 0.0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) return absl::InvalidArgumentError(absl::StrCat("v[", i, "]: not finite: ", v[i]));
    if (free_[i]) norm2 += v[i] * v[i];
  }
  if (norm2 == 0.0) {
    std::fill(hv.begin(), hv.end(), 0.0);
    return absl::OkStatus();
  }
  const double step = options_.epsilon / std::sqrt(norm2);
  absl::Status status = GradientAt(v, step, &plus_);
  if (status.ok()) status = GradientAt(v, -step, &minus_);
  ResetParameters();
  GCPRUNE_RETURN_IF_ERROR(status);
  ++products_;
  const double scale = 0.5 / step;
  for (size_t i = 0; i < hv.size(); ++i) hv[i] = free_[i] ? (plus_[i] - minus_[i]) * scale : 0.0;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> TridiagonalEigenvalues(std::vector<double> diagonal,
                                                           std::vector<double> off_diagonal,
                                                           std::vector<double>* last_components) {
  const int n = static_cast<int>(diagonal.size());
  if (n == 0 || off_diagonal.size() + 1 != diagonal.size()) {
    return absl::InvalidArgumentError(absl::StrCat("tridiagonal: need n >= 1 diagonal and n - 1 off-diagonal entries, got ",
                                                   diagonal.size(), " and ", off_diagonal.size()));
  }
  for (double x : diagonal) {
    if (!std::isfinite(x)) return absl::InvalidArgumentError(absl::StrCat("tridiagonal: diagonal entry ", x));
  }
  for (double x : off_diagonal) {
    if (!std::isfinite(x)) return absl::InvalidArgumentError(absl::StrCat("tridiagonal: off-diagonal entry ", x));
  }
  std::vector<double>& d = diagonal;
  std::vector<double> e = std::move(off_diagonal);
  e.push_back(0.0);
  // Only the last row of the eigenvector matrix is needed: each rotation mixes two columns row by row.
  std::vector<double> z(static_cast<size_t>(n), 0.0);
  z[static_cast<size_t>(n - 1)] = 1.0;
  constexpr double kEps = 2.220446049250313e-16;
  for (int l = 0; l < n; ++l) {
    for (int sweep = 0;; ++sweep) {
      int m = l;
      for (; m < n - 1; ++m) {
        const double dd = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(e[m]) <= kEps * dd) break;
      }
      if (m == l) break;
      if (sweep == kMaxQlSweeps) {
        return absl::InvalidArgumentError(
            absl::StrCat("tridiagonal: the QL iteration did not converge for eigenvalue ", l, " of ", n));
      }
      double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
      double s = 1.0, c = 1.0, p = 0.0;
      bool underflow = false;
      for (int i = m - 1; i >= l; --i) {
        const double f = s * e[i];
        const double b = c * e[i];
        r = std::hypot(f, g);
        e[i + 1] = r;
        if (r == 0.0) {  // recover from underflow: deflate and sweep again
          d[i + 1] -= p;
          e[m] = 0.0;
          underflow = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2.0 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        const double zi1 = z[i + 1];
        z[i + 1] = s * z[i] + c * zi1;
        z[i] = c * z[i] - s * zi1;
      }
      if (underflow) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0.0;
    }
  }
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return d[a] < d[b]; });
  std::vector<double> values;
  values.reserve(order.size());
  if (last_components != nullptr) last_components->clear();
  for (int i : order) {
    values.push_back(d[i]);
    if (last_components != nullptr) last_components->push_back(z[i]);
  }
  return values;
}

absl::StatusOr<HessianSpectrum> TopHessianEigenvalues(Model* model, const Dataset& data,
                                                      const HessianOptions& options) {
  GCPRUNE_RETURN_IF_ERROR(CheckOptions(options));
  const auto start = std::chrono::steady_clock::now();
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<HessianVectorProduct> hvp,
                           HessianVectorProduct::Create(model, &data, options.hvp));
  const std::vector<uint8_t>& free = hvp->free();
  const size_t size = free.size();
  HessianSpectrum result;
  result.subspace = options.hvp.subspace;
  result.dimension = hvp->dimension();
  result.loss = hvp->loss();
  result.gradient_norm = hvp->gradient_norm();
  if (result.dimension == 0) {
    return absl::InvalidArgumentError("model: no free parameter (every weight is pruned and there is no bias)");
  }
  const int max_steps = static_cast<int>(std::min<int64_t>(options.max_iterations, result.dimension));

  std::vector<std::vector<double>> basis;
  basis.reserve(static_cast<size_t>(max_steps));
  std::vector<double> q(size, 0.0);
  SplitMix64 rng(options.seed);
  for (size_t i = 0; i < size; ++i) q[i] = free[i] ? Gaussian(&rng) : 0.0;
  const double q_norm = std::sqrt(Dot(q, q));
  for (double& x : q) x /= q_norm;

  std::vector<double> alpha, beta;  // T's diagonal and off-diagonal
  std::vector<double> w(size);
  std::vector<double> ritz, last;
  const size_t wanted = static_cast<size_t>(options.num_eigenvalues);
  for (int j = 0; j < max_steps; ++j) {
    basis.push_back(q);
    GCPRUNE_RETURN_IF_ERROR(hvp->Apply(basis.back(), absl::MakeSpan(w)));
    const double a = Dot(basis.back(), w);
    alpha.push_back(a);
    SubtractScaled(a, basis.back(), absl::MakeSpan(w));
    if (j > 0) SubtractScaled(beta.back(), basis[basis.size() - 2], absl::MakeSpan(w));
    // Full reorthogonalisation, twice ("twice is enough"): the finite-difference products are not exactly
    // symmetric, and the plain recurrence loses orthogonality as soon as a Ritz value converges.
    for (int pass = 0; pass < 2; ++pass) {
      for (const std::vector<double>& b : basis) SubtractScaled(Dot(b, w), b, absl::MakeSpan(w));
    }
    const double b = std::sqrt(Dot(w, w));
    GCPRUNE_ASSIGN_OR_RETURN(ritz, TridiagonalEigenvalues(alpha, beta, &last));
    result.iterations = j + 1;
    // Ritz values come ascending; the wanted ones are at the end.
    const size_t count = std::min(wanted, ritz.size());
    double scale = 0.0;
    for (double x : ritz) scale = std::max(scale, std::fabs(x));
    bool converged = ritz.size() >= wanted;
    result.eigenvalues.clear();
    result.residuals.clear();
    for (size_t i = 0; i < count; ++i) {
      const size_t r = ritz.size() - 1 - i;
      const double residual = std::fabs(b * last[r]);
      result.eigenvalues.push_back(ritz[r]);
      result.residuals.push_back(residual);
      if (residual > options.tolerance * std::fabs(ritz[r])) converged = false;
    }
    // An invariant subspace (β ≈ 0) or an exhausted space makes the Ritz values exact.
    const bool exhausted = b <= 1e-12 * std::max(scale, 1e-300) || j + 1 == result.dimension;
    if (exhausted) {
      result.converged = true;
      break;
    }
    if (converged) {
      result.converged = true;
      break;
    }
    beta.push_back(b);
    for (size_t i = 0; i < size; ++i) q[i] = w[i] / b;
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace gcprune::trainer
