// Implementation of `gcprune report`, `gcprune runs` and `gcprune cancel`.
#include "clients/cli/run_admin_commands.h"

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
#include "clients/cli/run_follower.h"
#include "clients/cli/trainer_calls.h"
#include "common/grpc_status.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"

namespace gcprune::cli {
namespace {

// The flags every trainer command has, and the parsing they share.
struct TrainerCommand {
  std::string name;
  std::string trainer = AddressFromEnv(kTrainerAddressEnvVar, kDefaultTrainerAddress);
  absl::Duration timeout = absl::Seconds(30);
  ConnectionFlags connection;
  FlagSet flags;
  std::vector<std::string> positional;
  std::shared_ptr<grpc::Channel> channel;

  TrainerCommand(std::string command, std::string usage, std::string description)
      : name(std::move(command)), flags(std::move(usage), std::move(description)) {
    flags.AddString("trainer", &trainer, absl::StrCat("trainer address ($", kTrainerAddressEnvVar, ")"));
    flags.AddDuration("timeout", &timeout, "deadline of each call to the trainer");
  }

  // Parses and dials. Returns -1 to go on, else the exit code to end with (help printed, usage error).
  int Start(const std::vector<std::string>& args, size_t num_positional, std::ostream& out, std::ostream& err) {
    connection.Register(&flags);
    absl::StatusOr<std::vector<std::string>> parsed = flags.Parse(args);
    if (!parsed.ok()) {
      err << "gcprune " << name << ": " << parsed.status().message() << " (see gcprune " << name << " --help)\n";
      return kExitUsage;
    }
    if (flags.help_requested()) {
      out << flags.Help();
      return kExitOk;
    }
    positional = *std::move(parsed);
    if (positional.size() != num_positional) {
      err << "gcprune " << name << ": expected " << (num_positional == 0 ? "no arguments" : "exactly one run id")
          << ", got " << positional.size() << " (see gcprune " << name << " --help)\n";
      return kExitUsage;
    }
    if (timeout <= absl::ZeroDuration()) {
      err << "gcprune " << name << ": --timeout must be positive, got " << absl::FormatDuration(timeout) << "\n";
      return kExitUsage;
    }
    absl::StatusOr<std::shared_ptr<grpc::Channel>> dialed = connection.Dial(trainer);
    if (!dialed.ok()) {
      err << "gcprune " << name << ": " << dialed.status().message() << "\n";
      return kExitUsage;
    }
    channel = *std::move(dialed);
    return -1;
  }

  ServerTarget target() const { return TrainerTarget(trainer, timeout); }
};

absl::StatusOr<v1::RunState> ParseRunState(const std::string& text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  for (v1::RunState state : {v1::RUN_STATE_QUEUED, v1::RUN_STATE_RUNNING, v1::RUN_STATE_SUCCEEDED,
                             v1::RUN_STATE_FAILED, v1::RUN_STATE_CANCELLED}) {
    if (upper == RunStateName(state)) return state;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--state: unknown value '", text, "' (known: queued, running, succeeded, failed, cancelled)"));
}

}  // namespace

int RunReportCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  TrainerCommand command("report", "gcprune report RUN [--json] [flags]",
                         "Prints the report of run RUN: per prune iteration the target and achieved sparsity and\n"
                         "the test accuracy right after pruning, the fine-tuning result, the final sparsity per\n"
                         "tensor and the time per phase. Exit codes: 0 printed, 2 bad command line, 3 trainer\n"
                         "unreachable, 4 other error (e.g. unknown run).");
  command.flags.AddBool("json", &json, "print the RunReport as JSON (proto field names)");
  if (const int code = command.Start(args, 1, out, err); code >= 0) return code;
  auto stub = v1::Trainer::NewStub(command.channel);
  return PrintRunReport("report", stub.get(), command.target(), command.positional[0], json, out, err);
}

int RunRunsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  std::string state_text;
  int64_t limit = 100;
  TrainerCommand command("runs", "gcprune runs [--state STATE] [--limit N] [--json] [flags]",
                         "Lists the trainer's runs, newest first. Exit codes: 0 listed, 2 bad command line,\n"
                         "3 trainer unreachable, 4 other error.");
  command.flags.AddString("state", &state_text, "only runs in this state: queued, running, succeeded, failed, cancelled");
  command.flags.AddInt("limit", &limit, "at most this many runs; 0 = all");
  command.flags.AddBool("json", &json, "print a ListRunsResponse as JSON (proto field names)");
  if (const int code = command.Start(args, 0, out, err); code >= 0) return code;
  v1::ListRunsRequest request;
  if (!state_text.empty()) {
    absl::StatusOr<v1::RunState> state = ParseRunState(state_text);
    if (!state.ok()) {
      err << "gcprune runs: " << state.status().message() << "\n";
      return kExitUsage;
    }
    request.set_state(*state);
  }
  if (limit < 0) {
    err << "gcprune runs: --limit must be >= 0, got " << limit << "\n";
    return kExitUsage;
  }
  auto stub = v1::Trainer::NewStub(command.channel);
  v1::ListRunsResponse all;
  do {
    const int64_t wanted = limit == 0 ? 1000 : limit - all.runs_size();
    request.set_page_size(static_cast<int32_t>(std::min<int64_t>(wanted, 1000)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + command.timeout));
    v1::ListRunsResponse page;
    const absl::Status status = common::FromGrpcStatus(stub->ListRuns(&context, request, &page));
    if (!status.ok()) return ReportRpcFailure("runs", command.target(), "listing runs", status, err);
    for (v1::Run& run : *page.mutable_runs()) {
      if (limit > 0 && all.runs_size() >= limit) break;
      *all.add_runs() = std::move(run);
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && (limit == 0 || all.runs_size() < limit));

  if (json) {
    absl::StatusOr<std::string> text = ToJson(all);
    if (!text.ok()) {
      err << "gcprune runs: " << text.status().message() << "\n";
      return kExitRpcError;
    }
    out << *text;
    return kExitOk;
  }
  if (all.runs().empty()) {
    err << "gcprune runs: no runs on the trainer at " << command.trainer
        << (state_text.empty() ? "" : " in state " + state_text) << "\n";
    return kExitOk;
  }
  out << FormatRunsTable(all);
  return kExitOk;
}

int RunCancelCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string reason;
  bool wait = false;
  TrainerCommand command("cancel", "gcprune cancel RUN [--reason TEXT] [--wait] [flags]",
                         "Cancels run RUN; it stops at the next batch boundary and ends CANCELLED. Cancelling a\n"
                         "cancelled run changes nothing; a finished run cannot be cancelled. Exit codes: 0\n"
                         "cancelled, 2 bad command line, 3 trainer unreachable, 4 other error (unknown run,\n"
                         "run already finished).");
  command.flags.AddString("reason", &reason, "reason kept in the run's message");
  command.flags.AddBool("wait", &wait, "wait until the run has stopped");
  if (const int code = command.Start(args, 1, out, err); code >= 0) return code;
  const std::string& run_id = command.positional[0];
  if (reason.empty()) reason = "cancelled from gcprune cancel";
  auto stub = v1::Trainer::NewStub(command.channel);
  v1::Run run;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + command.timeout));
    v1::CancelRunRequest request;
    request.set_run_id(run_id);
    request.set_reason(reason);
    const absl::Status status = common::FromGrpcStatus(stub->CancelRun(&context, request, &run));
    if (!status.ok()) {
      return ReportRpcFailure("cancel", command.target(), absl::StrCat("cancelling run '", run_id, "'"), status, err);
    }
  }
  if (wait && run.state() != v1::RUN_STATE_CANCELLED) {
    RunFollower follower(command.channel, RunFollower::Options());
    InterruptScope interrupt([&follower] { follower.Interrupt(); });
    absl::StatusOr<v1::RunFinished> finished = follower.Follow(run_id, 0, [](const v1::RunEvent&) {});
    if (!finished.ok()) {
      if (interrupt.interrupted()) return kExitInterrupted;
      return ReportRpcFailure("cancel", command.target(), absl::StrCat("waiting for run '", run_id, "' to stop"),
                              finished.status(), err);
    }
    absl::StatusOr<v1::Run> stopped = GetRunWithTimeout(stub.get(), run_id, command.timeout);
    if (stopped.ok()) run = *std::move(stopped);
  }
  out << FormatRunLine(run) << "\n";
  return kExitOk;
}

}  // namespace gcprune::cli
