// Element-wise kernels. Loops are written for GCC's vectoriser (-march=native gives AVX-512 masks for the
// selects); OpenMP splits them only when the tensor is large enough to pay for the fork.
#include "trainer_service/engine/elementwise.h"

namespace gcprune::trainer {
namespace {
// Below this many elements one thread is faster than waking the others.
constexpr int64_t kParallelThreshold = 1 << 16;
}  // namespace

void ApplyMask(float* __restrict x, const uint8_t* __restrict mask, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) x[i] = mask[i] != 0 ? x[i] : 0.0f;
}

void SgdStep(float* __restrict w, const float* __restrict g, const uint8_t* __restrict mask, float lr,
             float* __restrict delta, int64_t n) {
  if (mask == nullptr && delta == nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
  } else if (mask == nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w0 = w[i];
      const float w1 = w0 - lr * g[i];
      w[i] = w1;
      delta[i] = w1 - w0;
    }
  } else if (delta == nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) w[i] = mask[i] != 0 ? w[i] - lr * g[i] : 0.0f;
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      const float w0 = w[i];
      const float w1 = mask[i] != 0 ? w0 - lr * g[i] : 0.0f;
      w[i] = w1;
      delta[i] = mask[i] != 0 ? w1 - w0 : 0.0f;
    }
  }
}

void SgdMomentumStep(float* __restrict w, const float* __restrict g, float* __restrict buf, bool first,
                     float momentum, const uint8_t* __restrict mask, float lr, float* __restrict delta,
                     int64_t n) {
  // torch.optim.SGD starts the buffer with the gradient itself.
  const float keep_buf = first ? 0.0f : 1.0f;
#pragma omp parallel for simd schedule(static) if (n >= kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = mask == nullptr || mask[i] != 0;
    const float b = keep ? (keep_buf != 0.0f ? momentum * buf[i] + g[i] : g[i]) : 0.0f;
    const float w0 = w[i];
    const float w1 = keep ? w0 - lr * b : 0.0f;
    buf[i] = b;
    w[i] = w1;
    if (delta != nullptr) delta[i] = keep ? w1 - w0 : 0.0f;
  }
}

}  // namespace gcprune::trainer
