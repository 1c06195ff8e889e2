// Trainer RPC handlers and the WatchRun reactor (see trainer_service.h).
#include "trainer_service/service/trainer_service.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

// Ends a WatchRun call at once with an error.
class FailedWatch final : public grpc::ServerWriteReactor<v1::RunEvent> {
 public:
  explicit FailedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Response>
grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, absl::StatusOr<Response> result,
                                Response* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(common::ToGrpcStatus(result.status()));
  return reactor;
}

}  // namespace

// Writes the events of one run, one at a time. The log notifies it on every append; it pulls the next
// event after the last one written, so it never holds more than one event and never blocks the run.
class TrainerService::WatchReactor final : public grpc::ServerWriteReactor<v1::RunEvent> {
 public:
  WatchReactor(TrainerService* service, std::shared_ptr<EventLog> log, int64_t after)
      : service_(service), log_(std::move(log)), last_sequence_(after) {}

  // Called once after construction, when the reactor is registered.
  void Begin() {
    subscription_ = log_->Subscribe([this] { Pump(); });
    Pump();
  }

  // Ends the stream with `status` after the write in flight (if any). Thread-safe; the first call wins.
  void FinishWith(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || pending_finish_.has_value()) return;
      pending_finish_ = status;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok && !pending_finish_.has_value()) pending_finish_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
    }
    Pump();
  }

  void OnCancel() override { FinishWith(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled")); }

  void OnDone() override {
    log_->Unsubscribe(subscription_);
    service_->Unregister(this);
    delete this;
  }

 private:
  void Pump() {
    std::optional<grpc::Status> finish;
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (pending_finish_.has_value()) {
        finish = *pending_finish_;
      } else {
        // Read `closed` first: if the log was closed before Next found nothing, every event was sent.
        const bool closed = log_->closed();
        std::optional<v1::RunEvent> next = log_->Next(last_sequence_);
        if (next.has_value()) {
          current_ = *std::move(next);
          last_sequence_ = current_.sequence();
          writing_ = true;
          write = true;
        } else if (closed) {
          finish = grpc::Status::OK;
        }
      }
      if (finish.has_value()) finished_ = true;
    }
    if (write) StartWrite(&current_);
    if (finish.has_value()) Finish(*finish);
  }

  TrainerService* const service_;
  const std::shared_ptr<EventLog> log_;
  int64_t subscription_ = 0;
  absl::Mutex mu_;
  int64_t last_sequence_ ABSL_GUARDED_BY(mu_);
  v1::RunEvent current_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_finish_ ABSL_GUARDED_BY(mu_);
};

void TrainerService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  // Reactors unregister in OnDone under mu_, so none is deleted while this loop runs.
  for (WatchReactor* watch : watches_) {
    watch->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the trainer is shutting down"));
  }
}

void TrainerService::Register(WatchReactor* reactor) {
  // Held throughout: once the reactor may have finished, only mu_ (taken by its OnDone's Unregister) keeps
  // it from being deleted under us.
  absl::MutexLock lock(&mu_);
  watches_.insert(reactor);
  reactor->Begin();
  if (shutdown_) reactor->FinishWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the trainer is shutting down"));
}

void TrainerService::Unregister(WatchReactor* reactor) {
  absl::MutexLock lock(&mu_);
  watches_.erase(reactor);
}

int TrainerService::active_watches() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(watches_.size());
}

grpc::ServerUnaryReactor* TrainerService::CreateRun(grpc::CallbackServerContext* context,
                                                    const v1::CreateRunRequest* request, v1::Run* response) {
  return Reply(context, manager_->CreateRun(*request), response);
}

grpc::ServerWriteReactor<v1::RunEvent>* TrainerService::WatchRun(grpc::CallbackServerContext*,
                                                                 const v1::WatchRunRequest* request) {
  if (request->after_sequence() < 0) {
    return new FailedWatch(common::ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("after_sequence: must be >= 0, got ", request->after_sequence()))));
  }
  absl::StatusOr<std::shared_ptr<EventLog>> log = manager_->GetEventLog(request->run_id());
  if (!log.ok()) return new FailedWatch(common::ToGrpcStatus(log.status()));
  auto* reactor = new WatchReactor(this, *std::move(log), request->after_sequence());
  Register(reactor);
  return reactor;
}

grpc::ServerUnaryReactor* TrainerService::GetRun(grpc::CallbackServerContext* context, const v1::GetRunRequest* request,
                                                 v1::Run* response) {
  return Reply(context, manager_->GetRun(request->run_id()), response);
}

grpc::ServerUnaryReactor* TrainerService::ListRuns(grpc::CallbackServerContext* context,
                                                   const v1::ListRunsRequest* request,
                                                   v1::ListRunsResponse* response) {
  return Reply(context, manager_->ListRuns(*request), response);
}

grpc::ServerUnaryReactor* TrainerService::CancelRun(grpc::CallbackServerContext* context,
                                                    const v1::CancelRunRequest* request, v1::Run* response) {
  return Reply(context, manager_->CancelRun(*request), response);
}

grpc::ServerUnaryReactor* TrainerService::GetRunReport(grpc::CallbackServerContext* context,
                                                       const v1::GetRunReportRequest* request,
                                                       v1::RunReport* response) {
  return Reply(context, manager_->GetRunReport(request->run_id()), response);
}

}  // namespace gcprune::trainer
