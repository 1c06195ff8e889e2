// Child server processes for tests (see child_process.h).
#include "tests/trainer_service/service/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gcprune::trainer::testing {

std::string BinaryPath(const std::string& relative) {
  const char* dir = std::getenv("GCPRUNE_BINARY_DIR");
  if (dir == nullptr || *dir == '\0') return "";
  return absl::StrCat(dir, "/", relative);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(const std::vector<std::string>& argv,
                                                                   absl::Duration timeout,
                                                                   const std::string& stderr_path) {
  if (argv.empty()) return absl::InvalidArgumentError("ChildProcess: empty argv");
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return absl::InternalError("ChildProcess: pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("ChildProcess: fork failed");
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    const int err = stderr_path.empty() ? ::open("/dev/null", O_WRONLY)
                                        : ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  const int fd = pipe_fds[0];
  const absl::Time deadline = absl::Now() + timeout;
  std::string output;
  while (absl::Now() < deadline) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, 100);
    if (ready > 0) {
      char buffer[512];
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n <= 0) break;  // the child closed stdout: it ended
      output.append(buffer, static_cast<size_t>(n));
      const size_t at = output.find("listening on ");
      const size_t end = at == std::string::npos ? std::string::npos : output.find('\n', at);
      if (end != std::string::npos) {
        const std::string address = output.substr(at + 13, end - at - 13);
        const size_t colon = address.rfind(':');
        int port = 0;
        if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
          break;
        }
        return std::unique_ptr<ChildProcess>(new ChildProcess(pid, fd, address, port));
      }
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(argv[0], " exited before listening; stdout: ", output));
    }
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(fd);
  return absl::UnavailableError(absl::StrCat(argv[0], " did not print 'listening on' in time; stdout: ", output));
}

ChildProcess::~ChildProcess() {
  Kill();
  ::close(stdout_fd_);
}

void ChildProcess::Signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

int ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace gcprune::trainer::testing
