// Conversions between float32 and the two 16-bit encodings of the wire protocol (ValueEncoding
// BFLOAT16 and FLOAT16), rounding to nearest, ties to even.
#ifndef GCPRUNE_COMMON_HALF_FLOAT_H_
#define GCPRUNE_COMMON_HALF_FLOAT_H_

#include <cstdint>

namespace gcprune::common {

// bfloat16: the upper 16 bits of a float32. NaN stays a quiet NaN with its sign; overflow gives ±inf.
uint16_t FloatToBfloat16Bits(float value);
// Exact.
float Bfloat16BitsToFloat(uint16_t bits);

// IEEE 754 binary16: subnormals supported; magnitudes >= 65520 become ±inf; NaN stays a quiet NaN.
uint16_t FloatToFloat16Bits(float value);
// Exact.
float Float16BitsToFloat(uint16_t bits);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_HALF_FLOAT_H_
