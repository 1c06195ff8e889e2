// Covered-range bookkeeping of a sample's chunks (see chunk_coverage.h).
#include "pruner_service/causal/chunk_coverage.h"

#include <iterator>

#include "absl/strings/str_format.h"

namespace gcprune::pruner {

ChunkCoverage::ChunkCoverage(const Layout* layout, int groups)
    : layout_(layout),
      groups_(groups),
      total_(layout->num_features() * groups),
      ranges_(static_cast<size_t>(groups) * static_cast<size_t>(layout->num_tensors())) {}

absl::Status ChunkCoverage::Claim(int tensor, int64_t offset, int64_t count, int group) {
  if (tensor < 0 || tensor >= layout_->num_tensors()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chunk tensor: index %d out of range [0, %d)", tensor, layout_->num_tensors()));
  }
  const TensorSpec& spec = layout_->tensor(tensor);
  if (layout_->feature_offset(tensor) < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chunk tensor: '%s' (%d) is not prunable and carries no features", spec.name, tensor));
  }
  if (group < 0 || group >= groups_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chunk group of '%s': %d out of range [0, %d)", spec.name, group, groups_));
  }
  const int64_t numel = spec.numel();
  if (count < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("chunk of '%s' at offset %d: empty (no values)", spec.name, offset));
  }
  if (offset < 0 || offset > numel || count > numel - offset) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "chunk of '%s' (group %d): elements [%d, %d) out of range, the tensor has %d elements", spec.name, group,
        offset, offset + count, numel));
  }
  const int64_t end = offset + count;
  std::map<int64_t, int64_t>& ranges = ranges_[static_cast<size_t>(group * layout_->num_tensors() + tensor)];
  auto next = ranges.lower_bound(offset);  // first range starting at or after offset
  if (next != ranges.end() && next->first < end) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "chunk of '%s' (group %d): elements [%d, %d) overlap [%d, %d) received before", spec.name, group, offset,
        end, next->first, next->second));
  }
  if (next != ranges.begin()) {
    auto prev = std::prev(next);
    if (prev->second > offset) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "chunk of '%s' (group %d): elements [%d, %d) overlap [%d, %d) received before", spec.name, group,
          offset, end, prev->first, prev->second));
    }
    if (prev->second == offset) {  // merge with the range just before, keeping the map small
      prev->second = end;
      if (next != ranges.end() && next->first == end) {
        prev->second = next->second;
        ranges.erase(next);
      }
      covered_ += count;
      return absl::OkStatus();
    }
  }
  if (next != ranges.end() && next->first == end) {
    const int64_t next_end = next->second;
    ranges.erase(next);
    ranges.emplace(offset, next_end);
  } else {
    ranges.emplace(offset, end);
  }
  covered_ += count;
  return absl::OkStatus();
}

absl::Status ChunkCoverage::CheckComplete() const {
  if (complete()) return absl::OkStatus();
  for (int g = 0; g < groups_; ++g) {
    for (int i = 0; i < layout_->num_tensors(); ++i) {
      if (layout_->feature_offset(i) < 0) continue;
      const std::map<int64_t, int64_t>& ranges = ranges_[static_cast<size_t>(g * layout_->num_tensors() + i)];
      const int64_t numel = layout_->tensor(i).numel();
      int64_t expected = 0;
      for (const auto& [start, end] : ranges) {
        if (start != expected) break;
        expected = end;
      }
      if (expected < numel) {
        int64_t gap_end = numel;
        auto it = ranges.upper_bound(expected);
        if (it != ranges.end()) gap_end = it->first;
        return absl::InvalidArgumentError(absl::StrFormat(
            "incomplete sample: elements [%d, %d) of '%s' (tensor %d, group %d) missing; %d of %d features "
            "received",
            expected, gap_end, layout_->tensor(i).name, i, g, covered_, total_));
      }
    }
  }
  return absl::InternalError("coverage count inconsistent with its ranges");
}

void ChunkCoverage::Reset() {
  if (covered_ == 0) return;
  for (auto& ranges : ranges_) ranges.clear();
  covered_ = 0;
}

}  // namespace gcprune::pruner
