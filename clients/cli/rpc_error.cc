// Implementation of the shared RPC failure messages.
#include "clients/cli/rpc_error.h"

#include "absl/strings/str_cat.h"
#include "clients/cli/command.h"
#include "clients/cli/connection_flags.h"

namespace gcprune::cli {
namespace {

std::string CodeAndMessage(const absl::Status& status) {
  if (status.message().empty()) return absl::StatusCodeToString(status.code());
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

std::string Hint(const ServerTarget& target, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return absl::StrCat("is ", target.binary, " running and listening on ", target.address,
                          "? Start it, or pass ", target.address_flag, " HOST:PORT (or set $", target.env_var,
                          "). A server started with TLS needs --tls (and --tls_ca_file for a private CA).");
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat("the ", target.role, " may be overloaded or the address may drop packets; raise "
                          "--timeout or check ", target.address_flag, ".");
    case absl::StatusCode::kUnauthenticated:
      return "the server requires a token: pass --token_file FILE (or --token, or set $GCPRUNE_AUTH_TOKEN).";
    case absl::StatusCode::kPermissionDenied:
      return "the server rejected the token: check --token_file / --token / $GCPRUNE_AUTH_TOKEN.";
    case absl::StatusCode::kUnimplemented:
      return absl::StrCat(target.address, " does not serve the ", target.role, " API; is it the other server? "
                          "The trainer listens on port 50051 and the pruner on 50052 by default.");
    case absl::StatusCode::kNotFound:
      return "`gcprune runs` and `gcprune sessions` list the ids the servers know.";
    default:
      return "";
  }
}

}  // namespace

ServerTarget TrainerTarget(const std::string& address, absl::Duration timeout) {
  return {"trainer", address, "--trainer", kTrainerAddressEnvVar, "gcprune-trainer", timeout};
}

ServerTarget PrunerTarget(const std::string& address, absl::Duration timeout) {
  return {"pruner", address, "--pruner", kPrunerAddressEnvVar, "gcprune-pruner", timeout};
}

int ExitCodeForRpcStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    default:
      return kExitRpcError;
  }
}

int ReportRpcFailure(absl::string_view command, const ServerTarget& target, absl::string_view what,
                     const absl::Status& status, std::ostream& err) {
  err << "gcprune " << command << ": " << what << " failed: ";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      err << "cannot reach the " << target.role << " at " << target.address << " (" << CodeAndMessage(status)
          << ")\n";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      err << "no answer from the " << target.role << " at " << target.address;
      if (target.timeout > absl::ZeroDuration()) err << " within " << absl::FormatDuration(target.timeout);
      err << " (" << CodeAndMessage(status) << ")\n";
      break;
    default:
      err << "the " << target.role << " at " << target.address << " answered " << CodeAndMessage(status) << "\n";
      break;
  }
  const std::string hint = Hint(target, status);
  if (!hint.empty()) err << "  hint: " << hint << "\n";
  return ExitCodeForRpcStatus(status);
}

}  // namespace gcprune::cli
