// Server transport security for both gcprune servers: plaintext or TLS (optionally mutual), with an
// optional bearer-token check on every call, enforced by gRPC's auth metadata processor before any
// service code runs.
#ifndef GCPRUNE_COMMON_SERVER_CREDENTIALS_H_
#define GCPRUNE_COMMON_SERVER_CREDENTIALS_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gcprune::common {

struct ServerSecurityOptions {
  // PEM certificate chain of the server; empty = plaintext. Requires tls_key_file.
  std::string tls_cert_file;
  // PEM private key matching tls_cert_file.
  std::string tls_key_file;
  // PEM roots for client certificates; non-empty = mutual TLS (clients must present a certificate signed
  // by one of them). Requires tls_cert_file.
  std::string tls_client_ca_file;
  // Bearer token every call must carry; empty = no token check. Must pass ValidateAuthToken.
  std::string auth_token;
  // Full method paths starting with one of these prefixes are served without a token, e.g.
  // "/grpc.health.v1.Health/" so that container health probes need no secret.
  std::vector<std::string> auth_exempt_prefixes;
};

// Builds the credentials for ServerBuilder::AddListeningPort. With a token, a call without
// "authorization: Bearer <token>" fails with UNAUTHENTICATED and one with a different token with
// PERMISSION_DENIED, in both plaintext and TLS modes.
// Errors: INVALID_ARGUMENT for a certificate without a key (or the reverse), a client CA without a
// certificate, a file that holds no PEM block of the expected kind, or a malformed token; the errors of
// ReadFileToString (NOT_FOUND, PERMISSION_DENIED, ...) for unreadable files.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurityOptions& options);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_SERVER_CREDENTIALS_H_
