// The sample store: row-major blocks of encoded feature values plus per-sample targets and counters.
#include "pruner_service/causal/sample_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "pruner_service/causal/bfloat16.h"

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define GCPRUNE_STORE_AVX512 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 intrinsics, see lasso_kernels.cc
#endif
#endif

namespace gcprune::pruner {
namespace {

constexpr int64_t kAlignment = 64;
constexpr int64_t kMinBlockBytes = int64_t{64} << 10;

inline bool IsNonFinite(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return (bits & 0x7F800000u) == 0x7F800000u;
}

// Writes scale·d² (square = true) or d (square = false) for every input, non-finite results as 0, in
// the store's encoding; returns how many were replaced. Branch-free so the compiler vectorises it.
template <bool kSquare>
int64_t EncodeFloat32(const float* in, int64_t n, float scale, float* out) {
  int64_t replaced = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = kSquare ? (in[i] * in[i]) * scale : in[i];
    const bool bad = IsNonFinite(v);
    replaced += bad ? 1 : 0;
    out[i] = bad ? 0.0f : v;
  }
  return replaced;
}

// Bits of the bfloat16 nearest to `v` (ties to even), which must be finite, saturating instead of
// overflowing: the same result as FloatToBfloat16Saturating, written branch-free.
inline uint32_t RoundToBfloat16Bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const bool overflow = (rounded & 0x7FFFu) == 0x7F80u;
  return overflow ? ((rounded & 0x8000u) | kBfloat16MaxFinite) : rounded;
}

template <bool kSquare>
inline float Transform(float in, float scale, int64_t* replaced) {
  const float v = kSquare ? (in * in) * scale : in;
  const bool bad = IsNonFinite(v);
  *replaced += bad ? 1 : 0;
  return bad ? 0.0f : v;
}

// As EncodeFloat32 for columns [column, column + n) of a bfloat16 row, written in the
// pair-interleaved layout of Bfloat16Slot: whole groups of 32 with vectorisable word packing, the
// partial groups at either end one value at a time.
template <bool kSquare>
int64_t EncodeBfloat16(const float* in, int64_t n, float scale, int64_t column, uint16_t* row) {
  int64_t replaced = 0;
  int64_t i = 0;
  for (; i < n && ((column + i) & 31) != 0; ++i) {
    row[Bfloat16Slot(column + i)] = static_cast<uint16_t>(RoundToBfloat16Bits(Transform<kSquare>(in[i], scale, &replaced)));
  }
#if GCPRUNE_STORE_AVX512
  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512i bias = _mm512_set1_epi32(0x7FFF);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i magnitude = _mm512_set1_epi32(0x7FFF);
  const __m512i infinity = _mm512_set1_epi32(0x7F80);
  const __m512i sign = _mm512_set1_epi32(0x8000);
  const __m512i max_finite = _mm512_set1_epi32(kBfloat16MaxFinite);
  auto round = [&](__m512 v, __mmask16* bad) {
    if (kSquare) v = _mm512_mul_ps(_mm512_mul_ps(v, v), vscale);
    *bad = _mm512_fpclass_ps_mask(v, 0x99);  // QNaN, +inf, -inf, SNaN
    const __m512i bits = _mm512_castps_si512(_mm512_maskz_mov_ps(static_cast<__mmask16>(~*bad), v));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(bits, bias), _mm512_and_si512(_mm512_srli_epi32(bits, 16), one));
    r = _mm512_srli_epi32(r, 16);
    const __mmask16 overflow = _mm512_cmpeq_epi32_mask(_mm512_and_si512(r, magnitude), infinity);
    return _mm512_mask_or_epi32(r, overflow, _mm512_and_si512(r, sign), max_finite);
  };
  for (; i + 32 <= n; i += 32) {
    __mmask16 bad_lo, bad_hi;
    const __m512i lo = round(_mm512_loadu_ps(in + i), &bad_lo);
    const __m512i hi = round(_mm512_loadu_ps(in + i + 16), &bad_hi);
    _mm512_store_si512(reinterpret_cast<void*>(row + column + i), _mm512_or_si512(_mm512_slli_epi32(hi, 16), lo));
    replaced += __builtin_popcount(bad_lo) + __builtin_popcount(bad_hi);
  }
#endif
  for (; i + 32 <= n; i += 32) {
    uint32_t* words = reinterpret_cast<uint32_t*>(row + column + i);
    int64_t bad = 0;
    for (int j = 0; j < 16; ++j) {
      const uint32_t lo = RoundToBfloat16Bits(Transform<kSquare>(in[i + j], scale, &bad));
      const uint32_t hi = RoundToBfloat16Bits(Transform<kSquare>(in[i + 16 + j], scale, &bad));
      words[j] = (hi << 16) | lo;
    }
    replaced += bad;
  }
  for (; i < n; ++i) {
    row[Bfloat16Slot(column + i)] = static_cast<uint16_t>(RoundToBfloat16Bits(Transform<kSquare>(in[i], scale, &replaced)));
  }
  return replaced;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SampleStore>> SampleStore::Create(const Layout& layout, SampleStoreOptions options) {
  if (options.feature_groups != 1 && options.feature_groups != 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sample store feature_groups: %d, must be 1 or 3", options.feature_groups));
  }
  if (options.memory_budget_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sample store memory_budget_bytes: %d, must be >= 0", options.memory_budget_bytes));
  }
  if (options.encoding != SampleEncoding::kFloat32 && options.encoding != SampleEncoding::kBfloat16) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sample store encoding: unknown value %d", static_cast<int>(options.encoding)));
  }
  return std::unique_ptr<SampleStore>(new SampleStore(layout, options));
}

SampleStore::SampleStore(Layout layout, SampleStoreOptions options)
    : layout_(std::move(layout)),
      options_(options),
      num_features_(layout_.num_features()),
      num_cols_(layout_.num_features() * options.feature_groups),
      row_stride_((num_cols_ * bytes_per_value() + kAlignment - 1) / kAlignment * kAlignment),
      coverage_(&layout_, options.feature_groups) {}

SampleStore::~SampleStore() { ReleaseMemory(); }

int64_t SampleStore::CapacityRows() const {
  int64_t rows = 0;
  for (const Block& block : blocks_) rows += block.rows;
  return rows;
}

char* SampleStore::SlotForRow(int64_t row) const {
  for (const Block& block : blocks_) {
    if (row < block.rows) return block.data + row * row_stride_;
    row -= block.rows;
  }
  return nullptr;
}

absl::Status SampleStore::AllocateBlock(int64_t rows) {
  const int64_t bytes = rows * row_stride_;
  if (rows < 1 || bytes > options_.memory_budget_bytes - allocated_bytes_) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "sample store: %d more sample(s) of %d bytes (%d features, %s) would raise the storage from %d to %d "
        "bytes, over the memory budget of %d bytes (%d samples stored)",
        std::max<int64_t>(rows, 1), row_stride_, num_cols_, SampleEncodingName(options_.encoding),
        allocated_bytes_, allocated_bytes_ + std::max<int64_t>(rows, 1) * row_stride_,
        options_.memory_budget_bytes, num_rows()));
  }
  void* data = std::aligned_alloc(kAlignment, static_cast<size_t>(bytes));
  if (data == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("sample store: allocating %d bytes for %d samples failed", bytes, rows));
  }
  blocks_.push_back(Block{static_cast<char*>(data), rows});
  allocated_bytes_ += bytes;
  peak_allocated_bytes_ = std::max(peak_allocated_bytes_, allocated_bytes_);
  return absl::OkStatus();
}

absl::Status SampleStore::EnsureFreeRow() {
  const int64_t capacity = CapacityRows();
  if (num_rows() < capacity) return absl::OkStatus();
  // Grow by 10% of what is stored (at least kMinBlockBytes or one row), so the unused tail never
  // exceeds a tenth of the data, without ever moving stored rows; shrink to what the budget allows.
  const int64_t min_rows = std::max<int64_t>(1, kMinBlockBytes / row_stride_);
  int64_t rows = std::max(min_rows, capacity / 10);
  const int64_t affordable = (options_.memory_budget_bytes - allocated_bytes_) / row_stride_;
  rows = std::min(rows, std::max<int64_t>(affordable, 1));
  return AllocateBlock(rows);
}

absl::Status SampleStore::BeginSample() {
  if (pending_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("sample store: a sample is already pending (%d samples committed)", num_rows()));
  }
  absl::Status status = EnsureFreeRow();
  if (!status.ok()) return status;
  pending_row_ = SlotForRow(num_rows());
  pending_ = true;
  pending_nonfinite_ = 0;
  coverage_.Reset();
  return absl::OkStatus();
}

absl::Status SampleStore::CheckWritable(int tensor, int64_t offset, size_t count, int group) {
  if (!pending_) {
    return absl::FailedPreconditionError("sample store: values appended without a pending sample (BeginSample)");
  }
  return coverage_.Claim(tensor, offset, static_cast<int64_t>(count), group);
}

absl::Status SampleStore::AppendSquaredDeltas(int tensor, int64_t offset, absl::Span<const float> deltas,
                                              float scale, int group) {
  if (!(scale > 0.0f) || IsNonFinite(scale)) {
    return absl::InvalidArgumentError(absl::StrFormat("sample store scale: %g, must be finite and > 0", scale));
  }
  absl::Status status = CheckWritable(tensor, offset, deltas.size(), group);
  if (!status.ok()) return status;
  const int64_t column = group * num_features_ + layout_.feature_offset(tensor) + offset;
  const int64_t n = static_cast<int64_t>(deltas.size());
  int64_t replaced;
  if (options_.encoding == SampleEncoding::kFloat32) {
    replaced = EncodeFloat32<true>(deltas.data(), n, scale, reinterpret_cast<float*>(pending_row_) + column);
  } else {
    replaced = EncodeBfloat16<true>(deltas.data(), n, scale, column, reinterpret_cast<uint16_t*>(pending_row_));
  }
  pending_nonfinite_ += replaced;
  return absl::OkStatus();
}

absl::Status SampleStore::AppendFeatures(int tensor, int64_t offset, absl::Span<const float> values, int group) {
  absl::Status status = CheckWritable(tensor, offset, values.size(), group);
  if (!status.ok()) return status;
  const int64_t column = group * num_features_ + layout_.feature_offset(tensor) + offset;
  const int64_t n = static_cast<int64_t>(values.size());
  int64_t replaced;
  if (options_.encoding == SampleEncoding::kFloat32) {
    replaced = EncodeFloat32<false>(values.data(), n, 1.0f, reinterpret_cast<float*>(pending_row_) + column);
  } else {
    replaced = EncodeBfloat16<false>(values.data(), n, 1.0f, column, reinterpret_cast<uint16_t*>(pending_row_));
  }
  pending_nonfinite_ += replaced;
  return absl::OkStatus();
}

absl::Status SampleStore::CheckPendingComplete() const {
  if (!pending_) return absl::FailedPreconditionError("sample store: no pending sample (BeginSample)");
  return coverage_.CheckComplete();
}

absl::StatusOr<int64_t> SampleStore::CommitSample(double y) {
  absl::Status status = CheckPendingComplete();
  if (!status.ok()) return status;
  // Zero the row's padding so whole-group readers see zeros there.
  if (options_.encoding == SampleEncoding::kFloat32) {
    const int64_t used = num_cols_ * 4;
    std::memset(pending_row_ + used, 0, static_cast<size_t>(row_stride_ - used));
  } else {
    uint16_t* row = reinterpret_cast<uint16_t*>(pending_row_);
    for (int64_t c = num_cols_; c < row_stride_ / 2; ++c) row[Bfloat16Slot(c)] = 0;
  }
  row_ptrs_.push_back(pending_row_);
  targets_.push_back(y);
  nonfinite_.push_back(pending_nonfinite_);
  total_nonfinite_ += pending_nonfinite_;
  DiscardSample();
  return num_rows() - 1;
}

void SampleStore::DiscardSample() {
  pending_ = false;
  pending_row_ = nullptr;
  pending_nonfinite_ = 0;
  coverage_.Reset();
}

absl::Status SampleStore::Reserve(int64_t rows) {
  if (rows < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("sample store Reserve rows: %d, must be >= 0", rows));
  }
  const int64_t free_rows = CapacityRows() - num_rows() - (pending_ ? 1 : 0);
  if (rows <= free_rows) return absl::OkStatus();
  return AllocateBlock(rows - free_rows);
}

void SampleStore::Clear() {
  DiscardSample();
  row_ptrs_.clear();
  targets_.clear();
  nonfinite_.clear();
  total_nonfinite_ = 0;
}

void SampleStore::ReleaseMemory() {
  Clear();
  for (Block& block : blocks_) std::free(block.data);
  blocks_.clear();
  allocated_bytes_ = 0;
}

absl::Status SampleStore::set_memory_budget_bytes(int64_t bytes) {
  if (bytes < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("sample store memory_budget_bytes: %d, must be >= 0", bytes));
  }
  options_.memory_budget_bytes = bytes;
  return absl::OkStatus();
}

const float* SampleStore::Row(int64_t t, float* scratch) const {
  const void* raw = RawRow(t);
  if (options_.encoding == SampleEncoding::kFloat32) return static_cast<const float*>(raw);
  const uint16_t* in = static_cast<const uint16_t*>(raw);
  const uint32_t* words = static_cast<const uint32_t*>(raw);
  int64_t k = 0;
  for (; k + 32 <= num_cols_; k += 32) {
    for (int j = 0; j < 16; ++j) {
      const uint32_t lo = words[k / 2 + j] << 16;
      const uint32_t hi = words[k / 2 + j] & 0xFFFF0000u;
      std::memcpy(scratch + k + j, &lo, sizeof(float));
      std::memcpy(scratch + k + 16 + j, &hi, sizeof(float));
    }
  }
  for (; k < num_cols_; ++k) scratch[k] = Bfloat16ToFloat(in[Bfloat16Slot(k)]);
  return scratch;
}

}  // namespace gcprune::pruner
