// A small fixed pool of threads that runs the sessions' fits (PruningSession::EndIteration) away from
// the gRPC threads, so that acks of every session keep flowing while a fit runs.
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_FIT_EXECUTOR_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_FIT_EXECUTOR_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace gcprune::pruner {

// Jobs run in submission order, at most `threads` at a time. Thread-safe.
class FitExecutor {
 public:
  // INVALID_ARGUMENT unless 1 <= threads <= 256.
  static absl::StatusOr<std::unique_ptr<FitExecutor>> Create(int threads);
  // Shutdown().
  ~FitExecutor();
  FitExecutor(const FitExecutor&) = delete;
  FitExecutor& operator=(const FitExecutor&) = delete;

  // Queues `job` and returns its place in the queue: 0 when an idle thread takes it at once, otherwise
  // 1 + the number of jobs that wait before it. UNAVAILABLE after Shutdown().
  absl::StatusOr<int> Submit(std::function<void()> job);

  // Stops accepting jobs, drops the queued ones (their closures are destroyed without running), waits for
  // the running ones and joins the threads. Idempotent.
  void Shutdown();

  int num_threads() const { return static_cast<int>(threads_.size()); }

 private:
  explicit FitExecutor(int threads);
  void Run();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mutex_);
  int idle_ ABSL_GUARDED_BY(mutex_);  // threads not running a job
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_FIT_EXECUTOR_H_
