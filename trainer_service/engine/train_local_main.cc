// gcprune-train-local: trains a preset (or a network given as a layer list) on Fashion-MNIST with the engine
// alone, no services, and prints per-epoch training loss, test accuracy and throughput.
//
//   gcprune-train-local --model=lenet5 --epochs=3 --batch=64 --lr=0.02 --momentum=0.9
//   gcprune-train-local --model="conv:8:3,relu,maxpool:2,flatten,linear:10" --input_shape=1x28x28
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/engine/model_spec.h"
#include "trainer_service/engine/optimizer.h"
#include "trainer_service/engine/trainer.h"

ABSL_FLAG(std::string, model, "lenet5",
          "Preset (mlp, lenet5) or a layer list such as \"conv:20:5,relu,maxpool:2,flatten,linear:10\" "
          "(grammar: trainer_service/engine/model_spec.h)");
ABSL_FLAG(std::string, input_shape, "1x28x28", "Input shape of a layer-list model, CxHxW");
ABSL_FLAG(int, epochs, 3, "Training epochs (>= 1)");
ABSL_FLAG(int, batch, 64, "Training batch size (>= 1)");
ABSL_FLAG(double, lr, 0.02, "Learning rate (> 0), constant");
ABSL_FLAG(double, momentum, 0.9, "SGD momentum in [0, 1)");
ABSL_FLAG(double, weight_decay, 0.0, "SGD weight decay (L2, >= 0)");
ABSL_FLAG(double, label_smoothing, 0.1, "Label smoothing of the cross-entropy, in [0, 1)");
ABSL_FLAG(int64_t, subset, 0, "Train on the first N training images only (0: all 60,000)");
ABSL_FLAG(std::string, data_dir, gcprune::trainer::kDefaultFashionMnistDir,
          "Directory with the four Fashion-MNIST IDX files (gzipped or raw)");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the initialisation and the shuffling");
ABSL_FLAG(int, threads, 0, "OpenMP threads (0: OMP_NUM_THREADS, else one per core)");

namespace gcprune::trainer {
namespace {

absl::Status Run() {
  const int epochs = absl::GetFlag(FLAGS_epochs);
  const int batch = absl::GetFlag(FLAGS_batch);
  const float lr = static_cast<float>(absl::GetFlag(FLAGS_lr));
  if (epochs < 1) return absl::InvalidArgumentError(absl::StrCat("--epochs must be >= 1, got ", epochs));
  if (batch < 1) return absl::InvalidArgumentError(absl::StrCat("--batch must be >= 1, got ", batch));
  if (!(lr > 0.0f)) return absl::InvalidArgumentError(absl::StrCat("--lr must be > 0, got ", lr));

  GCPRUNE_ASSIGN_OR_RETURN(ModelSpec spec,
                           ModelSpecFromFlag(absl::GetFlag(FLAGS_model), absl::GetFlag(FLAGS_input_shape)));
  ModelOptions model_options;
  model_options.label_smoothing = static_cast<float>(absl::GetFlag(FLAGS_label_smoothing));
  model_options.num_threads = absl::GetFlag(FLAGS_threads);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Create(spec, seed, model_options));
  SgdOptions sgd_options;
  sgd_options.momentum = static_cast<float>(absl::GetFlag(FLAGS_momentum));
  sgd_options.weight_decay = static_cast<float>(absl::GetFlag(FLAGS_weight_decay));
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> sgd, CreateSgd(model->parameters(), sgd_options));

  LoadOptions load_options;
  load_options.subset = absl::GetFlag(FLAGS_subset);
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  GCPRUNE_ASSIGN_OR_RETURN(Dataset train, LoadFashionMnist(dir, Split::kTrain, load_options));
  GCPRUNE_ASSIGN_OR_RETURN(Dataset test, LoadFashionMnist(dir, Split::kTest));

  std::printf("%s", model->Summary().c_str());
  std::printf("data: %lld training / %lld test images from %s\n", static_cast<long long>(train.size),
              static_cast<long long>(test.size), dir.c_str());
  std::printf("training: SGD lr %g momentum %g weight decay %g, batch %d, label smoothing %g, seed %llu\n", lr,
              sgd_options.momentum, sgd_options.weight_decay, batch, model_options.label_smoothing,
              static_cast<unsigned long long>(seed));
  TrainEpochOptions options;
  options.batch_size = batch;
  options.seed = seed;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    options.epoch = epoch;
    GCPRUNE_ASSIGN_OR_RETURN(EpochStats stats,
                             TrainEpoch(model.get(), sgd.get(), train, options, [lr](int64_t) { return lr; }));
    GCPRUNE_ASSIGN_OR_RETURN(EvalResult eval, model->Evaluate(test, 1000));
    std::printf("epoch %d/%d: train loss %.4f, train accuracy %.4f | test loss %.4f, test accuracy %.4f | "
                "%.0f images/s (%.1f s)\n",
                epoch + 1, epochs, stats.mean_loss, stats.accuracy, eval.loss, eval.accuracy,
                stats.images_per_second, stats.seconds);
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace gcprune::trainer

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains a model on Fashion-MNIST with the gcprune engine and prints per-epoch loss, accuracy and speed.");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = gcprune::trainer::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "gcprune-train-local: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
