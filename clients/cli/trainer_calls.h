// Pieces the trainer subcommands share: unary calls with a deadline, printing a run's report (text or
// JSON), and turning Ctrl-C into a callback while a command waits on the network.
#ifndef GCPRUNE_CLIENTS_CLI_TRAINER_CALLS_H_
#define GCPRUNE_CLIENTS_CLI_TRAINER_CALLS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clients/cli/rpc_error.h"
#include "common/shutdown_signal.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"

namespace gcprune::cli {

// Trainer.GetRun with a deadline of `timeout`; the trainer's status on failure.
absl::StatusOr<v1::Run> GetRunWithTimeout(v1::Trainer::Stub* stub, const std::string& run_id,
                                          absl::Duration timeout);

// Trainer.GetRunReport with a deadline of `timeout`; the trainer's status on failure.
absl::StatusOr<v1::RunReport> GetRunReportWithTimeout(v1::Trainer::Stub* stub, const std::string& run_id,
                                                      absl::Duration timeout);

// Trainer.ListRuns page after page (each call with a deadline of `timeout`), newest first: the runs in
// `state` (UNSPECIFIED = any), at most `limit` of them (0 = all).
absl::StatusOr<std::vector<v1::Run>> ListRunsWithTimeout(v1::Trainer::Stub* stub, v1::RunState state, int64_t limit,
                                                         absl::Duration timeout);

// Fetches the run's report (and the run, for the header) and prints it to `out`: as text, or as the
// RunReport's JSON if `json`. Returns kExitOk, or the exit code of ReportRpcFailure after writing the
// failure to `err`.
int PrintRunReport(absl::string_view command, v1::Trainer::Stub* stub, const ServerTarget& target,
                   const std::string& run_id, bool json, std::ostream& out, std::ostream& err);

// Calls `on_interrupt` (on a helper thread) at the first SIGINT or SIGTERM while the scope lives; a second
// signal ends the process with 128 + signo. If the process already has a signal watcher (another scope, or
// a server in the same process), the scope does nothing and the signals keep their previous handling.
class InterruptScope {
 public:
  explicit InterruptScope(std::function<void()> on_interrupt);
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  ~InterruptScope();

  // True once a signal arrived.
  bool interrupted() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::unique_ptr<common::ShutdownSignalWatcher> watcher_;
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_TRAINER_CALLS_H_
