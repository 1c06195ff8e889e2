// The Pruner service's calls and the Session stream reactor (see pruner_service.h).
#include "pruner_service/service/pruner_service.h"

#include <deque>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;

// One Session stream. Reads one request at a time on gRPC's callback threads and hands it to the
// session; responses come from the session (on the reading thread or a fit thread) through Send and
// are written one at a time from a queue in which consecutive acks are merged (acks are cumulative).
// The stream finishes once End was called and the queue is written, or at once when the client is gone.
class SessionStream final : public grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>,
                            public SessionSink {
 public:
  explicit SessionStream(SessionManager* manager) : manager_(manager) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed (or is gone)
      if (session_ != nullptr) {
        session_->HalfClose(attachment_);
      } else {
        End(absl::OkStatus());
      }
      return;
    }
    if (session_ == nullptr) {
      absl::Status opened = Open();
      if (!opened.ok()) {
        End(opened);
        return;
      }
    } else {
      absl::StatusOr<StreamAction> action = session_->Handle(attachment_, request_);
      if (!action.ok() || *action == StreamAction::kClose) {
        // Detach before the client can see the end, so it may reopen or delete the session at once.
        session_->Detach(attachment_);
        End(action.ok() ? absl::OkStatus() : action.status());
        return;
      }
    }
    {
      absl::MutexLock lock(&mutex_);
      if (end_requested_) return;  // ended meanwhile, e.g. another stream took the session over
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    Action action;
    {
      absl::MutexLock lock(&mutex_);
      write_in_flight_ = false;
      if (!ok) MarkGone("the client stopped reading");
      action = NextAction();
    }
    Perform(action);
  }

  void OnCancel() override {
    Action action;
    {
      absl::MutexLock lock(&mutex_);
      MarkGone("the call was cancelled");
      action = NextAction();
    }
    Perform(action);
  }

  void OnDone() override {
    if (session_ != nullptr) session_->Detach(attachment_);
    delete this;
  }

  void Send(v1::SessionResponse response) override {
    Action action;
    {
      absl::MutexLock lock(&mutex_);
      if (gone_ || finished_) return;
      if (response.has_ack() && !queue_.empty() && queue_.back().has_ack()) {
        queue_.back() = std::move(response);
      } else {
        queue_.push_back(std::move(response));
      }
      action = NextAction();
    }
    Perform(action);
  }

  void End(const absl::Status& status) override {
    Action action;
    {
      absl::MutexLock lock(&mutex_);
      if (end_requested_) return;
      end_requested_ = true;
      end_status_ = status;
      action = NextAction();
    }
    Perform(action);
  }

 private:
  enum class Action { kNone, kWrite, kFinish };

  // Handles the first request, which must be an OpenSession.
  absl::Status Open() {
    if (request_.kind_case() != v1::SessionRequest::kOpen) {
      if (request_.kind_case() == v1::SessionRequest::KIND_NOT_SET) {
        return absl::InvalidArgumentError("request: empty SessionRequest (no kind set)");
      }
      return absl::FailedPreconditionError("open: the first message of a Session stream must be open");
    }
    if (manager_->shutting_down()) return absl::UnavailableError("the server is shutting down; reconnect later");
    const v1::OpenSession& open = request_.open();
    std::shared_ptr<ManagedSession> session;
    switch (open.target_case()) {
      case v1::OpenSession::kCreate: {
        GCPRUNE_ASSIGN_OR_RETURN(session, manager_->CreateSession(open.create()));
        break;
      }
      case v1::OpenSession::kResume: {
        GCPRUNE_ASSIGN_OR_RETURN(session, manager_->FindSession(open.resume().session_id(), "open.resume.session_id"));
        if (open.resume().has_expected_layout()) {
          GCPRUNE_RETURN_IF_ERROR(session->CheckLayout(open.resume().expected_layout(), "open.resume.expected_layout"));
        }
        break;
      }
      case v1::OpenSession::TARGET_NOT_SET:
        return absl::InvalidArgumentError("open: neither create nor resume is set");
    }
    const bool restart = open.target_case() == v1::OpenSession::kResume && open.resume().restart_iteration();
    GCPRUNE_ASSIGN_OR_RETURN(attachment_, session->Attach(this, restart));
    session_ = std::move(session);
    return absl::OkStatus();
  }

  // The client cannot receive anything any more: drop the queue and finish as soon as possible.
  void MarkGone(absl::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    gone_ = true;
    queue_.clear();
    if (!end_requested_) {
      end_requested_ = true;
      end_status_ = absl::CancelledError(why);
    }
  }

  // Decides the next step under the lock; Perform() then runs it outside the lock (gRPC may run
  // reactions inline).
  Action NextAction() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (finished_ || write_in_flight_) return Action::kNone;
    if (!queue_.empty()) {
      writing_ = std::move(queue_.front());
      queue_.pop_front();
      write_in_flight_ = true;
      return Action::kWrite;
    }
    if (end_requested_) {
      finished_ = true;
      return Action::kFinish;
    }
    return Action::kNone;
  }

  void Perform(Action action) {
    switch (action) {
      case Action::kWrite:
        StartWrite(&writing_);  // writing_ is not touched until OnWriteDone
        break;
      case Action::kFinish:
        if (!end_status_.ok() && end_status_.code() != absl::StatusCode::kCancelled) {
          GCPRUNE_LOG(DEBUG) << "Session stream ends: " << end_status_;
        }
        Finish(common::ToGrpcStatus(end_status_));
        break;
      case Action::kNone:
        break;
    }
  }

  SessionManager* const manager_;
  v1::SessionRequest request_;
  // Set by the first request; read on the reading path and in OnDone only, which never overlap.
  std::shared_ptr<ManagedSession> session_;
  uint64_t attachment_ = 0;

  absl::Mutex mutex_;
  std::deque<v1::SessionResponse> queue_ ABSL_GUARDED_BY(mutex_);
  v1::SessionResponse writing_;
  bool write_in_flight_ ABSL_GUARDED_BY(mutex_) = false;
  bool end_requested_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status end_status_;  // written once under the lock, before finished_ is set
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  bool gone_ ABSL_GUARDED_BY(mutex_) = false;
};

grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(common::ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>* PrunerService::Session(
    grpc::CallbackServerContext* /*context*/) {
  return new SessionStream(manager_);
}

grpc::ServerUnaryReactor* PrunerService::GetSession(grpc::CallbackServerContext* context,
                                                    const v1::GetSessionRequest* request, v1::SessionInfo* response) {
  absl::StatusOr<std::shared_ptr<ManagedSession>> session = manager_->FindSession(request->session_id(), "session_id");
  if (session.ok()) *response = (*session)->Info(/*with_layout=*/true);
  return Reply(context, session.status());
}

grpc::ServerUnaryReactor* PrunerService::ListSessions(grpc::CallbackServerContext* context,
                                                      const v1::ListSessionsRequest* request,
                                                      v1::ListSessionsResponse* response) {
  absl::StatusOr<v1::ListSessionsResponse> page = manager_->ListSessions(*request);
  if (page.ok()) *response = std::move(*page);
  return Reply(context, page.status());
}

grpc::ServerUnaryReactor* PrunerService::DeleteSession(grpc::CallbackServerContext* context,
                                                       const v1::DeleteSessionRequest* request,
                                                       v1::DeleteSessionResponse* /*response*/) {
  return Reply(context, manager_->DeleteSession(request->session_id(), request->force()));
}

grpc::ServerUnaryReactor* PrunerService::GetMasks(grpc::CallbackServerContext* context,
                                                  const v1::GetMasksRequest* request, v1::GetMasksResponse* response) {
  absl::StatusOr<std::shared_ptr<ManagedSession>> session = manager_->FindSession(request->session_id(), "session_id");
  if (!session.ok()) return Reply(context, session.status());
  absl::StatusOr<v1::GetMasksResponse> page = (*session)->GetMasks(*request);
  if (page.ok()) *response = std::move(*page);
  return Reply(context, page.status());
}

grpc::ServerUnaryReactor* PrunerService::GetReport(grpc::CallbackServerContext* context,
                                                   const v1::GetReportRequest* request, v1::SessionReport* response) {
  absl::StatusOr<std::shared_ptr<ManagedSession>> session = manager_->FindSession(request->session_id(), "session_id");
  if (session.ok()) *response = (*session)->Report();
  return Reply(context, session.status());
}

}  // namespace gcprune::pruner
