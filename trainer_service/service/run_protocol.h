// The outer pruning protocol of one run (METHOD.md §3–§5): pre-train; per iteration train (not before the
// first), snapshot, collect causal steps into the pruning link, wait for the masks, restore the snapshot,
// optionally rewind, apply the masks and evaluate; then fine-tune. Progress goes to the RunRecord as
// events and report entries.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_PROTOCOL_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_PROTOCOL_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protos/gcprune/v1/common.pb.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/service/pretrain_cache.h"
#include "trainer_service/service/pruning_link.h"
#include "trainer_service/service/run_data.h"
#include "trainer_service/service/run_plan.h"
#include "trainer_service/service/run_record.h"

namespace gcprune::trainer {

// Creates the run's link once the model (and so its layout) exists.
using PruningLinkFactory =
    std::function<absl::StatusOr<std::unique_ptr<PruningLink>>(const gcprune::v1::Layout& layout)>;

struct ProtocolOptions {
  // Least time between two StepProgress events of the run, > 0.
  absl::Duration progress_interval = absl::Seconds(1);
  // Called after each iteration's masks are applied, with the 1-based iteration and the model (tests
  // and tools that inspect the masks). May be empty.
  std::function<void(int iteration, const Model& model)> on_masks_applied;
  // Called once after fine-tuning, when every phase ran, with the final model (tools that measure it,
  // e.g. gcprune-flatness). May be empty.
  std::function<void(const Model& model)> on_finished;
  // OpenMP threads of the run's model (ModelOptions::num_threads); 0 = OpenMP's default.
  int threads = 0;
  // Where pre-trained models are kept for runs with the same pre-training; null = always pre-train.
  // A run with spec.fresh_pretraining pre-trains even on a hit (and stores its result).
  PretrainCache* pretrain_cache = nullptr;
};

// Every tensor of `model` in parameters() order, weights of Linear and Conv2d layers flagged prunable.
gcprune::v1::Layout LayoutOfModel(Model& model);

// Runs `plan` on `data` to the end, writing progress, events and the report into `record` (whose state
// the caller moves to RUNNING before and to a terminal state after). Returns OK when all phases ran;
// CANCELLED (with the reason) when record->RequestCancel was called (checked between batches and while
// waiting for masks); otherwise the error that ends the run: the link factory's and the link's (strict
// pruner policy), the engine's (INVALID_ARGUMENT, INTERNAL from oneDNN), ... The link is closed in
// every case.
absl::Status RunProtocol(const RunPlan& plan, const RunData& data, const PruningLinkFactory& make_link,
                         RunRecord* record, const ProtocolOptions& options = {});

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_PROTOCOL_H_
