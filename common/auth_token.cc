// Implementation of bearer-token validation, loading and checking.
#include "common/auth_token.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace gcprune::common {
namespace {

constexpr size_t kMaxTokenBytes = 4096;
constexpr absl::string_view kBearerPrefix = "bearer ";

// Constant-time equality, so response timing does not reveal how much of a guess was right.
bool SecureEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

absl::Status ValidateAuthToken(absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("auth token: empty");
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth token: ", token.size(), " bytes, more than the limit of ", kMaxTokenBytes));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "auth token: character at position ", i,
          " is not printable ASCII without spaces (0x21..0x7e), got code ", static_cast<int>(c)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LoadAuthToken(const std::string& token, const std::string& token_file,
                                          bool use_env) {
  if (!token.empty() && !token_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("auth token: both a token and a token file ('", token_file, "') are given"));
  }
  std::string result = token;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> contents = ReadFileToString(token_file, kMaxTokenBytes + 1024);
    if (!contents.ok()) return contents.status();
    result = std::string(absl::StripAsciiWhitespace(*contents));
    if (result.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("auth token file '", token_file, "': empty"));
    }
  } else if (result.empty() && use_env) {
    const char* env = std::getenv(kAuthTokenEnvVar);
    if (env != nullptr) result = std::string(absl::StripAsciiWhitespace(env));
  }
  if (result.empty()) return result;
  absl::Status valid = ValidateAuthToken(result);
  if (!valid.ok()) return valid;
  return result;
}

absl::Status CheckBearerToken(absl::string_view expected_token,
                              std::optional<absl::string_view> authorization) {
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <token>' metadata; this server requires a token");
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  if (value.size() < kBearerPrefix.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearerPrefix.size()), kBearerPrefix)) {
    return absl::UnauthenticatedError("authorization metadata: expected the scheme 'Bearer <token>'");
  }
  absl::string_view presented = absl::StripLeadingAsciiWhitespace(value.substr(kBearerPrefix.size()));
  if (!SecureEquals(presented, expected_token)) {
    return absl::PermissionDeniedError("authorization metadata: the bearer token is not valid");
  }
  return absl::OkStatus();
}

}  // namespace gcprune::common
