// Implementation of the TensorChunk helpers.
#include "common/tensor_chunk.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/half_float.h"

namespace gcprune::common {
namespace {

using ::gcprune::v1::TensorChunk;
using ::gcprune::v1::ValueEncoding;

// Bytes per element of `encoding` in `data`, or 0 for an unknown encoding.
int Width(ValueEncoding encoding) {
  switch (encoding) {
    case gcprune::v1::VALUE_ENCODING_UNSPECIFIED:
    case gcprune::v1::VALUE_ENCODING_FLOAT32:
      return 4;
    case gcprune::v1::VALUE_ENCODING_BFLOAT16:
    case gcprune::v1::VALUE_ENCODING_FLOAT16:
      return 2;
    default:
      return 0;
  }
}

uint16_t LoadU16(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}

uint32_t LoadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(b[0]) | (static_cast<uint32_t>(b[1]) << 8) | (static_cast<uint32_t>(b[2]) << 16) |
         (static_cast<uint32_t>(b[3]) << 24);
}

void StoreU16(uint16_t v, char* p) {
  p[0] = static_cast<char>(v & 0xFF);
  p[1] = static_cast<char>(v >> 8);
}

void StoreU32(uint32_t v, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

}  // namespace

absl::StatusOr<int64_t> ChunkElementCount(const TensorChunk& chunk) {
  const int width = Width(chunk.encoding());
  if (width == 0) {
    return absl::InvalidArgumentError(absl::StrCat("encoding: unknown value ", static_cast<int>(chunk.encoding())));
  }
  const bool has_values = chunk.values_size() > 0;
  const bool has_data = !chunk.data().empty();
  if (has_values == has_data) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", chunk.tensor_index(), " offset ", chunk.offset(),
                                                   has_values ? ": both values and data are set"
                                                              : ": neither values nor data is set"));
  }
  if (has_values) {
    if (width != 4) {
      return absl::InvalidArgumentError(absl::StrCat("values: only for FLOAT32, got encoding ",
                                                     gcprune::v1::ValueEncoding_Name(chunk.encoding())));
    }
    return chunk.values_size();
  }
  if (chunk.data().size() % static_cast<size_t>(width) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("data: ", chunk.data().size(), " bytes is not a multiple of ",
                                                   width, " (", gcprune::v1::ValueEncoding_Name(chunk.encoding()),
                                                   ")"));
  }
  return static_cast<int64_t>(chunk.data().size() / static_cast<size_t>(width));
}

absl::Status DecodeChunkValues(const TensorChunk& chunk, std::vector<float>* out) {
  absl::StatusOr<int64_t> count = ChunkElementCount(chunk);
  if (!count.ok()) return count.status();
  out->resize(static_cast<size_t>(*count));
  if (chunk.values_size() > 0) {
    std::memcpy(out->data(), chunk.values().data(), out->size() * sizeof(float));
    return absl::OkStatus();
  }
  const char* data = chunk.data().data();
  switch (chunk.encoding()) {
    case gcprune::v1::VALUE_ENCODING_BFLOAT16:
      for (size_t i = 0; i < out->size(); ++i) (*out)[i] = Bfloat16BitsToFloat(LoadU16(data + 2 * i));
      break;
    case gcprune::v1::VALUE_ENCODING_FLOAT16:
      for (size_t i = 0; i < out->size(); ++i) (*out)[i] = Float16BitsToFloat(LoadU16(data + 2 * i));
      break;
    default:  // FLOAT32 / UNSPECIFIED, checked by ChunkElementCount
      for (size_t i = 0; i < out->size(); ++i) {
        const uint32_t bits = LoadU32(data + 4 * i);
        std::memcpy(&(*out)[i], &bits, sizeof(float));
      }
      break;
  }
  return absl::OkStatus();
}

absl::Status EncodeChunk(uint32_t tensor_index, int64_t offset, absl::Span<const float> values,
                         ValueEncoding encoding, bool as_bytes, TensorChunk* chunk) {
  const int width = Width(encoding);
  if (width == 0) return absl::InvalidArgumentError(absl::StrCat("encoding: unknown value ", static_cast<int>(encoding)));
  if (values.empty()) return absl::InvalidArgumentError(absl::StrCat("tensor ", tensor_index, ": no values"));
  if (offset < 0) return absl::InvalidArgumentError(absl::StrCat("offset: must be >= 0, got ", offset));
  chunk->Clear();
  chunk->set_tensor_index(tensor_index);
  chunk->set_offset(offset);
  chunk->set_encoding(encoding == gcprune::v1::VALUE_ENCODING_UNSPECIFIED ? gcprune::v1::VALUE_ENCODING_FLOAT32
                                                                           : encoding);
  if (width == 4 && !as_bytes) {
    chunk->mutable_values()->Add(values.begin(), values.end());
    return absl::OkStatus();
  }
  std::string* data = chunk->mutable_data();
  data->resize(values.size() * static_cast<size_t>(width));
  for (size_t i = 0; i < values.size(); ++i) {
    if (width == 4) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], sizeof(bits));
      StoreU32(bits, &(*data)[4 * i]);
    } else if (chunk->encoding() == gcprune::v1::VALUE_ENCODING_BFLOAT16) {
      StoreU16(FloatToBfloat16Bits(values[i]), &(*data)[2 * i]);
    } else {
      StoreU16(FloatToFloat16Bits(values[i]), &(*data)[2 * i]);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<ChunkSpan>>> PlanChunkMessages(
    const std::vector<std::pair<uint32_t, int64_t>>& tensors, int64_t max_elements) {
  if (max_elements < 1) return absl::InvalidArgumentError(absl::StrCat("max_elements: must be >= 1, got ", max_elements));
  std::vector<std::vector<ChunkSpan>> messages;
  std::vector<ChunkSpan> current;
  int64_t room = max_elements;
  for (const auto& [tensor_index, numel] : tensors) {
    if (numel < 1) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", tensor_index, ": numel must be >= 1, got ", numel));
    }
    int64_t offset = 0;
    while (offset < numel) {
      const int64_t count = std::min(room, numel - offset);
      current.push_back({tensor_index, offset, count});
      offset += count;
      room -= count;
      if (room == 0) {
        messages.push_back(std::move(current));
        current.clear();
        room = max_elements;
      }
    }
  }
  if (!current.empty()) messages.push_back(std::move(current));
  return messages;
}

}  // namespace gcprune::common
