// The gcprune.v1.Pruner gRPC service: the Session stream (one reactor per stream) and the unary calls,
// translating between the wire messages and the session manager.
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_PRUNER_SERVICE_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_PRUNER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "pruner_service/service/session_manager.h"

namespace gcprune::pruner {

// Callback-API implementation of gcprune.v1.Pruner. Status codes are those of pruner.proto; every
// error message names the request field and its value. The manager must outlive the service.
class PrunerService final : public gcprune::v1::Pruner::CallbackService {
 public:
  explicit PrunerService(SessionManager* manager) : manager_(manager) {}

  grpc::ServerBidiReactor<gcprune::v1::SessionRequest, gcprune::v1::SessionResponse>* Session(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* context,
                                       const gcprune::v1::GetSessionRequest* request,
                                       gcprune::v1::SessionInfo* response) override;
  grpc::ServerUnaryReactor* ListSessions(grpc::CallbackServerContext* context,
                                         const gcprune::v1::ListSessionsRequest* request,
                                         gcprune::v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(grpc::CallbackServerContext* context,
                                          const gcprune::v1::DeleteSessionRequest* request,
                                          gcprune::v1::DeleteSessionResponse* response) override;
  grpc::ServerUnaryReactor* GetMasks(grpc::CallbackServerContext* context,
                                     const gcprune::v1::GetMasksRequest* request,
                                     gcprune::v1::GetMasksResponse* response) override;
  grpc::ServerUnaryReactor* GetReport(grpc::CallbackServerContext* context,
                                      const gcprune::v1::GetReportRequest* request,
                                      gcprune::v1::SessionReport* response) override;

 private:
  SessionManager* manager_;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_PRUNER_SERVICE_H_
