// Vectorised, OpenMP-parallel element-wise kernels of the engine: masking and the SGD updates of the
// causal step. Every element is computed independently, so results do not depend on the thread count.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_ELEMENTWISE_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_ELEMENTWISE_H_

#include <cstdint>

namespace gcprune::trainer {

// x[i] = 0 where mask[i] == 0, for i in [0, n).
void ApplyMask(float* x, const uint8_t* mask, int64_t n);

// Plain SGD on one tensor: w1 = w0 − lr·g. With `delta` not null also writes delta[i] = w1 − w0 (the
// rounded difference actually applied). With `mask` not null, masked elements get w = 0 and delta = 0.
void SgdStep(float* w, const float* g, const uint8_t* mask, float lr, float* delta, int64_t n);

// SGD with momentum as torch.optim.SGD (no dampening, no weight decay, not Nesterov):
//   buf = first ? g : momentum·buf + g;  w1 = w0 − lr·buf;  delta = w1 − w0 (when `delta` is not null).
// With `mask` not null, masked elements get w = buf = delta = 0.
void SgdMomentumStep(float* w, const float* g, float* buf, bool first, float momentum, const uint8_t* mask,
                     float lr, float* delta, int64_t n);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_ELEMENTWISE_H_
