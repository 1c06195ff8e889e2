// Implementation of the run progress renderer.
#include "clients/cli/progress_printer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cli/report_format.h"

namespace gcprune::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Carriage return, then ANSI "erase to end of line".
constexpr char kClearLine[] = "\r\x1b[K";

std::string FormatRate(double examples_per_second) {
  if (!(examples_per_second > 0)) return "";
  return absl::StrFormat("%.0f ex/s", examples_per_second);
}

bool InIteration(v1::Phase phase) {
  return phase == v1::PHASE_TRAIN || phase == v1::PHASE_COLLECT || phase == v1::PHASE_PRUNE;
}

}  // namespace

absl::StatusOr<ProgressMode> ParseProgressMode(absl::string_view text, bool is_terminal) {
  const std::string mode = absl::AsciiStrToLower(text);
  if (mode == "auto") return is_terminal ? ProgressMode::kLive : ProgressMode::kPlain;
  if (mode == "live") return ProgressMode::kLive;
  if (mode == "plain") return ProgressMode::kPlain;
  if (mode == "none") return ProgressMode::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("--progress: unknown value '", text, "' (known: auto, live, plain, none)"));
}

ProgressPrinter::ProgressPrinter(std::ostream* out, ProgressMode mode, int width)
    : out_(out), mode_(mode), width_(std::max(width, 20)), running_loss_(kNaN), test_accuracy_(kNaN) {}

void ProgressPrinter::SetRun(const v1::Run& run) {
  run_id_ = run.run_id();
  total_iterations_ = run.total_iterations();
  phase_ = run.phase();
  iteration_ = run.iteration();
  epoch_ = run.epoch();
  epochs_ = run.phase_epochs();
  sparsity_ = run.sparsity();
  test_accuracy_ = run.test_accuracy();
  pruner_state_ = run.pruner_state();
}

std::string ProgressPrinter::Where(v1::Phase phase, int32_t iteration) const {
  if (!InIteration(phase)) return PhaseName(phase);
  const std::string of = total_iterations_ > 0 ? absl::StrCat("/", total_iterations_) : "";
  return absl::StrCat("iter ", iteration, of, " ", PhaseName(phase));
}

void ProgressPrinter::OnEvent(const v1::RunEvent& event) {
  if (mode_ == ProgressMode::kNone) {
    last_sequence_ = std::max(last_sequence_, event.sequence());
    return;
  }
  if (last_sequence_ > 0 && event.sequence() > last_sequence_ + 1) {
    const int64_t missed = event.sequence() - last_sequence_ - 1;
    PrintLasting(absl::StrCat("(", missed, missed == 1 ? " event" : " events",
                              " not received: the trainer drops events for watchers that fall behind)"));
  }
  last_sequence_ = std::max(last_sequence_, event.sequence());
  switch (event.event_case()) {
    case v1::RunEvent::kPhaseChanged: {
      const v1::PhaseChanged& changed = event.phase_changed();
      phase_ = changed.phase();
      iteration_ = changed.iteration();
      epoch_ = 0;
      epochs_ = changed.epochs();
      batch_ = 0;
      batches_ = 0;
      running_loss_ = kNaN;
      // The last phase's throughput and backlog say nothing about the new one.
      examples_per_second_ = 0;
      unacked_steps_ = 0;
      break;
    }
    case v1::RunEvent::kStepProgress: {
      const v1::StepProgress& step = event.step_progress();
      phase_ = step.phase();
      iteration_ = step.iteration();
      epoch_ = step.epoch();
      batch_ = step.batch();
      batches_ = step.batches();
      running_loss_ = step.running_loss();
      examples_per_second_ = step.examples_per_second();
      unacked_steps_ = step.unacked_steps();
      break;
    }
    case v1::RunEvent::kEpochFinished:
      OnEpochFinished(event.epoch_finished());
      break;
    case v1::RunEvent::kMasksApplied:
      OnMasksApplied(event.masks_applied());
      break;
    case v1::RunEvent::kPruner:
      OnPruner(event.pruner());
      break;
    case v1::RunEvent::kFinished:
      OnFinished(event.finished());
      break;
    case v1::RunEvent::EVENT_NOT_SET:
      break;
  }
  Redraw();
}

void ProgressPrinter::OnEpochFinished(const v1::EpochFinished& epoch) {
  phase_ = epoch.phase();
  iteration_ = epoch.iteration();
  epoch_ = epoch.epoch();
  epochs_ = epoch.epochs();
  batch_ = batches_;
  running_loss_ = epoch.train_loss();
  if (std::isfinite(epoch.test_accuracy())) test_accuracy_ = epoch.test_accuracy();
  std::vector<std::string> parts = {absl::StrCat("loss ", FormatLoss(epoch.train_loss()))};
  // Collection epochs measure no training accuracy.
  if (std::isfinite(epoch.train_accuracy())) {
    parts.push_back(absl::StrCat("train acc ", FormatPercent(epoch.train_accuracy())));
  }
  if (std::isfinite(epoch.test_accuracy())) {
    parts.push_back(absl::StrCat("test acc ", FormatPercent(epoch.test_accuracy())));
  }
  if (epoch.learning_rate() > 0) parts.push_back(absl::StrCat("lr ", absl::StrFormat("%.4g", epoch.learning_rate())));
  parts.push_back(FormatSeconds(epoch.seconds()));
  PrintLasting(absl::StrCat(Where(epoch.phase(), epoch.iteration()), " epoch ", epoch.epoch(), "/", epoch.epochs(),
                            ": ", absl::StrJoin(parts, ", ")));
}

void ProgressPrinter::OnMasksApplied(const v1::MasksApplied& masks) {
  iteration_ = masks.iteration();
  masks_iteration_ = masks.iteration();
  sparsity_ = masks.achieved_sparsity();
  if (std::isfinite(masks.test_accuracy())) test_accuracy_ = masks.test_accuracy();
  const std::string where = Where(v1::PHASE_PRUNE, masks.iteration());
  if (masks.skipped()) {
    PrintLasting(absl::StrCat(where, ": the masks did not arrive in time; kept the previous ones (sparsity ",
                              FormatPercent(masks.achieved_sparsity()), ")"));
    return;
  }
  std::string line = absl::StrCat(where, ": sparsity ", FormatPercent(masks.achieved_sparsity()));
  if (std::isfinite(masks.target_sparsity())) {
    absl::StrAppend(&line, " (target ", FormatPercent(masks.target_sparsity()), ")");
  }
  absl::StrAppend(&line, ", test acc ", FormatPercent(masks.test_accuracy()), " right after pruning");
  PrintLasting(line);
}

void ProgressPrinter::OnPruner(const v1::PrunerConnectionChanged& pruner) {
  pruner_state_ = pruner.state();
  if (pruner.state() == v1::PRUNER_STATE_CONNECTING) return;
  std::string line = absl::StrCat("pruner ", pruner.address().empty() ? "" : pruner.address() + " ",
                                  PrunerStateName(pruner.state()));
  if (!pruner.message().empty()) absl::StrAppend(&line, ": ", pruner.message());
  if (pruner.unacked_steps() > 0) absl::StrAppend(&line, " (", pruner.unacked_steps(), " unacked steps kept)");
  PrintLasting(line);
}

void ProgressPrinter::OnFinished(const v1::RunFinished& finished) {
  finished_ = true;
  phase_ = v1::PHASE_DONE;
  sparsity_ = finished.sparsity();
  std::string line = absl::StrCat("run ", run_id_.empty() ? "" : run_id_ + " ", RunStateName(finished.state()));
  if (!finished.message().empty()) absl::StrAppend(&line, ": ", finished.message());
  std::vector<std::string> parts = {absl::StrCat("sparsity ", FormatPercent(finished.sparsity()))};
  if (std::isfinite(finished.final_test_accuracy())) {
    parts.push_back(absl::StrCat("final test acc ", FormatPercent(finished.final_test_accuracy())));
  }
  if (std::isfinite(finished.best_test_accuracy())) {
    parts.push_back(absl::StrCat("best ", FormatPercent(finished.best_test_accuracy())));
  }
  absl::StrAppend(&line, finished.message().empty() ? ": " : "; ", absl::StrJoin(parts, ", "));
  PrintLasting(line);
}

std::string ProgressPrinter::LiveLine() const {
  std::vector<std::string> parts;
  std::string where = Where(phase_, iteration_);
  if (phase_ == v1::PHASE_PRUNE) {
    absl::StrAppend(&where, masks_iteration_ == iteration_ ? ": masks applied" : ": waiting for masks");
  } else if (epoch_ > 0) {
    absl::StrAppend(&where, " epoch ", epoch_);
    if (epochs_ > 0) absl::StrAppend(&where, "/", epochs_);
    if (batches_ > 0) absl::StrAppend(&where, " batch ", batch_, "/", batches_);
  }
  if (std::isfinite(running_loss_) && phase_ != v1::PHASE_PRUNE) absl::StrAppend(&where, " loss ", FormatLoss(running_loss_));
  parts.push_back(where);
  if (std::isfinite(test_accuracy_)) parts.push_back(absl::StrCat("test acc ", FormatPercent(test_accuracy_)));
  parts.push_back(absl::StrCat("sparsity ", FormatPercent(sparsity_)));
  if (pruner_state_ != v1::PRUNER_STATE_UNSPECIFIED && pruner_state_ != v1::PRUNER_STATE_DISABLED) {
    std::string pruner = absl::StrCat("pruner ", PrunerStateName(pruner_state_));
    if (phase_ == v1::PHASE_COLLECT && unacked_steps_ > 0) absl::StrAppend(&pruner, ", ", unacked_steps_, " unacked");
    parts.push_back(pruner);
  }
  if (phase_ != v1::PHASE_PRUNE && phase_ != v1::PHASE_DONE) {
    const std::string rate = FormatRate(examples_per_second_);
    if (!rate.empty()) parts.push_back(rate);
  }
  return absl::StrJoin(parts, " | ");
}

void ProgressPrinter::PrintLasting(const std::string& line) {
  if (mode_ == ProgressMode::kNone) return;
  if (live_drawn_) {
    *out_ << kClearLine;
    live_drawn_ = false;
  }
  *out_ << line << "\n";
}

void ProgressPrinter::Redraw() {
  if (mode_ != ProgressMode::kLive || finished_) {
    out_->flush();
    return;
  }
  std::string line = LiveLine();
  // One column is kept free: a line exactly as wide as the terminal wraps on some terminals.
  if (static_cast<int>(line.size()) > width_ - 1) line.resize(static_cast<size_t>(width_ - 1));
  *out_ << kClearLine << line;
  out_->flush();
  live_drawn_ = true;
}

void ProgressPrinter::Close() {
  if (live_drawn_) {
    *out_ << kClearLine;
    out_->flush();
    live_drawn_ = false;
  }
}

}  // namespace gcprune::cli
