// Implementation of the command line's renderings of reports and listings.
#include "clients/cli/report_format.h"

#include <cmath>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "clients/cli/text_table.h"
#include "google/protobuf/util/json_util.h"

namespace gcprune::cli {
namespace {

using Align = TextTable::Align;

// "RUN_STATE_SUCCEEDED" -> "SUCCEEDED" for a value the switch below does not know (a newer server).
template <typename E>
std::string StripEnumPrefix(const std::string& name, absl::string_view prefix, E value) {
  if (name.empty()) return absl::StrCat(static_cast<int>(value));
  return std::string(absl::StripPrefix(name, prefix));
}

std::string ModelText(const v1::RunSpec& spec) {
  if (spec.model().has_layers()) return "custom layers";
  return spec.model().preset().empty() ? "-" : spec.model().preset();
}

std::string MethodSummary(const v1::Run& run) {
  const v1::MethodConfig& method = run.spec().method();
  std::string text = MethodName(method.method());
  std::vector<std::string> details;
  if (method.schedule().has_target_sparsity()) {
    details.push_back(absl::StrCat("target ", FormatPercent(method.schedule().target_sparsity())));
  }
  if (run.total_iterations() > 0) {
    details.push_back(absl::StrCat(run.total_iterations(), run.total_iterations() == 1 ? " iteration" : " iterations"));
  }
  if (!details.empty()) absl::StrAppend(&text, " (", absl::StrJoin(details, ", "), ")");
  return text;
}

void AppendIterations(const v1::RunReport& report, std::string* text) {
  if (report.iterations().empty()) {
    absl::StrAppend(text, "Prune iterations: none completed\n");
    return;
  }
  bool any_skipped = false;
  for (const v1::IterationResult& result : report.iterations()) any_skipped = any_skipped || result.skipped();
  // A marked row keeps its column aligned with the unmarked ones.
  const char* unmarked = any_skipped ? " " : "";
  TextTable table({{"iter", Align::kRight},
                   {"target", Align::kRight},
                   {"achieved", Align::kRight},
                   {"test acc", Align::kRight},
                   {"test loss", Align::kRight},
                   {"steps", Align::kRight},
                   {"train", Align::kRight},
                   {"collect", Align::kRight},
                   {"prune wait", Align::kRight}});
  for (const v1::IterationResult& result : report.iterations()) {
    table.AddRow({absl::StrCat(result.iteration()), FormatPercent(result.target_sparsity()),
                  absl::StrCat(FormatPercent(result.achieved_sparsity()), result.skipped() ? "*" : unmarked),
                  FormatPercent(result.test_accuracy_after_prune()), FormatLoss(result.test_loss_after_prune()),
                  FormatCount(result.num_steps()), FormatSeconds(result.train_seconds()),
                  FormatSeconds(result.collect_seconds()), FormatSeconds(result.prune_wait_seconds())});
  }
  absl::StrAppend(text, "Prune iterations (test accuracy and loss right after pruning, before further training):\n",
                  table.Render("  "));
  if (any_skipped) {
    absl::StrAppend(text, "  * the pruner's masks did not arrive in time; the previous masks were kept\n");
  }
}

void AppendTensors(const v1::RunReport& report, std::string* text) {
  if (report.tensors().empty()) return;
  TextTable table({{"tensor", Align::kLeft},
                   {"elements", Align::kRight},
                   {"kept", Align::kRight},
                   {"pruned", Align::kRight},
                   {"sparsity", Align::kRight}});
  int64_t elements = 0;
  int64_t kept = 0;
  int64_t pruned = 0;
  for (const v1::TensorSparsity& tensor : report.tensors()) {
    elements += tensor.num_elements();
    kept += tensor.kept();
    pruned += tensor.pruned();
    table.AddRow({tensor.name().empty() ? absl::StrCat("#", tensor.tensor_index()) : tensor.name(),
                  FormatCount(tensor.num_elements()), FormatCount(tensor.kept()), FormatCount(tensor.pruned()),
                  FormatPercent(tensor.sparsity())});
  }
  table.AddRule();
  table.AddRow({"all", FormatCount(elements), FormatCount(kept), FormatCount(pruned),
                FormatPercent(elements > 0 ? static_cast<double>(pruned) / static_cast<double>(elements) : NAN)});
  absl::StrAppend(text, "\nFinal sparsity per tensor:\n", table.Render("  "));
}

void AppendTimings(const v1::RunReport& report, std::string* text) {
  std::vector<std::string> parts;
  for (const v1::PhaseTiming& timing : report.timings()) {
    parts.push_back(absl::StrCat(PhaseName(timing.phase()), " ", FormatSeconds(timing.seconds())));
  }
  absl::StrAppend(text, "\nTime per phase: ", parts.empty() ? "-" : absl::StrJoin(parts, ", "), "; total ",
                  FormatSeconds(report.total_seconds()), "\n");
}

}  // namespace

std::string RunStateName(v1::RunState state) {
  return StripEnumPrefix(v1::RunState_Name(state), "RUN_STATE_", state);
}

std::string PhaseName(v1::Phase phase) {
  switch (phase) {
    case v1::PHASE_UNSPECIFIED: return "not started";
    case v1::PHASE_PRETRAIN: return "pre-train";
    case v1::PHASE_TRAIN: return "train";
    case v1::PHASE_COLLECT: return "collect";
    case v1::PHASE_PRUNE: return "prune";
    case v1::PHASE_FINETUNE: return "fine-tune";
    case v1::PHASE_DONE: return "done";
    default: return absl::AsciiStrToLower(StripEnumPrefix(v1::Phase_Name(phase), "PHASE_", phase));
  }
}

std::string MethodName(v1::Method method) {
  switch (method) {
    case v1::METHOD_UNSPECIFIED:
    case v1::METHOD_CAUSAL_V2: return "causal-v2";
    case v1::METHOD_CAUSAL_V1: return "causal-v1";
    case v1::METHOD_MAGNITUDE_GLOBAL: return "magnitude-global";
    case v1::METHOD_MAGNITUDE_LAYER: return "magnitude-layer";
    case v1::METHOD_RANDOM: return "random";
    case v1::METHOD_NONE: return "none";
    default: return absl::AsciiStrToLower(StripEnumPrefix(v1::Method_Name(method), "METHOD_", method));
  }
}

std::string PrunerStateName(v1::PrunerState state) {
  return absl::AsciiStrToLower(StripEnumPrefix(v1::PrunerState_Name(state), "PRUNER_STATE_", state));
}

std::string SessionStateName(v1::SessionState state) {
  return StripEnumPrefix(v1::SessionState_Name(state), "SESSION_STATE_", state);
}

std::string FormatPercent(double fraction) {
  if (!std::isfinite(fraction) || fraction < 0) return "-";
  return absl::StrFormat("%.2f%%", 100.0 * fraction);
}

std::string FormatLoss(double value) {
  if (!std::isfinite(value)) return "-";
  return absl::StrFormat("%.4f", value);
}

std::string FormatSeconds(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  if (seconds < 60) return absl::StrFormat("%.1f s", seconds);
  const int64_t whole = static_cast<int64_t>(std::llround(seconds));
  if (whole < 3600) return absl::StrFormat("%d min %02d s", whole / 60, whole % 60);
  return absl::StrFormat("%d h %02d min", whole / 3600, (whole % 3600) / 60);
}

std::string FormatCount(int64_t count) {
  const std::string digits = absl::StrCat(count < 0 ? -count : count);
  std::string text;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
    text += digits[i];
  }
  return count < 0 ? "-" + text : text;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024.0;
  int unit = 0;
  while (value >= 1024.0 && unit < 3) {
    value /= 1024.0;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string FormatUnixMs(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::LocalTimeZone());
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("JSON of ", message.GetTypeName(), ": ", std::string(status.message())));
  }
  if (json.empty() || json.back() != '\n') json += '\n';
  return json;
}

std::string FormatRunReport(const v1::RunReport& report, const v1::Run* run) {
  std::string text = absl::StrCat("Run ", report.run_id(), ": ", RunStateName(report.state()));
  if (report.total_seconds() > 0) absl::StrAppend(&text, " after ", FormatSeconds(report.total_seconds()));
  absl::StrAppend(&text, "\n");
  if (run != nullptr) {
    absl::StrAppend(&text, "  model ", ModelText(run->spec()), " on ",
                    run->spec().data().name().empty() ? "-" : run->spec().data().name(), ", method ",
                    MethodSummary(*run), ", seed ", run->spec().seed(), "\n");
    if (!run->error_message().empty()) absl::StrAppend(&text, "  message: ", run->error_message(), "\n");
  }
  absl::StrAppend(&text, "  ", FormatCount(report.prunable_weights()), " prunable weights");
  if (!report.pruner_session_id().empty()) {
    absl::StrAppend(&text, "; pruner session ", report.pruner_session_id());
  }
  absl::StrAppend(&text, "; ", FormatCount(report.steps_sent()), " steps sent, ", report.pruner_reconnects(),
                  report.pruner_reconnects() == 1 ? " reconnect" : " reconnects", "\n\n");

  absl::StrAppend(&text, "Pre-training: test accuracy ", FormatPercent(report.pretrain_test_accuracy()));
  if (report.has_pretrain_reused()) {
    const v1::PretrainReuse& reuse = report.pretrain_reused();
    absl::StrAppend(&text, " (reused from run ", reuse.source_run_id(), ": ", reuse.epochs(),
                    reuse.epochs() == 1 ? " epoch, " : " epochs, ", absl::StrFormat("%.0f", reuse.seconds_saved()),
                    " s saved)");
  }
  absl::StrAppend(&text, "\n\n");
  AppendIterations(report, &text);
  if (report.has_finetune() && report.finetune().epochs() > 0) {
    const v1::FinetuneResult& finetune = report.finetune();
    absl::StrAppend(&text, "\nFine-tuning: ", finetune.epochs(), finetune.epochs() == 1 ? " epoch" : " epochs",
                    ", last test accuracy ", FormatPercent(finetune.last_test_accuracy()), " (loss ",
                    FormatLoss(finetune.last_test_loss()), "), best ", FormatPercent(finetune.best_test_accuracy()),
                    " (epoch ", finetune.best_epoch(), ")\n");
  } else {
    absl::StrAppend(&text, "\nFine-tuning: not done\n");
  }
  AppendTensors(report, &text);
  AppendTimings(report, &text);
  return text;
}

std::string FormatRunsTable(const v1::ListRunsResponse& runs) {
  TextTable table({{"RUN", Align::kLeft},
                   {"STATE", Align::kLeft},
                   {"PHASE", Align::kLeft},
                   {"ITER", Align::kRight},
                   {"SPARSITY", Align::kRight},
                   {"TEST ACC", Align::kRight},
                   {"METHOD", Align::kLeft},
                   {"MODEL", Align::kLeft},
                   {"CREATED", Align::kLeft},
                   {"LABEL", Align::kLeft}});
  for (const v1::Run& run : runs.runs()) {
    table.AddRow({run.run_id(), RunStateName(run.state()), PhaseName(run.phase()),
                  absl::StrCat(run.iteration(), "/", run.total_iterations()), FormatPercent(run.sparsity()),
                  FormatPercent(run.test_accuracy()), MethodName(run.spec().method().method()),
                  ModelText(run.spec()), FormatUnixMs(run.created_unix_ms()), run.spec().label()});
  }
  return table.Render();
}

std::string FormatSessionsTable(const v1::ListSessionsResponse& sessions) {
  TextTable table({{"SESSION", Align::kLeft},
                   {"STATE", Align::kLeft},
                   {"ATTACHED", Align::kLeft},
                   {"ITER", Align::kRight},
                   {"SPARSITY", Align::kRight},
                   {"SAMPLES", Align::kRight},
                   {"MEMORY", Align::kRight},
                   {"METHOD", Align::kLeft},
                   {"UPDATED", Align::kLeft},
                   {"LABEL", Align::kLeft}});
  for (const v1::SessionInfo& session : sessions.sessions()) {
    std::string memory = FormatBytes(session.memory_bytes());
    if (session.memory_budget_bytes() > 0) absl::StrAppend(&memory, " / ", FormatBytes(session.memory_budget_bytes()));
    table.AddRow({session.session_id(), SessionStateName(session.state()), session.attached() ? "yes" : "no",
                  absl::StrCat(session.completed_iterations(), "/", session.total_iterations()),
                  FormatPercent(session.global_sparsity()), FormatCount(session.stored_samples()), memory,
                  MethodName(session.method().method()), FormatUnixMs(session.updated_unix_ms()),
                  session.label()});
  }
  return table.Render();
}

std::string FormatRunLine(const v1::Run& run) {
  std::string text = absl::StrCat(run.run_id(), ": ", RunStateName(run.state()));
  std::vector<std::string> details;
  if (run.state() == v1::RUN_STATE_RUNNING) {
    details.push_back(PhaseName(run.phase()));
    if (run.total_iterations() > 0) {
      details.push_back(absl::StrCat("iteration ", run.iteration(), "/", run.total_iterations()));
    }
  }
  details.push_back(absl::StrCat("sparsity ", FormatPercent(run.sparsity())));
  if (std::isfinite(run.test_accuracy())) {
    details.push_back(absl::StrCat("test accuracy ", FormatPercent(run.test_accuracy())));
  }
  absl::StrAppend(&text, " (", absl::StrJoin(details, ", "), ")");
  if (!run.error_message().empty()) absl::StrAppend(&text, ": ", run.error_message());
  return text;
}

}  // namespace gcprune::cli
