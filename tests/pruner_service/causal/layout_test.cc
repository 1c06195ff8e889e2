// Tests of the session layout: validation and feature offsets.
#include "pruner_service/causal/layout.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

TEST(LayoutTest, OffsetsCoverPrunableTensorsOnly) {
  ASSERT_OK_AND_ASSIGN(Layout layout, Layout::Create({{"fc1.weight", {4, 3}, true},
                                                     {"fc1.bias", {4}, false},
                                                     {"fc2.weight", {2, 4}, true}}));
  EXPECT_EQ(layout.num_features(), 20);
  EXPECT_EQ(layout.feature_offset(0), 0);
  EXPECT_EQ(layout.feature_offset(1), -1);
  EXPECT_EQ(layout.feature_offset(2), 12);
  EXPECT_EQ(layout.FindTensor("fc2.weight"), 2);
  EXPECT_EQ(layout.FindTensor("nope"), -1);
}

TEST(LayoutTest, RejectsMalformedLayouts) {
  struct Case {
    const char* what;
    std::vector<TensorSpec> tensors;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"empty", {}, "empty"},
      {"empty name", {{"", {2}, true}}, "name: empty"},
      {"duplicate", {{"a", {2}, true}, {"a", {2}, true}}, "duplicate 'a'"},
      {"zero dim", {{"a", {2, 0}, true}}, "shape[1]"},
      {"no shape", {{"a", {}, true}}, "shape ('a'): empty"},
      {"nothing prunable", {{"a", {2}, false}}, "no prunable"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(Layout::Create(c.tensors), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

}  // namespace
}  // namespace gcprune::pruner
