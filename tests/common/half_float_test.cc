// Tests of the 16-bit float conversions: exhaustive round trips and the rounding corner cases.
#include "common/half_float.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"

namespace gcprune::common {
namespace {

float FromBits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

TEST(HalfFloatTest, EveryFloat16RoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float value = Float16BitsToFloat(bits);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(Float16BitsToFloat(FloatToFloat16Bits(value)))) << h;
      continue;
    }
    EXPECT_EQ(FloatToFloat16Bits(value), bits) << h;
  }
}

TEST(HalfFloatTest, EveryBfloat16RoundTrips) {
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const float value = Bfloat16BitsToFloat(bits);
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(Bfloat16BitsToFloat(FloatToBfloat16Bits(value)))) << b;
      continue;
    }
    EXPECT_EQ(FloatToBfloat16Bits(value), bits) << b;
  }
}

TEST(HalfFloatTest, Float16RoundsToNearestEven) {
  struct Case {
    float in;
    float out;
  };
  const Case cases[] = {
      {1.0f, 1.0f},
      {1.0f + std::ldexp(1.0f, -11), 1.0f},                                      // tie, even below
      {1.0f + 3 * std::ldexp(1.0f, -11), 1.0f + std::ldexp(1.0f, -9)},          // tie, even above
      {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 1.0f + std::ldexp(1.0f, -10)},
      {65504.0f, 65504.0f},
      {65519.0f, 65504.0f},
      {65520.0f, std::numeric_limits<float>::infinity()},
      {-1e9f, -std::numeric_limits<float>::infinity()},
      {std::ldexp(1.0f, -24), std::ldexp(1.0f, -24)},                           // smallest subnormal
      {std::ldexp(1.0f, -25), 0.0f},                                            // tie to even (0)
      {3 * std::ldexp(1.0f, -26), std::ldexp(1.0f, -24)},
      {std::ldexp(1.0f, -14), std::ldexp(1.0f, -14)},                           // smallest normal
      {std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26), std::ldexp(1.0f, -14)},   // rounds up into normal
      {-0.0f, -0.0f},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    const float got = Float16BitsToFloat(FloatToFloat16Bits(c.in));
    EXPECT_EQ(got, c.out);
    EXPECT_EQ(std::signbit(got), std::signbit(c.out));
  }
  EXPECT_TRUE(std::isnan(Float16BitsToFloat(FloatToFloat16Bits(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(HalfFloatTest, Bfloat16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBfloat16Bits(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBfloat16Bits(FromBits(0x3F808000u)), 0x3F80);  // tie, even below
  EXPECT_EQ(FloatToBfloat16Bits(FromBits(0x3F818000u)), 0x3F82);  // tie, even above
  EXPECT_EQ(FloatToBfloat16Bits(FromBits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(FloatToBfloat16Bits(std::numeric_limits<float>::max()), 0x7F80);  // overflow to inf
  EXPECT_TRUE(std::isnan(Bfloat16BitsToFloat(FloatToBfloat16Bits(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace gcprune::common
