// Test helper: a PruningLink that feeds the run's steps straight into an in-process PruningSession, so a
// run can be repeated without any service and its masks compared with those that came over gRPC.
#ifndef GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_LOCAL_PRUNER_LINK_H_
#define GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_LOCAL_PRUNER_LINK_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "protos/gcprune/v1/common.pb.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/pruning_session.h"
#include "trainer_service/service/pruning_link.h"

namespace gcprune::trainer::testing {

// What a LocalPrunerLink saw; shared so it outlives the link, which the protocol owns.
struct LocalPrunerRecord {
  std::vector<pruner::MaskSet> masks;  // cumulative masks after each iteration
  int64_t steps = 0;                   // steps fed to the session
};

class LocalPrunerLink final : public PruningLink {
 public:
  // INVALID_ARGUMENT for a layout or method the pruner would refuse.
  static absl::StatusOr<std::unique_ptr<LocalPrunerLink>> Create(const gcprune::v1::Layout& layout,
                                                                 const gcprune::v1::MethodConfig& method,
                                                                 std::shared_ptr<LocalPrunerRecord> record);

  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status BeginIteration(int) override { return absl::OkStatus(); }
  absl::Status AddStep(const StepRecord& step) override;
  absl::StatusOr<IterationMasks> EndIteration(int iteration,
                                              const std::vector<absl::Span<const float>>& weights) override;
  void Close(bool) override {}
  LinkStats stats() const override;

 private:
  LocalPrunerLink(std::unique_ptr<pruner::PruningSession> session, std::vector<int> layout_index,
                  std::shared_ptr<LocalPrunerRecord> record)
      : session_(std::move(session)), layout_index_(std::move(layout_index)), record_(std::move(record)) {}

  std::unique_ptr<pruner::PruningSession> session_;
  std::vector<int> layout_index_;  // per prunable tensor
  std::shared_ptr<LocalPrunerRecord> record_;
  int64_t next_step_ = 0;
};

// The keep bytes of a MaskSet, one vector per prunable tensor.
std::vector<std::vector<uint8_t>> KeepBytes(const pruner::MaskSet& masks);

}  // namespace gcprune::trainer::testing

#endif  // GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_LOCAL_PRUNER_LINK_H_
