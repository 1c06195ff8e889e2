// Implementation of the shared connection flags.
#include "clients/cli/connection_flags.h"

#include <cstdlib>

#include "common/auth_token.h"
#include "common/client_channel.h"

namespace gcprune::cli {

std::string AddressFromEnv(const char* env_var, const char* fallback) {
  const char* value = std::getenv(env_var);
  return value != nullptr && value[0] != '\0' ? std::string(value) : std::string(fallback);
}

void ConnectionFlags::Register(FlagSet* flags) {
  flags->AddBool("tls", &tls, "connect with TLS (system roots unless --tls_ca_file)");
  flags->AddString("tls_ca_file", &tls_ca_file, "PEM roots for the server certificate; implies --tls");
  flags->AddString("tls_server_name", &tls_server_name, "name to verify in the server certificate");
  flags->AddString("tls_client_cert_file", &tls_client_cert_file, "PEM client certificate (mutual TLS)");
  flags->AddString("tls_client_key_file", &tls_client_key_file, "PEM key of --tls_client_cert_file");
  flags->AddString("token", &token, "bearer token (visible in `ps`: prefer --token_file or $GCPRUNE_AUTH_TOKEN)");
  flags->AddString("token_file", &token_file, "file holding the bearer token");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectionFlags::Dial(const std::string& address) const {
  absl::StatusOr<std::string> auth_token = common::LoadAuthToken(token, token_file, /*use_env=*/true);
  if (!auth_token.ok()) return auth_token.status();
  common::ClientChannelOptions options;
  options.use_tls = tls;
  options.tls_ca_file = tls_ca_file;
  options.tls_server_name = tls_server_name;
  options.tls_client_cert_file = tls_client_cert_file;
  options.tls_client_key_file = tls_client_key_file;
  options.auth_token = *auth_token;
  return common::MakeClientChannel(address, options);
}

}  // namespace gcprune::cli
