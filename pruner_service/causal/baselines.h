// The baseline pruning methods of METHOD.md §5, as ranking keys for SelectToPrune: magnitude (smallest
// |w| of the current weights) and seeded uniform random. Neither needs samples.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_BASELINES_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_BASELINES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/ranking.h"

namespace gcprune::pruner {

// The current weights of every prunable tensor, one span per tensor in MaskSet order (layout order of the
// prunable tensors), each of the tensor's numel floats in flat row-major order.
using TensorWeights = std::vector<absl::Span<const float>>;

// Ranking keys OrderKey(|w_k|), one per feature, for magnitude pruning. Values at already-pruned
// positions are ignored (any value allowed). INVALID_ARGUMENT, naming the tensor, when the number of
// spans is not mask.num_tensors(), a span's size is not its tensor's numel, or a kept weight is NaN or
// infinite (naming the element index).
absl::StatusOr<std::vector<uint32_t>> MagnitudeKeys(const MaskSet& mask, const TensorWeights& weights);

// Ranking keys for random pruning at iteration `iteration` (>= 1): uniform 32-bit keys from splitmix64
// (splitmix64.h), reproducible in any language:
//   stream = SplitMix64(seed); draw `iteration` outputs, the last of which is s;
//   keys:    rng = SplitMix64(s); key_k = rng.Next() >> 32 for k = 0 .. num_features − 1 (pruned ones too).
// The smallest keys among the kept weights are pruned (ties by index), so every subset of the kept
// weights of the requested size is (up to 2^-32 effects) equally likely, and iterations draw
// independent keys.
std::vector<uint32_t> RandomKeys(int64_t num_features, uint64_t seed, int iteration);

// Global or layer-wise magnitude pruning of `count` kept weights: SelectToPrune(MagnitudeKeys(...)).
absl::StatusOr<Selection> SelectByMagnitude(const MaskSet& mask, const TensorWeights& weights, int64_t count,
                                            RankScope scope, const LayerLimits& limits);

// Random pruning of `count` kept weights: SelectToPrune(RandomKeys(...)). INVALID_ARGUMENT also for
// iteration < 1.
absl::StatusOr<Selection> SelectRandom(const MaskSet& mask, uint64_t seed, int iteration, int64_t count,
                                       RankScope scope, const LayerLimits& limits);

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_BASELINES_H_
