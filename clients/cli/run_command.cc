// Implementation of `gcprune run` and `gcprune watch`.
#include "clients/cli/run_command.h"

#include <grpcpp/client_context.h>

#include <cstdint>
#include <memory>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cli/command.h"
#include "clients/cli/connection_flags.h"
#include "clients/cli/flag_set.h"
#include "clients/cli/progress_printer.h"
#include "clients/cli/report_format.h"
#include "clients/cli/rpc_error.h"
#include "clients/cli/run_follower.h"
#include "clients/cli/run_spec_flags.h"
#include "clients/cli/terminal.h"
#include "clients/cli/trainer_calls.h"
#include "common/grpc_status.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"

namespace gcprune::cli {
namespace {

constexpr char kRunDescription[] =
    "Starts a training run with pruning on the trainer (--trainer), follows its progress on stderr (a live\n"
    "line on a terminal, plain lines otherwise) and prints the report on stdout. The pruner address is the\n"
    "one the trainer dials. Defaults: LeNet-5 on Fashion-MNIST, causal-v2 to 90% sparsity in 5 iterations;\n"
    "pre-train 2 epochs, 1 epoch between iterations, fine-tune 3 epochs, SGD lr 0.01 momentum 0.9, batch 256.\n"
    "Ctrl-C cancels the run (--keep_on_interrupt leaves it running). Exit codes: 0 succeeded, 1 failed or\n"
    "cancelled, 2 bad command line or spec, 3 trainer unreachable, 4 other error, 130 interrupted.";

constexpr char kWatchDescription[] =
    "Follows the events of run RUN on the trainer until it ends (the retained history first). Ctrl-C stops\n"
    "watching; the run goes on. Exit codes: 0 succeeded, 1 failed or cancelled, 2 bad command line, 3 trainer\n"
    "unreachable, 4 other error (e.g. unknown run), 130 interrupted.";

std::string NewRequestId() {
  absl::BitGen gen;
  return absl::StrFormat("cli-%016x", absl::Uniform<uint64_t>(gen));
}

// The end of following a run: its RunFinished event, or why following stopped (already written to err).
struct FollowOutcome {
  bool finished = false;
  v1::RunFinished event;
  int exit_code = kExitOk;  // by the run's final state if finished, else the error's or kExitInterrupted
};

// Follows `run` from `after_sequence` to its end with progress on `err`. With `cancel_on_interrupt`,
// Ctrl-C also cancels the run on the trainer.

FollowOutcome FollowRun(absl::string_view command, const std::shared_ptr<grpc::Channel>& channel,
                        const ServerTarget& target, const v1::Run& run, int64_t after_sequence, ProgressMode mode,
                        bool cancel_on_interrupt, std::ostream& err) {
  ProgressPrinter printer(&err, mode, TerminalWidth());
  printer.SetRun(run);
  RunFollower follower(channel, RunFollower::Options());
  InterruptScope interrupt([&follower] { follower.Interrupt(); });
  absl::StatusOr<v1::RunFinished> finished =
      follower.Follow(run.run_id(), after_sequence, [&printer](const v1::RunEvent& event) { printer.OnEvent(event); });
  printer.Close();
  FollowOutcome outcome;
  if (finished.ok()) {
    outcome.finished = true;
    outcome.event = *std::move(finished);
    outcome.exit_code = outcome.event.state() == v1::RUN_STATE_SUCCEEDED ? kExitOk : kExitNegative;
    return outcome;
  }
  if (finished.status().code() == absl::StatusCode::kCancelled && interrupt.interrupted()) {
    outcome.exit_code = kExitInterrupted;
    if (!cancel_on_interrupt) {
      err << "gcprune " << command << ": interrupted; run " << run.run_id() << " goes on on the trainer at "
          << target.address << ". Follow it with `gcprune watch " << run.run_id() << "`, stop it with `gcprune cancel "
          << run.run_id() << "`.\n";
      return outcome;
    }
    auto stub = v1::Trainer::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + target.timeout));
    v1::CancelRunRequest request;
    request.set_run_id(run.run_id());
    request.set_reason(absl::StrCat("interrupted from gcprune ", command));
    v1::Run cancelled;
    const absl::Status status = common::FromGrpcStatus(stub->CancelRun(&context, request, &cancelled));
    if (status.ok()) {
      err << "gcprune " << command << ": interrupted; cancelled run " << run.run_id() << "\n";
    } else {
      ReportRpcFailure(command, target, absl::StrCat("cancelling run '", run.run_id(), "' after Ctrl-C"), status, err);
    }
    return outcome;
  }
  outcome.exit_code =
      ReportRpcFailure(command, target, absl::StrCat("following run '", run.run_id(), "'"), finished.status(), err);
  if (finished.status().code() == absl::StatusCode::kUnavailable) {
    err << "  the run may still be going on; `gcprune watch " << run.run_id() << "` follows it again.\n";
  }
  return outcome;
}

// Prints the report after a followed run and combines the exit codes: a failed report call wins over a
// successful run, a failed run wins over a printed report.
int FinishWithReport(absl::string_view command, const std::shared_ptr<grpc::Channel>& channel,
                     const ServerTarget& target, const std::string& run_id, bool json, int run_exit_code,
                     std::ostream& out, std::ostream& err) {
  auto stub = v1::Trainer::NewStub(channel);
  const int report_exit_code = PrintRunReport(command, stub.get(), target, run_id, json, out, err);
  return report_exit_code != kExitOk ? report_exit_code : run_exit_code;
}

}  // namespace

int RunRunCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string trainer = AddressFromEnv(kTrainerAddressEnvVar, kDefaultTrainerAddress);
  std::string progress = "auto";
  std::string request_id;
  absl::Duration timeout = absl::Seconds(30);
  bool json = false;
  bool detach = false;
  bool dry_run = false;
  bool keep_on_interrupt = false;
  ConnectionFlags connection;
  RunSpecFlags spec_flags;
  FlagSet flags("gcprune run [flags]", kRunDescription);
  flags.AddString("trainer", &trainer, absl::StrCat("trainer address ($", kTrainerAddressEnvVar, ")"));
  flags.AddString("progress", &progress, "auto, live, plain or none (progress goes to stderr)");
  flags.AddBool("json", &json, "print the report as JSON (proto field names) instead of tables");
  flags.AddBool("detach", &detach, "print the run id once the run is created and exit");
  flags.AddBool("dry_run", &dry_run, "print the RunSpec as JSON and exit without contacting the trainer");
  flags.AddBool("keep_on_interrupt", &keep_on_interrupt, "on Ctrl-C stop following but leave the run running");
  flags.AddString("request_id", &request_id, "idempotency key of CreateRun; default a random one");
  flags.AddDuration("timeout", &timeout, "deadline of each unary call to the trainer");
  spec_flags.Register(&flags);
  connection.Register(&flags);

  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) {
    err << "gcprune run: " << positional.status().message() << " (see gcprune run --help)\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << flags.Help();
    return kExitOk;
  }
  if (!positional->empty()) {
    err << "gcprune run: unexpected argument '" << positional->front() << "' (all settings are flags; see gcprune run --help)\n";
    return kExitUsage;
  }
  if (timeout <= absl::ZeroDuration()) {
    err << "gcprune run: --timeout must be positive, got " << absl::FormatDuration(timeout) << "\n";
    return kExitUsage;
  }
  absl::StatusOr<v1::RunSpec> spec = spec_flags.Build();
  if (!spec.ok()) {
    err << "gcprune run: " << spec.status().message() << "\n";
    return kExitUsage;
  }
  if (dry_run) {
    absl::StatusOr<std::string> text = ToJson(*spec);
    if (!text.ok()) {
      err << "gcprune run: " << text.status().message() << "\n";
      return kExitRpcError;
    }
    out << *text;
    return kExitOk;
  }
  absl::StatusOr<ProgressMode> mode = ParseProgressMode(progress, SupportsLiveLine(err));
  if (!mode.ok()) {
    err << "gcprune run: " << mode.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = connection.Dial(trainer);
  if (!channel.ok()) {
    err << "gcprune run: " << channel.status().message() << "\n";
    return kExitUsage;
  }
  const ServerTarget target = TrainerTarget(trainer, timeout);

  auto stub = v1::Trainer::NewStub(*channel);
  v1::CreateRunRequest request;
  *request.mutable_spec() = *spec;
  request.set_request_id(request_id.empty() ? NewRequestId() : request_id);
  v1::Run run;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    const absl::Status status = common::FromGrpcStatus(stub->CreateRun(&context, request, &run));
    if (status.code() == absl::StatusCode::kInvalidArgument) {
      err << "gcprune run: the trainer at " << trainer << " rejected the run: " << status.message() << "\n";
      if (absl::StrContains(status.message(), "pruner.address") && spec->pruner().address().empty()) {
        err << "  hint: name the pruner as the trainer reaches it with --pruner HOST:PORT (or $"
            << kPrunerAddressEnvVar << "), or start gcprune-trainer with --default_pruner_address.\n";
      }
      return kExitUsage;
    }
    if (!status.ok()) return ReportRpcFailure("run", target, "creating the run", status, err);
  }
  if (detach) {
    out << run.run_id() << "\n";
    return kExitOk;
  }
  if (*mode != ProgressMode::kNone) {
    err << "run " << run.run_id() << " created on " << trainer << " (" << RunStateName(run.state()) << ")\n";
  }
  const FollowOutcome followed =
      FollowRun("run", *channel, target, run, /*after_sequence=*/0, *mode, !keep_on_interrupt, err);
  if (!followed.finished) return followed.exit_code;
  return FinishWithReport("run", *channel, target, run.run_id(), json, followed.exit_code, out, err);
}

int RunWatchCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string trainer = AddressFromEnv(kTrainerAddressEnvVar, kDefaultTrainerAddress);
  std::string progress = "auto";
  int64_t after = 0;
  absl::Duration timeout = absl::Seconds(30);
  bool report = false;
  bool json = false;
  ConnectionFlags connection;
  FlagSet flags("gcprune watch RUN [flags]", kWatchDescription);
  flags.AddString("trainer", &trainer, absl::StrCat("trainer address ($", kTrainerAddressEnvVar, ")"));
  flags.AddString("progress", &progress, "auto, live, plain or none (progress goes to stderr)");
  flags.AddInt("after", &after, "show only events after this sequence number");
  flags.AddBool("report", &report, "print the report on stdout when the run ends");
  flags.AddBool("json", &json, "with --report: the report as JSON");
  flags.AddDuration("timeout", &timeout, "deadline of each unary call to the trainer");
  connection.Register(&flags);

  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) {
    err << "gcprune watch: " << positional.status().message() << " (see gcprune watch --help)\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << flags.Help();
    return kExitOk;
  }
  if (positional->size() != 1 || positional->front().empty()) {
    err << "gcprune watch: expected exactly one run id, got " << positional->size()
        << " arguments (see gcprune watch --help)\n";
    return kExitUsage;
  }
  if (after < 0 || timeout <= absl::ZeroDuration()) {
    err << "gcprune watch: --after must be >= 0 and --timeout positive\n";
    return kExitUsage;
  }
  absl::StatusOr<ProgressMode> mode = ParseProgressMode(progress, SupportsLiveLine(err));
  if (!mode.ok()) {
    err << "gcprune watch: " << mode.status().message() << "\n";
    return kExitUsage;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = connection.Dial(trainer);
  if (!channel.ok()) {
    err << "gcprune watch: " << channel.status().message() << "\n";
    return kExitUsage;
  }
  const std::string& run_id = positional->front();
  const ServerTarget target = TrainerTarget(trainer, timeout);
  auto stub = v1::Trainer::NewStub(*channel);
  absl::StatusOr<v1::Run> run = GetRunWithTimeout(stub.get(), run_id, timeout);
  if (!run.ok()) return ReportRpcFailure("watch", target, absl::StrCat("looking up run '", run_id, "'"), run.status(), err);

  const FollowOutcome followed = FollowRun("watch", *channel, target, *run, after, *mode, false, err);
  if (!followed.finished || !report) return followed.exit_code;
  return FinishWithReport("watch", *channel, target, run_id, json, followed.exit_code, out, err);
}

}  // namespace gcprune::cli
