// Implementation of `gcprune sessions`.
#include "clients/cli/sessions_command.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli/command.h"
#include "clients/cli/connection_flags.h"
#include "clients/cli/flag_set.h"
#include "clients/cli/report_format.h"
#include "clients/cli/rpc_error.h"
#include "common/grpc_status.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"

namespace gcprune::cli {
namespace {

constexpr char kDescription[] =
    "Lists the pruner's sessions, newest first: state, whether a client is attached, completed iterations,\n"
    "sparsity, stored samples and memory. Exit codes: 0 listed, 2 bad command line, 3 pruner unreachable,\n"
    "4 other error.";

absl::StatusOr<v1::SessionState> ParseSessionState(const std::string& text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  for (v1::SessionState state : {v1::SESSION_STATE_COLLECTING, v1::SESSION_STATE_FITTING,
                                 v1::SESSION_STATE_COMPLETED, v1::SESSION_STATE_FAILED}) {
    if (upper == SessionStateName(state)) return state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--state: unknown value '", text, "' (known: collecting, fitting, completed, failed)"));
}

}  // namespace

int RunSessionsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string pruner = AddressFromEnv(kPrunerAddressEnvVar, kDefaultPrunerAddress);
  std::string state_text;
  int64_t limit = 100;
  bool json = false;
  absl::Duration timeout = absl::Seconds(30);
  ConnectionFlags connection;
  FlagSet flags("gcprune sessions [--state STATE] [--limit N] [--json] [flags]", kDescription);
  flags.AddString("pruner", &pruner, absl::StrCat("pruner address ($", kPrunerAddressEnvVar, ")"));
  flags.AddString("state", &state_text, "only sessions in this state: collecting, fitting, completed, failed");
  flags.AddInt("limit", &limit, "at most this many sessions; 0 = all");
  flags.AddBool("json", &json, "print a ListSessionsResponse as JSON (proto field names)");
  flags.AddDuration("timeout", &timeout, "deadline of each call to the pruner");
  connection.Register(&flags);

  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) {
    err << "gcprune sessions: " << positional.status().message() << " (see gcprune sessions --help)\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << flags.Help();
    return kExitOk;
  }
  if (!positional->empty()) {
    err << "gcprune sessions: unexpected argument '" << positional->front() << "' (see gcprune sessions --help)\n";
    return kExitUsage;
  }
  if (limit < 0 || timeout <= absl::ZeroDuration()) {
    err << "gcprune sessions: --limit must be >= 0 and --timeout positive\n";
    return kExitUsage;
  }
  v1::ListSessionsRequest request;
  if (!state_text.empty()) {
    absl::StatusOr<v1::SessionState> state = ParseSessionState(state_text);
    if (!state.ok()) {
      err << "gcprune sessions: " << state.status().message() << "\n";
      return kExitUsage;
    }
    request.set_state(*state);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = connection.Dial(pruner);
  if (!channel.ok()) {
    err << "gcprune sessions: " << channel.status().message() << "\n";
    return kExitUsage;
  }
  const ServerTarget target = PrunerTarget(pruner, timeout);
  auto stub = v1::Pruner::NewStub(*channel);
  v1::ListSessionsResponse all;
  do {
    const int64_t wanted = limit == 0 ? 1000 : limit - all.sessions_size();
    request.set_page_size(static_cast<int32_t>(std::min<int64_t>(wanted, 1000)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::ListSessionsResponse page;
    const absl::Status status = common::FromGrpcStatus(stub->ListSessions(&context, request, &page));
    if (!status.ok()) return ReportRpcFailure("sessions", target, "listing sessions", status, err);
    for (v1::SessionInfo& session : *page.mutable_sessions()) {
      if (limit > 0 && all.sessions_size() >= limit) break;
      *all.add_sessions() = std::move(session);
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && (limit == 0 || all.sessions_size() < limit));

  if (json) {
    absl::StatusOr<std::string> text = ToJson(all);
    if (!text.ok()) {
      err << "gcprune sessions: " << text.status().message() << "\n";
      return kExitRpcError;
    }
    out << *text;
    return kExitOk;
  }
  if (all.sessions().empty()) {
    err << "gcprune sessions: no sessions on the pruner at " << pruner
        << (state_text.empty() ? "" : " in state " + state_text) << "\n";
    return kExitOk;
  }
  out << FormatSessionsTable(all);
  return kExitOk;
}

}  // namespace gcprune::cli
