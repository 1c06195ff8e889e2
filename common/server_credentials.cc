// Implementation of the server credentials. grpc++ 1.51 refuses an auth metadata processor on its
// plaintext credentials, so both modes wrap a core grpc_server_credentials, to which the processor is
// attached through the C API; the core then runs it for every call, plaintext or TLS.
#include "common/server_credentials.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/auth_token.h"
#include "common/file_util.h"
#include "common/grpc_status.h"
#include "common/logging.h"

namespace gcprune::common {
namespace {

// Owns one core credentials object and adds listening ports with it. The grpc++ base class initialises
// the gRPC library, so core objects are created only after construction (see set_core).
class CoreServerCredentials final : public grpc::ServerCredentials {
 public:
  CoreServerCredentials() = default;
  CoreServerCredentials(const CoreServerCredentials&) = delete;
  CoreServerCredentials& operator=(const CoreServerCredentials&) = delete;
  ~CoreServerCredentials() override {
    if (core_ != nullptr) grpc_server_credentials_release(core_);
  }

  grpc_server_credentials* core() const { return core_; }
  // Takes ownership; called once.
  void set_core(grpc_server_credentials* core) { core_ = core; }

  // The processor is attached to the core credentials at construction; a second one is a programming
  // error that is reported rather than silently ignored.
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {
    GCPRUNE_LOG(ERROR) << "SetAuthMetadataProcessor is not supported on gcprune server credentials";
  }

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), core_);
  }

  grpc_server_credentials* core_ = nullptr;
};

struct TokenCheckState {
  std::string token;
  std::vector<std::string> exempt_prefixes;
};

absl::string_view SliceView(const grpc_slice& slice) {
  return absl::string_view(reinterpret_cast<const char*>(GRPC_SLICE_START_PTR(slice)),
                           GRPC_SLICE_LENGTH(slice));
}

// Runs on gRPC's thread for every incoming call; cheap and non-blocking.
void ProcessTokenMetadata(void* state, grpc_auth_context* /*context*/, const grpc_metadata* md,
                          size_t num_md, grpc_process_auth_metadata_done_cb done, void* user_data) {
  const auto* check = static_cast<const TokenCheckState*>(state);
  absl::string_view path;
  std::optional<absl::string_view> authorization;
  const grpc_metadata* authorization_md = nullptr;
  for (size_t i = 0; i < num_md; ++i) {
    absl::string_view key = SliceView(md[i].key);
    if (key == ":path") {
      path = SliceView(md[i].value);
    } else if (key == kAuthorizationMetadataKey && !authorization.has_value()) {
      authorization = SliceView(md[i].value);
      authorization_md = &md[i];
    }
  }
  for (const std::string& prefix : check->exempt_prefixes) {
    if (absl::StartsWith(path, prefix)) {
      done(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
      return;
    }
  }
  absl::Status status = CheckBearerToken(check->token, authorization);
  if (status.ok()) {
    // Consumed: service code never sees the secret.
    done(user_data, authorization_md, 1, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  GCPRUNE_LOG(DEBUG) << "rejected call to '" << path << "': " << status.message();
  const grpc::Status reply = ToGrpcStatus(status);
  done(user_data, nullptr, 0, nullptr, 0, static_cast<grpc_status_code>(reply.error_code()),
       reply.error_message().c_str());
}

void DestroyTokenCheckState(void* state) { delete static_cast<TokenCheckState*>(state); }

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what,
                                    absl::string_view marker) {
  absl::StatusOr<std::string> pem = ReadFileToString(path, 1 << 20);
  if (!pem.ok()) return pem.status();
  if (!absl::StrContains(*pem, "-----BEGIN ") || !absl::StrContains(*pem, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': no PEM block containing '", marker, "'"));
  }
  return pem;
}

absl::StatusOr<grpc_server_credentials*> MakeCoreCredentials(const ServerSecurityOptions& options) {
  const bool has_cert = !options.tls_cert_file.empty();
  const bool has_key = !options.tls_key_file.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS: certificate file ('", options.tls_cert_file, "') and key file ('", options.tls_key_file,
        "') must be given together"));
  }
  if (!has_cert) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("TLS: client CA file ('", options.tls_client_ca_file,
                                                     "') given without a server certificate"));
    }
    return grpc_insecure_server_credentials_create();
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "TLS certificate file", "CERTIFICATE");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "TLS key file", "PRIVATE KEY");
  if (!key.ok()) return key.status();
  std::string client_ca;
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca_file, "TLS client CA file", "CERTIFICATE");
    if (!ca.ok()) return ca.status();
    client_ca = *std::move(ca);
  }
  grpc_ssl_pem_key_cert_pair pair = {key->c_str(), cert->c_str()};
  // The core copies the PEM strings.
  grpc_server_credentials* core = grpc_ssl_server_credentials_create_ex(
      client_ca.empty() ? nullptr : client_ca.c_str(), &pair, 1,
      client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                        : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
      nullptr);
  if (core == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("TLS: cannot use certificate '", options.tls_cert_file,
                                                   "' with key '", options.tls_key_file, "'"));
  }
  return core;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurityOptions& options) {
  if (!options.auth_token.empty()) {
    absl::Status valid = ValidateAuthToken(options.auth_token);
    if (!valid.ok()) return valid;
  }
  auto credentials = std::make_shared<CoreServerCredentials>();
  absl::StatusOr<grpc_server_credentials*> core = MakeCoreCredentials(options);
  if (!core.ok()) return core.status();
  credentials->set_core(*core);
  if (!options.auth_token.empty()) {
    auto* state = new TokenCheckState{options.auth_token, options.auth_exempt_prefixes};
    grpc_auth_metadata_processor processor = {ProcessTokenMetadata, DestroyTokenCheckState, state};
    grpc_server_credentials_set_auth_metadata_processor(credentials->core(), processor);
  }
  return credentials;
}

}  // namespace gcprune::common
