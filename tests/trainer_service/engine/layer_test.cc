// Tests of the shared layer helpers: shapes, PyTorch output sizes and oneDNN right padding, size limits, and
// parameter storage and initialisation.
#include "trainer_service/engine/layer.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace gcprune::trainer {
namespace {

TEST(LayerTest, ShapeHelpers) {
  EXPECT_EQ(ShapeNumel({1, 28, 28}), 784);
  EXPECT_EQ(ShapeNumel({}), 1);
  EXPECT_EQ(ShapeToString({50, 4, 4}), "50x4x4");
  EXPECT_EQ(BatchDims(256, {1, 28, 28}), (dnnl::memory::dims{256, 1, 28, 28}));
  EXPECT_TRUE(FitsTensorLimit({1 << 14, 1 << 14}));
  EXPECT_FALSE(FitsTensorLimit({1 << 14, (1 << 14) + 1}));
  EXPECT_FALSE(FitsTensorLimit({int64_t{1} << 40, int64_t{1} << 40}));  // no overflow
}

TEST(LayerTest, OutputSizeAndRightPaddingFollowPyTorch) {
  struct Case {
    int64_t in, kernel, stride, pad, out, right_pad;
  };
  const Case cases[] = {
      {28, 5, 1, 0, 24, 0},  // LeNet-5 conv1
      {24, 2, 2, 0, 12, 0},  // pooling
      {7, 2, 2, 0, 3, -1},   // the last row is dropped: oneDNN gets a negative right padding
      {9, 3, 2, 1, 5, 1},
      {8, 3, 2, 1, 4, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(OutputSize(c.in, c.kernel, c.stride, c.pad), c.out);
    EXPECT_EQ(RightPadding(c.in, c.out, c.kernel, c.stride, c.pad), c.right_pad);
  }
  EXPECT_EQ(OutputSize(3, 5, 1, 0), 0);  // the kernel does not fit
}

TEST(LayerTest, ParameterTensorOwnsAlignedZeroedBuffers) {
  ParameterTensor tensor("fc1.weight", {40, 784}, /*prunable=*/true);
  const Parameter& p = *tensor.parameter();
  EXPECT_EQ(p.name, "fc1.weight");
  EXPECT_EQ(p.numel, 31360);
  EXPECT_TRUE(p.prunable);
  EXPECT_EQ(p.mask, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.data) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p.grad) % 64, 0u);
  for (int64_t i = 0; i < p.numel; ++i) {
    ASSERT_EQ(p.data[i], 0.0f);
    ASSERT_EQ(p.grad[i], 0.0f);
  }
}

TEST(LayerTest, FillUniformIsSeededAndBounded) {
  ParameterTensor a("w", {1000}, true), b("w", {1000}, true);
  SplitMix64 rng_a(9), rng_b(9);
  a.FillUniform(0.25f, &rng_a);
  b.FillUniform(0.25f, &rng_b);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(a.data()[i], b.data()[i]);
    ASSERT_GE(a.data()[i], -0.25f);
    ASSERT_LT(a.data()[i], 0.25f);
  }
  // The first value: 24 high bits of splitmix64(9)'s first output, scaled to [-0.25, 0.25).
  SplitMix64 rng(9);
  const float u = static_cast<float>(rng.Next() >> 40) * 0x1p-24f;
  EXPECT_EQ(a.data()[0], (2.0f * u - 1.0f) * 0.25f);
}

}  // namespace
}  // namespace gcprune::trainer
