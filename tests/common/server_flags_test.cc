// Tests of the shared server flags and their conversion into ServerOptions.
#include "common/server_flags.h"

#include "absl/flags/flag.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIsWithMessage;

// Restores every flag this test touches.
class ServerFlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    absl::SetFlag(&FLAGS_port, -1);
    absl::SetFlag(&FLAGS_auth_token, "");
    absl::SetFlag(&FLAGS_auth_exempt_health, true);
    absl::SetFlag(&FLAGS_max_message_bytes, 4 << 20);
    absl::SetFlag(&FLAGS_shutdown_grace_seconds, 10.0);
    absl::SetFlag(&FLAGS_log_level, "info");
    SetLogThreshold(LogLevel::kInfo);
  }
};

TEST_F(ServerFlagsTest, DefaultsUseTheServersPort) {
  ASSERT_OK_AND_ASSIGN(ServerOptions options, ServerOptionsFromFlags(50051));
  EXPECT_EQ(options.port, 50051);
  EXPECT_EQ(options.host, "127.0.0.1");  // loopback unless told otherwise
  EXPECT_TRUE(options.enable_reflection);
  EXPECT_EQ(options.shutdown_grace, absl::Seconds(10));
  ASSERT_EQ(options.security.auth_exempt_prefixes.size(), 1u);
  EXPECT_EQ(options.security.auth_exempt_prefixes[0], kHealthMethodPrefix);
}

TEST_F(ServerFlagsTest, ReadsFlags) {
  absl::SetFlag(&FLAGS_port, 0);
  absl::SetFlag(&FLAGS_auth_token, "abc");
  absl::SetFlag(&FLAGS_auth_exempt_health, false);
  absl::SetFlag(&FLAGS_shutdown_grace_seconds, 2.5);
  absl::SetFlag(&FLAGS_log_level, "warning");
  ASSERT_OK_AND_ASSIGN(ServerOptions options, ServerOptionsFromFlags(50051));
  EXPECT_EQ(options.port, 0);
  EXPECT_EQ(options.security.auth_token, "abc");
  EXPECT_TRUE(options.security.auth_exempt_prefixes.empty());
  EXPECT_EQ(options.shutdown_grace, absl::Milliseconds(2500));
  EXPECT_EQ(GetLogThreshold(), LogLevel::kWarning);
}

TEST_F(ServerFlagsTest, RejectsBadValuesNamingTheFlag) {
  absl::SetFlag(&FLAGS_port, 65536);
  EXPECT_THAT(ServerOptionsFromFlags(1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "--port"));
  absl::SetFlag(&FLAGS_port, -1);
  absl::SetFlag(&FLAGS_max_message_bytes, 5);
  EXPECT_THAT(ServerOptionsFromFlags(1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "--max_message_bytes"));
  absl::SetFlag(&FLAGS_max_message_bytes, 4 << 20);
  absl::SetFlag(&FLAGS_shutdown_grace_seconds, -1.0);
  EXPECT_THAT(ServerOptionsFromFlags(1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "--shutdown_grace_seconds"));
  absl::SetFlag(&FLAGS_shutdown_grace_seconds, 1.0);
  absl::SetFlag(&FLAGS_log_level, "loud");
  EXPECT_THAT(ServerOptionsFromFlags(1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "--log_level"));
}

}  // namespace
}  // namespace gcprune::common
