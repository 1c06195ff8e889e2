// LassoSGD's inner loops. Every reduction runs in a fixed order, so results do not depend on threads.
#include "pruner_service/causal/lasso_kernels.h"

#include <algorithm>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#define GCPRUNE_LASSO_AVX512 1
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() (a self-initialised variable), which
// -Wmaybe-uninitialized reports wherever they are inlined; the values are always defined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

#include "pruner_service/causal/bfloat16.h"

namespace gcprune::pruner::lasso_kernels {
namespace {

#if GCPRUNE_LASSO_AVX512

// 16 values at column k of a row, as float32; `mask` selects the lanes to load (others read 0).
inline __m512 Load16(const float* row, int64_t k, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, row + k); }
inline __m512 Load16(const uint16_t* row, int64_t k, __mmask16 mask) {
  const __m256i h = _mm256_maskz_loadu_epi16(mask, row + k);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline __m512 Load16(const float* row, int64_t k) { return _mm512_loadu_ps(row + k); }
inline __m512 Load16(const uint16_t* row, int64_t k) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// R rows at once share each β load; two accumulators per row hide the FMA latency.
template <typename Elem, int R>
void DotRows(const Elem* const* rows, const float* beta, int64_t begin, int64_t end, double* out) {
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  int64_t k = begin;
  for (; k + 32 <= end; k += 32) {
    const __m512 b0 = _mm512_loadu_ps(beta + k);
    const __m512 b1 = _mm512_loadu_ps(beta + k + 16);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_fmadd_ps(Load16(rows[r], k), b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(Load16(rows[r], k + 16), b1, acc1[r]);
    }
  }
  for (; k < end; k += 16) {
    const __mmask16 mask = end - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - k)) - 1u);
    const __m512 b0 = _mm512_maskz_loadu_ps(mask, beta + k);
    for (int r = 0; r < R; ++r) acc0[r] = _mm512_fmadd_ps(Load16(rows[r], k, mask), b0, acc0[r]);
  }
  for (int r = 0; r < R; ++r) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(acc0[r], acc1[r]));
    double sum = 0.0;
    for (int l = 0; l < 16; ++l) sum += lanes[l];
    out[r] = sum;
  }
}

// g[j] (j = k − begin) = Σ_r coef[r] x_rk, accumulated onto g in row order.
template <typename Elem, int R>
void AccumulateRows(const Elem* const* rows, const float* coef, int64_t begin, int64_t end, bool first, float* g) {
  __m512 c[R];
  for (int r = 0; r < R; ++r) c[r] = _mm512_set1_ps(coef[r]);
  int64_t k = begin;
  for (; k < end; k += 16) {
    const __mmask16 mask = end - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - k)) - 1u);
    float* gk = g + (k - begin);
    __m512 acc = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, gk);
    for (int r = 0; r < R; ++r) acc = _mm512_fmadd_ps(c[r], Load16(rows[r], k, mask), acc);
    _mm512_mask_storeu_ps(gk, mask, acc);
  }
}

template <typename Elem>
void DotChunkT(const RowBatch& batch, const float* beta, int64_t begin, int64_t end, double* out) {
  const Elem* rows[4];
  for (int i = 0; i < batch.num_rows; i += 4) {
    const int n = std::min(4, batch.num_rows - i);
    for (int r = 0; r < n; ++r) rows[r] = static_cast<const Elem*>(batch.rows[i + r]);
    switch (n) {
      case 4: DotRows<Elem, 4>(rows, beta, begin, end, out + i); break;
      case 3: DotRows<Elem, 3>(rows, beta, begin, end, out + i); break;
      case 2: DotRows<Elem, 2>(rows, beta, begin, end, out + i); break;
      default: DotRows<Elem, 1>(rows, beta, begin, end, out + i); break;
    }
  }
}

template <typename Elem>
void UpdateChunkT(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, float lr, float u,
                  float clamp, const uint8_t* active, float* beta, float* q, float* old_beta) {
  alignas(64) float g[kChunkColumns];
  const Elem* rows[4];
  for (int i = 0; i < batch.num_rows; i += 4) {
    const int n = std::min(4, batch.num_rows - i);
    for (int r = 0; r < n; ++r) rows[r] = static_cast<const Elem*>(batch.rows[i + r]);
    switch (n) {
      case 4: AccumulateRows<Elem, 4>(rows, coef + i, begin, end, i == 0, g); break;
      case 3: AccumulateRows<Elem, 3>(rows, coef + i, begin, end, i == 0, g); break;
      case 2: AccumulateRows<Elem, 2>(rows, coef + i, begin, end, i == 0, g); break;
      default: AccumulateRows<Elem, 1>(rows, coef + i, begin, end, i == 0, g); break;
    }
  }
  const __m512 vlr = _mm512_set1_ps(lr);
  const __m512 vu = _mm512_set1_ps(u);
  const __m512 hi = _mm512_set1_ps(clamp);
  const __m512 lo = _mm512_set1_ps(-clamp);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t k = begin; k < end; k += 16) {
    const __mmask16 tail = end - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - k)) - 1u);
    const __m128i act = _mm_maskz_loadu_epi8(tail, active + (k - begin));
    const __mmask16 mask = _mm_test_epi8_mask(act, act);
    const __m512 b = _mm512_maskz_loadu_ps(tail, beta + k);
    if (old_beta != nullptr) _mm512_mask_storeu_ps(old_beta + k, tail, b);
    if (mask == 0) continue;
    const __m512 qk = _mm512_maskz_loadu_ps(mask, q + k);
    const __m512 gk = _mm512_min_ps(_mm512_max_ps(_mm512_maskz_loadu_ps(tail, g + (k - begin)), lo), hi);
    const __m512 z = _mm512_fnmadd_ps(vlr, gk, b);  // β − lr g
    const __m512 tp = _mm512_max_ps(zero, _mm512_sub_ps(z, _mm512_add_ps(vu, qk)));
    const __m512 tn = _mm512_min_ps(zero, _mm512_add_ps(z, _mm512_sub_ps(vu, qk)));
    __m512 nb = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), z, tp);
    nb = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero, _CMP_LT_OQ), nb, tn);
    _mm512_mask_storeu_ps(beta + k, mask, nb);
    _mm512_mask_storeu_ps(q + k, mask, _mm512_add_ps(qk, _mm512_sub_ps(nb, z)));
  }
}

template <typename Elem>
double SumRow(const Elem* row, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) {
    for (int a = 0; a < 4; ++a) acc[a] = _mm512_add_ps(acc[a], Load16(row, k + 16 * a));
  }
  for (; k < n; k += 16) {
    const __mmask16 mask = n - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - k)) - 1u);
    acc[0] = _mm512_add_ps(acc[0], Load16(row, k, mask));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  double sum = 0.0;
  for (int l = 0; l < 16; ++l) sum += lanes[l];
  return sum;
}

#else  // portable fallback: the same arithmetic one element at a time

inline float Value(const float* row, int64_t k) { return row[k]; }
inline float Value(const uint16_t* row, int64_t k) { return Bfloat16ToFloat(row[k]); }

template <typename Elem>
void DotChunkT(const RowBatch& batch, const float* beta, int64_t begin, int64_t end, double* out) {
  for (int i = 0; i < batch.num_rows; ++i) {
    const Elem* row = static_cast<const Elem*>(batch.rows[i]);
    float lanes[16] = {};
    for (int64_t k = begin; k < end; ++k) lanes[(k - begin) % 16] += Value(row, k) * beta[k];
    double sum = 0.0;
    for (int l = 0; l < 16; ++l) sum += lanes[l];
    out[i] = sum;
  }
}

template <typename Elem>
void UpdateChunkT(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, float lr, float u,
                  float clamp, const uint8_t* active, float* beta, float* q, float* old_beta) {
  std::vector<float> g(static_cast<size_t>(end - begin), 0.0f);
  for (int i = 0; i < batch.num_rows; ++i) {
    const Elem* row = static_cast<const Elem*>(batch.rows[i]);
    for (int64_t k = begin; k < end; ++k) g[k - begin] += coef[i] * Value(row, k);
  }
  for (int64_t k = begin; k < end; ++k) {
    if (old_beta != nullptr) old_beta[k] = beta[k];
    if (active[k - begin] == 0) continue;
    const float gk = std::min(std::max(g[k - begin], -clamp), clamp);
    const float z = beta[k] - lr * gk;
    float nb = z;
    if (z > 0.0f) nb = std::max(0.0f, z - (u + q[k]));
    if (z < 0.0f) nb = std::min(0.0f, z + (u - q[k]));
    beta[k] = nb;
    q[k] += nb - z;
  }
}

template <typename Elem>
double SumRow(const Elem* row, int64_t n) {
  float lanes[16] = {};
  for (int64_t k = 0; k < n; ++k) lanes[k % 16] += Value(row, k);
  double sum = 0.0;
  for (int l = 0; l < 16; ++l) sum += lanes[l];
  return sum;
}

#endif

}  // namespace

void DotChunk(const RowBatch& batch, const float* beta, int64_t begin, int64_t end, double* out) {
  if (batch.encoding == SampleEncoding::kFloat32) {
    DotChunkT<float>(batch, beta, begin, end, out);
  } else {
    DotChunkT<uint16_t>(batch, beta, begin, end, out);
  }
}

void UpdateChunk(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, float lr, float u,
                 float clamp, const uint8_t* active, float* beta, float* q, float* old_beta) {
  if (batch.encoding == SampleEncoding::kFloat32) {
    UpdateChunkT<float>(batch, coef, begin, end, lr, u, clamp, active, beta, q, old_beta);
  } else {
    UpdateChunkT<uint16_t>(batch, coef, begin, end, lr, u, clamp, active, beta, q, old_beta);
  }
}

double StreamingSum(const SampleStore& store, int num_threads) {
  const int64_t rows = store.num_rows();
  const int64_t cols = store.num_cols();
  std::vector<double> sums(static_cast<size_t>(rows), 0.0);
#pragma omp parallel for schedule(static) num_threads(num_threads)
  for (int64_t t = 0; t < rows; ++t) {
    sums[static_cast<size_t>(t)] = store.encoding() == SampleEncoding::kFloat32
                                       ? SumRow(static_cast<const float*>(store.RawRow(t)), cols)
                                       : SumRow(static_cast<const uint16_t*>(store.RawRow(t)), cols);
  }
  double total = 0.0;
  for (double s : sums) total += s;
  return total;
}

}  // namespace gcprune::pruner::lasso_kernels
