// Tests of the sweep's phase-shift analysis behind `gcprune report --sweep` on hand-built runs and
// reports: grouping by method, the choice of the reference, duplicate sparsities, a method with one run,
// --max_drop, and the text and JSON renderings.
#include "clients/cli/sweep_report.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::cli {
namespace {

using ::gcprune::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A finished run of `method` whose last prune iteration reached `sparsity` with `accuracy` right after
// pruning; one earlier iteration at half the sparsity shows that only the last one counts.
SweepRun MakeRun(const std::string& id, v1::Method method, double target, double sparsity, double accuracy,
                 int64_t created_unix_ms = 1000, double pretrain = 0.82, double finetuned = kNaN) {
  SweepRun sweep_run;
  v1::Run& run = sweep_run.run;
  run.set_run_id(id);
  run.set_state(v1::RUN_STATE_SUCCEEDED);
  run.set_created_unix_ms(created_unix_ms);
  run.set_total_iterations(2);
  run.mutable_spec()->mutable_method()->set_method(method);
  run.mutable_spec()->set_label("sweep-a");
  if (!std::isnan(target)) run.mutable_spec()->mutable_method()->mutable_schedule()->set_target_sparsity(target);
  v1::RunReport& report = sweep_run.report;
  report.set_run_id(id);
  report.set_state(v1::RUN_STATE_SUCCEEDED);
  report.set_pretrain_test_accuracy(pretrain);
  v1::IterationResult* first = report.add_iterations();
  first->set_iteration(1);
  first->set_achieved_sparsity(sparsity / 2);
  first->set_test_accuracy_after_prune(0.1);
  v1::IterationResult* last = report.add_iterations();
  last->set_iteration(2);
  last->set_target_sparsity(sparsity);
  last->set_achieved_sparsity(sparsity);
  last->set_test_accuracy_after_prune(accuracy);
  if (!std::isnan(finetuned)) {
    report.mutable_finetune()->set_epochs(1);
    report.mutable_finetune()->set_last_test_accuracy(finetuned);
  }
  return sweep_run;
}

// A causal-v2 curve that collapses at 98% (71.00% after 76.05% at 95%), a magnitude-global curve that
// does not, and a dense run (method none) at 80.73%.
std::vector<SweepRun> SampleSweep() {
  std::vector<SweepRun> runs = {
      MakeRun("c-50", v1::METHOD_CAUSAL_V2, 0.5, 0.5, 0.80, 1000, 0.82, 0.85),
      MakeRun("c-70", v1::METHOD_CAUSAL_V2, 0.7, 0.7, 0.795),
      MakeRun("c-90", v1::METHOD_CAUSAL_V2, 0.9, 0.9, 0.79),
      MakeRun("c-98", v1::METHOD_CAUSAL_V2, 0.98, 0.98, 0.71),
      MakeRun("c-95", v1::METHOD_CAUSAL_V2, 0.95, 0.95, 0.7605),
      MakeRun("m-30", v1::METHOD_MAGNITUDE_GLOBAL, 0.3, 0.3, 0.80),
      MakeRun("m-60", v1::METHOD_MAGNITUDE_GLOBAL, 0.6, 0.6, 0.79),
      MakeRun("m-90", v1::METHOD_MAGNITUDE_GLOBAL, 0.9, 0.9, 0.78),
  };
  SweepRun none = MakeRun("dense", v1::METHOD_NONE, kNaN, 0.0, 0.8073);
  runs.push_back(none);
  return runs;
}

const SweepMethod* FindMethod(const SweepReport& report, const std::string& name) {
  for (const SweepMethod& method : report.methods) {
    if (method.method == name) return &method;
  }
  return nullptr;
}

TEST(SweepReportTest, FindsTheCollapseOfTheCausalCurveAndNoneForMagnitude) {
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(SampleSweep(), SweepOptions()));
  EXPECT_EQ(report.num_runs, 9);
  EXPECT_EQ(report.reference_source, SweepReferenceSource::kNoneRun);
  EXPECT_DOUBLE_EQ(report.reference_accuracy, 0.8073);
  EXPECT_EQ(report.reference_run_id, "dense");
  ASSERT_EQ(report.methods.size(), 2u);
  EXPECT_EQ(report.methods[0].method, "causal-v2");  // causal methods first
  EXPECT_EQ(report.methods[1].method, "magnitude-global");

  const SweepMethod& causal = report.methods[0];
  ASSERT_EQ(causal.points.size(), 5u);
  for (size_t i = 1; i < causal.points.size(); ++i) EXPECT_LT(causal.points[i - 1].sparsity, causal.points[i].sparsity);
  ASSERT_EQ(causal.results.size(), 2u);
  for (const SweepRuleResult& result : causal.results) {
    SCOPED_TRACE(pruner::PhaseShiftRuleName(result.rule));
    ASSERT_OK(result.shift.status());
    EXPECT_TRUE(result.shift->found);
    EXPECT_DOUBLE_EQ(result.shift->shift_sparsity, 0.98);
    ASSERT_EQ(result.shift_point, 4);
    EXPECT_EQ(causal.points[result.shift_point].run_id, "c-98");
    ASSERT_EQ(result.recommended_point, 3);
    EXPECT_EQ(causal.points[result.recommended_point].run_id, "c-95");
  }

  const SweepMethod& magnitude = report.methods[1];
  for (const SweepRuleResult& result : magnitude.results) {
    ASSERT_OK(result.shift.status());
    EXPECT_FALSE(result.shift->found);
    EXPECT_EQ(result.shift_point, -1);
    EXPECT_EQ(result.recommended_point, 2);
  }

  const std::string text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("Reference (dense) accuracy: 80.73%, the test accuracy of run dense (method none) "
                              "after its last iteration\n"));
  EXPECT_THAT(text, HasSubstr("phase shift (drop-from-reference, 5.0 points below 80.73%): at 98.00% sparsity "
                              "(71.00%); recommended 95.00% (76.05%)\n"));
  EXPECT_THAT(text, HasSubstr("phase shift (steepest-drop, segments dropping more than 5.0 points, from "
                              "80.73% at 0%): at 98.00% sparsity (71.00%), 1.68 points lost per point of sparsity; "
                              "recommended 95.00% (76.05%)\n"));
  EXPECT_THAT(text, HasSubstr("phase shift (drop-from-reference, 5.0 points below 80.73%): no collapse up to 90.00%; "
                              "recommended 90.00% (78.00%)\n"));
  // The table: target, sparsity, accuracy after pruning, fine-tuned, run; "-" where not fine-tuned.
  EXPECT_THAT(text, HasSubstr("  target  sparsity  after prune  fine-tuned  run\n"));
  EXPECT_THAT(text, HasSubstr("  50.00%    50.00%       80.00%      85.00%  c-50\n"));
  EXPECT_THAT(text, HasSubstr("  98.00%    98.00%       71.00%           -  c-98\n"));
  EXPECT_LT(text.find("causal-v2: 5 runs"), text.find("magnitude-global: 3 runs"));
  EXPECT_THAT(text, Not(HasSubstr("none:")));  // method none is only the reference
}

TEST(SweepReportTest, SameSparsityKeepsTheRunCreatedLast) {
  std::vector<SweepRun> runs = SampleSweep();
  runs.push_back(MakeRun("c-90-new", v1::METHOD_CAUSAL_V2, 0.9, 0.9, 0.70, 5000));
  runs.push_back(MakeRun("c-90-old", v1::METHOD_CAUSAL_V2, 0.9, 0.9, 0.60, 10));
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(runs, SweepOptions()));
  const SweepMethod* causal = FindMethod(report, "causal-v2");
  ASSERT_NE(causal, nullptr);
  ASSERT_EQ(causal->points.size(), 5u);
  EXPECT_EQ(causal->points[2].run_id, "c-90-new");
  EXPECT_DOUBLE_EQ(causal->points[2].accuracy, 0.70);
  const std::string text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("note: runs c-90 and c-90-new reached the same sparsity 90.00%; kept c-90-new, "
                              "created last\n"));
  EXPECT_THAT(text, HasSubstr("note: runs c-90-old and c-90-new reached the same sparsity 90.00%; kept c-90-new"));
  // The newer run at 90% has collapsed: the drop rule now stops there.
  EXPECT_THAT(text, HasSubstr("5.0 points below 80.73%): at 90.00% sparsity (70.00%); recommended 70.00% (79.50%)"));
}

TEST(SweepReportTest, AMethodWithOneRunGetsAnErrorLineAndTheOthersStillResults) {
  std::vector<SweepRun> runs = SampleSweep();
  runs.push_back(MakeRun("r-50", v1::METHOD_RANDOM, 0.5, 0.5, 0.40));
  SweepRun empty = MakeRun("r-empty", v1::METHOD_RANDOM, 0.9, 0.9, 0.1);
  empty.report.clear_iterations();
  runs.push_back(empty);
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(runs, SweepOptions()));
  const SweepMethod* random = FindMethod(report, "random");
  ASSERT_NE(random, nullptr);
  ASSERT_EQ(random->points.size(), 1u);
  for (const SweepRuleResult& result : random->results) {
    EXPECT_THAT(result.shift.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
  const std::string text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("random: 1 run on the curve\n"));
  EXPECT_THAT(text, HasSubstr("phase shift (drop-from-reference, 5.0 points below 80.73%): needs runs at two or "
                              "more sparsities, got 1\n"));
  EXPECT_THAT(text, HasSubstr("note: run r-empty: no completed prune iteration; skipped\n"));
  EXPECT_THAT(text, HasSubstr("recommended 95.00% (76.05%)"));  // causal-v2 unaffected
}

TEST(SweepReportTest, MaxDropMovesTheShift) {
  SweepOptions lenient;
  lenient.max_drop = 0.10;
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(SampleSweep(), lenient));
  EXPECT_THAT(FormatSweepText(report),
              HasSubstr("phase shift (drop-from-reference, 10.0 points below 80.73%): no collapse up to 98.00%; "
                        "recommended 98.00% (71.00%)\n"));

  SweepOptions strict;
  strict.max_drop = 0.01;
  strict.rules = {pruner::PhaseShiftRule::kDropFromReference};
  ASSERT_OK_AND_ASSIGN(report, BuildSweepReport(SampleSweep(), strict));
  const std::string text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("(drop-from-reference, 1.0 points below 80.73%): at 70.00% sparsity (79.50%); "
                              "recommended 50.00% (80.00%)\n"));
  EXPECT_THAT(text, Not(HasSubstr("steepest-drop")));
}

TEST(SweepReportTest, ReferenceFromTheFlagOrFromPreTraining) {
  SweepOptions given;
  given.reference_accuracy = 0.9;
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(SampleSweep(), given));
  EXPECT_EQ(report.reference_source, SweepReferenceSource::kFlag);
  std::string text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("Reference (dense) accuracy: 90.00%, given with --reference\n"));
  // Every causal point lies more than 5 points below 90%: no sparsity to recommend.
  EXPECT_THAT(text, HasSubstr("5.0 points below 90.00%): at 50.00% sparsity (80.00%); no sparsity to recommend: "
                              "the least sparse run is already past the shift\n"));

  // Without a dense run: each method's pre-training accuracy (their mean when they differ).
  std::vector<SweepRun> runs = SampleSweep();
  runs.pop_back();
  runs[0].report.set_pretrain_test_accuracy(0.80);
  runs[1].report.set_pretrain_test_accuracy(0.84);
  ASSERT_OK_AND_ASSIGN(report, BuildSweepReport(runs, SweepOptions()));
  EXPECT_EQ(report.reference_source, SweepReferenceSource::kPretraining);
  EXPECT_DOUBLE_EQ(FindMethod(report, "magnitude-global")->reference_accuracy, 0.82);
  EXPECT_DOUBLE_EQ(FindMethod(report, "causal-v2")->reference_accuracy, (0.80 + 0.84 + 3 * 0.82) / 5);
  text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("Reference (dense) accuracy: per method, the pre-training test accuracy of its runs "
                              "(no run with method none)\n"));
  EXPECT_THAT(text, HasSubstr("magnitude-global: 3 runs on the curve, reference 82.00%\n"));
  EXPECT_THAT(text, HasSubstr("note: the pre-training accuracies of its runs differ (80.00% to 84.00%); the "
                              "reference is their mean\n"));

  // No accuracy to refer to: the drop rule says why, the steepest-drop rule works without a reference.
  for (SweepRun& run : runs) run.report.set_pretrain_test_accuracy(kNaN);
  ASSERT_OK_AND_ASSIGN(report, BuildSweepReport(runs, SweepOptions()));
  text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("(drop-from-reference, 5.0 points below the reference): reference_accuracy: required "
                              "by rule drop-from-reference, got NaN\n"));
  EXPECT_THAT(text, HasSubstr("(steepest-drop, segments dropping more than 5.0 points): at 98.00% sparsity"));
}

TEST(SweepReportTest, CausalV1ComparesWithItsOwnPretrainedModel) {
  // causal-v1 rewinds to the pre-trained weights, so a method-none run is not its dense model.
  std::vector<SweepRun> runs = SampleSweep();
  runs.push_back(MakeRun("v1-a", v1::METHOD_CAUSAL_V1, kNaN, 0.40, 0.74, 1000, 0.7387));
  runs.push_back(MakeRun("v1-b", v1::METHOD_CAUSAL_V1, kNaN, 0.92, 0.56, 1000, 0.7387));
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(runs, SweepOptions()));
  const SweepMethod* v1_method = FindMethod(report, "causal-v1");
  ASSERT_NE(v1_method, nullptr);
  EXPECT_DOUBLE_EQ(v1_method->reference_accuracy, 0.7387);
  EXPECT_THAT(FormatSweepText(report), HasSubstr("its reference is its pre-trained accuracy"));
  EXPECT_DOUBLE_EQ(FindMethod(report, "causal-v2")->reference_accuracy, 0.8073);  // the others keep the control
  // A reference given on the command line applies to every method.
  SweepOptions options;
  options.reference_accuracy = 0.9;
  ASSERT_OK_AND_ASSIGN(SweepReport given, BuildSweepReport(runs, options));
  EXPECT_DOUBLE_EQ(FindMethod(given, "causal-v1")->reference_accuracy, 0.9);
}

TEST(SweepReportTest, NewestDenseRunIsTheReference) {
  std::vector<SweepRun> runs = SampleSweep();
  runs.push_back(MakeRun("dense-old", v1::METHOD_NONE, kNaN, 0.0, 0.5, 10));
  SweepRun newer = MakeRun("dense-new", v1::METHOD_NONE, kNaN, 0.0, 0.5, 9000);
  newer.report.clear_iterations();
  newer.report.mutable_finetune()->set_epochs(2);
  newer.report.mutable_finetune()->set_last_test_accuracy(0.81);
  runs.push_back(newer);
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(runs, SweepOptions()));
  EXPECT_EQ(report.reference_run_id, "dense-new");
  EXPECT_DOUBLE_EQ(report.reference_accuracy, 0.81);
  const std::string text = FormatSweepText(report);
  EXPECT_THAT(text, HasSubstr("81.00%, the test accuracy of run dense-new (method none) after fine-tuning\n"));
  EXPECT_THAT(text, HasSubstr("note: 3 runs with method none; the reference is the newest, dense-new\n"));
}

TEST(SweepReportTest, LabelPrefixAndErrors) {
  std::vector<SweepRun> runs = SampleSweep();
  runs.push_back(MakeRun("other", v1::METHOD_RANDOM, 0.5, 0.5, 0.40));
  runs.back().run.mutable_spec()->set_label("other-sweep");
  SweepOptions options;
  options.label_prefix = "sweep-";
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(runs, options));
  EXPECT_EQ(report.num_runs, 9);
  EXPECT_EQ(FindMethod(report, "random"), nullptr);
  EXPECT_THAT(FormatSweepText(report), HasSubstr("note: 1 run left out: label not starting with 'sweep-'\n"));

  options.label_prefix = "nothing-";
  EXPECT_THAT(BuildSweepReport(runs, options).status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  std::vector<SweepRun> dense_only = {MakeRun("dense", v1::METHOD_NONE, kNaN, 0.0, 0.8)};
  EXPECT_THAT(BuildSweepReport(dense_only, SweepOptions()).status(), StatusIs(absl::StatusCode::kFailedPrecondition));

  SweepOptions bad;
  bad.max_drop = 1.5;
  EXPECT_THAT(BuildSweepReport(runs, bad).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  bad.max_drop = 0.05;
  bad.reference_accuracy = -0.1;
  EXPECT_THAT(BuildSweepReport(runs, bad).status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SweepReportTest, JsonIsOneObjectWithPointsAndRuleResults) {
  std::vector<SweepRun> runs = SampleSweep();
  runs.push_back(MakeRun("r-50", v1::METHOD_RANDOM, 0.5, 0.5, 0.40));
  ASSERT_OK_AND_ASSIGN(SweepReport report, BuildSweepReport(runs, SweepOptions()));
  const std::string json = FormatSweepJson(report);
  // Valid JSON: protobuf's parser reads it into a Struct.
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  ASSERT_TRUE(parsed.fields().contains("methods"));
  ASSERT_EQ(parsed.fields().at("methods").list_value().values_size(), 3);
  const google::protobuf::Struct& causal = parsed.fields().at("methods").list_value().values(0).struct_value();
  EXPECT_EQ(causal.fields().at("method").string_value(), "causal-v2");
  EXPECT_EQ(causal.fields().at("points").list_value().values_size(), 5);
  const google::protobuf::Struct& drop = causal.fields().at("phase_shift").list_value().values(0).struct_value();
  EXPECT_EQ(drop.fields().at("rule").string_value(), "drop-from-reference");
  EXPECT_TRUE(drop.fields().at("found").bool_value());
  EXPECT_DOUBLE_EQ(drop.fields().at("shift_sparsity").number_value(), 0.98);
  EXPECT_EQ(drop.fields().at("shift_run_id").string_value(), "c-98");
  EXPECT_DOUBLE_EQ(drop.fields().at("recommended_sparsity").number_value(), 0.95);
  EXPECT_EQ(drop.fields().at("recommended_run_id").string_value(), "c-95");

  EXPECT_THAT(json, HasSubstr("\"reference\": {\n    \"source\": \"none-run\",\n    \"accuracy\": 0.8073,\n"
                              "    \"run_id\": \"dense\""));
  EXPECT_THAT(json, HasSubstr("\"max_drop\": 0.05"));
  EXPECT_THAT(json, HasSubstr("\"finetuned_accuracy\": 0.85"));
  EXPECT_THAT(json, HasSubstr("\"finetuned_accuracy\": null"));  // not fine-tuned
  EXPECT_THAT(json, HasSubstr("\"found\": false"));               // magnitude-global
  EXPECT_THAT(json, HasSubstr("\"error\": \"needs runs at two or more sparsities, got 1\""));
  EXPECT_EQ(json.back(), '\n');
}

TEST(SweepReportTest, ParsesRuleNames) {
  ASSERT_OK_AND_ASSIGN(auto both, ParseSweepRules("both"));
  EXPECT_EQ(both.size(), 2u);
  ASSERT_OK_AND_ASSIGN(auto drop, ParseSweepRules("Drop"));
  ASSERT_EQ(drop.size(), 1u);
  EXPECT_EQ(drop[0], pruner::PhaseShiftRule::kDropFromReference);
  ASSERT_OK_AND_ASSIGN(auto steepest, ParseSweepRules("steepest-drop"));
  EXPECT_EQ(steepest[0], pruner::PhaseShiftRule::kSteepestDrop);
  EXPECT_THAT(ParseSweepRules("median").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::cli
