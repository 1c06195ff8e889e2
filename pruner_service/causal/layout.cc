// Validation and feature offsets of a session's tensor layout.
#include "pruner_service/causal/layout.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace gcprune::pruner {

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<Layout> Layout::Create(std::vector<TensorSpec> tensors) {
  if (tensors.empty()) return absl::InvalidArgumentError("layout.tensors: empty");
  constexpr int64_t kMaxFeatures = int64_t{1} << 40;
  Layout layout;
  absl::flat_hash_set<std::string> names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec& t = tensors[i];
    if (t.name.empty()) return absl::InvalidArgumentError(absl::StrCat("layout.tensors[", i, "].name: empty"));
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("layout.tensors[", i, "].name: duplicate '", t.name, "'"));
    }
    if (t.shape.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("layout.tensors[", i, "].shape ('", t.name, "'): empty"));
    }
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 1 || t.shape[d] > kMaxFeatures) {
        return absl::InvalidArgumentError(absl::StrCat("layout.tensors[", i, "].shape[", d, "] ('", t.name,
                                                       "'): ", t.shape[d], " is not in [1, 2^40]"));
      }
    }
    if (t.prunable) {
      layout.offsets_.push_back(layout.num_features_);
      layout.num_features_ += t.numel();
      if (layout.num_features_ > kMaxFeatures) {
        return absl::InvalidArgumentError("layout: more than 2^40 prunable elements");
      }
    } else {
      layout.offsets_.push_back(-1);
    }
  }
  if (layout.num_features_ == 0) return absl::InvalidArgumentError("layout: no prunable tensor");
  layout.tensors_ = std::move(tensors);
  return layout;
}

int Layout::FindTensor(const std::string& name) const {
  for (int i = 0; i < num_tensors(); ++i) {
    if (tensors_[i].name == name) return i;
  }
  return -1;
}

}  // namespace gcprune::pruner
