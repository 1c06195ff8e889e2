// Runs as jobs: creation (validated, idempotent per request id), a FIFO queue served by a small pool of
// worker threads, cancellation, listing and reports. Each run executes RunProtocol with a PrunerClient
// (or NoPrunerLink for method NONE without a pruner).
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_MANAGER_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_MANAGER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/client_channel.h"
#include "protos/gcprune/v1/trainer.pb.h"
#include "trainer_service/service/event_log.h"
#include "trainer_service/service/pretrain_cache.h"
#include "trainer_service/service/run_data.h"
#include "trainer_service/service/run_plan.h"
#include "trainer_service/service/run_protocol.h"
#include "trainer_service/service/run_record.h"

namespace gcprune::trainer {

struct RunManagerOptions {
  // Runs executed at the same time (worker threads), >= 1; the others wait QUEUED.
  int concurrent_runs = 1;
  // Queued plus running runs allowed, >= 1; CreateRun beyond it is RESOURCE_EXHAUSTED.
  int max_active_runs = 64;
  // Finished runs kept for GetRun/ListRuns/GetRunReport, >= 0; the oldest finished ones are forgotten.
  int max_retained_runs = 1000;
  // Events kept per run for WatchRun replay, >= 1.
  size_t event_log_capacity = 10000;
  // Defaults that complete a RunSpec (data root, default pruner address).
  RunSpecDefaults spec_defaults;
  // TLS roots, client certificate and bearer token towards pruners. `use_tls` is taken from each run's
  // PrunerEndpoint.use_tls.
  common::ClientChannelOptions pruner_channel;
  // Bytes of unacknowledged steps a run keeps for its pruner, >= 1.
  int64_t pruner_buffer_bytes = int64_t{256} << 20;
  absl::Duration pruner_initial_backoff = absl::Milliseconds(100);
  absl::Duration pruner_max_backoff = absl::Seconds(2);
  // Least time between two StepProgress events of a run.
  absl::Duration progress_interval = absl::Seconds(1);
  // Data sets kept in memory between runs.
  size_t dataset_cache_entries = 4;
  // OpenMP threads of each run, >= 0; 0 = OpenMP's default (OMP_NUM_THREADS, else one per core). Runs
  // executed at the same time should share the cores (e.g. cores / concurrent_runs each): two runs of two
  // threads on two cores stall at every barrier. Results are bit-identical for a given count.
  int threads_per_run = 0;
  // Bytes of pre-trained models kept for runs with an identical pre-training (pretrain_cache.h), >= 0;
  // 0 = every run pre-trains.
  int64_t pretrain_cache_bytes = int64_t{1} << 30;
};

// Thread-safe.
class RunManager {
 public:
  // Starts the worker threads. INVALID_ARGUMENT naming the option for a value out of range.
  static absl::StatusOr<std::unique_ptr<RunManager>> Create(RunManagerOptions options);
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;
  // Shutdown().
  ~RunManager();

  // Validates the spec (ResolveRunSpec: INVALID_ARGUMENT, NOT_FOUND) and queues a run. A request_id seen
  // before returns that run as it is now. INVALID_ARGUMENT for a request_id over 128 bytes;
  // RESOURCE_EXHAUSTED when max_active_runs runs are queued or running; UNAVAILABLE after shutdown began.
  absl::StatusOr<gcprune::v1::Run> CreateRun(const gcprune::v1::CreateRunRequest& request);
  // INVALID_ARGUMENT for an empty id, NOT_FOUND for an unknown one.
  absl::StatusOr<gcprune::v1::Run> GetRun(const std::string& run_id) const;
  absl::StatusOr<gcprune::v1::RunReport> GetRunReport(const std::string& run_id) const;
  absl::StatusOr<std::shared_ptr<EventLog>> GetEventLog(const std::string& run_id) const;
  // Newest first. INVALID_ARGUMENT for page_size outside [0, 1000], a malformed page token or an unknown
  // state value.
  absl::StatusOr<gcprune::v1::ListRunsResponse> ListRuns(const gcprune::v1::ListRunsRequest& request) const;
  // A QUEUED run ends CANCELLED at once; a RUNNING one stops at its next batch (the returned Run may
  // still say RUNNING); a CANCELLED run is returned unchanged. FAILED_PRECONDITION for a SUCCEEDED or
  // FAILED run; NOT_FOUND / INVALID_ARGUMENT as GetRun, and for a reason over 256 bytes.
  absl::StatusOr<gcprune::v1::Run> CancelRun(const gcprune::v1::CancelRunRequest& request);

  // Refuses new runs and cancels every queued and running run with `reason`. Does not wait.
  void CancelAll(const std::string& reason);
  // CancelAll, then waits for the workers to finish their runs. Idempotent.
  void Shutdown();

  // Queued plus running runs.
  int active_runs() const;

 private:
  struct Entry {
    std::shared_ptr<RunRecord> record;
    std::shared_ptr<const RunPlan> plan;  // released when the run ends
  };

  explicit RunManager(RunManagerOptions options);
  void WorkerLoop();
  void Execute(const std::shared_ptr<RunRecord>& record, const std::shared_ptr<const RunPlan>& plan);
  absl::StatusOr<std::unique_ptr<PruningLink>> MakeLink(const RunPlan& plan, RunRecord* record,
                                                        const gcprune::v1::Layout& layout) const;
  std::shared_ptr<RunRecord> Find(const std::string& run_id, absl::Status* status) const;
  void Retire(const std::string& run_id);

  const RunManagerOptions options_;
  DatasetCache datasets_;
  PretrainCache pretrains_;
  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_ordinal_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, Entry> runs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::string> by_ordinal_ ABSL_GUARDED_BY(mu_);  // every retained run
  absl::flat_hash_map<std::string, std::string> by_request_id_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_MANAGER_H_
