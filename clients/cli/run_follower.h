// Follows a run's event stream (Trainer.WatchRun) to its end, riding out dropped connections: after a
// broken stream it waits for the trainer to answer again and resumes after the last event it saw, so no
// event is shown twice and none is lost that the trainer still retains.
#ifndef GCPRUNE_CLIENTS_CLI_RUN_FOLLOWER_H_
#define GCPRUNE_CLIENTS_CLI_RUN_FOLLOWER_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"

namespace gcprune::cli {

class RunFollower {
 public:
  struct Options {
    // Consecutive failed attempts to re-open the stream before giving up, >= 0. The count restarts
    // whenever a stream delivers an event.
    int max_reconnects = 6;
    // Wait before the first reconnection attempt; doubled after each failure up to max_backoff.
    absl::Duration first_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(8);
    // How long each attempt waits for the trainer to accept a connection.
    absl::Duration reconnect_timeout = absl::Seconds(10);
  };

  // `channel` leads to the trainer; it must stay usable for the follower's lifetime.
  RunFollower(std::shared_ptr<grpc::Channel> channel, Options options);

  // Streams the events of `run_id` with sequence > `after_sequence` to `on_event`, in order, until the
  // run's RunFinished event, and returns that event. Errors: CANCELLED after Interrupt(); NOT_FOUND for an
  // unknown run (also when a restarted trainer no longer knows it); UNAVAILABLE (or DEADLINE_EXCEEDED)
  // when the trainer stays unreachable through max_reconnects attempts; any other code the trainer
  // answers with. Not reentrant.
  absl::StatusOr<v1::RunFinished> Follow(const std::string& run_id, int64_t after_sequence,
                                         const std::function<void(const v1::RunEvent&)>& on_event);

  // Makes a Follow in progress (or the next one) return CANCELLED promptly. Thread-safe; not
  // async-signal-safe (call it from an ordinary thread, e.g. a signal watcher's).
  void Interrupt();

  // Stream re-openings after a broken stream, over this follower's life.
  int reconnects() const;

 private:
  // Registers the context of the call in flight so that Interrupt can cancel it; false if interrupted.
  bool Attach(grpc::ClientContext* context);
  void Detach();
  // Sleeps for `duration` unless interrupted first; false if interrupted.
  bool SleepUnlessInterrupted(absl::Duration duration);
  // Waits (up to reconnect_timeout) for the trainer to answer GetRun for the run.
  absl::Status Probe(v1::Trainer::Stub* stub, const std::string& run_id);

  const std::shared_ptr<grpc::Channel> channel_;
  const Options options_;
  mutable absl::Mutex mutex_;
  bool interrupted_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mutex_) = nullptr;
  int reconnects_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_RUN_FOLLOWER_H_
