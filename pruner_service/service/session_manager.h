// The pruner's sessions: creation with admission control (session count, per-session and total sample
// memory), lookup, listing, deletion, loading every stored session at start-up, and ending all streams
// at shutdown.
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_SESSION_MANAGER_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_SESSION_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "protos/gcprune/v1/pruner.pb.h"
#include "pruner_service/service/fit_executor.h"
#include "pruner_service/service/managed_session.h"
#include "pruner_service/service/state_directory.h"

namespace gcprune::pruner {

struct SessionManagerOptions {
  ManagedSessionOptions session;
  // Live (COLLECTING or FITTING) sessions at once, >= 1.
  int max_sessions = 64;
  // Largest sample memory budget one session may ask for, in bytes, >= 1.
  int64_t max_session_memory_bytes = int64_t{4} << 30;
  // Sum of the budgets of the live sessions of causal methods, in bytes, >= 1. Budgets are reserved at
  // creation, so the sample stores together never exceed this.
  int64_t total_memory_bytes = int64_t{8} << 30;
};

// Thread-safe.
class SessionManager {
 public:
  // Loads every session stored in `dir` (a session that cannot be read is logged and skipped; one whose
  // stored state is inconsistent loads as FAILED). `dir` and `executor` must outlive the manager.
  // INVALID_ARGUMENT for options out of range; the errors of StateDirectory::ListSessions.
  static absl::StatusOr<std::unique_ptr<SessionManager>> Create(StateDirectory* dir, FitExecutor* executor,
                                                                const SessionManagerOptions& options);

  // Creates a session from an OpenSession.create. INVALID_ARGUMENT naming the field (under
  // "open.create.") for a bad label, layout or method; RESOURCE_EXHAUSTED, with the numbers, when the
  // budget is above the per-session limit or below one sample, or the session count or total memory
  // would exceed the server's limits; UNAVAILABLE while shutting down or for storage errors.
  absl::StatusOr<std::shared_ptr<ManagedSession>> CreateSession(const gcprune::v1::NewSession& request);

  // The session `id`. INVALID_ARGUMENT (naming `field`) for an empty or malformed id; NOT_FOUND if there
  // is no such session.
  absl::StatusOr<std::shared_ptr<ManagedSession>> FindSession(absl::string_view id, absl::string_view field) const;

  // Deletes a session and its files (see ManagedSession::MarkDeleted). INVALID_ARGUMENT, NOT_FOUND,
  // FAILED_PRECONDITION (attached, no force); INTERNAL if the files cannot be removed.
  absl::Status DeleteSession(absl::string_view id, bool force);

  // A page of sessions, newest first. INVALID_ARGUMENT for page_size outside [0, 1000], an unknown state
  // or a malformed page token.
  absl::StatusOr<gcprune::v1::ListSessionsResponse> ListSessions(const gcprune::v1::ListSessionsRequest& request) const;

  // Refuses new sessions and streams from now on (UNAVAILABLE) and ends every attached stream with
  // UNAVAILABLE once its queued responses (acks) are written. Idempotent.
  void Shutdown();
  bool shutting_down() const;

  int num_sessions() const;

 private:
  SessionManager(StateDirectory* dir, FitExecutor* executor, const SessionManagerOptions& options);

  StateDirectory* const dir_;
  FitExecutor* const executor_;
  const SessionManagerOptions options_;

  mutable absl::Mutex mutex_;
  std::map<std::string, std::shared_ptr<ManagedSession>> sessions_ ABSL_GUARDED_BY(mutex_);
  bool shutting_down_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_SESSION_MANAGER_H_
