// Tests of the mask set: counts, monotone updates, and the bitmask wire format with its validation.
#include "pruner_service/causal/mask_set.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

Layout MakeLayout(std::vector<TensorSpec> tensors) {
  absl::StatusOr<Layout> layout = Layout::Create(std::move(tensors));
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *std::move(layout);
}

// fc1.weight 4x3 (12), fc1.bias (not prunable), fc2.weight 2x5 (10): 22 features.
Layout SmallLayout() {
  return MakeLayout({{"fc1.weight", {4, 3}, true}, {"fc1.bias", {4}, false}, {"fc2.weight", {2, 5}, true}});
}

TEST(MaskSetTest, StartsWithEveryWeightKept) {
  const MaskSet mask(SmallLayout());
  ASSERT_EQ(mask.num_tensors(), 2);
  EXPECT_EQ(mask.tensor(0).name, "fc1.weight");
  EXPECT_EQ(mask.tensor(1).name, "fc2.weight");
  EXPECT_EQ(mask.tensor(1).layout_index, 2);
  EXPECT_EQ(mask.tensor(1).offset, 12);
  EXPECT_EQ(mask.tensor(1).numel, 10);
  EXPECT_EQ(mask.num_features(), 22);
  EXPECT_EQ(mask.num_pruned(), 0);
  EXPECT_EQ(mask.num_kept(), 22);
  EXPECT_EQ(mask.sparsity(), 0.0);
  EXPECT_EQ(mask.FindTensor("fc2.weight"), 1);
  EXPECT_EQ(mask.FindTensor("fc1.bias"), -1);
  for (uint8_t k : mask.keep()) EXPECT_EQ(k, 1);
}

TEST(MaskSetTest, TensorOfFeatureFollowsOffsets) {
  const MaskSet mask(SmallLayout());
  EXPECT_EQ(mask.TensorOfFeature(0), 0);
  EXPECT_EQ(mask.TensorOfFeature(11), 0);
  EXPECT_EQ(mask.TensorOfFeature(12), 1);
  EXPECT_EQ(mask.TensorOfFeature(21), 1);
}

TEST(MaskSetTest, PruneCountsPerTensorAndGlobally) {
  MaskSet mask(SmallLayout());
  ASSERT_OK(mask.Prune({0, 5, 12, 21}));
  EXPECT_EQ(mask.num_pruned(0), 2);
  EXPECT_EQ(mask.num_pruned(1), 2);
  EXPECT_EQ(mask.num_pruned(), 4);
  EXPECT_DOUBLE_EQ(mask.sparsity(0), 2.0 / 12);
  EXPECT_DOUBLE_EQ(mask.sparsity(1), 0.2);
  EXPECT_DOUBLE_EQ(mask.sparsity(), 4.0 / 22);
  EXPECT_FALSE(mask.is_kept(5));
  EXPECT_TRUE(mask.is_kept(6));
  EXPECT_EQ(mask.tensor_keep(1)[9], 0);

  // Pruning again, or twice in one call, changes nothing.
  ASSERT_OK(mask.Prune({5, 5, 12}));
  EXPECT_EQ(mask.num_pruned(), 4);
}

TEST(MaskSetTest, PruneRejectsOutOfRangeIndicesWithoutChanging) {
  MaskSet mask(SmallLayout());
  EXPECT_THAT(mask.Prune({3, 22}), StatusIsWithMessage(absl::StatusCode::kOutOfRange, "feature index 22"));
  EXPECT_THAT(mask.Prune({-1}), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(mask.num_pruned(), 0);
  EXPECT_TRUE(mask.is_kept(3));
}

TEST(MaskSetTest, PackedFormatIsLsbFirstWithOneMeaningKept) {
  MaskSet mask(SmallLayout());
  ASSERT_OK(mask.Prune({12, 21}));  // fc2.weight: weights 0 and 9 pruned
  EXPECT_EQ(PackedMaskSize(10), 2);
  EXPECT_EQ(mask.PackTensor(1), std::string("\xFE\x01", 2));
  EXPECT_EQ(mask.PackTensor(0), std::string("\xFF\x0F", 2));  // 12 kept: padding bits are zero
  EXPECT_EQ(mask.PackedSize(), 4);
}

TEST(MaskSetTest, PackUnpackRoundTripsForManySizes) {
  std::mt19937 rng(7);
  for (int64_t numel : {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000}) {
    SCOPED_TRACE(numel);
    const Layout layout = MakeLayout({{"a", {3}, true}, {"w", {numel}, true}});
    MaskSet original(layout);
    std::vector<int64_t> prune;
    for (int64_t i = 0; i < numel; ++i) {
      if (rng() % 3 == 0) prune.push_back(3 + i);
    }
    ASSERT_OK(original.Prune(prune));
    const std::string packed = original.PackTensor(1);
    ASSERT_EQ(static_cast<int64_t>(packed.size()), PackedMaskSize(numel));
    MaskSet copy(layout);
    ASSERT_OK(copy.UnpackTensor(1, packed));
    EXPECT_EQ(copy, original);
    EXPECT_EQ(copy.num_pruned(1), static_cast<int64_t>(prune.size()));
    EXPECT_EQ(copy.num_pruned(), static_cast<int64_t>(prune.size()));
  }
}

TEST(MaskSetTest, UnpackValidatesSizePaddingAndIndex) {
  struct Case {
    const char* what;
    int tensor;
    std::string bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"too short", 1, std::string("\xFF", 1), "1 bytes, expected 2"},
      {"too long", 1, std::string("\xFF\x03\x00", 3), "3 bytes, expected 2"},
      {"padding bit set", 1, std::string("\xFF\x07", 2), "unused bits"},
      {"high padding bit set", 0, std::string("\xFF\x8F", 2), "unused bits"},
      {"negative tensor", -1, "", "tensor index -1"},
      {"tensor past the end", 2, "", "tensor index 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    MaskSet mask(SmallLayout());
    EXPECT_THAT(mask.UnpackTensor(c.tensor, c.bytes),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
    EXPECT_EQ(mask.num_pruned(), 0);
  }
}

TEST(MaskSetTest, UnpackRefusesToReviveUnlessAllowed) {
  MaskSet mask(SmallLayout());
  ASSERT_OK(mask.Prune({13}));  // fc2.weight weight 1
  const std::string all_kept("\xFF\x03", 2);
  EXPECT_THAT(mask.UnpackTensor(1, all_kept),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "'fc2.weight': weight 1 is pruned"));
  EXPECT_FALSE(mask.is_kept(13));
  // Pruning more is always allowed.
  ASSERT_OK(mask.UnpackTensor(1, std::string("\xFC\x03", 2)));
  EXPECT_EQ(mask.num_pruned(1), 2);
  ASSERT_OK(mask.UnpackTensor(1, all_kept, /*allow_revive=*/true));
  EXPECT_EQ(mask.num_pruned(), 0);
}

TEST(MaskSetTest, UpdateIsMonotoneUnlessRevivalAllowed) {
  const Layout layout = SmallLayout();
  MaskSet current(layout);
  ASSERT_OK(current.Prune({2, 14}));
  MaskSet next = current;
  ASSERT_OK(next.Prune({3, 20}));
  ASSERT_OK(current.Update(next));
  EXPECT_EQ(current, next);
  EXPECT_EQ(current.num_pruned(), 4);

  const MaskSet fresh(layout);
  EXPECT_THAT(current.Update(fresh),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "tensor 'fc1.weight' weight 2"));
  EXPECT_EQ(current.num_pruned(), 4);
  ASSERT_OK(current.Update(fresh, /*allow_revive=*/true));
  EXPECT_EQ(current.num_pruned(), 0);
}

TEST(MaskSetTest, UpdateRejectsAnotherLayout) {
  MaskSet mask(SmallLayout());
  const MaskSet other(MakeLayout({{"fc1.weight", {4, 3}, true}, {"fc2.weight", {2, 6}, true}}));
  EXPECT_THAT(mask.Update(other), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::pruner
