// Bearer-token authentication shared by the servers and the clients: the token's format, loading it
// from a flag, a file or the environment, and checking an "authorization" header against it.
#ifndef GCPRUNE_COMMON_AUTH_TOKEN_H_
#define GCPRUNE_COMMON_AUTH_TOKEN_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gcprune::common {

// The metadata key carrying "Bearer <token>" (gRPC metadata keys are lower case).
inline constexpr char kAuthorizationMetadataKey[] = "authorization";
// Environment variable read when neither a token nor a token file is given.
inline constexpr char kAuthTokenEnvVar[] = "GCPRUNE_AUTH_TOKEN";

// OK for 1 to 4096 printable ASCII characters without spaces (0x21..0x7e); INVALID_ARGUMENT otherwise,
// naming the offending position but not echoing the token.
absl::Status ValidateAuthToken(absl::string_view token);

// Picks the token: `token` if non-empty, else the contents of `token_file` (surrounding whitespace
// stripped) if non-empty, else $GCPRUNE_AUTH_TOKEN if `use_env`, else "" (no authentication).
// INVALID_ARGUMENT if both `token` and `token_file` are set or the token is malformed; the errors of
// ReadFileToString for the file (NOT_FOUND, PERMISSION_DENIED, ...).
absl::StatusOr<std::string> LoadAuthToken(const std::string& token, const std::string& token_file,
                                          bool use_env);

// Checks the value of a call's "authorization" metadata (nullopt when absent) against `expected_token`:
// OK if it is "Bearer <expected_token>" (scheme case-insensitive); UNAUTHENTICATED if it is absent or not a
// bearer credential; PERMISSION_DENIED if the token differs. Compares in constant time.
absl::Status CheckBearerToken(absl::string_view expected_token,
                              std::optional<absl::string_view> authorization);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_AUTH_TOKEN_H_
