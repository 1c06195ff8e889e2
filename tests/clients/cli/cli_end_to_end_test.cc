// End-to-end tests of the built `gcprune` binary against the real gcprune-pruner and gcprune-trainer
// binaries on 127.0.0.1 (ephemeral ports, a temporary state directory): a short MLP run on a Fashion-MNIST
// subset completes and prints its tables, `report --json` parses, listings show the run and its session,
// and health, unreachable servers, failed and cancelled runs and usage errors give the documented exit
// codes.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "protos/gcprune/v1/pruner.pb.h"
#include "protos/gcprune/v1/trainer.pb.h"

namespace gcprune::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// A scratch directory removed with its contents at the end.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/gcprune-cli-e2e-XXXXXX";
    const char* made = mkdtemp(pattern);
    path_ = made == nullptr ? "" : made;
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A server binary started with --port=0; the bound port comes from its --port_file.
class ChildServer {
 public:
  bool Start(const std::string& binary, std::vector<std::string> args, const std::string& dir) {
    const std::string port_file = dir + "/port";
    args.push_back("--host=127.0.0.1");
    args.push_back("--port=0");
    args.push_back("--port_file=" + port_file);
    log_ = dir + "/server.log";
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      int port = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(port_file)), &port) && port > 0) {
        address_ = absl::StrCat("127.0.0.1:", port);
        return true;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  ~ChildServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }

  const std::string& address() const { return address_; }
  std::string log() const { return ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  std::string address_;
  std::string log_;
};

// Runs the built `gcprune` with `args` (no shell metacharacters); stdout and stderr kept apart.
Outcome Gcprune(const std::vector<std::string>& args, const std::string& scratch) {
  const std::string err_file = scratch + "/stderr";
  const std::string command =
      absl::StrCat(GCPRUNE_CLI_PATH, " ", absl::StrJoin(args, " "), " 2>", err_file);
  Outcome outcome;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) outcome.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  outcome.err = ReadFile(err_file);
  return outcome;
}

// The run id from "run ID created on ...".
std::string CreatedRunId(const std::string& err) {
  const std::string marker = "run ";
  const size_t start = err.find(marker);
  const size_t end = err.find(" created on ");
  if (start == std::string::npos || end == std::string::npos || end <= start) return "";
  return err.substr(start + marker.size(), end - start - marker.size());
}

// A port nothing listens on: 1 is privileged and unused on a test machine.
constexpr char kClosedAddress[] = "127.0.0.1:1";

class CliEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    pruner_ = new ChildServer();
    trainer_ = new ChildServer();
    const std::string pruner_dir = dir_->path() + "/pruner";
    const std::string trainer_dir = dir_->path() + "/trainer";
    mkdir(pruner_dir.c_str(), 0755);
    mkdir(trainer_dir.c_str(), 0755);
    ASSERT_TRUE(pruner_->Start(GCPRUNE_PRUNER_PATH, {"--state_dir=" + pruner_dir + "/state"}, pruner_dir))
        << pruner_->log();
    ASSERT_TRUE(trainer_->Start(GCPRUNE_TRAINER_PATH, {}, trainer_dir)) << trainer_->log();
  }

  static void TearDownTestSuite() {
    delete trainer_;
    delete pruner_;
    delete dir_;
    delete main_run_;
    main_run_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(pruner_, nullptr);
    ASSERT_FALSE(trainer_->address().empty()) << trainer_->log();
  }

  Outcome Cli(const std::vector<std::string>& args) { return Gcprune(args, dir_->path()); }

  // The flags of a run of seconds: the MLP on 1024 training and 500 test images, one pre-training epoch,
  // two prune iterations to 50% with one collection epoch each, one fine-tuning epoch.
  std::vector<std::string> ShortRun(std::vector<std::string> extra) const {
    std::vector<std::string> args = {"run",
                                     "--trainer=" + trainer_->address(),
                                     "--pruner=" + pruner_->address(),
                                     "--model=mlp",
                                     "--train_subset=1024",
                                     "--test_subset=500",
                                     "--pretrain_epochs=1",
                                     "--train_epochs=0",
                                     "--finetune_epochs=1",
                                     "--batch_size=128",
                                     "--iterations=2",
                                     "--target_sparsity=0.5",
                                     "--progress=plain"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // The main run, made once for the tests that read it.
  const Outcome& MainRun() {
    if (main_run_ == nullptr) main_run_ = new Outcome(Cli(ShortRun({"--label=e2e"})));
    return *main_run_;
  }

  static TempDir* dir_;
  static ChildServer* pruner_;
  static ChildServer* trainer_;
  static Outcome* main_run_;
};

TempDir* CliEndToEndTest::dir_ = nullptr;
ChildServer* CliEndToEndTest::pruner_ = nullptr;
ChildServer* CliEndToEndTest::trainer_ = nullptr;
Outcome* CliEndToEndTest::main_run_ = nullptr;

TEST_F(CliEndToEndTest, RunCompletesAndPrintsTheAchievedSparsity) {
  const Outcome& run = MainRun();
  ASSERT_EQ(run.code, 0) << run.err << run.out;
  const std::string run_id = CreatedRunId(run.err);
  ASSERT_FALSE(run_id.empty()) << run.err;
  EXPECT_THAT(run.err, HasSubstr("pre-train epoch 1/1: loss "));
  EXPECT_THAT(run.err, HasSubstr("iter 2/2 prune: sparsity 50.00% (target 50.00%)"));
  EXPECT_THAT(run.err, HasSubstr("run " + run_id + " SUCCEEDED: sparsity 50.00%"));
  EXPECT_THAT(run.out, StartsWith("Run " + run_id + ": SUCCEEDED after "));
  EXPECT_THAT(run.out, HasSubstr("model mlp on fashion-mnist, method causal-v2 (target 50.00%, 2 iterations)"));
  EXPECT_THAT(run.out, HasSubstr("32,360 prunable weights"));
  EXPECT_THAT(run.out, HasSubstr("Final sparsity per tensor"));
  // The total row: 16,180 of 32,360 weights pruned.
  EXPECT_THAT(run.out, HasSubstr("32,360  16,180  16,180    50.00%"));
}

TEST_F(CliEndToEndTest, ReportJsonParsesAndMatchesTheRun) {
  const Outcome& run = MainRun();
  ASSERT_EQ(run.code, 0) << run.err;
  const std::string run_id = CreatedRunId(run.err);
  const Outcome json = Cli({"report", run_id, "--json", "--trainer=" + trainer_->address()});
  ASSERT_EQ(json.code, 0) << json.err;
  v1::RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &report).ok()) << json.out;
  EXPECT_EQ(report.run_id(), run_id);
  EXPECT_EQ(report.state(), v1::RUN_STATE_SUCCEEDED);
  ASSERT_EQ(report.iterations_size(), 2);
  EXPECT_DOUBLE_EQ(report.iterations(1).achieved_sparsity(), 0.5);
  int64_t pruned = 0;
  for (const v1::TensorSparsity& tensor : report.tensors()) pruned += tensor.pruned();
  EXPECT_EQ(pruned, 16180);
  EXPECT_EQ(report.finetune().epochs(), 1);
}

TEST_F(CliEndToEndTest, ListingsShowTheRunAndItsSession) {
  const Outcome& run = MainRun();
  ASSERT_EQ(run.code, 0) << run.err;
  const std::string run_id = CreatedRunId(run.err);
  const Outcome runs = Cli({"runs", "--trainer=" + trainer_->address()});
  ASSERT_EQ(runs.code, 0) << runs.err;
  EXPECT_THAT(runs.out, HasSubstr(run_id));
  EXPECT_THAT(runs.out, HasSubstr("e2e"));
  const Outcome sessions = Cli({"sessions", "--pruner=" + pruner_->address(), "--json"});
  ASSERT_EQ(sessions.code, 0) << sessions.err;
  v1::ListSessionsResponse listed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(sessions.out, &listed).ok()) << sessions.out;
  ASSERT_GE(listed.sessions_size(), 1);
  const Outcome watch = Cli({"watch", run_id, "--trainer=" + trainer_->address(), "--progress=plain"});
  EXPECT_EQ(watch.code, 0) << watch.err;
  EXPECT_THAT(watch.err, HasSubstr("SUCCEEDED"));
}

TEST_F(CliEndToEndTest, HealthExitCodes) {
  EXPECT_EQ(Cli({"health", trainer_->address()}).code, 0);
  EXPECT_EQ(Cli({"health", pruner_->address(), "--service=gcprune.v1.Pruner"}).code, 0);
  EXPECT_EQ(Cli({"health", trainer_->address(), "--service=gcprune.v1.Trainer"}).code, 0);
  EXPECT_EQ(Cli({"health", trainer_->address(), "--service=gcprune.v1.Nope"}).code, 1);
  const Outcome closed = Cli({"health", kClosedAddress, "--timeout=5s"});
  EXPECT_EQ(closed.code, 3);
  EXPECT_THAT(closed.err, HasSubstr("cannot reach 127.0.0.1:1"));
}

TEST_F(CliEndToEndTest, UnreachableTrainerExitsThreeWithAddressCodeAndHint) {
  const Outcome outcome = Cli({"run", "--trainer=" + std::string(kClosedAddress), "--model=mlp"});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_THAT(outcome.err, HasSubstr("gcprune run: creating the run failed: cannot reach the trainer at "
                                     "127.0.0.1:1 (UNAVAILABLE: "));
  EXPECT_THAT(outcome.err, HasSubstr("hint: is gcprune-trainer running and listening on 127.0.0.1:1?"));
}

TEST_F(CliEndToEndTest, StrictRunWithoutPrunerFailsWithExitOne) {
  const Outcome outcome = Cli(ShortRun({"--pruner=" + std::string(kClosedAddress), "--failure_policy=strict",
                                        "--grace_period=1s", "--pretrain_epochs=0"}));
  EXPECT_EQ(outcome.code, 1) << outcome.err;
  EXPECT_THAT(outcome.err, HasSubstr(" FAILED"));
  EXPECT_THAT(outcome.out, HasSubstr(": FAILED"));
}

TEST_F(CliEndToEndTest, CancelledRunEndsCancelled) {
  const Outcome detached = Cli(ShortRun({"--detach", "--pretrain_epochs=200"}));
  ASSERT_EQ(detached.code, 0) << detached.err;
  const std::string run_id(absl::StripAsciiWhitespace(detached.out));
  const Outcome cancel = Cli({"cancel", run_id, "--wait", "--trainer=" + trainer_->address()});
  EXPECT_EQ(cancel.code, 0) << cancel.err;
  EXPECT_THAT(cancel.out, StartsWith(run_id + ": CANCELLED"));
  const Outcome watch = Cli({"watch", run_id, "--trainer=" + trainer_->address(), "--progress=none"});
  EXPECT_EQ(watch.code, 1);
}

TEST_F(CliEndToEndTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Cli({}).code, 2);
  EXPECT_EQ(Cli({"frobnicate"}).code, 2);
  const Outcome bogus = Cli({"run", "--bogus"});
  EXPECT_EQ(bogus.code, 2);
  EXPECT_EQ(bogus.err, "gcprune run: unknown flag --bogus (see gcprune run --help)\n");
  const Outcome rejected = Cli(ShortRun({"--data=imagenet"}));
  EXPECT_EQ(rejected.code, 2) << rejected.err;
  EXPECT_THAT(rejected.err, HasSubstr("rejected the run"));
}

}  // namespace
}  // namespace gcprune::cli
