// Integration tests of the trainer when the pruner fails: the real gcprune-pruner is killed (SIGKILL)
// during a collection and restarted on the same port and state directory, and the run must end with the
// masks of an uninterrupted run; a pruner that is down for the whole run leaves a fail-open run
// unpruned but successful (with events saying so) and fails a strict run with a clear error.
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/service/service_test_util.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using testing::ChildProcess;
using testing::InProcessTrainer;
using testing::ReferenceRun;
using testing::SmallRunSpec;
using testing::StartPruner;
using testing::TempDir;
using testing::Watched;
using testing::WatchToEnd;

std::unique_ptr<InProcessTrainer> StartTrainer() {
  auto trainer = InProcessTrainer::Start(testing::TestManagerOptions());
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return trainer.ok() ? *std::move(trainer) : nullptr;
}

std::string Create(v1::Trainer::Stub& stub, const v1::RunSpec& spec) {
  grpc::ClientContext context;
  v1::CreateRunRequest request;
  *request.mutable_spec() = spec;
  v1::Run run;
  const grpc::Status status = stub.CreateRun(&context, request, &run);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return run.run_id();
}

// A port nothing listens on.
int ClosedPort() {
  TempDir dir;
  auto pruner = StartPruner(dir.path());
  if (!pruner.ok()) return 1;
  const int port = (*pruner)->port();
  (*pruner)->Kill();
  return port;
}

TEST(PrunerFailureTest, RunSurvivesThePrunerBeingKilledMidCollection) {
  TempDir state;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ChildProcess> pruner, StartPruner(state.path()));
  const int port = pruner->port();
  const std::string address = pruner->address();
  auto trainer = StartTrainer();
  ASSERT_NE(trainer, nullptr);
  auto stub = trainer->NewStub();
  // 40 collection steps per iteration, so the kill lands while steps are streaming.
  v1::RunSpec spec = SmallRunSpec(v1::METHOD_CAUSAL_V2, address, 2, 0.5, 10240);
  spec.mutable_pretrain()->set_epochs(0);
  spec.mutable_train()->set_epochs(0);
  spec.mutable_finetune()->set_epochs(0);
  const std::string run_id = Create(*stub, spec);

  std::atomic<bool> killed{false};
  bool connected = false;
  std::thread restarter;
  const Watched watched = WatchToEnd(*stub, run_id, 0, absl::Seconds(120), [&](const v1::RunEvent& event) {
    connected |= event.has_pruner() && event.pruner().state() == v1::PRUNER_STATE_CONNECTED;
    const bool collecting = event.has_step_progress() && event.step_progress().phase() == v1::PHASE_COLLECT &&
                            event.step_progress().iteration() == 1 && event.step_progress().batch() >= 5;
    if (connected && collecting && !killed.exchange(true)) {
      pruner->Signal(SIGKILL);
      restarter = std::thread([&] {
        pruner->Wait();
        absl::SleepFor(absl::Milliseconds(500));
        auto restarted = StartPruner(state.path(), port);
        ASSERT_TRUE(restarted.ok()) << restarted.status();
        pruner = *std::move(restarted);
      });
    }
  });
  if (restarter.joinable()) restarter.join();
  ASSERT_TRUE(killed.load()) << "the collection ended before the pruner could be killed";
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  ASSERT_EQ(watched.finished.state(), v1::RUN_STATE_SUCCEEDED) << watched.finished.message();
  EXPECT_TRUE(watched.Has([](const v1::RunEvent& e) {
    return e.has_pruner() && e.pruner().state() == v1::PRUNER_STATE_DISCONNECTED;
  }));

  grpc::ClientContext context;
  v1::GetRunReportRequest request;
  request.set_run_id(run_id);
  v1::RunReport report;
  ASSERT_TRUE(stub->GetRunReport(&context, request, &report).ok());
  EXPECT_GE(report.pruner_reconnects(), 1);
  ASSERT_EQ(report.iterations_size(), 2);
  ASSERT_OK_AND_ASSIGN(ReferenceRun uninterrupted, testing::RunInProcess(spec));
  for (int j = 1; j <= 2; ++j) {
    EXPECT_FALSE(report.iterations(j - 1).skipped());
    ASSERT_OK_AND_ASSIGN(auto masks, testing::FetchMasks(pruner->address(), report.pruner_session_id(), j));
    EXPECT_EQ(masks, uninterrupted.masks[j - 1]) << "iteration " << j;
  }
}

TEST(PrunerFailureTest, FailOpenRunSucceedsUnprunedWhenThePrunerIsDownThroughout) {
  auto trainer = StartTrainer();
  ASSERT_NE(trainer, nullptr);
  auto stub = trainer->NewStub();
  v1::RunSpec spec = SmallRunSpec(v1::METHOD_CAUSAL_V2, "127.0.0.1:" + std::to_string(ClosedPort()), 2, 0.5);
  spec.mutable_pruner()->set_grace_period_seconds(1.0);
  const std::string run_id = Create(*stub, spec);
  const Watched watched = WatchToEnd(*stub, run_id);
  ASSERT_TRUE(watched.status.ok());
  ASSERT_EQ(watched.finished.state(), v1::RUN_STATE_SUCCEEDED) << watched.finished.message();
  EXPECT_EQ(watched.finished.sparsity(), 0.0);
  int skipped = 0;
  for (const v1::RunEvent& event : watched.events) skipped += event.has_masks_applied() && event.masks_applied().skipped();
  EXPECT_EQ(skipped, 2);
  EXPECT_TRUE(watched.Has([](const v1::RunEvent& e) {
    return e.has_pruner() && e.pruner().state() == v1::PRUNER_STATE_FAILED &&
           absl::StrContains(e.pruner().message(), "unreachable") &&
           absl::StrContains(e.pruner().message(), "keeping the previous masks (fail-open)");
  }));
  grpc::ClientContext context;
  v1::GetRunReportRequest request;
  request.set_run_id(run_id);
  v1::RunReport report;
  ASSERT_TRUE(stub->GetRunReport(&context, request, &report).ok());
  ASSERT_EQ(report.iterations_size(), 2);
  EXPECT_TRUE(report.iterations(0).skipped());
  EXPECT_TRUE(report.iterations(1).skipped());
  EXPECT_EQ(report.finetune().epochs(), 1);  // training went on
}

TEST(PrunerFailureTest, StrictRunFailsWithAClearErrorWhenThePrunerIsDown) {
  auto trainer = StartTrainer();
  ASSERT_NE(trainer, nullptr);
  auto stub = trainer->NewStub();
  const std::string address = "127.0.0.1:" + std::to_string(ClosedPort());
  v1::RunSpec spec = SmallRunSpec(v1::METHOD_CAUSAL_V2, address, 2, 0.5);
  spec.mutable_pruner()->set_failure_policy(v1::FAILURE_POLICY_STRICT);
  spec.mutable_pruner()->set_grace_period_seconds(1.0);
  const std::string run_id = Create(*stub, spec);
  ASSERT_OK_AND_ASSIGN(v1::Run run, testing::WaitForRun(*stub, run_id));
  EXPECT_EQ(run.state(), v1::RUN_STATE_FAILED);
  EXPECT_THAT(run.error_message(), ::testing::HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(run.error_message(), ::testing::HasSubstr(address));
  EXPECT_THAT(run.error_message(), ::testing::HasSubstr("strict policy"));
  EXPECT_EQ(run.pruner_state(), v1::PRUNER_STATE_FAILED);
}

}  // namespace
}  // namespace gcprune::trainer
