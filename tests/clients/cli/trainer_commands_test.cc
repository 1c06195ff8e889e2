// Tests of `gcprune run`, `watch`, `report`, `runs`, `cancel` and `sessions` in-process against small fake
// Trainer and Pruner services on 127.0.0.1: exit codes, what goes to stdout and stderr, reconnection of a
// broken event stream, paging, and the messages for unknown ids, rejected specs and unreachable servers.
#include <grpcpp/server_context.h>
#include <signal.h>
#include <unistd.h>

#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/synchronization/mutex.h"
#include "clients/cli/command.h"
#include "common/server_bootstrap.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/clients/cli/cli_runner.h"

namespace gcprune::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using test_util::Cli;
using test_util::Outcome;

v1::RunEvent Event(int64_t sequence) {
  v1::RunEvent event;
  event.set_sequence(sequence);
  event.set_run_id("run-1");
  return event;
}

// A trainer that knows one run, "run-1", whose events and report the test scripts.
class FakeTrainer final : public v1::Trainer::Service {
 public:
  FakeTrainer() { SetOutcome(v1::RUN_STATE_SUCCEEDED, ""); }

  // Scripts run-1: pre-training, one iteration, and a RunFinished with `state`.
  void SetOutcome(v1::RunState state, const std::string& message) {
    absl::MutexLock lock(&mutex_);
    events_.clear();
    v1::RunEvent phase = Event(1);
    phase.mutable_phase_changed()->set_phase(v1::PHASE_PRETRAIN);
    phase.mutable_phase_changed()->set_epochs(1);
    events_.push_back(phase);
    v1::RunEvent epoch = Event(2);
    epoch.mutable_epoch_finished()->set_phase(v1::PHASE_PRETRAIN);
    epoch.mutable_epoch_finished()->set_epoch(1);
    epoch.mutable_epoch_finished()->set_epochs(1);
    epoch.mutable_epoch_finished()->set_train_loss(0.6);
    epoch.mutable_epoch_finished()->set_test_accuracy(0.8);
    events_.push_back(epoch);
    v1::RunEvent masks = Event(3);
    masks.mutable_masks_applied()->set_iteration(1);
    masks.mutable_masks_applied()->set_target_sparsity(0.5);
    masks.mutable_masks_applied()->set_achieved_sparsity(0.5);
    masks.mutable_masks_applied()->set_test_accuracy(0.79);
    events_.push_back(masks);
    v1::RunEvent finished = Event(4);
    finished.mutable_finished()->set_state(state);
    finished.mutable_finished()->set_message(message);
    finished.mutable_finished()->set_sparsity(0.5);
    finished.mutable_finished()->set_final_test_accuracy(std::numeric_limits<double>::quiet_NaN());
    finished.mutable_finished()->set_best_test_accuracy(std::numeric_limits<double>::quiet_NaN());
    events_.push_back(finished);
    run_.set_run_id("run-1");
    run_.set_state(v1::RUN_STATE_RUNNING);
    run_.set_total_iterations(1);
    run_.set_test_accuracy(std::numeric_limits<double>::quiet_NaN());
    final_state_ = state;
  }
  // WatchRun sends the first event and then waits until the client goes away.
  void HangWatch() {
    absl::MutexLock lock(&mutex_);
    hang_watch_ = true;
  }
  std::string last_cancel_reason() {
    absl::MutexLock lock(&mutex_);
    return last_cancel_reason_;
  }
  // The first WatchRun ends with UNAVAILABLE after `n` events.
  void BreakFirstWatchAfter(int n) {
    absl::MutexLock lock(&mutex_);
    break_after_ = n;
  }
  int watch_calls() {
    absl::MutexLock lock(&mutex_);
    return watch_calls_;
  }
  v1::CreateRunRequest last_create() {
    absl::MutexLock lock(&mutex_);
    return last_create_;
  }

  grpc::Status CreateRun(grpc::ServerContext*, const v1::CreateRunRequest* request, v1::Run* run) override {
    absl::MutexLock lock(&mutex_);
    last_create_ = *request;
    if (request->spec().label() == "reject") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "spec.label: 'reject' is not allowed");
    }
    *run_.mutable_spec() = request->spec();
    *run = run_;
    return grpc::Status::OK;
  }

  grpc::Status WatchRun(grpc::ServerContext* context, const v1::WatchRunRequest* request,
                        grpc::ServerWriter<v1::RunEvent>* writer) override {
    std::vector<v1::RunEvent> events;
    int break_after = -1;
    bool hang = false;
    {
      absl::MutexLock lock(&mutex_);
      if (request->run_id() != "run-1") return NotFound(request->run_id());
      ++watch_calls_;
      events = events_;
      if (watch_calls_ == 1) break_after = break_after_;
      hang = hang_watch_;
    }
    if (hang) {
      writer->Write(events[0]);
      while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
      return grpc::Status::CANCELLED;
    }
    int sent = 0;
    for (const v1::RunEvent& event : events) {
      if (event.sequence() <= request->after_sequence()) continue;
      if (break_after >= 0 && sent == break_after) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "watch dropped");
      }
      writer->Write(event);
      ++sent;
    }
    return grpc::Status::OK;
  }

  grpc::Status GetRun(grpc::ServerContext*, const v1::GetRunRequest* request, v1::Run* run) override {
    absl::MutexLock lock(&mutex_);
    if (request->run_id() != "run-1") return NotFound(request->run_id());
    *run = run_;
    return grpc::Status::OK;
  }

  grpc::Status GetRunReport(grpc::ServerContext*, const v1::GetRunReportRequest* request,
                            v1::RunReport* report) override {
    absl::MutexLock lock(&mutex_);
    if (request->run_id() != "run-1") return NotFound(request->run_id());
    report->set_run_id("run-1");
    report->set_state(final_state_);
    report->set_pretrain_test_accuracy(0.8);
    report->set_prunable_weights(32360);
    v1::IterationResult* iteration = report->add_iterations();
    iteration->set_iteration(1);
    iteration->set_target_sparsity(0.5);
    iteration->set_achieved_sparsity(0.5);
    iteration->set_test_accuracy_after_prune(0.79);
    v1::TensorSparsity* tensor = report->add_tensors();
    tensor->set_name("fc1.weight");
    tensor->set_num_elements(31360);
    tensor->set_kept(15680);
    tensor->set_pruned(15680);
    tensor->set_sparsity(0.5);
    return grpc::Status::OK;
  }

  // Five runs, run-5 (newest) to run-1; run-1 carries a label.
  grpc::Status ListRuns(grpc::ServerContext*, const v1::ListRunsRequest* request,
                        v1::ListRunsResponse* response) override {
    int start = 0;
    if (!request->page_token().empty() && !absl::SimpleAtoi(request->page_token(), &start)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token: bad");
    }
    const int size = request->page_size() == 0 ? 100 : request->page_size();
    int i = start;
    for (; i < 5 && i < start + size; ++i) {
      v1::Run* run = response->add_runs();
      run->set_run_id("run-" + std::to_string(5 - i));
      run->set_state(i == 0 ? v1::RUN_STATE_RUNNING : v1::RUN_STATE_SUCCEEDED);
    }
    if (i < 5) response->set_next_page_token(std::to_string(i));
    return grpc::Status::OK;
  }

  grpc::Status CancelRun(grpc::ServerContext*, const v1::CancelRunRequest* request, v1::Run* run) override {
    absl::MutexLock lock(&mutex_);
    if (request->run_id() != "run-1") return NotFound(request->run_id());
    last_cancel_reason_ = request->reason();
    if (final_state_ == v1::RUN_STATE_SUCCEEDED) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "run 'run-1' already SUCCEEDED");
    }
    *run = run_;
    run->set_state(v1::RUN_STATE_CANCELLED);
    run->set_error_message(request->reason());
    return grpc::Status::OK;
  }

 private:
  static grpc::Status NotFound(const std::string& id) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "run_id: no run '" + id + "'");
  }

  absl::Mutex mutex_;
  std::vector<v1::RunEvent> events_;
  v1::Run run_;
  v1::RunState final_state_ = v1::RUN_STATE_SUCCEEDED;
  int break_after_ = -1;
  bool hang_watch_ = false;
  int watch_calls_ = 0;
  std::string last_cancel_reason_;
  v1::CreateRunRequest last_create_;
};

// A pruner with three sessions, served one per page.
class FakePruner final : public v1::Pruner::Service {
 public:
  grpc::Status ListSessions(grpc::ServerContext*, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override {
    int index = 0;
    if (!request->page_token().empty()) index = request->page_token()[0] - '0';
    v1::SessionInfo* session = response->add_sessions();
    session->set_session_id("s-" + std::to_string(index));
    session->set_state(index == 0 ? v1::SESSION_STATE_COLLECTING : v1::SESSION_STATE_COMPLETED);
    session->set_label("run-" + std::to_string(index));
    if (index < 2) response->set_next_page_token(std::to_string(index + 1));
    return grpc::Status::OK;
  }
};

// A port nothing listens on: bound by a server that is then shut down.
int ClosedPort() {
  FakePruner pruner;
  common::ServerOptions options;
  options.host = "127.0.0.1";
  auto server = common::GrpcServer::Start(options, {{&pruner, "gcprune.v1.Pruner"}});
  if (!server.ok()) return 1;
  return (*server)->port();
}

class TrainerCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    common::ServerOptions options;
    options.host = "127.0.0.1";
    ASSERT_OK_AND_ASSIGN(server_, common::GrpcServer::Start(options, {{&trainer_, "gcprune.v1.Trainer"},
                                                                     {&pruner_, "gcprune.v1.Pruner"}}));
    address_ = server_->local_address();
  }

  // `command` with --trainer (or --pruner for sessions) pointing at the fake.
  Outcome Run(std::vector<std::string> args) {
    args.push_back(args[0] == "sessions" ? "--pruner=" + address_ : "--trainer=" + address_);
    return Cli(args);
  }

  FakeTrainer trainer_;
  FakePruner pruner_;
  std::unique_ptr<common::GrpcServer> server_;
  std::string address_;
};

TEST_F(TrainerCommandsTest, RunFollowsProgressThenPrintsTheReport) {
  const Outcome outcome = Run({"run", "--model=mlp", "--iterations=1", "--target_sparsity=0.5"});
  EXPECT_EQ(outcome.code, kExitOk) << outcome.err;
  EXPECT_THAT(outcome.err, HasSubstr("run run-1 created on " + address_ + " (RUNNING)\n"));
  EXPECT_THAT(outcome.err, HasSubstr("pre-train epoch 1/1: loss 0.6000"));
  EXPECT_THAT(outcome.err, HasSubstr("iter 1/1 prune: sparsity 50.00% (target 50.00%)"));
  EXPECT_THAT(outcome.err, HasSubstr("run run-1 SUCCEEDED: sparsity 50.00%"));
  EXPECT_THAT(outcome.err, Not(HasSubstr("\x1b[K")));  // not a terminal: plain lines
  EXPECT_THAT(outcome.out, StartsWith("Run run-1: SUCCEEDED\n"));
  EXPECT_THAT(outcome.out, HasSubstr("Final sparsity per tensor"));
  EXPECT_THAT(outcome.out, HasSubstr("fc1.weight"));
  const v1::CreateRunRequest request = trainer_.last_create();
  EXPECT_EQ(request.spec().model().preset(), "mlp");
  EXPECT_EQ(request.spec().method().schedule().iterations(), 1);
  EXPECT_THAT(request.request_id(), StartsWith("cli-"));
}

TEST_F(TrainerCommandsTest, RunJsonPrintsOnlyTheReportOnStdout) {
  const Outcome outcome = Run({"run", "--json", "--progress=none", "--request_id=fixed-1"});
  ASSERT_EQ(outcome.code, kExitOk) << outcome.err;
  EXPECT_EQ(outcome.err, "");
  v1::RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(outcome.out, &report).ok()) << outcome.out;
  EXPECT_EQ(report.run_id(), "run-1");
  EXPECT_EQ(report.tensors(0).sparsity(), 0.5);
  EXPECT_EQ(trainer_.last_create().request_id(), "fixed-1");
}

TEST_F(TrainerCommandsTest, FailedOrCancelledRunExitsOneWithTheReport) {
  trainer_.SetOutcome(v1::RUN_STATE_FAILED, "FAILED_PRECONDITION: pruner unreachable for 60 s (strict)");
  const Outcome failed = Run({"run"});
  EXPECT_EQ(failed.code, kExitNegative);
  EXPECT_THAT(failed.err, HasSubstr("run run-1 FAILED: FAILED_PRECONDITION: pruner unreachable"));
  EXPECT_THAT(failed.out, StartsWith("Run run-1: FAILED"));
  trainer_.SetOutcome(v1::RUN_STATE_CANCELLED, "cancelled");
  EXPECT_EQ(Run({"run", "--progress=none"}).code, kExitNegative);
}

TEST_F(TrainerCommandsTest, RejectedSpecIsAUsageError) {
  const Outcome outcome = Run({"run", "--label=reject"});
  EXPECT_EQ(outcome.code, kExitUsage);
  EXPECT_EQ(outcome.err, "gcprune run: the trainer at " + address_ +
                             " rejected the run: spec.label: 'reject' is not allowed\n");
  EXPECT_EQ(trainer_.watch_calls(), 0);
}

TEST_F(TrainerCommandsTest, DetachAndDryRun) {
  const Outcome detached = Run({"run", "--detach"});
  EXPECT_EQ(detached.code, kExitOk);
  EXPECT_EQ(detached.out, "run-1\n");
  EXPECT_EQ(trainer_.watch_calls(), 0);

  // --dry_run never dials: an unreachable trainer does not matter.
  const Outcome dry = Cli({"run", "--dry_run", "--trainer=127.0.0.1:1", "--method=random"});
  EXPECT_EQ(dry.code, kExitOk) << dry.err;
  v1::RunSpec spec;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(dry.out, &spec).ok()) << dry.out;
  EXPECT_EQ(spec.method().method(), v1::METHOD_RANDOM);
}

TEST_F(TrainerCommandsTest, WatchResumesABrokenStreamWithoutRepeats) {
  trainer_.BreakFirstWatchAfter(2);
  const Outcome outcome = Run({"watch", "run-1", "--report"});
  EXPECT_EQ(outcome.code, kExitOk) << outcome.err;
  EXPECT_EQ(trainer_.watch_calls(), 2);
  EXPECT_EQ(outcome.err,
            "pre-train epoch 1/1: loss 0.6000, train acc 0.00%, test acc 80.00%, 0.0 s\n"
            "iter 1/1 prune: sparsity 50.00% (target 50.00%), test acc 79.00% right after pruning\n"
            "run run-1 SUCCEEDED: sparsity 50.00%\n");
  EXPECT_THAT(outcome.out, StartsWith("Run run-1: SUCCEEDED"));
}

// Sends SIGINT to this process once the command is following the run (its signal watcher is installed
// by then), as Ctrl-C in a terminal would.
std::thread InterruptWhenWatching(FakeTrainer* trainer) {
  return std::thread([trainer] {
    while (trainer->watch_calls() == 0) absl::SleepFor(absl::Milliseconds(5));
    absl::SleepFor(absl::Milliseconds(100));
    kill(getpid(), SIGINT);
  });
}

TEST_F(TrainerCommandsTest, CtrlCCancelsTheRunUnlessKept) {
  trainer_.SetOutcome(v1::RUN_STATE_CANCELLED, "");
  trainer_.HangWatch();
  std::thread interrupter = InterruptWhenWatching(&trainer_);
  const Outcome cancelled = Run({"run"});
  interrupter.join();
  EXPECT_EQ(cancelled.code, kExitInterrupted);
  EXPECT_THAT(cancelled.err, HasSubstr("gcprune run: interrupted; cancelled run run-1\n"));
  EXPECT_EQ(trainer_.last_cancel_reason(), "interrupted from gcprune run");
  EXPECT_EQ(cancelled.out, "");
}

TEST_F(TrainerCommandsTest, CtrlCLeavesTheRunWithKeepOnInterruptAndInWatch) {
  trainer_.HangWatch();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", "--keep_on_interrupt"}, std::vector<std::string>{"watch", "run-1"}}) {
    SCOPED_TRACE(args[0]);
    const int calls = trainer_.watch_calls();
    std::thread interrupter([this, calls] {
      while (trainer_.watch_calls() == calls) absl::SleepFor(absl::Milliseconds(5));
      absl::SleepFor(absl::Milliseconds(100));
      kill(getpid(), SIGINT);
    });
    const Outcome kept = Run(args);
    interrupter.join();
    EXPECT_EQ(kept.code, kExitInterrupted);
    EXPECT_THAT(kept.err, HasSubstr("interrupted; run run-1 goes on on the trainer at " + address_));
    EXPECT_THAT(kept.err, HasSubstr("`gcprune watch run-1`"));
    EXPECT_EQ(trainer_.last_cancel_reason(), "");
  }
}

TEST_F(TrainerCommandsTest, WatchAfterSkipsHistory) {
  const Outcome outcome = Run({"watch", "run-1", "--after=3"});
  EXPECT_EQ(outcome.code, kExitOk) << outcome.err;
  EXPECT_EQ(outcome.err, "run run-1 SUCCEEDED: sparsity 50.00%\n");
  EXPECT_EQ(outcome.out, "");
}

TEST_F(TrainerCommandsTest, UnknownRunIsAnRpcErrorNamingTheRun) {
  for (const char* command : {"watch", "report", "cancel"}) {
    SCOPED_TRACE(command);
    const Outcome outcome = Run({command, "run-404"});
    EXPECT_EQ(outcome.code, kExitRpcError);
    EXPECT_THAT(outcome.err, HasSubstr("'run-404'"));
    EXPECT_THAT(outcome.err, HasSubstr("answered NOT_FOUND: run_id: no run 'run-404'"));
    EXPECT_THAT(outcome.err, HasSubstr("hint: `gcprune runs`"));
  }
}

TEST_F(TrainerCommandsTest, ReportTextAndJson) {
  const Outcome text = Run({"report", "run-1"});
  EXPECT_EQ(text.code, kExitOk) << text.err;
  EXPECT_THAT(text.out, HasSubstr("Prune iterations (test accuracy and loss right after pruning"));
  const Outcome json = Run({"report", "run-1", "--json"});
  ASSERT_EQ(json.code, kExitOk) << json.err;
  v1::RunReport report;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &report).ok());
  EXPECT_EQ(report.prunable_weights(), 32360);
}

TEST_F(TrainerCommandsTest, ReportSweepOfOneRunSaysItIsNoCurve) {
  const Outcome sweep = Run({"report", "--sweep", "run-1", "run-1"});
  ASSERT_EQ(sweep.code, kExitOk) << sweep.err;
  EXPECT_THAT(sweep.out, StartsWith("Phase shift of a sweep of 1 run "));
  EXPECT_THAT(sweep.out, HasSubstr("Reference (dense) accuracy: per method, the pre-training test accuracy"));
  EXPECT_THAT(sweep.out, HasSubstr("causal-v2: 1 run on the curve, reference 80.00%\n"));
  EXPECT_THAT(sweep.out, HasSubstr("  50.00%    50.00%       79.00%           -  run-1\n"));
  EXPECT_THAT(sweep.out, HasSubstr("note: run run-1 is RUNNING; its last completed iteration (1 of 1) counts\n"));
  EXPECT_THAT(sweep.out, HasSubstr("phase shift (drop-from-reference, 5.0 points below 80.00%): needs runs at two "
                                   "or more sparsities, got 1\n"));
  const Outcome unknown = Run({"report", "--sweep", "run-1", "run-404"});
  EXPECT_EQ(unknown.code, kExitRpcError);
  EXPECT_THAT(unknown.err, HasSubstr("gcprune report: looking up run 'run-404' failed: the trainer at " + address_ +
                                     " answered NOT_FOUND"));
  const Outcome filtered = Run({"report", "--sweep", "run-1", "--label_prefix=sweep-"});
  EXPECT_EQ(filtered.code, kExitRpcError);
  EXPECT_EQ(filtered.err,
            "gcprune report: no run among the 1 given has a label starting with 'sweep-'; nothing to analyse\n");
}

TEST_F(TrainerCommandsTest, RunsFollowsPagesUpToTheLimit) {
  const Outcome all = Run({"runs"});
  EXPECT_EQ(all.code, kExitOk) << all.err;
  EXPECT_THAT(all.out, StartsWith("RUN    STATE"));
  for (int i = 1; i <= 5; ++i) EXPECT_THAT(all.out, HasSubstr("run-" + std::to_string(i)));
  const Outcome limited = Run({"runs", "--limit=2", "--json"});
  ASSERT_EQ(limited.code, kExitOk) << limited.err;
  v1::ListRunsResponse runs;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(limited.out, &runs).ok());
  ASSERT_EQ(runs.runs_size(), 2);
  EXPECT_EQ(runs.runs(0).run_id(), "run-5");
  const Outcome bad_state = Run({"runs", "--state=paused"});
  EXPECT_EQ(bad_state.code, kExitUsage);
  EXPECT_THAT(bad_state.err, HasSubstr("--state: unknown value 'paused'"));
}

TEST_F(TrainerCommandsTest, CancelPrintsTheRunOrWhyNot) {
  trainer_.SetOutcome(v1::RUN_STATE_CANCELLED, "");
  const Outcome cancelled = Run({"cancel", "run-1", "--reason=enough"});
  EXPECT_EQ(cancelled.code, kExitOk) << cancelled.err;
  EXPECT_EQ(cancelled.out, "run-1: CANCELLED (sparsity 0.00%): enough\n");
  trainer_.SetOutcome(v1::RUN_STATE_SUCCEEDED, "");
  const Outcome finished = Run({"cancel", "run-1"});
  EXPECT_EQ(finished.code, kExitRpcError);
  EXPECT_THAT(finished.err, HasSubstr("answered FAILED_PRECONDITION: run 'run-1' already SUCCEEDED"));
}

TEST_F(TrainerCommandsTest, SessionsListsEveryPage) {
  const Outcome table = Run({"sessions"});
  EXPECT_EQ(table.code, kExitOk) << table.err;
  EXPECT_THAT(table.out, StartsWith("SESSION  STATE"));
  EXPECT_THAT(table.out, HasSubstr("s-0      COLLECTING"));
  EXPECT_THAT(table.out, HasSubstr("s-2      COMPLETED"));
  const Outcome json = Run({"sessions", "--json", "--limit=2"});
  ASSERT_EQ(json.code, kExitOk) << json.err;
  v1::ListSessionsResponse sessions;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &sessions).ok());
  EXPECT_EQ(sessions.sessions_size(), 2);
}

TEST_F(TrainerCommandsTest, UnreachableServersExitThreeWithAHint) {
  const std::string closed = "127.0.0.1:" + std::to_string(ClosedPort());
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"run", "--trainer=" + closed}, "gcprune run: creating the run failed: cannot reach the trainer at "},
      {{"watch", "run-1", "--trainer=" + closed}, "gcprune watch: looking up run 'run-1' failed: cannot reach"},
      {{"report", "run-1", "--trainer=" + closed}, "gcprune report: the report of run 'run-1' failed: cannot reach"},
      {{"runs", "--trainer=" + closed}, "gcprune runs: listing runs failed: cannot reach the trainer"},
      {{"cancel", "run-1", "--trainer=" + closed}, "gcprune cancel: cancelling run 'run-1' failed: cannot reach"},
      {{"report", "--sweep", "--trainer=" + closed}, "gcprune report: listing runs failed: cannot reach the trainer"},
      {{"report", "--sweep", "run-1", "--trainer=" + closed},
       "gcprune report: looking up run 'run-1' failed: cannot reach the trainer"},
      {{"sessions", "--pruner=" + closed}, "gcprune sessions: listing sessions failed: cannot reach the pruner"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args[0]);
    const Outcome outcome = Cli(c.args);
    EXPECT_EQ(outcome.code, kExitUnreachable);
    EXPECT_THAT(outcome.err, HasSubstr(c.message));
    EXPECT_THAT(outcome.err, HasSubstr(closed + " (UNAVAILABLE: "));
    EXPECT_THAT(outcome.err, HasSubstr("hint: is gcprune-"));
  }
}

TEST_F(TrainerCommandsTest, WrongServerIsNamed) {
  // A server without the Trainer service answers UNIMPLEMENTED.
  FakePruner pruner_only;
  common::ServerOptions options;
  options.host = "127.0.0.1";
  ASSERT_OK_AND_ASSIGN(auto server, common::GrpcServer::Start(options, {{&pruner_only, "gcprune.v1.Pruner"}}));
  const Outcome outcome = Cli({"runs", "--trainer=" + server->local_address()});
  EXPECT_EQ(outcome.code, kExitRpcError);
  EXPECT_THAT(outcome.err, HasSubstr("UNIMPLEMENTED"));
  EXPECT_THAT(outcome.err, HasSubstr("does not serve the trainer API"));
}

TEST_F(TrainerCommandsTest, MissingTokenIsExplained) {
  FakeTrainer trainer;
  common::ServerOptions options;
  options.host = "127.0.0.1";
  options.security.auth_token = "cli-test-token";
  ASSERT_OK_AND_ASSIGN(auto server, common::GrpcServer::Start(options, {{&trainer, "gcprune.v1.Trainer"}}));
  const Outcome anonymous = Cli({"runs", "--trainer=" + server->local_address()});
  EXPECT_EQ(anonymous.code, kExitRpcError);
  EXPECT_THAT(anonymous.err, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(anonymous.err, HasSubstr("hint: the server requires a token"));
  const Outcome with_token = Cli({"runs", "--trainer=" + server->local_address(), "--token=cli-test-token"});
  EXPECT_EQ(with_token.code, kExitOk) << with_token.err;
}

TEST_F(TrainerCommandsTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"run", "extra"},
      {"run", "--method=causal-v9"},
      {"run", "--progress=fancy"},
      {"run", "--timeout=0"},
      {"run", "--bogus"},
      {"watch"},
      {"watch", "a", "b"},
      {"watch", "run-1", "--after=-1"},
      {"report"},
      {"runs", "extra"},
      {"runs", "--limit=-1"},
      {"cancel"},
      {"sessions", "--state=asleep"},
      {"sessions", "extra"},
      {"report", "run-1", "--tls_ca_file=/nonexistent/ca.pem"},
      {"report", "run-1", "run-2"},
      {"report", "run-1", "--rule=drop"},
      {"report", "--max_drop=0.1"},
      {"report", "--sweep", "--rule=median"},
      {"report", "--sweep", "--max_drop=5"},
      {"report", "--sweep", "--reference=80.7"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(args[0] + (args.size() > 1 ? " " + args[1] : ""));
    const Outcome outcome = Cli(args);
    EXPECT_EQ(outcome.code, kExitUsage) << outcome.err;
    EXPECT_THAT(outcome.err, StartsWith("gcprune " + args[0] + ": "));
  }
  for (const char* command : {"run", "watch", "report", "runs", "cancel", "sessions"}) {
    const Outcome help = Cli({command, "--help"});
    EXPECT_EQ(help.code, kExitOk);
    EXPECT_THAT(help.out, StartsWith(std::string("usage: gcprune ") + command));
    EXPECT_THAT(help.out, HasSubstr("Exit codes"));
  }
}

}  // namespace
}  // namespace gcprune::cli
