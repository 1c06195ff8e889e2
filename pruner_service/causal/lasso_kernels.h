// The memory-bound inner loops of LassoSGD over float32 or bfloat16 rows (AVX-512 when the build
// targets it, portable C++ otherwise), and the streaming pass that is their bandwidth yardstick.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_LASSO_KERNELS_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_LASSO_KERNELS_H_

#include <cstdint>

#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/sample_store.h"

namespace gcprune::pruner::lasso_kernels {

// Columns per chunk: the unit of work of a thread and of the fixed-order dot-product reduction. The
// chunk's coefficients (64 KiB of β) stay in L1/L2 while the chunk of every row of a minibatch streams
// past them; long runs per row (32 KiB of bfloat16, 64 KiB of float32) keep the hardware prefetchers
// effective (measured: 4096 columns cost 25% more per bfloat16 epoch).
inline constexpr int64_t kChunkColumns = 16384;

// rows[i] + column k is element (i, k); all rows share one encoding (float32 or bfloat16 bits).
struct RowBatch {
  const void* const* rows = nullptr;
  int num_rows = 0;
  SampleEncoding encoding = SampleEncoding::kFloat32;
};

// out[i] = Σ_{k ∈ [begin, end)} x_ik β_k for every row i of the batch, summed in a fixed order
// (16-lane float32 partial sums over whole groups of 32 columns, then double; edge columns in order).
void DotChunk(const RowBatch& batch, const float* beta, int64_t begin, int64_t end, double* out);

// The update's parameters (see lasso_sgd.h). `active` is indexed by k − begin; β, q and old_beta by k.
struct UpdateArgs {
  float lr = 0.0f;
  float u = 0.0f;
  float clamp = 0.0f;
  const uint8_t* active = nullptr;
  float* beta = nullptr;
  float* q = nullptr;
  float* old_beta = nullptr;  // if not null, β_k before the update is first copied here (all k)
};

// Gradient sums of columns [begin, end) for the batch's rows: g_out[k] = g_in[k] + Σ_i coef[i] x_ik,
// the FMAs in row order (g_in null: from 0). A minibatch may be processed as several row batches in
// order, each AccumulateChunk continuing the sums of the one before (g_in may equal g_out), and the
// result is bit-identical to one batch of all its rows.
void AccumulateChunk(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, const float* g_in,
                     float* g_out);

// As AccumulateChunk, then the truncated-gradient update of columns [begin, end) with the sums g_k:
//   g_k = clamp(g_k, ±clamp), z_k = β_k − lr g_k, cumulative-penalty truncation with u and q_k,
//   q_k += β_k − z_k; only where active[k − begin] != 0.
// bfloat16 rows must be SampleStore rows (64-byte aligned, pair-interleaved, padded; see Bfloat16Slot).
void UpdateChunk(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, const float* g_in,
                 const UpdateArgs& args);

// Σ of every stored value of every committed row, read once in storage order with `num_threads`
// threads: the plain streaming pass a LassoSGD epoch is measured against.
double StreamingSum(const SampleStore& store, int num_threads);

}  // namespace gcprune::pruner::lasso_kernels

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_LASSO_KERNELS_H_
