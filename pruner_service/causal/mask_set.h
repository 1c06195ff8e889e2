// The keep/prune state of every prunable weight of a session, with per-tensor and global counts and the
// bitmask wire format. Updates are monotone: a pruned weight never returns unless a caller says so.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_MASK_SET_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_MASK_SET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "pruner_service/causal/layout.h"

namespace gcprune::pruner {

// One prunable tensor as a MaskSet sees it.
struct MaskTensor {
  std::string name;
  int layout_index = 0;  // index of the tensor in the Layout
  int64_t offset = 0;    // first feature index of the tensor
  int64_t numel = 0;     // number of weights (features) of the tensor
};
inline bool operator==(const MaskTensor& a, const MaskTensor& b) {
  return a.name == b.name && a.layout_index == b.layout_index && a.offset == b.offset && a.numel == b.numel;
}

// Wire format of one tensor's mask ("packed mask"): ceil(numel / 8) bytes; weight i (flat, row-major
// index inside the tensor) is bit (i % 8) of byte (i / 8), least significant bit first; 1 = kept,
// 0 = pruned. The unused high bits of the last byte are 0. Example: numel = 10, weights 0 and 9 pruned,
// all others kept -> bytes {0xFE, 0x01}.
int64_t PackedMaskSize(int64_t numel);

// Per prunable tensor, one keep flag per weight, stored as one byte per feature (1 = kept, 0 = pruned) so
// that a flat view over the feature index (Layout's order) is a plain byte array that solvers can use as
// their "active" vector. Counts of pruned weights are maintained per tensor and globally.
//
// A MaskSet is a value type (copyable, comparable). Not thread-safe for concurrent mutation.
class MaskSet {
 public:
  // Every prunable tensor of `layout`, all weights kept.
  explicit MaskSet(const Layout& layout);

  // Prunable tensors in layout order; p below is an index into this list, not a Layout index.
  int num_tensors() const { return static_cast<int>(tensors_.size()); }
  const MaskTensor& tensor(int p) const { return tensors_[p]; }
  const std::vector<MaskTensor>& tensors() const { return tensors_; }
  // Index p of the prunable tensor named `name`, or -1.
  int FindTensor(absl::string_view name) const;
  // Index p of the prunable tensor holding feature `feature` (0 <= feature < num_features()).
  int TensorOfFeature(int64_t feature) const;

  int64_t num_features() const { return static_cast<int64_t>(keep_.size()); }
  // Flat view: keep()[k] is 1 if feature k is kept, 0 if pruned.
  absl::Span<const uint8_t> keep() const { return keep_; }
  // Tensor p's slice of keep().
  absl::Span<const uint8_t> tensor_keep(int p) const;
  bool is_kept(int64_t feature) const { return keep_[feature] != 0; }

  int64_t num_pruned(int p) const { return pruned_[p]; }
  int64_t num_pruned() const { return total_pruned_; }
  int64_t num_kept() const { return num_features() - total_pruned_; }
  // Fractions in [0, 1] of pruned weights: of tensor p, and of all prunable weights.
  double sparsity(int p) const;
  double sparsity() const;

  // Prunes the given features (indices into the flat view, any order). Already-pruned features and
  // repeats are allowed and change nothing. OUT_OF_RANGE if an index is outside [0, num_features());
  // then nothing is changed.
  absl::Status Prune(absl::Span<const int64_t> features);

  // Replaces this mask with `next`. INVALID_ARGUMENT if `next` has other tensors (names or sizes);
  // FAILED_PRECONDITION, naming the tensor and the first weight index, if `next` keeps a weight that is
  // pruned here and `allow_revive` is false. On error nothing is changed.
  absl::Status Update(const MaskSet& next, bool allow_revive = false);

  // Tensor p's mask in the wire format above.
  std::string PackTensor(int p) const;
  // Sets tensor p from the wire format. INVALID_ARGUMENT if p is out of range, the size is not
  // PackedMaskSize(numel) or an unused bit of the last byte is set; FAILED_PRECONDITION if the mask keeps
  // a weight pruned here and `allow_revive` is false. On error nothing is changed.
  absl::Status UnpackTensor(int p, absl::string_view packed, bool allow_revive = false);

  // Total bytes of all tensors' packed masks.
  int64_t PackedSize() const;

  friend bool operator==(const MaskSet& a, const MaskSet& b) {
    return a.tensors_ == b.tensors_ && a.keep_ == b.keep_;
  }
  friend bool operator!=(const MaskSet& a, const MaskSet& b) { return !(a == b); }

 private:
  // Recomputes pruned_ and total_pruned_ of tensor p from keep_.
  void Recount(int p);

  std::vector<MaskTensor> tensors_;
  std::vector<uint8_t> keep_;
  std::vector<int64_t> pruned_;
  int64_t total_pruned_ = 0;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_MASK_SET_H_
