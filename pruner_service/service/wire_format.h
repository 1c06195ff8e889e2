// Translation between the gcprune.v1 wire messages and the causal core's types: layouts, method
// configurations, paged keep-masks and reports. (Tensor chunk codecs are common/tensor_chunk.h.)
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_WIRE_FORMAT_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_WIRE_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "protos/gcprune/v1/common.pb.h"
#include "protos/gcprune/v1/pruner.pb.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/report.h"

namespace gcprune::pruner {

// Limits of the wire contract (common.proto).
inline constexpr int kMaxLayoutTensors = 65536;
inline constexpr size_t kMaxTensorNameBytes = 256;
inline constexpr int kMaxTensorRank = 8;
inline constexpr size_t kMaxLabelBytes = 256;

// Converts a wire layout, checking the contract's limits (1 to 65536 tensors, names of 1 to 256 bytes,
// 1 to 8 dimensions each >= 1) and then Layout::Create's rules. INVALID_ARGUMENT naming the field under
// `field` (e.g. "open.create.layout.tensors[2].shape[0]") and the value.
absl::StatusOr<Layout> LayoutFromProto(const gcprune::v1::Layout& proto, absl::string_view field);
gcprune::v1::Layout LayoutToProto(const Layout& layout);

// OK if `expected` describes the same tensors (names, shapes, prunable flags, order) as `layout`;
// FAILED_PRECONDITION naming `field` and the first differing tensor otherwise.
absl::Status CheckLayoutMatches(const Layout& layout, const gcprune::v1::Layout& expected,
                                absl::string_view field);

// Converts a wire method configuration (unset optionals and UNSPECIFIED enums select the defaults) and
// validates it. INVALID_ARGUMENT naming the field under `field` and the value: unknown enum numbers,
// FLOAT16 as sample encoding, a negative memory budget, and every ValidateMethodConfig error.
absl::StatusOr<MethodConfig> MethodConfigFromProto(const gcprune::v1::MethodConfig& proto,
                                                   absl::string_view field);
// The wire form of a (typically resolved) configuration: engaged optionals become set fields.
gcprune::v1::MethodConfig MethodConfigToProto(const MethodConfig& config);

// A position in a list of prunable tensors' masks: the `list_index`-th tensor of the list, from element
// `offset` (a multiple of 8).
struct MaskCursor {
  int list_index = 0;
  int64_t offset = 0;
};

// Fills `update->masks` with runs of the masks of the prunable tensors `tensors` (MaskSet indices), in
// that order, starting at `start`, until `max_bytes` bytes of bits are used (at least one run; runs of
// at most `max_bytes` bytes, split by common/mask_runs.h). Returns the cursor after the last run;
// list_index == tensors.size() at the end.
MaskCursor AppendMaskRuns(const MaskSet& mask, const std::vector<int>& tensors, MaskCursor start,
                          int64_t max_bytes, gcprune::v1::MaskUpdate* update);

// Fills the summary of a last part: per-tensor counts of `tensors` (MaskSet indices), and the global
// counts, sparsity and targets. `target_sparsity` may be NaN (causal-v1).
void FillMaskSummary(const MaskSet& mask, const std::vector<int>& tensors, double target_sparsity,
                     bool final_iteration, gcprune::v1::MaskUpdate* update);

// The whole cumulative mask after `iteration` as MaskUpdate parts whose bits fields hold at most about
// `max_part_bytes` bytes each (>= 1); the last part has last_part and the summary.
std::vector<gcprune::v1::MaskUpdate> MakeMaskUpdates(const MaskSet& mask, int iteration, int64_t apply_at_step,
                                                     double target_sparsity, bool final_iteration,
                                                     int64_t max_part_bytes);

// The wire form of an iteration report. first_step/last_step: the iteration's step range (-1 if none).
// nan_count holds the NaN targets plus the non-finite feature values (the sample store counts NaN,
// ±inf and overflow together), inf_count the ±inf targets.
gcprune::v1::IterationReport IterationReportToProto(const IterationReport& report, int64_t first_step,
                                                    int64_t last_step, int64_t finished_unix_ms);

// SessionState's name without the prefix, e.g. "COLLECTING".
absl::string_view SessionStateName(gcprune::v1::SessionState state);

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_WIRE_FORMAT_H_
