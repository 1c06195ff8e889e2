// The training loop over a Model: one optimizer step, one epoch over a data set with throughput figures,
// and snapshots of model plus optimizer state (METHOD.md §3.5: the collection epoch is discarded).
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_TRAINER_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_TRAINER_H_

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/engine/optimizer.h"

namespace gcprune::trainer {

// One training step: ForwardBackward on the batch, then optimizer->Step(lr). Returns the batch's mean loss
// (before the step); `correct` receives the batch's arg-max hits when not null. The optimizer must have been
// created over model->parameters(). INVALID_ARGUMENT for lr not finite or < 0 and for a malformed batch
// (nothing changes then); errors of Model::ForwardBackward.
absl::StatusOr<float> TrainStep(Model* model, Optimizer* optimizer, absl::Span<const float> images,
                                absl::Span<const int32_t> labels, float lr, int64_t* correct = nullptr);

struct TrainEpochOptions {
  int batch_size = 256;  // >= 1; the last batch may be smaller
  bool shuffle = true;   // order = BatchIterator's seeded permutation of (seed, epoch)
  uint64_t seed = 0;
  int64_t epoch = 0;     // >= 0
};

struct EpochStats {
  int64_t steps = 0;
  int64_t examples = 0;
  double mean_loss = 0.0;  // mean over examples of the batches' losses (before each step)
  double accuracy = 0.0;   // training accuracy over the epoch, in [0, 1]
  double seconds = 0.0;    // wall time of the whole epoch, batching included
  double images_per_second = 0.0;
};

// One pass over `data` with TrainStep; `lr(step)` gives the learning rate of the epoch's step `step`
// (0-based). INVALID_ARGUMENT if the data set is empty or its images do not match the model's input shape,
// or for options out of range; otherwise the first failing step's error (the epoch stops there).
absl::StatusOr<EpochStats> TrainEpoch(Model* model, Optimizer* optimizer, const Dataset& data,
                                      const TrainEpochOptions& options, absl::FunctionRef<float(int64_t)> lr);

// Everything training changes: parameter values, masks and the optimizer's state.
struct TrainingSnapshot {
  ModelSnapshot model;
  OptimizerState optimizer;
};

TrainingSnapshot SaveTraining(const Model& model, const Optimizer& optimizer);
// Restores values, masks and optimizer state exactly as saved. INVALID_ARGUMENT (nothing changed) if the
// snapshot does not fit the model or the optimizer.
absl::Status RestoreTraining(const TrainingSnapshot& snapshot, Model* model, Optimizer* optimizer);
// Restores values and optimizer state but keeps the current masks, re-applied to weights and optimizer
// state (rewinding a pruned model to earlier weights). INVALID_ARGUMENT (nothing changed) as RestoreTraining.
absl::Status RewindTraining(const TrainingSnapshot& snapshot, Model* model, Optimizer* optimizer);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_TRAINER_H_
