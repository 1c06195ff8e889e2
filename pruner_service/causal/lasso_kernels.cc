// LassoSGD's inner loops over groups of 32 columns (two 16-lane vectors). bfloat16 rows use the store's
// pair-interleaved layout, so one load and two bit operations give 32 float32 values in column order.
// Every reduction runs in a fixed order, so results do not depend on threads.
#include "pruner_service/causal/lasso_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

// Float value of column k of a row (portable path and chunk edges).
inline float Value(const float* row, int64_t k) { return row[k]; }
inline float Value(const uint16_t* row, int64_t k) { return Bfloat16ToFloat(row[Bfloat16Slot(k)]); }

// The truncated-gradient update of one coefficient (see lasso_sgd.h). Scalar code uses std::fma where
// the vector code uses FMA instructions, so that the result of a column does not depend on whether it
// falls on a chunk edge, or on how the compiler contracts expressions.
inline void UpdateOne(float g, float lr, float u, float clamp, float* beta, float* q) {
  g = std::min(std::max(g, -clamp), clamp);
  const float z = std::fma(-lr, g, *beta);
  float nb = z;
  if (z > 0.0f) nb = std::max(0.0f, z - (u + *q));
  if (z < 0.0f) nb = std::min(0.0f, z + (u - *q));
  *q += nb - z;
  *beta = nb;
}

#if GCPRUNE_LASSO_AVX512

// Columns g0 .. g0+31 of a row as two float32 vectors (lo = g0..g0+15, hi = g0+16..g0+31).
// REQUIRES: g0 is a multiple of 32 (the bfloat16 layout's group); the full group is readable.
inline void Load32(const float* row, int64_t g0, __m512* lo, __m512* hi) {
  *lo = _mm512_loadu_ps(row + g0);
  *hi = _mm512_loadu_ps(row + g0 + 16);
}
inline void Load32(const uint16_t* row, int64_t g0, __m512* lo, __m512* hi) {
  __m512i words = _mm512_load_si512(reinterpret_cast<const void*>(row + g0));
  // Keep the 64 bytes in a register: GCC otherwise folds the load into both the shift and the mask,
  // loading every line twice (measured 15–20% slower).
  __asm__("" : "+v"(words));
  *lo = _mm512_castsi512_ps(_mm512_slli_epi32(words, 16));
  *hi = _mm512_castsi512_ps(_mm512_and_si512(words, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// Sums x_rk β_k over k in [g_begin, g_end) (whole groups, inside the chunk) for R rows, onto acc.
template <typename Elem, int R>
void DotGroups(const Elem* const* rows, const float* beta, int64_t g_begin, int64_t g_end, __m512* acc_lo,
               __m512* acc_hi) {
  for (int64_t g0 = g_begin; g0 < g_end; g0 += 32) {
    const __m512 b_lo = _mm512_loadu_ps(beta + g0);
    const __m512 b_hi = _mm512_loadu_ps(beta + g0 + 16);
    for (int r = 0; r < R; ++r) {
      __m512 lo, hi;
      Load32(rows[r], g0, &lo, &hi);
      acc_lo[r] = _mm512_fmadd_ps(lo, b_lo, acc_lo[r]);
      acc_hi[r] = _mm512_fmadd_ps(hi, b_hi, acc_hi[r]);
    }
  }
}

template <typename Elem, int R>
void DotRows(const Elem* const* rows, const float* beta, int64_t begin, int64_t end, int64_t g_begin,
             int64_t g_end, double* out) {
  __m512 acc_lo[R], acc_hi[R];
  for (int r = 0; r < R; ++r) acc_lo[r] = acc_hi[r] = _mm512_setzero_ps();
  DotGroups<Elem, R>(rows, beta, g_begin, g_end, acc_lo, acc_hi);
  for (int r = 0; r < R; ++r) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(acc_lo[r], acc_hi[r]));
    double sum = 0.0;
    for (int l = 0; l < 16; ++l) sum += lanes[l];
    // Columns outside whole groups (chunk edges), in column order.
    float edge = 0.0f;
    for (int64_t k = begin; k < std::min(g_begin, end); ++k) edge = std::fma(Value(rows[r], k), beta[k], edge);
    for (int64_t k = std::max(g_end, begin); k < end; ++k) edge = std::fma(Value(rows[r], k), beta[k], edge);
    out[r] = sum + edge;
  }
}

// The vector form of UpdateOne for 16 coefficients at k, where `mask` selects the active ones.
inline void Update16(__m512 g, __mmask16 mask, int64_t k, const __m512& lr, const __m512& u, const __m512& lo,
                     const __m512& hi, float* beta, float* q, float* old_beta) {
  const __m512 b = _mm512_loadu_ps(beta + k);
  if (old_beta != nullptr) _mm512_storeu_ps(old_beta + k, b);
  if (mask == 0) return;
  const __m512 zero = _mm512_setzero_ps();
  const __m512 qk = _mm512_loadu_ps(q + k);
  g = _mm512_min_ps(_mm512_max_ps(g, lo), hi);
  const __m512 z = _mm512_fnmadd_ps(lr, g, b);  // β − lr g
  const __m512 tp = _mm512_max_ps(zero, _mm512_sub_ps(z, _mm512_add_ps(u, qk)));
  const __m512 tn = _mm512_min_ps(zero, _mm512_add_ps(z, _mm512_sub_ps(u, qk)));
  __m512 nb = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), z, tp);
  nb = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero, _CMP_LT_OQ), nb, tn);
  _mm512_mask_storeu_ps(beta + k, mask, nb);
  _mm512_mask_storeu_ps(q + k, mask, _mm512_add_ps(qk, _mm512_sub_ps(nb, z)));
}

inline __mmask16 ActiveMask(const uint8_t* active) {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(active));
  return _mm_test_epi8_mask(a, a);
}

// Finishes 16 columns at k whose gradient sums are `g`: stores them in g_out (kUpdate false) or applies
// the update to the active ones. `act` points at the 16 columns' active flags.
template <bool kUpdate>
inline void Finish16(__m512 g, int64_t k, const uint8_t* act, float* g_out, const UpdateArgs& args, const __m512& lr,
                     const __m512& u, const __m512& lo, const __m512& hi) {
  if (kUpdate) {
    Update16(g, ActiveMask(act), k, lr, u, lo, hi, args.beta, args.q, args.old_beta);
  } else {
    _mm512_storeu_ps(g_out + k, g);
  }
}

// Gradient sums of whole groups [g_begin, g_end), rows in order, starting from g_in (or 0): four
// groups (eight accumulation chains, which hide the FMA latency) at a time, then two, then one.
// `args.active` is indexed by k − begin.
template <typename Elem, bool kUpdate>
void GradientGroups(const Elem* const* rows, int n, const float* coef, int64_t begin, int64_t g_begin, int64_t g_end,
                    const float* g_in, float* g_out, const UpdateArgs& args) {
  const __m512 vlr = _mm512_set1_ps(args.lr), vu = _mm512_set1_ps(args.u);
  const __m512 lo = _mm512_set1_ps(-args.clamp), hi = _mm512_set1_ps(args.clamp);
  auto start = [g_in](int64_t k) { return g_in != nullptr ? _mm512_loadu_ps(g_in + k) : _mm512_setzero_ps(); };
  int64_t g0 = g_begin;
  for (; g0 + 128 <= g_end; g0 += 128) {
    __m512 a[8];
    for (int j = 0; j < 8; ++j) a[j] = start(g0 + 16 * j);
    for (int r = 0; r < n; ++r) {
      const __m512 c = _mm512_set1_ps(coef[r]);
      for (int j = 0; j < 4; ++j) {
        __m512 x0, x1;
        Load32(rows[r], g0 + 32 * j, &x0, &x1);
        a[2 * j] = _mm512_fmadd_ps(c, x0, a[2 * j]);
        a[2 * j + 1] = _mm512_fmadd_ps(c, x1, a[2 * j + 1]);
      }
    }
    for (int j = 0; j < 8; ++j) {
      Finish16<kUpdate>(a[j], g0 + 16 * j, args.active + (g0 + 16 * j - begin), g_out, args, vlr, vu, lo, hi);
    }
  }
  for (; g0 < g_end; g0 += 32) {
    __m512 a0 = start(g0), a1 = start(g0 + 16);
    for (int r = 0; r < n; ++r) {
      const __m512 c = _mm512_set1_ps(coef[r]);
      __m512 x0, x1;
      Load32(rows[r], g0, &x0, &x1);
      a0 = _mm512_fmadd_ps(c, x0, a0);
      a1 = _mm512_fmadd_ps(c, x1, a1);
    }
    Finish16<kUpdate>(a0, g0, args.active + (g0 - begin), g_out, args, vlr, vu, lo, hi);
    Finish16<kUpdate>(a1, g0 + 16, args.active + (g0 + 16 - begin), g_out, args, vlr, vu, lo, hi);
  }
}

template <typename Elem>
void DotChunkT(const RowBatch& batch, const float* beta, int64_t begin, int64_t end, double* out) {
  // Whole groups of 32 inside [begin, end); the columns before and after are edges.
  const int64_t g_begin = std::min((begin + 31) / 32 * 32, end);
  const int64_t g_end = std::max(end / 32 * 32, g_begin);
  const Elem* rows[8];
  for (int i = 0; i < batch.num_rows; i += 8) {
    const int n = std::min(8, batch.num_rows - i);
    for (int r = 0; r < n; ++r) rows[r] = static_cast<const Elem*>(batch.rows[i + r]);
    switch (n) {
      case 8: DotRows<Elem, 8>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      case 7: DotRows<Elem, 7>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      case 6: DotRows<Elem, 6>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      case 5: DotRows<Elem, 5>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      case 4: DotRows<Elem, 4>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      case 3: DotRows<Elem, 3>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      case 2: DotRows<Elem, 2>(rows, beta, begin, end, g_begin, g_end, out + i); break;
      default: DotRows<Elem, 1>(rows, beta, begin, end, g_begin, g_end, out + i); break;
    }
  }
}

#endif  // GCPRUNE_LASSO_AVX512

// Portable gradient sums of columns [k_begin, k_end), stored or applied as GradientGroups does (edges,
// or everything without AVX-512).
template <typename Elem, bool kUpdate>
void GradientColumns(const RowBatch& batch, const float* coef, int64_t begin, int64_t k_begin, int64_t k_end,
                     const float* g_in, float* g_out, const UpdateArgs& args) {
  for (int64_t k = k_begin; k < k_end; ++k) {
    float g = g_in != nullptr ? g_in[k] : 0.0f;
    for (int i = 0; i < batch.num_rows; ++i) g = std::fma(coef[i], Value(static_cast<const Elem*>(batch.rows[i]), k), g);
    if (!kUpdate) {
      g_out[k] = g;
      continue;
    }
    if (args.old_beta != nullptr) args.old_beta[k] = args.beta[k];
    if (args.active[k - begin] != 0) UpdateOne(g, args.lr, args.u, args.clamp, args.beta + k, args.q + k);
  }
}

template <typename Elem, bool kUpdate>
void GradientChunkT(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, const float* g_in,
                    float* g_out, const UpdateArgs& args) {
#if GCPRUNE_LASSO_AVX512
  const int64_t g_begin = std::min((begin + 31) / 32 * 32, end);
  const int64_t g_end = std::max(end / 32 * 32, g_begin);
  const Elem* stack_rows[64];
  std::vector<const Elem*> heap_rows;
  const Elem** rows = stack_rows;
  if (batch.num_rows > 64) {
    heap_rows.resize(static_cast<size_t>(batch.num_rows));
    rows = heap_rows.data();
  }
  for (int r = 0; r < batch.num_rows; ++r) rows[r] = static_cast<const Elem*>(batch.rows[r]);
  GradientColumns<Elem, kUpdate>(batch, coef, begin, begin, g_begin, g_in, g_out, args);
  GradientGroups<Elem, kUpdate>(rows, batch.num_rows, coef, begin, g_begin, g_end, g_in, g_out, args);
  GradientColumns<Elem, kUpdate>(batch, coef, begin, g_end, end, g_in, g_out, args);
#else
  GradientColumns<Elem, kUpdate>(batch, coef, begin, begin, end, g_in, g_out, args);
#endif
}

#if !GCPRUNE_LASSO_AVX512
template <typename Elem>
void DotChunkT(const RowBatch& batch, const float* beta, int64_t begin, int64_t end, double* out) {
  for (int i = 0; i < batch.num_rows; ++i) {
    const Elem* row = static_cast<const Elem*>(batch.rows[i]);
    float lanes[16] = {};
    for (int64_t k = begin; k < end; ++k) lanes[(k - begin) % 16] = std::fma(Value(row, k), beta[k], lanes[(k - begin) % 16]);
    double sum = 0.0;
    for (int l = 0; l < 16; ++l) sum += lanes[l];
    out[i] = sum;
  }
}
#endif

// Σ of a stored row's values (the bfloat16 layout's order does not matter for a sum; its padding is 0).
#if GCPRUNE_LASSO_AVX512
double SumRow(const float* row, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) {
    for (int a = 0; a < 4; ++a) acc[a] = _mm512_add_ps(acc[a], _mm512_loadu_ps(row + k + 16 * a));
  }
  for (; k < n; k += 16) {
    const __mmask16 mask = n - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - k)) - 1u);
    acc[0] = _mm512_add_ps(acc[0], _mm512_maskz_loadu_ps(mask, row + k));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

double SumRow(const uint16_t* row, int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const int64_t padded = (n + 31) / 32 * 32;
  int64_t k = 0;
  for (; k + 64 <= padded; k += 64) {
    __m512 x0, x1, x2, x3;
    Load32(row, k, &x0, &x1);
    Load32(row, k + 32, &x2, &x3);
    acc[0] = _mm512_add_ps(acc[0], x0);
    acc[1] = _mm512_add_ps(acc[1], x1);
    acc[2] = _mm512_add_ps(acc[2], x2);
    acc[3] = _mm512_add_ps(acc[3], x3);
  }
  for (; k < padded; k += 32) {
    __m512 x0, x1;
    Load32(row, k, &x0, &x1);
    acc[0] = _mm512_add_ps(acc[0], x0);
    acc[1] = _mm512_add_ps(acc[1], x1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}
#else
template <typename Elem>
double SumRow(const Elem* row, int64_t n) {
  float lanes[16] = {};
  for (int64_t k = 0; k < n; ++k) lanes[k % 16] += Value(row, k);
  double sum = 0.0;
  for (float v : lanes) sum += v;
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

void AccumulateChunk(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, const float* g_in,
                     float* g_out) {
  const UpdateArgs none{};
  if (batch.encoding == SampleEncoding::kFloat32) {
    GradientChunkT<float, false>(batch, coef, begin, end, g_in, g_out, none);
  } else {
    GradientChunkT<uint16_t, false>(batch, coef, begin, end, g_in, g_out, none);
  }
}

void UpdateChunk(const RowBatch& batch, const float* coef, int64_t begin, int64_t end, const float* g_in,
                 const UpdateArgs& args) {
  if (batch.encoding == SampleEncoding::kFloat32) {
    GradientChunkT<float, true>(batch, coef, begin, end, g_in, nullptr, args);
  } else {
    GradientChunkT<uint16_t, true>(batch, coef, begin, end, g_in, nullptr, args);
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
