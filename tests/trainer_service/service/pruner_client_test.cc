// Tests of PrunerClient against an in-process fake pruner: delivery and masks equal to an in-process
// PruningSession's, resends after broken streams and restarts, a pruner that comes up late, the
// fail-open and strict policies when the pruner is down, refuses or stays silent, the bounded buffer,
// restarted iterations after a skip, weights for magnitude pruning, and cancellation.
#include "trainer_service/service/pruner_client.h"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/server_bootstrap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pruner_service/causal/pruning_session.h"
#include "pruner_service/service/wire_format.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/service/fake_pruner.h"
#include "tests/trainer_service/service/local_pruner_link.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using testing::FakePruner;
using testing::KeepBytes;

// A small model: fc1.weight [8, 16] (prunable), fc1.bias [8], fc2.weight [4, 8] (prunable).
v1::Layout SmallLayout() {
  v1::Layout layout;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool prunable) {
    v1::TensorSpec* tensor = layout.add_tensors();
    tensor->set_name(name);
    for (int64_t d : shape) tensor->add_shape(d);
    tensor->set_prunable(prunable);
  };
  add("fc1.weight", {8, 16}, true);
  add("fc1.bias", {8}, false);
  add("fc2.weight", {4, 8}, true);
  return layout;
}

v1::MethodConfig Method(v1::Method method = v1::METHOD_CAUSAL_V2) {
  v1::MethodConfig config;
  config.set_method(method);
  config.mutable_schedule()->set_iterations(2);
  config.mutable_schedule()->set_target_sparsity(0.5);
  config.set_seed(7);
  return config;
}

// A deterministic collection step.
struct TestStep {
  double loss_before = 0.0;
  double loss_after = 0.0;
  std::vector<std::vector<float>> deltas;
};

std::vector<TestStep> MakeSteps(int count, uint64_t seed) {
  SplitMix64 rng(seed);
  auto uniform = [&rng] { return static_cast<double>(rng.Next() >> 11) * 0x1.0p-53; };
  std::vector<TestStep> steps(count);
  for (TestStep& step : steps) {
    step.loss_before = 2.0 + uniform();
    step.loss_after = step.loss_before - 0.01 - 0.1 * uniform();
    for (int numel : {128, 32}) {
      std::vector<float> delta(numel);
      for (float& v : delta) v = static_cast<float>((uniform() - 0.5) * 1e-3);
      step.deltas.push_back(std::move(delta));
    }
  }
  return steps;
}

StepRecord Record(const TestStep& step) {
  StepRecord record;
  record.loss_before = step.loss_before;
  record.loss_after = step.loss_after;
  record.learning_rate = 1e-3;
  record.deltas = &step.deltas;
  return record;
}

// The masks an in-process session computes from the same steps, one entry per iteration.
std::vector<std::vector<std::vector<uint8_t>>> ReferenceMasks(const v1::MethodConfig& method,
                                                             const std::vector<std::vector<TestStep>>& iterations) {
  auto layout = pruner::LayoutFromProto(SmallLayout(), "layout");
  auto config = pruner::MethodConfigFromProto(method, "method");
  auto session = pruner::PruningSession::Create(*layout, *config);
  EXPECT_TRUE(session.ok()) << session.status();
  std::vector<std::vector<std::vector<uint8_t>>> result;
  int64_t number = 0;
  for (const std::vector<TestStep>& steps : iterations) {
    for (const TestStep& step : steps) {
      pruner::StepHeader header;
      header.step = number++;
      header.loss_before = step.loss_before;
      header.loss_after = step.loss_after;
      header.lr = 1e-3;
      pruner::TensorWeights deltas;
      for (const auto& d : step.deltas) deltas.emplace_back(d.data(), d.size());
      EXPECT_OK((*session)->AddStep(header, deltas));
    }
    auto ended = (*session)->EndIteration();
    EXPECT_TRUE(ended.ok()) << ended.status();
    result.push_back(KeepBytes(ended->masks));
  }
  return result;
}

// Collects the client's connection events.
class EventSink {
 public:
  void Add(const v1::PrunerConnectionChanged& event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  bool Contains(v1::PrunerState state, const std::string& text) const {
    absl::MutexLock lock(&mu_);
    for (const auto& event : events_) {
      if (event.state() == state && absl::StrContains(event.message(), text)) return true;
    }
    return false;
  }
  std::string Dump() const {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const auto& event : events_) {
      out += v1::PrunerState_Name(event.state()) + ": " + event.message() + "\n";
    }
    return out;
  }
  bool ContainsText(const std::string& text) const {
    absl::MutexLock lock(&mu_);
    for (const auto& event : events_) {
      if (absl::StrContains(event.message(), text)) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::PrunerConnectionChanged> events_;
};

class PrunerClientTest : public ::testing::Test {
 protected:
  void StartServer(int port = 0) {
    common::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = port;
    options.shutdown_grace = absl::ZeroDuration();
    auto server = common::GrpcServer::Start(options, {{&fake_, v1::Pruner::service_full_name()}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    port_ = server_->port();
  }
  void StopServer() {
    server_->Shutdown(absl::ZeroDuration());
    server_->Wait();
    server_.reset();
  }
  // A port that nothing listens on now (but a server may bind later).
  void ReservePort() {
    StartServer();
    StopServer();
  }

  PrunerClientOptions Options(v1::MethodConfig method = Method()) {
    PrunerClientOptions options;
    options.address = "127.0.0.1:" + std::to_string(port_);
    options.layout = SmallLayout();
    options.method = method;
    options.label = "test";
    options.grace = absl::Seconds(20);
    options.initial_backoff = absl::Milliseconds(20);
    options.max_backoff = absl::Milliseconds(200);
    options.on_event = [this](const v1::PrunerConnectionChanged& event, const std::string&) { events_.Add(event); };
    return options;
  }

  std::unique_ptr<PrunerClient> MakeClient(PrunerClientOptions options) {
    auto client = PrunerClient::Create(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    EXPECT_OK((*client)->Start());
    return *std::move(client);
  }

  FakePruner fake_;
  std::unique_ptr<common::GrpcServer> server_;
  int port_ = 0;
  EventSink events_;
};

TEST_F(PrunerClientTest, DeliversStepsAndReturnsTheMasksOfAnInProcessSession) {
  StartServer();
  auto client = MakeClient(Options());
  const std::vector<std::vector<TestStep>> steps = {MakeSteps(10, 1), MakeSteps(10, 2)};
  const auto reference = ReferenceMasks(Method(), steps);
  for (int j = 1; j <= 2; ++j) {
    ASSERT_OK(client->BeginIteration(j));
    for (const TestStep& step : steps[j - 1]) ASSERT_OK(client->AddStep(Record(step)));
    ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(j, {}));
    EXPECT_FALSE(masks.skipped);
    EXPECT_EQ(masks.pruner_iteration, j);
    EXPECT_EQ(masks.apply_at_step, 10 * j);
    EXPECT_EQ(masks.keep, reference[j - 1]) << "iteration " << j;
  }
  client->Close(true);
  const LinkStats stats = client->stats();
  EXPECT_EQ(stats.steps_sent, 20);
  EXPECT_EQ(stats.acked_step, 19);
  EXPECT_EQ(stats.unacked_steps, 0);
  EXPECT_EQ(stats.reconnects, 0);
  EXPECT_EQ(stats.session_id, "fake-1");
  EXPECT_EQ(fake_.stored_steps(), 20);
  EXPECT_TRUE(events_.Contains(v1::PRUNER_STATE_CONNECTED, "session fake-1 open"));
}

TEST_F(PrunerClientTest, ResendsWhatWasNotStoredAfterTheStreamBreaks) {
  StartServer();
  FakePruner::Knobs knobs;
  knobs.break_after_commits = 5;  // the 6th commit ends the stream unstored
  fake_.set_knobs(knobs);
  auto client = MakeClient(Options());
  const std::vector<std::vector<TestStep>> steps = {MakeSteps(12, 3), MakeSteps(12, 4)};
  const auto reference = ReferenceMasks(Method(), steps);
  for (int j = 1; j <= 2; ++j) {
    ASSERT_OK(client->BeginIteration(j));
    for (const TestStep& step : steps[j - 1]) ASSERT_OK(client->AddStep(Record(step)));
    ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(j, {}));
    EXPECT_FALSE(masks.skipped);
    EXPECT_EQ(masks.keep, reference[j - 1]) << "iteration " << j;
  }
  client->Close(true);
  EXPECT_GE(client->stats().reconnects, 1);
  EXPECT_EQ(fake_.stored_steps(), 24);
  EXPECT_GT(client->stats().steps_sent, 24);  // resends are counted
  EXPECT_TRUE(events_.Contains(v1::PRUNER_STATE_DISCONNECTED, "simulated crash"));
}

TEST_F(PrunerClientTest, ResumesTheSessionAfterThePrunerRestarts) {
  StartServer();
  auto client = MakeClient(Options());
  const std::vector<std::vector<TestStep>> steps = {MakeSteps(10, 5), MakeSteps(10, 6)};
  const auto reference = ReferenceMasks(Method(), steps);
  ASSERT_OK(client->BeginIteration(1));
  for (int i = 0; i < 4; ++i) ASSERT_OK(client->AddStep(Record(steps[0][i])));
  ASSERT_TRUE(client->WaitForAcks(absl::Seconds(10)));
  StopServer();
  for (int i = 4; i < 10; ++i) ASSERT_OK(client->AddStep(Record(steps[0][i])));  // buffered while down
  absl::SleepFor(absl::Milliseconds(300));
  StartServer(port_);
  ASSERT_OK_AND_ASSIGN(IterationMasks first, client->EndIteration(1, {}));
  EXPECT_EQ(first.keep, reference[0]);
  ASSERT_OK(client->BeginIteration(2));
  for (const TestStep& step : steps[1]) ASSERT_OK(client->AddStep(Record(step)));
  ASSERT_OK_AND_ASSIGN(IterationMasks second, client->EndIteration(2, {}));
  EXPECT_EQ(second.keep, reference[1]);
  client->Close(true);
  EXPECT_EQ(client->stats().reconnects, 1);
  EXPECT_EQ(fake_.stored_steps(), 20);
}

TEST_F(PrunerClientTest, BuffersUntilAPrunerThatStartsLateIsReachable) {
  ReservePort();
  auto client = MakeClient(Options());
  const std::vector<std::vector<TestStep>> steps = {MakeSteps(8, 7)};
  const auto reference = ReferenceMasks(Method(), steps);
  ASSERT_OK(client->BeginIteration(1));
  for (const TestStep& step : steps[0]) ASSERT_OK(client->AddStep(Record(step)));
  EXPECT_EQ(client->stats().unacked_steps, 8);
  absl::SleepFor(absl::Milliseconds(300));
  StartServer(port_);
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
  EXPECT_FALSE(masks.skipped);
  EXPECT_EQ(masks.keep, reference[0]);
  EXPECT_TRUE(events_.Contains(v1::PRUNER_STATE_DISCONNECTED, "cannot reach the pruner"));
  client->Close(true);
}

TEST_F(PrunerClientTest, FailOpenSkipsTheIterationWhenThePrunerStaysDown) {
  ReservePort();
  PrunerClientOptions options = Options();
  options.grace = absl::Milliseconds(300);
  auto client = MakeClient(options);
  ASSERT_OK(client->BeginIteration(1));
  for (const TestStep& step : MakeSteps(4, 8)) ASSERT_OK(client->AddStep(Record(step)));
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
  EXPECT_TRUE(masks.skipped);
  EXPECT_TRUE(masks.keep.empty());
  EXPECT_THAT(masks.skip_reason, ::testing::HasSubstr("unreachable"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(events_.Contains(v1::PRUNER_STATE_FAILED, "keeping the previous masks (fail-open)"));
  // The next iteration is skipped at once: the pruner has been down for longer than the grace period.
  ASSERT_OK(client->BeginIteration(2));
  ASSERT_OK_AND_ASSIGN(IterationMasks again, client->EndIteration(2, {}));
  EXPECT_TRUE(again.skipped);
  client->Close(true);
}

TEST_F(PrunerClientTest, StrictFailsTheRunWhenThePrunerStaysDown) {
  ReservePort();
  PrunerClientOptions options = Options();
  options.fail_open = false;
  options.grace = absl::Milliseconds(300);
  auto client = MakeClient(options);
  ASSERT_OK(client->BeginIteration(1));
  ASSERT_OK(client->AddStep(Record(MakeSteps(1, 9)[0])));
  EXPECT_THAT(client->EndIteration(1, {}), StatusIsWithMessage(absl::StatusCode::kUnavailable, "strict policy"));
  // Steps too are refused once the grace period is over.
  EXPECT_THAT(client->AddStep(Record(MakeSteps(1, 10)[0])), StatusIs(absl::StatusCode::kUnavailable));
  client->Close(false);
}

TEST_F(PrunerClientTest, FailOpenDropsTheOldestUnsentStepsWhenTheBufferIsFull) {
  ReservePort();
  PrunerClientOptions options = Options();
  options.max_buffer_bytes = 3 * (160 * 4 + 64);  // three steps
  auto client = MakeClient(options);
  const std::vector<TestStep> steps = MakeSteps(10, 11);
  ASSERT_OK(client->BeginIteration(1));
  for (const TestStep& step : steps) ASSERT_OK(client->AddStep(Record(step)));
  EXPECT_EQ(client->stats().dropped_steps, 7);
  EXPECT_EQ(client->stats().unacked_steps, 3);
  EXPECT_TRUE(events_.ContainsText("step buffer full"));
  StartServer(port_);
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
  // The kept (newest) steps were numbered 0, 1, 2 when sent: no gap, and the fit saw exactly them.
  const auto reference = ReferenceMasks(Method(), {{steps[7], steps[8], steps[9]}});
  EXPECT_EQ(masks.keep, reference[0]);
  EXPECT_TRUE(events_.ContainsText("7 steps were not sent"));
  client->Close(true);
}

TEST_F(PrunerClientTest, StrictBlocksOnAFullBufferAndFailsAfterTheGracePeriod) {
  ReservePort();
  PrunerClientOptions options = Options();
  options.fail_open = false;
  options.grace = absl::Milliseconds(400);
  options.max_buffer_bytes = 2 * (160 * 4 + 64);
  auto client = MakeClient(options);
  const std::vector<TestStep> steps = MakeSteps(3, 12);
  ASSERT_OK(client->BeginIteration(1));
  ASSERT_OK(client->AddStep(Record(steps[0])));
  ASSERT_OK(client->AddStep(Record(steps[1])));
  const absl::Time start = absl::Now();
  EXPECT_THAT(client->AddStep(Record(steps[2])), StatusIsWithMessage(absl::StatusCode::kUnavailable, "unreachable"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));  // it waited for room first
  EXPECT_EQ(client->stats().dropped_steps, 0);
  client->Close(false);
}

TEST_F(PrunerClientTest, PermanentErrorsEndTheAttempts) {
  StartServer();
  FakePruner::Knobs knobs;
  knobs.refuse_open = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "open.create.method: bad");
  fake_.set_knobs(knobs);
  {
    auto client = MakeClient(Options());
    ASSERT_OK(client->BeginIteration(1));
    ASSERT_OK(client->AddStep(Record(MakeSteps(1, 13)[0])));
    ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
    EXPECT_TRUE(masks.skipped);
    EXPECT_THAT(masks.skip_reason, ::testing::HasSubstr("open.create.method: bad"));
    client->Close(false);
  }
  EXPECT_EQ(fake_.opens(), 1);  // no retry after INVALID_ARGUMENT
  PrunerClientOptions strict = Options();
  strict.fail_open = false;
  auto client = MakeClient(strict);
  ASSERT_OK(client->BeginIteration(1));
  EXPECT_THAT(client->EndIteration(1, {}), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "bad"));
  client->Close(false);
}

TEST_F(PrunerClientTest, GivesUpOnASilentPrunerAfterTheGracePeriod) {
  StartServer();
  FakePruner::Knobs knobs;
  knobs.silent = true;
  fake_.set_knobs(knobs);
  PrunerClientOptions options = Options();
  options.grace = absl::Milliseconds(400);
  auto client = MakeClient(options);
  ASSERT_OK(client->BeginIteration(1));
  ASSERT_OK(client->AddStep(Record(MakeSteps(1, 14)[0])));
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
  EXPECT_TRUE(masks.skipped);
  EXPECT_THAT(masks.skip_reason, ::testing::HasSubstr("sent nothing"));
  client->Close(false);
}

TEST_F(PrunerClientTest, AQuietPeriodBeforeTheIterationEndIsNotSilence) {
  // The pruner has nothing to say while the trainer trains without collecting (magnitude pruning after a
  // long pre-training): the grace period for the masks starts when the trainer starts waiting for them.
  StartServer();
  PrunerClientOptions options = Options();
  options.grace = absl::Milliseconds(300);
  auto client = MakeClient(options);
  const std::vector<std::vector<TestStep>> steps = {MakeSteps(3, 17)};
  const auto reference = ReferenceMasks(Method(), steps);
  ASSERT_OK(client->BeginIteration(1));
  for (const TestStep& step : steps[0]) ASSERT_OK(client->AddStep(Record(step)));
  ASSERT_TRUE(client->WaitForAcks(absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(900));  // three grace periods without a message from the pruner
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
  EXPECT_FALSE(masks.skipped) << masks.skip_reason;
  EXPECT_EQ(masks.keep, reference[0]);
  client->Close(true);
}

TEST_F(PrunerClientTest, RestartsTheAbandonedIterationAtTheNextReconnect) {
  StartServer();
  PrunerClientOptions options = Options();
  options.grace = absl::Milliseconds(300);
  auto client = MakeClient(options);
  const std::vector<TestStep> first = MakeSteps(6, 15);
  const std::vector<TestStep> second = MakeSteps(6, 16);
  ASSERT_OK(client->BeginIteration(1));
  for (const TestStep& step : first) ASSERT_OK(client->AddStep(Record(step)));
  ASSERT_TRUE(client->WaitForAcks(absl::Seconds(10)));
  StopServer();  // the pruner holds iteration 1's samples, but its masks will not come in time
  ASSERT_OK_AND_ASSIGN(IterationMasks skipped, client->EndIteration(1, {}));
  EXPECT_TRUE(skipped.skipped);
  StartServer(port_);
  ASSERT_OK(client->BeginIteration(2));
  for (const TestStep& step : second) ASSERT_OK(client->AddStep(Record(step)));
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(2, {}));
  EXPECT_FALSE(masks.skipped) << events_.Dump();
  EXPECT_EQ(masks.pruner_iteration, 1);  // the pruner's iterations now lag the trainer's
  EXPECT_EQ(fake_.resumes_with_restart(), 1);
  // Round 1 holds the second iteration's steps only.
  EXPECT_EQ(masks.keep, ReferenceMasks(Method(), {second})[0]);
  client->Close(true);
}

TEST_F(PrunerClientTest, SendsWeightsForMagnitudePruning) {
  StartServer();
  PrunerClientOptions options = Options(Method(v1::METHOD_MAGNITUDE_GLOBAL));
  options.wants_steps = false;
  options.wants_weights = true;
  auto client = MakeClient(options);
  std::vector<float> w1(128), w2(32);
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = static_cast<float>(i) - 64.0f;
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = static_cast<float>(i) * 0.5f;
  ASSERT_OK(client->BeginIteration(1));
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {absl::MakeConstSpan(w1), absl::MakeConstSpan(w2)}));
  ASSERT_EQ(masks.keep.size(), 2u);
  auto layout = pruner::LayoutFromProto(SmallLayout(), "layout");
  auto config = pruner::MethodConfigFromProto(Method(v1::METHOD_MAGNITUDE_GLOBAL), "method");
  auto session = pruner::PruningSession::Create(*layout, *config);
  auto expected = (*session)->EndIteration({absl::MakeConstSpan(w1), absl::MakeConstSpan(w2)});
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(masks.keep, KeepBytes(expected->masks));
  EXPECT_EQ(client->stats().steps_sent, 0);
  client->Close(true);
}

TEST_F(PrunerClientTest, CancellationEndsTheWaitForMasks) {
  ReservePort();
  std::atomic<bool> cancelled{false};
  PrunerClientOptions options = Options();
  options.cancelled = [&cancelled] { return cancelled.load(); };
  auto client = MakeClient(options);
  ASSERT_OK(client->BeginIteration(1));
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancelled = true;
  });
  EXPECT_THAT(client->EndIteration(1, {}), StatusIs(absl::StatusCode::kCancelled));
  canceller.join();
  client->Close(false);
}

TEST_F(PrunerClientTest, ConnectsOverTlsWithABearerToken) {
  const std::string testdata = std::string(std::getenv("GCPRUNE_SOURCE_DIR")) + "/tests/common/testdata/";
  common::ServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.shutdown_grace = absl::ZeroDuration();
  server_options.security.tls_cert_file = testdata + "server.pem";
  server_options.security.tls_key_file = testdata + "server.key";
  server_options.security.auth_token = "pruner-secret";
  ASSERT_OK_AND_ASSIGN(server_, common::GrpcServer::Start(server_options, {{&fake_, v1::Pruner::service_full_name()}}));
  port_ = server_->port();
  const std::vector<std::vector<TestStep>> steps = {MakeSteps(4, 21)};
  {
    // A wrong token is a permanent error: the iteration is skipped at once under fail-open.
    PrunerClientOptions options = Options();
    options.channel.use_tls = true;
    options.channel.tls_ca_file = testdata + "ca.pem";
    options.channel.auth_token = "wrong";
    auto client = MakeClient(options);
    ASSERT_OK(client->BeginIteration(1));
    ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
    EXPECT_TRUE(masks.skipped);
    client->Close(false);
  }
  PrunerClientOptions options = Options();
  options.channel.use_tls = true;
  options.channel.tls_ca_file = testdata + "ca.pem";
  options.channel.auth_token = "pruner-secret";
  auto client = MakeClient(options);
  ASSERT_OK(client->BeginIteration(1));
  for (const TestStep& step : steps[0]) ASSERT_OK(client->AddStep(Record(step)));
  ASSERT_OK_AND_ASSIGN(IterationMasks masks, client->EndIteration(1, {}));
  EXPECT_FALSE(masks.skipped);
  EXPECT_EQ(masks.keep, ReferenceMasks(Method(), steps)[0]);
  client->Close(true);
}

TEST(PrunerClientCreateTest, RejectsBadOptions) {
  PrunerClientOptions options;
  options.layout = SmallLayout();
  EXPECT_THAT(PrunerClient::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));  // no address
  options.address = "127.0.0.1:1";
  options.max_buffer_bytes = 0;
  EXPECT_THAT(PrunerClient::Create(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.max_buffer_bytes = 1 << 20;
  options.layout.mutable_tensors(0)->set_prunable(false);
  options.layout.mutable_tensors(2)->set_prunable(false);
  EXPECT_THAT(PrunerClient::Create(options), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "no prunable"));
}

}  // namespace
}  // namespace gcprune::trainer
