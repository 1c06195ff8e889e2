// Tests of the training loop: TrainStep and TrainEpoch with the SGD optimizer, bit-identical determinism per
// seed, pruned weights staying exactly zero through many momentum steps, and training snapshots.
#include "trainer_service/engine/trainer.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/reference_net.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::trainer::testing::RandomFloats;

std::unique_ptr<Model> MakePreset(const char* name, uint64_t seed) {
  absl::StatusOr<ModelSpec> spec = PresetModelSpec(name);
  EXPECT_OK(spec);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*spec, seed);
  EXPECT_OK(model);
  return *std::move(model);
}

std::unique_ptr<Optimizer> MakeSgd(Model* model, float momentum, float weight_decay = 0.0f) {
  SgdOptions options;
  options.momentum = momentum;
  options.weight_decay = weight_decay;
  absl::StatusOr<std::unique_ptr<Optimizer>> sgd = CreateSgd(model->parameters(), options);
  EXPECT_OK(sgd);
  return *std::move(sgd);
}

// A learnable synthetic task: the label is the brightest of ten image regions.
Dataset SyntheticData(int64_t size, uint32_t seed) {
  Dataset data;
  data.size = size;
  data.channels = 1;
  data.height = 28;
  data.width = 28;
  data.num_classes = 10;
  data.images = RandomFloats(size * 784, seed, 0.5f);
  data.labels.resize(size);
  for (int64_t i = 0; i < size; ++i) {
    const int label = static_cast<int>((i * 7 + seed) % 10);
    data.labels[i] = label;
    for (int r = 0; r < 28; ++r)
      for (int c = label * 2; c < label * 2 + 6; ++c) data.images[i * 784 + r * 28 + c] += 1.0f;
  }
  return data;
}

std::vector<float> AllValues(Model* model) {
  std::vector<float> values;
  for (const Parameter* p : model->parameters()) values.insert(values.end(), p->data, p->data + p->numel);
  return values;
}

TEST(TrainerTest, TrainStepIsForwardBackwardThenOptimizerStep) {
  std::unique_ptr<Model> model = MakePreset("mlp", 2), twin = MakePreset("mlp", 2);
  std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.9f), twin_sgd = MakeSgd(twin.get(), 0.9f);
  const Dataset data = SyntheticData(32, 1);
  int64_t correct = -1;
  ASSERT_OK_AND_ASSIGN(float loss, TrainStep(model.get(), sgd.get(), data.images, data.labels, 0.05f, &correct));
  ASSERT_OK_AND_ASSIGN(float twin_loss, twin->ForwardBackward(data.images, data.labels));
  twin_sgd->Step(0.05f);
  EXPECT_EQ(loss, twin_loss);
  EXPECT_GE(correct, 0);
  EXPECT_EQ(AllValues(model.get()), AllValues(twin.get()));
  EXPECT_THAT(TrainStep(model.get(), sgd.get(), data.images, data.labels, -1.0f),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "lr must be finite and >= 0, got -1"));
}

TEST(TrainerTest, EpochsLearnAndReportTheirSteps) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 3);
  std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.9f);
  const Dataset data = SyntheticData(300, 2);
  TrainEpochOptions options;
  options.batch_size = 64;
  std::vector<int64_t> steps_seen;
  double first_loss = 0.0;
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    options.epoch = epoch;
    steps_seen.clear();
    ASSERT_OK_AND_ASSIGN(EpochStats stats, TrainEpoch(model.get(), sgd.get(), data, options, [&](int64_t step) {
                           steps_seen.push_back(step);
                           return 0.02f;
                         }));
    EXPECT_EQ(stats.steps, 5);  // ceil(300 / 64)
    EXPECT_EQ(stats.examples, 300);
    EXPECT_GT(stats.images_per_second, 0.0);
    if (epoch == 0) first_loss = stats.mean_loss;
    if (epoch == 2) {
      EXPECT_LT(stats.mean_loss, first_loss);
      EXPECT_GT(stats.accuracy, 0.5);
    }
  }
  EXPECT_EQ(steps_seen, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  ASSERT_OK_AND_ASSIGN(EvalResult eval, model->Evaluate(SyntheticData(200, 9)));
  EXPECT_GT(eval.accuracy, 0.5);
}

TEST(TrainerTest, TrainEpochRejectsMismatchedDataAndOptions) {
  std::unique_ptr<Model> model = MakePreset("mlp", 3);
  std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.0f);
  auto lr = [](int64_t) { return 0.01f; };
  Dataset data = SyntheticData(10, 1);
  TrainEpochOptions options;
  options.batch_size = 0;
  EXPECT_THAT(TrainEpoch(model.get(), sgd.get(), data, options, lr), StatusIs(absl::StatusCode::kInvalidArgument));
  data.height = 14;
  EXPECT_THAT(TrainEpoch(model.get(), sgd.get(), data, {}, lr),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "images are 1x14x28, the model expects 1x28x28"));
  EXPECT_THAT(TrainEpoch(model.get(), sgd.get(), Dataset{}, {}, lr),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty data set"));
}

TEST(TrainerTest, SameSeedGivesBitIdenticalWeightsAndAnotherSeedDoesNot) {
  const Dataset data = SyntheticData(200, 4);
  auto train = [&](uint64_t seed) {
    std::unique_ptr<Model> model = MakePreset("lenet5", seed);
    std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.9f, 5e-4f);
    TrainEpochOptions options;
    options.batch_size = 32;
    options.seed = seed;
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      options.epoch = epoch;
      EXPECT_OK(TrainEpoch(model.get(), sgd.get(), data, options, [](int64_t) { return 0.01f; }));
    }
    return AllValues(model.get());
  };
  const std::vector<float> a = train(11), b = train(11), c = train(12);
  EXPECT_TRUE(a == b);  // 14 steps each, every bit equal
  EXPECT_FALSE(a == c);
}

TEST(TrainerTest, PrunedWeightsStayExactlyZeroThroughMomentumAndWeightDecay) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 5);
  std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.9f, 5e-4f);
  const Dataset data = SyntheticData(128, 5);
  TrainEpochOptions options;
  options.batch_size = 32;
  // Momentum builds up before the masks arrive.
  ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, options, [](int64_t) { return 0.02f; }));
  std::vector<std::vector<uint8_t>> masks;
  for (const Parameter* p : model->prunable_parameters()) {
    std::vector<uint8_t> mask(p->numel, 1);
    for (int64_t i = 0; i < p->numel; i += 2) mask[i] = 0;
    masks.push_back(mask);
  }
  ASSERT_OK(model->SetMasks(masks));
  sgd->ApplyMasks();
  for (int64_t epoch = 1; epoch <= 5; ++epoch) {
    options.epoch = epoch;
    ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, options, [](int64_t) { return 0.02f; }));
  }
  for (const Parameter* p : model->prunable_parameters()) {
    int64_t kept_nonzero = 0;
    for (int64_t i = 0; i < p->numel; ++i) {
      if (i % 2 == 0) {
        ASSERT_EQ(p->data[i], 0.0f) << p->name << "[" << i << "]";
      } else {
        kept_nonzero += p->data[i] != 0.0f;
      }
    }
    EXPECT_GT(kept_nonzero, 0) << p->name;
  }
}

TEST(TrainerTest, RestoreTrainingReplaysBitIdentically) {
  std::unique_ptr<Model> model = MakePreset("mlp", 6);
  std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.9f);
  const Dataset data = SyntheticData(96, 6);
  TrainEpochOptions options;
  options.batch_size = 32;
  auto lr = [](int64_t) { return 0.05f; };
  ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, options, lr));
  const TrainingSnapshot saved = SaveTraining(*model, *sgd);
  options.epoch = 1;
  ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, options, lr));
  const std::vector<float> first_run = AllValues(model.get());
  ASSERT_OK(RestoreTraining(saved, model.get(), sgd.get()));
  ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, options, lr));
  EXPECT_TRUE(AllValues(model.get()) == first_run);
}

TEST(TrainerTest, RewindTrainingKeepsTheCurrentMasks) {
  std::unique_ptr<Model> model = MakePreset("mlp", 7);
  std::unique_ptr<Optimizer> sgd = MakeSgd(model.get(), 0.9f);
  const Dataset data = SyntheticData(64, 7);
  auto lr = [](int64_t) { return 0.05f; };
  ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, {}, lr));
  const TrainingSnapshot pretrained = SaveTraining(*model, *sgd);
  ASSERT_OK(TrainEpoch(model.get(), sgd.get(), data, {}, lr));
  std::vector<std::vector<uint8_t>> masks;
  for (const Parameter* p : model->prunable_parameters()) masks.emplace_back(p->numel, 0);
  masks[0].assign(masks[0].size(), 1);  // keep fc1, prune fc2 and fc3 entirely
  ASSERT_OK(model->SetMasks(masks));
  ASSERT_OK(RewindTraining(pretrained, model.get(), sgd.get()));
  EXPECT_EQ(model->num_pruned_weights(), 800 + 200);
  const Parameter& fc1 = *model->parameters()[0];
  EXPECT_EQ(std::vector<float>(fc1.data, fc1.data + fc1.numel), pretrained.model.values[0]);
  const Parameter& fc2 = *model->parameters()[1];
  EXPECT_TRUE(std::all_of(fc2.data, fc2.data + fc2.numel, [](float v) { return v == 0.0f; }));
  // A refused snapshot changes neither the model nor the optimizer.
  TrainingSnapshot wrong = pretrained;
  wrong.model.values.pop_back();
  const OptimizerState state = sgd->SaveState();
  EXPECT_THAT(RewindTraining(wrong, model.get(), sgd.get()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(sgd->SaveState().slots, state.slots);
  wrong = pretrained;
  wrong.optimizer.kind = "adam";
  EXPECT_THAT(RestoreTraining(wrong, model.get(), sgd.get()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(model->num_pruned_weights(), 800 + 200);
}

}  // namespace
}  // namespace gcprune::trainer
