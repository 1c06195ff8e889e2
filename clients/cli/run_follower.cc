// Implementation of the reconnecting run follower.
#include "clients/cli/run_follower.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"

namespace gcprune::cli {

RunFollower::RunFollower(std::shared_ptr<grpc::Channel> channel, Options options)
    : channel_(std::move(channel)), options_(options) {}

void RunFollower::Interrupt() {
  absl::MutexLock lock(&mutex_);
  interrupted_ = true;
  if (active_ != nullptr) active_->TryCancel();
}

int RunFollower::reconnects() const {
  absl::MutexLock lock(&mutex_);
  return reconnects_;
}

bool RunFollower::Attach(grpc::ClientContext* context) {
  absl::MutexLock lock(&mutex_);
  if (interrupted_) return false;
  active_ = context;
  return true;
}

void RunFollower::Detach() {
  absl::MutexLock lock(&mutex_);
  active_ = nullptr;
}

bool RunFollower::SleepUnlessInterrupted(absl::Duration duration) {
  absl::MutexLock lock(&mutex_);
  mutex_.AwaitWithTimeout(absl::Condition(&interrupted_), duration);
  return !interrupted_;
}

absl::Status RunFollower::Probe(v1::Trainer::Stub* stub, const std::string& run_id) {
  grpc::ClientContext context;
  context.set_wait_for_ready(true);
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.reconnect_timeout));
  if (!Attach(&context)) return absl::CancelledError("interrupted");
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  const grpc::Status status = stub->GetRun(&context, request, &run);
  Detach();
  return common::FromGrpcStatus(status);
}

absl::StatusOr<v1::RunFinished> RunFollower::Follow(const std::string& run_id, int64_t after_sequence,
                                                    const std::function<void(const v1::RunEvent&)>& on_event) {
  std::unique_ptr<v1::Trainer::Stub> stub = v1::Trainer::NewStub(channel_);
  int64_t last_sequence = after_sequence;
  int failures = 0;
  absl::Duration backoff = options_.first_backoff;
  while (true) {
    grpc::ClientContext context;
    if (!Attach(&context)) return absl::CancelledError("interrupted");
    v1::WatchRunRequest request;
    request.set_run_id(run_id);
    request.set_after_sequence(last_sequence);
    std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader = stub->WatchRun(&context, request);
    v1::RunEvent event;
    std::optional<v1::RunFinished> finished;
    bool progressed = false;
    while (reader->Read(&event)) {
      // A resumed stream may repeat what the broken one delivered.
      if (event.sequence() <= last_sequence) continue;
      last_sequence = event.sequence();
      progressed = true;
      on_event(event);
      if (event.has_finished()) finished = event.finished();
    }
    absl::Status status = common::FromGrpcStatus(reader->Finish());
    Detach();
    if (finished.has_value()) return *std::move(finished);
    {
      absl::MutexLock lock(&mutex_);
      if (interrupted_) return absl::CancelledError("interrupted");
    }
    if (status.ok()) {
      status = absl::UnavailableError(
          absl::StrCat("the trainer ended the event stream of run '", run_id, "' before the run finished"));
    }
    if (status.code() != absl::StatusCode::kUnavailable) return status;
    if (progressed) {
      failures = 0;
      backoff = options_.first_backoff;
    }
    // Wait, then check that the trainer answers and still knows the run before re-opening the stream.
    while (true) {
      if (++failures > options_.max_reconnects) return status;
      if (!SleepUnlessInterrupted(backoff)) return absl::CancelledError("interrupted");
      backoff = std::min(backoff * 2, options_.max_backoff);
      const absl::Status probe = Probe(stub.get(), run_id);
      if (probe.ok()) break;
      if (probe.code() != absl::StatusCode::kUnavailable && probe.code() != absl::StatusCode::kDeadlineExceeded) {
        return probe;
      }
      status = probe;
    }
    absl::MutexLock lock(&mutex_);
    ++reconnects_;
  }
}

}  // namespace gcprune::cli
