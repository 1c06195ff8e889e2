// Builds and runs a gcprune gRPC server: listening port (0 = ephemeral, the bound port is reported),
// TLS and bearer-token auth, grpc.health.v1 health checking, server reflection, keepalive settings and
// graceful shutdown on SIGTERM/SIGINT. Both servers' main() reduce to flags -> services -> Start -> Serve.
#ifndef GCPRUNE_COMMON_SERVER_BOOTSTRAP_H_
#define GCPRUNE_COMMON_SERVER_BOOTSTRAP_H_

#include <grpcpp/impl/service_type.h>
#include <grpcpp/server.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/server_credentials.h"

namespace gcprune::common {

// The health service's method prefix; exempt from token auth by default.
inline constexpr char kHealthMethodPrefix[] = "/grpc.health.v1.Health/";

struct ServerOptions {
  // Address to listen on: an IPv4/IPv6 literal or a host name; "0.0.0.0" = all IPv4 interfaces.
  std::string host = "0.0.0.0";
  // TCP port in [0, 65535]; 0 = any free port, reported by GrpcServer::port() and port_file.
  int port = 0;
  // If non-empty, the bound port is written there (decimal, newline) atomically once serving, for
  // scripts and tests that start servers on port 0.
  std::string port_file;
  // TLS and bearer-token settings. auth_exempt_prefixes defaults to the health service.
  ServerSecurityOptions security = {{}, {}, {}, {}, {kHealthMethodPrefix}};
  // Serve grpc.reflection.v1alpha so that grpcurl and other generic clients can discover the services.
  // Decided per server, whatever grpc::reflection::InitProtoReflectionServerBuilderPlugin did.
  bool enable_reflection = true;
  // Largest request message accepted, in bytes, in [1024, 1 GiB]. gRPC's default is 4 MiB; the protocol
  // keeps messages well below it.
  int max_receive_message_bytes = 4 << 20;
  // Largest response message sent, in bytes, in [1024, 1 GiB].
  int max_send_message_bytes = 64 << 20;
  // How long Shutdown lets in-flight calls finish before cancelling them, >= 0.
  absl::Duration shutdown_grace = absl::Seconds(10);
};

// A service to register and the fully-qualified name its health status is published under, e.g.
// {&pruner, gcprune::v1::Pruner::service_full_name()}. The service must outlive the server.
struct ServiceEntry {
  grpc::Service* service = nullptr;
  std::string name;
};

// A started server. Thread-safe.
class GrpcServer {
 public:
  // Validates the options, builds the server, registers `services` (each SERVING in the health service,
  // as is the server as a whole, ""), starts it and writes the port file.
  // Errors: INVALID_ARGUMENT for an out-of-range option, a null service or an empty or duplicate name;
  // the errors of MakeServerCredentials for TLS and token settings; UNAVAILABLE if the address cannot be
  // bound (e.g. the port is in use: ports are never shared between processes); the errors of
  // WriteFileAtomically for the port file (the server is then shut down).
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const ServerOptions& options,
                                                           const std::vector<ServiceEntry>& services);

  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;
  // Shuts down at once (zero grace) if that has not happened yet, and waits.
  ~GrpcServer();

  // The bound TCP port, in [1, 65535].
  int port() const { return port_; }
  // "host:port" as listened on, e.g. "0.0.0.0:50051" or "[::1]:41234".
  const std::string& listen_address() const { return listen_address_; }
  // An address a local client can dial: a wildcard host becomes the loopback address.
  const std::string& local_address() const { return local_address_; }
  grpc::Server* grpc_server() const { return server_.get(); }

  // Publishes `service`'s health status ("" = the server as a whole). Ignored after Shutdown, which
  // publishes NOT_SERVING for everything.
  void SetServingStatus(const std::string& service, bool serving);

  // Registers `hook` to run during Shutdown, after health turned NOT_SERVING and before in-flight calls
  // get their deadline; services end their long-lived streams there (e.g. with UNAVAILABLE). Hooks run in
  // registration order on the thread calling Shutdown. A hook added after Shutdown runs at once.
  void AddShutdownHook(std::function<void()> hook);

  // Graceful shutdown: health NOT_SERVING, hooks, then no new calls and `grace` for in-flight ones before
  // they are cancelled. Idempotent; later calls return at once. Does not wait (see Wait).
  void Shutdown(absl::Duration grace);
  // Blocks until the server has shut down completely.
  void Wait();

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, int port, std::string listen_address,
             std::string local_address);

  std::unique_ptr<grpc::Server> server_;
  const int port_;
  const std::string listen_address_;
  const std::string local_address_;
  absl::Mutex mutex_;
  bool shutting_down_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(mutex_);
};

// Serves until SIGTERM or SIGINT (or until someone else shuts `server` down), then shuts down with
// `grace` and waits. Returns the signal number that ended serving, or 0 if it was not a signal.
// FAILED_PRECONDITION if another signal watcher is installed; INTERNAL if signals cannot be hooked.
absl::StatusOr<int> ServeUntilShutdownSignal(GrpcServer& server, absl::Duration grace);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_SERVER_BOOTSTRAP_H_
