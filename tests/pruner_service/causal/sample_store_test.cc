// Tests of the sample store: chunked appends, validation codes, non-finite counting, the memory budget,
// bfloat16 storage and the RowSource view.
#include "pruner_service/causal/sample_store.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "pruner_service/causal/bfloat16.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

// fc1.weight (3x4 = 12), fc1.bias (not prunable), fc2.weight (2x3 = 6): N = 18.
Layout SmallLayout() {
  absl::StatusOr<Layout> layout =
      Layout::Create({{"fc1.weight", {3, 4}, true}, {"fc1.bias", {3}, false}, {"fc2.weight", {2, 3}, true}});
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *layout;
}

std::unique_ptr<SampleStore> MakeStore(SampleEncoding encoding = SampleEncoding::kFloat32,
                                       int64_t budget = int64_t{1} << 20) {
  absl::StatusOr<std::unique_ptr<SampleStore>> store =
      SampleStore::Create(SmallLayout(), SampleStoreOptions{encoding, budget, 1});
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(store).value();
}

std::vector<float> Iota(int n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<float>(i);
  return v;
}

TEST(SampleStoreTest, ChunksOutOfOrderMakeOneRow) {
  auto store = MakeStore();
  ASSERT_OK(store->BeginSample());
  const std::vector<float> fc2 = Iota(6, -3.0f);  // signed deltas
  const std::vector<float> fc1 = Iota(12, 1.0f);
  ASSERT_OK(store->AppendSquaredDeltas(2, 0, fc2, 2.0f));
  ASSERT_OK(store->AppendSquaredDeltas(0, 8, absl::MakeConstSpan(fc1).subspan(8), 2.0f));
  ASSERT_OK(store->AppendSquaredDeltas(0, 0, absl::MakeConstSpan(fc1).subspan(0, 3), 2.0f));
  EXPECT_FALSE(store->pending_complete());
  ASSERT_OK(store->AppendSquaredDeltas(0, 3, absl::MakeConstSpan(fc1).subspan(3, 5), 2.0f));
  EXPECT_TRUE(store->pending_complete());
  ASSERT_OK_AND_ASSIGN(int64_t row, store->CommitSample(-0.25));
  EXPECT_EQ(row, 0);
  ASSERT_EQ(store->num_rows(), 1);
  ASSERT_EQ(store->num_cols(), 18);
  std::vector<float> scratch(18);
  const float* x = store->Row(0, scratch.data());
  for (int k = 0; k < 12; ++k) EXPECT_EQ(x[k], 2.0f * fc1[k] * fc1[k]) << k;
  for (int k = 0; k < 6; ++k) EXPECT_EQ(x[12 + k], 2.0f * fc2[k] * fc2[k]) << k;
  EXPECT_EQ(store->target(0), -0.25);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(store->RawRow(0)) % 64, 0u);
}

TEST(SampleStoreTest, RejectsBadChunksWithSpecificCodes) {
  auto store = MakeStore();
  const std::vector<float> four(4, 1.0f);
  EXPECT_THAT(store->AppendSquaredDeltas(0, 0, four, 1.0f), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(store->CommitSample(0.0), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(store->BeginSample());
  EXPECT_THAT(store->BeginSample(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(store->AppendSquaredDeltas(0, 4, four, 1.0f));
  EXPECT_THAT(store->AppendSquaredDeltas(0, 6, four, 1.0f),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'fc1.weight' (group 0): elements [6, 10) overlap [4, 8)"));
  EXPECT_THAT(store->AppendSquaredDeltas(2, 4, four, 1.0f),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'fc2.weight' (group 0): elements [4, 8) out of range"));
  EXPECT_THAT(store->AppendSquaredDeltas(1, 0, four, 1.0f),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "not prunable"));
  EXPECT_THAT(store->AppendSquaredDeltas(7, 0, four, 1.0f),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "index 7 out of range"));
  EXPECT_THAT(store->AppendSquaredDeltas(0, 0, {}, 1.0f), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty"));
  EXPECT_THAT(store->AppendSquaredDeltas(0, 0, four, 1.0f, 1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "group of 'fc1.weight': 1 out of range"));
  EXPECT_THAT(store->AppendSquaredDeltas(0, 0, four, 0.0f), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "scale"));
  EXPECT_THAT(store->AppendSquaredDeltas(0, 0, four, std::numeric_limits<float>::infinity()),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "scale"));
  // Incomplete: the first gap is named and the sample stays pending.
  EXPECT_THAT(store->CommitSample(1.0),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "elements [0, 4) of 'fc1.weight'"));
  EXPECT_TRUE(store->pending());
  ASSERT_OK(store->AppendSquaredDeltas(0, 0, four, 1.0f));
  ASSERT_OK(store->AppendSquaredDeltas(0, 8, four, 1.0f));
  EXPECT_THAT(store->CommitSample(1.0), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "elements [0, 6) of 'fc2.weight'"));
  ASSERT_OK(store->AppendSquaredDeltas(2, 0, std::vector<float>(6, 0.5f), 1.0f));
  EXPECT_OK(store->CommitSample(1.0));
  EXPECT_EQ(store->num_rows(), 1);
}

TEST(SampleStoreTest, DiscardDropsThePendingSample) {
  auto store = MakeStore();
  ASSERT_OK(store->BeginSample());
  ASSERT_OK(store->AppendSquaredDeltas(0, 0, std::vector<float>(12, 9.0f), 1.0f));
  store->DiscardSample();
  EXPECT_FALSE(store->pending());
  ASSERT_OK(store->BeginSample());  // the same slot is reused, coverage starts empty
  ASSERT_OK(store->AppendSquaredDeltas(0, 0, std::vector<float>(12, 1.0f), 1.0f));
  ASSERT_OK(store->AppendSquaredDeltas(2, 0, std::vector<float>(6, 1.0f), 1.0f));
  ASSERT_OK(store->CommitSample(0.5).status());
  EXPECT_EQ(store->num_rows(), 1);
  EXPECT_EQ(store->Row(0, nullptr)[0], 1.0f);
}

TEST(SampleStoreTest, NonFiniteValuesBecomeZeroAndAreCounted) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (SampleEncoding encoding : {SampleEncoding::kFloat32, SampleEncoding::kBfloat16}) {
    SCOPED_TRACE(SampleEncodingName(encoding));
    auto store = MakeStore(encoding);
    std::vector<float> fc1(12, 0.5f);
    fc1[1] = nan;
    fc1[5] = -inf;
    fc1[7] = 3e19f;  // finite delta whose square overflows float32
    ASSERT_OK(store->BeginSample());
    ASSERT_OK(store->AppendSquaredDeltas(0, 0, fc1, 4.0f));
    std::vector<float> fc2(6, 1.0f);
    fc2[0] = inf;
    ASSERT_OK(store->AppendFeatures(2, 0, fc2));  // stored unchanged except the infinity
    EXPECT_EQ(store->pending_nonfinite(), 4);
    ASSERT_OK(store->CommitSample(0.0).status());
    ASSERT_OK(store->BeginSample());
    std::vector<float> clean(12, 1.0f);
    clean[0] = nan;
    ASSERT_OK(store->AppendSquaredDeltas(0, 0, clean, 1.0f));
    ASSERT_OK(store->AppendFeatures(2, 0, std::vector<float>(6, -2.0f)));
    ASSERT_OK(store->CommitSample(0.0).status());
    EXPECT_EQ(store->nonfinite_count(0), 4);
    EXPECT_EQ(store->nonfinite_count(1), 1);
    EXPECT_EQ(store->total_nonfinite(), 5);
    std::vector<float> scratch(18);
    const float* x = store->Row(0, scratch.data());
    EXPECT_EQ(x[0], 1.0f);
    EXPECT_EQ(x[1], 0.0f);
    EXPECT_EQ(x[5], 0.0f);
    EXPECT_EQ(x[7], 0.0f);
    EXPECT_EQ(x[12], 0.0f);
    EXPECT_EQ(x[13], 1.0f);
    x = store->Row(1, scratch.data());
    EXPECT_EQ(x[0], 0.0f);
    EXPECT_EQ(x[12], -2.0f);
    store->Clear();
    EXPECT_EQ(store->total_nonfinite(), 0);
    EXPECT_EQ(store->num_rows(), 0);
  }
}

TEST(SampleStoreTest, Bfloat16StoresRoundedValuesAtHalfTheSize) {
  auto f32 = MakeStore(SampleEncoding::kFloat32);
  auto bf16 = MakeStore(SampleEncoding::kBfloat16);
  std::vector<float> fc1(12), fc2(6);
  for (int k = 0; k < 12; ++k) fc1[static_cast<size_t>(k)] = 1e-3f * std::sqrt(1.0f + 0.37f * static_cast<float>(k));
  for (int k = 0; k < 6; ++k) fc2[static_cast<size_t>(k)] = -2e-4f * static_cast<float>(k + 1);
  for (SampleStore* store : {f32.get(), bf16.get()}) {
    ASSERT_OK(store->BeginSample());
    ASSERT_OK(store->AppendSquaredDeltas(2, 0, fc2, 1e6f));
    ASSERT_OK(store->AppendSquaredDeltas(0, 0, fc1, 1e6f));
    ASSERT_OK(store->CommitSample(-0.01).status());
  }
  std::vector<float> scratch(18);
  const float* exact = f32->Row(0, nullptr);
  const float* rounded = bf16->Row(0, scratch.data());
  EXPECT_EQ(rounded, scratch.data());  // decoded into the scratch buffer
  const uint16_t* raw = static_cast<const uint16_t*>(bf16->RawRow(0));
  for (int k = 0; k < 18; ++k) {
    EXPECT_EQ(raw[Bfloat16Slot(k)], FloatToBfloat16(exact[k])) << k;
    EXPECT_EQ(rounded[k], Bfloat16ToFloat(FloatToBfloat16(exact[k]))) << k;
  }
  EXPECT_EQ(f32->raw_bytes(), 18 * 4);
  EXPECT_EQ(bf16->raw_bytes(), 18 * 2);
  EXPECT_EQ(bf16->bytes_per_value(), 2);
}

TEST(SampleStoreTest, Bfloat16LayoutInterleavesPairsOfHalfGroups) {
  EXPECT_EQ(Bfloat16Slot(0), 0);
  EXPECT_EQ(Bfloat16Slot(1), 2);
  EXPECT_EQ(Bfloat16Slot(15), 30);
  EXPECT_EQ(Bfloat16Slot(16), 1);
  EXPECT_EQ(Bfloat16Slot(31), 31);
  EXPECT_EQ(Bfloat16Slot(32 + 17), 32 + 3);
  // 100 features in unaligned chunks (whole groups and partial ones): every value lands in its slot,
  // decodes in column order, the padding up to 128 is zero, and overflowing values saturate.
  ASSERT_OK_AND_ASSIGN(Layout layout, Layout::Create({{"w", {100}, true}}));
  ASSERT_OK_AND_ASSIGN(auto store,
                       SampleStore::Create(layout, SampleStoreOptions{SampleEncoding::kBfloat16, 1 << 20, 1}));
  std::vector<float> values(100);
  for (int k = 0; k < 100; ++k) values[static_cast<size_t>(k)] = 1.0f + static_cast<float>(k) / 64.0f;
  values[40] = 3.4e38f;
  values[77] = -3.4e38f;
  std::vector<float> with_specials = values;
  with_specials[20] = std::numeric_limits<float>::quiet_NaN();
  with_specials[50] = -std::numeric_limits<float>::infinity();
  ASSERT_OK(store->BeginSample());
  ASSERT_OK(store->AppendFeatures(0, 71, absl::MakeConstSpan(values).subspan(71)));
  ASSERT_OK(store->AppendFeatures(0, 0, absl::MakeConstSpan(values).subspan(0, 7)));
  ASSERT_OK(store->AppendFeatures(0, 7, absl::MakeConstSpan(with_specials).subspan(7, 64)));
  ASSERT_OK(store->CommitSample(0.0).status());
  values[20] = 0.0f;  // the non-finite values are stored as 0
  values[50] = 0.0f;
  const uint16_t* raw = static_cast<const uint16_t*>(store->RawRow(0));
  std::vector<float> scratch(100);
  const float* row = store->Row(0, scratch.data());
  for (int k = 0; k < 100; ++k) {
    SCOPED_TRACE(k);
    EXPECT_EQ(raw[Bfloat16Slot(k)], FloatToBfloat16Saturating(values[static_cast<size_t>(k)]));
    EXPECT_EQ(row[k], Bfloat16ToFloat(FloatToBfloat16Saturating(values[static_cast<size_t>(k)])));
  }
  EXPECT_EQ(raw[Bfloat16Slot(40)], kBfloat16MaxFinite);
  for (int k = 100; k < 128; ++k) EXPECT_EQ(raw[Bfloat16Slot(k)], 0) << k;
  EXPECT_EQ(store->total_nonfinite(), 2);
  // Squared deltas through the whole-group path: x = scale·Δθ², overflow to infinity counted.
  std::vector<float> deltas(100);
  for (int k = 0; k < 100; ++k) deltas[static_cast<size_t>(k)] = (k % 2 == 0 ? 1e-3f : -2e-3f) * static_cast<float>(k + 1);
  deltas[33] = 1e30f;
  ASSERT_OK(store->BeginSample());
  ASSERT_OK(store->AppendSquaredDeltas(0, 0, deltas, 1e6f));
  ASSERT_OK(store->CommitSample(0.0).status());
  EXPECT_EQ(store->nonfinite_count(1), 1);
  raw = static_cast<const uint16_t*>(store->RawRow(1));
  for (int k = 0; k < 100; ++k) {
    const float x = k == 33 ? 0.0f : deltas[static_cast<size_t>(k)] * deltas[static_cast<size_t>(k)] * 1e6f;
    EXPECT_EQ(raw[Bfloat16Slot(k)], FloatToBfloat16(x)) << k;
  }
}

TEST(SampleStoreTest, BudgetIsCheckedBeforeAllocatingAndTheStoreStaysUsable) {
  // A layout of 20,000 features: a float32 row is 80,000 bytes (80,000 after padding to 64).
  ASSERT_OK_AND_ASSIGN(Layout layout, Layout::Create({{"w", {100, 200}, true}}));
  ASSERT_OK_AND_ASSIGN(auto store, SampleStore::Create(layout, SampleStoreOptions{SampleEncoding::kFloat32, 250000, 1}));
  EXPECT_EQ(store->row_stride_bytes(), 80000);
  const std::vector<float> deltas(20000, 0.01f);
  for (int t = 0; t < 3; ++t) {
    ASSERT_OK(store->BeginSample());
    ASSERT_OK(store->AppendSquaredDeltas(0, 0, deltas, 1.0f));
    ASSERT_OK(store->CommitSample(t).status());
  }
  EXPECT_LE(store->allocated_bytes(), 250000);
  EXPECT_THAT(store->BeginSample(),
              StatusIsWithMessage(absl::StatusCode::kResourceExhausted,
                                  "1 more sample(s) of 80000 bytes (20000 features, float32) would raise the storage "
                                  "from 240000 to 320000 bytes, over the memory budget of 250000 bytes (3 samples stored)"));
  EXPECT_FALSE(store->pending());
  EXPECT_EQ(store->num_rows(), 3);
  EXPECT_EQ(store->Row(2, nullptr)[0], 0.01f * 0.01f);
  EXPECT_THAT(store->Reserve(1), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(store->Reserve(-1), StatusIs(absl::StatusCode::kInvalidArgument));
  // Clear keeps the blocks, so the same number of samples fits again without allocating.
  store->Clear();
  for (int t = 0; t < 3; ++t) {
    ASSERT_OK(store->BeginSample());
    ASSERT_OK(store->AppendSquaredDeltas(0, 0, deltas, 2.0f));
    ASSERT_OK(store->CommitSample(-t).status());
  }
  EXPECT_EQ(store->num_rows(), 3);
  EXPECT_EQ(store->target(2), -2.0);
  // A larger budget lets it grow.
  ASSERT_OK(store->set_memory_budget_bytes(400000));
  EXPECT_THAT(store->set_memory_budget_bytes(-1), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(store->BeginSample());
  ASSERT_OK(store->AppendSquaredDeltas(0, 0, deltas, 1.0f));
  ASSERT_OK(store->CommitSample(9.0).status());
  EXPECT_EQ(store->num_rows(), 4);
  store->ReleaseMemory();
  EXPECT_EQ(store->allocated_bytes(), 0);
  EXPECT_EQ(store->num_rows(), 0);
}

TEST(SampleStoreTest, PeakMemoryStaysWithinATenthOfTheSamples) {
  // 50,000 features (200 kB rows), 120 samples: growth alone, then one Reserve()d block.
  ASSERT_OK_AND_ASSIGN(Layout layout, Layout::Create({{"w", {50000}, true}}));
  for (bool reserve : {false, true}) {
    SCOPED_TRACE(reserve);
    ASSERT_OK_AND_ASSIGN(auto store,
                         SampleStore::Create(layout, SampleStoreOptions{SampleEncoding::kFloat32, int64_t{1} << 30, 1}));
    if (reserve) ASSERT_OK(store->Reserve(120));
    const std::vector<float> deltas(50000, 1.0f);
    for (int t = 0; t < 120; ++t) {
      ASSERT_OK(store->BeginSample());
      ASSERT_OK(store->AppendSquaredDeltas(0, 0, deltas, 1.0f));
      ASSERT_OK(store->CommitSample(0.0).status());
      if (!reserve) {
        ASSERT_LE(static_cast<double>(store->allocated_bytes()),
                  1.1 * static_cast<double>(store->raw_bytes()) + static_cast<double>(store->row_stride_bytes()))
            << t;
      }
    }
    EXPECT_LE(static_cast<double>(store->peak_allocated_bytes()), 1.1 * static_cast<double>(store->raw_bytes()));
    if (reserve) {
      EXPECT_EQ(store->peak_allocated_bytes(), store->raw_bytes());
    }
  }
}

TEST(SampleStoreTest, CreateValidatesOptions) {
  EXPECT_THAT(SampleStore::Create(SmallLayout(), SampleStoreOptions{SampleEncoding::kFloat32, 1 << 20, 2}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "feature_groups: 2"));
  EXPECT_THAT(SampleStore::Create(SmallLayout(), SampleStoreOptions{SampleEncoding::kFloat32, -5, 1}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "memory_budget_bytes: -5"));
}

TEST(SampleStoreTest, ThreeGroupsAddressEachCopyOfTheFeatures) {
  ASSERT_OK_AND_ASSIGN(auto store,
                       SampleStore::Create(SmallLayout(), SampleStoreOptions{SampleEncoding::kFloat32, 1 << 20, 3}));
  EXPECT_EQ(store->num_cols(), 54);
  ASSERT_OK(store->BeginSample());
  for (int g = 0; g < 3; ++g) {
    ASSERT_OK(store->AppendFeatures(0, 0, std::vector<float>(12, static_cast<float>(g + 1)), g));
    ASSERT_OK(store->AppendFeatures(2, 0, std::vector<float>(6, static_cast<float>(10 * (g + 1))), g));
  }
  ASSERT_OK(store->CommitSample(0.0).status());
  const float* x = store->Row(0, nullptr);
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[12], 10.0f);
  EXPECT_EQ(x[18], 2.0f);
  EXPECT_EQ(x[18 + 12], 20.0f);
  EXPECT_EQ(x[36 + 11], 3.0f);
  EXPECT_EQ(x[53], 30.0f);
}

}  // namespace
}  // namespace gcprune::pruner
