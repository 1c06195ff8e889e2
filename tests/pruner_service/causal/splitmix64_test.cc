// Tests of the fits' shuffle: splitmix64 outputs and per-epoch Fisher–Yates permutations against values
// computed independently from METHOD.md (testdata/splitmix64_reference.py).
#include "pruner_service/causal/splitmix64.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace gcprune::pruner {
namespace {

TEST(SplitMix64Test, FirstOutputsForSeed42) {
  SplitMix64 rng(42);
  EXPECT_EQ(rng.Next(), 0xBDD732262FEB6E95ULL);
  EXPECT_EQ(rng.Next(), 0x28EFE333B266F103ULL);
  EXPECT_EQ(rng.Next(), 0x47526757130F9F52ULL);
  EXPECT_EQ(rng.state(), 42 + 3 * 0x9E3779B97F4A7C15ULL);
}

TEST(SplitMix64Test, EpochPermutationsForSeed42) {
  const std::vector<std::vector<int64_t>> expected = {
      {0, 9, 5, 8, 6, 4, 7, 2, 1, 3},
      {0, 9, 3, 2, 5, 7, 1, 6, 8, 4},
      {2, 1, 5, 9, 6, 3, 4, 8, 0, 7},
  };
  SplitMix64 rng(42);  // one generator for the whole fit, one permutation per epoch
  std::vector<int64_t> perm;
  for (size_t epoch = 0; epoch < expected.size(); ++epoch) {
    SCOPED_TRACE(epoch);
    ShufflePermutation(10, &rng, &perm);
    EXPECT_EQ(perm, expected[epoch]);
  }
  EXPECT_EQ(rng.state(), 42 + 27 * 0x9E3779B97F4A7C15ULL);  // 9 draws per permutation of 10
}

TEST(SplitMix64Test, DifferentSeedGivesDifferentPermutation) {
  SplitMix64 rng(43);
  std::vector<int64_t> perm;
  ShufflePermutation(10, &rng, &perm);
  EXPECT_EQ(perm, (std::vector<int64_t>{4, 2, 5, 6, 1, 3, 9, 8, 7, 0}));
}

TEST(SplitMix64Test, TrivialSizesDrawNothing) {
  SplitMix64 rng(5);
  std::vector<int64_t> perm = {7, 7};
  ShufflePermutation(0, &rng, &perm);
  EXPECT_TRUE(perm.empty());
  ShufflePermutation(1, &rng, &perm);
  EXPECT_EQ(perm, std::vector<int64_t>{0});
  ShufflePermutation(-3, &rng, &perm);
  EXPECT_TRUE(perm.empty());
  EXPECT_EQ(rng.state(), 5u);
}

}  // namespace
}  // namespace gcprune::pruner
