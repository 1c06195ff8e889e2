// The sample store of a pruning session: the causal regression's samples (y_t, x_t ∈ R^N) in a few large
// contiguous blocks, as float32 or bfloat16, under a memory budget. The Lasso solvers read it as a
// RowSource.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_SAMPLE_STORE_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_SAMPLE_STORE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pruner_service/causal/chunk_coverage.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/row_source.h"

namespace gcprune::pruner {

struct SampleStoreOptions {
  // kFloat32: 4 bytes a value, exact. kBfloat16 (method_config.h): 2 bytes a value, rounded to nearest
  // even (8 significant bits, relative error <= 2^-9), finite values saturating instead of overflowing.
  SampleEncoding encoding = SampleEncoding::kFloat32;
  // Upper bound on the bytes of sample storage (feature blocks; the per-sample targets and counters,
  // 24 bytes a sample, are not counted). Checked before every allocation.
  int64_t memory_budget_bytes = int64_t{1} << 30;
  // Copies of the layout's features per sample: 1, or 3 for V1's momentum variant
  // ([Δθ_t², Δθ_{t+1}², Δθ_t ⊙ Δθ_{t+1}], see sample_builder.h). num_cols() = groups * N.
  int feature_groups = 1;
};

// The position of column `column` in a bfloat16 row: within each group of 32 columns starting at a
// multiple of 32, 32-bit word j holds column j in its low half and column 16 + j in its high half, so
// one 64-byte load and two bit operations (shift, mask) give the group's 32 values as float32 in column
// order. The LassoSGD kernels rely on this layout.
constexpr int64_t Bfloat16Slot(int64_t column) {
  const int64_t j = column & 31;
  return (column & ~int64_t{31}) + (j < 16 ? 2 * j : 2 * (j - 16) + 1);
}

// Holds T committed samples and at most one pending (partly received) sample.
//
// Writing a sample: BeginSample(); then any number of Append* calls, in any order, covering every
// (group, prunable tensor, element) exactly once; then CommitSample(y). Stored values are always finite:
// NaN, ±inf and products that overflow become 0 and are counted (per sample and in total).
//
// Memory: rows are stored back to back (each padded to 64 bytes) in blocks that grow by 10% of the
// stored rows (at least 64 KiB or one row), or in one block of the size given to Reserve(). Peak storage
// is therefore at most 1.1 × the raw sample bytes (T × num_cols × bytes per value) plus one minimum block;
// memory is never reallocated or copied. Clear() keeps the blocks for reuse; ReleaseMemory() frees them.
//
// Thread safety: writers need external synchronisation; const methods (the RowSource view) may run
// concurrently with each other but not with writers.
class SampleStore : public RowSource {
 public:
  // INVALID_ARGUMENT when feature_groups is not 1 or 3, or the budget is negative.
  // The layout is copied.
  static absl::StatusOr<std::unique_ptr<SampleStore>> Create(const Layout& layout, SampleStoreOptions options);

  ~SampleStore() override;
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;

  // Starts a pending sample, allocating its row if needed. FAILED_PRECONDITION if a sample is already
  // pending; RESOURCE_EXHAUSTED, with the sample size, the storage in use and the budget in bytes in the
  // message, when the row would take the storage over the budget (nothing changes; the store stays
  // usable: Clear(), a larger budget or fewer samples let later calls succeed).
  absl::Status BeginSample();

  // Stores x = scale · Δθ² for elements [offset, offset + deltas.size()) of tensor `tensor` (an index of
  // the layout, which must be prunable) into feature group `group`. `deltas` are the signed parameter
  // changes Δθ; `scale` is 1/η² for V2 and 1 for V1 (finite, > 0). Non-finite results are stored as 0
  // and counted. FAILED_PRECONDITION without a pending sample; INVALID_ARGUMENT (nothing stored) for a
  // bad scale or a chunk that is empty, out of range or overlaps one stored before (see ChunkCoverage).
  absl::Status AppendSquaredDeltas(int tensor, int64_t offset, absl::Span<const float> deltas, float scale,
                                   int group = 0);

  // As AppendSquaredDeltas, but stores `values` unchanged (non-finite ones as 0, counted).
  absl::Status AppendFeatures(int tensor, int64_t offset, absl::Span<const float> values, int group = 0);

  // True when a sample is pending and every feature of it has been stored.
  bool pending() const { return pending_; }
  bool pending_complete() const { return pending_ && coverage_.complete(); }
  // OK when the pending sample is complete; FAILED_PRECONDITION without one; INVALID_ARGUMENT naming
  // the first missing range (tensor, group, elements) otherwise.
  absl::Status CheckPendingComplete() const;

  // Commits the pending sample with target `y` (stored as given, any value: the fits turn non-finite
  // targets into 0) and returns its row index. FAILED_PRECONDITION without a pending sample;
  // INVALID_ARGUMENT naming the first missing tensor range when the sample is incomplete (the sample
  // stays pending so the missing chunks can still come).
  absl::StatusOr<int64_t> CommitSample(double y);

  // Drops the pending sample, if any.
  void DiscardSample();

  // Makes room for `rows` more samples in one contiguous block (no-op when they already fit).
  // INVALID_ARGUMENT for rows < 0; RESOURCE_EXHAUSTED (nothing allocated) over the budget.
  absl::Status Reserve(int64_t rows);

  // Drops all samples (committed and pending) and the counters; keeps the allocated blocks.
  void Clear();
  // Clear() and frees all blocks.
  void ReleaseMemory();

  // Changes the budget; it applies from the next allocation (blocks already held are kept).
  // INVALID_ARGUMENT when negative.
  absl::Status set_memory_budget_bytes(int64_t bytes);

  // RowSource: T committed rows of num_cols() = feature_groups · N features. Row(t, scratch) returns a
  // pointer into storage for float32 and decodes into `scratch` (num_cols() floats) for bfloat16.
  // REQUIRES: 0 <= t < num_rows().
  int64_t num_rows() const override { return static_cast<int64_t>(targets_.size()); }
  int64_t num_cols() const override { return num_cols_; }
  const float* Row(int64_t t, float* scratch) const override;

  // Row t's values in the store's encoding, 64-byte aligned: num_cols() floats in column order
  // (float32), or bfloat16 bit patterns in pair-interleaved order (see Bfloat16Slot), padded with zeros
  // to a whole group of 32. REQUIRES: 0 <= t < num_rows().
  const void* RawRow(int64_t t) const { return row_ptrs_[static_cast<size_t>(t)]; }
  SampleEncoding encoding() const { return options_.encoding; }
  int64_t bytes_per_value() const { return options_.encoding == SampleEncoding::kFloat32 ? 4 : 2; }

  // Targets y_t of the committed samples, in commit order.
  const std::vector<double>& targets() const { return targets_; }
  double target(int64_t t) const { return targets_[static_cast<size_t>(t)]; }

  // Values replaced by 0 because they were NaN, ±inf or overflowed: in committed sample t, in all
  // committed samples since the last Clear(), and in the pending sample so far.
  int64_t nonfinite_count(int64_t t) const { return nonfinite_[static_cast<size_t>(t)]; }
  int64_t total_nonfinite() const { return total_nonfinite_; }
  int64_t pending_nonfinite() const { return pending_nonfinite_; }

  const Layout& layout() const { return layout_; }
  int feature_groups() const { return options_.feature_groups; }
  int64_t memory_budget_bytes() const { return options_.memory_budget_bytes; }
  // Bytes of one stored row including padding to 64 bytes.
  int64_t row_stride_bytes() const { return row_stride_; }
  // num_rows() × num_cols() × bytes_per_value(): the samples' own size.
  int64_t raw_bytes() const { return num_rows() * num_cols_ * bytes_per_value(); }
  // Bytes of all blocks currently allocated, and the most ever allocated at once.
  int64_t allocated_bytes() const { return allocated_bytes_; }
  int64_t peak_allocated_bytes() const { return peak_allocated_bytes_; }

 private:
  struct Block {
    char* data = nullptr;  // 64-byte aligned, freed with std::free
    int64_t rows = 0;
  };

  SampleStore(Layout layout, SampleStoreOptions options);
  // Ensures a free row slot exists after the committed rows (and before the pending one is taken).
  absl::Status EnsureFreeRow();
  absl::Status AllocateBlock(int64_t rows);
  int64_t CapacityRows() const;
  char* SlotForRow(int64_t row) const;
  absl::Status CheckWritable(int tensor, int64_t offset, size_t count, int group);

  Layout layout_;
  SampleStoreOptions options_;
  int64_t num_features_;  // N
  int64_t num_cols_;      // groups × N
  int64_t row_stride_;
  ChunkCoverage coverage_;

  std::vector<Block> blocks_;
  std::vector<const void*> row_ptrs_;  // committed rows
  std::vector<double> targets_;
  std::vector<int64_t> nonfinite_;
  int64_t total_nonfinite_ = 0;

  bool pending_ = false;
  char* pending_row_ = nullptr;
  int64_t pending_nonfinite_ = 0;

  int64_t allocated_bytes_ = 0;
  int64_t peak_allocated_bytes_ = 0;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_SAMPLE_STORE_H_
