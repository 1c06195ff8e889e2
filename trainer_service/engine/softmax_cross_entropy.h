// Softmax cross-entropy with label smoothing on plain logits: PyTorch's
// CrossEntropyLoss(label_smoothing=ε) per example, loss = (1−ε)·(−log p_y) + ε·mean_c(−log p_c).
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_SOFTMAX_CROSS_ENTROPY_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_SOFTMAX_CROSS_ENTROPY_H_

#include <cstdint>

namespace gcprune::trainer {

// Sums over the examples of one batch.
struct CrossEntropySums {
  double loss = 0.0;           // Σ label-smoothed loss
  double cross_entropy = 0.0;  // Σ −log p_label (the loss with ε = 0)
  int64_t correct = 0;         // examples whose arg-max logit (the first on ties) is the label
};

// `logits` [n, c] row-major, `labels` [n] in [0, c) (not checked: the caller validates them), ε =
// `smoothing` in [0, 1]. When `grad` is not null, writes d(mean loss)/d(logits) [n, c]:
//   grad = (softmax(logits) − (1−ε)·onehot(label) − ε/c) / n.
// The result depends only on the inputs, not on the number of threads: rows are split into fixed chunks
// whose partial sums are added in order.
CrossEntropySums SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t n, int64_t c,
                                     float smoothing, float* grad);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_SOFTMAX_CROSS_ENTROPY_H_
