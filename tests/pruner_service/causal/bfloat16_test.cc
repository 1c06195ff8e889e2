// Tests of the bfloat16 conversions: round-to-nearest-even, specials, saturation.
#include "pruner_service/causal/bfloat16.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"

namespace gcprune::pruner {
namespace {

float FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

TEST(Bfloat16Test, RoundsToNearestEven) {
  struct Case {
    uint32_t float_bits;
    uint16_t expected;
  };
  const Case cases[] = {
      {0x3F800000u, 0x3F80},  // 1.0 exact
      {0x3F808000u, 0x3F80},  // halfway, lower is even: down
      {0x3F818000u, 0x3F82},  // halfway, upper is even: up
      {0x3F808001u, 0x3F81},  // just above halfway: up
      {0x3F807FFFu, 0x3F80},  // just below halfway: down
      {0xBF818000u, 0xBF82},  // negative halfway: magnitude to even
      {0x3FFFFFFFu, 0x4000},  // carry into the exponent
      {0x00000001u, 0x0000},  // smallest subnormal rounds to +0
      {0x80000000u, 0x8000},  // -0 stays -0
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.float_bits);
    EXPECT_EQ(FloatToBfloat16(FromBits(c.float_bits)), c.expected);
  }
}

TEST(Bfloat16Test, SpecialsAndSaturation) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToBfloat16(inf), 0x7F80);
  EXPECT_EQ(FloatToBfloat16(-inf), 0xFF80);
  EXPECT_TRUE(std::isnan(Bfloat16ToFloat(FloatToBfloat16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload sits only in the low 16 bits must not become infinity.
  EXPECT_TRUE(std::isnan(Bfloat16ToFloat(FloatToBfloat16(FromBits(0x7F800001u)))));
  const float max = std::numeric_limits<float>::max();
  EXPECT_EQ(FloatToBfloat16(max), 0x7F80);  // IEEE rounding overflows
  EXPECT_EQ(FloatToBfloat16Saturating(max), kBfloat16MaxFinite);
  EXPECT_EQ(FloatToBfloat16Saturating(-max), 0x8000 | kBfloat16MaxFinite);
  EXPECT_EQ(FloatToBfloat16Saturating(inf), 0x7F80);  // only finite inputs saturate
  EXPECT_EQ(FloatToBfloat16Saturating(1.5f), 0x3FC0);
}

TEST(Bfloat16Test, RoundTripErrorIsBounded) {
  for (float v = 1e-30f; v < 1e30f; v *= 1.37f) {
    const float back = Bfloat16ToFloat(FloatToBfloat16(v));
    EXPECT_LE(std::fabs(back - v), v * (1.0f / 256.0f)) << v;  // half an ulp of 8 significant bits
  }
  EXPECT_EQ(Bfloat16ToFloat(0x3F80), 1.0f);
  EXPECT_EQ(Bfloat16ToFloat(0xC000), -2.0f);
}

}  // namespace
}  // namespace gcprune::pruner
