// Implementation of the self-pipe signal watcher.
#include "common/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace gcprune::common {
namespace {

// Bytes on the pipe: a signal number, or one of these.
constexpr unsigned char kRequestByte = 0;
constexpr unsigned char kStopByte = 255;

// Read by the signal handler: plain globals of lock-free types only.
std::atomic<int> g_write_fd{-1};
volatile sig_atomic_t g_signal_seen = 0;
std::atomic<bool> g_installed{false};

struct sigaction g_old_term;
struct sigaction g_old_int;

void HandleSignal(int signo) {
  const int saved_errno = errno;
  if (g_signal_seen) _exit(128 + signo);
  g_signal_seen = 1;
  const unsigned char byte = static_cast<unsigned char>(signo);
  const int fd = g_write_fd.load();
  if (fd >= 0) {
    // Nothing useful can be done on failure inside a handler; the pipe is non-blocking and near empty.
    [[maybe_unused]] ssize_t ignored = write(fd, &byte, 1);
  }
  errno = saved_errno;
}

void WriteByte(unsigned char byte) {
  const int fd = g_write_fd.load();
  if (fd < 0) return;
  while (write(fd, &byte, 1) < 0 && errno == EINTR) {
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ShutdownSignalWatcher>> ShutdownSignalWatcher::Install(
    std::function<void(int)> on_signal) {
  bool expected = false;
  if (!g_installed.compare_exchange_strong(expected, true)) {
    return absl::FailedPreconditionError("shutdown signal watcher: one is already installed");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    g_installed = false;
    return absl::InternalError(absl::StrCat("shutdown signal watcher: pipe2: ", std::strerror(errno)));
  }
  // Only the write end must never block (inside the handler); the reader blocks on purpose.
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) & ~O_NONBLOCK);
  g_write_fd = fds[1];
  g_signal_seen = 0;

  std::unique_ptr<ShutdownSignalWatcher> watcher(new ShutdownSignalWatcher(fds[0], std::move(on_signal)));
  try {
    watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  } catch (const std::system_error& e) {
    close(fds[0]);
    close(fds[1]);
    g_write_fd = -1;
    g_installed = false;
    return absl::InternalError(absl::StrCat("shutdown signal watcher: cannot start thread: ", e.what()));
  }

  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = HandleSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGTERM, &action, &g_old_term) != 0 || sigaction(SIGINT, &action, &g_old_int) != 0) {
    const int error = errno;
    watcher.reset();  // joins the thread and restores whatever was installed
    return absl::InternalError(absl::StrCat("shutdown signal watcher: sigaction: ", std::strerror(error)));
  }
  return watcher;
}

ShutdownSignalWatcher::ShutdownSignalWatcher(int read_fd, std::function<void(int)> on_signal)
    : read_fd_(read_fd), on_signal_(std::move(on_signal)) {}

ShutdownSignalWatcher::~ShutdownSignalWatcher() {
  sigaction(SIGTERM, &g_old_term, nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
  WriteByte(kStopByte);
  if (thread_.joinable()) thread_.join();
  const int write_fd = g_write_fd.exchange(-1);
  if (write_fd >= 0) close(write_fd);
  close(read_fd_);
  g_installed = false;
}

void ShutdownSignalWatcher::RequestShutdown() { WriteByte(kRequestByte); }

void ShutdownSignalWatcher::Run() {
  bool fired = false;
  while (true) {
    unsigned char byte = 0;
    const ssize_t n = read(read_fd_, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || byte == kStopByte) return;
    if (fired) continue;
    fired = true;
    const int signo = static_cast<int>(byte);
    if (signo != 0) {
      GCPRUNE_LOG(INFO) << "received " << (signo == SIGTERM ? "SIGTERM" : signo == SIGINT ? "SIGINT" : "signal ")
                        << (signo == SIGTERM || signo == SIGINT ? "" : std::to_string(signo));
    }
    on_signal_(signo);
  }
}

}  // namespace gcprune::common
