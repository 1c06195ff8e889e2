// Magnitude and random ranking keys for the baseline methods.
#include "pruner_service/causal/baselines.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "pruner_service/causal/splitmix64.h"

namespace gcprune::pruner {

absl::StatusOr<std::vector<uint32_t>> MagnitudeKeys(const MaskSet& mask, const TensorWeights& weights) {
  if (static_cast<int>(weights.size()) != mask.num_tensors()) {
    return absl::InvalidArgumentError(absl::StrCat("weights: ", weights.size(), " tensors given, the layout has ",
                                                   mask.num_tensors(), " prunable tensors"));
  }
  std::vector<uint32_t> keys(static_cast<size_t>(mask.num_features()));
  for (int p = 0; p < mask.num_tensors(); ++p) {
    const MaskTensor& t = mask.tensor(p);
    const absl::Span<const float> w = weights[p];
    if (static_cast<int64_t>(w.size()) != t.numel) {
      return absl::InvalidArgumentError(
          absl::StrCat("weights of tensor '", t.name, "': ", w.size(), " values, expected ", t.numel));
    }
    const absl::Span<const uint8_t> keep = mask.tensor_keep(p);
    uint32_t* out = keys.data() + t.offset;
    for (int64_t i = 0; i < t.numel; ++i) {
      if (keep[i] && !std::isfinite(w[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("weights of tensor '", t.name, "': element ", i, " is ", w[i]));
      }
      out[i] = OrderKey(std::fabs(w[i]));
    }
  }
  return keys;
}

std::vector<uint32_t> RandomKeys(int64_t num_features, uint64_t seed, int iteration) {
  SplitMix64 stream(seed);
  uint64_t s = 0;
  for (int j = 0; j < iteration; ++j) s = stream.Next();
  SplitMix64 rng(s);
  std::vector<uint32_t> keys(static_cast<size_t>(num_features > 0 ? num_features : 0));
  for (uint32_t& key : keys) key = static_cast<uint32_t>(rng.Next() >> 32);
  return keys;
}

absl::StatusOr<Selection> SelectByMagnitude(const MaskSet& mask, const TensorWeights& weights, int64_t count,
                                            RankScope scope, const LayerLimits& limits) {
  GCPRUNE_ASSIGN_OR_RETURN(std::vector<uint32_t> keys, MagnitudeKeys(mask, weights));
  return SelectToPrune(keys, mask, count, scope, limits);
}

absl::StatusOr<Selection> SelectRandom(const MaskSet& mask, uint64_t seed, int iteration, int64_t count,
                                       RankScope scope, const LayerLimits& limits) {
  if (iteration < 1) {
    return absl::InvalidArgumentError(absl::StrCat("random pruning: iteration ", iteration, " is below 1"));
  }
  return SelectToPrune(RandomKeys(mask.num_features(), seed, iteration), mask, count, scope, limits);
}

}  // namespace gcprune::pruner
