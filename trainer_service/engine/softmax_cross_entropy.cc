// Label-smoothed softmax cross-entropy: a stable log-sum-exp per row, float math, double sums.
#include "trainer_service/engine/softmax_cross_entropy.h"

#include <cmath>
#include <vector>

namespace gcprune::trainer {
namespace {

// Rows per chunk; a chunk is the unit of parallel work and of the ordered summation.
constexpr int64_t kChunkRows = 256;

// Processes rows [begin, end). `exps` holds c floats of scratch when grad is null.
CrossEntropySums Rows(const float* logits, const int32_t* labels, int64_t begin, int64_t end, int64_t c,
                      float smoothing, float* grad, float inv_n, float* exps) {
  CrossEntropySums sums;
  const float on = 1.0f - smoothing;
  const float off = smoothing / static_cast<float>(c);
  for (int64_t r = begin; r < end; ++r) {
    const float* x = logits + r * c;
    float* e = grad != nullptr ? grad + r * c : exps;
    int64_t arg_max = 0;
    float max = x[0];
    float sum_x = 0.0f;
    for (int64_t j = 0; j < c; ++j) {
      if (x[j] > max) {
        max = x[j];
        arg_max = j;
      }
      sum_x += x[j];
    }
    float sum_exp = 0.0f;
    for (int64_t j = 0; j < c; ++j) {
      e[j] = std::exp(x[j] - max);
      sum_exp += e[j];
    }
    const float lse = max + std::log(sum_exp);
    const int32_t y = labels[r];
    const float nll = lse - x[y];
    const float mean_nll = lse - sum_x / static_cast<float>(c);
    sums.loss += static_cast<double>(on * nll + smoothing * mean_nll);
    sums.cross_entropy += static_cast<double>(nll);
    sums.correct += arg_max == y ? 1 : 0;
    if (grad != nullptr) {
      const float scale = inv_n / sum_exp;
      for (int64_t j = 0; j < c; ++j) e[j] = e[j] * scale - off * inv_n;
      e[y] -= on * inv_n;
    }
  }
  return sums;
}

}  // namespace

CrossEntropySums SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t n, int64_t c,
                                     float smoothing, float* grad) {
  const float inv_n = 1.0f / static_cast<float>(n);
  const int64_t chunks = (n + kChunkRows - 1) / kChunkRows;
  if (chunks <= 1) {
    std::vector<float> scratch(grad != nullptr ? 0 : c);
    return Rows(logits, labels, 0, n, c, smoothing, grad, inv_n, scratch.data());
  }
  std::vector<CrossEntropySums> partial(chunks);
#pragma omp parallel
  {
    std::vector<float> scratch(grad != nullptr ? 0 : c);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t end = k + 1 == chunks ? n : (k + 1) * kChunkRows;
      partial[k] = Rows(logits, labels, k * kChunkRows, end, c, smoothing, grad, inv_n, scratch.data());
    }
  }
  CrossEntropySums total;
  for (const CrossEntropySums& p : partial) {
    total.loss += p.loss;
    total.cross_entropy += p.cross_entropy;
    total.correct += p.correct;
  }
  return total;
}

}  // namespace gcprune::trainer
