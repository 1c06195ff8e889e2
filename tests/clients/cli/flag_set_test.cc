// Tests of the per-subcommand flag parser of the `gcprune` command line.
#include "clients/cli/flag_set.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::cli {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Values {
  std::string service;
  bool wait = false;
  int64_t count = 3;
  double ratio = 0.5;
  absl::Duration timeout = absl::Seconds(5);
};

FlagSet MakeFlags(Values* values) {
  FlagSet flags("gcprune test ADDR", "A test command.");
  flags.AddString("service", &values->service, "service name");
  flags.AddBool("wait", &values->wait, "wait");
  flags.AddInt("count", &values->count, "count");
  flags.AddDouble("ratio", &values->ratio, "ratio");
  flags.AddDuration("timeout", &values->timeout, "timeout");
  return flags;
}

TEST(FlagSetTest, ParsesAllFormsAndKeepsPositionals) {
  Values values;
  FlagSet flags = MakeFlags(&values);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> positional,
                       flags.Parse({"host:1", "--service", "gcprune.v1.Pruner", "-count=7", "--wait", "--ratio=0.25",
                                    "--timeout", "250ms", "--", "--not-a-flag"}));
  EXPECT_THAT(positional, ElementsAre("host:1", "--not-a-flag"));
  EXPECT_EQ(values.service, "gcprune.v1.Pruner");
  EXPECT_EQ(values.count, 7);
  EXPECT_TRUE(values.wait);
  EXPECT_EQ(values.ratio, 0.25);
  EXPECT_EQ(values.timeout, absl::Milliseconds(250));
  EXPECT_FALSE(flags.help_requested());
}

TEST(FlagSetTest, NegatedBooleansAndBareSecondDurations) {
  Values values;
  values.wait = true;
  FlagSet flags = MakeFlags(&values);
  ASSERT_OK(flags.Parse({"--nowait", "--timeout=1.5"}));
  EXPECT_FALSE(values.wait);
  EXPECT_EQ(values.timeout, absl::Milliseconds(1500));
  ASSERT_OK(flags.Parse({"--wait=yes"}));
  EXPECT_TRUE(values.wait);
}

TEST(FlagSetTest, RejectsBadInputNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"--bogus"}, "unknown flag --bogus"},
      {{"--service"}, "--service: missing value"},
      {{"--count=x"}, "--count: 'x' is not an integer"},
      {{"--ratio=nan"}, "--ratio"},
      {{"--timeout=soon"}, "--timeout: 'soon'"},
      {{"--wait=maybe"}, "--wait: 'maybe'"},
      {{"--noservice"}, "unknown flag --noservice"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    Values values;
    FlagSet flags = MakeFlags(&values);
    EXPECT_THAT(flags.Parse(c.args), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(FlagSetTest, HelpListsFlagsWithDefaults) {
  Values values;
  FlagSet flags = MakeFlags(&values);
  ASSERT_OK(flags.Parse({"-h"}));
  EXPECT_TRUE(flags.help_requested());
  const std::string help = flags.Help();
  EXPECT_THAT(help, HasSubstr("usage: gcprune test ADDR"));
  EXPECT_THAT(help, HasSubstr("A test command."));
  EXPECT_THAT(help, HasSubstr("--timeout VALUE"));
  EXPECT_THAT(help, HasSubstr("(default 5s)"));
  EXPECT_THAT(help, HasSubstr("(default 3)"));
}

}  // namespace
}  // namespace gcprune::cli
