// Tests of the progress renderer: the lasting lines of each event kind, the live line's content and
// redrawing in place, gaps in the sequence, and the --progress modes.
#include "clients/cli/progress_printer.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::cli {
namespace {

using ::gcprune::testing::StatusIsWithMessage;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

v1::Run SampleRun() {
  v1::Run run;
  run.set_run_id("run-3");
  run.set_total_iterations(5);
  run.set_test_accuracy(kNaN);
  return run;
}

v1::RunEvent Event(int64_t sequence) {
  v1::RunEvent event;
  event.set_sequence(sequence);
  event.set_run_id("run-3");
  return event;
}

v1::RunEvent Progress(int64_t sequence, v1::Phase phase, int iteration, int64_t batch) {
  v1::RunEvent event = Event(sequence);
  v1::StepProgress* step = event.mutable_step_progress();
  step->set_phase(phase);
  step->set_iteration(iteration);
  step->set_epoch(1);
  step->set_batch(batch);
  step->set_batches(235);
  step->set_running_loss(0.41234);
  step->set_examples_per_second(2150.4);
  step->set_unacked_steps(3);
  return event;
}

v1::RunEvent Phase(int64_t sequence, v1::Phase phase, int iteration, int epochs) {
  v1::RunEvent event = Event(sequence);
  event.mutable_phase_changed()->set_phase(phase);
  event.mutable_phase_changed()->set_iteration(iteration);
  event.mutable_phase_changed()->set_epochs(epochs);
  return event;
}

TEST(ProgressPrinterTest, PlainModePrintsLastingLinesOnly) {
  std::ostringstream out;
  ProgressPrinter printer(&out, ProgressMode::kPlain);
  printer.SetRun(SampleRun());
  printer.OnEvent(Phase(1, v1::PHASE_PRETRAIN, 0, 2));
  printer.OnEvent(Progress(2, v1::PHASE_PRETRAIN, 0, 100));
  v1::RunEvent epoch = Event(3);
  v1::EpochFinished* finished_epoch = epoch.mutable_epoch_finished();
  finished_epoch->set_phase(v1::PHASE_PRETRAIN);
  finished_epoch->set_epoch(1);
  finished_epoch->set_epochs(2);
  finished_epoch->set_train_loss(0.5821);
  finished_epoch->set_train_accuracy(0.792);
  finished_epoch->set_test_accuracy(0.8512);
  finished_epoch->set_learning_rate(0.01);
  finished_epoch->set_seconds(12.3);
  printer.OnEvent(epoch);

  v1::RunEvent pruner = Event(4);
  pruner.mutable_pruner()->set_state(v1::PRUNER_STATE_CONNECTED);
  pruner.mutable_pruner()->set_address("127.0.0.1:50052");
  printer.OnEvent(pruner);

  v1::RunEvent masks = Event(5);
  masks.mutable_masks_applied()->set_iteration(1);
  masks.mutable_masks_applied()->set_target_sparsity(0.2439);
  masks.mutable_masks_applied()->set_achieved_sparsity(0.2439);
  masks.mutable_masks_applied()->set_test_accuracy(0.8421);
  printer.OnEvent(masks);

  v1::RunEvent skipped = Event(6);
  skipped.mutable_masks_applied()->set_iteration(2);
  skipped.mutable_masks_applied()->set_achieved_sparsity(0.2439);
  skipped.mutable_masks_applied()->set_skipped(true);
  printer.OnEvent(skipped);

  v1::RunEvent done = Event(7);
  done.mutable_finished()->set_state(v1::RUN_STATE_SUCCEEDED);
  done.mutable_finished()->set_sparsity(0.9);
  done.mutable_finished()->set_final_test_accuracy(0.8801);
  done.mutable_finished()->set_best_test_accuracy(0.8834);
  printer.OnEvent(done);
  printer.Close();

  EXPECT_EQ(out.str(),
            "pre-train epoch 1/2: loss 0.5821, train acc 79.20%, test acc 85.12%, lr 0.01, 12.3 s\n"
            "pruner 127.0.0.1:50052 connected\n"
            "iter 1/5 prune: sparsity 24.39% (target 24.39%), test acc 84.21% right after pruning\n"
            "iter 2/5 prune: the masks did not arrive in time; kept the previous ones (sparsity 24.39%)\n"
            "run run-3 SUCCEEDED: sparsity 90.00%, final test acc 88.01%, best 88.34%\n");
  EXPECT_EQ(printer.last_sequence(), 7);
}

TEST(ProgressPrinterTest, LiveLineShowsPhaseProgressAndState) {
  std::ostringstream out;
  ProgressPrinter printer(&out, ProgressMode::kLive, 200);
  printer.SetRun(SampleRun());
  v1::RunEvent pruner = Event(1);
  pruner.mutable_pruner()->set_state(v1::PRUNER_STATE_CONNECTED);
  printer.OnEvent(pruner);
  printer.OnEvent(Progress(2, v1::PHASE_COLLECT, 2, 120));
  EXPECT_EQ(printer.LiveLine(),
            "iter 2/5 collect epoch 1 batch 120/235 loss 0.4123 | sparsity 0.00% | pruner connected, 3 unacked | "
            "2150 ex/s");
  // The line is drawn in place: carriage return and erase, no newline.
  EXPECT_THAT(out.str(), HasSubstr("\r\x1b[Kiter 2/5 collect"));
  EXPECT_EQ(out.str().back(), 's');

  printer.OnEvent(Phase(3, v1::PHASE_PRUNE, 2, 0));
  EXPECT_EQ(printer.LiveLine(), "iter 2/5 prune: waiting for masks | sparsity 0.00% | pruner connected");

  // A lasting line erases the live line first and the live line comes back below it.
  v1::RunEvent disconnected = Event(4);
  disconnected.mutable_pruner()->set_state(v1::PRUNER_STATE_DISCONNECTED);
  disconnected.mutable_pruner()->set_message("UNAVAILABLE: connection refused");
  disconnected.mutable_pruner()->set_unacked_steps(12);
  out.str("");
  printer.OnEvent(disconnected);
  EXPECT_EQ(out.str(),
            "\r\x1b[Kpruner disconnected: UNAVAILABLE: connection refused (12 unacked steps kept)\n"
            "\r\x1b[Kiter 2/5 prune: waiting for masks | sparsity 0.00% | pruner disconnected");
  v1::RunEvent masks = Event(5);
  masks.mutable_masks_applied()->set_iteration(2);
  masks.mutable_masks_applied()->set_achieved_sparsity(0.4392);
  masks.mutable_masks_applied()->set_test_accuracy(0.8421);
  printer.OnEvent(masks);
  EXPECT_EQ(printer.LiveLine(),
            "iter 2/5 prune: masks applied | test acc 84.21% | sparsity 43.92% | pruner disconnected");
  out.str("");
  printer.Close();
  EXPECT_EQ(out.str(), "\r\x1b[K");
  out.str("");
  printer.Close();
  EXPECT_EQ(out.str(), "");
}

TEST(ProgressPrinterTest, LiveLineNeverWraps) {
  std::ostringstream out;
  ProgressPrinter printer(&out, ProgressMode::kLive, 30);
  printer.SetRun(SampleRun());
  printer.OnEvent(Progress(1, v1::PHASE_TRAIN, 1, 7));
  EXPECT_EQ(out.str(), "\r\x1b[Kiter 1/5 train epoch 1 batch ");
}

TEST(ProgressPrinterTest, ReportsEventsTheTrainerDropped) {
  std::ostringstream out;
  ProgressPrinter printer(&out, ProgressMode::kPlain);
  printer.SetRun(SampleRun());
  printer.OnEvent(Progress(1, v1::PHASE_TRAIN, 1, 1));
  printer.OnEvent(Progress(9, v1::PHASE_TRAIN, 1, 2));
  EXPECT_THAT(out.str(), HasSubstr("(7 events not received"));
}

TEST(ProgressPrinterTest, NoneModePrintsNothing) {
  std::ostringstream out;
  ProgressPrinter printer(&out, ProgressMode::kNone);
  v1::RunEvent done = Event(1);
  done.mutable_finished()->set_state(v1::RUN_STATE_FAILED);
  done.mutable_finished()->set_message("INTERNAL: boom");
  printer.OnEvent(done);
  printer.Close();
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(printer.last_sequence(), 1);
}

TEST(ProgressPrinterTest, FailedRunLineCarriesTheMessage) {
  std::ostringstream out;
  ProgressPrinter printer(&out, ProgressMode::kPlain);
  printer.SetRun(SampleRun());
  v1::RunEvent done = Event(1);
  done.mutable_finished()->set_state(v1::RUN_STATE_FAILED);
  done.mutable_finished()->set_message("FAILED_PRECONDITION: pruner unreachable for 60 s");
  done.mutable_finished()->set_final_test_accuracy(kNaN);
  done.mutable_finished()->set_best_test_accuracy(kNaN);
  printer.OnEvent(done);
  EXPECT_EQ(out.str(), "run run-3 FAILED: FAILED_PRECONDITION: pruner unreachable for 60 s; sparsity 0.00%\n");
  EXPECT_THAT(out.str(), Not(HasSubstr("final")));
}

TEST(ProgressModeTest, ParsesEveryMode) {
  EXPECT_EQ(*ParseProgressMode("auto", true), ProgressMode::kLive);
  EXPECT_EQ(*ParseProgressMode("AUTO", false), ProgressMode::kPlain);
  EXPECT_EQ(*ParseProgressMode("live", false), ProgressMode::kLive);
  EXPECT_EQ(*ParseProgressMode("plain", true), ProgressMode::kPlain);
  EXPECT_EQ(*ParseProgressMode("none", true), ProgressMode::kNone);
  EXPECT_THAT(ParseProgressMode("fancy", true),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "--progress: unknown value 'fancy'"));
}

}  // namespace
}  // namespace gcprune::cli
