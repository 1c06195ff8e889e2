// Implementation of `gcprune report`, `gcprune runs` and `gcprune cancel`.
#include "clients/cli/run_admin_commands.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <cstdint>
#include <limits>
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
#include "clients/cli/sweep_report.h"
#include "clients/cli/trainer_calls.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
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

  // Parses, checks that there are `num_positional` arguments and dials. Returns -1 to go on, else the exit
  // code to end with (help printed, usage error).
  int Start(const std::vector<std::string>& args, size_t num_positional, std::ostream& out, std::ostream& err) {
    if (const int code = Parse(args, out, err); code >= 0) return code;
    if (const int code = ExpectPositional(num_positional, err); code >= 0) return code;
    return Dial(err);
  }

  // The steps of Start, for commands whose number of arguments depends on their flags.
  int Parse(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
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
    return -1;
  }

  int ExpectPositional(size_t num_positional, std::ostream& err) {
    if (positional.size() != num_positional) {
      err << "gcprune " << name << ": expected " << (num_positional == 0 ? "no arguments" : "exactly one run id")
          << ", got " << positional.size() << " (see gcprune " << name << " --help)\n";
      return kExitUsage;
    }
    return -1;
  }

  int Dial(std::ostream& err) {
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

// `gcprune report --sweep [RUN ...]`: fetches the runs (the given ones, else every SUCCEEDED run) and their
// reports, then prints the analysis of BuildSweepReport.
int PrintSweepReport(v1::Trainer::Stub* stub, const ServerTarget& target, const std::vector<std::string>& run_ids,
                     const SweepOptions& options, bool json, std::ostream& out, std::ostream& err) {
  std::vector<SweepRun> runs;
  if (run_ids.empty()) {
    absl::StatusOr<std::vector<v1::Run>> listed =
        ListRunsWithTimeout(stub, v1::RUN_STATE_SUCCEEDED, /*limit=*/0, target.timeout);
    if (!listed.ok()) return ReportRpcFailure("report", target, "listing runs", listed.status(), err);
    int included = 0;
    for (v1::Run& run : *listed) {
      included += SweepIncludes(run, options) ? 1 : 0;
      runs.push_back({std::move(run), v1::RunReport()});
    }
    if (included == 0) {
      err << "gcprune report: no SUCCEEDED runs"
          << (options.label_prefix.empty() ? "" : " with a label starting with '" + options.label_prefix + "'")
          << " on the trainer at " << target.address << "; nothing to analyse\n";
      return kExitRpcError;
    }
  } else {
    int included = 0;
    std::vector<std::string> seen;
    for (const std::string& run_id : run_ids) {
      if (std::find(seen.begin(), seen.end(), run_id) != seen.end()) continue;
      seen.push_back(run_id);
      absl::StatusOr<v1::Run> run = GetRunWithTimeout(stub, run_id, target.timeout);
      if (!run.ok()) {
        return ReportRpcFailure("report", target, absl::StrCat("looking up run '", run_id, "'"), run.status(), err);
      }
      included += SweepIncludes(*run, options) ? 1 : 0;
      runs.push_back({*std::move(run), v1::RunReport()});
    }
    if (included == 0) {
      err << "gcprune report: no run among the " << seen.size() << " given has a label starting with '"
          << options.label_prefix << "'; nothing to analyse\n";
      return kExitRpcError;
    }
  }
  for (SweepRun& run : runs) {
    // Runs the filters leave out only count in a note; their reports are not needed.
    if (!SweepIncludes(run.run, options)) continue;
    const std::string& run_id = run.run.run_id();
    absl::StatusOr<v1::RunReport> report = GetRunReportWithTimeout(stub, run_id, target.timeout);
    if (!report.ok()) {
      return ReportRpcFailure("report", target, absl::StrCat("the report of run '", run_id, "'"), report.status(),
                              err);
    }
    run.report = *std::move(report);
  }
  absl::StatusOr<SweepReport> report = BuildSweepReport(runs, options);
  if (!report.ok()) {
    err << "gcprune report: " << report.status().message() << "\n";
    return kExitRpcError;
  }
  out << (json ? FormatSweepJson(*report) : FormatSweepText(*report));
  return kExitOk;
}

}  // namespace

int RunReportCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool json = false;
  bool sweep = false;
  std::string rule_text = "both";
  SweepOptions sweep_options;
  double reference = std::numeric_limits<double>::quiet_NaN();
  TrainerCommand command(
      "report",
      "gcprune report RUN [--json] [flags]\n"
      "       gcprune report --sweep [RUN ...] [--rule drop|steepest|both] [--max_drop X] [--reference X]\n"
      "                      [--label_prefix S] [--json] [flags]",
      "Prints the report of run RUN: per prune iteration the target and achieved sparsity and\n"
      "the test accuracy right after pruning, the fine-tuning result, the final sparsity per\n"
      "tensor and the time per phase.\n\n"
      "With --sweep, the phase shift of a sparsity sweep: the runs RUN ... (default: every SUCCEEDED\n"
      "run on the trainer) grouped by method, per method a table of (achieved sparsity, test accuracy\n"
      "right after the last prune iteration, fine-tuned accuracy), the sparsity where accuracy collapses\n"
      "and the recommended sparsity, the last one before it. Rules: drop = the first run more than\n"
      "--max_drop below the reference (dense) accuracy; steepest = the right end of the segment with\n"
      "the largest accuracy drop per unit of sparsity among segments dropping more than --max_drop.\n"
      "The reference is --reference, else the accuracy of the newest run with method none, else per\n"
      "method the pre-training accuracy of its runs.\n\n"
      "Exit codes: 0 printed, 2 bad command line, 3 trainer unreachable, 4 other error (e.g. unknown\n"
      "run, no runs to analyse).");
  command.flags.AddBool("json", &json, "print the RunReport as JSON (proto field names); with --sweep, the analysis");
  command.flags.AddBool("sweep", &sweep, "analyse a sweep of runs for its phase shift");
  command.flags.AddString("rule", &rule_text, "--sweep: the phase-shift rule, drop, steepest or both");
  command.flags.AddDouble("max_drop", &sweep_options.max_drop,
                          "--sweep: accuracy drop in [0, 1] that counts as a collapse (0.05 = 5 points)");
  command.flags.AddDouble("reference", &reference, "--sweep: the dense model's test accuracy, in [0, 1]");
  command.flags.SetDefaultText("reference", "a method-none run's, else pre-training");
  command.flags.AddString("label_prefix", &sweep_options.label_prefix,
                          "--sweep: only runs whose label starts with this");
  if (const int code = command.Parse(args, out, err); code >= 0) return code;
  if (!sweep) {
    for (const char* flag : {"rule", "max_drop", "reference", "label_prefix"}) {
      if (command.flags.IsSet(flag)) {
        err << "gcprune report: --" << flag << " applies only with --sweep (see gcprune report --help)\n";
        return kExitUsage;
      }
    }
    if (const int code = command.ExpectPositional(1, err); code >= 0) return code;
    if (const int code = command.Dial(err); code >= 0) return code;
    auto stub = v1::Trainer::NewStub(command.channel);
    return PrintRunReport("report", stub.get(), command.target(), command.positional[0], json, out, err);
  }

  absl::StatusOr<std::vector<pruner::PhaseShiftRule>> rules = ParseSweepRules(rule_text);
  if (!rules.ok()) {
    err << "gcprune report: " << rules.status().message() << "\n";
    return kExitUsage;
  }
  sweep_options.rules = *std::move(rules);
  if (!(sweep_options.max_drop >= 0.0 && sweep_options.max_drop <= 1.0)) {
    err << "gcprune report: --max_drop must be in [0, 1] (a fraction: 0.05 = 5 accuracy points), got "
        << sweep_options.max_drop << "\n";
    return kExitUsage;
  }
  if (command.flags.IsSet("reference")) {
    if (!(reference >= 0.0 && reference <= 1.0)) {
      err << "gcprune report: --reference must be in [0, 1] (a fraction: 0.81 = 81%), got " << reference << "\n";
      return kExitUsage;
    }
    sweep_options.reference_accuracy = reference;
  }
  if (const int code = command.Dial(err); code >= 0) return code;
  auto stub = v1::Trainer::NewStub(command.channel);
  return PrintSweepReport(stub.get(), command.target(), command.positional, sweep_options, json, out, err);
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
  v1::RunState state_filter = v1::RUN_STATE_UNSPECIFIED;
  if (!state_text.empty()) {
    absl::StatusOr<v1::RunState> state = ParseRunState(state_text);
    if (!state.ok()) {
      err << "gcprune runs: " << state.status().message() << "\n";
      return kExitUsage;
    }
    state_filter = *state;
  }
  if (limit < 0) {
    err << "gcprune runs: --limit must be >= 0, got " << limit << "\n";
    return kExitUsage;
  }
  auto stub = v1::Trainer::NewStub(command.channel);
  absl::StatusOr<std::vector<v1::Run>> listed = ListRunsWithTimeout(stub.get(), state_filter, limit, command.timeout);
  if (!listed.ok()) return ReportRpcFailure("runs", command.target(), "listing runs", listed.status(), err);
  v1::ListRunsResponse all;
  for (v1::Run& run : *listed) *all.add_runs() = std::move(run);

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
