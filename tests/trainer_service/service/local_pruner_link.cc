// In-process pruning link for tests (see local_pruner_link.h).
#include "tests/trainer_service/service/local_pruner_link.h"

#include <cmath>
#include <utility>

#include "common/status_macros.h"
#include "pruner_service/service/wire_format.h"

namespace gcprune::trainer::testing {

std::vector<std::vector<uint8_t>> KeepBytes(const pruner::MaskSet& masks) {
  std::vector<std::vector<uint8_t>> keep;
  for (int p = 0; p < masks.num_tensors(); ++p) {
    absl::Span<const uint8_t> bytes = masks.tensor_keep(p);
    keep.emplace_back(bytes.begin(), bytes.end());
  }
  return keep;
}

absl::StatusOr<std::unique_ptr<LocalPrunerLink>> LocalPrunerLink::Create(const gcprune::v1::Layout& layout,
                                                                         const gcprune::v1::MethodConfig& method,
                                                                         std::shared_ptr<LocalPrunerRecord> record) {
  GCPRUNE_ASSIGN_OR_RETURN(pruner::Layout core_layout, pruner::LayoutFromProto(layout, "layout"));
  GCPRUNE_ASSIGN_OR_RETURN(pruner::MethodConfig config, pruner::MethodConfigFromProto(method, "method"));
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<pruner::PruningSession> session,
                           pruner::PruningSession::Create(core_layout, config));
  std::vector<int> layout_index;
  for (int i = 0; i < layout.tensors_size(); ++i) {
    if (layout.tensors(i).prunable()) layout_index.push_back(i);
  }
  return std::unique_ptr<LocalPrunerLink>(
      new LocalPrunerLink(std::move(session), std::move(layout_index), std::move(record)));
}

absl::Status LocalPrunerLink::AddStep(const StepRecord& step) {
  if (!session_->wants_steps()) return absl::OkStatus();
  pruner::StepHeader header;
  header.step = next_step_++;
  header.loss_before = step.loss_before;
  header.loss_after = std::isnan(step.loss_after) ? 0.0 : step.loss_after;
  header.lr = step.learning_rate;
  pruner::TensorWeights deltas;
  for (const std::vector<float>& values : *step.deltas) deltas.emplace_back(values.data(), values.size());
  ++record_->steps;
  return session_->AddStep(header, deltas);
}

absl::StatusOr<IterationMasks> LocalPrunerLink::EndIteration(int, const std::vector<absl::Span<const float>>& weights) {
  GCPRUNE_ASSIGN_OR_RETURN(pruner::IterationResult result, session_->EndIteration(weights));
  record_->masks.push_back(result.masks);
  IterationMasks masks;
  masks.pruner_iteration = result.iteration;
  masks.target_sparsity = session_->schedule().TargetSparsity(result.iteration);
  if (session_->config().method == pruner::Method::kCausalV1) masks.target_sparsity = std::nan("");
  masks.keep = KeepBytes(result.masks);
  return masks;
}

LinkStats LocalPrunerLink::stats() const {
  LinkStats stats;
  stats.state = gcprune::v1::PRUNER_STATE_CONNECTED;
  stats.steps_sent = record_->steps;
  stats.acked_step = record_->steps - 1;
  return stats;
}

}  // namespace gcprune::trainer::testing
