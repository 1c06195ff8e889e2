// `gcprune report --sweep` end to end: tiny runs (the MLP on synthetic data, one epoch per phase) made with
// `gcprune run` on the trainer service in this process and the real gcprune-pruner binary, then the sweep's
// table and phase-shift lines, its JSON, and the exit code on a trainer without runs.
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/strip.h"
#include "clients/cli/command.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/service/service_test_util.h"
#include "tests/clients/cli/cli_runner.h"

namespace gcprune::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
namespace testing_util = ::gcprune::trainer::testing;

using test_util::Cli;
using test_util::Outcome;

class SweepCommandTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_dir_ = new testing_util::TempDir();
    auto pruner = testing_util::StartPruner(state_dir_->path());
    ASSERT_TRUE(pruner.ok()) << pruner.status();
    pruner_ = pruner->release();
    auto trainer = testing_util::InProcessTrainer::Start(testing_util::TestManagerOptions());
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    trainer_ = trainer->release();
  }

  static void TearDownTestSuite() {
    delete trainer_;
    trainer_ = nullptr;
    delete pruner_;
    pruner_ = nullptr;
    delete state_dir_;
  }

  void SetUp() override {
    ASSERT_NE(pruner_, nullptr);
    ASSERT_NE(trainer_, nullptr);
  }

  // Starts a run of seconds with `gcprune run --detach` and waits until it has ended; returns its id.
  static std::string MakeRun(const std::string& method, const std::string& target, const std::string& label) {
    std::vector<std::string> args = {"run",
                                     "--detach",
                                     "--trainer=" + trainer_->address(),
                                     "--model=mlp",
                                     "--data=synthetic",
                                     "--train_subset=512",
                                     "--test_subset=256",
                                     "--pretrain_epochs=1",
                                     "--train_epochs=0",
                                     "--finetune_epochs=1",
                                     "--batch_size=64",
                                     "--iterations=1",
                                     "--method=" + method,
                                     "--label=" + label};
    if (method != "none") {
      args.push_back("--pruner=" + pruner_->address());
      args.push_back("--target_sparsity=" + target);
    }
    const Outcome created = Cli(args);
    EXPECT_EQ(created.code, kExitOk) << created.err;
    const std::string run_id(absl::StripAsciiWhitespace(created.out));
    auto stub = trainer_->NewStub();
    absl::StatusOr<v1::Run> done = testing_util::WaitForRun(*stub, run_id);
    EXPECT_TRUE(done.ok()) << done.status();
    if (done.ok()) {
      EXPECT_EQ(done->state(), v1::RUN_STATE_SUCCEEDED) << done->error_message();
    }
    return run_id;
  }

  // The sweep's runs, made once: magnitude-global at 30% and 60% and a dense run (method none).
  struct Sweep {
    std::string magnitude_30;
    std::string magnitude_60;
    std::string dense;
  };
  static const Sweep& TheSweep() {
    if (sweep_ == nullptr) {
      sweep_ = new Sweep{MakeRun("magnitude-global", "0.3", "sweep-e2e"),
                         MakeRun("magnitude-global", "0.6", "sweep-e2e"), MakeRun("none", "", "sweep-e2e")};
      // A run outside the sweep, left out by --label_prefix.
      MakeRun("random", "0.5", "other");
    }
    return *sweep_;
  }

  static testing_util::TempDir* state_dir_;
  static testing_util::ChildProcess* pruner_;
  static testing_util::InProcessTrainer* trainer_;
  static Sweep* sweep_;
};

testing_util::TempDir* SweepCommandTest::state_dir_ = nullptr;
testing_util::ChildProcess* SweepCommandTest::pruner_ = nullptr;
testing_util::InProcessTrainer* SweepCommandTest::trainer_ = nullptr;
SweepCommandTest::Sweep* SweepCommandTest::sweep_ = nullptr;

TEST_F(SweepCommandTest, SweepOfTheListedRunsPrintsTheTableAndThePhaseShift) {
  const Sweep& sweep = TheSweep();
  const Outcome outcome = Cli({"report", "--sweep", "--label_prefix=sweep-", "--trainer=" + trainer_->address()});
  ASSERT_EQ(outcome.code, kExitOk) << outcome.err;
  EXPECT_EQ(outcome.err, "");
  EXPECT_THAT(outcome.out, StartsWith("Phase shift of a sweep of 3 runs"));
  EXPECT_THAT(outcome.out, HasSubstr("the test accuracy of run " + sweep.dense + " (method none)"));
  EXPECT_THAT(outcome.out, HasSubstr("magnitude-global: 2 runs on the curve\n"));
  EXPECT_THAT(outcome.out, HasSubstr("  target  sparsity  after prune  fine-tuned  run\n"));
  EXPECT_THAT(outcome.out, HasSubstr("  30.00%    30.00%"));
  EXPECT_THAT(outcome.out, HasSubstr("  60.00%    60.00%"));
  EXPECT_LT(outcome.out.find(sweep.magnitude_30), outcome.out.find(sweep.magnitude_60));
  EXPECT_THAT(outcome.out, HasSubstr("  phase shift (drop-from-reference, 5.0 points below "));
  EXPECT_THAT(outcome.out, HasSubstr("  phase shift (steepest-drop, "));
  EXPECT_THAT(outcome.out, HasSubstr("note: 1 run left out: label not starting with 'sweep-'"));
  EXPECT_THAT(outcome.out, Not(HasSubstr("random")));
}

TEST_F(SweepCommandTest, SweepOfGivenRunsAsJson) {
  const Sweep& sweep = TheSweep();
  const Outcome outcome = Cli({"report", "--sweep", sweep.magnitude_60, sweep.magnitude_30, "--json", "--rule=drop",
                               "--reference=0.9", "--trainer=" + trainer_->address()});
  ASSERT_EQ(outcome.code, kExitOk) << outcome.err;
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(outcome.out, &parsed).ok()) << outcome.out;
  EXPECT_EQ(parsed.fields().at("num_runs").number_value(), 2);
  EXPECT_EQ(parsed.fields().at("reference").struct_value().fields().at("source").string_value(), "flag");
  const auto& methods = parsed.fields().at("methods").list_value();
  ASSERT_EQ(methods.values_size(), 1);
  const google::protobuf::Struct& magnitude = methods.values(0).struct_value();
  EXPECT_EQ(magnitude.fields().at("method").string_value(), "magnitude-global");
  EXPECT_EQ(magnitude.fields().at("points").list_value().values_size(), 2);
  ASSERT_EQ(magnitude.fields().at("phase_shift").list_value().values_size(), 1);
  EXPECT_EQ(magnitude.fields()
                .at("phase_shift")
                .list_value()
                .values(0)
                .struct_value()
                .fields()
                .at("rule")
                .string_value(),
            "drop-from-reference");

  const Outcome unknown = Cli({"report", "--sweep", sweep.magnitude_30, "run-404", "--trainer=" + trainer_->address()});
  EXPECT_EQ(unknown.code, kExitRpcError);
  EXPECT_THAT(unknown.err, HasSubstr("gcprune report: looking up run 'run-404' failed"));
}

TEST_F(SweepCommandTest, TrainerWithoutRunsExitsFour) {
  auto empty = testing_util::InProcessTrainer::Start(testing_util::TestManagerOptions());
  ASSERT_TRUE(empty.ok()) << empty.status();
  const Outcome outcome = Cli({"report", "--sweep", "--trainer=" + (*empty)->address()});
  EXPECT_EQ(outcome.code, kExitRpcError);
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(outcome.err, "gcprune report: no SUCCEEDED runs on the trainer at " + (*empty)->address() +
                             "; nothing to analyse\n");
}

}  // namespace
}  // namespace gcprune::cli
