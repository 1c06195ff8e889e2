// Tests of bearer-token validation, loading and checking.
#include "common/auth_token.h"

#include <stdlib.h>

#include <string>

#include "common/file_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

TEST(AuthTokenTest, ChecksAuthorizationHeaders) {
  struct Case {
    const char* what;
    std::optional<absl::string_view> header;
    absl::StatusCode code;
  };
  const Case cases[] = {
      {"absent", std::nullopt, absl::StatusCode::kUnauthenticated},
      {"empty", absl::string_view(""), absl::StatusCode::kUnauthenticated},
      {"basic scheme", absl::string_view("Basic czNjcjN0"), absl::StatusCode::kUnauthenticated},
      {"scheme only", absl::string_view("Bearer"), absl::StatusCode::kUnauthenticated},
      {"wrong token", absl::string_view("Bearer s3cr3u"), absl::StatusCode::kPermissionDenied},
      {"prefix of token", absl::string_view("Bearer s3cr3"), absl::StatusCode::kPermissionDenied},
      {"token plus extra", absl::string_view("Bearer s3cr3tt"), absl::StatusCode::kPermissionDenied},
      {"right token", absl::string_view("Bearer s3cr3t"), absl::StatusCode::kOk},
      {"lower-case scheme", absl::string_view("bearer s3cr3t"), absl::StatusCode::kOk},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(CheckBearerToken("s3cr3t", c.header), StatusIs(c.code));
  }
}

TEST(AuthTokenTest, ValidatesTokenCharacters) {
  EXPECT_OK(ValidateAuthToken("abc-DEF_123.~+/="));
  EXPECT_THAT(ValidateAuthToken(""), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty"));
  EXPECT_THAT(ValidateAuthToken("two words"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "position 3"));
  EXPECT_THAT(ValidateAuthToken("tab\t"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ValidateAuthToken(std::string(5000, 'a')), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "5000"));
}

TEST(AuthTokenTest, LoadsFromFlagFileOrEnvironment) {
  char pattern[] = "/tmp/gcprune_token_XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string file = std::string(pattern) + "/token";
  ASSERT_OK(WriteFileAtomically(file, "  from-file\n"));

  ASSERT_OK_AND_ASSIGN(std::string token, LoadAuthToken("from-flag", "", true));
  EXPECT_EQ(token, "from-flag");
  ASSERT_OK_AND_ASSIGN(token, LoadAuthToken("", file, true));
  EXPECT_EQ(token, "from-file");

  ASSERT_EQ(setenv(kAuthTokenEnvVar, "from-env", 1), 0);
  ASSERT_OK_AND_ASSIGN(token, LoadAuthToken("", "", true));
  EXPECT_EQ(token, "from-env");
  ASSERT_OK_AND_ASSIGN(token, LoadAuthToken("", "", false));
  EXPECT_EQ(token, "");
  ASSERT_EQ(unsetenv(kAuthTokenEnvVar), 0);
  ASSERT_OK_AND_ASSIGN(token, LoadAuthToken("", "", true));
  EXPECT_EQ(token, "");

  EXPECT_THAT(LoadAuthToken("a", file, true), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "both"));
  EXPECT_THAT(LoadAuthToken("", file + ".missing", true), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LoadAuthToken("bad token", "", true), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(WriteFileAtomically(file, "\n"));
  EXPECT_THAT(LoadAuthToken("", file, true), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty"));
  ASSERT_EQ(system(("rm -rf '" + std::string(pattern) + "'").c_str()), 0);
}

}  // namespace
}  // namespace gcprune::common
