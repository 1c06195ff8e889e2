// Durability of the real gcprune-pruner binary, run as a child process: SIGKILL in the middle of an
// iteration or of a fit, restart on the same state directory, resume by session id, and the masks equal
// those of an uninterrupted run. Also SIGTERM (graceful, exit 0) and the state directory's lock.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pruner_service/causal/mask_set.h"
#include "tests/pruner_service/service/pruner_test_util.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;
using ::gcprune::pruner::testing::CausalV2Config;
using ::gcprune::pruner::testing::CompareMasks;
using ::gcprune::pruner::testing::IsServing;
using ::gcprune::pruner::testing::ReceivedMask;
using ::gcprune::pruner::testing::ReferenceMasks;
using ::gcprune::pruner::testing::SessionClient;
using ::gcprune::pruner::testing::SyntheticRun;
using ::gcprune::pruner::testing::TempDir;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

constexpr int64_t kSteps = 12;  // steps per iteration

std::string PrunerBinary() {
  const char* dir = std::getenv("GCPRUNE_BINARY_DIR");
  if (dir != nullptr && *dir != '\0') return absl::StrCat(dir, "/pruner_service/gcprune-pruner");
  return GCPRUNE_PRUNER_BINARY;
}

// gcprune-pruner as a child process on an ephemeral port.
class ChildPruner {
 public:
  // Starts the binary and waits for "listening on HOST:PORT" on its stdout.
  static absl::StatusOr<std::unique_ptr<ChildPruner>> Start(const std::string& state_dir,
                                                            std::vector<std::string> extra_flags = {}) {
    std::vector<std::string> args = {PrunerBinary(), "--port=0", "--state_dir=" + state_dir, "--log_level=warning",
                                     "--shutdown_grace_seconds=2", "--default_session_memory_bytes=67108864"};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    int out[2];
    if (pipe(out) != 0) return absl::InternalError("pipe");
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("fork");
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::unique_ptr<ChildPruner> child(new ChildPruner(pid, out[0]));
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::string line;
    while (absl::Now() < deadline) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char c;
      const ssize_t n = read(out[0], &c, 1);
      if (n <= 0) return absl::InternalError(absl::StrCat("the server exited early, status ", child->Wait()));
      if (c != '\n') {
        line += c;
        continue;
      }
      if (absl::StartsWith(line, "listening on ")) {
        child->address_ = line.substr(std::string("listening on ").size());
        return child;
      }
      line.clear();
    }
    return absl::DeadlineExceededError("the server did not report its port");
  }

  ~ChildPruner() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Wait();
    }
    close(stdout_fd_);
  }

  const std::string& address() const { return address_; }
  void Kill() {
    kill(pid_, SIGKILL);
    Wait();
  }
  void Terminate() { kill(pid_, SIGTERM); }
  // waitpid; the exit code, or 128 + signal.
  int Wait() {
    int status = 0;
    if (pid_ <= 0) return exit_code_;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }
  std::unique_ptr<v1::Pruner::Stub> NewStub() const {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    return v1::Pruner::NewStub(grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  }

 private:
  ChildPruner(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  int exit_code_ = -1;
  std::string address_;
};

class PrunerDurabilityTest : public ::testing::Test {
 protected:
  std::string StateDir() const { return dir_.path() + "/state"; }

  // Sends steps [first, last] of `run` (iteration j) and waits for their acks.
  static void SendSteps(SessionClient& client, const SyntheticRun& run, int64_t first, int64_t last, int j) {
    for (int64_t step = first; step <= last; ++step) ASSERT_TRUE(client.SendStep(run, step, j));
    ASSERT_OK(client.WaitForAck(last));
  }

  TempDir dir_;
};

TEST_F(PrunerDurabilityTest, SigkillMidIterationLosesNoAcknowledgedStep) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 1234, kSteps);
  const v1::MethodConfig method = CausalV2Config(3, 0.7, 99);
  std::string id;
  v1::MethodConfig resolved;
  ReceivedMask mask1;
  {
    ASSERT_OK_AND_ASSIGN(auto server, ChildPruner::Start(StateDir(), {"--fsync"}));
    auto stub = server->NewStub();
    SessionClient client(stub.get());
    ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), method));
    id = opened.session_id();
    resolved = opened.method();
    SendSteps(client, run, 0, kSteps - 1, 1);
    ASSERT_OK_AND_ASSIGN(mask1, client.EndIteration(1, kSteps - 1));
    // Half of iteration 2, acked; then a step whose commit never arrives.
    SendSteps(client, run, kSteps, kSteps + 5, 2);
    ASSERT_TRUE(client.Write([&] {
      v1::SessionRequest r;
      *r.mutable_step_begin() = run.Begin(kSteps + 6, 2);
      return r;
    }()));
    server->Kill();
  }
  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, resolved, 3));
  EXPECT_OK(CompareMasks(expected[0], mask1));

  const absl::Time restart = absl::Now();
  ASSERT_OK_AND_ASSIGN(auto server, ChildPruner::Start(StateDir()));
  std::cout << "restart with 1 session (6 journalled steps): " << absl::FormatDuration(absl::Now() - restart) << "\n";
  EXPECT_TRUE(IsServing(server->address(), "gcprune.v1.Pruner"));
  auto stub = server->NewStub();
  SessionClient client(stub.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Resume(id));
  EXPECT_EQ(opened.next_step(), kSteps + 6);  // the first unacknowledged step
  EXPECT_EQ(opened.completed_iterations(), 1);
  ASSERT_OK_AND_ASSIGN(ReceivedMask latest, client.ReadMask());
  EXPECT_EQ(latest.iteration, 1);
  EXPECT_OK(CompareMasks(expected[0], latest));

  SendSteps(client, run, opened.next_step(), run.LastStep(2), 2);
  ASSERT_OK_AND_ASSIGN(ReceivedMask mask2, client.EndIteration(2, run.LastStep(2)));
  EXPECT_OK(CompareMasks(expected[1], mask2));
  SendSteps(client, run, run.FirstStep(3), run.LastStep(3), 3);
  ASSERT_OK_AND_ASSIGN(ReceivedMask mask3, client.EndIteration(3, run.LastStep(3)));
  EXPECT_OK(CompareMasks(expected[2], mask3));
  EXPECT_TRUE(mask3.last.final_iteration());
  EXPECT_OK(client.Close(false));
}

TEST_F(PrunerDurabilityTest, SigkillDuringAFitRedoesTheSameFit) {
  // A fit long enough to be killed in the middle: 60,000 weights, 40 steps, 300 epochs.
  const SyntheticRun run(SyntheticRun::WideLayout(200, 300), 4321, 40);
  v1::MethodConfig method = CausalV2Config(2, 0.5, 5);
  method.mutable_lasso_sgd()->set_max_epochs(300);
  method.mutable_lasso_sgd()->set_patience(10000);
  std::string id;
  v1::MethodConfig resolved;
  {
    ASSERT_OK_AND_ASSIGN(auto server, ChildPruner::Start(StateDir()));
    auto stub = server->NewStub();
    SessionClient client(stub.get());
    ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), method));
    id = opened.session_id();
    resolved = opened.method();
    testing::SendOptions send;
    send.chunk_elements = 60000;
    for (int64_t step = 0; step < 40; ++step) ASSERT_TRUE(client.SendStep(run, step, 1, send));
    ASSERT_OK(client.WaitForAck(39));
    v1::SessionRequest end;
    end.mutable_iteration_end()->set_iteration(1);
    end.mutable_iteration_end()->set_last_step(39);
    ASSERT_TRUE(client.Write(end));
    for (;;) {
      ASSERT_OK_AND_ASSIGN(v1::SessionResponse r, client.Read());
      if (r.has_progress() && r.progress().event() == v1::FIT_EVENT_STARTED) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
    server->Kill();
  }
  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, resolved, 1));
  ASSERT_OK_AND_ASSIGN(auto server, ChildPruner::Start(StateDir()));
  auto stub = server->NewStub();
  SessionClient client(stub.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Resume(id));
  ReceivedMask mask;
  if (opened.completed_iterations() == 1) {  // the fit finished before the kill after all
    ASSERT_OK_AND_ASSIGN(mask, client.ReadMask());
  } else {
    EXPECT_EQ(opened.next_step(), 40);
    ASSERT_OK_AND_ASSIGN(mask, client.EndIteration(1, 39));
  }
  EXPECT_OK(CompareMasks(expected[0], mask));
  EXPECT_OK(client.Close(false));
}

TEST_F(PrunerDurabilityTest, SigtermShutsDownGracefullyAndTheStateDirectoryIsLocked) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 1, kSteps);
  ASSERT_OK_AND_ASSIGN(auto server, ChildPruner::Start(StateDir()));
  // A second server on the same state directory refuses to start.
  EXPECT_THAT(ChildPruner::Start(StateDir()), StatusIsWithMessage(absl::StatusCode::kInternal, "status 1"));
  auto stub = server->NewStub();
  SessionClient client(stub.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
  SendSteps(client, run, 0, 4, 1);
  server->Terminate();
  EXPECT_THAT(client.WaitForEnd(), StatusIsWithMessage(absl::StatusCode::kUnavailable, "shutting down"));
  EXPECT_EQ(server->Wait(), 0);

  ASSERT_OK_AND_ASSIGN(auto restarted, ChildPruner::Start(StateDir()));
  {
    // The channel goes away before the signal: an open client connection holds a graceful shutdown for
    // the whole grace period.
    auto stub2 = restarted->NewStub();
    SessionClient resumed(stub2.get());
    ASSERT_OK_AND_ASSIGN(v1::Opened again, resumed.Resume(opened.session_id()));
    EXPECT_EQ(again.next_step(), 5);
    EXPECT_OK(resumed.Close(false));
  }
  const absl::Time signalled = absl::Now();
  restarted->Terminate();
  EXPECT_EQ(restarted->Wait(), 0);
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(1));  // no session stream holds the shutdown
}

TEST_F(PrunerDurabilityTest, BadFlagsExitWithUsageErrors) {
  EXPECT_THAT(ChildPruner::Start(StateDir(), {"--fit_threads=0"}), StatusIsWithMessage(absl::StatusCode::kInternal,
                                                                                         "status 2"));
  EXPECT_THAT(ChildPruner::Start(StateDir(), {"--max_message_bytes=10"}),
              StatusIsWithMessage(absl::StatusCode::kInternal, "status 2"));
}

}  // namespace
}  // namespace gcprune::pruner
