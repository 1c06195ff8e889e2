// Tests of splitting packed masks into TensorMask runs and assembling them back.
#include "common/mask_runs.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::v1::TensorMask;

// A packed mask of `numel` elements where element i is kept iff i % 3 != 0.
std::string PatternMask(int64_t numel) {
  std::string packed(static_cast<size_t>((numel + 7) / 8), '\0');
  for (int64_t i = 0; i < numel; ++i) {
    if (i % 3 != 0) packed[static_cast<size_t>(i / 8)] |= static_cast<char>(1 << (i % 8));
  }
  return packed;
}

TEST(MaskRunsTest, SplitsAndReassemblesInAnyOrder) {
  for (int64_t numel : {1, 7, 8, 9, 100, 4099}) {
    SCOPED_TRACE(numel);
    const std::string packed = PatternMask(numel);
    ASSERT_OK_AND_ASSIGN(std::vector<TensorMask> runs, SplitPackedMask(5, packed, numel, 16));
    int64_t total = 0;
    for (const TensorMask& run : runs) {
      EXPECT_EQ(run.tensor_index(), 5u);
      EXPECT_EQ(run.offset() % 8, 0);
      EXPECT_LE(run.bits().size(), 16u);
      total += run.num_elements();
    }
    EXPECT_EQ(total, numel);
    std::reverse(runs.begin(), runs.end());
    PackedMaskAssembler assembler(numel);
    for (const TensorMask& run : runs) ASSERT_OK(assembler.Add(run));
    EXPECT_TRUE(assembler.complete());
    ASSERT_OK_AND_ASSIGN(std::string rebuilt, assembler.Finish());
    EXPECT_EQ(rebuilt, packed);
  }
}

TEST(MaskRunsTest, SplitRejectsWrongSizes) {
  EXPECT_THAT(SplitPackedMask(0, "ab", 9, 4), StatusIs(absl::StatusCode::kOk));
  EXPECT_THAT(SplitPackedMask(0, "abc", 9, 4), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "expected 2"));
  EXPECT_THAT(SplitPackedMask(0, "", 0, 4), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "numel"));
  EXPECT_THAT(SplitPackedMask(0, "ab", 9, 0), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "max_bytes"));
}

TEST(MaskRunsTest, AssemblerRejectsBadRuns) {
  auto run = [](int64_t offset, int64_t count, std::string bits) {
    TensorMask mask;
    mask.set_tensor_index(1);
    mask.set_offset(offset);
    mask.set_num_elements(count);
    mask.set_bits(std::move(bits));
    return mask;
  };
  struct Case {
    const char* what;
    TensorMask mask;
    const char* message;
  };
  const Case cases[] = {
      {"misaligned", run(4, 4, std::string(1, '\0')), "multiple of 8"},
      {"negative", run(-8, 8, std::string(1, '\0')), "multiple of 8"},
      {"past the end", run(16, 8, std::string(1, '\0')), "do not fit"},
      {"empty", run(0, 0, ""), "do not fit"},
      {"wrong byte count", run(0, 9, std::string(1, '\0')), "expected 2"},
      {"padding set", run(16, 4, std::string(1, '\x10')), "padding"},
      {"ends inside a byte early", run(0, 4, std::string(1, '\0')), "only a run ending"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    PackedMaskAssembler assembler(20);
    EXPECT_THAT(assembler.Add(c.mask), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  PackedMaskAssembler assembler(20);
  ASSERT_OK(assembler.Add(run(8, 8, std::string(1, '\xff'))));
  EXPECT_THAT(assembler.Add(run(8, 12, std::string(2, '\0'))),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "overlaps"));
  EXPECT_FALSE(assembler.complete());
  EXPECT_THAT(assembler.Finish(), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "first at element 0"));
  ASSERT_OK(assembler.Add(run(16, 4, std::string(1, '\x0f'))));
  ASSERT_OK(assembler.Add(run(0, 8, std::string(1, '\x01'))));
  ASSERT_OK_AND_ASSIGN(std::string packed, assembler.Finish());
  EXPECT_EQ(packed, std::string("\x01\xff\x0f", 3));
}

}  // namespace
}  // namespace gcprune::common
