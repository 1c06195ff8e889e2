// Integration tests of the Trainer service over real servers on 127.0.0.1: the trainer service in
// process and the real gcprune-pruner binary. Short MLP runs on a Fashion-MNIST subset through both
// services for causal-v2, causal-v1, magnitude and random, whose masks must equal the same run's with an
// in-process pruning session; watching, listing, cancelling, idempotent creation, malformed requests and
// two concurrent runs against one pruner.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"
#include "pruner_service/causal/schedule.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/service/service_test_util.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using testing::ChildProcess;
using testing::InProcessTrainer;
using testing::ReferenceRun;
using testing::RunInProcess;
using testing::SmallRunSpec;
using testing::StartPruner;
using testing::TempDir;
using testing::Watched;
using testing::WatchToEnd;

class TrainerServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_dir_ = new TempDir();
    auto pruner = StartPruner(state_dir_->path());
    ASSERT_TRUE(pruner.ok()) << pruner.status();
    pruner_ = pruner->release();
  }
  static void TearDownTestSuite() {
    delete pruner_;
    pruner_ = nullptr;
    delete state_dir_;
  }
  void SetUp() override { StartTrainer(1); }

  void StartTrainer(int concurrent_runs) {
    trainer_.reset();
    auto trainer = InProcessTrainer::Start(testing::TestManagerOptions(concurrent_runs));
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    trainer_ = *std::move(trainer);
    stub_ = trainer_->NewStub();
  }

  static std::string PrunerAddress() { return pruner_->address(); }

  grpc::Status Create(const v1::RunSpec& spec, v1::Run* run, const std::string& request_id = "") {
    grpc::ClientContext context;
    v1::CreateRunRequest request;
    *request.mutable_spec() = spec;
    request.set_request_id(request_id);
    return stub_->CreateRun(&context, request, run);
  }

  v1::RunReport Report(const std::string& run_id) {
    grpc::ClientContext context;
    v1::GetRunReportRequest request;
    request.set_run_id(run_id);
    v1::RunReport report;
    EXPECT_TRUE(stub_->GetRunReport(&context, request, &report).ok());
    return report;
  }

  // Runs `spec` through both services and checks it against the in-process reference.
  void RunAndCompare(const v1::RunSpec& spec) {
    v1::Run run;
    ASSERT_TRUE(Create(spec, &run).ok());
    EXPECT_EQ(run.state(), v1::RUN_STATE_QUEUED);
    const Watched watched = WatchToEnd(*stub_, run.run_id());
    ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
    ASSERT_EQ(watched.finished.state(), v1::RUN_STATE_SUCCEEDED) << watched.finished.message();
    const v1::RunReport report = Report(run.run_id());
    ASSERT_FALSE(report.pruner_session_id().empty());
    ASSERT_OK_AND_ASSIGN(ReferenceRun reference, RunInProcess(spec));
    ASSERT_EQ(report.iterations_size(), spec.method().schedule().iterations());
    for (int j = 1; j <= report.iterations_size(); ++j) {
      SCOPED_TRACE(j);
      ASSERT_OK_AND_ASSIGN(auto masks, testing::FetchMasks(PrunerAddress(), report.pruner_session_id(), j));
      EXPECT_EQ(masks, reference.masks[j - 1]);  // the services add no drift
      const v1::IterationResult& result = report.iterations(j - 1);
      EXPECT_FALSE(result.skipped());
      EXPECT_DOUBLE_EQ(result.achieved_sparsity(), reference.report.iterations(j - 1).achieved_sparsity());
      EXPECT_DOUBLE_EQ(result.test_accuracy_after_prune(),
                       reference.report.iterations(j - 1).test_accuracy_after_prune());
    }
    EXPECT_DOUBLE_EQ(report.finetune().last_test_accuracy(), reference.report.finetune().last_test_accuracy());
    last_report_ = report;
  }

  static TempDir* state_dir_;
  static ChildProcess* pruner_;
  std::unique_ptr<InProcessTrainer> trainer_;
  std::unique_ptr<v1::Trainer::Stub> stub_;
  v1::RunReport last_report_;
};

TempDir* TrainerServiceTest::state_dir_ = nullptr;
ChildProcess* TrainerServiceTest::pruner_ = nullptr;

int64_t ScheduledCount(pruner::ScheduleKind kind, double target, int iterations, int j, int64_t n) {
  auto schedule = pruner::Schedule::Create(kind, target, iterations);
  EXPECT_TRUE(schedule.ok());
  return schedule->TargetPrunedCount(j, n, 0);
}

constexpr int64_t kMlpWeights = 32360;

TEST_F(TrainerServiceTest, CausalV2RunMatchesTheInProcessSessionAndTheSchedule) {
  RunAndCompare(SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress(), 2, 0.5));
  for (int j = 1; j <= 2; ++j) {
    const v1::IterationResult& result = last_report_.iterations(j - 1);
    EXPECT_EQ(result.num_steps(), 8);  // 2048 examples, batch 256
    EXPECT_DOUBLE_EQ(result.achieved_sparsity(),
                     static_cast<double>(ScheduledCount(pruner::ScheduleKind::kCubic, 0.5, 2, j, kMlpWeights)) /
                         kMlpWeights);
  }
  EXPECT_EQ(last_report_.steps_sent(), 16);
  EXPECT_EQ(last_report_.pruner_reconnects(), 0);
}

TEST_F(TrainerServiceTest, CausalV1RunMatchesTheInProcessSession) {
  v1::RunSpec spec = SmallRunSpec(v1::METHOD_CAUSAL_V1, PrunerAddress(), 2);
  spec.mutable_collection()->set_epochs(2);  // 2 x 4 steps of 512
  RunAndCompare(spec);
  EXPECT_EQ(last_report_.iterations(0).num_steps(), 8);
  EXPECT_TRUE(std::isnan(last_report_.iterations(0).target_sparsity()));
}

TEST_F(TrainerServiceTest, MagnitudeRunMatchesTheInProcessSessionAndTheSchedule) {
  RunAndCompare(SmallRunSpec(v1::METHOD_MAGNITUDE_GLOBAL, PrunerAddress(), 2, 0.6));
  for (int j = 1; j <= 2; ++j) {
    EXPECT_DOUBLE_EQ(last_report_.iterations(j - 1).achieved_sparsity(),
                     static_cast<double>(ScheduledCount(pruner::ScheduleKind::kGeometric, 0.6, 2, j, kMlpWeights)) /
                         kMlpWeights);
    EXPECT_EQ(last_report_.iterations(j - 1).num_steps(), 0);
  }
}

TEST_F(TrainerServiceTest, RandomRunMatchesTheInProcessSessionAndTheSchedule) {
  RunAndCompare(SmallRunSpec(v1::METHOD_RANDOM, PrunerAddress(), 2, 0.6));
  EXPECT_DOUBLE_EQ(last_report_.iterations(1).achieved_sparsity(),
                   static_cast<double>(ScheduledCount(pruner::ScheduleKind::kGeometric, 0.6, 2, 2, kMlpWeights)) /
                       kMlpWeights);
}

TEST_F(TrainerServiceTest, ARunWithAnIdenticalPretrainingStartsFromItAndEndsTheSame) {
  RunAndCompare(SmallRunSpec(v1::METHOD_MAGNITUDE_GLOBAL, PrunerAddress(), 2, 0.6));
  const std::string first = last_report_.run_id();
  EXPECT_FALSE(last_report_.has_pretrain_reused());
  // Another method, same model, data, pre-training, seed and loss: the trainer reuses the pre-training, and
  // the run still equals the in-process reference that pre-trained itself.
  RunAndCompare(SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress(), 2, 0.5));
  ASSERT_TRUE(last_report_.has_pretrain_reused());
  EXPECT_EQ(last_report_.pretrain_reused().source_run_id(), first);
  v1::RunSpec fresh = SmallRunSpec(v1::METHOD_RANDOM, PrunerAddress(), 2, 0.6);
  fresh.set_fresh_pretraining(true);
  RunAndCompare(fresh);
  EXPECT_FALSE(last_report_.has_pretrain_reused());
}

TEST_F(TrainerServiceTest, WatchersReplayFromASequenceAndSeeTheWholeRun) {
  v1::Run run;
  ASSERT_TRUE(Create(SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress(), 1, 0.3), &run).ok());
  // Two watchers at once; the second starts late and replays.
  Watched live;
  std::thread watcher([&] { live = WatchToEnd(*stub_, run.run_id()); });
  ASSERT_OK(testing::WaitForRun(*stub_, run.run_id()).status());
  watcher.join();
  ASSERT_TRUE(live.status.ok());
  ASSERT_FALSE(live.events.empty());
  for (size_t i = 0; i < live.events.size(); ++i) EXPECT_EQ(live.events[i].sequence(), static_cast<int64_t>(i + 1));
  EXPECT_TRUE(live.events.back().has_finished());
  EXPECT_TRUE(live.Has([](const v1::RunEvent& e) { return e.has_step_progress(); }));
  EXPECT_TRUE(live.Has([](const v1::RunEvent& e) { return e.has_epoch_finished(); }));
  EXPECT_TRUE(live.Has([](const v1::RunEvent& e) {
    return e.has_pruner() && e.pruner().state() == v1::PRUNER_STATE_CONNECTED;
  }));
  EXPECT_TRUE(live.Has([](const v1::RunEvent& e) { return e.has_masks_applied() && !e.masks_applied().skipped(); }));
  const Watched replay = WatchToEnd(*stub_, run.run_id(), /*after_sequence=*/5);
  ASSERT_TRUE(replay.status.ok());
  ASSERT_EQ(replay.events.size(), live.events.size() - 5);
  EXPECT_EQ(replay.events.front().sequence(), 6);
  const v1::Run finished = *testing::WaitForRun(*stub_, run.run_id());
  EXPECT_EQ(finished.state(), v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(finished.phase(), v1::PHASE_DONE);
  EXPECT_EQ(finished.pruner_state(), v1::PRUNER_STATE_CONNECTED);
  EXPECT_FALSE(finished.pruner_session_id().empty());
  EXPECT_GT(finished.finished_unix_ms(), 0);
}

TEST_F(TrainerServiceTest, AWatcherThatFallsBehindSeesTheGapInSequences) {
  // A log of 8 events: a watcher that starts after the run lost the older ones, and the jump in sequence
  // numbers says so.
  RunManagerOptions options = testing::TestManagerOptions();
  options.event_log_capacity = 8;
  trainer_.reset();
  auto trainer = InProcessTrainer::Start(options);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  trainer_ = *std::move(trainer);
  stub_ = trainer_->NewStub();
  v1::Run run;
  ASSERT_TRUE(Create(SmallRunSpec(v1::METHOD_NONE, "", 2, 0.5, 512), &run).ok());
  ASSERT_OK(testing::WaitForRun(*stub_, run.run_id()).status());
  const Watched late = WatchToEnd(*stub_, run.run_id());
  ASSERT_TRUE(late.status.ok());
  ASSERT_EQ(late.events.size(), 8u);
  EXPECT_GT(late.events.front().sequence(), 1);
  EXPECT_TRUE(late.events.back().has_finished());
  for (size_t i = 1; i < late.events.size(); ++i) {
    EXPECT_EQ(late.events[i].sequence(), late.events[i - 1].sequence() + 1);
  }
}

TEST_F(TrainerServiceTest, MalformedCreateRunRequestsAreInvalidArgumentAndTheServerKeepsServing) {
  struct Case {
    const char* name;
    std::function<void(v1::CreateRunRequest*)> mutate;
    const char* field;
  };
  const Case cases[] = {
      {"no model", [](v1::CreateRunRequest* r) { r->mutable_spec()->clear_model(); }, "spec.model"},
      {"bad preset", [](v1::CreateRunRequest* r) { r->mutable_spec()->mutable_model()->set_preset("vgg"); },
       "spec.model.preset"},
      {"bad data", [](v1::CreateRunRequest* r) { r->mutable_spec()->mutable_data()->set_name("imagenet"); },
       "spec.data.name"},
      {"bad batch", [](v1::CreateRunRequest* r) { r->mutable_spec()->mutable_pretrain()->set_batch_size(0); },
       "spec.pretrain.batch_size"},
      {"bad target",
       [](v1::CreateRunRequest* r) {
         r->mutable_spec()->mutable_method()->mutable_schedule()->set_target_sparsity(-0.5);
       },
       "spec.method.schedule.target_sparsity"},
      {"bad iterations",
       [](v1::CreateRunRequest* r) { r->mutable_spec()->mutable_method()->mutable_schedule()->set_iterations(0); },
       "spec.method.schedule.iterations"},
      {"no pruner", [](v1::CreateRunRequest* r) { r->mutable_spec()->mutable_pruner()->clear_address(); },
       "spec.pruner.address"},
      {"bad grace",
       [](v1::CreateRunRequest* r) { r->mutable_spec()->mutable_pruner()->set_grace_period_seconds(-3); },
       "spec.pruner.grace_period_seconds"},
      {"long request id", [](v1::CreateRunRequest* r) { r->set_request_id(std::string(200, 'r')); }, "request_id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::CreateRunRequest request;
    *request.mutable_spec() = SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress());
    c.mutate(&request);
    grpc::ClientContext context;
    v1::Run run;
    const grpc::Status status = stub_->CreateRun(&context, request, &run);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr(c.field));
  }
  {
    v1::CreateRunRequest request;
    *request.mutable_spec() = SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress());
    request.mutable_spec()->mutable_data()->set_directory("/nonexistent/fmnist");
    grpc::ClientContext context;
    v1::Run run;
    EXPECT_EQ(stub_->CreateRun(&context, request, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // Still serving: health, listing, and a valid run.
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(trainer_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext health_context;
  grpc::health::v1::HealthCheckRequest health_request;
  health_request.set_service("gcprune.v1.Trainer");
  grpc::health::v1::HealthCheckResponse health_response;
  ASSERT_TRUE(health->Check(&health_context, health_request, &health_response).ok());
  EXPECT_EQ(health_response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::ClientContext list_context;
  v1::ListRunsResponse listed;
  ASSERT_TRUE(stub_->ListRuns(&list_context, v1::ListRunsRequest(), &listed).ok());
  EXPECT_EQ(listed.runs_size(), 0);
  v1::RunSpec none = SmallRunSpec(v1::METHOD_NONE, "", 1);
  v1::Run run;
  ASSERT_TRUE(Create(none, &run).ok());
  ASSERT_OK_AND_ASSIGN(v1::Run done, testing::WaitForRun(*stub_, run.run_id()));
  EXPECT_EQ(done.state(), v1::RUN_STATE_SUCCEEDED);
  EXPECT_EQ(done.pruner_state(), v1::PRUNER_STATE_DISABLED);
  EXPECT_EQ(done.sparsity(), 0.0);
}

TEST_F(TrainerServiceTest, UnknownRunsAreNotFound) {
  grpc::ClientContext get_context;
  v1::GetRunRequest get;
  get.set_run_id("run-nope");
  v1::Run run;
  EXPECT_EQ(stub_->GetRun(&get_context, get, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext report_context;
  v1::GetRunReportRequest report_request;
  report_request.set_run_id("run-nope");
  v1::RunReport report;
  EXPECT_EQ(stub_->GetRunReport(&report_context, report_request, &report).error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext cancel_context;
  v1::CancelRunRequest cancel;
  cancel.set_run_id("run-nope");
  EXPECT_EQ(stub_->CancelRun(&cancel_context, cancel, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(WatchToEnd(*stub_, "run-nope").status.error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext empty_context;
  get.clear_run_id();
  EXPECT_EQ(stub_->GetRun(&empty_context, get, &run).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(WatchToEnd(*stub_, "x", -1).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(TrainerServiceTest, CreateIsIdempotentPerRequestIdAndListingPagesNewestFirst) {
  v1::RunSpec spec = SmallRunSpec(v1::METHOD_NONE, "", 1, 0.5, 256);
  v1::Run first;
  v1::Run again;
  ASSERT_TRUE(Create(spec, &first, "request-1").ok());
  ASSERT_TRUE(Create(spec, &again, "request-1").ok());
  EXPECT_EQ(first.run_id(), again.run_id());
  v1::Run second;
  v1::Run third;
  ASSERT_TRUE(Create(spec, &second, "request-2").ok());
  ASSERT_TRUE(Create(spec, &third).ok());
  for (const v1::Run* r : {&first, &second, &third}) ASSERT_OK(testing::WaitForRun(*stub_, r->run_id()).status());
  std::vector<std::string> seen;
  std::string token;
  do {
    grpc::ClientContext context;
    v1::ListRunsRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    v1::ListRunsResponse response;
    ASSERT_TRUE(stub_->ListRuns(&context, request, &response).ok());
    EXPECT_LE(response.runs_size(), 2);
    for (const v1::Run& r : response.runs()) seen.push_back(r.run_id());
    token = response.next_page_token();
  } while (!token.empty());
  EXPECT_THAT(seen, ::testing::ElementsAre(third.run_id(), second.run_id(), first.run_id()));
  grpc::ClientContext bad_context;
  v1::ListRunsRequest bad;
  bad.set_page_token("garbage");
  v1::ListRunsResponse response;
  EXPECT_EQ(stub_->ListRuns(&bad_context, bad, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext filter_context;
  v1::ListRunsRequest filter;
  filter.set_state(v1::RUN_STATE_FAILED);
  ASSERT_TRUE(stub_->ListRuns(&filter_context, filter, &response).ok());
  EXPECT_EQ(response.runs_size(), 0);
}

TEST_F(TrainerServiceTest, CancelStopsRunningAndQueuedRuns) {
  // A long run (many epochs) and one queued behind it (one worker).
  v1::RunSpec slow = SmallRunSpec(v1::METHOD_NONE, "", 1, 0.5, 4096);
  slow.mutable_pretrain()->set_epochs(1000);
  v1::Run running;
  v1::Run queued;
  ASSERT_TRUE(Create(slow, &running).ok());
  ASSERT_TRUE(Create(slow, &queued).ok());
  // Wait until the first one trains.
  {
    grpc::ClientContext context;
    v1::WatchRunRequest request;
    request.set_run_id(running.run_id());
    auto reader = stub_->WatchRun(&context, request);
    v1::RunEvent event;
    while (reader->Read(&event) && !event.has_step_progress()) {
    }
    context.TryCancel();
    reader->Finish();
  }
  grpc::ClientContext queued_context;
  v1::CancelRunRequest cancel_queued;
  cancel_queued.set_run_id(queued.run_id());
  v1::Run after;
  ASSERT_TRUE(stub_->CancelRun(&queued_context, cancel_queued, &after).ok());
  EXPECT_EQ(after.state(), v1::RUN_STATE_CANCELLED);
  grpc::ClientContext running_context;
  v1::CancelRunRequest cancel_running;
  cancel_running.set_run_id(running.run_id());
  cancel_running.set_reason("enough");
  ASSERT_TRUE(stub_->CancelRun(&running_context, cancel_running, &after).ok());
  ASSERT_OK_AND_ASSIGN(v1::Run stopped, testing::WaitForRun(*stub_, running.run_id(), absl::Seconds(20)));
  EXPECT_EQ(stopped.state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(stopped.error_message(), "enough");
  const Watched events = WatchToEnd(*stub_, running.run_id());
  EXPECT_EQ(events.finished.state(), v1::RUN_STATE_CANCELLED);
  // Cancelling again returns the run unchanged; a finished run cannot be cancelled.
  grpc::ClientContext again_context;
  ASSERT_TRUE(stub_->CancelRun(&again_context, cancel_running, &after).ok());
  EXPECT_EQ(after.state(), v1::RUN_STATE_CANCELLED);
  v1::Run quick;
  ASSERT_TRUE(Create(SmallRunSpec(v1::METHOD_NONE, "", 1, 0.5, 256), &quick).ok());
  ASSERT_OK(testing::WaitForRun(*stub_, quick.run_id()).status());
  grpc::ClientContext done_context;
  v1::CancelRunRequest cancel_done;
  cancel_done.set_run_id(quick.run_id());
  EXPECT_EQ(stub_->CancelRun(&done_context, cancel_done, &after).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(TrainerServiceTest, TwoConcurrentRunsAgainstOnePrunerDoNotInterfere) {
  StartTrainer(/*concurrent_runs=*/2);
  const v1::RunSpec a = SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress(), 2, 0.5, 2048, /*seed=*/11);
  const v1::RunSpec b = SmallRunSpec(v1::METHOD_CAUSAL_V2, PrunerAddress(), 2, 0.7, 2048, /*seed=*/12);
  v1::Run run_a;
  v1::Run run_b;
  ASSERT_TRUE(Create(a, &run_a).ok());
  ASSERT_TRUE(Create(b, &run_b).ok());
  ASSERT_OK_AND_ASSIGN(v1::Run done_a, testing::WaitForRun(*stub_, run_a.run_id()));
  ASSERT_OK_AND_ASSIGN(v1::Run done_b, testing::WaitForRun(*stub_, run_b.run_id()));
  ASSERT_EQ(done_a.state(), v1::RUN_STATE_SUCCEEDED) << done_a.error_message();
  ASSERT_EQ(done_b.state(), v1::RUN_STATE_SUCCEEDED) << done_b.error_message();
  EXPECT_NE(done_a.pruner_session_id(), done_b.pruner_session_id());
  for (const auto& [spec, run] : {std::make_pair(a, done_a), std::make_pair(b, done_b)}) {
    ASSERT_OK_AND_ASSIGN(ReferenceRun alone, RunInProcess(spec));
    for (int j = 1; j <= 2; ++j) {
      ASSERT_OK_AND_ASSIGN(auto masks, testing::FetchMasks(PrunerAddress(), run.pruner_session_id(), j));
      EXPECT_EQ(masks, alone.masks[j - 1]) << run.run_id() << " iteration " << j;
    }
  }
}

}  // namespace
}  // namespace gcprune::trainer
