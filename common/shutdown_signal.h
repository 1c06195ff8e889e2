// Turns SIGTERM and SIGINT into a callback on an ordinary thread (the self-pipe pattern), so servers
// can shut down gracefully: the signal handler itself only write()s one byte, which is async-signal-safe.
#ifndef GCPRUNE_COMMON_SHUTDOWN_SIGNAL_H_
#define GCPRUNE_COMMON_SHUTDOWN_SIGNAL_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"

namespace gcprune::common {

// At most one watcher exists per process at a time. Thread-safe.
class ShutdownSignalWatcher {
 public:
  // Installs handlers for SIGTERM and SIGINT and starts the watcher thread. `on_signal(signo)` runs once
  // on that thread, for the first signal, or with signo 0 for RequestShutdown(). A second SIGTERM/SIGINT
  // while the first is being handled ends the process at once with exit code 128 + signo, so an impatient
  // operator is never stuck. FAILED_PRECONDITION if another watcher is installed; INTERNAL if the pipe,
  // the thread or the handlers cannot be set up.
  static absl::StatusOr<std::unique_ptr<ShutdownSignalWatcher>> Install(std::function<void(int signo)> on_signal);

  ShutdownSignalWatcher(const ShutdownSignalWatcher&) = delete;
  ShutdownSignalWatcher& operator=(const ShutdownSignalWatcher&) = delete;
  // Restores the previous handlers and joins the thread (waiting for a running callback). Must not be
  // called from the callback.
  ~ShutdownSignalWatcher();

  // Runs the callback with signo 0 unless it has run already. Idempotent.
  void RequestShutdown();

 private:
  ShutdownSignalWatcher(int read_fd, std::function<void(int)> on_signal);
  void Run();

  int read_fd_;
  std::function<void(int)> on_signal_;
  std::thread thread_;
};

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_SHUTDOWN_SIGNAL_H_
