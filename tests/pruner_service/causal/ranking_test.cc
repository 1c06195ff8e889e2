// Tests of the selection of weights to prune: ordering, tie-break, scopes, per-layer limits, and a
// comparison with a brute-force sorted greedy on random problems.
#include "pruner_service/causal/ranking.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::testing::ElementsAre;

Layout MakeLayout(const std::vector<int64_t>& sizes) {
  std::vector<TensorSpec> tensors;
  for (size_t i = 0; i < sizes.size(); ++i) tensors.push_back({"t" + std::to_string(i), {sizes[i]}, true});
  absl::StatusOr<Layout> layout = Layout::Create(std::move(tensors));
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *std::move(layout);
}

TEST(RankingTest, OrderKeyPreservesFloatOrder) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> ascending = {-inf,   -1e30f, -2.0f, -1.0f, -1e-38f, 0.0f,
                                        1e-45f, 1e-38f, 1.0f,  1.5f,  3e38f,   inf};
  for (size_t i = 1; i < ascending.size(); ++i) {
    SCOPED_TRACE(ascending[i]);
    EXPECT_LT(OrderKey(ascending[i - 1]), OrderKey(ascending[i]));
  }
  EXPECT_EQ(OrderKey(-0.0f), OrderKey(0.0f));
  EXPECT_GT(OrderKey(std::nanf("")), OrderKey(inf));
  EXPECT_EQ(OrderKey(-std::nanf("")), OrderKey(std::nanf("")));
  EXPECT_EQ(OrderKeys({-3.0f, 2.0f}, /*absolute=*/true), (std::vector<uint32_t>{OrderKey(3.0f), OrderKey(2.0f)}));
}

TEST(RankingTest, GlobalPicksTheSmallestAbsoluteScoresAcrossLayers) {
  const MaskSet mask(MakeLayout({4, 3}));
  const std::vector<float> beta = {0.5f, -0.1f, 0.9f, 0.3f, /**/ -0.2f, 0.05f, 1.0f};
  ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(beta, true, mask, 3, RankScope::kGlobal, {}));
  EXPECT_THAT(s.features, ElementsAre(1, 4, 5));
  EXPECT_THAT(s.per_tensor, ElementsAre(1, 2));
  EXPECT_EQ(s.requested, 3);
  EXPECT_EQ(s.shortfall, 0);
}

TEST(RankingTest, TiesGoToTheLowerFeatureIndex) {
  const MaskSet mask(MakeLayout({5, 5}));
  const std::vector<float> equal(10, 0.25f);
  ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(equal, true, mask, 4, RankScope::kGlobal, {}));
  EXPECT_THAT(s.features, ElementsAre(0, 1, 2, 3));
  // −0 and +0 tie as well.
  const std::vector<float> zeros = {0.0f, -0.0f, 0.0f, -0.0f, 1, 1, 1, 1, 1, 1};
  ASSERT_OK_AND_ASSIGN(Selection z, SelectSmallest(zeros, false, mask, 2, RankScope::kGlobal, {}));
  EXPECT_THAT(z.features, ElementsAre(0, 1));
  // Repeating the selection gives the same answer.
  for (int rep = 0; rep < 3; ++rep) {
    ASSERT_OK_AND_ASSIGN(Selection again, SelectSmallest(equal, true, mask, 4, RankScope::kGlobal, {}));
    EXPECT_EQ(again.features, s.features);
  }
}

TEST(RankingTest, SkipsPrunedWeightsAndNeverPrefersNaN) {
  MaskSet mask(MakeLayout({6}));
  ASSERT_OK(mask.Prune({0, 1}));
  const float nan = std::nanf("");
  const std::vector<float> scores = {0.0f, 0.0f, nan, 5.0f, 4.0f, nan};
  ASSERT_OK_AND_ASSIGN(Selection s,
                       SelectSmallest(scores, true, mask, 3, RankScope::kGlobal, {0, 1, /*allow_collapse=*/true}));
  EXPECT_THAT(s.features, ElementsAre(2, 3, 4));  // both numbers, then the first NaN by index
}

TEST(RankingTest, PerLayerPrunesTheSameFractionOfEachLayer) {
  const MaskSet mask(MakeLayout({100, 10, 40}));
  std::vector<float> scores(150);
  std::iota(scores.begin(), scores.end(), 0.0f);  // layer 0 holds all the smallest scores
  ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(scores, true, mask, 75, RankScope::kPerLayer, {}));
  EXPECT_THAT(s.per_tensor, ElementsAre(50, 5, 20));
  EXPECT_EQ(s.features.size(), 75u);
  // Inside each layer the smallest: layer 1 is features 100..109.
  EXPECT_EQ(std::count_if(s.features.begin(), s.features.end(), [](int64_t f) { return f >= 100 && f < 105; }), 5);
}

TEST(RankingTest, PerLayerApportionsRemaindersExactly) {
  const MaskSet mask(MakeLayout({3, 3, 3}));
  const std::vector<float> scores(9, 1.0f);
  for (int64_t count = 0; count <= 6; ++count) {
    SCOPED_TRACE(count);
    ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(scores, true, mask, count, RankScope::kPerLayer, {}));
    EXPECT_EQ(static_cast<int64_t>(s.features.size()), count);
    const auto [lo, hi] = std::minmax_element(s.per_tensor.begin(), s.per_tensor.end());
    EXPECT_LE(*hi - *lo, 1);
    // Leftover units go to the lower layer on equal remainders.
    EXPECT_GE(s.per_tensor[0], s.per_tensor[2]);
  }
}

TEST(RankingTest, PerLayerKeepsLayersThatAreAlreadyAheadAndBalancesTheRest) {
  MaskSet mask(MakeLayout({10, 10}));
  std::vector<int64_t> first(8);
  std::iota(first.begin(), first.end(), 0);
  ASSERT_OK(mask.Prune(first));  // layer 0 at 80 %, layer 1 at 0 %
  const std::vector<float> scores(20, 1.0f);
  ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(scores, true, mask, 4, RankScope::kPerLayer, {}));
  EXPECT_THAT(s.per_tensor, ElementsAre(0, 4));  // 12 in total: layer 0 cannot go back below 8
}

TEST(RankingTest, MaxLayerSparsityMovesTheRemainderToOtherLayers) {
  const MaskSet mask(MakeLayout({10, 10, 10}));
  std::vector<float> scores(30);
  std::iota(scores.begin(), scores.end(), 0.0f);
  LayerLimits limits;
  limits.max_sparsity = 0.5;
  ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(scores, true, mask, 12, RankScope::kGlobal, limits));
  EXPECT_THAT(s.per_tensor, ElementsAre(5, 5, 2));
  EXPECT_THAT(s.features, ElementsAre(0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21));
}

TEST(RankingTest, NoLayerCollapsesUnlessAllowed) {
  const MaskSet mask(MakeLayout({4, 20}));
  std::vector<float> scores(24, 1.0f);
  for (int i = 0; i < 4; ++i) scores[i] = 0.0f;  // the small layer looks useless
  ASSERT_OK_AND_ASSIGN(Selection kept, SelectSmallest(scores, true, mask, 10, RankScope::kGlobal, {}));
  EXPECT_THAT(kept.per_tensor, ElementsAre(3, 7));
  ASSERT_OK_AND_ASSIGN(Selection collapsed, SelectSmallest(scores, true, mask, 10, RankScope::kGlobal,
                                                           {0, 1, /*allow_collapse=*/true}));
  EXPECT_THAT(collapsed.per_tensor, ElementsAre(4, 6));
}

TEST(RankingTest, MinLayerSparsityAppliesOnceTheGlobalTargetReachesIt) {
  const MaskSet mask(MakeLayout({10, 90}));
  std::vector<float> scores(100, 1.0f);
  for (int i = 0; i < 10; ++i) scores[i] = 100.0f;  // layer 0 looks important
  LayerLimits limits;
  limits.min_sparsity = 0.3;
  // Target 20 % < 30 %: no floor yet, layer 0 untouched.
  ASSERT_OK_AND_ASSIGN(Selection early, SelectSmallest(scores, true, mask, 20, RankScope::kGlobal, limits));
  EXPECT_THAT(early.per_tensor, ElementsAre(0, 20));
  // Target 40 % >= 30 %: layer 0 must reach 3 of 10, the rest comes from layer 1.
  ASSERT_OK_AND_ASSIGN(Selection late, SelectSmallest(scores, true, mask, 40, RankScope::kGlobal, limits));
  EXPECT_THAT(late.per_tensor, ElementsAre(3, 37));
  EXPECT_EQ(late.unmet_floor, 0);
}

TEST(RankingTest, InfeasibleRequestsAreMetAsFarAsPossible) {
  const MaskSet mask(MakeLayout({10, 10}));
  const std::vector<float> scores(20, 1.0f);
  LayerLimits limits;
  limits.max_sparsity = 0.6;
  for (RankScope scope : {RankScope::kGlobal, RankScope::kPerLayer}) {
    SCOPED_TRACE(RankScopeName(scope));
    ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(scores, true, mask, 15, scope, limits));
    EXPECT_THAT(s.per_tensor, ElementsAre(6, 6));
    EXPECT_EQ(s.requested, 15);
    EXPECT_EQ(s.shortfall, 3);
  }
}

TEST(RankingTest, FloorsBeyondTheCountAreReportedNotForced) {
  MaskSet mask(MakeLayout({10, 10}));
  std::vector<int64_t> first(8);
  std::iota(first.begin(), first.end(), 10);
  ASSERT_OK(mask.Prune(first));  // layer 1 far ahead, layer 0 untouched
  LayerLimits limits;
  limits.min_sparsity = 0.5;
  const std::vector<float> scores(20, 1.0f);
  ASSERT_OK_AND_ASSIGN(Selection s, SelectSmallest(scores, true, mask, 2, RankScope::kGlobal, limits));
  EXPECT_THAT(s.per_tensor, ElementsAre(2, 0));
  EXPECT_EQ(s.features.size(), 2u);
  EXPECT_EQ(s.unmet_floor, 3);
}

// Brute force: every kept weight sorted by (key, index); the floors' smallest first, then the rest in
// order, skipping layers at their maximum.
std::vector<int64_t> BruteForceGlobal(const std::vector<uint32_t>& keys, const MaskSet& mask, int64_t count,
                                      const LayerLimits& limits) {
  const int num = mask.num_tensors();
  const int64_t total = mask.num_pruned() + count;
  const bool floors_on =
      total >= static_cast<int64_t>(std::floor(limits.min_sparsity * mask.num_features() + 1e-9));
  std::vector<int64_t> lo(num), hi(num);
  for (int p = 0; p < num; ++p) {
    const int64_t n = mask.tensor(p).numel;
    int64_t cap = static_cast<int64_t>(std::floor(limits.max_sparsity * n + 1e-9));
    if (!limits.allow_collapse) cap = std::min(cap, n - 1);
    const int64_t fl =
        floors_on ? std::min<int64_t>(static_cast<int64_t>(std::floor(limits.min_sparsity * n + 1e-9)), cap) : 0;
    hi[p] = std::max<int64_t>(0, cap - mask.num_pruned(p));
    lo[p] = std::max<int64_t>(0, fl - mask.num_pruned(p));
  }
  std::vector<int64_t> order;
  for (int64_t k = 0; k < mask.num_features(); ++k) {
    if (mask.is_kept(k)) order.push_back(k);
  }
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return keys[a] != keys[b] ? keys[a] < keys[b] : a < b; });
  std::vector<int64_t> taken(num, 0), out;
  std::vector<bool> used(mask.num_features(), false);
  for (int64_t k : order) {  // floors
    const int p = mask.TensorOfFeature(k);
    if (taken[p] < lo[p]) ++taken[p], used[k] = true, out.push_back(k);
  }
  for (int64_t k : order) {
    if (static_cast<int64_t>(out.size()) == count) break;
    const int p = mask.TensorOfFeature(k);
    if (!used[k] && taken[p] < hi[p]) ++taken[p], used[k] = true, out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RankingTest, GlobalSelectionEqualsSortedGreedyOnRandomProblems) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    const int layers = 1 + static_cast<int>(rng() % 5);
    std::vector<int64_t> sizes;
    for (int l = 0; l < layers; ++l) sizes.push_back(1 + static_cast<int64_t>(rng() % 60));
    MaskSet mask(MakeLayout(sizes));
    std::vector<int64_t> prune;
    for (int64_t k = 0; k < mask.num_features(); ++k) {
      if (rng() % 4 == 0) prune.push_back(k);
    }
    ASSERT_OK(mask.Prune(prune));
    std::vector<uint32_t> keys(static_cast<size_t>(mask.num_features()));
    for (uint32_t& key : keys) key = static_cast<uint32_t>(rng() % 16);  // many ties
    LayerLimits limits;
    limits.min_sparsity = (rng() % 2) ? 0.0 : 0.1 * static_cast<double>(rng() % 5);
    limits.max_sparsity = std::max(limits.min_sparsity, 0.5 + 0.1 * static_cast<double>(rng() % 6));
    limits.allow_collapse = rng() % 2;
    const int64_t count = static_cast<int64_t>(rng() % (mask.num_kept() + 1));
    ASSERT_OK_AND_ASSIGN(Selection s, SelectToPrune(keys, mask, count, RankScope::kGlobal, limits));
    ASSERT_OK_AND_ASSIGN(Selection wide,
                         internal::SelectToPruneWide(keys, mask, count, RankScope::kGlobal, limits));
    EXPECT_EQ(wide.features, s.features);
    EXPECT_EQ(wide.per_tensor, s.per_tensor);
    if (s.unmet_floor == 0) {
      EXPECT_EQ(s.features, BruteForceGlobal(keys, mask, count, limits));
    }
    EXPECT_EQ(static_cast<int64_t>(s.features.size()) + s.shortfall, count);
    MaskSet after = mask;
    ASSERT_OK(after.Prune(s.features));
    for (int p = 0; p < mask.num_tensors(); ++p) {
      // A layer already past its maximum (by the random setup) gets nothing more.
      const int64_t n = mask.tensor(p).numel;
      int64_t cap = static_cast<int64_t>(std::floor(limits.max_sparsity * n + 1e-9));
      if (!limits.allow_collapse) cap = std::min(cap, n - 1);
      EXPECT_LE(after.num_pruned(p), std::max(cap, mask.num_pruned(p)));
    }
  }
}

TEST(RankingTest, PerLayerSelectionTakesEachLayersSmallestOnRandomProblems) {
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 200; ++trial) {
    SCOPED_TRACE(trial);
    const int layers = 1 + static_cast<int>(rng() % 5);
    std::vector<int64_t> sizes;
    for (int l = 0; l < layers; ++l) sizes.push_back(2 + static_cast<int64_t>(rng() % 60));
    MaskSet mask(MakeLayout(sizes));
    std::vector<int64_t> prune;
    for (int64_t k = 0; k < mask.num_features(); ++k) {
      if (rng() % 5 == 0) prune.push_back(k);
    }
    ASSERT_OK(mask.Prune(prune));
    std::vector<uint32_t> keys(static_cast<size_t>(mask.num_features()));
    for (uint32_t& key : keys) key = static_cast<uint32_t>(rng() % 16);
    const int64_t count = static_cast<int64_t>(rng() % (mask.num_kept() + 1));
    const LayerLimits limits{0.0, 1.0, /*allow_collapse=*/true};
    ASSERT_OK_AND_ASSIGN(Selection s, SelectToPrune(keys, mask, count, RankScope::kPerLayer, limits));
    ASSERT_OK_AND_ASSIGN(Selection wide,
                         internal::SelectToPruneWide(keys, mask, count, RankScope::kPerLayer, limits));
    EXPECT_EQ(wide.features, s.features);
    EXPECT_EQ(s.shortfall, 0);
    ASSERT_EQ(static_cast<int64_t>(s.features.size()), count);
    std::vector<bool> chosen(static_cast<size_t>(mask.num_features()), false);
    for (int64_t f : s.features) chosen[static_cast<size_t>(f)] = true;
    // Within a layer, every chosen weight ranks before every kept weight that was not chosen.
    for (int p = 0; p < mask.num_tensors(); ++p) {
      const int64_t begin = mask.tensor(p).offset, end = begin + mask.tensor(p).numel;
      for (int64_t a = begin; a < end; ++a) {
        if (!chosen[a]) continue;
        for (int64_t b = begin; b < end; ++b) {
          if (!mask.is_kept(b) || chosen[b]) continue;
          EXPECT_TRUE(keys[a] < keys[b] || (keys[a] == keys[b] && a < b)) << a << " vs " << b;
        }
      }
    }
  }
}

TEST(RankingTest, SelectFlaggedHonoursTheMaximum) {
  MaskSet mask(MakeLayout({4, 4}));
  ASSERT_OK(mask.Prune({0}));
  const std::vector<uint8_t> flagged = {1, 1, 0, 1, 1, 1, 1, 1};
  ASSERT_OK_AND_ASSIGN(Selection s, SelectFlagged(flagged, mask, {}));
  EXPECT_THAT(s.features, ElementsAre(1, 3, 4, 5, 6));  // layer 1 keeps one weight
  EXPECT_EQ(s.requested, 6);
  EXPECT_EQ(s.shortfall, 1);
}

TEST(RankingTest, RejectsInvalidArguments) {
  MaskSet mask(MakeLayout({4}));
  ASSERT_OK(mask.Prune({0}));
  const std::vector<float> scores(4, 1.0f);
  EXPECT_THAT(SelectSmallest(std::vector<float>(3), true, mask, 1, RankScope::kGlobal, {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "3 scores for 4 features"));
  EXPECT_THAT(SelectSmallest(scores, true, mask, 4, RankScope::kGlobal, {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "count 4 is not in [0, 3]"));
  EXPECT_THAT(SelectSmallest(scores, true, mask, -1, RankScope::kGlobal, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SelectSmallest(scores, true, mask, 1, RankScope::kGlobal, {0.6, 0.5, false}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "above max_layer_sparsity"));
  EXPECT_THAT(SelectSmallest(scores, true, mask, 1, RankScope::kGlobal, {0, 1.5, false}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "max_layer_sparsity: 1.5"));
  EXPECT_THAT(SelectFlagged(std::vector<uint8_t>(5), mask, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRankScope("local"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(*ParseRankScope("per-layer"), RankScope::kPerLayer);
}

}  // namespace
}  // namespace gcprune::pruner
