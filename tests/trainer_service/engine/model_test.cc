// Tests of Model: presets and specs, initialisation, whole-model gradients of MLP and LeNet-5 against finite
// differences of a double-precision reference, evaluation, masks, snapshots and input validation.
#include "trainer_service/engine/model.h"

#include <omp.h>

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/engine/reference_net.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::gcprune::trainer::testing::ParamsToDouble;
using ::gcprune::trainer::testing::RandomFloats;
using ::gcprune::trainer::testing::RefForward;
using ::gcprune::trainer::testing::RefLoss;
using ::gcprune::trainer::testing::RefTensor;

std::unique_ptr<Model> MakePreset(const char* name, uint64_t seed = 1, ModelOptions options = {}) {
  absl::StatusOr<ModelSpec> spec = PresetModelSpec(name);
  EXPECT_OK(spec);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*spec, seed, options);
  EXPECT_OK(model);
  return *std::move(model);
}

std::vector<int32_t> Labels(int64_t n, int classes, int offset = 0) {
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((i * 7 + offset) % classes);
  return labels;
}

Dataset RandomDataset(int64_t size, uint32_t seed) {
  Dataset data;
  data.size = size;
  data.channels = 1;
  data.height = 28;
  data.width = 28;
  data.num_classes = 10;
  data.images = RandomFloats(size * 784, seed);
  data.labels = Labels(size, 10, static_cast<int>(seed));
  return data;
}

TEST(ModelTest, PresetsHaveMethodSection6Parameters) {
  std::unique_ptr<Model> mlp = MakePreset("mlp");
  EXPECT_EQ(mlp->num_prunable_weights(), 32360);
  EXPECT_EQ(mlp->num_parameters(), 32360);
  std::vector<std::string> names;
  for (const Parameter* p : mlp->parameters()) names.push_back(p->name);
  EXPECT_THAT(names, ::testing::ElementsAre("fc1.weight", "fc2.weight", "fc3.weight"));

  std::unique_ptr<Model> lenet = MakePreset("lenet5");
  EXPECT_EQ(lenet->num_prunable_weights(), 430500);
  EXPECT_EQ(lenet->num_parameters(), 431080);
  names.clear();
  for (const Parameter* p : lenet->parameters()) names.push_back(p->name);
  EXPECT_THAT(names, ::testing::ElementsAre("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                                            "fc1.bias", "fc2.weight", "fc2.bias"));
  std::vector<std::string> prunable;
  for (const Parameter* p : lenet->prunable_parameters()) prunable.push_back(p->name);
  EXPECT_THAT(prunable, ::testing::ElementsAre("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"));
  EXPECT_EQ(lenet->parameters()[4]->shape, (std::vector<int64_t>{500, 800}));
  EXPECT_EQ(lenet->num_classes(), 10);
  EXPECT_EQ(lenet->input_numel(), 784);
  EXPECT_EQ(lenet->ForwardMacsPerExample(), 288000 + 1600000 + 400000 + 5000);
  // Forward + weight gradients for all four, input gradients for all but conv1.
  EXPECT_EQ(lenet->TrainingFlopsPerExample(), 2 * (2 * 288000 + 3 * (1600000 + 400000 + 5000)));
  EXPECT_THAT(lenet->Summary(), ::testing::HasSubstr("fc1: Linear(in_features=800, out_features=500, bias=True)"));
}

TEST(ModelTest, SeedDeterminesInitialisation) {
  std::unique_ptr<Model> a = MakePreset("lenet5", 42), b = MakePreset("lenet5", 42), c = MakePreset("lenet5", 43);
  for (size_t i = 0; i < a->parameters().size(); ++i) {
    const Parameter& pa = *a->parameters()[i];
    const Parameter& pb = *b->parameters()[i];
    const Parameter& pc = *c->parameters()[i];
    EXPECT_TRUE(std::equal(pa.data, pa.data + pa.numel, pb.data)) << pa.name;
    EXPECT_FALSE(std::equal(pa.data, pa.data + pa.numel, pc.data)) << pa.name;
  }
}

TEST(ModelTest, CreateRejectsSpecsThatAreNotClassifiers) {
  struct Case {
    const char* what;
    const char* layers;
    const char* shape;
    const char* message;
  };
  const Case cases[] = {
      {"linear on a feature map", "conv:20:5,relu,linear:10", "1x28x28",
       "layer 3 'linear:10' on input 20x24x24: fc1: Linear needs a flat input"},
      {"kernel larger than the map", "conv:20:5,maxpool:2,conv:50:13", "1x28x28",
       "layer 3 'conv:50:13' on input 20x12x12: conv2: kernel 13"},
      {"flatten of a flat input", "flatten,flatten,linear:10", "1x4x4", "layer 2 'flatten' on input 16"},
      {"output not flat", "conv:10:3", "1x8x8", "the output must be flat with >= 2 classes"},
      {"one class", "flatten,linear:1", "1x8x8", "got 1"},
      {"no parameters", "flatten", "1x8x8", "no layer with parameters"},
      {"pool on flat input", "maxpool:2,linear:10", "64", "layer 1 'maxpool:2' on input 64"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_OK_AND_ASSIGN(ModelSpec spec, ParseModelSpec(c.layers, c.shape));
    EXPECT_THAT(Model::Create(spec, 1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  ModelSpec empty;
  empty.input_shape = {1, 28, 28};
  EXPECT_THAT(Model::Create(empty, 1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "no layers"));
  ASSERT_OK_AND_ASSIGN(ModelSpec mlp, PresetModelSpec("mlp"));
  ModelOptions bad;
  bad.label_smoothing = 1.0f;
  EXPECT_THAT(Model::Create(mlp, 1, bad),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "label_smoothing must be in [0, 1), got 1"));
  ModelOptions threads;
  threads.num_threads = -1;
  EXPECT_THAT(Model::Create(mlp, 1, threads),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "num_threads must be in [0, 1024], got -1"));
  mlp.input_shape = {28, 28};
  EXPECT_THAT(Model::Create(mlp, 1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "input shape"));
  ASSERT_OK_AND_ASSIGN(ModelSpec huge, ParseModelSpec("flatten,linear:10", "1024x1024x1024"));
  EXPECT_THAT(Model::Create(huge, 1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'1024x1024x1024' exceeds 268435456 elements"));
  ASSERT_OK_AND_ASSIGN(huge, ParseModelSpec("flatten,linear:1048576", "1x32x32"));
  EXPECT_THAT(Model::Create(huge, 1), StatusIsWithMessage(absl::StatusCode::kInvalidArgument,
                                                          "layer 2 'linear:1048576' on input 1024: fc1: weight"));
}

// Checks ForwardBackward's gradients of the mean loss against central differences of the double reference:
// along a random unit direction per tensor (all coordinates at once) and on single coordinates (the largest
// gradients and random ones). Returns the largest error relative to the tensor's gradient norm.
double WholeModelGradientError(Model* model, int64_t batch, int coordinates_per_tensor) {
  const std::vector<float> x = RandomFloats(batch * model->input_numel(), 17);
  const std::vector<int32_t> labels = Labels(batch, model->num_classes());
  absl::StatusOr<float> loss = model->ForwardBackward(x, labels);
  EXPECT_OK(loss);
  std::vector<std::vector<double>> params = ParamsToDouble(model->parameters());
  const RefTensor ref_x{batch, model->input_shape(), std::vector<double>(x.begin(), x.end())};
  const double eps = model->label_smoothing();
  auto objective = [&]() { return RefLoss(RefForward(model->spec().layers, params, ref_x), labels, eps); };
  EXPECT_NEAR(*loss, objective(), 1e-5);

  double worst = 0.0;
  std::mt19937 gen(5);
  const double h = 1e-6;
  for (size_t t = 0; t < params.size(); ++t) {
    const Parameter& p = *model->parameters()[t];
    std::vector<double> g(p.grad, p.grad + p.numel);
    const double norm = std::sqrt(std::inner_product(g.begin(), g.end(), g.begin(), 0.0));
    // Directional derivative along a random unit vector d.
    std::vector<double> d = testing::ToDouble(RandomFloats(p.numel, 100 + static_cast<uint32_t>(t)).data(), p.numel);
    const double d_norm = std::sqrt(std::inner_product(d.begin(), d.end(), d.begin(), 0.0));
    for (double& v : d) v /= d_norm;
    const std::vector<double> saved = params[t];
    for (int64_t i = 0; i < p.numel; ++i) params[t][i] = saved[i] + h * d[i];
    const double plus = objective();
    for (int64_t i = 0; i < p.numel; ++i) params[t][i] = saved[i] - h * d[i];
    const double minus = objective();
    params[t] = saved;
    const double analytic = std::inner_product(g.begin(), g.end(), d.begin(), 0.0);
    worst = std::max(worst, std::abs(analytic - (plus - minus) / (2 * h)) / norm);
    // Single coordinates: the largest |g| first, then random ones.
    std::vector<int64_t> order(p.numel);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + std::min<int64_t>(p.numel, coordinates_per_tensor / 2),
                      order.end(), [&](int64_t a, int64_t b) { return std::abs(g[a]) > std::abs(g[b]); });
    std::uniform_int_distribution<int64_t> any(0, p.numel - 1);
    for (int k = 0; k < coordinates_per_tensor && k < p.numel; ++k) {
      const int64_t i = k < coordinates_per_tensor / 2 ? order[k] : any(gen);
      const double v = params[t][i];
      params[t][i] = v + h;
      const double up = objective();
      params[t][i] = v - h;
      const double down = objective();
      params[t][i] = v;
      worst = std::max(worst, std::abs(g[i] - (up - down) / (2 * h)) / norm);
    }
  }
  return worst;
}

TEST(ModelTest, MlpGradientsMatchFiniteDifferences) {
  std::unique_ptr<Model> model = MakePreset("mlp", 3);
  const double error = WholeModelGradientError(model.get(), /*batch=*/4, /*coordinates_per_tensor=*/40);
  std::printf("    MLP: max gradient error / gradient norm = %.2e\n", error);
  EXPECT_LT(error, 1e-5);
}

TEST(ModelTest, LeNet5GradientsMatchFiniteDifferences) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 3);
  const double error = WholeModelGradientError(model.get(), /*batch=*/2, /*coordinates_per_tensor=*/10);
  std::printf("    LeNet-5: max gradient error / gradient norm = %.2e\n", error);
  EXPECT_LT(error, 1e-5);
}

TEST(ModelTest, InputGradientMatchesFiniteDifferences) {
  ModelOptions options;
  options.input_grad = true;
  std::unique_ptr<Model> model = MakePreset("lenet5", 9, options);
  const int64_t batch = 2;
  const std::vector<float> x = RandomFloats(batch * 784, 4);
  const std::vector<int32_t> labels = Labels(batch, 10);
  ASSERT_OK(model->ForwardBackward(x, labels));
  ASSERT_NE(model->input_grad(), nullptr);
  const std::vector<std::vector<double>> params = ParamsToDouble(model->parameters());
  RefTensor ref_x{batch, {1, 28, 28}, std::vector<double>(x.begin(), x.end())};
  double worst = 0.0, scale = 0.0;
  for (int64_t i = 0; i < batch * 784; i += 61) {
    const double v = ref_x.v[i], h = 1e-6;
    ref_x.v[i] = v + h;
    const double up = RefLoss(RefForward(model->spec().layers, params, ref_x), labels, 0.1);
    ref_x.v[i] = v - h;
    const double down = RefLoss(RefForward(model->spec().layers, params, ref_x), labels, 0.1);
    ref_x.v[i] = v;
    const double numeric = (up - down) / (2 * h);
    worst = std::max(worst, std::abs(numeric - model->input_grad()[i]));
    scale = std::max(scale, std::abs(numeric));
  }
  EXPECT_GT(scale, 0.0);
  EXPECT_LT(worst / scale, 1e-5);
  EXPECT_EQ(MakePreset("lenet5")->input_grad(), nullptr);
}

TEST(ModelTest, LossEqualsForwardBackwardLossAndPlansPerBatchSizeAgree) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 2);
  const std::vector<float> x = RandomFloats(5 * 784, 8);
  const std::vector<int32_t> labels = Labels(5, 10);
  int64_t correct_fb = -1, correct_loss = -1;
  ASSERT_OK_AND_ASSIGN(float fb, model->ForwardBackward(x, labels, &correct_fb));
  ASSERT_OK_AND_ASSIGN(float loss, model->Loss(x, labels, &correct_loss));
  EXPECT_EQ(fb, loss);
  EXPECT_EQ(correct_fb, correct_loss);
  // Another batch size in between (another plan) leaves the first plan's result unchanged.
  ASSERT_OK(model->ForwardBackward(absl::MakeConstSpan(x).subspan(0, 3 * 784), absl::MakeConstSpan(labels).subspan(0, 3)));
  ASSERT_OK_AND_ASSIGN(float again, model->Loss(x, labels));
  EXPECT_EQ(again, loss);
}

TEST(ModelTest, EvaluateMatchesPerBatchLosses) {
  std::unique_ptr<Model> model = MakePreset("mlp", 4);
  const Dataset data = RandomDataset(7, 11);
  ASSERT_OK_AND_ASSIGN(EvalResult whole, model->Evaluate(data, 1000));
  ASSERT_OK_AND_ASSIGN(EvalResult in_threes, model->Evaluate(data, 3));
  EXPECT_EQ(whole.count, 7);
  EXPECT_EQ(whole.correct, in_threes.correct);
  EXPECT_NEAR(whole.loss, in_threes.loss, 1e-6);
  int64_t correct = 0;
  ASSERT_OK_AND_ASSIGN(float loss, model->Loss(data.images, data.labels, &correct));
  EXPECT_NEAR(whole.loss, loss, 1e-5);
  EXPECT_EQ(whole.correct, correct);
  EXPECT_DOUBLE_EQ(whole.accuracy, correct / 7.0);
  // Plain cross-entropy (ε = 0) differs from the smoothed loss.
  EXPECT_NE(whole.cross_entropy, whole.loss);
  ASSERT_OK(model->set_label_smoothing(0.0f));
  ASSERT_OK_AND_ASSIGN(EvalResult plain, model->Evaluate(data, 1000));
  EXPECT_NEAR(plain.loss, whole.cross_entropy, 1e-6);
}

TEST(ModelTest, NumThreadsAppliesToTheCallingThread) {
  const int before = omp_get_max_threads();
  ModelOptions options;
  options.num_threads = 1;
  std::unique_ptr<Model> one = MakePreset("lenet5", 4, options);
  std::unique_ptr<Model> fresh = MakePreset("lenet5", 4);
  const std::vector<float> x = RandomFloats(8 * 784, 3);
  ASSERT_OK_AND_ASSIGN(float loss_one, one->ForwardBackward(x, Labels(8, 10)));
  EXPECT_EQ(omp_get_max_threads(), 1);
  omp_set_num_threads(before);
  ASSERT_OK_AND_ASSIGN(float loss_default, fresh->ForwardBackward(x, Labels(8, 10)));
  EXPECT_NEAR(loss_one, loss_default, 1e-6);
  EXPECT_EQ(omp_get_max_threads(), before);  // num_threads = 0 leaves the thread's setting alone
}

TEST(ModelTest, RejectsMalformedBatches) {
  std::unique_ptr<Model> model = MakePreset("mlp");
  const std::vector<float> x(2 * 784, 0.0f);
  EXPECT_THAT(model->ForwardBackward(x, {}), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty batch"));
  EXPECT_THAT(model->ForwardBackward(x, std::vector<int32_t>{1, 2, 3}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "expected 3 x 784 = 2352 floats for 3 labels, got 1568"));
  EXPECT_THAT(model->ForwardBackward(x, std::vector<int32_t>{1, 10}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "labels[1] = 10 is outside [0, 10)"));
  EXPECT_THAT(model->Loss(x, std::vector<int32_t>{-1, 0}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "labels[0] = -1"));
  EXPECT_THAT(model->set_label_smoothing(-0.1f), StatusIs(absl::StatusCode::kInvalidArgument));

  Dataset data = RandomDataset(4, 1);
  EXPECT_THAT(model->Evaluate(data, 0), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "batch must be >= 1"));
  data.labels[2] = 12;
  EXPECT_THAT(model->Evaluate(data, 2), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "labels[0] = 12"));
  Dataset cifar_like = RandomDataset(4, 1);
  cifar_like.channels = 3;
  EXPECT_THAT(model->Evaluate(cifar_like, 2),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "images are 3x28x28, the model expects 1x28x28"));
  EXPECT_THAT(model->Evaluate(Dataset{}, 2), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty data set"));
}

std::vector<std::vector<uint8_t>> EveryOtherMask(Model* model) {
  std::vector<std::vector<uint8_t>> masks;
  for (const Parameter* p : model->prunable_parameters()) {
    std::vector<uint8_t> mask(p->numel);
    for (int64_t i = 0; i < p->numel; ++i) mask[i] = i % 2 == 0 ? 1 : 0;
    masks.push_back(mask);
  }
  return masks;
}

TEST(ModelTest, MasksZeroWeightsAndGradients) {
  std::unique_ptr<Model> model = MakePreset("lenet5", 5);
  ASSERT_OK(model->SetMasks(EveryOtherMask(model.get())));
  EXPECT_EQ(model->num_pruned_weights(), 430500 / 2);
  const std::vector<float> x = RandomFloats(4 * 784, 1);
  ASSERT_OK(model->ForwardBackward(x, Labels(4, 10)));
  for (const Parameter* p : model->parameters()) {
    SCOPED_TRACE(p->name);
    if (!p->prunable) {
      EXPECT_EQ(p->mask, nullptr);
      continue;
    }
    ASSERT_NE(p->mask, nullptr);
    int64_t nonzero_kept_grads = 0;
    for (int64_t i = 0; i < p->numel; ++i) {
      if (i % 2 == 1) {
        ASSERT_EQ(p->data[i], 0.0f) << i;
        ASSERT_EQ(p->grad[i], 0.0f) << i;
        ASSERT_EQ(p->mask[i], 0) << i;
      } else {
        nonzero_kept_grads += p->grad[i] != 0.0f;
      }
    }
    EXPECT_GT(nonzero_kept_grads, 0);
  }
  model->ClearMasks();
  EXPECT_EQ(model->num_pruned_weights(), 0);
  ASSERT_OK(model->ForwardBackward(x, Labels(4, 10)));
  const Parameter& fc2 = *model->prunable_parameters()[3];
  EXPECT_EQ(fc2.mask, nullptr);
  int64_t odd_nonzero = 0;
  for (int64_t i = 1; i < fc2.numel; i += 2) odd_nonzero += fc2.grad[i] != 0.0f;
  EXPECT_GT(odd_nonzero, 0);
}

TEST(ModelTest, SetMasksRejectsMalformedMasksAndChangesNothing) {
  std::unique_ptr<Model> model = MakePreset("mlp", 5);
  const std::vector<float> before(model->parameters()[0]->data, model->parameters()[0]->data + 10);
  std::vector<std::vector<uint8_t>> masks = EveryOtherMask(model.get());
  masks.pop_back();
  EXPECT_THAT(model->SetMasks(masks),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "expected 3 (one per prunable tensor), got 2"));
  masks = EveryOtherMask(model.get());
  masks[1].resize(5);
  EXPECT_THAT(model->SetMasks(masks),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "mask of fc2.weight: expected 800 bytes, got 5"));
  masks = EveryOtherMask(model.get());
  masks[2][7] = 2;
  EXPECT_THAT(model->SetMasks(masks),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "mask of fc3.weight[7] = 2, expected 0 or 1"));
  EXPECT_EQ(std::vector<float>(model->parameters()[0]->data, model->parameters()[0]->data + 10), before);
  EXPECT_EQ(model->num_pruned_weights(), 0);
  EXPECT_EQ(model->parameters()[0]->mask, nullptr);
}

TEST(ModelTest, SnapshotRestoreAndRewind) {
  std::unique_ptr<Model> model = MakePreset("mlp", 6);
  const ModelSnapshot initial = model->Snapshot();
  ASSERT_OK(model->SetMasks(EveryOtherMask(model.get())));
  const ModelSnapshot masked = model->Snapshot();
  EXPECT_EQ(masked.masks[0].size(), 31360u);

  // Rewind to the unmasked initial weights keeps today's masks.
  ASSERT_OK(model->Rewind(initial));
  EXPECT_EQ(model->num_pruned_weights(), 32360 / 2);
  const Parameter& fc1 = *model->parameters()[0];
  EXPECT_EQ(fc1.data[0], initial.values[0][0]);
  EXPECT_EQ(fc1.data[1], 0.0f);
  EXPECT_NE(initial.values[0][1], 0.0f);

  // Restore brings back values and masks exactly as saved.
  ASSERT_OK(model->Restore(initial));
  EXPECT_EQ(model->num_pruned_weights(), 0);
  EXPECT_EQ(fc1.mask, nullptr);
  EXPECT_EQ(std::vector<float>(fc1.data, fc1.data + fc1.numel), initial.values[0]);
  ASSERT_OK(model->Restore(masked));
  EXPECT_EQ(model->num_pruned_weights(), 32360 / 2);
  ASSERT_NE(fc1.mask, nullptr);

  ModelSnapshot wrong = initial;
  wrong.values.pop_back();
  EXPECT_THAT(model->Restore(wrong),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "holds 2 tensors and 3 masks"));
  wrong = initial;
  wrong.values[1].resize(3);
  EXPECT_THAT(model->Rewind(wrong),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "fc2.weight has 3 values, expected 800"));
  wrong = initial;
  wrong.masks[2].assign(4, 1);
  EXPECT_THAT(model->Restore(wrong),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "mask of fc3.weight has 4 entries"));
  EXPECT_EQ(model->num_pruned_weights(), 32360 / 2);  // unchanged by the refused calls
}

}  // namespace
}  // namespace gcprune::trainer
