// Tests of the element-wise kernels: masking, plain and momentum SGD with deltas, and results independent of
// the thread count on tensors large enough to be split.
#include "trainer_service/engine/elementwise.h"

#include <omp.h>

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trainer_service/engine/reference_net.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::trainer::testing::RandomFloats;
using ::testing::ElementsAre;

TEST(ElementwiseTest, ApplyMaskZeroesMaskedEntriesOnly) {
  std::vector<float> x = {1, -2, 3, 4, 5};
  const std::vector<uint8_t> mask = {1, 0, 1, 0, 1};
  ApplyMask(x.data(), mask.data(), 5);
  EXPECT_THAT(x, ElementsAre(1, 0, 3, 0, 5));
}

TEST(ElementwiseTest, SgdStepWithAndWithoutMaskAndDelta) {
  const std::vector<float> g = {1, 2, -4, 8};
  const std::vector<uint8_t> mask = {1, 0, 1, 1};
  std::vector<float> w = {1, 0, 2, 3};
  std::vector<float> delta(4, 99.0f);
  SgdStep(w.data(), g.data(), mask.data(), 0.5f, delta.data(), 4);
  EXPECT_THAT(w, ElementsAre(0.5f, 0.0f, 4.0f, -1.0f));
  EXPECT_THAT(delta, ElementsAre(-0.5f, 0.0f, 2.0f, -4.0f));
  std::vector<float> w2 = {1, 1, 2, 3};
  SgdStep(w2.data(), g.data(), nullptr, 0.5f, nullptr, 4);
  EXPECT_THAT(w2, ElementsAre(0.5f, 0.0f, 4.0f, -1.0f));
  std::vector<float> w3 = {1, 1, 2, 3};
  SgdStep(w3.data(), g.data(), mask.data(), 0.5f, nullptr, 4);
  EXPECT_THAT(w3, ElementsAre(0.5f, 0.0f, 4.0f, -1.0f));  // a masked weight becomes exactly 0
}

TEST(ElementwiseTest, MomentumStartsWithTheGradientAndKeepsMaskedStateZero) {
  std::vector<float> w = {0, 0, 0};
  std::vector<float> buf = {123, 123, 123};  // ignored at the first step
  std::vector<float> delta(3);
  const std::vector<uint8_t> mask = {1, 1, 0};
  SgdMomentumStep(w.data(), std::vector<float>{1, 2, 3}.data(), buf.data(), /*first=*/true, 0.5f, mask.data(),
                  1.0f, delta.data(), 3);
  EXPECT_THAT(buf, ElementsAre(1, 2, 0));
  EXPECT_THAT(w, ElementsAre(-1, -2, 0));
  EXPECT_THAT(delta, ElementsAre(-1, -2, 0));
  SgdMomentumStep(w.data(), std::vector<float>{1, 0, 3}.data(), buf.data(), /*first=*/false, 0.5f, mask.data(),
                  1.0f, delta.data(), 3);
  EXPECT_THAT(buf, ElementsAre(1.5f, 1.0f, 0.0f));
  EXPECT_THAT(w, ElementsAre(-2.5f, -3.0f, 0.0f));
  EXPECT_THAT(delta, ElementsAre(-1.5f, -1.0f, 0.0f));
}

TEST(ElementwiseTest, ResultsDoNotDependOnTheThreadCount) {
  const int64_t n = 300000;  // above the parallel threshold
  const std::vector<float> g = RandomFloats(n, 1);
  const std::vector<float> w0 = RandomFloats(n, 2);
  std::vector<uint8_t> mask(n);
  for (int64_t i = 0; i < n; ++i) mask[i] = i % 5 != 0;
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> results;
  for (int t : {1, 2}) {
    omp_set_num_threads(t);
    std::vector<float> w = w0, buf(n, 0.0f), delta(n);
    SgdMomentumStep(w.data(), g.data(), buf.data(), true, 0.9f, mask.data(), 0.01f, delta.data(), n);
    SgdMomentumStep(w.data(), g.data(), buf.data(), false, 0.9f, mask.data(), 0.01f, delta.data(), n);
    SgdStep(w.data(), g.data(), mask.data(), 0.01f, delta.data(), n);
    ApplyMask(w.data(), mask.data(), n);
    w.insert(w.end(), delta.begin(), delta.end());
    results.push_back(w);
  }
  omp_set_num_threads(threads);
  EXPECT_TRUE(results[0] == results[1]);
}

}  // namespace
}  // namespace gcprune::trainer
