// Exact Lasso at LeNet-5 scale (T = 235 samples, one Fashion-MNIST epoch at batch 256; N = 430,500 prunable
// weights): the one-pass set-up, a cold solve at an α that keeps a few dozen coefficients, and a warm path.
// Run: build-*/bench/exact_lasso_bench [--benchmark_filter=...]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "pruner_service/causal/exact_lasso.h"

namespace gcprune::pruner {
namespace {

constexpr int64_t kRows = 235;
constexpr int64_t kCols = 430'500;
// LeNet-5's prunable tensors, in layout order (conv1, conv2, fc1, fc2).
constexpr int64_t kLayerSizes[] = {500, 25'000, 400'000, 5'000};
constexpr double kLayerGradScale[] = {3.0, 1.0, 0.3, 2.0};
constexpr double kEta = 1e-3;

class DenseRows : public RowSource {
 public:
  DenseRows(int64_t rows, int64_t cols, std::vector<float> data)
      : rows_(rows), cols_(cols), data_(std::move(data)) {}
  int64_t num_rows() const override { return rows_; }
  int64_t num_cols() const override { return cols_; }
  const float* Row(int64_t t, float* /*scratch*/) const override { return data_.data() + t * cols_; }

 private:
  int64_t rows_, cols_;
  std::vector<float> data_;
};

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return (static_cast<double>(Next() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  double Normal() {
    return std::sqrt(-2 * std::log(Uniform())) * std::cos(6.283185307179586 * Uniform());
  }

 private:
  uint64_t state_;
};

struct Data {
  std::unique_ptr<DenseRows> x;
  std::vector<float> y;
  std::vector<uint8_t> active;
  std::unique_ptr<ExactLasso> lasso;
  double alpha = 0;         // keeps a few dozen (>= 30) coefficients
  double alpha_dense = 0;   // keeps >= 150 coefficients, close to the T = 235 limit: the hard end
};

// Causal samples as the sample store holds them (V2 normalisation): x_tk = Δθ_tk² / η² with
// Δθ = −η·g, so x = g²; g_tk = b_t · s_k · h_tk with a per-batch gradient scale b_t (log-normal: some
// batches have larger losses, which makes all columns correlate), per-weight scales s_k (log-normal around
// a per-layer scale) and a heavy-tailed, symmetric h (Pareto tails of index 3, like a Student-t(3)). The
// loss change is ΔL_t ≈ −η Σ_k g² (1 + curvature noise) + batch noise: negative; Y = ΔL / mean(ΔL).
const Data& LeNetScaleData() {
  static const Data* data = [] {
    auto* d = new Data;
    SplitMix64 rng(314159);
    std::vector<double> scale(kCols);
    int64_t k = 0;
    for (int layer = 0; layer < 4; ++layer) {
      for (int64_t i = 0; i < kLayerSizes[layer]; ++i) scale[k++] = kLayerGradScale[layer] * std::exp(0.7 * rng.Normal());
    }
    std::vector<double> curvature(kCols);
    for (double& c : curvature) c = 1 + 0.5 * (rng.Uniform() - 0.5);
    std::vector<double> batch_scale(kRows);
    for (double& b : batch_scale) b = std::exp(0.3 * rng.Normal());
    std::vector<float> x(kRows * kCols);
    std::vector<double> loss_change(kRows);
    for (int64_t t = 0; t < kRows; ++t) {
      double sum = 0;
      float* row = x.data() + t * kCols;
      for (int64_t j = 0; j < kCols; ++j) {
        const double u = rng.Uniform();
        // |h| = u^(-1/3) − 1: P(|h| > a) = (1 + a)^-3.
        const double h = (1 / std::cbrt(u) - 1) * ((rng.Next() & 1) ? 1.0 : -1.0);
        const double g = batch_scale[t] * scale[j] * h;
        row[j] = static_cast<float>(g * g);
        sum += row[j] * curvature[j];
      }
      loss_change[t] = -kEta * sum * (1 + 0.1 * rng.Normal());
    }
    double mean = 0;
    for (double v : loss_change) mean += v / kRows;
    d->y.resize(kRows);
    for (int64_t t = 0; t < kRows; ++t) d->y[t] = static_cast<float>(loss_change[t] / mean);
    d->active.assign(kCols, 1);
    d->x = std::make_unique<DenseRows>(kRows, kCols, std::move(x));
    auto lasso = ExactLasso::Create(d->x.get(), d->y, d->active);
    if (!lasso.ok()) {
      std::fprintf(stderr, "ExactLasso::Create: %s\n", lasso.status().ToString().c_str());
      std::abort();
    }
    d->lasso = std::move(lasso).value();
    // Walk down a coarse path (warm starts, loose tolerance) to the first α with >= 30 and >= 150
    // non-zeros.
    ExactLassoOptions options;
    options.tol = 1e-3;
    std::vector<float> warm;
    double alpha = d->lasso->alpha_max();
    for (int step = 0; step < 200 && d->alpha_dense == 0; ++step) {
      alpha *= 0.8;
      options.warm_start = warm;
      auto r = d->lasso->Solve(alpha, options);
      if (!r.ok()) std::abort();
      warm = r->beta;
      if (r->num_nonzero >= 30 && d->alpha == 0) d->alpha = alpha;
      if (r->num_nonzero >= 150) d->alpha_dense = alpha;
    }
    if (d->alpha_dense == 0) std::abort();
    std::fprintf(stderr, "data: T=%lld N=%lld alpha_max=%.6g alpha=%.6g (%.4g alpha_max) dense %.6g (%.4g)\n",
                 static_cast<long long>(kRows), static_cast<long long>(kCols), d->lasso->alpha_max(), d->alpha,
                 d->alpha / d->lasso->alpha_max(), d->alpha_dense, d->alpha_dense / d->lasso->alpha_max());
    return d;
  }();
  return *data;
}

// Largest violation of the optimality conditions, relative to α, recomputed naively in double from the
// returned (float) β: max over k of |X_kᵀr/T| − α where β_k = 0, |X_kᵀr/T − α·sign(β_k)| elsewhere.
double KktViolation(const Data& d, const std::vector<float>& beta, double alpha) {
  std::vector<double> r(d.y.begin(), d.y.end());
  std::vector<int64_t> support;
  for (int64_t k = 0; k < kCols; ++k) {
    if (beta[k] != 0) support.push_back(k);
  }
  std::vector<double> grad(kCols, 0.0);
  for (int64_t t = 0; t < kRows; ++t) {
    const float* row = d.x->Row(t, nullptr);
    for (int64_t k : support) r[t] -= static_cast<double>(row[k]) * beta[k];
    for (int64_t k = 0; k < kCols; ++k) grad[k] += row[k] * r[t] / kRows;
  }
  double worst = 0;
  for (int64_t k = 0; k < kCols; ++k) {
    const double v = beta[k] == 0 ? std::abs(grad[k]) - alpha : std::abs(grad[k] - std::copysign(alpha, beta[k]));
    worst = std::max(worst, v);
  }
  return worst / alpha;
}

void ReportResult(benchmark::State& state, const ExactLassoResult& r) {
  state.counters["nnz"] = static_cast<double>(r.num_nonzero);
  state.counters["iterations"] = r.iterations;
  state.counters["epochs"] = static_cast<double>(r.epochs);
  state.counters["grad_passes"] = static_cast<double>(r.gradient_passes);
  state.counters["gather_passes"] = static_cast<double>(r.gather_passes);
  state.counters["ws"] = static_cast<double>(r.working_set_size);
  state.counters["screened"] = static_cast<double>(r.num_screened);
  state.counters["rel_gap"] = r.gap_tolerance > 0 ? r.duality_gap / r.gap_tolerance : 0;
  state.counters["converged"] = r.converged ? 1 : 0;
}

// The set-up pass: column norms and Xᵀy over the ~400 MB of samples (one gradient pass's worth of work).
void BM_ExactLassoCreate(benchmark::State& state) {
  const Data& d = LeNetScaleData();
  for (auto _ : state) {
    auto lasso = ExactLasso::Create(d.x.get(), d.y, d.active);
    benchmark::DoNotOptimize(lasso);
  }
  state.SetBytesProcessed(state.iterations() * kRows * kCols * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_ExactLassoCreate)->Unit(benchmark::kMillisecond)->Iterations(3);

// Cold solve to tol = 10^-range(0), at the few-dozen α (range(1) = 0) or the dense α (range(1) = 1).
void BM_ExactLassoSolveCold(benchmark::State& state) {
  const Data& d = LeNetScaleData();
  ExactLassoOptions options;
  options.tol = std::pow(10.0, -static_cast<double>(state.range(0)));
  const double alpha = state.range(1) == 0 ? d.alpha : d.alpha_dense;
  ExactLassoResult last;
  for (auto _ : state) {
    auto r = d.lasso->Solve(alpha, options);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    last = *std::move(r);
  }
  ReportResult(state, last);
  state.counters["kkt_rel"] = KktViolation(d, last.beta, alpha);
}
BENCHMARK(BM_ExactLassoSolveCold)
    ->ArgNames({"tol_exp", "dense"})
    ->Args({4, 0})
    ->Args({8, 0})
    ->Args({4, 1})
    ->Args({8, 1})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// A path of 10 α from 0.9 α_max down to the benchmark α, geometrically spaced, each warm-started from the
// previous solution, tol = 1e-4; counters are those of the last solve.
void BM_ExactLassoWarmPath(benchmark::State& state) {
  const Data& d = LeNetScaleData();
  constexpr int kSteps = 10;
  const double ratio = std::pow(d.alpha / (0.9 * d.lasso->alpha_max()), 1.0 / (kSteps - 1));
  ExactLassoResult last;
  int64_t total_passes = 0;
  for (auto _ : state) {
    std::vector<float> warm;
    double alpha = 0.9 * d.lasso->alpha_max();
    total_passes = 0;
    for (int i = 0; i < kSteps; ++i, alpha *= ratio) {
      ExactLassoOptions options;
      options.warm_start = warm;
      auto r = d.lasso->Solve(alpha, options);
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        return;
      }
      last = *std::move(r);
      warm = last.beta;
      total_passes += last.gradient_passes + last.gather_passes;
    }
  }
  ReportResult(state, last);
  state.counters["path_passes"] = static_cast<double>(total_passes);
}
BENCHMARK(BM_ExactLassoWarmPath)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace gcprune::pruner

BENCHMARK_MAIN();
