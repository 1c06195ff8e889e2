// Definitions of the shared server flags.
#include "common/server_flags.h"

#include <cmath>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/auth_token.h"
#include "common/logging.h"

ABSL_FLAG(std::string, host, "127.0.0.1",
          "Address to listen on (IPv4/IPv6 literal or host name); 0.0.0.0 for all IPv4 interfaces.");
ABSL_FLAG(int, port, -1, "TCP port; 0 = any free port (see --port_file); -1 = the server's default.");
ABSL_FLAG(std::string, port_file, "", "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM server certificate chain; enables TLS (with --tls_key_file).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM roots for client certificates; enables mutual TLS (requires --tls_cert_file).");
ABSL_FLAG(std::string, auth_token, "",
          "Bearer token required on every call (visible in `ps`: prefer --auth_token_file or $GCPRUNE_AUTH_TOKEN).");
ABSL_FLAG(std::string, auth_token_file, "", "File holding the bearer token (surrounding whitespace ignored).");
ABSL_FLAG(bool, auth_exempt_health, true, "Serve grpc.health.v1.Health without a token (for probes).");
ABSL_FLAG(bool, reflection, true, "Serve grpc.reflection.v1alpha server reflection.");
ABSL_FLAG(int, max_message_bytes, 4 << 20, "Largest request message accepted, in bytes [1024, 2^30].");
ABSL_FLAG(double, shutdown_grace_seconds, 10.0,
          "On SIGTERM/SIGINT, seconds in-flight calls may take before they are cancelled.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");

namespace gcprune::common {

absl::StatusOr<ServerOptions> ServerOptionsFromFlags(int default_port) {
  absl::StatusOr<LogLevel> level = ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return absl::InvalidArgumentError(absl::StrCat("--log_level: ", level.status().message()));
  SetLogThreshold(*level);

  ServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  const int port = absl::GetFlag(FLAGS_port);
  if (port < -1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port: must be in [-1, 65535], got ", port));
  }
  options.port = port == -1 ? default_port : port;
  options.port_file = absl::GetFlag(FLAGS_port_file);
  options.security.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.security.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.security.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  absl::StatusOr<std::string> token =
      LoadAuthToken(absl::GetFlag(FLAGS_auth_token), absl::GetFlag(FLAGS_auth_token_file), /*use_env=*/true);
  if (!token.ok()) return token.status();
  options.security.auth_token = *token;
  options.security.auth_exempt_prefixes.clear();
  if (absl::GetFlag(FLAGS_auth_exempt_health)) options.security.auth_exempt_prefixes.push_back(kHealthMethodPrefix);
  options.enable_reflection = absl::GetFlag(FLAGS_reflection);
  options.max_receive_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (options.max_receive_message_bytes < 1024 || options.max_receive_message_bytes > (1 << 30)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_message_bytes: must be in [1024, 1073741824], got ", options.max_receive_message_bytes));
  }
  const double grace = absl::GetFlag(FLAGS_shutdown_grace_seconds);
  if (!std::isfinite(grace) || grace < 0 || grace > 86400) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shutdown_grace_seconds: must be in [0, 86400], got ", grace));
  }
  options.shutdown_grace = absl::Seconds(grace);
  return options;
}

}  // namespace gcprune::common
