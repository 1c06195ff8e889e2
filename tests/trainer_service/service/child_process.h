// Test helper: starts a gcprune server binary as a child process on an ephemeral port, reads the
// "listening on HOST:PORT" line it prints, and signals, kills and reaps it.
#ifndef GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_CHILD_PROCESS_H_
#define GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gcprune::trainer::testing {

// $GCPRUNE_BINARY_DIR/<relative>, e.g. BinaryPath("pruner_service/gcprune-pruner"); empty if unset.
std::string BinaryPath(const std::string& relative);

class ChildProcess {
 public:
  // Runs argv[0] with the arguments, stdout read until "listening on HOST:PORT" (within `timeout`),
  // stderr appended to `stderr_path` (empty = discarded). UNAVAILABLE if the process ends or stays silent.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             absl::Duration timeout = absl::Seconds(20),
                                                             const std::string& stderr_path = "");
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // SIGKILL and reap if still running.
  ~ChildProcess();

  // "HOST:PORT" as printed.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Sends `signo` (no-op once reaped).
  void Signal(int signo);
  // Waits up to `timeout` for the exit; returns the exit code, 128 + signal for a signal death, or -1 on
  // timeout (the process is then still running).
  int Wait(absl::Duration timeout = absl::Seconds(30));
  // SIGKILL and reap.
  void Kill();

 private:
  ChildProcess(pid_t pid, int stdout_fd, std::string address, int port)
      : pid_(pid), stdout_fd_(stdout_fd), address_(std::move(address)), port_(port) {}

  pid_t pid_;
  int stdout_fd_;  // kept open so a late write to stdout cannot kill the child with SIGPIPE
  std::string address_;
  int port_;
};

}  // namespace gcprune::trainer::testing

#endif  // GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_CHILD_PROCESS_H_
