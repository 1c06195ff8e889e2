// The connection flags every `gcprune` subcommand that talks to a server accepts (TLS and token), and
// their conversion into a channel.
#ifndef GCPRUNE_CLIENTS_CLI_CONNECTION_FLAGS_H_
#define GCPRUNE_CLIENTS_CLI_CONNECTION_FLAGS_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "clients/cli/flag_set.h"

namespace gcprune::cli {

// Where the commands look for the servers unless --trainer / --pruner say otherwise: the environment
// variable if set and non-empty, else the servers' default ports on the loopback interface.
inline constexpr char kTrainerAddressEnvVar[] = "GCPRUNE_TRAINER";
inline constexpr char kPrunerAddressEnvVar[] = "GCPRUNE_PRUNER";
inline constexpr char kDefaultTrainerAddress[] = "127.0.0.1:50051";
inline constexpr char kDefaultPrunerAddress[] = "127.0.0.1:50052";

// $env_var if set and non-empty, else `fallback`.
std::string AddressFromEnv(const char* env_var, const char* fallback);

struct ConnectionFlags {
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_server_name;
  std::string tls_client_cert_file;
  std::string tls_client_key_file;
  std::string token;
  std::string token_file;

  // Registers --tls, --tls_ca_file, --tls_server_name, --tls_client_cert_file, --tls_client_key_file,
  // --token and --token_file.
  void Register(FlagSet* flags);

  // A channel to `address`. The token comes from --token, --token_file or $GCPRUNE_AUTH_TOKEN.
  // INVALID_ARGUMENT for conflicting or malformed settings; NOT_FOUND / PERMISSION_DENIED for unreadable
  // files (the message names the file).
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address) const;
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_CONNECTION_FLAGS_H_
