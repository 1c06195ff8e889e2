// NoPrunerLink: the all-kept masks of method NONE without a pruner (see pruning_link.h).
#include "trainer_service/service/pruning_link.h"

namespace gcprune::trainer {

absl::StatusOr<IterationMasks> NoPrunerLink::EndIteration(int iteration,
                                                          const std::vector<absl::Span<const float>>&) {
  IterationMasks masks;
  masks.pruner_iteration = iteration;
  masks.target_sparsity = 0.0;
  for (size_t p = 0; p < numels_.size(); ++p) {
    masks.keep.emplace_back(static_cast<size_t>(numels_[p]), uint8_t{1});
    gcprune::v1::TensorSparsity tensor;
    tensor.set_tensor_index(static_cast<uint32_t>(layout_indices_[p]));
    tensor.set_num_elements(numels_[p]);
    tensor.set_kept(numels_[p]);
    tensor.set_pruned(0);
    tensor.set_sparsity(0.0);
    tensor.set_target_sparsity(0.0);
    masks.tensors.push_back(tensor);
  }
  return masks;
}

}  // namespace gcprune::trainer
