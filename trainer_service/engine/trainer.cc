// Training step, epoch loop and training snapshots.
#include "trainer_service/engine/trainer.h"

#include <chrono>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace gcprune::trainer {

absl::StatusOr<float> TrainStep(Model* model, Optimizer* optimizer, absl::Span<const float> images,
                                absl::Span<const int32_t> labels, float lr, int64_t* correct) {
  if (!(std::isfinite(lr) && lr >= 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("TrainStep: lr must be finite and >= 0, got ", lr));
  }
  GCPRUNE_ASSIGN_OR_RETURN(float loss, model->ForwardBackward(images, labels, correct));
  optimizer->Step(lr);
  return loss;
}

absl::StatusOr<EpochStats> TrainEpoch(Model* model, Optimizer* optimizer, const Dataset& data,
                                      const TrainEpochOptions& options, absl::FunctionRef<float(int64_t)> lr) {
  if (data.size < 1) return absl::InvalidArgumentError("TrainEpoch: empty data set");
  const Shape& shape = model->input_shape();
  const bool shape_ok = data.image_numel() == model->input_numel() &&
                        (shape.size() != 3 ||
                         (data.channels == shape[0] && data.height == shape[1] && data.width == shape[2]));
  if (!shape_ok) {
    return absl::InvalidArgumentError(absl::StrCat("TrainEpoch: data set images are ", data.channels, "x",
                                                   data.height, "x", data.width, ", the model expects ",
                                                   ShapeToString(shape)));
  }
  GCPRUNE_ASSIGN_OR_RETURN(BatchIterator batches, BatchIterator::Create(data, options.batch_size, options.shuffle,
                                                                        options.seed, options.epoch));
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> images;
  std::vector<int32_t> labels;
  EpochStats stats;
  double loss_sum = 0.0;
  int64_t correct_sum = 0;
  for (int n = batches.Next(&images, &labels); n > 0; n = batches.Next(&images, &labels)) {
    int64_t correct = 0;
    GCPRUNE_ASSIGN_OR_RETURN(float loss, TrainStep(model, optimizer, images, labels, lr(stats.steps), &correct));
    loss_sum += static_cast<double>(loss) * n;
    correct_sum += correct;
    stats.examples += n;
    ++stats.steps;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stats.mean_loss = loss_sum / static_cast<double>(stats.examples);
  stats.accuracy = static_cast<double>(correct_sum) / static_cast<double>(stats.examples);
  stats.images_per_second = stats.seconds > 0.0 ? static_cast<double>(stats.examples) / stats.seconds : 0.0;
  return stats;
}

TrainingSnapshot SaveTraining(const Model& model, const Optimizer& optimizer) {
  return TrainingSnapshot{model.Snapshot(), optimizer.SaveState()};
}

namespace {

// Loads the optimizer state first: it is the check that can fail after the model's own check passed, and
// it leaves the optimizer unchanged on failure.
absl::Status Load(const TrainingSnapshot& snapshot, Model* model, Optimizer* optimizer, bool keep_masks) {
  const OptimizerState previous = optimizer->SaveState();
  GCPRUNE_RETURN_IF_ERROR(optimizer->LoadState(snapshot.optimizer));
  const absl::Status status = keep_masks ? model->Rewind(snapshot.model) : model->Restore(snapshot.model);
  if (!status.ok()) {
    // The model refused the snapshot and is unchanged; put the optimizer back as it was.
    (void)optimizer->LoadState(previous);
    return status;
  }
  optimizer->ApplyMasks();
  return absl::OkStatus();
}

}  // namespace

absl::Status RestoreTraining(const TrainingSnapshot& snapshot, Model* model, Optimizer* optimizer) {
  return Load(snapshot, model, optimizer, /*keep_masks=*/false);
}

absl::Status RewindTraining(const TrainingSnapshot& snapshot, Model* model, Optimizer* optimizer) {
  return Load(snapshot, model, optimizer, /*keep_masks=*/true);
}

}  // namespace gcprune::trainer
