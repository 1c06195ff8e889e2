// Tests of the gcprune-trainer binary: it prints its address with --port=0, serves health and the
// Trainer service, refuses bad flags with exit code 2, and on SIGTERM cancels its running run, ends the
// watch streams and exits 0.
#include <signal.h>
#include <sys/wait.h>

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/service/service_test_util.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using testing::BinaryPath;
using testing::ChildProcess;
using testing::SmallRunSpec;

std::string TrainerBinary() { return BinaryPath("trainer_service/gcprune-trainer"); }

TEST(TrainerBinaryTest, ServesAndShutsDownCleanlyOnSigterm) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ChildProcess> trainer,
                       ChildProcess::Start({TrainerBinary(), "--port=0", "--progress_interval_seconds=0.05"}));
  EXPECT_THAT(trainer->address(), ::testing::StartsWith("127.0.0.1:"));  // loopback by default
  auto channel = grpc::CreateChannel(trainer->address(), grpc::InsecureChannelCredentials());

  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const char* service : {"", "gcprune.v1.Trainer"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  // A run that would train for a long time.
  auto stub = v1::Trainer::NewStub(channel);
  v1::RunSpec spec = SmallRunSpec(v1::METHOD_NONE, "", 1, 0.5, 4096);
  spec.mutable_pretrain()->set_epochs(10000);
  grpc::ClientContext create_context;
  v1::CreateRunRequest create;
  *create.mutable_spec() = spec;
  v1::Run run;
  ASSERT_TRUE(stub->CreateRun(&create_context, create, &run).ok());

  grpc::ClientContext watch_context;
  watch_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::WatchRunRequest watch;
  watch.set_run_id(run.run_id());
  auto reader = stub->WatchRun(&watch_context, watch);
  v1::RunEvent event;
  bool training = false;
  while (!training && reader->Read(&event)) training = event.has_step_progress();
  ASSERT_TRUE(training);

  const absl::Time start = absl::Now();
  trainer->Signal(SIGTERM);
  bool cancelled = false;
  while (reader->Read(&event)) {
    if (event.has_finished()) cancelled = event.finished().state() == v1::RUN_STATE_CANCELLED;
  }
  const grpc::Status status = reader->Finish();
  // The stream ends either after the run's CANCELLED event or with UNAVAILABLE from the shutdown.
  EXPECT_TRUE(cancelled || status.error_code() == grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(trainer->Wait(absl::Seconds(30)), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

TEST(TrainerBinaryTest, BadFlagsExitWithCodeTwo) {
  for (const char* flag : {"--concurrent_runs=0", "--port=70000", "--pruner_buffer_mb=0",
                           "--progress_interval_seconds=0"}) {
    SCOPED_TRACE(flag);
    auto trainer = ChildProcess::Start({TrainerBinary(), flag}, absl::Seconds(5));
    EXPECT_THAT(trainer.status(), ::gcprune::testing::StatusIs(absl::StatusCode::kUnavailable));
  }
  // The exit code itself, through the shell.
  const std::string command = TrainerBinary() + " --concurrent_runs=0 >/dev/null 2>&1";
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
}  // namespace gcprune::trainer
