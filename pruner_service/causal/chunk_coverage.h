// Bookkeeping of which parts of a sample's feature vector have arrived, so chunks may come in any order
// while overlaps, out-of-range chunks and gaps are reported precisely.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_CHUNK_COVERAGE_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_CHUNK_COVERAGE_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "pruner_service/causal/layout.h"

namespace gcprune::pruner {

// Tracks covered element ranges of every (group, prunable tensor) of a layout. `groups` copies of the
// layout's features form the feature vector (1 normally, 3 for V1's momentum variant). Not
// thread-safe. The Layout must outlive the object.
class ChunkCoverage {
 public:
  ChunkCoverage(const Layout* layout, int groups);

  // Marks elements [offset, offset + count) of tensor `tensor` in group `group` as covered.
  // INVALID_ARGUMENT (nothing marked) when the tensor index is out of range or the tensor is not
  // prunable, the group is out of range, count < 1, the range leaves the tensor, or it overlaps a
  // range covered before; the message names the tensor, group and offsets.
  absl::Status Claim(int tensor, int64_t offset, int64_t count, int group);

  // True when every feature is covered exactly once.
  bool complete() const { return covered_ == total_; }
  int64_t covered() const { return covered_; }

  // OK when complete; otherwise INVALID_ARGUMENT naming the first missing range (tensor, group, offsets)
  // and how many features are missing in total.
  absl::Status CheckComplete() const;

  // Forgets all ranges.
  void Reset();

 private:
  const Layout* layout_;
  int groups_;
  int64_t total_;
  int64_t covered_ = 0;
  // Per (group * num_tensors + tensor): covered ranges, start -> end (exclusive), never overlapping.
  std::vector<std::map<int64_t, int64_t>> ranges_;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_CHUNK_COVERAGE_H_
