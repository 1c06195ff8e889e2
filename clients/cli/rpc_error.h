// One place that turns a failed call to a gcprune server into a message (address, gRPC code, a hint) and
// an exit code, so every subcommand reports unreachable servers, auth problems and unknown ids alike.
#ifndef GCPRUNE_CLIENTS_CLI_RPC_ERROR_H_
#define GCPRUNE_CLIENTS_CLI_RPC_ERROR_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gcprune::cli {

// A server as the user named it, for messages.
struct ServerTarget {
  std::string role;          // "trainer" or "pruner"
  std::string address;       // as dialled, e.g. "127.0.0.1:50051"
  std::string address_flag;  // the flag that sets it, e.g. "--trainer"
  std::string env_var;       // the environment variable that sets it, e.g. "GCPRUNE_TRAINER"
  std::string binary;        // the server program, e.g. "gcprune-trainer"
  absl::Duration timeout = absl::ZeroDuration();  // the call's deadline, for DEADLINE_EXCEEDED messages
};

// The trainer and the pruner at `address`, with the flags and variables that name them.
ServerTarget TrainerTarget(const std::string& address, absl::Duration timeout);
ServerTarget PrunerTarget(const std::string& address, absl::Duration timeout);

// Writes "gcprune COMMAND: <what> failed: ..." with a hint to `err` and returns the exit code:
// kExitUnreachable for UNAVAILABLE and DEADLINE_EXCEEDED, kExitRpcError for every other code. `what` names
// the operation, e.g. "report of run 'r-1'". `status` must not be OK.
int ReportRpcFailure(absl::string_view command, const ServerTarget& target, absl::string_view what,
                     const absl::Status& status, std::ostream& err);

// The exit code ReportRpcFailure would return, without writing anything.
int ExitCodeForRpcStatus(const absl::Status& status);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_RPC_ERROR_H_
