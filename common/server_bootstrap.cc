// Implementation of the server bootstrap.
#include "common/server_bootstrap.h"

#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/shutdown_signal.h"

namespace gcprune::common {
namespace {

constexpr int kMinMessageBytes = 1024;
constexpr int kMaxMessageBytes = 1 << 30;
// Long-lived streams (pruner sessions, run watchers) need dead peers detected and client keepalive
// pings tolerated; docs/PROTOCOL.md tells clients to ping no more often than every 10 s.
constexpr int kKeepaliveTimeMs = 60 * 1000;
constexpr int kKeepaliveTimeoutMs = 20 * 1000;
constexpr int kMinClientPingIntervalMs = 10 * 1000;

// Decides reflection per server. Linking grpc++_reflection registers its plugin for every builder of
// the process (a static initialiser calls InitProtoReflectionServerBuilderPlugin), so this option first
// removes any reflection plugin and then adds exactly one if wanted.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enable) : enable_(enable) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    auto reflection = std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>();
    const std::string name = reflection->name();
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [&name](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return plugin->name() == name;
                                  }),
                   plugins->end());
    if (enable_) plugins->push_back(std::move(reflection));
  }

 private:
  const bool enable_;
};

bool IsWildcardHost(const std::string& host) {
  return host == "0.0.0.0" || host == "::" || host == "[::]" || host.empty();
}

std::string JoinHostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

std::string LoopbackFor(const std::string& host) {
  if (host == "::" || host == "[::]") return "::1";
  return "127.0.0.1";
}

absl::Status ValidateOptions(const ServerOptions& options, const std::vector<ServiceEntry>& services) {
  if (options.host.empty()) return absl::InvalidArgumentError("host: empty");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port: must be in [0, 65535], got ", options.port));
  }
  if (options.max_receive_message_bytes < kMinMessageBytes || options.max_receive_message_bytes > kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat("max_receive_message_bytes: must be in [", kMinMessageBytes,
                                                   ", ", kMaxMessageBytes, "], got ",
                                                   options.max_receive_message_bytes));
  }
  if (options.max_send_message_bytes < kMinMessageBytes || options.max_send_message_bytes > kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat("max_send_message_bytes: must be in [", kMinMessageBytes, ", ",
                                                   kMaxMessageBytes, "], got ", options.max_send_message_bytes));
  }
  if (options.shutdown_grace < absl::ZeroDuration() || options.shutdown_grace == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("shutdown_grace: must be finite and >= 0, got ", absl::FormatDuration(options.shutdown_grace)));
  }
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < services.size(); ++i) {
    if (services[i].service == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("services[", i, "]: null service"));
    }
    if (services[i].name.empty()) return absl::InvalidArgumentError(absl::StrCat("services[", i, "].name: empty"));
    if (!names.insert(services[i].name).second) {
      return absl::InvalidArgumentError(absl::StrCat("services[", i, "].name: duplicate '", services[i].name, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const ServerOptions& options,
                                                              const std::vector<ServiceEntry>& services) {
  absl::Status valid = ValidateOptions(options, services);
  if (!valid.ok()) return valid;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = MakeServerCredentials(options.security);
  if (!credentials.ok()) return credentials.status();
  if (!options.security.auth_token.empty() && options.security.tls_cert_file.empty()) {
    GCPRUNE_LOG(WARNING) << "bearer-token auth without TLS: tokens cross the network in plaintext";
  }

  // Process-wide switch read by every ServerBuilder; both gcprune servers want it on.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  const std::string listen = JoinHostPort(options.host, options.port);
  int bound_port = 0;
  builder.AddListeningPort(listen, *credentials, &bound_port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  // gRPC sets SO_REUSEPORT by default, which would let two servers share a port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kMinClientPingIntervalMs);
  builder.SetOption(std::make_unique<ReflectionOption>(options.enable_reflection));
  for (const ServiceEntry& entry : services) builder.RegisterService(entry.service);

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    if (server != nullptr) server->Shutdown();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (address in use, not local, or not permitted)"));
  }
  const std::string host_for_clients = IsWildcardHost(options.host) ? LoopbackFor(options.host) : options.host;
  std::unique_ptr<GrpcServer> result(new GrpcServer(std::move(server), bound_port, JoinHostPort(options.host, bound_port),
                                                    JoinHostPort(host_for_clients, bound_port)));
  for (const ServiceEntry& entry : services) result->SetServingStatus(entry.name, true);
  result->SetServingStatus("", true);
  if (!options.port_file.empty()) {
    absl::Status written = WriteFileAtomically(options.port_file, absl::StrCat(bound_port, "\n"));
    if (!written.ok()) return written;  // the destructor shuts the server down
  }
  GCPRUNE_LOG(INFO) << "serving on " << result->listen_address()
                    << (options.security.tls_cert_file.empty() ? " (plaintext" : " (TLS")
                    << (options.security.auth_token.empty() ? ", no auth)" : ", bearer-token auth)");
  return result;
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, int port, std::string listen_address,
                       std::string local_address)
    : server_(std::move(server)),
      port_(port),
      listen_address_(std::move(listen_address)),
      local_address_(std::move(local_address)) {}

GrpcServer::~GrpcServer() {
  Shutdown(absl::ZeroDuration());
  Wait();
}

void GrpcServer::SetServingStatus(const std::string& service, bool serving) {
  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(service, serving);
}

void GrpcServer::AddShutdownHook(std::function<void()> hook) {
  {
    absl::MutexLock lock(&mutex_);
    if (!shutting_down_) {
      hooks_.push_back(std::move(hook));
      return;
    }
  }
  hook();
}

void GrpcServer::Shutdown(absl::Duration grace) {
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&mutex_);
    if (shutting_down_) return;
    shutting_down_ = true;
    hooks.swap(hooks_);
  }
  GCPRUNE_LOG(INFO) << "shutting down " << listen_address_ << " (grace " << absl::FormatDuration(grace) << ")";
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->Shutdown();
  for (std::function<void()>& hook : hooks) hook();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void GrpcServer::Wait() { server_->Wait(); }

absl::StatusOr<int> ServeUntilShutdownSignal(GrpcServer& server, absl::Duration grace) {
  std::atomic<int> signal_number{0};
  absl::StatusOr<std::unique_ptr<ShutdownSignalWatcher>> watcher =
      ShutdownSignalWatcher::Install([&server, &signal_number, grace](int signo) {
        signal_number = signo;
        server.Shutdown(grace);
      });
  if (!watcher.ok()) return watcher.status();
  server.Wait();
  watcher->reset();
  GCPRUNE_LOG(INFO) << "server " << server.listen_address() << " stopped";
  return signal_number.load();
}

}  // namespace gcprune::common
