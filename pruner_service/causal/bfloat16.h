// bfloat16 (the upper 16 bits of an IEEE float32) conversions with round-to-nearest-even, the compact
// sample encoding of the sample store: half the memory of float32 and 8 significant bits.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_BFLOAT16_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_BFLOAT16_H_

#include <cstdint>
#include <cstring>

namespace gcprune::pruner {

// The largest finite bfloat16, 0x7F7F = 3.3895314e38.
inline constexpr uint16_t kBfloat16MaxFinite = 0x7F7F;

// Rounds `value` to the nearest bfloat16, ties to even. NaN stays NaN (quiet, sign kept); ±inf stays
// ±inf; finite values of magnitude >= 3.3961776e38 round to ±inf as IEEE rounding prescribes.
inline uint16_t FloatToBfloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  const uint32_t rounding_bias = 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

// As FloatToBfloat16, but finite inputs never become infinite: they saturate at ±kBfloat16MaxFinite.
// The sample store encodes with this so a stored feature is always finite.
inline uint16_t FloatToBfloat16Saturating(float value) {
  const uint16_t b = FloatToBfloat16(value);
  if ((b & 0x7FFFu) == 0x7F80u) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof(bits));
    if ((bits & 0x7FFFFFFFu) != 0x7F800000u) return static_cast<uint16_t>((b & 0x8000u) | kBfloat16MaxFinite);
  }
  return b;
}

// Exact: every bfloat16 is a float32.
inline float Bfloat16ToFloat(uint16_t value) {
  const uint32_t bits = static_cast<uint32_t>(value) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_BFLOAT16_H_
