// Test helpers for the pruner server: an in-process server on 127.0.0.1, a synchronous Session stream
// client, a deterministic synthetic training run, and the masks a PruningSession computes in process
// from the same steps (the reference the server must match exactly).
#ifndef GCPRUNE_TESTS_PRUNER_SERVICE_SERVICE_PRUNER_TEST_UTIL_H_
#define GCPRUNE_TESTS_PRUNER_SERVICE_SERVICE_PRUNER_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/server_bootstrap.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/service/fit_executor.h"
#include "pruner_service/service/pruner_service.h"
#include "pruner_service/service/session_manager.h"
#include "pruner_service/service/state_directory.h"

namespace gcprune::pruner::testing {

// A fresh temporary folder, removed (with its contents) on destruction.
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

struct InProcessPrunerOptions {
  SessionManagerOptions manager;
  int fit_threads = 1;
  int max_receive_message_bytes = 4 << 20;
};

// The whole pruner server (state directory, fit executor, session manager, service, gRPC server) in this
// process, listening on 127.0.0.1 on an ephemeral port.
class InProcessPruner {
 public:
  static absl::StatusOr<std::unique_ptr<InProcessPruner>> Start(const std::string& state_dir,
                                                                const InProcessPrunerOptions& options = {});
  // Shutdown() and release everything (the state directory's lock included).
  ~InProcessPruner();

  const std::string& address() const { return server_->local_address(); }
  common::GrpcServer& server() { return *server_; }
  SessionManager& manager() { return *manager_; }
  std::unique_ptr<gcprune::v1::Pruner::Stub> NewStub() const;
  // Graceful shutdown as main() does it: streams end with UNAVAILABLE, then the fits finish.
  void Shutdown();

 private:
  InProcessPruner() = default;

  std::unique_ptr<StateDirectory> dir_;
  std::unique_ptr<FitExecutor> executor_;
  std::unique_ptr<SessionManager> manager_;
  std::unique_ptr<PrunerService> service_;
  std::unique_ptr<common::GrpcServer> server_;
  bool shut_down_ = false;
};

// A deterministic model-free "training run" on a layout: per global step number, signed deltas of every
// prunable element and the step's scalars; per iteration, current weights (for the magnitude methods).
// Losses follow a planted causal model, so the fits have something to find.
class SyntheticRun {
 public:
  SyntheticRun(gcprune::v1::Layout layout, uint64_t seed, int64_t steps_per_iteration);

  // fc1.weight [24, 40] (prunable), fc1.bias [24], fc2.weight [10, 24] (prunable): N = 1200.
  static gcprune::v1::Layout SmallLayout();
  // One prunable tensor [rows, cols] plus a bias [rows]: N = rows · cols.
  static gcprune::v1::Layout WideLayout(int64_t rows, int64_t cols);

  const gcprune::v1::Layout& layout() const { return layout_; }
  int64_t num_features() const { return num_features_; }
  int64_t steps_per_iteration() const { return steps_per_iteration_; }
  // Global step numbers of iteration j (1-based): [first, last].
  int64_t FirstStep(int iteration) const { return (iteration - 1) * steps_per_iteration_; }
  int64_t LastStep(int iteration) const { return iteration * steps_per_iteration_ - 1; }

  // The N deltas of step `step`, feature order (prunable tensors in layout order, flattened).
  std::vector<float> Deltas(int64_t step) const;
  gcprune::v1::StepBegin Begin(int64_t step, int iteration) const;
  // N current weights at the end of iteration j.
  std::vector<float> Weights(int iteration) const;
  // (tensor_index, numel) of the prunable tensors and each one's first feature.
  const std::vector<std::pair<uint32_t, int64_t>>& prunable() const { return prunable_; }
  const std::vector<int64_t>& feature_offsets() const { return feature_offsets_; }

 private:
  gcprune::v1::Layout layout_;
  uint64_t seed_;
  int64_t steps_per_iteration_;
  int64_t num_features_ = 0;
  std::vector<std::pair<uint32_t, int64_t>> prunable_;
  std::vector<int64_t> feature_offsets_;
};

// A keep-mask as received (all parts of one MaskUpdate, assembled).
struct ReceivedMask {
  int iteration = 0;
  int64_t apply_at_step = 0;
  int parts = 0;
  std::map<uint32_t, std::string> packed;  // tensor_index -> packed mask
  gcprune::v1::MaskUpdate last;            // the last part (summary)
};

// How a client sends deltas.
struct SendOptions {
  int64_t chunk_elements = 256;  // elements per StepChunk message
  gcprune::v1::ValueEncoding encoding = gcprune::v1::VALUE_ENCODING_FLOAT32;
  bool as_bytes = false;         // FLOAT32 in `data` instead of `values`
  bool reverse_order = false;    // send the chunks of a step last to first (any order is allowed)
};

// One Session stream, driven synchronously. Not thread-safe.
class SessionClient {
 public:
  explicit SessionClient(gcprune::v1::Pruner::Stub* stub, absl::Duration deadline = absl::Seconds(120));
  ~SessionClient();

  // Writes `open` and reads Opened. The stream's final status if it ends instead.
  absl::StatusOr<gcprune::v1::Opened> Create(const gcprune::v1::Layout& layout, const gcprune::v1::MethodConfig& method,
                                             const std::string& label = "test");
  absl::StatusOr<gcprune::v1::Opened> Resume(const std::string& session_id, bool restart_iteration = false);

  // Writes one message; false if the stream is broken (then Finish() tells why).
  bool Write(const gcprune::v1::SessionRequest& request);
  // Writes one whole step: begin, chunks, commit. Does not read.
  bool SendStep(const SyntheticRun& run, int64_t step, int iteration, const SendOptions& options = {});
  // Writes the weights of iteration j.
  bool SendWeights(const SyntheticRun& run, int iteration, const SendOptions& options = {});

  // Reads one response; NOT_FOUND-free: the stream's final status (as absl) if it ended.
  absl::StatusOr<gcprune::v1::SessionResponse> Read();
  // Reads until an ack of at least `step`.
  absl::Status WaitForAck(int64_t step);
  // Reads until the last part of a MaskUpdate and assembles it.
  absl::StatusOr<ReceivedMask> ReadMask();
  // Writes IterationEnd and reads the MaskUpdate.
  absl::StatusOr<ReceivedMask> EndIteration(int iteration, int64_t last_step);

  // Writes close, half-closes, reads what is left and returns the final status.
  absl::Status Close(bool complete);
  // Half-closes, reads what is left and returns the final status.
  absl::Status Finish();
  // Reads (without half-closing) until the server ends the stream; returns the final status.
  absl::Status WaitForEnd();
  // Cancels the call.
  void Cancel() { context_.TryCancel(); }

  // Every response read so far, in order.
  const std::vector<gcprune::v1::SessionResponse>& history() const { return history_; }
  int64_t last_ack() const { return last_ack_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<gcprune::v1::SessionRequest, gcprune::v1::SessionResponse>> stream_;
  std::vector<gcprune::v1::SessionResponse> history_;
  int64_t last_ack_ = -1;
  bool finished_ = false;
  absl::Status final_status_;
};

// The masks after each iteration 1..iterations that a PruningSession computes in process, with the
// resolved config `method` (as Opened echoes it), from the same steps (and weights) SessionClient sends.
// `encoding` rounds the deltas as the wire would.
absl::StatusOr<std::vector<MaskSet>> ReferenceMasks(const SyntheticRun& run, const gcprune::v1::MethodConfig& method,
                                                    int iterations,
                                                    gcprune::v1::ValueEncoding encoding =
                                                        gcprune::v1::VALUE_ENCODING_FLOAT32);

// OK if `received` holds exactly `expected`'s packed masks; INTERNAL naming the first differing tensor.
absl::Status CompareMasks(const MaskSet& expected, const ReceivedMask& received);

// Health of `service` ("" = the server) over a new channel to `address`: true iff SERVING.
bool IsServing(const std::string& address, const std::string& service = "");

// A causal-v2 configuration with a cheap fit: `iterations` iterations to `target` sparsity.
gcprune::v1::MethodConfig CausalV2Config(int iterations, double target, uint64_t seed = 7);

}  // namespace gcprune::pruner::testing

#endif  // GCPRUNE_TESTS_PRUNER_SERVICE_SERVICE_PRUNER_TEST_UTIL_H_
