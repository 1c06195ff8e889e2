// Encoding, decoding and splitting of gcprune.v1.TensorChunk, the unit in which parameter deltas and
// weights travel: both ends of the Pruner protocol (clients and the pruner service) use these helpers so
// they agree on sizes, encodings and message limits.
#ifndef GCPRUNE_COMMON_TENSOR_CHUNK_H_
#define GCPRUNE_COMMON_TENSOR_CHUNK_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "protos/gcprune/v1/common.pb.h"

namespace gcprune::common {

// Recommended largest number of elements per message (1 MiB of float32); Opened.recommended_chunk_elements.
inline constexpr int64_t kRecommendedChunkElements = 262144;

// Number of elements `chunk` carries. INVALID_ARGUMENT if both or neither of `values` and `data` are set,
// if `values` is used with a 16-bit encoding, if the encoding is not a known ValueEncoding, or if `data`'s
// length is not a multiple of the encoding's width; the message names the field and the value.
absl::StatusOr<int64_t> ChunkElementCount(const gcprune::v1::TensorChunk& chunk);

// Decodes the chunk's values to float32 into `out` (replacing its contents). Errors as
// ChunkElementCount. Non-finite values are decoded as they are; the caller decides what they mean.
absl::Status DecodeChunkValues(const gcprune::v1::TensorChunk& chunk, std::vector<float>* out);

// Fills `chunk` with `values` for elements [offset, offset + values.size()) of tensor `tensor_index`:
// FLOAT32 (or UNSPECIFIED) goes to `values`, unless `as_bytes`, in which case it goes to `data` like the
// 16-bit encodings (rounded to nearest even). INVALID_ARGUMENT for empty values, a negative offset or an
// unknown encoding.
absl::Status EncodeChunk(uint32_t tensor_index, int64_t offset, absl::Span<const float> values,
                         gcprune::v1::ValueEncoding encoding, bool as_bytes, gcprune::v1::TensorChunk* chunk);

// A contiguous run of one tensor, before encoding.
struct ChunkSpan {
  uint32_t tensor_index = 0;
  int64_t offset = 0;
  int64_t count = 0;
};

// Plans the messages that carry whole tensors: `tensors` lists (tensor_index, numel) in sending order;
// the result is a list of messages, each a list of spans totalling at most `max_elements` elements, in
// order and covering every element once (small tensors share a message, large ones are split).
// INVALID_ARGUMENT if max_elements < 1 or a numel < 1.
absl::StatusOr<std::vector<std::vector<ChunkSpan>>> PlanChunkMessages(
    const std::vector<std::pair<uint32_t, int64_t>>& tensors, int64_t max_elements);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_TENSOR_CHUNK_H_
