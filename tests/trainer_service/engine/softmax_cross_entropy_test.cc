// Tests of the label-smoothed softmax cross-entropy: hand-computed values, the gradient against finite
// differences, arg-max ties, numerical stability, and sums independent of the thread count.
#include "trainer_service/engine/softmax_cross_entropy.h"

#include <omp.h>

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/trainer_service/engine/reference_net.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::trainer::testing::RandomFloats;
using ::gcprune::trainer::testing::RefLoss;
using ::gcprune::trainer::testing::RefTensor;

TEST(SoftmaxCrossEntropyTest, MatchesHandComputedValues) {
  // Two equal logits: −log ½.
  const float even[] = {0.0f, 0.0f};
  const int32_t label0[] = {0};
  CrossEntropySums sums = SoftmaxCrossEntropy(even, label0, 1, 2, 0.0f, nullptr);
  EXPECT_NEAR(sums.loss, std::log(2.0), 1e-7);
  EXPECT_EQ(sums.correct, 1);  // a tie goes to the first class

  // logits (1, 2, 3), label 2: lse = 3 + log(1 + e^−1 + e^−2); −log p_2 = lse − 3; mean_c(−log p_c) = lse − 2.
  const float x[] = {1.0f, 2.0f, 3.0f};
  const int32_t label2[] = {2};
  const double lse = 3.0 + std::log(1.0 + std::exp(-1.0) + std::exp(-2.0));
  sums = SoftmaxCrossEntropy(x, label2, 1, 3, 0.1f, nullptr);
  EXPECT_NEAR(sums.cross_entropy, lse - 3.0, 1e-6);
  EXPECT_NEAR(sums.loss, 0.9 * (lse - 3.0) + 0.1 * (lse - 2.0), 1e-6);
  EXPECT_EQ(sums.correct, 1);

  // Gradient of that row: softmax − 0.9·onehot − 0.1/3.
  float grad[3];
  SoftmaxCrossEntropy(x, label2, 1, 3, 0.1f, grad);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(grad[0], std::exp(1.0) / z - 0.1 / 3, 1e-7);
  EXPECT_NEAR(grad[1], std::exp(2.0) / z - 0.1 / 3, 1e-7);
  EXPECT_NEAR(grad[2], std::exp(3.0) / z - 0.9 - 0.1 / 3, 1e-7);
}

TEST(SoftmaxCrossEntropyTest, GradientOfTheMeanMatchesFiniteDifferences) {
  const int64_t n = 7, c = 10;
  const std::vector<float> logits = RandomFloats(n * c, 3, 2.0f);
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>((i * 3) % c);
  std::vector<float> grad(n * c);
  const CrossEntropySums sums = SoftmaxCrossEntropy(logits.data(), labels.data(), n, c, 0.1f, grad.data());
  RefTensor ref{n, {c}, std::vector<double>(logits.begin(), logits.end())};
  EXPECT_NEAR(sums.loss / n, RefLoss(ref, labels, 0.1), 1e-6);
  for (int64_t i = 0; i < n * c; ++i) {
    const double saved = ref.v[i], h = 1e-6;
    ref.v[i] = saved + h;
    const double plus = RefLoss(ref, labels, 0.1);
    ref.v[i] = saved - h;
    const double minus = RefLoss(ref, labels, 0.1);
    ref.v[i] = saved;
    EXPECT_NEAR(grad[i], (plus - minus) / (2 * h), 1e-7) << "element " << i;
  }
}

TEST(SoftmaxCrossEntropyTest, LargeLogitsStayFinite) {
  const float x[] = {1000.0f, -1000.0f, 0.0f};
  const int32_t label[] = {1};
  float grad[3];
  const CrossEntropySums sums = SoftmaxCrossEntropy(x, label, 1, 3, 0.0f, grad);
  EXPECT_NEAR(sums.loss, 2000.0, 1e-3);
  EXPECT_NEAR(grad[0], 1.0f, 1e-6);
  EXPECT_NEAR(grad[1], -1.0f, 1e-6);
  EXPECT_NEAR(grad[2], 0.0f, 1e-6);
}

TEST(SoftmaxCrossEntropyTest, SumsDoNotDependOnTheThreadCount) {
  const int64_t n = 1000, c = 10;  // several chunks
  const std::vector<float> logits = RandomFloats(n * c, 5);
  std::vector<int32_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i % c);
  const int threads = omp_get_max_threads();
  std::vector<float> grad1(n * c), grad2(n * c);
  omp_set_num_threads(1);
  const CrossEntropySums one = SoftmaxCrossEntropy(logits.data(), labels.data(), n, c, 0.1f, grad1.data());
  omp_set_num_threads(2);
  const CrossEntropySums two = SoftmaxCrossEntropy(logits.data(), labels.data(), n, c, 0.1f, grad2.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(one.loss, two.loss);
  EXPECT_EQ(one.cross_entropy, two.cross_entropy);
  EXPECT_EQ(one.correct, two.correct);
  EXPECT_EQ(grad1, grad2);
  // Without a gradient buffer the sums are the same.
  const CrossEntropySums no_grad = SoftmaxCrossEntropy(logits.data(), labels.data(), n, c, 0.1f, nullptr);
  EXPECT_EQ(no_grad.loss, one.loss);
}

}  // namespace
}  // namespace gcprune::trainer
