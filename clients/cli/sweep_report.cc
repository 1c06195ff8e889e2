// Implementation of the sweep's phase-shift analysis and its renderings.
#include "clients/cli/sweep_report.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cli/report_format.h"
#include "clients/cli/text_table.h"

namespace gcprune::cli {
namespace {

using pruner::PhaseShift;
using pruner::PhaseShiftRule;
using Align = TextTable::Align;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool InUnitInterval(double value) { return std::isfinite(value) && value >= 0.0 && value <= 1.0; }

// True if `a` was created after `b`. Runs created in the same millisecond are ordered by id, which the
// trainer assigns in creation order.
bool CreatedAfter(const v1::Run& a, const v1::Run& b) {
  if (a.created_unix_ms() != b.created_unix_ms()) return a.created_unix_ms() > b.created_unix_ms();
  return a.run_id() > b.run_id();
}

// Where a method's table comes in the report: the causal methods first, then the baselines, then names a
// newer server may send.
int MethodRank(const std::string& method) {
  static const char* const kOrder[] = {"causal-v2", "causal-v1", "magnitude-global", "magnitude-layer", "random"};
  for (int i = 0; i < 5; ++i) {
    if (method == kOrder[i]) return i;
  }
  return 5;
}

// "5.0" for 0.05, "2.5" for 0.025, "1.25" for 0.0125: accuracy points with the digits that matter.
std::string FormatPoints(double fraction) {
  std::string text = absl::StrFormat("%.2f", 100.0 * fraction);
  if (text.size() > 3 && text.back() == '0') text.pop_back();
  return text;
}

// The accuracy a run with method none stands for, and the phrase saying which measurement it is.
std::pair<double, std::string> NoneRunAccuracy(const v1::RunReport& report) {
  if (!report.iterations().empty()) {
    const double accuracy = report.iterations(report.iterations_size() - 1).test_accuracy_after_prune();
    if (InUnitInterval(accuracy)) return {accuracy, "after its last iteration"};
  }
  if (report.finetune().epochs() > 0 && InUnitInterval(report.finetune().last_test_accuracy())) {
    return {report.finetune().last_test_accuracy(), "after fine-tuning"};
  }
  if (InUnitInterval(report.pretrain_test_accuracy())) return {report.pretrain_test_accuracy(), "after pre-training"};
  return {kNaN, ""};
}

// A candidate point with what deduplication needs.
struct Candidate {
  SweepPoint point;
  const v1::Run* run = nullptr;
  double pretrain_accuracy = kNaN;
};

// Builds one method's curve from its runs (in any order) and applies the rules.
SweepMethod AnalyzeMethod(const std::string& name, const std::vector<const SweepRun*>& runs,
                          const SweepOptions& options, SweepReferenceSource source, double shared_reference) {
  SweepMethod method;
  method.method = name;
  // Sparsity -> the candidate kept for it. Achieved sparsities are counts over the same total, so equal
  // sparsities compare equal exactly.
  std::map<double, Candidate> by_sparsity;
  for (const SweepRun* sweep_run : runs) {
    const v1::Run& run = sweep_run->run;
    const v1::RunReport& report = sweep_run->report;
    if (report.iterations().empty()) {
      method.notes.push_back(absl::StrCat("run ", run.run_id(), ": no completed prune iteration; skipped"));
      continue;
    }
    const v1::IterationResult& last = report.iterations(report.iterations_size() - 1);
    if (!InUnitInterval(last.achieved_sparsity()) || !InUnitInterval(last.test_accuracy_after_prune())) {
      method.notes.push_back(absl::StrCat(
          "run ", run.run_id(), ": no measured sparsity or accuracy after its last prune iteration; skipped"));
      continue;
    }
    if (run.state() != v1::RUN_STATE_SUCCEEDED) {
      method.notes.push_back(absl::StrCat("run ", run.run_id(), " is ", RunStateName(run.state()),
                                          "; its last completed iteration (", last.iteration(), " of ",
                                          run.total_iterations(), ") counts"));
    }
    Candidate candidate;
    candidate.run = &run;
    candidate.pretrain_accuracy = report.pretrain_test_accuracy();
    SweepPoint& point = candidate.point;
    point.run_id = run.run_id();
    const v1::MethodConfig& config = run.spec().method();
    point.target_sparsity =
        config.schedule().has_target_sparsity() ? config.schedule().target_sparsity() : last.target_sparsity();
    point.sparsity = last.achieved_sparsity();
    point.accuracy = last.test_accuracy_after_prune();
    if (report.finetune().epochs() > 0) point.finetuned_accuracy = report.finetune().last_test_accuracy();

    auto [it, inserted] = by_sparsity.try_emplace(point.sparsity, candidate);
    if (!inserted) {
      // Two runs at one sparsity would make the curve ambiguous (FindPhaseShift rejects it); the newer run
      // is the one a repeated experiment meant to replace.
      const bool newer = CreatedAfter(run, *it->second.run);
      const std::string& kept = newer ? run.run_id() : it->second.point.run_id;
      const std::string& dropped = newer ? it->second.point.run_id : run.run_id();
      method.notes.push_back(absl::StrCat("runs ", dropped, " and ", kept, " reached the same sparsity ",
                                          FormatPercent(point.sparsity), "; kept ", kept, ", created last"));
      if (newer) it->second = candidate;
    }
  }

  std::vector<double> pretrain;
  for (const auto& [sparsity, candidate] : by_sparsity) {
    method.points.push_back(candidate.point);
    if (InUnitInterval(candidate.pretrain_accuracy)) pretrain.push_back(candidate.pretrain_accuracy);
  }

  // causal-v1 rewinds to the pre-trained weights before each measurement (METHOD.md §4), so the dense model
  // its accuracy after pruning compares with is the pre-trained one, not a control run's.
  const bool own_pretraining = source == SweepReferenceSource::kPretraining ||
                               (source == SweepReferenceSource::kNoneRun && name == "causal-v1" && !pretrain.empty());
  if (!own_pretraining) {
    method.reference_accuracy = shared_reference;
  } else if (!pretrain.empty()) {
    if (source == SweepReferenceSource::kNoneRun) {
      method.notes.push_back(
          "causal-v1 rewinds to the pre-trained weights, so its reference is its pre-trained accuracy, not the "
          "method-none run's");
    }
    double sum = 0.0;
    for (double accuracy : pretrain) sum += accuracy;
    method.reference_accuracy = sum / static_cast<double>(pretrain.size());
    const auto [low, high] = std::minmax_element(pretrain.begin(), pretrain.end());
    if (*high - *low > 1e-12) {
      method.notes.push_back(absl::StrCat("the pre-training accuracies of its runs differ (", FormatPercent(*low),
                                          " to ", FormatPercent(*high), "); the reference is their mean"));
    }
  }

  std::vector<pruner::AccuracyPoint> curve;
  for (const SweepPoint& point : method.points) curve.push_back({point.sparsity, point.accuracy});
  for (const PhaseShiftRule rule : options.rules) {
    SweepRuleResult result;
    result.rule = rule;
    if (curve.size() < 2) {
      // FindPhaseShift would answer for one point (its recommendation being that point), but one run does
      // not show where accuracy collapses as sparsity grows.
      result.shift = absl::FailedPreconditionError(
          absl::StrCat("needs runs at two or more sparsities, got ", curve.size()));
      method.results.push_back(std::move(result));
      continue;
    }
    pruner::PhaseShiftOptions shift_options;
    shift_options.rule = rule;
    shift_options.reference_accuracy = method.reference_accuracy;
    shift_options.max_drop = options.max_drop;
    result.shift = pruner::FindPhaseShift(curve, shift_options);
    if (result.shift.ok()) {
      // kSteepestDrop with a reference puts the dense model first on its curve; indices shift by one.
      const int offset = static_cast<int>(result.shift->points.size() - curve.size());
      if (result.shift->found) result.shift_point = result.shift->shift_index - offset;
      if (result.shift->recommended_index >= offset) {
        result.recommended_point = result.shift->recommended_index - offset;
      }
    }
    method.results.push_back(std::move(result));
  }
  return method;
}

// "phase shift (drop-from-reference, 5.0 points below 80.73%)" and the like: the rule with its threshold.
std::string RuleHeading(PhaseShiftRule rule, double reference, double max_drop) {
  std::string text = absl::StrCat("phase shift (", pruner::PhaseShiftRuleName(rule), ", ");
  if (rule == PhaseShiftRule::kDropFromReference) {
    absl::StrAppend(&text, FormatPoints(max_drop), " points below ",
                    std::isfinite(reference) ? FormatPercent(reference) : "the reference", ")");
  } else {
    absl::StrAppend(&text, "segments dropping more than ", FormatPoints(max_drop), " points");
    if (std::isfinite(reference)) absl::StrAppend(&text, ", from ", FormatPercent(reference), " at 0%");
    absl::StrAppend(&text, ")");
  }
  return text;
}

std::string RuleLine(const SweepMethod& method, const SweepRuleResult& result, double max_drop) {
  std::string text = RuleHeading(result.rule, method.reference_accuracy, max_drop);
  if (!result.shift.ok()) return absl::StrCat(text, ": ", result.shift.status().message());
  const PhaseShift& shift = *result.shift;
  if (!shift.found) {
    const SweepPoint& last = method.points.back();
    return absl::StrCat(text, ": no collapse up to ", FormatPercent(last.sparsity), "; recommended ",
                        FormatPercent(last.sparsity), " (", FormatPercent(last.accuracy), ")");
  }
  absl::StrAppend(&text, ": at ", FormatPercent(shift.shift_sparsity), " sparsity (",
                  FormatPercent(shift.shift_accuracy), ")");
  if (result.rule == PhaseShiftRule::kSteepestDrop) {
    // drop is accuracy per unit of sparsity: the same number as accuracy points per sparsity point.
    absl::StrAppend(&text, ", ", absl::StrFormat("%.2f", shift.drop), " points lost per point of sparsity");
  }
  if (result.recommended_point >= 0) {
    const SweepPoint& recommended = method.points[result.recommended_point];
    absl::StrAppend(&text, "; recommended ", FormatPercent(recommended.sparsity), " (",
                    FormatPercent(recommended.accuracy), ")");
  } else {
    absl::StrAppend(&text, "; no sparsity to recommend: the least sparse run is already past the shift");
  }
  return text;
}

// --- JSON ---

std::string JsonString(absl::string_view text) {
  std::string quoted = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': quoted += "\\\""; break;
      case '\\': quoted += "\\\\"; break;
      case '\n': quoted += "\\n"; break;
      case '\r': quoted += "\\r"; break;
      case '\t': quoted += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&quoted, absl::StrFormat("\\u%04x", static_cast<unsigned char>(c)));
        } else {
          quoted += c;
        }
    }
  }
  return quoted + "\"";
}

// A number, or null for NaN and infinities (JSON has neither).
std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  return absl::StrFormat("%.12g", value);
}

std::string JsonStringArray(const std::vector<std::string>& items, const std::string& indent) {
  if (items.empty()) return "[]";
  std::vector<std::string> quoted;
  for (const std::string& item : items) quoted.push_back(absl::StrCat(indent, "  ", JsonString(item)));
  return absl::StrCat("[\n", absl::StrJoin(quoted, ",\n"), "\n", indent, "]");
}

// An object from (key, already rendered value) pairs, indented by `indent`.
std::string JsonObject(const std::vector<std::pair<std::string, std::string>>& fields, const std::string& indent) {
  std::vector<std::string> lines;
  for (const auto& [key, value] : fields) lines.push_back(absl::StrCat(indent, "  ", JsonString(key), ": ", value));
  return absl::StrCat("{\n", absl::StrJoin(lines, ",\n"), "\n", indent, "}");
}

std::string JsonArray(const std::vector<std::string>& items, const std::string& indent) {
  if (items.empty()) return "[]";
  std::vector<std::string> lines;
  for (const std::string& item : items) lines.push_back(absl::StrCat(indent, "  ", item));
  return absl::StrCat("[\n", absl::StrJoin(lines, ",\n"), "\n", indent, "]");
}

std::string JsonRunId(const SweepMethod& method, int point) {
  return point >= 0 ? JsonString(method.points[point].run_id) : "null";
}

std::string RuleJson(const SweepMethod& method, const SweepRuleResult& result, const std::string& indent) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"rule", JsonString(pruner::PhaseShiftRuleName(result.rule))}};
  if (!result.shift.ok()) {
    fields.emplace_back("error", JsonString(result.shift.status().message()));
    return JsonObject(fields, indent);
  }
  const PhaseShift& shift = *result.shift;
  fields.emplace_back("found", shift.found ? "true" : "false");
  fields.emplace_back("shift_sparsity", JsonNumber(shift.shift_sparsity));
  fields.emplace_back("shift_accuracy", JsonNumber(shift.shift_accuracy));
  fields.emplace_back("shift_run_id", JsonRunId(method, result.shift_point));
  const bool has_recommendation = result.recommended_point >= 0;
  fields.emplace_back("recommended_sparsity",
                      JsonNumber(has_recommendation ? method.points[result.recommended_point].sparsity : kNaN));
  fields.emplace_back("recommended_accuracy",
                      JsonNumber(has_recommendation ? method.points[result.recommended_point].accuracy : kNaN));
  fields.emplace_back("recommended_run_id", JsonRunId(method, result.recommended_point));
  fields.emplace_back("drop", JsonNumber(shift.drop));
  return JsonObject(fields, indent);
}

absl::string_view ReferenceSourceName(SweepReferenceSource source) {
  switch (source) {
    case SweepReferenceSource::kFlag: return "flag";
    case SweepReferenceSource::kNoneRun: return "none-run";
    case SweepReferenceSource::kPretraining: return "pretraining";
  }
  return "unknown";
}

}  // namespace

bool SweepIncludes(const v1::Run& run, const SweepOptions& options) {
  return absl::StartsWith(run.spec().label(), options.label_prefix);
}

absl::StatusOr<SweepReport> BuildSweepReport(const std::vector<SweepRun>& runs, const SweepOptions& options) {
  if (!InUnitInterval(options.max_drop)) {
    return absl::InvalidArgumentError(absl::StrCat("max_drop: must be in [0, 1], got ", options.max_drop));
  }
  if (!std::isnan(options.reference_accuracy) && !InUnitInterval(options.reference_accuracy)) {
    return absl::InvalidArgumentError(
        absl::StrCat("reference: must be in [0, 1], got ", options.reference_accuracy));
  }
  if (options.rules.empty()) return absl::InvalidArgumentError("rules: empty");

  SweepReport report;
  report.max_drop = options.max_drop;
  std::vector<const SweepRun*> none_runs;
  std::map<std::string, std::vector<const SweepRun*>> by_method;
  int filtered = 0;
  for (const SweepRun& run : runs) {
    if (!SweepIncludes(run.run, options)) {
      ++filtered;
      continue;
    }
    ++report.num_runs;
    const v1::Method method = run.run.spec().method().method();
    if (method == v1::METHOD_NONE) {
      none_runs.push_back(&run);
    } else {
      by_method[MethodName(method)].push_back(&run);
    }
  }
  if (filtered > 0) {
    report.notes.push_back(absl::StrCat(filtered, filtered == 1 ? " run" : " runs",
                                        " left out: label not starting with '", options.label_prefix, "'"));
  }

  if (!std::isnan(options.reference_accuracy)) {
    report.reference_source = SweepReferenceSource::kFlag;
    report.reference_accuracy = options.reference_accuracy;
    report.reference_text = "given with --reference";
  } else {
    // The newest run with method none that measured an accuracy: a repeated dense run replaces older ones.
    std::sort(none_runs.begin(), none_runs.end(),
              [](const SweepRun* a, const SweepRun* b) { return CreatedAfter(a->run, b->run); });
    for (const SweepRun* run : none_runs) {
      auto [accuracy, what] = NoneRunAccuracy(run->report);
      if (std::isnan(accuracy)) continue;
      report.reference_source = SweepReferenceSource::kNoneRun;
      report.reference_accuracy = accuracy;
      report.reference_run_id = run->run.run_id();
      report.reference_text = absl::StrCat("the test accuracy of run ", run->run.run_id(), " (method none) ", what);
      break;
    }
    if (report.reference_source == SweepReferenceSource::kNoneRun && none_runs.size() > 1) {
      report.notes.push_back(absl::StrCat(none_runs.size(), " runs with method none; the reference is the newest, ",
                                          report.reference_run_id));
    }
    if (report.reference_source == SweepReferenceSource::kPretraining) {
      report.reference_text = absl::StrCat("per method, the pre-training test accuracy of its runs (",
                                           none_runs.empty() ? "no run with method none"
                                                             : "no run with method none measured an accuracy",
                                           ")");
    }
  }

  for (const auto& [name, method_runs] : by_method) {
    report.methods.push_back(
        AnalyzeMethod(name, method_runs, options, report.reference_source, report.reference_accuracy));
  }
  std::stable_sort(report.methods.begin(), report.methods.end(), [](const SweepMethod& a, const SweepMethod& b) {
    return MethodRank(a.method) < MethodRank(b.method);
  });
  const bool any_points = std::any_of(report.methods.begin(), report.methods.end(),
                                      [](const SweepMethod& method) { return !method.points.empty(); });
  if (!any_points) {
    return absl::FailedPreconditionError(absl::StrCat(
        "none of the ", report.num_runs, report.num_runs == 1 ? " run" : " runs",
        " has a completed prune iteration with a pruning method (runs with method none only give the reference)"));
  }
  return report;
}

std::string FormatSweepText(const SweepReport& report) {
  std::string text =
      absl::StrCat("Phase shift of a sweep of ", report.num_runs, report.num_runs == 1 ? " run" : " runs",
                   " (accuracy right after the last prune iteration, before fine-tuning)\n");
  absl::StrAppend(&text, "Reference (dense) accuracy: ");
  if (report.reference_source == SweepReferenceSource::kPretraining) {
    absl::StrAppend(&text, report.reference_text, "\n");
  } else {
    absl::StrAppend(&text, FormatPercent(report.reference_accuracy), ", ", report.reference_text, "\n");
  }
  for (const std::string& note : report.notes) absl::StrAppend(&text, "note: ", note, "\n");

  for (const SweepMethod& method : report.methods) {
    absl::StrAppend(&text, "\n", method.method, ": ", method.points.size(),
                    method.points.size() == 1 ? " run" : " runs", " on the curve");
    if (report.reference_source == SweepReferenceSource::kPretraining) {
      absl::StrAppend(&text, ", reference ", FormatPercent(method.reference_accuracy));
    }
    absl::StrAppend(&text, "\n");
    if (!method.points.empty()) {
      TextTable table({{"target", Align::kRight},
                       {"sparsity", Align::kRight},
                       {"after prune", Align::kRight},
                       {"fine-tuned", Align::kRight},
                       {"run", Align::kLeft}});
      for (const SweepPoint& point : method.points) {
        table.AddRow({FormatPercent(point.target_sparsity), FormatPercent(point.sparsity),
                      FormatPercent(point.accuracy), FormatPercent(point.finetuned_accuracy), point.run_id});
      }
      absl::StrAppend(&text, table.Render("  "));
    }
    for (const SweepRuleResult& result : method.results) {
      absl::StrAppend(&text, "  ", RuleLine(method, result, report.max_drop), "\n");
    }
    for (const std::string& note : method.notes) absl::StrAppend(&text, "  note: ", note, "\n");
  }
  return text;
}

std::string FormatSweepJson(const SweepReport& report) {
  const std::string kMethodIndent = "    ";
  const std::string kItemIndent = "        ";
  std::vector<std::string> methods;
  for (const SweepMethod& method : report.methods) {
    std::vector<std::string> points;
    for (const SweepPoint& point : method.points) {
      points.push_back(JsonObject({{"run_id", JsonString(point.run_id)},
                                   {"target_sparsity", JsonNumber(point.target_sparsity)},
                                   {"sparsity", JsonNumber(point.sparsity)},
                                   {"accuracy_after_prune", JsonNumber(point.accuracy)},
                                   {"finetuned_accuracy", JsonNumber(point.finetuned_accuracy)}},
                                  kItemIndent));
    }
    std::vector<std::string> rules;
    for (const SweepRuleResult& result : method.results) rules.push_back(RuleJson(method, result, kItemIndent));
    methods.push_back(JsonObject({{"method", JsonString(method.method)},
                                  {"reference_accuracy", JsonNumber(method.reference_accuracy)},
                                  {"points", JsonArray(points, kMethodIndent + "  ")},
                                  {"phase_shift", JsonArray(rules, kMethodIndent + "  ")},
                                  {"notes", JsonStringArray(method.notes, kMethodIndent + "  ")}},
                                 kMethodIndent));
  }
  const std::string reference =
      JsonObject({{"source", JsonString(ReferenceSourceName(report.reference_source))},
                  {"accuracy", JsonNumber(report.reference_accuracy)},
                  {"run_id", report.reference_run_id.empty() ? "null" : JsonString(report.reference_run_id)},
                  {"description", JsonString(report.reference_text)}},
                 "  ");
  return JsonObject({{"num_runs", absl::StrCat(report.num_runs)},
                     {"max_drop", JsonNumber(report.max_drop)},
                     {"reference", reference},
                     {"methods", JsonArray(methods, "  ")},
                     {"notes", JsonStringArray(report.notes, "  ")}},
                    "") +
         "\n";
}

absl::StatusOr<std::vector<PhaseShiftRule>> ParseSweepRules(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "both") {
    return std::vector<PhaseShiftRule>{PhaseShiftRule::kDropFromReference, PhaseShiftRule::kSteepestDrop};
  }
  if (lower == "drop" || lower == "drop-from-reference" || lower == "drop_from_reference") {
    return std::vector<PhaseShiftRule>{PhaseShiftRule::kDropFromReference};
  }
  if (lower == "steepest" || lower == "steepest-drop" || lower == "steepest_drop") {
    return std::vector<PhaseShiftRule>{PhaseShiftRule::kSteepestDrop};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--rule: unknown value '", text, "' (known: drop, steepest, both)"));
}

}  // namespace gcprune::cli
