// One pruning session as the server holds it: the causal core's PruningSession plus everything the
// protocol adds around it — step numbering and deduplication, validation of every message, the step
// journal and metadata on disk, the fit on the fit executor, and the one attached stream.
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_MANAGED_SESSION_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_MANAGED_SESSION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "protos/gcprune/v1/pruner.pb.h"
#include "pruner_service/causal/chunk_coverage.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/pruning_session.h"
#include "pruner_service/causal/schedule.h"
#include "pruner_service/service/fit_executor.h"
#include "pruner_service/service/pruner_session_state.pb.h"
#include "pruner_service/service/state_directory.h"
#include "pruner_service/service/step_journal.h"

namespace gcprune::pruner {

// Receives what a session sends to its attached Session stream. Implemented by the stream's reactor.
// Both methods are called with the session's mutex held and must not call back into the session.
class SessionSink {
 public:
  virtual ~SessionSink() = default;
  // Queues a response for the stream.
  virtual void Send(gcprune::v1::SessionResponse response) = 0;
  // Ends the stream with `status` once the queued responses are written. Later calls are ignored.
  virtual void End(const absl::Status& status) = 0;
};

// Server settings every session shares.
struct ManagedSessionOptions {
  // Passed to PruningSession (default sample budget, solver threads).
  SessionOptions core;
  // Largest request message the server accepts, in bytes (echoed in Opened).
  int max_message_bytes = 4 << 20;
  // Bytes of mask bits per MaskUpdate part and GetMasks page, >= 1.
  int64_t mask_part_bytes = 1 << 20;
};

// What the stream does after a request was handled.
enum class StreamAction {
  kContinue,  // read the next request
  kClose,     // the client closed: end the stream with OK once the queued responses are written
};

// Thread-safe. Shared (std::shared_ptr) between the session manager, the attached stream and a running
// fit. Lock order: a session's mutex may be taken while holding the manager's, never the reverse; the
// sink's own lock is taken inside the session's.
class ManagedSession : public std::enable_shared_from_this<ManagedSession> {
 public:
  // Creates a new session and stores it: metadata and an empty journal. `config` must be resolved and
  // carry the effective memory budget. Errors of PruningSession::Create and of the state directory.
  static absl::StatusOr<std::shared_ptr<ManagedSession>> Create(std::string id, std::string label, Layout layout,
                                                                const MethodConfig& config, StateDirectory* dir,
                                                                FitExecutor* executor,
                                                                const ManagedSessionOptions& options);

  // Loads a stored session: metadata, core state, and the journalled steps of the iteration being
  // collected replayed into the sample store. A session whose stored state is inconsistent loads in state
  // FAILED with the reason in failure_message (still listed, readable and deletable). Error (not
  // loaded): the metadata cannot be read (NOT_FOUND, DATA_LOSS, ...).
  static absl::StatusOr<std::shared_ptr<ManagedSession>> Load(const std::string& id, StateDirectory* dir,
                                                              FitExecutor* executor,
                                                              const ManagedSessionOptions& options);

  ManagedSession(const ManagedSession&) = delete;
  ManagedSession& operator=(const ManagedSession&) = delete;

  const std::string& id() const { return id_; }
  int64_t created_unix_ms() const { return created_unix_ms_; }

  // Attaches a stream: a stream attached before is ended with ABORTED. With `restart_iteration` the
  // samples of the iteration being collected are discarded first (steps keep their numbering). Sends
  // Opened and, after a completed iteration, its MaskUpdate. Returns the attachment's id for the calls
  // below. NOT_FOUND if the session was deleted; FAILED_PRECONDITION for a restart while FITTING;
  // UNAVAILABLE if the restart cannot be stored.
  absl::StatusOr<uint64_t> Attach(SessionSink* sink, bool restart_iteration = false);
  // Detaches the stream `attachment` if it is still the attached one (discarding a partly received
  // step or weight set). After it returns the session no longer uses that sink. Streams the session
  // ends itself are detached at that moment.
  void Detach(uint64_t attachment);
  // The client half-closed the stream without CloseSession: ends it with OK, after the MaskUpdate of a
  // fit in progress.
  void HalfClose(uint64_t attachment);
  // Ends the attached stream, if any, with `status` (server shutdown: UNAVAILABLE).
  void EndStream(const absl::Status& status);

  // Handles one request after the Open. A non-OK status ends the stream with it; its message names the
  // field and the value. Codes: INVALID_ARGUMENT (malformed message), FAILED_PRECONDITION (not allowed in
  // the session's state), OUT_OF_RANGE (step gap, last_step mismatch), RESOURCE_EXHAUSTED (memory
  // budget), ABORTED (another stream took over, or the session was deleted), UNAVAILABLE (shutting down,
  // storage error; reconnect).
  absl::StatusOr<StreamAction> Handle(uint64_t attachment, const gcprune::v1::SessionRequest& request);

  // OK if `expected` equals the session's layout; FAILED_PRECONDITION naming `field` and the first
  // differing tensor otherwise (also when the session's state is unreadable).
  absl::Status CheckLayout(const gcprune::v1::Layout& expected, absl::string_view field) const;

  // State for GetSession (`with_layout`) and ListSessions.
  gcprune::v1::SessionInfo Info(bool with_layout) const;
  gcprune::v1::SessionState state() const;
  // True while the session takes steps or fits (COLLECTING, FITTING): it counts against the limits.
  bool live() const;
  // Sample memory budget reserved while live, in bytes (0 for methods without samples).
  int64_t reserved_bytes() const;

  // A page of masks. INVALID_ARGUMENT for a negative iteration, a bad tensor index or page token;
  // NOT_FOUND for an iteration that has not completed.
  absl::StatusOr<gcprune::v1::GetMasksResponse> GetMasks(const gcprune::v1::GetMasksRequest& request) const;
  gcprune::v1::SessionReport Report() const;

  // Marks the session deleted: an attached stream ends with ABORTED, a running fit's result is dropped.
  // FAILED_PRECONDITION if a stream is attached and `force` is false. The caller removes the files.
  absl::Status MarkDeleted(bool force);

 private:
  ManagedSession(std::string id, StateDirectory* dir, FitExecutor* executor, const ManagedSessionOptions& options);

  // Request handlers. REQUIRES: mutex_ held.
  absl::Status HandleBegin(const gcprune::v1::StepBegin& begin) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status HandleChunk(const gcprune::v1::StepChunk& chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status HandleCommit(const gcprune::v1::StepCommit& commit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status HandleWeights(const gcprune::v1::IterationWeights& weights) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status HandleIterationEnd(const gcprune::v1::IterationEnd& end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::Status HandleClose(const gcprune::v1::CloseSession& close) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // FAILED_PRECONDITION unless steps (or weights) may arrive now; `what` names the message.
  absl::Status CheckWritable(absl::string_view what) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Decodes chunk runs into `buffer` (N floats, feature order), claiming their ranges in `coverage`
  // (every element once, any order). `field` names the repeated field, e.g. "step_chunk.deltas".
  // Returns the number of non-finite values received.
  absl::StatusOr<int64_t> ReceiveRuns(const google::protobuf::RepeatedPtrField<gcprune::v1::TensorChunk>& runs,
                                      absl::string_view field, ChunkCoverage* coverage,
                                      std::vector<float>* buffer) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Ends the attached stream, if any, with `status` and detaches it.
  void EndAttachedStream(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Drops a partly received step, and a partly received weight set.
  void DropPartialInput() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Discards the samples of the iteration being collected (ResumeSession.restart_iteration).
  absl::Status RestartIteration() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SendWarning(int64_t step, const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // Builds the core from `metadata` and replays the journal into it. Sets the in-memory state; on
  // failure returns the reason (the caller marks the session FAILED).
  absl::Status Restore(const state::SessionMetadata& metadata) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Takes layout, config and history from a core blob (no samples kept when `keep_core` is false).
  absl::Status AdoptCore(std::unique_ptr<PruningSession> core, bool keep_core) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  state::SessionMetadata BuildMetadata() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Stores the metadata; on error logs it and returns it.
  absl::Status Persist(const state::SessionMetadata& metadata) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Marks the session FAILED (stored if `persist` and possible) and ends the stream with `status`.
  void Fail(const absl::Status& status, bool persist = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Moves to COMPLETED: stores it and frees the samples.
  absl::Status Complete() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // The fit: queued by HandleIterationEnd, run on the executor, finished under the lock.
  void RunFit(int iteration, std::vector<float> weights);
  void FinishFit(int iteration, absl::StatusOr<IterationResult> result, std::string blob)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  // The mask after iteration j (0 <= j <= completed_) from the prune history.
  MaskSet MasksAfter(int iteration) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SendMaskUpdate(int iteration) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SendProgress(int iteration, gcprune::v1::FitEvent event, const IterationReport* report)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SendAck() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Send(gcprune::v1::SessionResponse response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  gcprune::v1::Opened MakeOpened() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Touch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void UpdateSampleStats() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string id_;
  StateDirectory* const dir_;
  FitExecutor* const executor_;
  const ManagedSessionOptions options_;
  int64_t created_unix_ms_ = 0;  // set before the session is shared

  mutable absl::Mutex mutex_;
  std::string label_ ABSL_GUARDED_BY(mutex_);
  int64_t updated_unix_ms_ ABSL_GUARDED_BY(mutex_) = 0;
  gcprune::v1::SessionState state_ ABSL_GUARDED_BY(mutex_) = gcprune::v1::SESSION_STATE_COLLECTING;
  std::string failure_message_ ABSL_GUARDED_BY(mutex_);
  bool deleted_ ABSL_GUARDED_BY(mutex_) = false;

  // Layout, resolved config and schedule: set once the core state is known (absent only for a session
  // whose stored core state is unreadable).
  std::optional<Layout> layout_ ABSL_GUARDED_BY(mutex_);
  MethodConfig config_ ABSL_GUARDED_BY(mutex_);
  std::optional<Schedule> schedule_ ABSL_GUARDED_BY(mutex_);
  std::vector<int> prunable_ ABSL_GUARDED_BY(mutex_);  // layout indices of the prunable tensors
  int64_t num_features_ ABSL_GUARDED_BY(mutex_) = 0;

  // The core. While FITTING it belongs to the fit thread and is not touched here.
  std::unique_ptr<PruningSession> core_ ABSL_GUARDED_BY(mutex_);
  std::string core_blob_ ABSL_GUARDED_BY(mutex_);  // the core's last stored Serialize()
  std::unique_ptr<StepJournal> journal_ ABSL_GUARDED_BY(mutex_);

  int completed_ ABSL_GUARDED_BY(mutex_) = 0;
  int total_iterations_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t next_step_ ABSL_GUARDED_BY(mutex_) = 0;             // lowest step not stored
  int64_t iteration_first_step_ ABSL_GUARDED_BY(mutex_) = 0;  // first step of the iteration collected
  std::vector<uint16_t> prune_iteration_ ABSL_GUARDED_BY(mutex_);  // per feature, 0 = kept
  int64_t num_pruned_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<state::IterationRecord> iterations_ ABSL_GUARDED_BY(mutex_);

  // The open step (StepBegin received, no StepCommit yet): its number (-1: none), whether it is a
  // duplicate of a stored step (its chunks are ignored), its scalars, and its deltas so far.
  int64_t open_step_ ABSL_GUARDED_BY(mutex_) = -1;
  bool open_duplicate_ ABSL_GUARDED_BY(mutex_) = false;
  StepRecord open_record_ ABSL_GUARDED_BY(mutex_);
  std::unique_ptr<ChunkCoverage> step_coverage_ ABSL_GUARDED_BY(mutex_);
  std::vector<float> step_buffer_ ABSL_GUARDED_BY(mutex_);
  // IterationWeights of the iteration collected (magnitude methods): iteration (0: none) and coverage.
  int weights_iteration_ ABSL_GUARDED_BY(mutex_) = 0;
  std::unique_ptr<ChunkCoverage> weights_coverage_ ABSL_GUARDED_BY(mutex_);
  std::vector<float> weights_buffer_ ABSL_GUARDED_BY(mutex_);

  int64_t stored_samples_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t sample_bytes_ ABSL_GUARDED_BY(mutex_) = 0;

  // The fit in progress (state FITTING).
  int fitting_iteration_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t fit_last_step_ ABSL_GUARDED_BY(mutex_) = -1;
  bool complete_after_fit_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Time fit_start_ ABSL_GUARDED_BY(mutex_);

  SessionSink* sink_ ABSL_GUARDED_BY(mutex_) = nullptr;
  uint64_t attachment_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t attachments_ ABSL_GUARDED_BY(mutex_) = 0;
  bool end_after_fit_ ABSL_GUARDED_BY(mutex_) = false;
};

// Milliseconds since the Unix epoch.
int64_t NowUnixMs();

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_MANAGED_SESSION_H_
