// Splitting per-tensor packed keep-masks into gcprune.v1.TensorMask runs (so MaskUpdate and GetMasks
// messages stay small) and assembling them back, with the checks a receiver needs.
// Packed form: ceil(numel / 8) bytes, element i at bit (i % 8) of byte i / 8, 1 = kept, padding bits 0.
#ifndef GCPRUNE_COMMON_MASK_RUNS_H_
#define GCPRUNE_COMMON_MASK_RUNS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protos/gcprune/v1/common.pb.h"

namespace gcprune::common {

// Splits the packed mask of tensor `tensor_index` (numel elements) into runs of at most `max_bytes` bytes
// each, in order. INVALID_ARGUMENT if numel < 1, max_bytes < 1, or packed.size() != ceil(numel / 8).
absl::StatusOr<std::vector<gcprune::v1::TensorMask>> SplitPackedMask(uint32_t tensor_index, absl::string_view packed,
                                                                      int64_t numel, int64_t max_bytes);

// Rebuilds one tensor's packed mask from runs received in any order. Not thread-safe.
class PackedMaskAssembler {
 public:
  // `numel` >= 1 elements.
  explicit PackedMaskAssembler(int64_t numel);

  // Adds one run. INVALID_ARGUMENT (nothing changes) if its offset is negative or not a multiple of 8,
  // num_elements < 1, the run leaves the tensor, `bits` is not ceil(num_elements / 8) bytes, a padding
  // bit of its last byte is set, or it overlaps a run added before; the message names the offsets.
  absl::Status Add(const gcprune::v1::TensorMask& run);

  // True when every element is covered.
  bool complete() const { return covered_ == numel_; }
  // The packed mask. INVALID_ARGUMENT naming the first missing element if incomplete.
  absl::StatusOr<std::string> Finish() const;

 private:
  int64_t numel_;
  int64_t covered_ = 0;
  std::string packed_;
  std::vector<bool> byte_covered_;  // a run covers whole bytes except at the tensor's end
};

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_MASK_RUNS_H_
