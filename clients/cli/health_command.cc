// Implementation of `gcprune health`.
#include "clients/cli/health_command.h"

#include <grpcpp/client_context.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli/command.h"
#include "clients/cli/connection_flags.h"
#include "clients/cli/flag_set.h"
#include "common/grpc_status.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"

namespace gcprune::cli {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

constexpr char kDescription[] =
    "Checks ADDR (host:port) with the grpc.health.v1 health service. Exit codes: 0 SERVING,\n"
    "1 NOT_SERVING or unknown service, 2 bad command line, 3 unreachable or no answer in time,\n"
    "4 other error (e.g. UNAUTHENTICATED).";

int ReportRpcError(const std::string& address, const std::string& service, absl::Duration timeout,
                   const absl::Status& status, std::ostream& err) {
  const std::string target = service.empty() ? address : absl::StrCat(address, " (service '", service, "')");
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      err << "gcprune health: cannot reach " << target << ": " << status.message() << "\n";
      return kExitUnreachable;
    case absl::StatusCode::kDeadlineExceeded:
      err << "gcprune health: no answer from " << target << " within " << absl::FormatDuration(timeout) << "\n";
      return kExitUnreachable;
    case absl::StatusCode::kNotFound:
      err << "gcprune health: " << address << " does not know the service '" << service << "'\n";
      return kExitNegative;
    default:
      err << "gcprune health: " << target << " answered " << status.ToString() << "\n";
      return kExitRpcError;
  }
}

}  // namespace

int RunHealthCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string service;
  absl::Duration timeout = absl::Seconds(5);
  bool wait = false;
  ConnectionFlags connection;
  FlagSet flags("gcprune health ADDR [--service NAME] [--timeout 5s] [--wait] [connection flags]", kDescription);
  flags.AddString("service", &service, "service to check, e.g. gcprune.v1.Pruner; empty = the whole server");
  flags.AddDuration("timeout", &timeout, "give up after this long");
  flags.AddBool("wait", &wait, "wait (up to --timeout) for the server to come up instead of failing at once");
  connection.Register(&flags);

  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) {
    err << "gcprune health: " << positional.status().message() << " (see gcprune health --help)\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << flags.Help();
    return kExitOk;
  }
  if (positional->size() != 1) {
    err << "gcprune health: expected exactly one address (host:port), got " << positional->size()
        << " arguments (see gcprune health --help)\n";
    return kExitUsage;
  }
  if (timeout <= absl::ZeroDuration()) {
    err << "gcprune health: --timeout must be positive, got " << absl::FormatDuration(timeout) << "\n";
    return kExitUsage;
  }
  const std::string& address = (*positional)[0];
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = connection.Dial(address);
  if (!channel.ok()) {
    err << "gcprune health: " << channel.status().message() << "\n";
    return kExitUsage;
  }

  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(wait);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const absl::Status status = common::FromGrpcStatus(stub->Check(&context, request, &response));
  if (!status.ok()) return ReportRpcError(address, service, timeout, status, err);

  const std::string label = service.empty() ? address : absl::StrCat(address, " ", service);
  out << label << ": " << HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == HealthCheckResponse::SERVING ? kExitOk : kExitNegative;
}

}  // namespace gcprune::cli
