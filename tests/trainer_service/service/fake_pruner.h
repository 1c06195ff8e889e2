// Test helper: a small in-process gcprune.v1.Pruner (Session stream only) over PruningSession, with knobs
// for the failures a pruner client must survive: refused opens, silence, slow acks, streams that break
// after some steps, and restarts (the fake's sessions outlive the gRPC servers it is served by).
#ifndef GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_FAKE_PRUNER_H_
#define GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_FAKE_PRUNER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/pruning_session.h"

namespace gcprune::trainer::testing {

class FakePruner final : public gcprune::v1::Pruner::Service {
 public:
  struct Knobs {
    // Non-OK: every OpenSession is refused with this status.
    grpc::Status refuse_open = grpc::Status::OK;
    // After this many step commits over all streams (>= 0), the next commit ends its stream with
    // UNAVAILABLE instead of storing the step; -1 = never. Counts down once.
    int break_after_commits = -1;
    // Answer Opened, then say nothing more (no acks, no masks).
    bool silent = false;
    // Sleep before each ack.
    absl::Duration ack_delay = absl::ZeroDuration();
    // Chunk size recommended in Opened.
    int64_t recommended_chunk_elements = 262144;
  };

  FakePruner() = default;
  void set_knobs(const Knobs& knobs);

  grpc::Status Session(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<gcprune::v1::SessionResponse, gcprune::v1::SessionRequest>* stream) override;

  // Observations.
  int opens() const;
  int resumes_with_restart() const;
  int64_t duplicate_steps() const;
  int64_t stored_steps() const;  // committed over the whole life, duplicates excluded
  // The cumulative masks after each completed iteration of the (single) session.
  std::vector<pruner::MaskSet> masks() const;

 private:
  struct FakeSession {
    std::unique_ptr<pruner::PruningSession> session;
    int64_t next_step = 0;
    std::vector<std::vector<float>> weights;  // IterationWeights being gathered
    std::vector<pruner::MaskSet> history;
    int64_t last_step_of_iteration = -1;
  };

  mutable absl::Mutex mu_;
  Knobs knobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakeSession> sessions_ ABSL_GUARDED_BY(mu_);
  int opens_ ABSL_GUARDED_BY(mu_) = 0;
  int restarts_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t duplicates_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t stored_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gcprune::trainer::testing

#endif  // GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_FAKE_PRUNER_H_
