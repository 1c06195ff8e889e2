// Command-line flags shared by both gcprune servers (listening address, TLS, auth, limits, logging)
// and their conversion into ServerOptions.
#ifndef GCPRUNE_COMMON_SERVER_FLAGS_H_
#define GCPRUNE_COMMON_SERVER_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "common/server_bootstrap.h"

ABSL_DECLARE_FLAG(std::string, host);
ABSL_DECLARE_FLAG(int, port);
ABSL_DECLARE_FLAG(std::string, port_file);
ABSL_DECLARE_FLAG(std::string, tls_cert_file);
ABSL_DECLARE_FLAG(std::string, tls_key_file);
ABSL_DECLARE_FLAG(std::string, tls_client_ca_file);
ABSL_DECLARE_FLAG(std::string, auth_token);
ABSL_DECLARE_FLAG(std::string, auth_token_file);
ABSL_DECLARE_FLAG(bool, auth_exempt_health);
ABSL_DECLARE_FLAG(bool, reflection);
ABSL_DECLARE_FLAG(int, max_message_bytes);
ABSL_DECLARE_FLAG(double, shutdown_grace_seconds);
ABSL_DECLARE_FLAG(std::string, log_level);

namespace gcprune::common {

// Reads the shared flags into ServerOptions, using `default_port` when --port is -1 (its default), and
// applies --log_level to the logger. The token comes from --auth_token, --auth_token_file or
// $GCPRUNE_AUTH_TOKEN (see LoadAuthToken). INVALID_ARGUMENT naming the flag and value for an
// out-of-range port, message size, grace period or log level; the errors of LoadAuthToken.
absl::StatusOr<ServerOptions> ServerOptionsFromFlags(int default_port);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_SERVER_FLAGS_H_
