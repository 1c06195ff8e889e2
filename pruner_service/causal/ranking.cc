// Smallest-score selection with nth_element, per-layer floors and caps, and exact integer apportionment.
#include "pruner_service/causal/ranking.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace gcprune::pruner {
namespace {

// A candidate weight, ordered by (key, feature index): a strict total order, so the set nth_element puts
// in front is unique. When N <= 2^32 (every practical model) a candidate is one uint64 with the key in
// the high half and the index in the low half, whose integer order is exactly that order; larger layouts
// use a two-field struct.
using PackedEntry = uint64_t;
struct WideEntry {
  uint32_t key;
  int64_t index;
};
inline bool operator<(const WideEntry& a, const WideEntry& b) {
  return a.key != b.key ? a.key < b.key : a.index < b.index;
}

template <typename E>
E MakeEntry(uint32_t key, int64_t index);
template <>
PackedEntry MakeEntry<PackedEntry>(uint32_t key, int64_t index) {
  return (static_cast<uint64_t>(key) << 32) | static_cast<uint64_t>(index);
}
template <>
WideEntry MakeEntry<WideEntry>(uint32_t key, int64_t index) {
  return {key, index};
}
inline int64_t IndexOf(PackedEntry e) { return static_cast<int64_t>(e & 0xFFFFFFFFu); }
inline int64_t IndexOf(const WideEntry& e) { return e.index; }

// ⌊fraction · n⌋ clamped to [0, n], tolerant of decimal fractions (0.29 · 100 is 28.999999999999996).
int64_t FloorCount(double fraction, int64_t n) {
  const double x = std::floor(fraction * static_cast<double>(n) + 1e-9);
  return std::clamp<int64_t>(static_cast<int64_t>(x), 0, n);
}

// Per tensor: how many of its kept weights this iteration may prune (hi) and must prune (lo).
struct Bounds {
  std::vector<int64_t> lo, hi;
};

Bounds ComputeBounds(const MaskSet& mask, int64_t target_total, const LayerLimits& limits) {
  const int num = mask.num_tensors();
  Bounds b{std::vector<int64_t>(num), std::vector<int64_t>(num)};
  // Floors start once the iteration's total reaches the global floor, so that they are feasible.
  const bool floors_on =
      limits.min_sparsity > 0 && target_total >= FloorCount(limits.min_sparsity, mask.num_features());
  const double floor_fraction = floors_on ? limits.min_sparsity : 0.0;
  for (int p = 0; p < num; ++p) {
    const int64_t n = mask.tensor(p).numel;
    const int64_t pruned = mask.num_pruned(p);
    int64_t cap = FloorCount(limits.max_sparsity, n);
    if (!limits.allow_collapse) cap = std::min(cap, n - 1);
    const int64_t floor = std::min(FloorCount(floor_fraction, n), cap);
    b.hi[p] = std::max<int64_t>(0, cap - pruned);
    b.lo[p] = std::max<int64_t>(0, floor - pruned);
  }
  return b;
}

// Lowers the lo values so that they sum to at most `budget`, evenly from the top (water level), and
// returns by how much the sum went down.
int64_t TrimFloors(int64_t budget, std::vector<int64_t>* lo) {
  const int64_t sum = std::accumulate(lo->begin(), lo->end(), int64_t{0});
  if (sum <= budget) return 0;
  auto level_sum = [&](int64_t c) {
    int64_t s = 0;
    for (int64_t v : *lo) s += std::min(v, c);
    return s;
  };
  int64_t low = 0, high = *std::max_element(lo->begin(), lo->end());  // level_sum(low) <= budget
  while (low < high) {
    const int64_t mid = low + (high - low + 1) / 2;
    if (level_sum(mid) <= budget)
      low = mid;
    else
      high = mid - 1;
  }
  int64_t remaining = budget - level_sum(low);
  for (int64_t& v : *lo) {
    int64_t capped = std::min(v, low);
    if (v > low && remaining > 0) {
      ++capped;
      --remaining;
    }
    v = capped;
  }
  return sum - budget;
}

// Moves the `k` smallest entries of [first, last) to its front (unordered).
template <typename It>
void PartitionSmallest(It first, It last, int64_t k) {
  if (k <= 0 || k >= last - first) return;
  std::nth_element(first, first + k, last);
}

// Entries of the kept weights, tensor by tensor (so each tensor's entries are one contiguous segment,
// starting at segment[p]).
template <typename E>
std::vector<E> BuildEntries(absl::Span<const uint32_t> keys, const MaskSet& mask, std::vector<size_t>* segment) {
  std::vector<E> entries;
  entries.reserve(static_cast<size_t>(mask.num_kept()));
  segment->assign(static_cast<size_t>(mask.num_tensors()) + 1, 0);
  const uint8_t* keep = mask.keep().data();
  for (int p = 0; p < mask.num_tensors(); ++p) {
    (*segment)[p] = entries.size();
    const int64_t begin = mask.tensor(p).offset, end = begin + mask.tensor(p).numel;
    for (int64_t k = begin; k < end; ++k) {
      if (keep[k]) entries.push_back(MakeEntry<E>(keys[k], k));
    }
  }
  segment->back() = entries.size();
  return entries;
}

// Global selection of `remaining` entries from `pool` with at most extra[p] per tensor; appends the chosen
// ones to `chosen`. Layers whose unconstrained share exceeds their room are saturated with their smallest
// and removed, then the rest is selected again: this equals taking entries in ascending order and
// skipping full layers.
template <typename E>
void SelectGlobalWithCaps(std::vector<E> pool, int64_t remaining, std::vector<int64_t> extra, const MaskSet& mask,
                          std::vector<E>* chosen) {
  const size_t num = extra.size();
  while (remaining > 0 && !pool.empty()) {
    const int64_t k = std::min<int64_t>(remaining, static_cast<int64_t>(pool.size()));
    PartitionSmallest(pool.begin(), pool.end(), k);
    std::vector<int64_t> share(num, 0);
    for (int64_t i = 0; i < k; ++i) ++share[mask.TensorOfFeature(IndexOf(pool[i]))];
    std::vector<bool> saturated(num, false);
    bool any = false;
    for (size_t p = 0; p < num; ++p) {
      if (share[p] > extra[p]) saturated[p] = any = true;
    }
    if (!any) {
      chosen->insert(chosen->end(), pool.begin(), pool.begin() + k);
      return;
    }
    std::vector<E> rest;
    rest.reserve(pool.size());
    std::vector<std::vector<E>> full(num);
    for (const E& e : pool) {
      const int p = mask.TensorOfFeature(IndexOf(e));
      (saturated[p] ? full[p] : rest).push_back(e);
    }
    for (size_t p = 0; p < num; ++p) {
      if (!saturated[p]) continue;
      PartitionSmallest(full[p].begin(), full[p].end(), extra[p]);
      chosen->insert(chosen->end(), full[p].begin(), full[p].begin() + extra[p]);
      remaining -= extra[p];
      extra[p] = 0;
    }
    pool = std::move(rest);
  }
}

// Integer targets t_p in [a_p, b_p] with sum `total` (which must lie in [Σa, Σb]), as close as possible
// to a common fraction λ of each tensor's size: t_p ≈ clamp(λ · n_p, a_p, b_p), largest remainder.
std::vector<int64_t> Apportion(const std::vector<int64_t>& n, const std::vector<int64_t>& a,
                               const std::vector<int64_t>& b, int64_t total) {
  const size_t num = n.size();
  auto value = [&](double lambda, size_t p) {
    return std::clamp(lambda * static_cast<double>(n[p]), static_cast<double>(a[p]), static_cast<double>(b[p]));
  };
  double lo = 0.0, hi = 1.0;
  for (int iter = 0; iter < 100; ++iter) {
    const double mid = 0.5 * (lo + hi);
    double sum = 0;
    for (size_t p = 0; p < num; ++p) sum += value(mid, p);
    (sum < static_cast<double>(total) ? lo : hi) = mid;
  }
  std::vector<int64_t> t(num);
  std::vector<double> frac(num);
  int64_t sum = 0;
  for (size_t p = 0; p < num; ++p) {
    const double v = value(hi, p);
    t[p] = std::clamp<int64_t>(static_cast<int64_t>(std::floor(v)), a[p], b[p]);
    frac[p] = v - std::floor(v);
    sum += t[p];
  }
  // Order of preference for the leftover units: larger remainder first, then lower tensor index.
  std::vector<size_t> order(num);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return frac[x] > frac[y]; });
  while (sum < total) {
    bool moved = false;
    for (size_t p : order) {
      if (sum == total) break;
      if (t[p] < b[p]) ++t[p], ++sum, moved = true;
    }
    if (!moved) break;
  }
  while (sum > total) {
    bool moved = false;
    for (auto it = order.rbegin(); it != order.rend() && sum > total; ++it) {
      if (t[*it] > a[*it]) --t[*it], --sum, moved = true;
    }
    if (!moved) break;
  }
  return t;
}

// Sorted feature indices of the chosen entries, via a flag array (O(N), cheaper than sorting).
template <typename E>
void Finish(const std::vector<E>& chosen, const MaskSet& mask, Selection* out) {
  std::vector<uint8_t> flag(static_cast<size_t>(mask.num_features()), 0);
  for (const E& e : chosen) flag[static_cast<size_t>(IndexOf(e))] = 1;
  out->per_tensor.assign(static_cast<size_t>(mask.num_tensors()), 0);
  out->features.reserve(chosen.size());
  for (int p = 0; p < mask.num_tensors(); ++p) {
    const size_t before = out->features.size();
    const int64_t begin = mask.tensor(p).offset, end = begin + mask.tensor(p).numel;
    for (int64_t k = begin; k < end; ++k) {
      if (flag[static_cast<size_t>(k)]) out->features.push_back(k);
    }
    out->per_tensor[p] = static_cast<int64_t>(out->features.size() - before);
  }
}

// The selection proper, for k <= the room left (see SelectToPrune).
template <typename E>
void SelectEntries(absl::Span<const uint32_t> keys, const MaskSet& mask, int64_t k, RankScope scope,
                   const Bounds& bounds, Selection* out) {
  std::vector<size_t> segment;
  std::vector<E> entries = BuildEntries<E>(keys, mask, &segment);
  const int num = mask.num_tensors();
  std::vector<E> chosen;
  chosen.reserve(static_cast<size_t>(k));
  auto take_smallest = [&](int p, int64_t m) {
    auto first = entries.begin() + static_cast<std::ptrdiff_t>(segment[p]);
    auto last = entries.begin() + static_cast<std::ptrdiff_t>(segment[p + 1]);
    PartitionSmallest(first, last, m);
    chosen.insert(chosen.end(), first, first + m);
  };

  if (scope == RankScope::kPerLayer) {
    std::vector<int64_t> n(num), a(num), b(num);
    for (int p = 0; p < num; ++p) {
      n[p] = mask.tensor(p).numel;
      a[p] = mask.num_pruned(p) + bounds.lo[p];
      b[p] = mask.num_pruned(p) + bounds.hi[p];
    }
    const std::vector<int64_t> t = Apportion(n, a, b, mask.num_pruned() + k);
    for (int p = 0; p < num; ++p) take_smallest(p, t[p] - mask.num_pruned(p));
  } else {
    int64_t remaining = k;
    std::vector<int64_t> extra(num);
    bool whole = true;  // every tensor's whole segment is a candidate: no copy needed
    for (int p = 0; p < num; ++p) {
      take_smallest(p, bounds.lo[p]);
      remaining -= bounds.lo[p];
      extra[p] = bounds.hi[p] - bounds.lo[p];
      whole = whole && bounds.lo[p] == 0 && extra[p] > 0;
    }
    std::vector<E> pool;
    if (whole) {
      pool = std::move(entries);
    } else {
      pool.reserve(entries.size());
      for (int p = 0; p < num; ++p) {
        if (extra[p] == 0) continue;
        pool.insert(pool.end(), entries.begin() + static_cast<std::ptrdiff_t>(segment[p] + bounds.lo[p]),
                    entries.begin() + static_cast<std::ptrdiff_t>(segment[p + 1]));
      }
    }
    SelectGlobalWithCaps(std::move(pool), remaining, std::move(extra), mask, &chosen);
  }
  Finish(chosen, mask, out);
}

}  // namespace

absl::StatusOr<RankScope> ParseRankScope(absl::string_view name) {
  if (name == "global") return RankScope::kGlobal;
  if (name == "per-layer") return RankScope::kPerLayer;
  return absl::InvalidArgumentError(absl::StrCat("scope: unknown value '", name, "' (global, per-layer)"));
}

absl::string_view RankScopeName(RankScope scope) { return scope == RankScope::kGlobal ? "global" : "per-layer"; }

absl::Status ValidateLayerLimits(const LayerLimits& limits) {
  auto check = [](const char* field, double v) -> absl::Status {
    if (!std::isfinite(v) || v < 0.0 || v > 1.0) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": ", v, " is not in [0, 1]"));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check("min_layer_sparsity", limits.min_sparsity); !s.ok()) return s;
  if (absl::Status s = check("max_layer_sparsity", limits.max_sparsity); !s.ok()) return s;
  if (limits.min_sparsity > limits.max_sparsity) {
    return absl::InvalidArgumentError(absl::StrCat("min_layer_sparsity: ", limits.min_sparsity,
                                                   " is above max_layer_sparsity ", limits.max_sparsity));
  }
  return absl::OkStatus();
}

uint32_t OrderKey(float score) {
  if (std::isnan(score)) return 0xFFFFFFFFu;
  if (score == 0.0f) score = 0.0f;  // −0 → +0
  uint32_t bits;
  std::memcpy(&bits, &score, sizeof bits);
  // Negative floats order in reverse of their bits: flip all; positive ones go above them.
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

std::vector<uint32_t> OrderKeys(absl::Span<const float> scores, bool absolute) {
  std::vector<uint32_t> keys(scores.size());
  if (absolute) {
    for (size_t k = 0; k < scores.size(); ++k) keys[k] = OrderKey(std::fabs(scores[k]));
  } else {
    for (size_t k = 0; k < scores.size(); ++k) keys[k] = OrderKey(scores[k]);
  }
  return keys;
}

namespace {

absl::StatusOr<Selection> Select(absl::Span<const uint32_t> keys, const MaskSet& mask, int64_t count,
                                 RankScope scope, const LayerLimits& limits, bool wide) {
  if (static_cast<int64_t>(keys.size()) != mask.num_features()) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection: ", keys.size(), " scores for ", mask.num_features(), " features"));
  }
  if (count < 0 || count > mask.num_kept()) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection: count ", count, " is not in [0, ", mask.num_kept(), "] (kept weights)"));
  }
  if (absl::Status s = ValidateLayerLimits(limits); !s.ok()) return s;

  Selection out;
  out.requested = count;
  Bounds bounds = ComputeBounds(mask, mask.num_pruned() + count, limits);
  const int64_t room = std::accumulate(bounds.hi.begin(), bounds.hi.end(), int64_t{0});
  const int64_t k = std::min(count, room);
  out.shortfall = count - k;
  out.unmet_floor = TrimFloors(k, &bounds.lo);
  if (k == 0) {
    out.per_tensor.assign(static_cast<size_t>(mask.num_tensors()), 0);
    return out;
  }

  if (!wide && mask.num_features() <= (int64_t{1} << 32)) {
    SelectEntries<PackedEntry>(keys, mask, k, scope, bounds, &out);
  } else {
    SelectEntries<WideEntry>(keys, mask, k, scope, bounds, &out);
  }
  return out;
}

}  // namespace

absl::StatusOr<Selection> SelectToPrune(absl::Span<const uint32_t> keys, const MaskSet& mask, int64_t count,
                                        RankScope scope, const LayerLimits& limits) {
  return Select(keys, mask, count, scope, limits, /*wide=*/false);
}

namespace internal {
absl::StatusOr<Selection> SelectToPruneWide(absl::Span<const uint32_t> keys, const MaskSet& mask, int64_t count,
                                            RankScope scope, const LayerLimits& limits) {
  return Select(keys, mask, count, scope, limits, /*wide=*/true);
}
}  // namespace internal

absl::StatusOr<Selection> SelectSmallest(absl::Span<const float> scores, bool absolute, const MaskSet& mask,
                                         int64_t count, RankScope scope, const LayerLimits& limits) {
  if (static_cast<int64_t>(scores.size()) != mask.num_features()) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection: ", scores.size(), " scores for ", mask.num_features(), " features"));
  }
  return SelectToPrune(OrderKeys(scores, absolute), mask, count, scope, limits);
}

absl::StatusOr<Selection> SelectFlagged(absl::Span<const uint8_t> flagged, const MaskSet& mask,
                                        const LayerLimits& limits) {
  if (static_cast<int64_t>(flagged.size()) != mask.num_features()) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection: ", flagged.size(), " flags for ", mask.num_features(), " features"));
  }
  if (absl::Status s = ValidateLayerLimits(limits); !s.ok()) return s;
  const Bounds bounds = ComputeBounds(mask, mask.num_pruned(), limits);
  Selection out;
  out.per_tensor.assign(static_cast<size_t>(mask.num_tensors()), 0);
  const uint8_t* keep = mask.keep().data();
  for (int p = 0; p < mask.num_tensors(); ++p) {
    const int64_t begin = mask.tensor(p).offset, end = begin + mask.tensor(p).numel;
    for (int64_t k = begin; k < end; ++k) {
      if (!keep[k] || !flagged[k]) continue;
      ++out.requested;
      if (out.per_tensor[p] < bounds.hi[p]) {
        out.features.push_back(k);
        ++out.per_tensor[p];
      } else {
        ++out.shortfall;
      }
    }
  }
  return out;
}

}  // namespace gcprune::pruner
