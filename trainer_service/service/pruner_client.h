// The trainer's client of a gcprune.v1.Pruner session: streams a run's collection steps without ever
// blocking the training loop on the network, survives pruner restarts by resuming the session and
// resending what was not acknowledged, and applies the run's failure policy (fail-open or strict).
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_PRUNER_CLIENT_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_PRUNER_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/client_channel.h"
#include "common/mask_runs.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "trainer_service/service/pruning_link.h"

namespace gcprune::trainer {

struct PrunerClientOptions {
  // "host:port" of the Pruner service.
  std::string address;
  // TLS and bearer token towards the pruner. max_reconnect_backoff_ms is raised to at least
  // max_backoff so that gRPC itself never waits longer than the client's own backoff.
  common::ClientChannelOptions channel;
  // Every tensor of the model in order, prunable ones flagged; deltas and masks follow its prunable order.
  gcprune::v1::Layout layout;
  // Forwarded to NewSession unchanged.
  gcprune::v1::MethodConfig method;
  // NewSession.label, e.g. the run id.
  std::string label;
  // What the method consumes: steps (causal methods) and/or weights before IterationEnd (magnitude).
  bool wants_steps = true;
  bool wants_weights = false;
  // FAIL_OPEN (true) or STRICT.
  bool fail_open = true;
  // How long the pruner may be unreachable, or silent while masks are awaited, before the policy applies.
  absl::Duration grace = absl::Seconds(60);
  // Bound on the bytes of steps (and weights) kept for sending or resending, >= 1.
  int64_t max_buffer_bytes = int64_t{256} << 20;
  // Reconnection backoff: doubles from initial to max after every failed attempt.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // How long to wait for Opened after opening a stream before giving up on that attempt.
  absl::Duration open_timeout = absl::Seconds(10);
  // Largest number of values per StepChunk / IterationWeights message; the pruner's recommendation and
  // message limit may lower it. >= 1.
  int64_t max_chunk_elements = 262144;
  // Called on connection changes and notable incidents (drops, warnings), on the client's threads.
  // Must not block and must not call back into the client.
  std::function<void(const gcprune::v1::PrunerConnectionChanged& event, const std::string& session_id)>
      on_event;
  // Polled while waiting (buffer space, masks); true makes the wait return CANCELLED.
  std::function<bool()> cancelled;
};

// Delivery (docs/PROTOCOL.md §4.3, docs/TRAINER.md): every step and the iteration's weights and end are
// kept in a bounded buffer until the pruner acknowledges them (steps) or answers with the masks (weights,
// end). Step numbers are given when a step is first written on a stream; after a reconnect the session
// is resumed, steps below Opened.next_step are forgotten and the rest are renumbered from there, so a
// step dropped before the pruner stored it never leaves a gap.
//
// Buffer full: fail-open drops the oldest step not yet written (counted, and reported through on_event
// once per iteration); strict blocks AddStep until acknowledgements free space, and fails once the
// pruner has been unreachable for longer than the grace period.
//
// Masks late: EndIteration waits while the pruner is reachable and talking (acks, fit progress); it gives
// up when the pruner has been unreachable for the grace period, or silent that long, or the fit failed
// repeatedly. Fail-open then returns skipped masks (the model keeps its previous masks) and the pruner's
// unfinished iteration is restarted (ResumeSession.restart_iteration) at the next reconnect, so its
// iterations lag the trainer's from then on; strict returns UNAVAILABLE / DEADLINE_EXCEEDED.
//
// Permanent errors (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED
// from the pruner) end all attempts: fail-open skips the remaining iterations, strict fails the run.
//
// Threads: one connection thread (connect, open, write) and one reader thread per stream. The public
// methods are for one caller thread (the run's), except stats(), which is thread-safe.
class PrunerClient final : public PruningLink {
 public:
  // INVALID_ARGUMENT for an empty address, a layout without prunable tensors, non-positive bounds or
  // durations; the errors of MakeClientChannel (TLS files, token).
  static absl::StatusOr<std::unique_ptr<PrunerClient>> Create(PrunerClientOptions options);
  ~PrunerClient() override;

  absl::Status Start() override;
  absl::Status BeginIteration(int iteration) override;
  absl::Status AddStep(const StepRecord& step) override;
  absl::StatusOr<IterationMasks> EndIteration(int iteration,
                                              const std::vector<absl::Span<const float>>& weights) override;
  void Close(bool complete) override;
  LinkStats stats() const override;

  // Waits until every step handed over so far is acknowledged (or `timeout` passes, or the connection
  // failed for good). True when everything was acknowledged. For benchmarks and tests.
  bool WaitForAcks(absl::Duration timeout);

 private:
  struct Payload;  // a step or a set of weights, shared between the queues and the writer
  struct Item {
    enum class Kind { kStep, kWeights, kEnd };
    Kind kind = Kind::kStep;
    std::shared_ptr<const Payload> payload;
    int64_t number = -1;  // step number once written on a stream
    int64_t bytes = 0;
  };
  // One MaskUpdate being assembled from its parts.
  struct MaskAssembly {
    int iteration = 0;
    std::vector<std::unique_ptr<common::PackedMaskAssembler>> tensors;  // per prunable tensor
  };
  // How a stream ended, decided by the connection thread.
  enum class StreamEnd { kRetry, kReopenNow, kPermanent, kClosed };

  explicit PrunerClient(PrunerClientOptions options, std::shared_ptr<grpc::Channel> channel);

  void ConnectionLoop();
  // Gives the channel one connection attempt (bounded by open_timeout and 5 s) before a stream starts.
  void AwaitChannel();
  StreamEnd RunStream();
  void ReadLoop(grpc::ClientReaderWriter<gcprune::v1::SessionRequest, gcprune::v1::SessionResponse>* stream,
                int64_t generation);
  bool WriteItem(grpc::ClientReaderWriter<gcprune::v1::SessionRequest, gcprune::v1::SessionResponse>* stream,
                 const Item& item, int round, int64_t chunk_elements);

  // Handlers of the reader thread. REQUIRES: mu_ held.
  void HandleOpened(const gcprune::v1::Opened& opened) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleAck(int64_t step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleMaskUpdate(const gcprune::v1::MaskUpdate& update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleSessionError(const gcprune::v1::SessionError& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Queue helpers. REQUIRES: mu_ held.
  void DropRoundItems() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequeueInflight() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t CountSteps() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelStream() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(gcprune::v1::PrunerState state, const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Skipped masks (fail-open) or the error (strict) for giving up on the current iteration.
  absl::StatusOr<IterationMasks> GiveUp(absl::StatusCode code, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Cancelled() const { return options_.cancelled && options_.cancelled(); }
  // True when the pruner has been unreachable for the grace period and a connection attempt made since
  // `attempts_at_start` failed too (or the caller has itself waited the grace period since `wait_start`).
  bool UnreachableBeyondGrace(int64_t attempts_at_start, absl::Time wait_start) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PrunerClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<gcprune::v1::Pruner::Stub> stub_;
  std::vector<int> prunable_layout_index_;         // per prunable tensor p: its layout index
  std::vector<int> prunable_of_layout_;            // per layout index: p, or -1
  std::vector<int64_t> prunable_numel_;            // per prunable tensor

  mutable absl::Mutex mu_;
  std::thread connection_thread_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool close_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool close_complete_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // the connection thread has ended
  bool kick_ ABSL_GUARDED_BY(mu_) = false;    // cut the current backoff short
  int64_t attempts_ ABSL_GUARDED_BY(mu_) = 0; // streams ended (connection attempts included)

  // The current stream.
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool stream_ready_ ABSL_GUARDED_BY(mu_) = false;   // Opened received and handled
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;  // reader ended or cancel requested
  bool reopen_ ABSL_GUARDED_BY(mu_) = false;         // HandleOpened asked for a restart_iteration reopen
  bool restart_next_ ABSL_GUARDED_BY(mu_) = false;   // the next open resumes with restart_iteration
  bool restart_sent_ ABSL_GUARDED_BY(mu_) = false;   // the current stream's open had restart_iteration

  // Session state as last heard from the pruner.
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool ever_connected_ ABSL_GUARDED_BY(mu_) = false;
  gcprune::v1::PrunerState state_ ABSL_GUARDED_BY(mu_) = gcprune::v1::PRUNER_STATE_CONNECTING;
  int known_completed_ ABSL_GUARDED_BY(mu_) = 0;
  int total_iterations_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_number_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t chunk_elements_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time disconnected_since_ ABSL_GUARDED_BY(mu_);
  absl::Time last_heard_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Status permanent_error_ ABSL_GUARDED_BY(mu_);

  // The trainer's current iteration and the pruner round it maps to (0 = not known yet).
  int trainer_iteration_ ABSL_GUARDED_BY(mu_) = 0;
  int current_round_ ABSL_GUARDED_BY(mu_) = 0;
  bool stale_ ABSL_GUARDED_BY(mu_) = false;      // the pruner's open round holds an abandoned iteration
  int hold_until_completed_ ABSL_GUARDED_BY(mu_) = 0;  // no writes until known_completed_ reaches it
  bool end_queued_ ABSL_GUARDED_BY(mu_) = false;
  int fit_errors_ ABSL_GUARDED_BY(mu_) = 0;
  std::string fit_error_ ABSL_GUARDED_BY(mu_);
  int stream_failures_ ABSL_GUARDED_BY(mu_) = 0;  // established streams that failed without progress

  // Outgoing data: written and awaiting ack/masks, then not yet written.
  std::deque<Item> inflight_ ABSL_GUARDED_BY(mu_);
  std::deque<Item> pending_ ABSL_GUARDED_BY(mu_);
  int64_t buffer_bytes_ ABSL_GUARDED_BY(mu_) = 0;

  // Masks.
  MaskAssembly assembly_ ABSL_GUARDED_BY(mu_);
  IterationMasks latest_ ABSL_GUARDED_BY(mu_);  // pruner_iteration 0 = none yet

  // Counters.
  int64_t steps_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t acked_step_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_iteration_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t handed_over_ ABSL_GUARDED_BY(mu_) = 0;  // steps given to AddStep and not dropped
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_PRUNER_CLIENT_H_
