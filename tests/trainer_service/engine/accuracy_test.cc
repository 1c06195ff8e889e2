// End-to-end check on real Fashion-MNIST (Debian's dataset-fashion-mnist): one epoch of training reaches the
// accuracy PyTorch reaches with the same recipe. Settings: SGD momentum 0.9, no weight decay, batch 64,
// lr 0.05 (MLP) / 0.02 (LeNet-5), label smoothing 0.1, seed 1, shuffled with the data set's permutation.
#include <memory>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/engine/optimizer.h"
#include "trainer_service/engine/trainer.h"

namespace gcprune::trainer {
namespace {

class AccuracyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<Dataset> train = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain);
    absl::StatusOr<Dataset> test = LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest);
    if (!train.ok() || !test.ok()) {
      load_error_ = new std::string(!train.ok() ? train.status().ToString() : test.status().ToString());
      return;
    }
    train_ = new Dataset(*std::move(train));
    test_ = new Dataset(*std::move(test));
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
    delete load_error_;
  }

  // Trains `preset` for one epoch and returns the test accuracy.
  static double OneEpochAccuracy(const char* preset, float lr) {
    absl::StatusOr<ModelSpec> spec = PresetModelSpec(preset);
    EXPECT_OK(spec);
    absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*spec, /*seed=*/1);
    EXPECT_OK(model);
    SgdOptions sgd_options;
    sgd_options.momentum = 0.9f;
    absl::StatusOr<std::unique_ptr<Optimizer>> sgd = CreateSgd((*model)->parameters(), sgd_options);
    EXPECT_OK(sgd);
    TrainEpochOptions options;
    options.batch_size = 64;
    options.seed = 1;
    absl::StatusOr<EpochStats> stats =
        TrainEpoch(model->get(), sgd->get(), *train_, options, [lr](int64_t) { return lr; });
    EXPECT_OK(stats);
    absl::StatusOr<EvalResult> eval = (*model)->Evaluate(*test_, 1000);
    EXPECT_OK(eval);
    std::printf("    %s: train loss %.4f, test accuracy %.4f, %.0f images/s\n", preset, stats->mean_loss,
                eval->accuracy, stats->images_per_second);
    return eval->accuracy;
  }

  static Dataset* train_;
  static Dataset* test_;
  static std::string* load_error_;
};

Dataset* AccuracyTest::train_ = nullptr;
Dataset* AccuracyTest::test_ = nullptr;
std::string* AccuracyTest::load_error_ = nullptr;

TEST_F(AccuracyTest, MlpReaches78PercentAfterOneEpoch) {
  ASSERT_EQ(load_error_, nullptr) << *load_error_;
  EXPECT_GE(OneEpochAccuracy("mlp", 0.05f), 0.78);
}

TEST_F(AccuracyTest, LeNet5Reaches85PercentAfterOneEpoch) {
  ASSERT_EQ(load_error_, nullptr) << *load_error_;
  EXPECT_GE(OneEpochAccuracy("lenet5", 0.02f), 0.85);
}

}  // namespace
}  // namespace gcprune::trainer
