// Client channels to gcprune servers: plaintext or TLS, with the bearer token added to every call, so
// the CLI, the trainer's pruner client and the tests connect the same way.
#ifndef GCPRUNE_COMMON_CLIENT_CHANNEL_H_
#define GCPRUNE_COMMON_CLIENT_CHANNEL_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace gcprune::common {

struct ClientChannelOptions {
  // Use TLS. Implied by a non-empty tls_ca_file.
  bool use_tls = false;
  // PEM roots that sign the server's certificate; empty = the system's roots.
  std::string tls_ca_file;
  // Name checked against the server certificate instead of the address's host; empty = the host.
  std::string tls_server_name;
  // PEM client certificate and key for mutual TLS; both or neither.
  std::string tls_client_cert_file;
  std::string tls_client_key_file;
  // Token sent as "authorization: Bearer <token>" on every call; empty = none.
  std::string auth_token;
  // Largest message accepted from the server, in bytes, >= 1.
  int max_receive_message_bytes = 64 << 20;
  // Upper bound of gRPC's reconnect backoff after a lost connection, in ms; 0 = gRPC's default (120 s).
  // Long-lived clients that must notice a restarted server quickly set it low (e.g. 1000).
  int max_reconnect_backoff_ms = 0;
};

// Creates a lazily connecting channel to `address` ("host:port", "dns:///host:port", "unix:/path").
// Errors: INVALID_ARGUMENT for an empty address, a non-positive message limit, a negative reconnect
// backoff, a malformed token, or a
// client certificate without its key (or the reverse); the errors of ReadFileToString for unreadable
// PEM files.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeClientChannel(const std::string& address,
                                                                 const ClientChannelOptions& options);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_CLIENT_CHANNEL_H_
