// The phase shift of a sparsity sweep for `gcprune report --sweep`: groups finished runs by pruning method,
// takes each run's (achieved sparsity, accuracy right after its last prune iteration) as one point of the
// method's curve, chooses the dense reference accuracy and locates the phase shift with
// pruner::FindPhaseShift, then renders the result as text or JSON. Pure: it works on runs and reports that
// were already fetched, so it is tested without a server.
#ifndef GCPRUNE_CLIENTS_CLI_SWEEP_REPORT_H_
#define GCPRUNE_CLIENTS_CLI_SWEEP_REPORT_H_

#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protos/gcprune/v1/trainer.pb.h"
#include "pruner_service/causal/phase_shift.h"

namespace gcprune::cli {

// One run of a sweep as the trainer answered GetRun (or ListRuns) and GetRunReport.
struct SweepRun {
  v1::Run run;
  v1::RunReport report;
};

struct SweepOptions {
  // The rules to apply, each printed on its own line.
  std::vector<pruner::PhaseShiftRule> rules = {pruner::PhaseShiftRule::kDropFromReference,
                                               pruner::PhaseShiftRule::kSteepestDrop};
  // Accuracy drop (absolute, in [0, 1]) that counts as a collapse; PhaseShiftOptions::max_drop.
  double max_drop = 0.05;
  // Dense accuracy in [0, 1] used for every method. NaN: the accuracy of the newest run with method none
  // among the runs (after its last iteration), else per method the mean pre-training accuracy of its runs.
  double reference_accuracy = std::numeric_limits<double>::quiet_NaN();
  // Only runs whose spec.label starts with this (empty: all).
  std::string label_prefix;
};

// Where the reference accuracy came from.
enum class SweepReferenceSource {
  kFlag,         // SweepOptions::reference_accuracy
  kNoneRun,      // a run with method none
  kPretraining,  // per method, the pre-training accuracy of its runs
};

// One point of a method's curve: one run.
struct SweepPoint {
  std::string run_id;
  double target_sparsity = std::numeric_limits<double>::quiet_NaN();  // the spec's, else the schedule's last
  double sparsity = 0.0;  // achieved, after the last prune iteration
  double accuracy = 0.0;  // test accuracy right after the last prune iteration
  double finetuned_accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN: not fine-tuned
};

// The outcome of one rule on one method's curve.
struct SweepRuleResult {
  pruner::PhaseShiftRule rule = pruner::PhaseShiftRule::kDropFromReference;
  absl::StatusOr<pruner::PhaseShift> shift;
  // Indices into SweepMethod::points of the shift and of the recommendation; -1 when there is none (no
  // collapse, or the least sparse run already collapsed, or the recommendation is the dense model that
  // kSteepestDrop puts first on the curve).
  int shift_point = -1;
  int recommended_point = -1;
};

struct SweepMethod {
  std::string method;  // MethodName(), e.g. "causal-v2"
  double reference_accuracy = std::numeric_limits<double>::quiet_NaN();
  std::vector<SweepPoint> points;  // by ascending sparsity
  std::vector<SweepRuleResult> results;  // one per SweepOptions::rules entry, in that order
  std::vector<std::string> notes;  // runs skipped or replaced, differing pre-training accuracies
};

struct SweepReport {
  int num_runs = 0;  // runs considered (after the label filter)
  double max_drop = 0.05;
  SweepReferenceSource reference_source = SweepReferenceSource::kPretraining;
  double reference_accuracy = std::numeric_limits<double>::quiet_NaN();  // NaN for kPretraining
  std::string reference_run_id;  // kNoneRun
  std::string reference_text;    // how the reference was chosen, one phrase
  std::vector<SweepMethod> methods;  // causal-v2, causal-v1, magnitude-global, magnitude-layer, random, others
  std::vector<std::string> notes;    // about the sweep as a whole (runs with method none, filtered runs)
};

// Whether `run` passes the options' filters (its label starts with label_prefix).
bool SweepIncludes(const v1::Run& run, const SweepOptions& options);

// Groups `runs` by method (method none only provides the reference), builds each method's curve and applies
// the rules. Within a method, runs without a completed prune iteration or without a measured accuracy are
// skipped, and of runs with the same achieved sparsity the one created last is kept; notes say so. A
// method with fewer than two points gets an error per rule instead of a result, since one run does not
// make a curve. INVALID_ARGUMENT for options out of range; FAILED_PRECONDITION if no run of a pruning
// method is left to analyse.
absl::StatusOr<SweepReport> BuildSweepReport(const std::vector<SweepRun>& runs, const SweepOptions& options);

// The report as text: the reference, then per method a table (target, achieved sparsity, accuracy right
// after pruning, fine-tuned accuracy, run) and one line per rule.
std::string FormatSweepText(const SweepReport& report);

// The report as one JSON object (fractions in [0, 1], null for values not measured), ending in a newline.
std::string FormatSweepJson(const SweepReport& report);

// "drop", "steepest" or "both" (case-insensitive; also the rules' full names).
absl::StatusOr<std::vector<pruner::PhaseShiftRule>> ParseSweepRules(absl::string_view text);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_SWEEP_REPORT_H_
