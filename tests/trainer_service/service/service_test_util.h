// Helpers for the trainer's integration tests: the trainer service in process on 127.0.0.1, the real
// gcprune-pruner binary as a child process, small Fashion-MNIST run specs, watching a run to its end,
// fetching a session's masks from the pruner, and the same run repeated in process (the reference).
#ifndef GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_SERVICE_TEST_UTIL_H_
#define GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_SERVICE_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/server_bootstrap.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"
#include "tests/trainer_service/service/child_process.h"
#include "tests/trainer_service/service/local_pruner_link.h"
#include "trainer_service/service/run_manager.h"
#include "trainer_service/service/trainer_service.h"

namespace gcprune::trainer::testing {

// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Starts gcprune-pruner on 127.0.0.1 with `state_dir`, on `port` (0 = ephemeral).
absl::StatusOr<std::unique_ptr<ChildProcess>> StartPruner(const std::string& state_dir, int port = 0);

// RunManager + TrainerService + gRPC server in this process, on 127.0.0.1:0.
class InProcessTrainer {
 public:
  static absl::StatusOr<std::unique_ptr<InProcessTrainer>> Start(RunManagerOptions options);
  ~InProcessTrainer();

  const std::string& address() const { return server_->local_address(); }
  std::unique_ptr<gcprune::v1::Trainer::Stub> NewStub() const;
  RunManager& manager() { return *manager_; }
  TrainerService& service() { return *service_; }

 private:
  InProcessTrainer() = default;
  std::unique_ptr<RunManager> manager_;
  std::unique_ptr<TrainerService> service_;
  std::unique_ptr<common::GrpcServer> server_;
};

// RunManagerOptions for tests: fast progress events and pruner backoff.
RunManagerOptions TestManagerOptions(int concurrent_runs = 1);

// A short run of the MLP on a Fashion-MNIST subset: pre-train 1 epoch, `iterations` prune iterations to
// `target` with one training epoch between, 1 fine-tune epoch. Collection steps per iteration:
// train_subset / 256 for causal-v2.
gcprune::v1::RunSpec SmallRunSpec(gcprune::v1::Method method, const std::string& pruner_address, int iterations = 2,
                                  double target = 0.5, int train_subset = 2048, uint64_t seed = 7);

// Every event of a run's WatchRun stream (after `after_sequence`) and the stream's final status.
struct Watched {
  std::vector<gcprune::v1::RunEvent> events;
  grpc::Status status;
  // The RunFinished event (default-constructed if none came).
  gcprune::v1::RunFinished finished;
  bool Has(const std::function<bool(const gcprune::v1::RunEvent&)>& predicate) const;
};
Watched WatchToEnd(gcprune::v1::Trainer::Stub& stub, const std::string& run_id, int64_t after_sequence = 0,
                   absl::Duration timeout = absl::Seconds(90),
                   const std::function<void(const gcprune::v1::RunEvent&)>& on_event = nullptr);

// Polls GetRun until the run is terminal (or `timeout`).
absl::StatusOr<gcprune::v1::Run> WaitForRun(gcprune::v1::Trainer::Stub& stub, const std::string& run_id,
                                            absl::Duration timeout = absl::Seconds(90));

// The cumulative keep-masks of every prunable tensor (layout order) after `iteration`, from GetMasks.
absl::StatusOr<std::vector<std::vector<uint8_t>>> FetchMasks(const std::string& pruner_address,
                                                             const std::string& session_id, int iteration);

// The same run in this process with the pruning session in process: its masks per iteration and report.
struct ReferenceRun {
  std::vector<std::vector<std::vector<uint8_t>>> masks;
  gcprune::v1::RunReport report;
};
absl::StatusOr<ReferenceRun> RunInProcess(const gcprune::v1::RunSpec& spec);

}  // namespace gcprune::trainer::testing

#endif  // GCPRUNE_TESTS_TRAINER_SERVICE_SERVICE_SERVICE_TEST_UTIL_H_
