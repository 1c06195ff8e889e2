// Implementation of mask run splitting and assembly.
#include "common/mask_runs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace gcprune::common {
namespace {

int64_t PackedBytes(int64_t elements) { return (elements + 7) / 8; }

}  // namespace

absl::StatusOr<std::vector<gcprune::v1::TensorMask>> SplitPackedMask(uint32_t tensor_index, absl::string_view packed,
                                                                      int64_t numel, int64_t max_bytes) {
  if (numel < 1) return absl::InvalidArgumentError(absl::StrCat("numel: must be >= 1, got ", numel));
  if (max_bytes < 1) return absl::InvalidArgumentError(absl::StrCat("max_bytes: must be >= 1, got ", max_bytes));
  if (static_cast<int64_t>(packed.size()) != PackedBytes(numel)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", tensor_index, ": packed mask has ", packed.size(),
                                                   " bytes, expected ", PackedBytes(numel), " for ", numel,
                                                   " elements"));
  }
  std::vector<gcprune::v1::TensorMask> runs;
  for (int64_t byte = 0; byte < static_cast<int64_t>(packed.size()); byte += max_bytes) {
    const int64_t bytes = std::min<int64_t>(max_bytes, static_cast<int64_t>(packed.size()) - byte);
    gcprune::v1::TensorMask& run = runs.emplace_back();
    run.set_tensor_index(tensor_index);
    run.set_offset(byte * 8);
    run.set_num_elements(std::min<int64_t>(bytes * 8, numel - byte * 8));
    run.set_bits(std::string(packed.substr(static_cast<size_t>(byte), static_cast<size_t>(bytes))));
  }
  return runs;
}

PackedMaskAssembler::PackedMaskAssembler(int64_t numel)
    : numel_(std::max<int64_t>(numel, 1)),
      packed_(static_cast<size_t>(PackedBytes(numel_)), '\0'),
      byte_covered_(static_cast<size_t>(PackedBytes(numel_)), false) {}

absl::Status PackedMaskAssembler::Add(const gcprune::v1::TensorMask& run) {
  const int64_t offset = run.offset();
  const int64_t count = run.num_elements();
  const std::string where = absl::StrCat("mask run of tensor ", run.tensor_index(), " at offset ", offset);
  if (offset < 0 || offset % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": offset must be a non-negative multiple of 8"));
  }
  if (count < 1 || offset >= numel_ || count > numel_ - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", count, " elements do not fit the tensor's ", numel_));
  }
  if (static_cast<int64_t>(run.bits().size()) != PackedBytes(count)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": bits has ", run.bits().size(), " bytes, expected ", PackedBytes(count)));
  }
  if (count % 8 != 0) {
    const unsigned char last = static_cast<unsigned char>(run.bits().back());
    if ((last >> (count % 8)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": padding bits of the last byte are set"));
    }
    if (offset + count != numel_) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": only a run ending at the tensor's end may end inside a byte"));
    }
  }
  const size_t first_byte = static_cast<size_t>(offset / 8);
  for (size_t i = 0; i < run.bits().size(); ++i) {
    if (byte_covered_[first_byte + i]) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": overlaps an earlier run at element ", (first_byte + i) * 8));
    }
  }
  for (size_t i = 0; i < run.bits().size(); ++i) {
    byte_covered_[first_byte + i] = true;
    packed_[first_byte + i] = run.bits()[i];
  }
  covered_ += count;
  return absl::OkStatus();
}

absl::StatusOr<std::string> PackedMaskAssembler::Finish() const {
  if (!complete()) {
    const auto missing = std::find(byte_covered_.begin(), byte_covered_.end(), false);
    return absl::InvalidArgumentError(absl::StrCat("mask incomplete: ", numel_ - covered_,
                                                   " elements missing, the first at element ",
                                                   (missing - byte_covered_.begin()) * 8));
  }
  return packed_;
}

}  // namespace gcprune::common
