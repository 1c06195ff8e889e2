// Tests of the command line's tables and number formats: the run report, the run and session listings,
// the JSON form, and the text table they are built on.
#include "clients/cli/report_format.h"

#include <cmath>
#include <limits>
#include <string>

#include "clients/cli/text_table.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

v1::RunReport SampleReport() {
  v1::RunReport report;
  report.set_run_id("run-7");
  report.set_state(v1::RUN_STATE_SUCCEEDED);
  report.set_pretrain_test_accuracy(0.8512);
  report.set_prunable_weights(430500);
  report.set_pruner_session_id("s-1");
  report.set_steps_sent(1175);
  report.set_pruner_reconnects(1);
  report.set_total_seconds(151.2);
  for (int j = 1; j <= 2; ++j) {
    v1::IterationResult* it = report.add_iterations();
    it->set_iteration(j);
    it->set_target_sparsity(j == 1 ? 0.2439 : 0.4392);
    it->set_achieved_sparsity(j == 1 ? 0.2439 : 0.4392);
    it->set_test_accuracy_after_prune(0.85 - 0.01 * j);
    it->set_test_loss_after_prune(0.45);
    it->set_num_steps(235);
    it->set_collect_seconds(12.25);
    it->set_skipped(j == 2);
  }
  v1::FinetuneResult* finetune = report.mutable_finetune();
  finetune->set_epochs(3);
  finetune->set_last_test_accuracy(0.8801);
  finetune->set_last_test_loss(0.3312);
  finetune->set_best_test_accuracy(0.8834);
  finetune->set_best_epoch(2);
  v1::TensorSparsity* conv = report.add_tensors();
  conv->set_name("conv1.weight");
  conv->set_num_elements(500);
  conv->set_kept(400);
  conv->set_pruned(100);
  conv->set_sparsity(0.2);
  v1::TensorSparsity* fc = report.add_tensors();
  fc->set_name("fc1.weight");
  fc->set_num_elements(400000);
  fc->set_kept(200000);
  fc->set_pruned(200000);
  fc->set_sparsity(0.5);
  v1::PhaseTiming* timing = report.add_timings();
  timing->set_phase(v1::PHASE_COLLECT);
  timing->set_seconds(61);
  return report;
}

TEST(ReportFormatTest, RunReportHasEverySection) {
  v1::Run run;
  run.set_run_id("run-7");
  run.set_total_iterations(5);
  run.mutable_spec()->mutable_model()->set_preset("lenet5");
  run.mutable_spec()->mutable_data()->set_name("fashion-mnist");
  run.mutable_spec()->mutable_method()->set_method(v1::METHOD_CAUSAL_V2);
  run.mutable_spec()->mutable_method()->mutable_schedule()->set_target_sparsity(0.9);
  run.mutable_spec()->set_seed(3);
  const std::string text = FormatRunReport(SampleReport(), &run);
  EXPECT_THAT(text, HasSubstr("Run run-7: SUCCEEDED after 2 min 31 s\n"));
  EXPECT_THAT(text, HasSubstr("model lenet5 on fashion-mnist, method causal-v2 (target 90.00%, 5 iterations), seed 3"));
  EXPECT_THAT(text, HasSubstr("430,500 prunable weights; pruner session s-1; 1,175 steps sent, 1 reconnect"));
  EXPECT_THAT(text, HasSubstr("Pre-training: test accuracy 85.12%"));
  EXPECT_THAT(text, HasSubstr("iter  target  achieved  test acc  test loss  steps"));
  EXPECT_THAT(text, HasSubstr("     1  24.39%   24.39%     84.00%     0.4500    235"));
  EXPECT_THAT(text, HasSubstr("     2  43.92%   43.92%*    83.00%"));
  EXPECT_THAT(text, HasSubstr("* the pruner's masks did not arrive in time"));
  EXPECT_THAT(text, HasSubstr("Fine-tuning: 3 epochs, last test accuracy 88.01% (loss 0.3312), best 88.34% (epoch 2)"));
  EXPECT_THAT(text, HasSubstr("  conv1.weight       500      400      100    20.00%\n"));
  EXPECT_THAT(text, HasSubstr("  all            400,500  200,400  200,100    49.96%\n"));
  EXPECT_THAT(text, HasSubstr("Time per phase: collect 1 min 01 s; total 2 min 31 s"));
}

TEST(ReportFormatTest, ReportSaysWhenThePretrainingWasReused) {
  v1::RunReport report = SampleReport();
  report.mutable_pretrain_reused()->set_source_run_id("run-3");
  report.mutable_pretrain_reused()->set_epochs(2);
  report.mutable_pretrain_reused()->set_seconds_saved(41.6);
  EXPECT_THAT(FormatRunReport(report, nullptr),
              HasSubstr("Pre-training: test accuracy 85.12% (reused from run run-3: 2 epochs, 42 s saved)\n"));
}

TEST(ReportFormatTest, EmptyReportOfAQueuedRun) {
  v1::RunReport report;
  report.set_run_id("run-1");
  report.set_state(v1::RUN_STATE_QUEUED);
  report.set_pretrain_test_accuracy(kNaN);
  const std::string text = FormatRunReport(report, nullptr);
  EXPECT_THAT(text, HasSubstr("Run run-1: QUEUED\n"));
  EXPECT_THAT(text, HasSubstr("Pre-training: test accuracy -"));
  EXPECT_THAT(text, HasSubstr("Prune iterations: none completed"));
  EXPECT_THAT(text, HasSubstr("Fine-tuning: not done"));
  EXPECT_THAT(text, Not(HasSubstr("Final sparsity per tensor")));
}

TEST(ReportFormatTest, JsonRoundTripsAndKeepsProtoNames) {
  const v1::RunReport report = SampleReport();
  ASSERT_OK_AND_ASSIGN(std::string json, ToJson(report));
  EXPECT_THAT(json, HasSubstr("\"run_id\": \"run-7\""));
  EXPECT_THAT(json, HasSubstr("\"state\": \"RUN_STATE_SUCCEEDED\""));
  EXPECT_THAT(json, HasSubstr("\"skipped\": false"));  // zero fields are printed too
  EXPECT_EQ(json.back(), '\n');
  v1::RunReport parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), report.SerializeAsString());
}

TEST(ReportFormatTest, NumberFormats) {
  EXPECT_EQ(FormatPercent(0.43921), "43.92%");
  EXPECT_EQ(FormatPercent(kNaN), "-");
  EXPECT_EQ(FormatPercent(1), "100.00%");
  EXPECT_EQ(FormatLoss(0.41234), "0.4123");
  EXPECT_EQ(FormatLoss(kNaN), "-");
  EXPECT_EQ(FormatSeconds(12.34), "12.3 s");
  EXPECT_EQ(FormatSeconds(245), "4 min 05 s");
  EXPECT_EQ(FormatSeconds(3720), "1 h 02 min");
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(430500), "430,500");
  EXPECT_EQ(FormatCount(-1234567), "-1,234,567");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(int64_t{405} << 20), "405.0 MiB");
  EXPECT_EQ(FormatBytes(int64_t{1} << 30), "1.0 GiB");
  EXPECT_EQ(FormatUnixMs(0), "-");
}

TEST(ReportFormatTest, EnumNames) {
  EXPECT_EQ(RunStateName(v1::RUN_STATE_CANCELLED), "CANCELLED");
  EXPECT_EQ(PhaseName(v1::PHASE_FINETUNE), "fine-tune");
  EXPECT_EQ(MethodName(v1::METHOD_MAGNITUDE_LAYER), "magnitude-layer");
  EXPECT_EQ(MethodName(v1::METHOD_UNSPECIFIED), "causal-v2");
  EXPECT_EQ(PrunerStateName(v1::PRUNER_STATE_DISCONNECTED), "disconnected");
  EXPECT_EQ(SessionStateName(v1::SESSION_STATE_FITTING), "FITTING");
  // A value from a newer server still prints.
  EXPECT_EQ(RunStateName(static_cast<v1::RunState>(42)), "42");
}

TEST(ReportFormatTest, ListingsAndRunLine) {
  v1::ListRunsResponse runs;
  v1::Run* run = runs.add_runs();
  run->set_run_id("run-2");
  run->set_state(v1::RUN_STATE_RUNNING);
  run->set_phase(v1::PHASE_COLLECT);
  run->set_iteration(2);
  run->set_total_iterations(5);
  run->set_sparsity(0.2439);
  run->set_test_accuracy(kNaN);
  run->mutable_spec()->mutable_model()->set_preset("mlp");
  run->mutable_spec()->set_label("demo");
  const std::string table = FormatRunsTable(runs);
  EXPECT_THAT(table, HasSubstr("RUN    STATE    PHASE    ITER  SPARSITY  TEST ACC  METHOD"));
  EXPECT_THAT(table, HasSubstr("run-2  RUNNING  collect   2/5    24.39%         -  causal-v2  mlp"));
  EXPECT_THAT(table, HasSubstr("demo"));
  EXPECT_EQ(FormatRunLine(*run), "run-2: RUNNING (collect, iteration 2/5, sparsity 24.39%)");

  v1::ListSessionsResponse sessions;
  v1::SessionInfo* session = sessions.add_sessions();
  session->set_session_id("s-9");
  session->set_state(v1::SESSION_STATE_COLLECTING);
  session->set_attached(true);
  session->set_completed_iterations(1);
  session->set_total_iterations(5);
  session->set_global_sparsity(0.2439);
  session->set_stored_samples(120);
  session->set_memory_bytes(int64_t{200} << 20);
  session->set_memory_budget_bytes(int64_t{1} << 30);
  session->set_label("run-2");
  EXPECT_THAT(FormatSessionsTable(sessions),
              HasSubstr("s-9      COLLECTING  yes        1/5    24.39%      120  200.0 MiB / 1.0 GiB  causal-v2"));
}

TEST(TextTableTest, AlignsTrimsAndDrawsRules) {
  TextTable table({{"name", TextTable::Align::kLeft}, {"n", TextTable::Align::kRight}});
  table.AddRow({"a", "1"});
  table.AddRow({"longer", "12345"});
  table.AddRule();
  table.AddRow({"µs", ""});  // two bytes, one column
  table.AddRow({"only"});    // missing cells are blank
  EXPECT_EQ(table.num_rows(), 5);
  EXPECT_EQ(table.Render("> "),
            "> name        n\n"
            "> a           1\n"
            "> longer  12345\n"
            "> -------------\n"
            "> µs\n"
            "> only\n");
}

}  // namespace
}  // namespace gcprune::cli
