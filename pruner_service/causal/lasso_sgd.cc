// LassoSGD for V2 (global, minibatches) and V1 (per layer, per sample) on one shared engine.
//
// Memory traffic is the cost that matters at LeNet-5 scale (T = 235, N = 430,500: 405 MB of float32
// samples, 202 MB of bfloat16). A minibatch needs two passes over its rows, because the gradient
// Σ_i r_i x_i needs every residual r_i = x_i·β − Y_i, and r_i needs the whole row: no blocking of the
// columns lets a block's gradient start before all of a row's dot product is done. The second pass is
// cheap only if it finds the rows in cache. A whole minibatch does not fit: 16 rows are 27.5 MB as
// float32 and 13.8 MB as bfloat16, plus 3.4 MB of β and q, against a 32 MB L3 (lscpu) of which a
// thread keeps 14–20 MB on a shared machine (measured: reading 14 MB twice runs at L3 speed, 20 MB at
// DRAM speed). But residuals are per row, so the minibatch is processed in sub-batches of about 6 MB
// of rows (options.sub_batch_bytes; 3 float32 or 7 bfloat16 rows here): pass 1 computes their dot
// products, pass 2 re-reads them from cache and adds Σ r_i x_i to a gradient buffer (N floats, also
// cache-resident), and the last sub-batch's pass 2 applies the update. The FMAs run in the same row
// order whatever the sub-batch size, so the result is bit-identical to unsplit minibatches. Measured
// with one thread (thread CPU time, busy machine): bfloat16 epoch 23.7 → 16.1 ms, float32 44 → 30 ms,
// against streaming passes of 8.4 and 19 ms.
//  - each thread owns a fixed contiguous range of 16384-column chunks; pass 1 (dot products, eight
//    rows at a time sharing each β load) walks its range forwards, pass 2 backwards, so pass 2 starts
//    with the data pass 1 touched last (measured: 25% less time than a forward pass 2);
//  - pass 2 is register-blocked: for 128 columns at a time the rows' values are summed into eight
//    accumulators (eight FMA chains hide the latency) and stored or applied at once; bfloat16 rows are
//    stored pair-interleaved (SampleStore's Bfloat16Slot) so one load, a shift and a mask give 32
//    float32 values in column order;
//  - one barrier per sub-batch (see RunFit).
// The dot products' partial sums are stored per chunk and added in chunk order, so the result is the
// same for any number of threads.
#include "pruner_service/causal/lasso_sgd.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "absl/strings/str_format.h"
#include "pruner_service/causal/lasso_kernels.h"
#include "pruner_service/causal/sample_store.h"
#include "pruner_service/causal/splitmix64.h"

namespace gcprune::pruner {
namespace {

using lasso_kernels::kChunkColumns;
using lasso_kernels::RowBatch;

// The rows of a RowSource as pointers in one encoding. A SampleStore is read in place in its own
// encoding; other sources in place when Row() returns their storage, else copied once.
struct RowTable {
  SampleEncoding encoding = SampleEncoding::kFloat32;
  int64_t bytes_per_row = 0;  // of the fitted encoding
  std::vector<const void*> rows;
  std::vector<std::unique_ptr<float[]>> owned;
};

RowTable MakeRowTable(const RowSource& x) {
  RowTable table;
  const int64_t rows = x.num_rows();
  table.rows.resize(static_cast<size_t>(rows));
  table.bytes_per_row = x.num_cols() * 4;
  if (const auto* store = dynamic_cast<const SampleStore*>(&x); store != nullptr) {
    table.encoding = store->encoding();
    table.bytes_per_row = x.num_cols() * store->bytes_per_value();
    for (int64_t t = 0; t < rows; ++t) table.rows[static_cast<size_t>(t)] = store->RawRow(t);
    return table;
  }
  std::unique_ptr<float[]> scratch;
  for (int64_t t = 0; t < rows; ++t) {
    if (scratch == nullptr) scratch = std::make_unique<float[]>(static_cast<size_t>(std::max<int64_t>(1, x.num_cols())));
    const float* row = x.Row(t, scratch.get());
    if (row == scratch.get()) table.owned.push_back(std::move(scratch));
    table.rows[static_cast<size_t>(t)] = row;
  }
  return table;
}

struct Chunk {
  int64_t begin;
  int64_t end;
};

// Cuts the ranges into chunks of at most kChunkColumns that never straddle a multiple of
// `period` (the active vector's length), so each chunk's active flags are contiguous.
std::vector<Chunk> MakeChunks(const std::vector<ColumnRange>& ranges, int64_t period) {
  std::vector<Chunk> chunks;
  for (const ColumnRange& range : ranges) {
    for (int64_t begin = range.begin; begin < range.end;) {
      const int64_t period_end = (begin / period + 1) * period;
      const int64_t end = std::min({range.end, begin + kChunkColumns, period_end});
      chunks.push_back({begin, end});
      begin = end;
    }
  }
  return chunks;
}

struct FitConfig {
  int minibatch;
  double lr0;
  double lr_power;
  double alpha;
  double grad_clamp;
  int max_epochs;
  int patience;
  double tol;
  uint64_t seed;
  int num_threads;
  int64_t sub_batch_bytes;
  bool half_loss;  // ½ squared error (V1) instead of the squared error (V2)
};

// Coefficient arrays of num_cols floats; only the chunks' columns are read or written.
struct FitState {
  int64_t num_cols;
  float* beta;
  float* q;
  float* best_beta;
  float* reference_beta;  // may be null
};

inline int ThreadId() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}
inline int NumThreads() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

LassoSgdReport RunFit(const RowTable& table, const std::vector<double>& targets, absl::Span<const uint8_t> active,
                      const std::vector<Chunk>& chunks, const FitConfig& config, const FitState& state) {
  const auto start_time = std::chrono::steady_clock::now();
  LassoSgdReport report;
  const int64_t t_rows = static_cast<int64_t>(table.rows.size());
  const int64_t period = static_cast<int64_t>(active.size());
  for (const Chunk& c : chunks) {
    std::fill(state.beta + c.begin, state.beta + c.end, 0.0f);
    std::fill(state.q + c.begin, state.q + c.end, 0.0f);
    std::fill(state.best_beta + c.begin, state.best_beta + c.end, 0.0f);
    if (state.reference_beta != nullptr) std::fill(state.reference_beta + c.begin, state.reference_beta + c.end, 0.0f);
  }
  const int64_t num_chunks = static_cast<int64_t>(chunks.size());
  const int batch = static_cast<int>(std::min<int64_t>(config.minibatch, t_rows));
  const int64_t num_batches = (t_rows + batch - 1) / batch;
  // Rows per sub-batch: a minibatch is read in sub-batches small enough that pass 2 finds them in cache.
  const int sub = static_cast<int>(
      std::clamp<int64_t>(config.sub_batch_bytes / std::max<int64_t>(1, table.bytes_per_row), 1, batch));
  // Two sets of per-chunk partial dot products, alternating by sub-batch parity (see below).
  std::vector<double> partials(static_cast<size_t>(2 * num_chunks * sub));
  // Gradient sums carried from one sub-batch of a minibatch to the next (columns of the chunks).
  std::vector<float> grad(sub < batch ? static_cast<size_t>(state.num_cols) : 0);
  std::vector<int64_t> perm;
  std::vector<const void*> ordered(static_cast<size_t>(t_rows));
  SplitMix64 rng(config.seed);
  const bool parallel = config.num_threads > 1 && num_chunks >= 2;
  const float clamp = static_cast<float>(config.grad_clamp);

  int64_t tau = 0;
  double u = 0.0;
  double best_loss = std::numeric_limits<double>::infinity();
  int without_improvement = 0;
  for (int epoch = 1; epoch <= config.max_epochs; ++epoch) {
    ShufflePermutation(t_rows, &rng, &perm);
    for (int64_t i = 0; i < t_rows; ++i) ordered[static_cast<size_t>(i)] = table.rows[static_cast<size_t>(perm[i])];
    double loss_sum = 0.0;
    const int64_t tau_start = tau;
    const double u_start = u;
    // One barrier per sub-batch. Each thread owns a fixed range of chunks: it computes their partial
    // dot products for the sub-batch's rows, waits until every thread has, then (redundantly,
    // identically) reduces all partials in chunk order to the residuals, and accumulates the gradient
    // of its own chunks; after the minibatch's last sub-batch it updates them. The next dot products
    // on its chunks need only the β it has updated itself, so no second barrier is needed; the
    // partials alternate between two buffers so that a thread running ahead never overwrites
    // partials another thread is still reducing.
#pragma omp parallel num_threads(config.num_threads) if (parallel)
    {
      const int tid = ThreadId();
      const int nth = NumThreads();
      const int64_t c_lo = num_chunks * tid / nth;
      const int64_t c_hi = num_chunks * (tid + 1) / nth;
      std::vector<float> coef(static_cast<size_t>(batch));
      int64_t my_tau = tau_start;
      double my_u = u_start;
      double my_loss = 0.0;
      int64_t parity = 0;
      for (int64_t b = 0; b < num_batches; ++b) {
        const int64_t first = b * batch;
        const int n = static_cast<int>(std::min<int64_t>(batch, t_rows - first));
        const double scale = (config.half_loss ? 1.0 : 2.0) / n;
        double squared = 0.0;
        for (int s0 = 0; s0 < n; s0 += sub) {
          const int m = std::min(sub, n - s0);
          const RowBatch rows{ordered.data() + first + s0, m, table.encoding};
          double* part = &partials[static_cast<size_t>((parity++ % 2) * num_chunks * sub)];
          for (int64_t c = c_lo; c < c_hi; ++c) {
            const Chunk& chunk = chunks[static_cast<size_t>(c)];
            lasso_kernels::DotChunk(rows, state.beta, chunk.begin, chunk.end, part + c * sub);
          }
#pragma omp barrier
          for (int i = 0; i < m; ++i) {
            double prediction = 0.0;
            for (int64_t c = 0; c < num_chunks; ++c) prediction += part[c * sub + i];
            const double residual = prediction - targets[static_cast<size_t>(perm[first + s0 + i])];
            squared += residual * residual;
            coef[static_cast<size_t>(s0 + i)] = static_cast<float>(scale * residual);
          }
          const float* g_in = s0 == 0 ? nullptr : grad.data();
          if (s0 + m < n) {
            for (int64_t c = c_hi - 1; c >= c_lo; --c) {
              const Chunk& chunk = chunks[static_cast<size_t>(c)];
              lasso_kernels::AccumulateChunk(rows, coef.data() + s0, chunk.begin, chunk.end, g_in, grad.data());
            }
            continue;
          }
          ++my_tau;
          const double lr = config.lr0 / std::pow(static_cast<double>(my_tau), config.lr_power);
          my_u += lr * config.alpha;
          lasso_kernels::UpdateArgs args;
          args.lr = static_cast<float>(lr);
          args.u = static_cast<float>(my_u);
          args.clamp = clamp;
          args.beta = state.beta;
          args.q = state.q;
          args.old_beta = b == num_batches - 1 ? state.reference_beta : nullptr;
          for (int64_t c = c_hi - 1; c >= c_lo; --c) {
            const Chunk& chunk = chunks[static_cast<size_t>(c)];
            args.active = active.data() + chunk.begin % period;
            lasso_kernels::UpdateChunk(rows, coef.data() + s0, chunk.begin, chunk.end, g_in, args);
          }
        }
        my_loss += (config.half_loss ? 0.5 : 1.0) * squared / n;
      }
      if (tid == 0) {
        loss_sum = my_loss;
        tau = my_tau;
        u = my_u;
      }
    }
    const double epoch_loss = loss_sum / static_cast<double>(num_batches);
    report.epoch_losses.push_back(epoch_loss);
    report.epochs_run = epoch;
    if (epoch_loss < best_loss - config.tol) {
      best_loss = epoch_loss;
      report.best_epoch = epoch;
      without_improvement = 0;
      for (const Chunk& c : chunks) std::copy(state.beta + c.begin, state.beta + c.end, state.best_beta + c.begin);
    } else if (++without_improvement >= config.patience) {
      break;
    }
  }
  for (const Chunk& c : chunks) {
    std::copy(state.best_beta + c.begin, state.best_beta + c.end, state.beta + c.begin);
    for (int64_t k = c.begin; k < c.end; ++k) {
      report.nonzero += state.beta[k] != 0.0f ? 1 : 0;
      report.negative += state.beta[k] < 0.0f ? 1 : 0;
    }
  }
  report.stopped_early = report.epochs_run < config.max_epochs;
  report.best_loss = report.best_epoch > 0 ? report.epoch_losses[static_cast<size_t>(report.best_epoch - 1)] : best_loss;
  report.final_loss = report.epoch_losses.empty() ? 0.0 : report.epoch_losses.back();
  report.updates = tau;
  report.fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return report;
}

template <typename Options>
absl::Status ValidateCommon(const RowSource& x, absl::Span<const double> y, absl::Span<const uint8_t> active,
                            const Options& o, const char* what) {
  auto bad = [what](const std::string& field, const std::string& detail) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s: %s", what, field, detail));
  };
  if (x.num_rows() < 1) return bad("samples", "none (T = 0)");
  if (x.num_cols() < 1) return bad("features", "none (N = 0)");
  if (static_cast<int64_t>(y.size()) != x.num_rows()) {
    return bad("y", absl::StrFormat("%d targets for %d samples", y.size(), x.num_rows()));
  }
  if (active.empty() || x.num_cols() % static_cast<int64_t>(active.size()) != 0) {
    return bad("active", absl::StrFormat("length %d does not divide the %d columns", active.size(), x.num_cols()));
  }
  if (o.minibatch < 1) return bad("minibatch", absl::StrFormat("%d, must be >= 1", o.minibatch));
  if (!(o.lr0 > 0.0) || !std::isfinite(o.lr0)) return bad("lr0", absl::StrFormat("%g, must be finite and > 0", o.lr0));
  if (!(o.lr_power >= 0.0) || !std::isfinite(o.lr_power)) {
    return bad("lr_power", absl::StrFormat("%g, must be finite and >= 0", o.lr_power));
  }
  if (!(o.l1 >= 0.0) || !std::isfinite(o.l1)) return bad("l1", absl::StrFormat("%g, must be finite and >= 0", o.l1));
  if (!(o.grad_clamp > 0.0)) return bad("grad_clamp", absl::StrFormat("%g, must be > 0", o.grad_clamp));
  if (o.max_epochs < 1) return bad("max_epochs", absl::StrFormat("%d, must be >= 1", o.max_epochs));
  if (o.patience < 1) return bad("patience", absl::StrFormat("%d, must be >= 1", o.patience));
  if (!(o.tol >= 0.0)) return bad("tol", absl::StrFormat("%g, must be >= 0", o.tol));
  if (o.num_threads < 1) return bad("num_threads", absl::StrFormat("%d, must be >= 1", o.num_threads));
  if (o.sub_batch_bytes < 0) return bad("sub_batch_bytes", absl::StrFormat("%d, must be >= 0", o.sub_batch_bytes));
  return absl::OkStatus();
}

}  // namespace

std::vector<double> NormalizeTargetsV2(absl::Span<const double> y) {
  double sum = 0.0;
  for (double v : y) sum += v;
  const double mean = y.empty() ? 0.0 : sum / static_cast<double>(y.size());
  std::vector<double> out(y.size());
  for (size_t t = 0; t < y.size(); ++t) {
    const double v = y[t] / mean;
    out[t] = std::isfinite(v) ? v : 0.0;
  }
  return out;
}

absl::StatusOr<LassoSgdV2Result> FitLassoSgdV2(const RowSource& x, absl::Span<const double> y,
                                               absl::Span<const uint8_t> active, const LassoSgdV2Options& options) {
  absl::Status status = ValidateCommon(x, y, active, options, "LassoSGD V2");
  if (!status.ok()) return status;
  const int64_t cols = x.num_cols();
  LassoSgdV2Result result;
  result.normalized_targets = NormalizeTargetsV2(y);
  const RowTable table = MakeRowTable(x);
  const std::vector<Chunk> chunks = MakeChunks({ColumnRange{0, cols}}, static_cast<int64_t>(active.size()));
  const FitConfig config{options.minibatch, options.lr0, options.lr_power,
                         options.l1 / static_cast<double>(active.size()), options.grad_clamp, options.max_epochs,
                         options.patience, options.tol, options.seed, options.num_threads, options.sub_batch_bytes,
                         /*half_loss=*/false};
  result.beta.resize(static_cast<size_t>(cols));
  result.reference_beta.resize(static_cast<size_t>(cols));
  std::vector<float> q(static_cast<size_t>(cols));
  std::vector<float> best(static_cast<size_t>(cols));
  result.report = RunFit(table, result.normalized_targets, active, chunks, config,
                         FitState{cols, result.beta.data(), q.data(), best.data(), result.reference_beta.data()});
  return result;
}

absl::StatusOr<LassoSgdV1Result> FitLassoSgdV1(const RowSource& x, absl::Span<const double> y,
                                               absl::Span<const uint8_t> active,
                                               const std::vector<std::vector<ColumnRange>>& fits,
                                               const LassoSgdV1Options& options) {
  absl::Status status = ValidateCommon(x, y, active, options, "LassoSGD V1");
  if (!status.ok()) return status;
  const int64_t cols = x.num_cols();
  std::vector<ColumnRange> all;
  for (size_t f = 0; f < fits.size(); ++f) {
    if (fits[f].empty()) return absl::InvalidArgumentError(absl::StrFormat("LassoSGD V1 fits[%d]: no columns", f));
    for (const ColumnRange& r : fits[f]) {
      if (r.begin < 0 || r.end > cols || r.begin >= r.end) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "LassoSGD V1 fits[%d]: column range [%d, %d) is empty or outside [0, %d)", f, r.begin, r.end, cols));
      }
      all.push_back(r);
    }
  }
  std::sort(all.begin(), all.end(), [](const ColumnRange& a, const ColumnRange& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].begin < all[i - 1].end) {
      return absl::InvalidArgumentError(absl::StrFormat("LassoSGD V1 fits: column ranges [%d, %d) and [%d, %d) overlap",
                                                        all[i - 1].begin, all[i - 1].end, all[i].begin, all[i].end));
    }
  }
  std::vector<double> targets(y.size());
  for (size_t t = 0; t < y.size(); ++t) targets[t] = std::isfinite(y[t]) ? y[t] : 0.0;
  const RowTable table = MakeRowTable(x);
  const FitConfig config{options.minibatch, options.lr0, options.lr_power, options.l1, options.grad_clamp,
                         options.max_epochs, options.patience, options.tol, options.seed, options.num_threads,
                         options.sub_batch_bytes, /*half_loss=*/true};
  LassoSgdV1Result result;
  result.beta.assign(static_cast<size_t>(cols), 0.0f);
  std::vector<float> q(static_cast<size_t>(cols));
  std::vector<float> best(static_cast<size_t>(cols));
  for (const std::vector<ColumnRange>& fit : fits) {
    const std::vector<Chunk> chunks = MakeChunks(fit, static_cast<int64_t>(active.size()));
    result.reports.push_back(
        RunFit(table, targets, active, chunks, config, FitState{cols, result.beta.data(), q.data(), best.data(), nullptr}));
  }
  return result;
}

std::vector<std::vector<ColumnRange>> PerLayerFits(const Layout& layout, int feature_groups) {
  std::vector<std::vector<ColumnRange>> fits;
  const int64_t n = layout.num_features();
  for (int i = 0; i < layout.num_tensors(); ++i) {
    const int64_t offset = layout.feature_offset(i);
    if (offset < 0) continue;
    std::vector<ColumnRange> fit;
    for (int g = 0; g < feature_groups; ++g) {
      fit.push_back({g * n + offset, g * n + offset + layout.tensor(i).numel()});
    }
    fits.push_back(std::move(fit));
  }
  return fits;
}

std::vector<uint8_t> NonzeroWeights(absl::Span<const float> beta, int64_t num_weights) {
  std::vector<uint8_t> keep(static_cast<size_t>(num_weights), 0);
  for (size_t c = 0; c < beta.size(); ++c) {
    if (beta[c] != 0.0f) keep[c % static_cast<size_t>(num_weights)] = 1;
  }
  return keep;
}

}  // namespace gcprune::pruner
