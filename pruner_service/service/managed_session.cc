// A session's protocol state machine, validation, persistence and fit scheduling (see managed_session.h).
#include "pruner_service/service/managed_session.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "common/tensor_chunk.h"
#include "common/status_macros.h"
#include "pruner_service/service/wire_format.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The core's sample builder refuses NaN losses, while the protocol accepts them and zeroes the affected
// targets. +inf leads to exactly that: every target computed from it is non-finite, hence 0 in the fit.
double CoreLoss(double loss) { return std::isnan(loss) ? std::numeric_limits<double>::infinity() : loss; }

StepHeader MakeStepHeader(const StepRecord& record) {
  StepHeader header;
  header.step = record.step;
  header.loss_before = CoreLoss(record.loss_before);
  header.loss_after = CoreLoss(record.loss_after);
  header.lr = record.learning_rate;
  return header;
}

absl::Status WithPrefix(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

int64_t NowUnixMs() { return absl::ToUnixMillis(absl::Now()); }

ManagedSession::ManagedSession(std::string id, StateDirectory* dir, FitExecutor* executor,
                               const ManagedSessionOptions& options)
    : id_(std::move(id)), dir_(dir), executor_(executor), options_(options) {}

// ---------------------------------------------------------------------------------------------------
// Creation and loading.

absl::StatusOr<std::shared_ptr<ManagedSession>> ManagedSession::Create(std::string id, std::string label,
                                                                       Layout layout, const MethodConfig& config,
                                                                       StateDirectory* dir, FitExecutor* executor,
                                                                       const ManagedSessionOptions& options) {
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<PruningSession> core,
                           PruningSession::Create(std::move(layout), config, options.core));
  std::shared_ptr<ManagedSession> session(new ManagedSession(std::move(id), dir, executor, options));
  session->created_unix_ms_ = NowUnixMs();
  absl::MutexLock lock(&session->mutex_);
  session->label_ = std::move(label);
  session->updated_unix_ms_ = session->created_unix_ms_;
  session->core_blob_ = core->Serialize();
  GCPRUNE_RETURN_IF_ERROR(session->AdoptCore(std::move(core), /*keep_core=*/true));
  GCPRUNE_RETURN_IF_ERROR(dir->CreateSession(session->BuildMetadata()));
  absl::StatusOr<std::unique_ptr<StepJournal>> journal =
      dir->OpenJournal(session->id_, [](const StepRecord&, absl::Span<const float>) {
        return absl::DataLossError("a new session's journal is not empty");
      });
  if (!journal.ok()) {
    dir->DeleteSession(session->id_).IgnoreError();
    return journal.status();
  }
  session->journal_ = std::move(*journal);
  return session;
}

absl::StatusOr<std::shared_ptr<ManagedSession>> ManagedSession::Load(const std::string& id, StateDirectory* dir,
                                                                     FitExecutor* executor,
                                                                     const ManagedSessionOptions& options) {
  GCPRUNE_ASSIGN_OR_RETURN(state::SessionMetadata metadata, dir->ReadMetadata(id));
  std::shared_ptr<ManagedSession> session(new ManagedSession(id, dir, executor, options));
  session->created_unix_ms_ = metadata.created_unix_ms();
  absl::MutexLock lock(&session->mutex_);
  session->label_ = metadata.label();
  session->updated_unix_ms_ = metadata.updated_unix_ms();
  absl::Status status = session->Restore(metadata);
  if (!status.ok()) {
    GCPRUNE_LOG(ERROR) << "session " << id << " failed to load: " << status;
    // Not stored: the next start tries again, in case the cause was passing (e.g. too many open files).
    session->Fail(absl::DataLossError(absl::StrCat("stored state unusable: ", status.message())), /*persist=*/false);
  }
  return session;
}

absl::Status ManagedSession::AdoptCore(std::unique_ptr<PruningSession> core, bool keep_core) {
  layout_ = core->layout();
  config_ = core->config();
  schedule_ = core->schedule();
  prunable_.clear();
  for (int i = 0; i < layout_->num_tensors(); ++i) {
    if (layout_->tensor(i).prunable) prunable_.push_back(i);
  }
  num_features_ = layout_->num_features();
  completed_ = core->completed_iterations();
  total_iterations_ = core->total_iterations();
  prune_iteration_.assign(static_cast<size_t>(num_features_), 0);
  num_pruned_ = 0;
  for (int64_t k = 0; k < num_features_; ++k) {
    prune_iteration_[static_cast<size_t>(k)] = static_cast<uint16_t>(core->PruneIteration(k));
    if (prune_iteration_[static_cast<size_t>(k)] != 0) ++num_pruned_;
  }
  core_ = keep_core ? std::move(core) : nullptr;
  // Coverages point at layout_, which was just replaced.
  step_coverage_ = std::make_unique<ChunkCoverage>(&*layout_, 1);
  weights_coverage_ = std::make_unique<ChunkCoverage>(&*layout_, 1);
  open_step_ = -1;
  open_duplicate_ = false;
  weights_iteration_ = 0;
  return absl::OkStatus();
}

absl::Status ManagedSession::Restore(const state::SessionMetadata& metadata) {
  state_ = metadata.state() == v1::SESSION_STATE_FITTING ? v1::SESSION_STATE_COLLECTING : metadata.state();
  failure_message_ = metadata.failure_message();
  iterations_.assign(metadata.iterations().begin(), metadata.iterations().end());
  core_blob_ = metadata.core();
  next_step_ = metadata.next_step();
  iteration_first_step_ = metadata.next_step();
  open_step_ = -1;
  open_duplicate_ = false;
  weights_iteration_ = 0;
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<PruningSession> core,
                           PruningSession::Deserialize(metadata.core(), options_.core));
  if (core->completed_iterations() != metadata.iterations_size()) {
    return absl::DataLossError(absl::StrCat("metadata: ", metadata.iterations_size(),
                                            " iteration records but the core state has ",
                                            core->completed_iterations(), " completed iterations"));
  }
  if (state_ == v1::SESSION_STATE_COLLECTING && core->finished()) state_ = v1::SESSION_STATE_COMPLETED;
  const bool collecting = state_ == v1::SESSION_STATE_COLLECTING;
  GCPRUNE_RETURN_IF_ERROR(AdoptCore(std::move(core), collecting));
  if (!collecting) {
    journal_.reset();
    stored_samples_ = 0;
    sample_bytes_ = 0;
    return absl::OkStatus();
  }

  // Replay the journalled steps of the iteration being collected, exactly as they were committed.
  const int current = completed_ + 1;
  const bool wants_steps = core_->wants_steps();
  TensorWeights spans;
  int64_t stale = 0;
  auto visitor = [&](const StepRecord& record, absl::Span<const float> deltas) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    if (record.iteration < current || record.step < next_step_) {
      ++stale;  // left by a completed iteration when the journal could not be reset
      return absl::OkStatus();
    }
    if (record.iteration > current || record.step > next_step_) {
      return absl::DataLossError(absl::StrCat("journal: step ", record.step, " of iteration ", record.iteration,
                                              " follows step ", next_step_ - 1, " of iteration ", current));
    }
    if (wants_steps) {
      if (static_cast<int64_t>(deltas.size()) != num_features_) {
        return absl::DataLossError(absl::StrCat("journal: step ", record.step, " holds ", deltas.size(),
                                                " deltas, the layout has ", num_features_, " prunable elements"));
      }
      spans.clear();
      for (int t : prunable_) {
        spans.push_back(deltas.subspan(static_cast<size_t>(layout_->feature_offset(t)),
                                       static_cast<size_t>(layout_->tensor(t).numel())));
      }
      GCPRUNE_RETURN_IF_ERROR(WithPrefix(absl::StrCat("journal: step ", record.step, ": "),
                                         core_->AddStep(MakeStepHeader(record), spans)));
    }
    ++next_step_;
    return absl::OkStatus();
  };
  GCPRUNE_ASSIGN_OR_RETURN(journal_, dir_->OpenJournal(id_, visitor));
  if (stale > 0 || journal_->torn_tail_bytes() > 0) {
    GCPRUNE_LOG(INFO) << "session " << id_ << ": journal replayed " << journal_->num_records() - stale
                      << " steps; skipped " << stale << " stale records, dropped a torn tail of "
                      << journal_->torn_tail_bytes() << " bytes";
  }
  UpdateSampleStats();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Persistence.

state::SessionMetadata ManagedSession::BuildMetadata() const {
  state::SessionMetadata metadata;
  metadata.set_session_id(id_);
  metadata.set_label(label_);
  metadata.set_created_unix_ms(created_unix_ms_);
  metadata.set_updated_unix_ms(updated_unix_ms_);
  metadata.set_state(state_ == v1::SESSION_STATE_FITTING ? v1::SESSION_STATE_COLLECTING : state_);
  metadata.set_failure_message(failure_message_);
  metadata.set_core(core_blob_);
  metadata.set_next_step(iteration_first_step_);
  for (const state::IterationRecord& record : iterations_) *metadata.add_iterations() = record;
  return metadata;
}

absl::Status ManagedSession::Persist(const state::SessionMetadata& metadata) {
  absl::Status status = dir_->WriteMetadata(metadata);
  if (!status.ok()) {
    GCPRUNE_LOG(ERROR) << "session " << id_ << ": " << status;
  }
  return status;
}

void ManagedSession::Fail(const absl::Status& status, bool persist) {
  state_ = v1::SESSION_STATE_FAILED;
  failure_message_ = std::string(status.message());
  core_.reset();
  stored_samples_ = 0;
  sample_bytes_ = 0;
  Touch();
  if (persist && !core_blob_.empty()) Persist(BuildMetadata()).IgnoreError();
  EndAttachedStream(status);
}

absl::Status ManagedSession::Complete() {
  const v1::SessionState previous = state_;
  state_ = v1::SESSION_STATE_COMPLETED;
  Touch();
  absl::Status status = Persist(BuildMetadata());
  if (!status.ok()) {
    state_ = previous;
    return absl::UnavailableError(absl::StrCat("close: the session could not be stored as completed: ",
                                               status.message()));
  }
  core_.reset();
  if (journal_ != nullptr) journal_->Reset().IgnoreError();
  journal_.reset();
  std::vector<float>().swap(step_buffer_);
  std::vector<float>().swap(weights_buffer_);
  stored_samples_ = 0;
  sample_bytes_ = 0;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Streams.

absl::StatusOr<uint64_t> ManagedSession::Attach(SessionSink* sink, bool restart_iteration) {
  absl::MutexLock lock(&mutex_);
  if (deleted_) return absl::NotFoundError(absl::StrCat("open.resume.session_id: session '", id_, "' was deleted"));
  if (restart_iteration) {
    if (state_ == v1::SESSION_STATE_FITTING) {
      return absl::FailedPreconditionError(absl::StrCat("open.resume.restart_iteration: session '", id_,
                                                        "' is fitting iteration ", fitting_iteration_,
                                                        "; resume without restart and wait for its mask_update"));
    }
    if (state_ == v1::SESSION_STATE_COLLECTING) GCPRUNE_RETURN_IF_ERROR(RestartIteration());
  }
  EndAttachedStream(absl::AbortedError(absl::StrCat("session '", id_, "' was opened by another stream")));
  sink_ = sink;
  attachment_ = ++attachments_;
  DropPartialInput();
  end_after_fit_ = false;
  Touch();
  v1::SessionResponse response;
  *response.mutable_opened() = MakeOpened();
  Send(std::move(response));
  if (completed_ > 0 && layout_) SendMaskUpdate(completed_);
  return attachment_;
}

void ManagedSession::Detach(uint64_t attachment) {
  absl::MutexLock lock(&mutex_);
  if (attachment != attachment_ || sink_ == nullptr) return;
  sink_ = nullptr;
  DropPartialInput();
  end_after_fit_ = false;
  Touch();
}

void ManagedSession::DropPartialInput() {
  open_step_ = -1;
  open_duplicate_ = false;
  if (step_coverage_) step_coverage_->Reset();
  // A complete weight set survives a reconnect; a partial one does not.
  if (weights_coverage_ && !weights_coverage_->complete()) {
    weights_coverage_->Reset();
    weights_iteration_ = 0;
  }
}

absl::Status ManagedSession::RestartIteration() {
  // Steps keep their numbers: the iteration restarts at next_step_. The metadata is stored first, so a
  // crash before the journal is emptied leaves only stale records, which replay skips.
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<PruningSession> fresh, PruningSession::Deserialize(core_blob_, options_.core));
  const int64_t first = iteration_first_step_;
  iteration_first_step_ = next_step_;
  Touch();
  absl::Status stored = Persist(BuildMetadata());
  if (!stored.ok()) {
    iteration_first_step_ = first;
    return absl::UnavailableError(absl::StrCat("open.resume.restart_iteration: the restart could not be stored: ",
                                               stored.message()));
  }
  if (journal_ != nullptr) {
    absl::Status reset = journal_->Reset();
    if (!reset.ok()) {
      GCPRUNE_LOG(WARNING) << "session " << id_ << ": " << reset;
    }
  }
  GCPRUNE_RETURN_IF_ERROR(AdoptCore(std::move(fresh), /*keep_core=*/true));
  weights_iteration_ = 0;
  UpdateSampleStats();
  GCPRUNE_LOG(INFO) << "session " << id_ << ": iteration " << completed_ + 1 << " restarted at step " << next_step_
                    << " (" << next_step_ - first << " stored steps discarded)";
  return absl::OkStatus();
}

void ManagedSession::HalfClose(uint64_t attachment) {
  absl::MutexLock lock(&mutex_);
  if (attachment != attachment_ || sink_ == nullptr) return;
  if (state_ == v1::SESSION_STATE_FITTING) {
    end_after_fit_ = true;
  } else {
    EndAttachedStream(absl::OkStatus());
  }
}

void ManagedSession::EndStream(const absl::Status& status) {
  absl::MutexLock lock(&mutex_);
  EndAttachedStream(status);
}

void ManagedSession::EndAttachedStream(const absl::Status& status) {
  if (sink_ == nullptr) return;
  sink_->End(status);
  // Detached now, not when the stream's reactor is done: a client that has seen the stream end may
  // delete or reopen the session at once.
  sink_ = nullptr;
  DropPartialInput();
  end_after_fit_ = false;
}

v1::Opened ManagedSession::MakeOpened() const {
  v1::Opened opened;
  opened.set_session_id(id_);
  opened.set_next_step(next_step_);
  if (layout_) *opened.mutable_layout() = LayoutToProto(*layout_);
  *opened.mutable_method() = MethodConfigToProto(config_);
  opened.set_completed_iterations(completed_);
  opened.set_total_iterations(total_iterations_);
  opened.set_state(state_);
  opened.set_wants_steps(IsCausal(config_.method));
  opened.set_wants_weights(NeedsWeights(config_.method));
  opened.set_max_message_bytes(options_.max_message_bytes);
  // Leave room for the message's own fields within the receive limit.
  opened.set_recommended_chunk_elements(
      std::max<int64_t>(1, std::min<int64_t>(common::kRecommendedChunkElements, (options_.max_message_bytes - 4096) / 4)));
  return opened;
}

void ManagedSession::Send(v1::SessionResponse response) {
  if (sink_ != nullptr) sink_->Send(std::move(response));
}

void ManagedSession::SendAck() {
  v1::SessionResponse response;
  response.mutable_ack()->set_step(next_step_ - 1);
  Send(std::move(response));
}

void ManagedSession::SendProgress(int iteration, v1::FitEvent event, const IterationReport* report) {
  v1::SessionResponse response;
  v1::Progress* p = response.mutable_progress();
  p->set_iteration(iteration);
  p->set_event(event);
  const bool exact = config_.solver == Solver::kExact;
  p->set_max_epochs(exact ? config_.exact.max_iterations : config_.lasso_sgd.max_epochs);
  p->set_loss(kNaN);
  p->set_num_samples(stored_samples_);
  p->set_num_features(num_features_ * (config_.v1_momentum ? 3 : 1));
  if (event != v1::FIT_EVENT_QUEUED) p->set_elapsed_seconds(absl::ToDoubleSeconds(absl::Now() - fit_start_));
  if (report != nullptr) {
    p->set_num_samples(report->num_samples);
    p->set_num_features(report->num_features);
    if (report->fit) {
      p->set_epoch(report->fit->epochs);
      p->set_loss(report->fit->final_loss);
      p->set_early_stopped(report->fit->early_stopped);
    }
  }
  p->set_time_unix_ms(NowUnixMs());
  Send(std::move(response));
}

MaskSet ManagedSession::MasksAfter(int iteration) const {
  MaskSet mask(*layout_);
  std::vector<int64_t> pruned;
  for (int64_t k = 0; k < num_features_; ++k) {
    const int j = prune_iteration_[static_cast<size_t>(k)];
    if (j != 0 && j <= iteration) pruned.push_back(k);
  }
  mask.Prune(pruned).IgnoreError();  // indices are in range by construction
  return mask;
}

void ManagedSession::SendMaskUpdate(int iteration) {
  if (sink_ == nullptr) return;
  const state::IterationRecord& record = iterations_[static_cast<size_t>(iteration - 1)];
  for (v1::MaskUpdate& part :
       MakeMaskUpdates(MasksAfter(iteration), iteration, record.apply_at_step(), record.report().target_sparsity(),
                       iteration == total_iterations_, options_.mask_part_bytes)) {
    v1::SessionResponse response;
    *response.mutable_mask_update() = std::move(part);
    Send(std::move(response));
  }
}

void ManagedSession::Touch() { updated_unix_ms_ = NowUnixMs(); }

void ManagedSession::UpdateSampleStats() {
  if (state_ == v1::SESSION_STATE_FITTING) return;  // the core belongs to the fit
  stored_samples_ = core_ ? core_->num_samples() : 0;
  sample_bytes_ = core_ && core_->samples() ? core_->samples()->allocated_bytes() : 0;
}

// ---------------------------------------------------------------------------------------------------
// Requests.

absl::StatusOr<StreamAction> ManagedSession::Handle(uint64_t attachment, const v1::SessionRequest& request) {
  absl::MutexLock lock(&mutex_);
  if (deleted_) return absl::AbortedError(absl::StrCat("session '", id_, "' was deleted"));
  if (attachment != attachment_ || sink_ == nullptr) {
    return absl::AbortedError(absl::StrCat("session '", id_, "' was opened by another stream"));
  }
  switch (request.kind_case()) {
    case v1::SessionRequest::kOpen:
      return absl::FailedPreconditionError(
          absl::StrCat("open: the stream is already open on session '", id_, "' (open must be the first message only)"));
    case v1::SessionRequest::kStepBegin:
      GCPRUNE_RETURN_IF_ERROR(HandleBegin(request.step_begin()));
      return StreamAction::kContinue;
    case v1::SessionRequest::kStepChunk:
      GCPRUNE_RETURN_IF_ERROR(HandleChunk(request.step_chunk()));
      return StreamAction::kContinue;
    case v1::SessionRequest::kStepCommit:
      GCPRUNE_RETURN_IF_ERROR(HandleCommit(request.step_commit()));
      return StreamAction::kContinue;
    case v1::SessionRequest::kIterationWeights:
      GCPRUNE_RETURN_IF_ERROR(HandleWeights(request.iteration_weights()));
      return StreamAction::kContinue;
    case v1::SessionRequest::kIterationEnd:
      GCPRUNE_RETURN_IF_ERROR(HandleIterationEnd(request.iteration_end()));
      return StreamAction::kContinue;
    case v1::SessionRequest::kClose:
      GCPRUNE_RETURN_IF_ERROR(HandleClose(request.close()));
      return StreamAction::kClose;
    case v1::SessionRequest::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("request: empty SessionRequest (no kind set)");
}

absl::Status ManagedSession::CheckWritable(absl::string_view what) const {
  if (state_ == v1::SESSION_STATE_COMPLETED || state_ == v1::SESSION_STATE_FAILED) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": session '", id_, "' is ", SessionStateName(state_),
                                                      " and read-only"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ManagedSession::ReceiveRuns(
    const google::protobuf::RepeatedPtrField<v1::TensorChunk>& runs, absl::string_view field,
    ChunkCoverage* coverage, std::vector<float>* buffer) const {
  if (runs.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": no runs, expected at least one"));
  int64_t nonfinite = 0;
  std::vector<float> values;
  for (int i = 0; i < runs.size(); ++i) {
    const v1::TensorChunk& run = runs.Get(i);
    const std::string f = absl::StrCat(field, "[", i, "]");
    absl::StatusOr<int64_t> count = common::ChunkElementCount(run);
    if (!count.ok()) return WithPrefix(absl::StrCat(f, ": "), count.status());
    if (run.tensor_index() >= static_cast<uint32_t>(layout_->num_tensors())) {
      return absl::InvalidArgumentError(absl::StrCat(f, ".tensor_index: ", run.tensor_index(),
                                                     " is out of range, the layout has ", layout_->num_tensors(),
                                                     " tensors"));
    }
    const int tensor = static_cast<int>(run.tensor_index());
    GCPRUNE_RETURN_IF_ERROR(WithPrefix(absl::StrCat(f, ": "), coverage->Claim(tensor, run.offset(), *count, 0)));
    float* out = buffer->data() + layout_->feature_offset(tensor) + run.offset();
    const float* in = run.values().data();  // float32 `values` need no decoding
    if (run.values().empty()) {
      GCPRUNE_RETURN_IF_ERROR(WithPrefix(absl::StrCat(f, ": "), common::DecodeChunkValues(run, &values)));
      in = values.data();
    }
    for (int64_t k = 0; k < *count; ++k) {
      out[k] = in[k];
      if (!std::isfinite(in[k])) ++nonfinite;
    }
  }
  return nonfinite;
}

void ManagedSession::SendWarning(int64_t step, const std::string& message) {
  v1::SessionResponse response;
  v1::SessionError* warning = response.mutable_error();
  warning->set_code(0);
  warning->set_message(message);
  warning->set_step(step);
  warning->set_iteration(completed_ + 1);
  Send(std::move(response));
}

absl::Status ManagedSession::HandleBegin(const v1::StepBegin& begin) {
  GCPRUNE_RETURN_IF_ERROR(CheckWritable("step_begin"));
  const int64_t step = begin.step();
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("step_begin.step: ", step, ", expected >= 0"));
  if (open_step_ >= 0) {
    return absl::FailedPreconditionError(absl::StrCat("step_begin.step: ", step, ", but step ", open_step_,
                                                      " is open (commit it first; steps are not interleaved)"));
  }
  const double lr = begin.learning_rate();
  if (!std::isfinite(lr) || lr <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("step_begin.learning_rate: ", lr, " in step ", step, ", expected a finite value > 0"));
  }
  if (!(begin.momentum() >= 0 && begin.momentum() < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("step_begin.momentum: ", begin.momentum(), " in step ", step,
                                                   ", expected a value in [0, 1)"));
  }
  if (std::isnan(begin.loss_before())) {
    return absl::InvalidArgumentError(absl::StrCat("step_begin.loss_before: NaN in step ", step));
  }
  if (config_.method == Method::kCausalV2 && std::isnan(begin.loss_after())) {
    return absl::InvalidArgumentError(absl::StrCat("step_begin.loss_after: NaN in step ", step));
  }
  if (step < next_step_) {  // a duplicate of a stored step (maybe of an earlier iteration): read, ignored
    open_step_ = step;
    open_duplicate_ = true;
    return absl::OkStatus();
  }
  if (step > next_step_) {
    return absl::OutOfRangeError(absl::StrCat("step_begin.step: ", step, ", but step ", next_step_,
                                              " is the next expected (a gap; resend from ", next_step_, ")"));
  }
  if (state_ == v1::SESSION_STATE_FITTING) {
    return absl::FailedPreconditionError(absl::StrCat("step_begin.step: ", step, ": iteration ", fitting_iteration_,
                                                      " is being fitted; steps of iteration ", fitting_iteration_ + 1,
                                                      " are accepted after its mask_update"));
  }
  if (begin.iteration() != completed_ + 1) {
    return absl::FailedPreconditionError(absl::StrCat("step_begin.iteration: ", begin.iteration(), " in step ", step,
                                                      ", but iteration ", completed_ + 1, " is being collected"));
  }
  open_step_ = step;
  open_duplicate_ = false;
  open_record_ = StepRecord{step, begin.iteration(), begin.loss_before(), begin.loss_after(), lr, begin.momentum()};
  step_coverage_->Reset();
  if (IsCausal(config_.method)) step_buffer_.resize(static_cast<size_t>(num_features_));
  return absl::OkStatus();
}

absl::Status ManagedSession::HandleChunk(const v1::StepChunk& chunk) {
  GCPRUNE_RETURN_IF_ERROR(CheckWritable("step_chunk"));
  if (open_step_ < 0 || chunk.step() != open_step_) {
    return absl::FailedPreconditionError(
        open_step_ < 0 ? absl::StrCat("step_chunk.step: ", chunk.step(), ", but no step is open (send step_begin)")
                       : absl::StrCat("step_chunk.step: ", chunk.step(), ", but the open step is ", open_step_));
  }
  if (open_duplicate_ || !IsCausal(config_.method)) return absl::OkStatus();  // read and ignored
  GCPRUNE_ASSIGN_OR_RETURN(const int64_t nonfinite,
                           ReceiveRuns(chunk.deltas(), "step_chunk.deltas", step_coverage_.get(), &step_buffer_));
  if (nonfinite > 0) {
    SendWarning(open_step_, absl::StrCat("step ", open_step_, ": ", nonfinite,
                                         " non-finite deltas in this chunk; they count as 0 in the regression"));
  }
  return absl::OkStatus();
}

absl::Status ManagedSession::HandleCommit(const v1::StepCommit& commit) {
  GCPRUNE_RETURN_IF_ERROR(CheckWritable("step_commit"));
  const int64_t step = commit.step();
  if (open_step_ < 0 || step != open_step_) {
    return absl::FailedPreconditionError(
        open_step_ < 0 ? absl::StrCat("step_commit.step: ", step, ", but no step is open (send step_begin)")
                       : absl::StrCat("step_commit.step: ", step, ", but the open step is ", open_step_));
  }
  if (open_duplicate_) {  // acknowledged again, not stored again
    open_step_ = -1;
    open_duplicate_ = false;
    SendAck();
    return absl::OkStatus();
  }
  const bool wants_steps = IsCausal(config_.method);
  if (wants_steps) {
    GCPRUNE_RETURN_IF_ERROR(WithPrefix(absl::StrCat("step_commit: step ", step, ": "), step_coverage_->CheckComplete()));
  }
  absl::Span<const float> deltas;
  if (wants_steps) deltas = step_buffer_;
  absl::Status stored = journal_->Append(open_record_, deltas);
  if (!stored.ok()) {
    const absl::StatusCode code = stored.code() == absl::StatusCode::kResourceExhausted
                                      ? absl::StatusCode::kResourceExhausted
                                      : absl::StatusCode::kUnavailable;
    return absl::Status(code, absl::StrCat("step_commit: step ", step, " could not be stored: ", stored.message()));
  }
  if (wants_steps) {
    TensorWeights spans;
    for (int t : prunable_) {
      spans.push_back(absl::MakeConstSpan(step_buffer_.data() + layout_->feature_offset(t),
                                          static_cast<size_t>(layout_->tensor(t).numel())));
    }
    absl::Status added = core_->AddStep(MakeStepHeader(open_record_), spans);
    if (!added.ok()) {
      absl::Status undone = journal_->UndoLastAppend();
      if (!undone.ok()) {
        Fail(absl::InternalError(absl::StrCat("step ", step, " was journalled but not stored (", added.message(),
                                              ") and could not be removed from the journal: ", undone.message())));
      }
      return WithPrefix(absl::StrCat("step_commit: step ", step, ": "), added);
    }
  }
  if (std::isinf(open_record_.loss_before) || std::isinf(open_record_.loss_after)) {
    SendWarning(step, absl::StrCat("step ", step, ": an infinite loss; the targets it enters count as 0"));
  }
  ++next_step_;
  open_step_ = -1;
  UpdateSampleStats();
  Touch();
  SendAck();
  return absl::OkStatus();
}

absl::Status ManagedSession::HandleWeights(const v1::IterationWeights& weights) {
  GCPRUNE_RETURN_IF_ERROR(CheckWritable("iteration_weights"));
  const int j = weights.iteration();
  if (j < 1) {
    return absl::InvalidArgumentError(absl::StrCat("iteration_weights.iteration: ", j, ", expected >= 1"));
  }
  if (j <= completed_) return absl::OkStatus();  // that iteration has ended: nothing to do
  if (state_ == v1::SESSION_STATE_FITTING && j == fitting_iteration_) return absl::OkStatus();
  if (state_ == v1::SESSION_STATE_FITTING || j != completed_ + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("iteration_weights.iteration: ", j, ", but iteration ", completed_ + 1, " is being ",
                     state_ == v1::SESSION_STATE_FITTING ? "fitted" : "collected"));
  }
  if (!NeedsWeights(config_.method)) return absl::OkStatus();  // the method does not use them: ignored
  if (weights_iteration_ != j || weights_coverage_->complete()) {
    // A new set, or a complete set sent again (e.g. after a reconnect): start over.
    weights_iteration_ = j;
    weights_coverage_->Reset();
    weights_buffer_.resize(static_cast<size_t>(num_features_));
  }
  return ReceiveRuns(weights.weights(), "iteration_weights.weights", weights_coverage_.get(), &weights_buffer_)
      .status();
}

absl::Status ManagedSession::HandleIterationEnd(const v1::IterationEnd& end) {
  const int j = end.iteration();
  if (j < 1) return absl::InvalidArgumentError(absl::StrCat("iteration_end.iteration: ", j, ", expected >= 1"));
  if (j <= completed_) {  // replay, e.g. after a reconnect: the mask again
    SendMaskUpdate(j);
    return absl::OkStatus();
  }
  GCPRUNE_RETURN_IF_ERROR(CheckWritable("iteration_end"));
  if (state_ == v1::SESSION_STATE_FITTING) {
    if (j == fitting_iteration_) return absl::OkStatus();  // still fitting: the mask_update follows
    return absl::FailedPreconditionError(
        absl::StrCat("iteration_end.iteration: ", j, ", but iteration ", fitting_iteration_, " is being fitted"));
  }
  if (j != completed_ + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("iteration_end.iteration: ", j, ", but iteration ", completed_ + 1, " is being collected"));
  }
  const bool wants_steps = IsCausal(config_.method);
  const int64_t highest = next_step_ - 1;
  if (wants_steps && end.last_step() != highest) {
    return absl::OutOfRangeError(absl::StrCat("iteration_end.last_step: ", end.last_step(),
                                              ", but the highest committed step is ", highest));
  }
  if (open_step_ >= 0) {
    return absl::FailedPreconditionError(absl::StrCat("iteration_end: step ", open_step_, " is open (no step_commit)"));
  }
  if (wants_steps && stored_samples_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "iteration_end: iteration ", j, " has ", next_step_ - iteration_first_step_,
        " steps and no sample to fit (causal-v2 needs at least 1 step, causal-v1 2, with v1_momentum 3)"));
  }
  std::vector<float> weights;
  if (NeedsWeights(config_.method)) {
    if (weights_iteration_ != j || !weights_coverage_->complete()) {
      const absl::Status missing = weights_iteration_ == j ? weights_coverage_->CheckComplete()
                                                           : absl::InvalidArgumentError("none received");
      return absl::InvalidArgumentError(absl::StrCat("iteration_end: the iteration_weights of iteration ", j,
                                                     " are missing (method ", MethodName(config_.method),
                                                     " ranks the current weights): ", missing.message()));
    }
    weights = std::move(weights_buffer_);
    weights_buffer_.clear();
    weights_iteration_ = 0;
    weights_coverage_->Reset();
  }
  state_ = v1::SESSION_STATE_FITTING;
  fitting_iteration_ = j;
  fit_last_step_ = next_step_ > iteration_first_step_ ? highest : -1;
  complete_after_fit_ = false;
  fit_start_ = absl::Now();
  std::shared_ptr<ManagedSession> self = shared_from_this();
  absl::StatusOr<int> ahead = executor_->Submit(
      [self, j, w = std::move(weights)]() mutable { self->RunFit(j, std::move(w)); });
  if (!ahead.ok()) {
    state_ = v1::SESSION_STATE_COLLECTING;
    return WithPrefix("iteration_end: ", ahead.status());
  }
  if (*ahead > 0) SendProgress(j, v1::FIT_EVENT_QUEUED, nullptr);
  Touch();
  return absl::OkStatus();
}

absl::Status ManagedSession::HandleClose(const v1::CloseSession& close) {
  DropPartialInput();
  if (!close.complete()) return absl::OkStatus();
  if (state_ == v1::SESSION_STATE_FITTING) {
    complete_after_fit_ = true;  // completes once the fit is stored
    return absl::OkStatus();
  }
  if (state_ != v1::SESSION_STATE_COLLECTING) return absl::OkStatus();
  return Complete();
}

// ---------------------------------------------------------------------------------------------------
// Fits.

void ManagedSession::RunFit(int iteration, std::vector<float> weights) {
  PruningSession* core = nullptr;
  TensorWeights spans;
  {
    absl::MutexLock lock(&mutex_);
    if (deleted_ || state_ != v1::SESSION_STATE_FITTING || fitting_iteration_ != iteration) return;
    core = core_.get();
    fit_start_ = absl::Now();
    SendProgress(iteration, v1::FIT_EVENT_STARTED, nullptr);
    if (!weights.empty()) {
      for (int t : prunable_) {
        spans.push_back(absl::MakeConstSpan(weights.data() + layout_->feature_offset(t),
                                            static_cast<size_t>(layout_->tensor(t).numel())));
      }
    }
  }
  // The core belongs to this thread while the state is FITTING: no lock is needed, and the session's
  // other requests (acks of duplicates, GetSession, ...) are answered meanwhile.
  absl::StatusOr<IterationResult> result = core->EndIteration(spans);
  std::string blob = result.ok() ? core->Serialize() : std::string();
  absl::MutexLock lock(&mutex_);
  FinishFit(iteration, std::move(result), std::move(blob));
}

void ManagedSession::FinishFit(int iteration, absl::StatusOr<IterationResult> result, std::string blob) {
  if (deleted_ || state_ != v1::SESSION_STATE_FITTING) return;
  const bool end_stream = end_after_fit_;
  end_after_fit_ = false;
  if (!result.ok()) {
    state_ = v1::SESSION_STATE_COLLECTING;
    GCPRUNE_LOG(WARNING) << "session " << id_ << ": fit of iteration " << iteration << " failed: " << result.status();
    // The fit is deterministic: on the same samples it fails again, unless it ran out of memory or the
    // client can send other weights (magnitude methods).
    const absl::StatusCode code = result.status().code();
    const bool retryable = code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kUnavailable ||
                           (NeedsWeights(config_.method) && code == absl::StatusCode::kInvalidArgument);
    if (!retryable) {
      Fail(absl::FailedPreconditionError(absl::StrCat("iteration ", iteration,
                                                      ": the fit failed and cannot succeed on these samples: ",
                                                      result.status().message())));
      return;
    }
    v1::SessionResponse response;
    v1::SessionError* error = response.mutable_error();
    error->set_code(static_cast<int>(result.status().code()));
    error->set_message(absl::StrCat("iteration ", iteration, ": the fit failed: ", result.status().message(),
                                    "; the samples are kept, send iteration_end again to retry"));
    error->set_step(-1);
    error->set_iteration(iteration);
    Send(std::move(response));
    if (complete_after_fit_) Complete().IgnoreError();
    if (end_stream) EndAttachedStream(absl::OkStatus());
    return;
  }

  const IterationResult& r = *result;
  const bool completes = r.iteration >= total_iterations_ || complete_after_fit_;
  state::IterationRecord record;
  record.set_apply_at_step(next_step_);
  *record.mutable_report() = IterationReportToProto(
      r.report, next_step_ > iteration_first_step_ ? iteration_first_step_ : -1, fit_last_step_, NowUnixMs());
  Touch();
  state::SessionMetadata metadata = BuildMetadata();
  metadata.set_state(completes ? v1::SESSION_STATE_COMPLETED : v1::SESSION_STATE_COLLECTING);
  metadata.set_core(blob);
  metadata.set_next_step(next_step_);
  *metadata.add_iterations() = record;
  absl::Status stored = Persist(metadata);
  if (!stored.ok()) {
    // The core advanced in memory only: rebuild it from the stored state and the journal, which still
    // hold the iteration's samples, so a retried iteration_end redoes the same fit.
    state_ = v1::SESSION_STATE_COLLECTING;
    absl::Status restored = Restore(BuildMetadata());
    if (!restored.ok()) {
      Fail(absl::InternalError(absl::StrCat("iteration ", iteration, ": the masks could not be stored (",
                                            stored.message(), ") and the session could not be restored: ",
                                            restored.message())));
      return;
    }
    v1::SessionResponse response;
    v1::SessionError* error = response.mutable_error();
    error->set_code(static_cast<int>(absl::StatusCode::kUnavailable));
    error->set_message(absl::StrCat("iteration ", iteration, ": the masks could not be stored: ", stored.message(),
                                    "; send iteration_end again to retry"));
    error->set_step(-1);
    error->set_iteration(iteration);
    Send(std::move(response));
    if (end_stream) EndAttachedStream(absl::OkStatus());
    return;
  }

  core_blob_ = std::move(blob);
  iterations_.push_back(std::move(record));
  completed_ = r.iteration;
  for (int64_t k = 0; k < num_features_; ++k) {
    if (!r.masks.is_kept(k) && prune_iteration_[static_cast<size_t>(k)] == 0) {
      prune_iteration_[static_cast<size_t>(k)] = static_cast<uint16_t>(r.iteration);
    }
  }
  num_pruned_ = r.masks.num_pruned();
  iteration_first_step_ = next_step_;
  state_ = completes ? v1::SESSION_STATE_COMPLETED : v1::SESSION_STATE_COLLECTING;
  if (journal_ != nullptr) {
    absl::Status reset = journal_->Reset();
    // Harmless: the stale records are skipped on replay, being of a completed iteration.
    if (!reset.ok()) {
      GCPRUNE_LOG(WARNING) << "session " << id_ << ": " << reset;
    }
  }
  if (completes) {
    core_.reset();
    journal_.reset();
    std::vector<float>().swap(step_buffer_);
    std::vector<float>().swap(weights_buffer_);
  }
  UpdateSampleStats();
  SendProgress(iteration, v1::FIT_EVENT_FINISHED, &r.report);
  SendMaskUpdate(iteration);
  if (end_stream) EndAttachedStream(absl::OkStatus());
}

// ---------------------------------------------------------------------------------------------------
// Unary views.

absl::Status ManagedSession::CheckLayout(const v1::Layout& expected, absl::string_view field) const {
  absl::MutexLock lock(&mutex_);
  if (!layout_) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": session '", id_, "' has no readable layout: ", failure_message_));
  }
  return CheckLayoutMatches(*layout_, expected, field);
}

v1::SessionState ManagedSession::state() const {
  absl::MutexLock lock(&mutex_);
  return state_;
}

bool ManagedSession::live() const {
  absl::MutexLock lock(&mutex_);
  return !deleted_ && (state_ == v1::SESSION_STATE_COLLECTING || state_ == v1::SESSION_STATE_FITTING);
}

int64_t ManagedSession::reserved_bytes() const {
  absl::MutexLock lock(&mutex_);
  return IsCausal(config_.method) ? config_.memory_budget_bytes : 0;
}

v1::SessionInfo ManagedSession::Info(bool with_layout) const {
  absl::MutexLock lock(&mutex_);
  v1::SessionInfo info;
  info.set_session_id(id_);
  info.set_label(label_);
  info.set_state(state_);
  info.set_attached(sink_ != nullptr);
  if (with_layout && layout_) *info.mutable_layout() = LayoutToProto(*layout_);
  if (layout_) *info.mutable_method() = MethodConfigToProto(config_);
  info.set_num_features(num_features_);
  info.set_next_step(next_step_);
  info.set_completed_iterations(completed_);
  info.set_total_iterations(total_iterations_);
  info.set_global_sparsity(num_features_ > 0 ? static_cast<double>(num_pruned_) / static_cast<double>(num_features_)
                                             : 0.0);
  info.set_stored_samples(stored_samples_);
  info.set_memory_bytes(sample_bytes_ + static_cast<int64_t>((step_buffer_.capacity() + weights_buffer_.capacity()) *
                                                             sizeof(float)));
  info.set_memory_budget_bytes(config_.memory_budget_bytes);
  info.set_created_unix_ms(created_unix_ms_);
  info.set_updated_unix_ms(updated_unix_ms_);
  info.set_failure_message(failure_message_);
  return info;
}

absl::StatusOr<v1::GetMasksResponse> ManagedSession::GetMasks(const v1::GetMasksRequest& request) const {
  absl::MutexLock lock(&mutex_);
  if (!layout_) {
    return absl::FailedPreconditionError(absl::StrCat("session '", id_, "' has no readable state: ", failure_message_));
  }
  const int j = request.has_iteration() ? request.iteration() : completed_;
  if (j < 0) return absl::InvalidArgumentError(absl::StrCat("iteration: ", j, ", expected >= 0"));
  if (j > completed_) {
    return absl::NotFoundError(absl::StrCat("iteration: ", j, " has not completed (session '", id_, "' has ",
                                            completed_, " completed iterations)"));
  }
  std::vector<int> tensors;  // MaskSet indices
  std::vector<int> mask_index(static_cast<size_t>(layout_->num_tensors()), -1);
  for (size_t p = 0; p < prunable_.size(); ++p) mask_index[static_cast<size_t>(prunable_[p])] = static_cast<int>(p);
  if (request.tensor_indices().empty()) {
    for (size_t p = 0; p < prunable_.size(); ++p) tensors.push_back(static_cast<int>(p));
  } else {
    std::vector<bool> seen(prunable_.size(), false);
    for (int i = 0; i < request.tensor_indices_size(); ++i) {
      const uint32_t t = request.tensor_indices(i);
      const std::string f = absl::StrCat("tensor_indices[", i, "]");
      if (t >= static_cast<uint32_t>(layout_->num_tensors())) {
        return absl::InvalidArgumentError(
            absl::StrCat(f, ": ", t, " is out of range, the layout has ", layout_->num_tensors(), " tensors"));
      }
      const int p = mask_index[t];
      if (p < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(f, ": ", t, " ('", layout_->tensor(static_cast<int>(t)).name, "') is not prunable"));
      }
      if (seen[static_cast<size_t>(p)]) return absl::InvalidArgumentError(absl::StrCat(f, ": ", t, " is repeated"));
      seen[static_cast<size_t>(p)] = true;
      tensors.push_back(p);
    }
  }
  MaskCursor cursor;
  if (!request.page_token().empty()) {
    // Token: "<iteration>.<position in the tensor list>.<offset>".
    const std::vector<std::string> parts = absl::StrSplit(request.page_token(), '.');
    int token_iteration = -1;
    bool ok = parts.size() == 3 && absl::SimpleAtoi(parts[0], &token_iteration) &&
              absl::SimpleAtoi(parts[1], &cursor.list_index) && absl::SimpleAtoi(parts[2], &cursor.offset);
    ok = ok && token_iteration == j && cursor.list_index >= 0 && cursor.list_index < static_cast<int>(tensors.size()) &&
         cursor.offset >= 0 && cursor.offset % 8 == 0 &&
         cursor.offset < layout_->tensor(prunable_[static_cast<size_t>(tensors[static_cast<size_t>(cursor.list_index)])])
                             .numel();
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token: '", request.page_token(), "' is not a token of this request"));
    }
  }
  const MaskSet mask = MasksAfter(j);
  v1::GetMasksResponse response;
  v1::MaskUpdate* update = response.mutable_masks();
  update->set_iteration(j);
  update->set_apply_at_step(j > 0 ? iterations_[static_cast<size_t>(j - 1)].apply_at_step() : 0);
  cursor = AppendMaskRuns(mask, tensors, cursor, options_.mask_part_bytes, update);
  if (cursor.list_index >= static_cast<int>(tensors.size())) {
    const double target = j > 0 ? iterations_[static_cast<size_t>(j - 1)].report().target_sparsity() : 0.0;
    FillMaskSummary(mask, tensors, target, j == total_iterations_, update);
  } else {
    response.set_next_page_token(absl::StrCat(j, ".", cursor.list_index, ".", cursor.offset));
  }
  return response;
}

v1::SessionReport ManagedSession::Report() const {
  absl::MutexLock lock(&mutex_);
  v1::SessionReport report;
  report.set_session_id(id_);
  if (layout_) *report.mutable_method() = MethodConfigToProto(config_);
  for (const state::IterationRecord& record : iterations_) *report.add_iterations() = record.report();
  return report;
}

absl::Status ManagedSession::MarkDeleted(bool force) {
  absl::MutexLock lock(&mutex_);
  if (deleted_) return absl::NotFoundError(absl::StrCat("session_id: session '", id_, "' was deleted"));
  if (sink_ != nullptr && !force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session_id: session '", id_, "' has an attached stream; close it first or set force to delete anyway"));
  }
  deleted_ = true;
  EndAttachedStream(absl::AbortedError(absl::StrCat("session '", id_, "' was deleted")));
  journal_.reset();
  if (state_ != v1::SESSION_STATE_FITTING) core_.reset();  // a running fit still uses it
  return absl::OkStatus();
}

}  // namespace gcprune::pruner
