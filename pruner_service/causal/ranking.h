// Selection of the weights to prune: the k still-kept weights with the smallest score, ranked over all
// layers or layer by layer, under per-layer sparsity limits, with a deterministic tie-break.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_RANKING_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_RANKING_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "pruner_service/causal/mask_set.h"

namespace gcprune::pruner {

enum class RankScope {
  kGlobal,    // one ranking over all prunable weights (METHOD.md §3.4)
  kPerLayer,  // every layer pruned to (about) the same sparsity, each ranked on its own
};

// "global", "per-layer" (and back). INVALID_ARGUMENT for an unknown name.
absl::StatusOr<RankScope> ParseRankScope(absl::string_view name);
absl::string_view RankScopeName(RankScope scope);

// Per-layer sparsity limits, applied to every prunable tensor after each iteration.
struct LayerLimits {
  // Once an iteration's global total (pruned + count) reaches ⌊min_sparsity · N⌋, every layer's sparsity
  // after it is at least min_sparsity (⌊min_sparsity · numel⌋ weights); before that the floor is 0, so the
  // early iterations rank freely. In [0, 1].
  double min_sparsity = 0.0;
  // No selection takes a layer beyond ⌊max_sparsity · numel⌋ pruned weights (a layer already beyond it,
  // e.g. by a client's mask, is pruned no further). In [0, 1], >= min_sparsity.
  double max_sparsity = 1.0;
  // Unless true, every layer keeps at least one weight, whatever max_sparsity says.
  bool allow_collapse = false;
};

// INVALID_ARGUMENT naming the field if a limit is not finite, outside [0, 1], or min > max.
absl::Status ValidateLayerLimits(const LayerLimits& limits);

// The outcome of a selection.
struct Selection {
  std::vector<int64_t> features;    // feature indices to prune, ascending, all currently kept
  std::vector<int64_t> per_tensor;  // number selected per prunable tensor (MaskSet order)
  int64_t requested = 0;            // the count asked for
  // requested − features.size(): weights that could not be pruned because the layers' maximum sparsity
  // (or the one-weight-per-layer rule) left no room. 0 whenever the request is feasible.
  int64_t shortfall = 0;
  // Weights by which the layers' minimum sparsity is not met after the selection, because meeting it
  // would have needed more than the requested count (possible only by rounding, or when earlier
  // iterations did not apply the same floors).
  int64_t unmet_floor = 0;
};

// Order-preserving map from a float score to an unsigned key: a < b ⇔ OrderKey(a) < OrderKey(b) for
// non-NaN a, b; −0 and +0 map to the same key; every NaN maps to the largest key (ranked after +inf,
// so a NaN score is never pruned before a number, as torch.sort orders them).
uint32_t OrderKey(float score);
// OrderKey of each score, or of its absolute value when `absolute` (|β|, |w|). Output size = input size.
std::vector<uint32_t> OrderKeys(absl::Span<const float> scores, bool absolute);

// Chooses `count` kept weights of `mask` to prune: those with the smallest key, ties broken by the
// smaller feature index (so the result is a deterministic function of keys, mask and arguments).
//   kGlobal:   the `count` smallest over all layers, under the limits: the weights a layer needs to reach
//              its floor are taken first (its smallest), then the rest globally from the layers below
//              their maximum; when a layer fills up, its share moves to the other layers.
//   kPerLayer: the total after the iteration (pruned + count) is apportioned to the layers in proportion
//              to their sizes, clamped to each layer's [current pruned + floor need, maximum] (largest
//              remainder, ties to the lower layer), and each layer prunes its smallest.
// Infeasible requests are met as far as possible (best effort): the result says by how much it fell
// short (Selection::shortfall, unmet_floor); the caller decides whether that is an error.
// `keys`: one per feature (mask.num_features()); keys of pruned features are ignored.
// INVALID_ARGUMENT: keys of the wrong size, count < 0 or > mask.num_kept(), invalid limits.
// Cost: O(N) memory and expected O(N · rounds) time (nth_element), rounds <= layers + 1.
absl::StatusOr<Selection> SelectToPrune(absl::Span<const uint32_t> keys, const MaskSet& mask, int64_t count,
                                        RankScope scope, const LayerLimits& limits);

// SelectToPrune over float scores (OrderKeys(scores, absolute)).
absl::StatusOr<Selection> SelectSmallest(absl::Span<const float> scores, bool absolute, const MaskSet& mask,
                                         int64_t count, RankScope scope, const LayerLimits& limits);

// Selects every kept weight with flagged[k] != 0, except that a layer is pruned no further than its
// maximum (lowest feature indices first); the floors do not apply. Used for V1's "prune iff β = 0".
// `requested` = flagged kept weights, shortfall = those left because of the maximum.
// INVALID_ARGUMENT: flags of the wrong size or invalid limits.
absl::StatusOr<Selection> SelectFlagged(absl::Span<const uint8_t> flagged, const MaskSet& mask,
                                        const LayerLimits& limits);

namespace internal {
// SelectToPrune with the candidate representation it uses only above 2^32 features; for tests.
absl::StatusOr<Selection> SelectToPruneWide(absl::Span<const uint32_t> keys, const MaskSet& mask, int64_t count,
                                            RankScope scope, const LayerLimits& limits);
}  // namespace internal

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_RANKING_H_
