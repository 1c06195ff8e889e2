// Keep/prune flags of a session's prunable weights: counts, monotone updates, bitmask packing.
#include "pruner_service/causal/mask_set.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gcprune::pruner {

int64_t PackedMaskSize(int64_t numel) { return (numel + 7) / 8; }

MaskSet::MaskSet(const Layout& layout) {
  for (int i = 0; i < layout.num_tensors(); ++i) {
    const TensorSpec& spec = layout.tensor(i);
    if (!spec.prunable) continue;
    tensors_.push_back({spec.name, i, layout.feature_offset(i), spec.numel()});
  }
  keep_.assign(static_cast<size_t>(layout.num_features()), 1);
  pruned_.assign(tensors_.size(), 0);
}

int MaskSet::FindTensor(absl::string_view name) const {
  for (int p = 0; p < num_tensors(); ++p) {
    if (tensors_[p].name == name) return p;
  }
  return -1;
}

int MaskSet::TensorOfFeature(int64_t feature) const {
  // Offsets ascend; the tensor is the last one starting at or before `feature`.
  auto it = std::upper_bound(tensors_.begin(), tensors_.end(), feature,
                             [](int64_t f, const MaskTensor& t) { return f < t.offset; });
  return static_cast<int>(it - tensors_.begin()) - 1;
}

absl::Span<const uint8_t> MaskSet::tensor_keep(int p) const {
  return absl::MakeConstSpan(keep_).subspan(static_cast<size_t>(tensors_[p].offset),
                                            static_cast<size_t>(tensors_[p].numel));
}

double MaskSet::sparsity(int p) const {
  return static_cast<double>(pruned_[p]) / static_cast<double>(tensors_[p].numel);
}

double MaskSet::sparsity() const {
  return static_cast<double>(total_pruned_) / static_cast<double>(num_features());
}

void MaskSet::Recount(int p) {
  const MaskTensor& t = tensors_[p];
  const uint8_t* keep = keep_.data() + t.offset;
  int64_t kept = 0;
  for (int64_t i = 0; i < t.numel; ++i) kept += keep[i];
  total_pruned_ += (t.numel - kept) - pruned_[p];
  pruned_[p] = t.numel - kept;
}

absl::Status MaskSet::Prune(absl::Span<const int64_t> features) {
  const int64_t n = num_features();
  for (size_t i = 0; i < features.size(); ++i) {
    if (features[i] < 0 || features[i] >= n) {
      return absl::OutOfRangeError(
          absl::StrCat("mask: feature index ", features[i], " (entry ", i, ") is not in [0, ", n, ")"));
    }
  }
  for (int64_t f : features) {
    uint8_t& k = keep_[static_cast<size_t>(f)];
    if (k == 0) continue;
    k = 0;
    ++pruned_[TensorOfFeature(f)];
    ++total_pruned_;
  }
  return absl::OkStatus();
}

absl::Status MaskSet::Update(const MaskSet& next, bool allow_revive) {
  if (next.tensors_ != tensors_) {
    return absl::InvalidArgumentError("mask update: the new mask has different tensors (names or sizes)");
  }
  if (!allow_revive) {
    for (size_t k = 0; k < keep_.size(); ++k) {
      if (keep_[k] == 0 && next.keep_[k] != 0) {
        const MaskTensor& t = tensors_[TensorOfFeature(static_cast<int64_t>(k))];
        return absl::FailedPreconditionError(absl::StrCat("mask update: tensor '", t.name, "' weight ",
                                                          static_cast<int64_t>(k) - t.offset,
                                                          " is pruned and would be revived"));
      }
    }
  }
  keep_ = next.keep_;
  pruned_ = next.pruned_;
  total_pruned_ = next.total_pruned_;
  return absl::OkStatus();
}

std::string MaskSet::PackTensor(int p) const {
  const MaskTensor& t = tensors_[p];
  std::string out(static_cast<size_t>(PackedMaskSize(t.numel)), '\0');
  const uint8_t* keep = keep_.data() + t.offset;
  int64_t i = 0;
  // Whole bytes first: eight flags (each 0 or 1) shifted into place.
  for (; i + 8 <= t.numel; i += 8) {
    unsigned byte = 0;
    for (int b = 0; b < 8; ++b) byte |= static_cast<unsigned>(keep[i + b]) << b;
    out[static_cast<size_t>(i / 8)] = static_cast<char>(byte);
  }
  for (; i < t.numel; ++i) {
    if (keep[i]) out[static_cast<size_t>(i / 8)] |= static_cast<char>(1u << (i % 8));
  }
  return out;
}

absl::Status MaskSet::UnpackTensor(int p, absl::string_view packed, bool allow_revive) {
  if (p < 0 || p >= num_tensors()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask: tensor index ", p, " is not in [0, ", num_tensors(), ")"));
  }
  const MaskTensor& t = tensors_[p];
  const int64_t size = PackedMaskSize(t.numel);
  if (static_cast<int64_t>(packed.size()) != size) {
    return absl::InvalidArgumentError(absl::StrCat("mask of tensor '", t.name, "': ", packed.size(),
                                                   " bytes, expected ", size, " for ", t.numel, " weights"));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(packed.data());
  const int tail_bits = static_cast<int>(t.numel % 8);
  if (tail_bits != 0 && (bytes[size - 1] >> tail_bits) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("mask of tensor '", t.name, "': unused bits of the last byte (",
                                                   "bits ", tail_bits, "..7) are set"));
  }
  uint8_t* keep = keep_.data() + t.offset;
  if (!allow_revive) {
    for (int64_t i = 0; i < t.numel; ++i) {
      if (keep[i] == 0 && ((bytes[i / 8] >> (i % 8)) & 1u) != 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("mask of tensor '", t.name, "': weight ", i, " is pruned and would be revived"));
      }
    }
  }
  for (int64_t i = 0; i < t.numel; ++i) keep[i] = static_cast<uint8_t>((bytes[i / 8] >> (i % 8)) & 1u);
  Recount(p);
  return absl::OkStatus();
}

int64_t MaskSet::PackedSize() const {
  int64_t total = 0;
  for (const MaskTensor& t : tensors_) total += PackedMaskSize(t.numel);
  return total;
}

}  // namespace gcprune::pruner
