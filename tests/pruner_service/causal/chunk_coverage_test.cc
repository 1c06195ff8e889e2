// Tests of chunk coverage: merging, out-of-range and overlap refusals, and gap reports.
#include "pruner_service/causal/chunk_coverage.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIsWithMessage;

Layout TwoTensors() {
  absl::StatusOr<Layout> layout = Layout::Create({{"a.weight", {2, 5}, true}, {"a.bias", {2}, false},
                                                  {"b.weight", {4}, true}});
  EXPECT_TRUE(layout.ok());
  return *layout;
}

TEST(ChunkCoverageTest, CompletesFromChunksInAnyOrder) {
  const Layout layout = TwoTensors();
  ChunkCoverage coverage(&layout, 2);
  EXPECT_OK(coverage.Claim(2, 2, 2, 1));
  EXPECT_OK(coverage.Claim(0, 5, 5, 0));
  EXPECT_OK(coverage.Claim(2, 0, 2, 1));
  EXPECT_OK(coverage.Claim(0, 0, 5, 0));
  EXPECT_OK(coverage.Claim(2, 0, 4, 0));
  EXPECT_FALSE(coverage.complete());
  EXPECT_THAT(coverage.CheckComplete(),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "elements [0, 10) of 'a.weight' (tensor 0, group 1)"));
  EXPECT_OK(coverage.Claim(0, 3, 7, 1));
  EXPECT_THAT(coverage.CheckComplete(), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "elements [0, 3)"));
  EXPECT_OK(coverage.Claim(0, 0, 3, 1));
  EXPECT_TRUE(coverage.complete());
  EXPECT_OK(coverage.CheckComplete());
  coverage.Reset();
  EXPECT_EQ(coverage.covered(), 0);
  EXPECT_OK(coverage.Claim(0, 0, 10, 0));  // ranges were forgotten
}

TEST(ChunkCoverageTest, RefusesBadChunksWithoutMarking) {
  const Layout layout = TwoTensors();
  ChunkCoverage coverage(&layout, 1);
  ASSERT_OK(coverage.Claim(0, 2, 4, 0));  // [2, 6)
  struct Case {
    int tensor;
    int64_t offset;
    int64_t count;
    int group;
    const char* message;
  };
  const Case cases[] = {
      {3, 0, 1, 0, "index 3 out of range"},
      {-1, 0, 1, 0, "index -1 out of range"},
      {1, 0, 1, 0, "'a.bias' (1) is not prunable"},
      {0, 0, 1, 1, "group of 'a.weight': 1 out of range"},
      {0, 0, 0, 0, "empty"},
      {0, 8, 3, 0, "elements [8, 11) out of range, the tensor has 10 elements"},
      {0, -1, 2, 0, "out of range"},
      {0, 5, 2, 0, "elements [5, 7) overlap [2, 6)"},
      {0, 0, 3, 0, "elements [0, 3) overlap [2, 6)"},
      {0, 3, 1, 0, "overlap"},
      {0, 0, 10, 0, "overlap"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(coverage.Claim(c.tensor, c.offset, c.count, c.group),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  EXPECT_EQ(coverage.covered(), 4);
  EXPECT_OK(coverage.Claim(0, 0, 2, 0));
  EXPECT_OK(coverage.Claim(0, 6, 4, 0));
  EXPECT_OK(coverage.Claim(2, 0, 4, 0));
  EXPECT_TRUE(coverage.complete());
}

}  // namespace
}  // namespace gcprune::pruner
