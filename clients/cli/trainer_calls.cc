// Implementation of the trainer subcommands' shared calls.
#include "clients/cli/trainer_calls.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/cli/command.h"
#include "clients/cli/report_format.h"
#include "common/grpc_status.h"

namespace gcprune::cli {

absl::StatusOr<v1::Run> GetRunWithTimeout(v1::Trainer::Stub* stub, const std::string& run_id,
                                          absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  const absl::Status status = common::FromGrpcStatus(stub->GetRun(&context, request, &run));
  if (!status.ok()) return status;
  return run;
}

absl::StatusOr<v1::RunReport> GetRunReportWithTimeout(v1::Trainer::Stub* stub, const std::string& run_id,
                                                      absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::GetRunReportRequest request;
  request.set_run_id(run_id);
  v1::RunReport report;
  const absl::Status status = common::FromGrpcStatus(stub->GetRunReport(&context, request, &report));
  if (!status.ok()) return status;
  return report;
}

absl::StatusOr<std::vector<v1::Run>> ListRunsWithTimeout(v1::Trainer::Stub* stub, v1::RunState state, int64_t limit,
                                                         absl::Duration timeout) {
  constexpr int64_t kMaxPage = 1000;  // the server's largest page
  std::vector<v1::Run> runs;
  v1::ListRunsRequest request;
  request.set_state(state);
  do {
    const int64_t wanted = limit == 0 ? kMaxPage : limit - static_cast<int64_t>(runs.size());
    request.set_page_size(static_cast<int32_t>(std::min(wanted, kMaxPage)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::ListRunsResponse page;
    const absl::Status status = common::FromGrpcStatus(stub->ListRuns(&context, request, &page));
    if (!status.ok()) return status;
    for (v1::Run& run : *page.mutable_runs()) {
      if (limit > 0 && static_cast<int64_t>(runs.size()) >= limit) break;
      runs.push_back(std::move(run));
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && (limit == 0 || static_cast<int64_t>(runs.size()) < limit));
  return runs;
}

int PrintRunReport(absl::string_view command, v1::Trainer::Stub* stub, const ServerTarget& target,
                   const std::string& run_id, bool json, std::ostream& out, std::ostream& err) {
  absl::StatusOr<v1::RunReport> fetched = GetRunReportWithTimeout(stub, run_id, target.timeout);
  if (!fetched.ok()) {
    return ReportRpcFailure(command, target, absl::StrCat("the report of run '", run_id, "'"), fetched.status(),
                            err);
  }
  const v1::RunReport& report = *fetched;
  if (json) {
    absl::StatusOr<std::string> text = ToJson(report);
    if (!text.ok()) {
      err << "gcprune " << command << ": " << text.status().message() << "\n";
      return kExitRpcError;
    }
    out << *text;
    return kExitOk;
  }
  // The run only adds the header's model and method; the report stands without it.
  absl::StatusOr<v1::Run> run = GetRunWithTimeout(stub, run_id, target.timeout);
  out << FormatRunReport(report, run.ok() ? &*run : nullptr);
  return kExitOk;
}

struct InterruptScope::State {
  std::function<void()> on_interrupt;
  std::atomic<bool> interrupted{false};
};

InterruptScope::InterruptScope(std::function<void()> on_interrupt) : state_(std::make_shared<State>()) {
  state_->on_interrupt = std::move(on_interrupt);
  std::shared_ptr<State> state = state_;
  absl::StatusOr<std::unique_ptr<common::ShutdownSignalWatcher>> watcher =
      common::ShutdownSignalWatcher::Install([state](int signo) {
        // signo 0 would be a RequestShutdown(), which this scope never makes.
        if (signo == 0) return;
        state->interrupted = true;
        state->on_interrupt();
      });
  if (watcher.ok()) watcher_ = *std::move(watcher);
}

// The watcher's destructor restores the previous handlers and joins its thread.
InterruptScope::~InterruptScope() = default;

bool InterruptScope::interrupted() const { return state_->interrupted; }

}  // namespace gcprune::cli
