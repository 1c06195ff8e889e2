// Tests of the stderr logger: level parsing, the threshold and the line format.
#include "common/logging.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Captures lines for the duration of a test and restores the threshold.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = GetLogThreshold();
    SetLogSinkForTesting([this](LogLevel, absl::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    SetLogSinkForTesting(nullptr);
    SetLogThreshold(saved_);
  }
  std::vector<std::string> lines_;
  LogLevel saved_ = LogLevel::kInfo;
};

TEST_F(LoggingTest, ParsesLevelNames) {
  struct Case {
    const char* text;
    LogLevel level;
  };
  for (const Case& c : {Case{"debug", LogLevel::kDebug}, Case{"INFO", LogLevel::kInfo},
                        Case{"Warning", LogLevel::kWarning}, Case{"warn", LogLevel::kWarning},
                        Case{" error ", LogLevel::kError}}) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(LogLevel level, ParseLogLevel(c.text));
    EXPECT_EQ(level, c.level);
  }
  EXPECT_THAT(ParseLogLevel("verbose"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'verbose'"));
}

TEST_F(LoggingTest, DropsMessagesBelowThresholdWithoutEvaluating) {
  SetLogThreshold(LogLevel::kWarning);
  int evaluations = 0;
  auto count = [&evaluations] { return ++evaluations; };
  GCPRUNE_LOG(INFO) << "hidden " << count();
  GCPRUNE_LOG(WARNING) << "shown " << count();
  GCPRUNE_LOG(ERROR) << "also shown";
  EXPECT_EQ(evaluations, 1);
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[0], HasSubstr("shown 1"));
}

TEST_F(LoggingTest, FormatsOneLineWithLevelTimePidAndPlace) {
  SetLogThreshold(LogLevel::kDebug);
  GCPRUNE_LOG(DEBUG) << "serving on " << 42;
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0],
              MatchesRegex("D[0-9]{8} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6} [0-9]+ logging_test\\.cc:[0-9]+\\] "
                           "serving on 42\n"));
}

}  // namespace
}  // namespace gcprune::common
