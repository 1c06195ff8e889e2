// Renders a run's event stream for people: on a terminal one live status line that is redrawn in place
// (phase, iteration, epoch, batch, loss, accuracy, sparsity, pruner state, throughput) above which
// lasting lines scroll (finished epochs, applied masks, pruner connection changes, the end of the run);
// elsewhere (pipes, logs, CI) only the lasting lines.
#ifndef GCPRUNE_CLIENTS_CLI_PROGRESS_PRINTER_H_
#define GCPRUNE_CLIENTS_CLI_PROGRESS_PRINTER_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protos/gcprune/v1/trainer.pb.h"

namespace gcprune::cli {

enum class ProgressMode {
  kNone,   // print nothing
  kPlain,  // lasting lines only
  kLive,   // lasting lines and a live line redrawn with '\r' and "erase to end of line"
};

// "auto" (kLive if `is_terminal`, i.e. the output is a terminal that can redraw a line, else kPlain),
// "live", "plain" or "none". INVALID_ARGUMENT naming --progress and the value otherwise.
absl::StatusOr<ProgressMode> ParseProgressMode(absl::string_view text, bool is_terminal);

// Not thread-safe: feed it from the thread that reads the stream.
class ProgressPrinter {
 public:
  // `out` must outlive the printer. `width` (columns, >= 20) bounds the live line so that it never wraps,
  // which would break redrawing in place.
  ProgressPrinter(std::ostream* out, ProgressMode mode, int width = 100);
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  // Takes the run's id, planned iterations and current state (e.g. from CreateRun or GetRun).
  void SetRun(const v1::Run& run);
  // Consumes one event; events must come in sequence order. A jump in `sequence` (events the trainer
  // dropped for a slow watcher) is reported in a lasting line.
  void OnEvent(const v1::RunEvent& event);
  // Erases the live line, so that other output can follow on a clean line. Idempotent; the next event
  // draws it again.
  void Close();

  // The live line as it would be drawn now (without control characters); for tests.
  std::string LiveLine() const;
  // Sequence number of the last event consumed, 0 before the first.
  int64_t last_sequence() const { return last_sequence_; }

 private:
  void PrintLasting(const std::string& line);
  void Redraw();
  std::string Where(v1::Phase phase, int32_t iteration) const;
  void OnEpochFinished(const v1::EpochFinished& epoch);
  void OnMasksApplied(const v1::MasksApplied& masks);
  void OnPruner(const v1::PrunerConnectionChanged& pruner);
  void OnFinished(const v1::RunFinished& finished);

  std::ostream* out_;
  ProgressMode mode_;
  int width_;
  bool live_drawn_ = false;

  std::string run_id_;
  int64_t last_sequence_ = 0;
  int32_t total_iterations_ = 0;
  v1::Phase phase_ = v1::PHASE_UNSPECIFIED;
  int32_t iteration_ = 0;
  int32_t epoch_ = 0;
  int32_t epochs_ = 0;
  int64_t batch_ = 0;
  int64_t batches_ = 0;
  double running_loss_;
  double examples_per_second_ = 0;
  int64_t unacked_steps_ = 0;
  double test_accuracy_;
  double sparsity_ = 0;
  v1::PrunerState pruner_state_ = v1::PRUNER_STATE_UNSPECIFIED;
  int32_t masks_iteration_ = 0;  // the last iteration whose masks were applied
  bool finished_ = false;
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_PROGRESS_PRINTER_H_
