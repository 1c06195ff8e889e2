// The tensor layout of a pruning session: which named tensors a model has, and which are prunable.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_LAYOUT_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gcprune::pruner {

struct TensorSpec {
  std::string name;            // unique, non-empty, e.g. "fc1.weight"
  std::vector<int64_t> shape;  // PyTorch shape; every dimension >= 1
  bool prunable = true;        // only prunable tensors contribute features and carry masks
  int64_t numel() const;
};

// An immutable, validated list of tensors. The causal features are the prunable tensors' elements
// flattened in layout order (each tensor row-major, as torch's flatten()): feature index =
// feature_offset(tensor) + flat index inside the tensor.
class Layout {
 public:
  // INVALID_ARGUMENT for an empty list, an empty or duplicate name, a non-positive dimension, no
  // prunable tensor, or more than 2^40 features.
  static absl::StatusOr<Layout> Create(std::vector<TensorSpec> tensors);

  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  int num_tensors() const { return static_cast<int>(tensors_.size()); }
  const TensorSpec& tensor(int i) const { return tensors_[i]; }
  // Total number of features N (elements of prunable tensors).
  int64_t num_features() const { return num_features_; }
  // Offset of tensor i's first element in the feature vector; -1 if tensor i is not prunable.
  int64_t feature_offset(int i) const { return offsets_[i]; }
  // Index of the tensor named `name`, or -1.
  int FindTensor(const std::string& name) const;

 private:
  Layout() = default;
  std::vector<TensorSpec> tensors_;
  std::vector<int64_t> offsets_;
  int64_t num_features_ = 0;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_LAYOUT_H_
