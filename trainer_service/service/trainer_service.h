// The gcprune.v1.Trainer gRPC service (callback API): a thin translation of the RPCs to RunManager calls,
// and WatchRun streams that replay and follow a run's event log without ever slowing the run down.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_TRAINER_SERVICE_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_TRAINER_SERVICE_H_

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"
#include "trainer_service/service/run_manager.h"

namespace gcprune::trainer {

// Thread-safe. The manager must outlive the service.
class TrainerService final : public gcprune::v1::Trainer::CallbackService {
 public:
  explicit TrainerService(RunManager* manager) : manager_(manager) {}
  TrainerService(const TrainerService&) = delete;
  TrainerService& operator=(const TrainerService&) = delete;

  // Ends every open WatchRun stream with UNAVAILABLE ("the trainer is shutting down"); later WatchRun
  // calls get the same. For the server's shutdown hook.
  void Shutdown();

  grpc::ServerUnaryReactor* CreateRun(grpc::CallbackServerContext* context,
                                      const gcprune::v1::CreateRunRequest* request,
                                      gcprune::v1::Run* response) override;
  // Sends the retained events after request.after_sequence, then live ones, and ends with OK after the
  // RunFinished event. A watcher slower than the run loses the oldest events (the log is bounded) and
  // sees the gap in sequence numbers. INVALID_ARGUMENT for an empty run id or a negative after_sequence;
  // NOT_FOUND for an unknown run.
  grpc::ServerWriteReactor<gcprune::v1::RunEvent>* WatchRun(grpc::CallbackServerContext* context,
                                                            const gcprune::v1::WatchRunRequest* request) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context, const gcprune::v1::GetRunRequest* request,
                                   gcprune::v1::Run* response) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const gcprune::v1::ListRunsRequest* request,
                                     gcprune::v1::ListRunsResponse* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context,
                                      const gcprune::v1::CancelRunRequest* request,
                                      gcprune::v1::Run* response) override;
  grpc::ServerUnaryReactor* GetRunReport(grpc::CallbackServerContext* context,
                                         const gcprune::v1::GetRunReportRequest* request,
                                         gcprune::v1::RunReport* response) override;

  // Open WatchRun streams (for tests).
  int active_watches() const;

 private:
  class WatchReactor;
  void Register(WatchReactor* reactor);
  void Unregister(WatchReactor* reactor);

  RunManager* const manager_;
  mutable absl::Mutex mu_;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::set<WatchReactor*> watches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_TRAINER_SERVICE_H_
