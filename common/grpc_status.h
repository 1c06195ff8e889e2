// The one mapping between absl::Status (used everywhere inside gcprune) and grpc::Status (used only at
// the service boundary and in clients).
#ifndef GCPRUNE_COMMON_GRPC_STATUS_H_
#define GCPRUNE_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace gcprune::common {

// Converts a status for a service reply. The code maps one to one (both follow google.rpc.Code), an
// unknown absl code becomes UNKNOWN; the message is kept, cut to at most kMaxGrpcStatusMessageBytes bytes
// (with "..." appended) so it fits in the trailers. Payloads are dropped.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts a status received by a client. The code maps one to one, an unknown grpc code becomes
// UNKNOWN; the message is kept; error_details are dropped.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Longest message ToGrpcStatus forwards, in bytes.
inline constexpr size_t kMaxGrpcStatusMessageBytes = 4096;

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_GRPC_STATUS_H_
