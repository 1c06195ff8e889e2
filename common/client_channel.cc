// Implementation of client channels: credentials from PEM files and a client interceptor that adds the
// bearer token (call credentials would be refused by gRPC on plaintext channels).
#include "common/client_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/auth_token.h"
#include "common/file_util.h"

namespace gcprune::common {
namespace {

class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace(kAuthorizationMetadataKey, *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;  // owned by the factory, which the channel keeps alive
};

class BearerTokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(const std::string& token) : header_(absl::StrCat("Bearer ", token)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientChannelOptions& options) {
  const bool has_cert = !options.tls_client_cert_file.empty();
  const bool has_key = !options.tls_client_key_file.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS: client certificate file ('", options.tls_client_cert_file, "') and key file ('",
        options.tls_client_key_file, "') must be given together"));
  }
  if (!options.use_tls && options.tls_ca_file.empty() && !has_cert) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca_file.empty()) {
    absl::StatusOr<std::string> roots = ReadFileToString(options.tls_ca_file, 1 << 20);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *std::move(roots);
  }
  if (has_cert) {
    absl::StatusOr<std::string> cert = ReadFileToString(options.tls_client_cert_file, 1 << 20);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFileToString(options.tls_client_key_file, 1 << 20);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeClientChannel(const std::string& address,
                                                                 const ClientChannelOptions& options) {
  if (address.empty()) return absl::InvalidArgumentError("server address: empty");
  if (options.max_receive_message_bytes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_receive_message_bytes: must be >= 1, got ",
                                                   options.max_receive_message_bytes));
  }
  if (options.max_reconnect_backoff_ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_reconnect_backoff_ms: must be >= 0, got ",
                                                   options.max_reconnect_backoff_ms));
  }
  if (!options.auth_token.empty()) {
    absl::Status valid = ValidateAuthToken(options.auth_token);
    if (!valid.ok()) return valid;
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  if (options.max_reconnect_backoff_ms > 0) {
    const int max_ms = options.max_reconnect_backoff_ms;
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(max_ms, 1000));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(max_ms, 1000));
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!options.auth_token.empty()) {
    interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(options.auth_token));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(address, *credentials, args,
                                                                 std::move(interceptors));
}

}  // namespace gcprune::common
