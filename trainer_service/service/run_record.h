// The shared state of one run: its Run message (life cycle, progress), its RunReport, its event log and
// its cancellation flag. The executing worker writes it; RPC handlers and watchers read it concurrently.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_RECORD_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_RECORD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "protos/gcprune/v1/trainer.pb.h"
#include "trainer_service/service/event_log.h"

namespace gcprune::trainer {

// Thread-safe.
class RunRecord {
 public:
  // A QUEUED run. `ordinal` orders runs by creation (larger = newer); `event_capacity` bounds the log.
  RunRecord(std::string run_id, int64_t ordinal, gcprune::v1::RunSpec spec, int total_iterations,
            size_t event_capacity);
  RunRecord(const RunRecord&) = delete;
  RunRecord& operator=(const RunRecord&) = delete;

  const std::string& id() const { return id_; }
  int64_t ordinal() const { return ordinal_; }
  // The event log; shared so a watcher may outlive the record's removal from the manager.
  const std::shared_ptr<EventLog>& events() const { return events_; }

  // Copies of the current Run and RunReport.
  gcprune::v1::Run GetRun() const;
  gcprune::v1::RunReport GetReport() const;
  gcprune::v1::RunState state() const;

  // Runs `update` on the Run and the RunReport under the record's lock. `update` must be quick and must
  // not call back into the record.
  void Update(absl::FunctionRef<void(gcprune::v1::Run*, gcprune::v1::RunReport*)> update);
  // Appends an event to the log (the log stamps sequence, time and run id).
  void Emit(gcprune::v1::RunEvent event) { events_->Append(std::move(event)); }

  // Asks the run to stop. Returns false (and changes nothing) if the run is already terminal. The first
  // reason given is kept.
  bool RequestCancel(const std::string& reason);
  bool cancel_requested() const { return cancel_requested_.load(std::memory_order_acquire); }
  std::string cancel_reason() const;

  // QUEUED -> RUNNING; returns false if the run is no longer QUEUED (cancelled while queued).
  bool MarkRunning();
  // Moves the run to a terminal state (SUCCEEDED, FAILED or CANCELLED) with `message`, stamps the end
  // time and appends the RunFinished event that closes the log. Later calls are ignored.
  void Finish(gcprune::v1::RunState state, const std::string& message);

 private:
  const std::string id_;
  const int64_t ordinal_;
  const std::shared_ptr<EventLog> events_;
  mutable absl::Mutex mu_;
  gcprune::v1::Run run_ ABSL_GUARDED_BY(mu_);
  gcprune::v1::RunReport report_ ABSL_GUARDED_BY(mu_);
  std::string cancel_reason_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> cancel_requested_{false};
};

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsTerminal(gcprune::v1::RunState state);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_RECORD_H_
