// Tests of the baselines: magnitude picks the smallest |w|, random is seeded, reproducible and uniform.
#include "pruner_service/causal/baselines.h"

#include <cmath>
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
  for (size_t i = 0; i < sizes.size(); ++i) tensors.push_back({"w" + std::to_string(i), {sizes[i]}, true});
  absl::StatusOr<Layout> layout = Layout::Create(std::move(tensors));
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *std::move(layout);
}

TEST(BaselinesTest, MagnitudePicksTheSmallestAbsoluteWeights) {
  const MaskSet mask(MakeLayout({4, 4}));
  const std::vector<float> w0 = {0.3f, -0.01f, 2.0f, -0.5f};
  const std::vector<float> w1 = {-0.02f, 0.7f, 0.04f, -3.0f};
  ASSERT_OK_AND_ASSIGN(Selection s, SelectByMagnitude(mask, {w0, w1}, 3, RankScope::kGlobal, {}));
  EXPECT_THAT(s.features, ElementsAre(1, 4, 6));
}

TEST(BaselinesTest, LayerWiseMagnitudePrunesEachLayerAlike) {
  const MaskSet mask(MakeLayout({4, 4}));
  const std::vector<float> small = {0.01f, 0.02f, 0.03f, 0.04f};
  const std::vector<float> large = {4.0f, 3.0f, 2.0f, 1.0f};
  ASSERT_OK_AND_ASSIGN(Selection s, SelectByMagnitude(mask, {small, large}, 4, RankScope::kPerLayer, {}));
  EXPECT_THAT(s.features, ElementsAre(0, 1, 6, 7));
}

TEST(BaselinesTest, MagnitudeIgnoresValuesOfPrunedWeights) {
  MaskSet mask(MakeLayout({3}));
  ASSERT_OK(mask.Prune({1}));
  const std::vector<float> w = {0.5f, std::nanf(""), 0.1f};
  ASSERT_OK_AND_ASSIGN(Selection s, SelectByMagnitude(mask, {w}, 1, RankScope::kGlobal, {}));
  EXPECT_THAT(s.features, ElementsAre(2));
}

TEST(BaselinesTest, MagnitudeRejectsMalformedWeights) {
  const MaskSet mask(MakeLayout({3, 2}));
  const std::vector<float> three = {1, 2, 3}, two = {1, 2}, bad = {1, INFINITY};
  EXPECT_THAT(MagnitudeKeys(mask, {three}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "1 tensors given, the layout has 2"));
  EXPECT_THAT(MagnitudeKeys(mask, {three, three}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "tensor 'w1': 3 values, expected 2"));
  EXPECT_THAT(MagnitudeKeys(mask, {three, bad}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "tensor 'w1': element 1 is inf"));
  EXPECT_OK(MagnitudeKeys(mask, {three, two}));
}

TEST(BaselinesTest, RandomKeysFollowTheDocumentedSplitmixStream) {
  // Computed in Python from the formula in baselines.h.
  EXPECT_THAT(RandomKeys(4, 42, 1), ElementsAre(1474427578u, 4104900931u, 2088855352u, 289299948u));
  EXPECT_THAT(RandomKeys(4, 42, 2), ElementsAre(4237892554u, 1325695655u, 2176472637u, 2941507228u));
  EXPECT_THAT(RandomKeys(3, 0, 1), ElementsAre(2802244911u, 3011683077u, 1662685524u));
}

TEST(BaselinesTest, RandomIsReproducibleAndDependsOnSeedAndIteration) {
  const MaskSet mask(MakeLayout({500, 500}));
  ASSERT_OK_AND_ASSIGN(Selection a, SelectRandom(mask, 7, 1, 300, RankScope::kGlobal, {}));
  ASSERT_OK_AND_ASSIGN(Selection b, SelectRandom(mask, 7, 1, 300, RankScope::kGlobal, {}));
  ASSERT_OK_AND_ASSIGN(Selection other_seed, SelectRandom(mask, 8, 1, 300, RankScope::kGlobal, {}));
  ASSERT_OK_AND_ASSIGN(Selection other_iter, SelectRandom(mask, 7, 2, 300, RankScope::kGlobal, {}));
  EXPECT_EQ(a.features, b.features);
  EXPECT_NE(a.features, other_seed.features);
  EXPECT_NE(a.features, other_iter.features);
  EXPECT_EQ(a.features.size(), 300u);
  EXPECT_THAT(SelectRandom(mask, 7, 0, 1, RankScope::kGlobal, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BaselinesTest, RandomIsUniformOverKeptWeights) {
  MaskSet mask(MakeLayout({40, 60}));
  ASSERT_OK(mask.Prune({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  constexpr int kTrials = 4000;
  constexpr int64_t kCount = 27;  // of 90 kept: p = 0.3
  std::vector<int> hits(100, 0);
  for (int seed = 0; seed < kTrials; ++seed) {
    ASSERT_OK_AND_ASSIGN(Selection s,
                         SelectRandom(mask, static_cast<uint64_t>(seed), 1, kCount, RankScope::kGlobal, {}));
    for (int64_t f : s.features) ++hits[static_cast<size_t>(f)];
  }
  for (int k = 0; k < 10; ++k) EXPECT_EQ(hits[k], 0);
  // Binomial(4000, 0.3): mean 1200, sd 29; 5 sd is a generous bound over 90 features.
  for (int k = 10; k < 100; ++k) {
    SCOPED_TRACE(k);
    EXPECT_NEAR(hits[k], 1200, 145);
  }
}

}  // namespace
}  // namespace gcprune::pruner
