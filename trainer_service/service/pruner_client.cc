// PrunerClient: buffered, resumable Pruner session client (see pruner_client.h).
#include "trainer_service/service/pruner_client.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/tensor_chunk.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using Stream = grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>;

// Fit failures (SessionError while masks are awaited) retried before the iteration is given up.
constexpr int kMaxFitRetries = 2;
// Established streams that may fail in a row without any ack or mask before the iteration is given up.
constexpr int kMaxStreamFailures = 5;
// How long Close waits for the pruner to store pending steps and end the stream.
constexpr absl::Duration kCloseTimeout = absl::Seconds(5);
// Poll period of waits that also watch cancellation and the grace period.
constexpr absl::Duration kPollPeriod = absl::Milliseconds(50);
// Longest wait for the channel to connect before a stream is attempted anyway.
constexpr absl::Duration kConnectWait = absl::Seconds(5);
// Bytes reserved for message framing when the pruner's message limit bounds the chunk size.
constexpr int64_t kMessageOverheadBytes = 4096;

bool IsPermanent(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNIMPLEMENTED:
      return true;
    default:
      return false;
  }
}

std::string DescribeStatus(const grpc::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())), ": ",
                      status.error_message());
}

}  // namespace

struct PrunerClient::Payload {
  double loss_before = 0.0;
  double loss_after = 0.0;
  double learning_rate = 0.0;
  double momentum = 0.0;
  std::vector<std::vector<float>> values;  // per prunable tensor
};

absl::StatusOr<std::unique_ptr<PrunerClient>> PrunerClient::Create(PrunerClientOptions options) {
  if (options.address.empty()) return absl::InvalidArgumentError("pruner address: empty");
  bool any_prunable = false;
  for (const v1::TensorSpec& tensor : options.layout.tensors()) any_prunable |= tensor.prunable();
  if (!any_prunable) return absl::InvalidArgumentError("pruner client: the layout has no prunable tensor");
  if (options.max_buffer_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pruner client: max_buffer_bytes must be >= 1, got ", options.max_buffer_bytes));
  }
  if (options.max_chunk_elements < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pruner client: max_chunk_elements must be >= 1, got ", options.max_chunk_elements));
  }
  if (options.grace < absl::ZeroDuration() || options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff || options.open_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pruner client: need grace >= 0, 0 < initial_backoff <= max_backoff and open_timeout > 0, got grace ",
        absl::FormatDuration(options.grace), ", backoff ", absl::FormatDuration(options.initial_backoff), "..",
        absl::FormatDuration(options.max_backoff), ", open_timeout ", absl::FormatDuration(options.open_timeout)));
  }
  const int backoff_ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(options.max_backoff)));
  if (options.channel.max_reconnect_backoff_ms == 0 || options.channel.max_reconnect_backoff_ms > backoff_ms) {
    options.channel.max_reconnect_backoff_ms = backoff_ms;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = common::MakeClientChannel(options.address, options.channel);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<PrunerClient>(new PrunerClient(std::move(options), *std::move(channel)));
}

PrunerClient::PrunerClient(PrunerClientOptions options, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), channel_(std::move(channel)), stub_(v1::Pruner::NewStub(channel_)) {
  const auto& tensors = options_.layout.tensors();
  prunable_of_layout_.assign(tensors.size(), -1);
  for (int i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].prunable()) continue;
    int64_t numel = 1;
    for (int64_t d : tensors[i].shape()) numel *= d;
    prunable_of_layout_[i] = static_cast<int>(prunable_layout_index_.size());
    prunable_layout_index_.push_back(i);
    prunable_numel_.push_back(numel);
  }
  chunk_elements_ = options_.max_chunk_elements;
}

PrunerClient::~PrunerClient() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    CancelStream();
  }
  if (connection_thread_.joinable()) connection_thread_.join();
}

absl::Status PrunerClient::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("pruner client: already started");
  started_ = true;
  disconnected_since_ = absl::Now();
  last_heard_ = disconnected_since_;
  Emit(v1::PRUNER_STATE_CONNECTING, absl::StrCat("connecting to ", options_.address));
  connection_thread_ = std::thread([this] { ConnectionLoop(); });
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Connection thread.

void PrunerClient::ConnectionLoop() {
  absl::Duration backoff = options_.initial_backoff;
  bool wait_first = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (wait_first) {
        auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || close_requested_ || kick_; };
        mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
        kick_ = false;
      }
      if (shutdown_ || close_requested_ || !permanent_error_.ok()) break;
    }
    const StreamEnd end = RunStream();
    if (end == StreamEnd::kClosed || end == StreamEnd::kPermanent) break;
    if (end == StreamEnd::kReopenNow) {
      wait_first = false;
      continue;
    }
    wait_first = true;
    absl::MutexLock lock(&mu_);
    // A stream that delivered acks or masks resets the backoff; repeated failures double it.
    backoff = stream_failures_ == 0 && ever_connected_ ? options_.initial_backoff
                                                       : std::min(backoff * 2, options_.max_backoff);
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
  connected_ = false;
}

void PrunerClient::AwaitChannel() {
  // A call started while the channel is in TRANSIENT_FAILURE fails at once with the cached error, and
  // gRPC retries the connection only after its own backoff: reset that, and wait for one attempt.
  grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
  const absl::Time deadline = absl::Now() + std::min(options_.open_timeout, kConnectWait);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  // A failure seen before any state change is the cached result of an earlier attempt: wait for a new one.
  bool changed = false;
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_SHUTDOWN && absl::Now() < deadline) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE && changed) return;
    // Short slices, so Close and shutdown are not held up.
    if (channel_->WaitForStateChange(state, absl::ToChronoTime(absl::Now() + kPollPeriod))) {
      changed = true;
    } else {
      absl::MutexLock lock(&mu_);
      if (shutdown_ || close_requested_) return;
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
}

PrunerClient::StreamEnd PrunerClient::RunStream() {
  AwaitChannel();
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream;
  v1::SessionRequest open;
  int64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_ || close_requested_) return StreamEnd::kClosed;
    // Registered before the call starts, so a cancel (Close, shutdown) also stops a pending connect.
    context_ = &context;
    generation = ++generation_;
    stream_ready_ = false;
    stream_broken_ = false;
    reopen_ = false;
    restart_sent_ = restart_next_;
    if (session_id_.empty()) {
      v1::NewSession* create = open.mutable_open()->mutable_create();
      *create->mutable_layout() = options_.layout;
      *create->mutable_method() = options_.method;
      create->set_label(options_.label);
    } else {
      v1::ResumeSession* resume = open.mutable_open()->mutable_resume();
      resume->set_session_id(session_id_);
      *resume->mutable_expected_layout() = options_.layout;
      resume->set_restart_iteration(restart_next_);
    }
  }
  // Creating the stream may wait for the connection attempt, so no lock is held.
  stream = stub_->Session(&context);
  absl::Notification reader_done;
  std::thread reader([this, &stream, generation, &reader_done] {
    ReadLoop(stream.get(), generation);
    reader_done.Notify();
  });

  bool ready = false;
  bool reopen = false;
  bool closed_cleanly = false;
  if (stream->Write(open)) {
    absl::MutexLock lock(&mu_);
    auto opened = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stream_ready_ || stream_broken_ || shutdown_ || reopen_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&opened), options_.open_timeout);
    ready = stream_ready_ && !stream_broken_ && !shutdown_;
    reopen = reopen_;
    if (!stream_ready_ && !stream_broken_ && !reopen_ && !shutdown_) {
      last_error_ = absl::StrCat("no answer to OpenSession within ", absl::FormatDuration(options_.open_timeout));
    }
  }

  // Writer: one item at a time, in queue order, while the stream is healthy.
  while (ready && !reopen) {
    Item item;
    int round = 0;
    int64_t chunk = 0;
    bool close_now = false;
    {
      absl::MutexLock lock(&mu_);
      auto writable = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (shutdown_ || stream_broken_ || reopen_) return true;
        if (close_requested_ && pending_.empty()) return true;
        const bool sendable = connected_ && !stale_ && current_round_ > 0 &&
                              known_completed_ >= hold_until_completed_ &&
                              (total_iterations_ == 0 || current_round_ <= total_iterations_);
        return !pending_.empty() && sendable;
      };
      mu_.Await(absl::Condition(&writable));
      if (shutdown_ || stream_broken_ || reopen_) break;
      if (close_requested_ && pending_.empty()) {
        close_now = true;
      } else {
        item = pending_.front();
        pending_.pop_front();
        if (item.kind == Item::Kind::kStep) {
          item.number = next_number_++;
        } else if (item.kind == Item::Kind::kEnd) {
          item.number = options_.wants_steps ? next_number_ - 1 : -1;
        }
        inflight_.push_back(item);
        round = current_round_;
        chunk = chunk_elements_;
      }
    }
    if (close_now) {
      v1::SessionRequest close;
      bool complete = false;
      {
        absl::MutexLock lock(&mu_);
        complete = close_complete_;
      }
      close.mutable_close()->set_complete(complete);
      if (stream->Write(close)) stream->WritesDone();
      // The pruner stores what is pending, then ends the stream with OK.
      closed_cleanly = reader_done.WaitForNotificationWithTimeout(kCloseTimeout);
      break;
    }
    if (!WriteItem(stream.get(), item, round, chunk)) break;
    if (item.kind == Item::Kind::kStep) {
      absl::MutexLock lock(&mu_);
      ++steps_sent_;
    }
  }

  // When the server ended the stream, let the reader collect its status (cancelling would replace it by
  // CANCELLED); otherwise this side is leaving and cancels at once.
  bool leaving = false;
  {
    absl::MutexLock lock(&mu_);
    leaving = shutdown_ || reopen_ || reopen;
  }
  if (leaving || !reader_done.WaitForNotificationWithTimeout(absl::Seconds(1))) context.TryCancel();
  reader.join();
  const grpc::Status status = stream->Finish();

  absl::MutexLock lock(&mu_);
  ++attempts_;
  context_ = nullptr;
  const bool was_connected = connected_;
  connected_ = false;
  stream_ready_ = false;
  if (was_connected) disconnected_since_ = absl::Now();
  RequeueInflight();
  if (closed_cleanly || shutdown_) return StreamEnd::kClosed;
  if (reopen || reopen_) return StreamEnd::kReopenNow;
  if (restart_sent_ && !was_connected) restart_next_ = false;  // decide again at the next Opened
  if (close_requested_) return StreamEnd::kClosed;
  if (!permanent_error_.ok()) return StreamEnd::kPermanent;
  if (IsPermanent(status.error_code())) {
    permanent_error_ = absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                                    absl::StrCat("pruner at ", options_.address, ": ", status.error_message()));
    Emit(v1::PRUNER_STATE_FAILED, absl::StrCat("pruner session unusable: ", DescribeStatus(status)));
    return StreamEnd::kPermanent;
  }
  // CANCELLED is this client's own doing (give-up, resend, open timeout); keep the earlier reason.
  if (status.error_code() != grpc::StatusCode::CANCELLED) last_error_ = DescribeStatus(status);
  if (was_connected && status.error_code() != grpc::StatusCode::CANCELLED) ++stream_failures_;
  if (was_connected || state_ != v1::PRUNER_STATE_DISCONNECTED) {
    const std::string why = last_error_.empty() ? DescribeStatus(status) : last_error_;
    Emit(v1::PRUNER_STATE_DISCONNECTED,
         absl::StrCat(was_connected ? "stream ended: " : "cannot reach the pruner: ", why, "; reconnecting"));
  }
  return StreamEnd::kRetry;
}

void PrunerClient::ReadLoop(Stream* stream, int64_t generation) {
  v1::SessionResponse response;
  while (stream->Read(&response)) {
    absl::MutexLock lock(&mu_);
    if (generation != generation_) continue;
    last_heard_ = absl::Now();
    switch (response.kind_case()) {
      case v1::SessionResponse::kOpened:
        HandleOpened(response.opened());
        break;
      case v1::SessionResponse::kAck:
        HandleAck(response.ack().step());
        break;
      case v1::SessionResponse::kMaskUpdate:
        HandleMaskUpdate(response.mask_update());
        break;
      case v1::SessionResponse::kError:
        HandleSessionError(response.error());
        break;
      default:
        break;  // progress: only proves the pruner is alive
    }
  }
  absl::MutexLock lock(&mu_);
  stream_broken_ = true;
}

bool PrunerClient::WriteItem(Stream* stream, const Item& item, int round, int64_t chunk_elements) {
  v1::SessionRequest request;
  if (item.kind == Item::Kind::kEnd) {
    v1::IterationEnd* end = request.mutable_iteration_end();
    end->set_iteration(round);
    end->set_last_step(item.number);
    return stream->Write(request);
  }
  const Payload& payload = *item.payload;
  if (item.kind == Item::Kind::kStep) {
    v1::StepBegin* begin = request.mutable_step_begin();
    begin->set_step(item.number);
    begin->set_iteration(round);
    begin->set_loss_before(payload.loss_before);
    begin->set_loss_after(payload.loss_after);
    begin->set_learning_rate(payload.learning_rate);
    begin->set_momentum(payload.momentum);
    if (!stream->Write(request)) return false;
  }
  std::vector<std::pair<uint32_t, int64_t>> tensors;
  for (size_t p = 0; p < prunable_layout_index_.size(); ++p) {
    tensors.emplace_back(static_cast<uint32_t>(prunable_layout_index_[p]), prunable_numel_[p]);
  }
  absl::StatusOr<std::vector<std::vector<common::ChunkSpan>>> plan =
      common::PlanChunkMessages(tensors, chunk_elements);
  if (!plan.ok()) return false;
  for (const std::vector<common::ChunkSpan>& message : *plan) {
    request.Clear();
    google::protobuf::RepeatedPtrField<v1::TensorChunk>* chunks;
    if (item.kind == Item::Kind::kStep) {
      request.mutable_step_chunk()->set_step(item.number);
      chunks = request.mutable_step_chunk()->mutable_deltas();
    } else {
      request.mutable_iteration_weights()->set_iteration(round);
      chunks = request.mutable_iteration_weights()->mutable_weights();
    }
    for (const common::ChunkSpan& span : message) {
      const std::vector<float>& values = payload.values[prunable_of_layout_[span.tensor_index]];
      const absl::Span<const float> run(values.data() + span.offset, static_cast<size_t>(span.count));
      if (!common::EncodeChunk(span.tensor_index, span.offset, run, v1::VALUE_ENCODING_FLOAT32,
                               /*as_bytes=*/false, chunks->Add())
               .ok()) {
        return false;
      }
    }
    if (!stream->Write(request)) return false;
  }
  if (item.kind == Item::Kind::kStep) {
    request.Clear();
    request.mutable_step_commit()->set_step(item.number);
    return stream->Write(request);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Responses (reader thread, mu_ held).

void PrunerClient::HandleOpened(const v1::Opened& opened) {
  const int completed = opened.completed_iterations();
  session_id_ = opened.session_id();
  total_iterations_ = opened.total_iterations();
  known_completed_ = completed;
  next_number_ = opened.next_step();
  int64_t chunk = options_.max_chunk_elements;
  if (opened.recommended_chunk_elements() > 0) chunk = std::min(chunk, opened.recommended_chunk_elements());
  if (opened.max_message_bytes() > 0) {
    chunk = std::min<int64_t>(chunk, (opened.max_message_bytes() - kMessageOverheadBytes) / 4);
  }
  chunk_elements_ = std::max<int64_t>(chunk, 1);

  // Steps below next_step are stored; the rest are renumbered from next_step as they are written.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->kind == Item::Kind::kStep && it->number >= 0 && it->number < opened.next_step()) {
      buffer_bytes_ -= it->bytes;
      it = pending_.erase(it);
    } else {
      it->number = -1;
      ++it;
    }
  }

  if (opened.state() == v1::SESSION_STATE_FAILED) {
    permanent_error_ = absl::FailedPreconditionError(
        absl::StrCat("pruner session ", session_id_, " at ", options_.address, " has FAILED"));
    Emit(v1::PRUNER_STATE_FAILED, std::string(permanent_error_.message()));
    CancelStream();
    return;
  }
  if (restart_sent_) {
    stale_ = false;
    restart_next_ = false;
    current_round_ = completed + 1;
  } else if (stale_) {
    switch (opened.state()) {
      case v1::SESSION_STATE_COLLECTING:
        // The open round holds samples of an abandoned iteration: reopen and discard them.
        restart_next_ = true;
        reopen_ = true;
        return;
      case v1::SESSION_STATE_FITTING:
        // The abandoned iteration's fit runs: its masks come first, this iteration goes to the next round.
        hold_until_completed_ = completed + 1;
        current_round_ = completed + 2;
        stale_ = false;
        break;
      default:
        current_round_ = completed + 1;
        stale_ = false;
        break;
    }
  } else {
    if (current_round_ == 0) current_round_ = completed + 1;
    if (completed >= current_round_ ||
        (opened.state() == v1::SESSION_STATE_FITTING && completed + 1 == current_round_)) {
      DropRoundItems();  // this round's end was delivered: only its masks are missing
    } else if (completed + 1 < current_round_) {
      permanent_error_ = absl::FailedPreconditionError(absl::StrCat(
          "pruner session ", session_id_, " is collecting iteration ", completed + 1, " but this run sent iteration ",
          current_round_, " already (the pruner lost state)"));
      Emit(v1::PRUNER_STATE_FAILED, std::string(permanent_error_.message()));
      CancelStream();
      return;
    }
  }
  if (ever_connected_) ++reconnects_;
  ever_connected_ = true;
  connected_ = true;
  stream_ready_ = true;
  disconnected_since_ = absl::InfiniteFuture();
  Emit(v1::PRUNER_STATE_CONNECTED,
       absl::StrCat("session ", session_id_, " open: next step ", opened.next_step(), ", iteration ", completed + 1,
                    " of ", total_iterations_));
}

void PrunerClient::HandleAck(int64_t step) {
  acked_step_ = std::max(acked_step_, step);
  while (!inflight_.empty() && inflight_.front().kind == Item::Kind::kStep && inflight_.front().number <= step) {
    buffer_bytes_ -= inflight_.front().bytes;
    inflight_.pop_front();
  }
  stream_failures_ = 0;
}

void PrunerClient::HandleMaskUpdate(const v1::MaskUpdate& update) {
  const int iteration = update.iteration();
  if (iteration <= latest_.pruner_iteration) return;  // a repeat of masks already taken
  if (assembly_.iteration != iteration) {
    assembly_.iteration = iteration;
    assembly_.tensors.clear();
    for (int64_t numel : prunable_numel_) {
      assembly_.tensors.push_back(std::make_unique<common::PackedMaskAssembler>(numel));
    }
  }
  absl::Status status;
  for (const v1::TensorMask& run : update.masks()) {
    const int p = run.tensor_index() < prunable_of_layout_.size() ? prunable_of_layout_[run.tensor_index()] : -1;
    if (p < 0) {
      status = absl::InternalError(absl::StrCat("tensor_index ", run.tensor_index(), " is not a prunable tensor"));
      break;
    }
    status = assembly_.tensors[p]->Add(run);
    if (!status.ok()) break;
  }
  IterationMasks masks;
  if (status.ok() && update.last_part()) {
    for (size_t p = 0; p < assembly_.tensors.size() && status.ok(); ++p) {
      absl::StatusOr<std::string> packed = assembly_.tensors[p]->Finish();
      if (!packed.ok()) {
        status = packed.status();
        break;
      }
      std::vector<uint8_t> keep(static_cast<size_t>(prunable_numel_[p]));
      for (size_t i = 0; i < keep.size(); ++i) keep[i] = (static_cast<uint8_t>((*packed)[i / 8]) >> (i % 8)) & 1;
      masks.keep.push_back(std::move(keep));
    }
  }
  if (!status.ok()) {
    permanent_error_ = absl::InternalError(
        absl::StrCat("malformed MaskUpdate for iteration ", iteration, " from ", options_.address, ": ",
                     status.message()));
    Emit(v1::PRUNER_STATE_FAILED, std::string(permanent_error_.message()));
    CancelStream();
    return;
  }
  if (!update.last_part()) return;
  masks.pruner_iteration = iteration;
  masks.apply_at_step = update.apply_at_step();
  masks.target_sparsity = update.target_sparsity();
  masks.tensors.assign(update.tensors().begin(), update.tensors().end());
  latest_ = std::move(masks);
  assembly_ = MaskAssembly{};
  known_completed_ = std::max(known_completed_, iteration);
  stream_failures_ = 0;
  if (current_round_ > 0 && iteration >= current_round_) DropRoundItems();
}

void PrunerClient::HandleSessionError(const v1::SessionError& error) {
  if (error.code() == 0) {
    Emit(state_, absl::StrCat("pruner warning: ", error.message()));
    return;
  }
  const std::string message =
      absl::StrCat(absl::StatusCodeToString(static_cast<absl::StatusCode>(error.code())), ": ", error.message());
  if (end_queued_ && (error.iteration() == 0 || error.iteration() == current_round_)) {
    fit_error_ = message;
    ++fit_errors_;
  }
  Emit(state_, absl::StrCat("pruner error (iteration ", error.iteration(), "): ", message));
}

// ---------------------------------------------------------------------------------------------------
// Queue helpers (mu_ held).

void PrunerClient::DropRoundItems() {
  pending_.clear();
  inflight_.clear();
  buffer_bytes_ = 0;
}

void PrunerClient::RequeueInflight() {
  while (!inflight_.empty()) {
    pending_.push_front(std::move(inflight_.back()));
    inflight_.pop_back();
  }
}

int64_t PrunerClient::CountSteps() const {
  int64_t n = 0;
  for (const Item& item : inflight_) n += item.kind == Item::Kind::kStep;
  for (const Item& item : pending_) n += item.kind == Item::Kind::kStep;
  return n;
}

void PrunerClient::CancelStream() {
  if (context_ != nullptr) {
    stream_broken_ = true;
    context_->TryCancel();
  }
}

void PrunerClient::Emit(v1::PrunerState state, const std::string& message) {
  state_ = state;
  if (!options_.on_event) return;
  v1::PrunerConnectionChanged event;
  event.set_state(state);
  event.set_address(options_.address);
  event.set_message(message);
  event.set_unacked_steps(CountSteps());
  options_.on_event(event, session_id_);
}

// ---------------------------------------------------------------------------------------------------
// The run's calls.

absl::Status PrunerClient::BeginIteration(int iteration) {
  absl::MutexLock lock(&mu_);
  trainer_iteration_ = iteration;
  dropped_iteration_ = 0;
  fit_errors_ = 0;
  fit_error_.clear();
  stream_failures_ = 0;
  if (!stale_) current_round_ = std::max(known_completed_, hold_until_completed_) + 1;
  return absl::OkStatus();
}

absl::Status PrunerClient::AddStep(const StepRecord& step) {
  if (step.deltas == nullptr || step.deltas->size() != prunable_numel_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("pruner client: a step needs ", prunable_numel_.size(),
                                                   " delta tensors, got ",
                                                   step.deltas == nullptr ? 0 : step.deltas->size()));
  }
  const bool v1_method = options_.method.method() == v1::METHOD_CAUSAL_V1;
  if (std::isnan(step.loss_before) || (!v1_method && std::isnan(step.loss_after))) {
    absl::MutexLock lock(&mu_);
    ++dropped_total_;
    if (dropped_iteration_++ == 0) {
      Emit(state_, absl::StrCat("iteration ", trainer_iteration_, ": a step with a NaN loss was not sent"));
    }
    return absl::OkStatus();
  }
  auto payload = std::make_shared<Payload>();
  payload->loss_before = step.loss_before;
  payload->loss_after = v1_method || std::isnan(step.loss_after) ? 0.0 : step.loss_after;
  payload->learning_rate = step.learning_rate;
  payload->momentum = step.momentum;
  payload->values = *step.deltas;
  int64_t bytes = 64;
  for (size_t p = 0; p < prunable_numel_.size(); ++p) {
    if (static_cast<int64_t>(payload->values[p].size()) != prunable_numel_[p]) {
      return absl::InvalidArgumentError(absl::StrCat("pruner client: delta tensor ", p, " has ",
                                                     payload->values[p].size(), " values, the layout says ",
                                                     prunable_numel_[p]));
    }
    bytes += prunable_numel_[p] * static_cast<int64_t>(sizeof(float));
  }
  Item item;
  item.kind = Item::Kind::kStep;
  item.payload = std::move(payload);
  item.bytes = bytes;

  absl::MutexLock lock(&mu_);
  if (!permanent_error_.ok()) return options_.fail_open ? absl::OkStatus() : permanent_error_;
  if (!options_.fail_open) {
    auto room = [this, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return buffer_bytes_ + bytes <= options_.max_buffer_bytes || CountSteps() == 0 || !permanent_error_.ok();
    };
    const int64_t attempts_at_start = attempts_;
    const absl::Time wait_start = absl::Now();
    kick_ = !connected_;
    bool waiting_for_attempt = false;
    auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (!permanent_error_.ok()) return true;
      return waiting_for_attempt ? connected_ || attempts_ > attempts_at_start : room();
    };
    while (true) {
      if (!permanent_error_.ok()) return permanent_error_;
      if (UnreachableBeyondGrace(attempts_at_start, wait_start)) {
        return absl::UnavailableError(absl::StrCat("pruner at ", options_.address, " unreachable for more than ",
                                                   absl::FormatDuration(options_.grace),
                                                   last_error_.empty() ? "" : " (last error: ", last_error_,
                                                   last_error_.empty() ? "" : ")", " (strict policy)"));
      }
      // Past the grace period a step waits for one more connection attempt before the run fails.
      const bool overdue = !connected_ && absl::Now() - disconnected_since_ > options_.grace;
      if (!overdue && room()) break;
      if (Cancelled()) return absl::CancelledError("run cancelled while waiting for pruner buffer space");
      waiting_for_attempt = overdue;
      mu_.AwaitWithTimeout(absl::Condition(&wake), kPollPeriod);
    }
  } else {
    while (buffer_bytes_ + bytes > options_.max_buffer_bytes) {
      auto oldest = std::find_if(pending_.begin(), pending_.end(),
                                 [](const Item& queued) { return queued.kind == Item::Kind::kStep; });
      const bool drop_incoming = oldest == pending_.end();
      if (!drop_incoming) {
        buffer_bytes_ -= oldest->bytes;
        pending_.erase(oldest);
      }
      ++dropped_total_;
      if (dropped_iteration_++ == 0) {
        Emit(state_, absl::StrFormat("iteration %d: step buffer full (%.1f MiB): dropping the oldest unsent steps",
                                     trainer_iteration_, options_.max_buffer_bytes / 1048576.0));
      }
      if (drop_incoming) return absl::OkStatus();
    }
  }
  buffer_bytes_ += item.bytes;
  pending_.push_back(std::move(item));
  ++handed_over_;
  return absl::OkStatus();
}

absl::StatusOr<IterationMasks> PrunerClient::EndIteration(int iteration,
                                                         const std::vector<absl::Span<const float>>& weights) {
  Item weights_item;
  if (options_.wants_weights) {
    if (weights.size() != prunable_numel_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("pruner client: the method needs ", prunable_numel_.size(),
                                                     " weight tensors, got ", weights.size()));
    }
    auto payload = std::make_shared<Payload>();
    int64_t bytes = 64;
    for (size_t p = 0; p < weights.size(); ++p) {
      if (static_cast<int64_t>(weights[p].size()) != prunable_numel_[p]) {
        return absl::InvalidArgumentError(absl::StrCat("pruner client: weight tensor ", p, " has ", weights[p].size(),
                                                       " values, the layout says ", prunable_numel_[p]));
      }
      payload->values.emplace_back(weights[p].begin(), weights[p].end());
      bytes += prunable_numel_[p] * static_cast<int64_t>(sizeof(float));
    }
    weights_item.kind = Item::Kind::kWeights;
    weights_item.payload = std::move(payload);
    weights_item.bytes = bytes;
  }

  absl::MutexLock lock(&mu_);
  if (!permanent_error_.ok()) {
    return GiveUp(permanent_error_.code(), std::string(permanent_error_.message()));
  }
  if (dropped_iteration_ > 0) {
    Emit(state_, absl::StrCat("iteration ", iteration, ": ", dropped_iteration_, " steps were not sent"));
  }
  if (options_.wants_weights) {
    buffer_bytes_ += weights_item.bytes;
    pending_.push_back(std::move(weights_item));
  }
  Item end;
  end.kind = Item::Kind::kEnd;
  pending_.push_back(std::move(end));
  end_queued_ = true;
  // A pruner that was down may be back: try at once rather than after the backoff, and judge the grace
  // period only after that attempt.
  kick_ = !connected_;
  const int64_t attempts_at_start = attempts_;
  const absl::Time wait_start = absl::Now();

  auto changed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return (current_round_ > 0 && latest_.pruner_iteration >= current_round_) || !permanent_error_.ok() ||
           !fit_error_.empty();
  };
  while (true) {
    if (current_round_ > 0 && !stale_ && latest_.pruner_iteration >= current_round_) {
      IterationMasks result = latest_;
      end_queued_ = false;
      DropRoundItems();
      return result;
    }
    if (current_round_ > 0 && !stale_ && total_iterations_ > 0 && current_round_ > total_iterations_ &&
        latest_.pruner_iteration > 0) {
      // The pruner finished its schedule earlier (its iterations lag after skips): keep its final masks.
      IterationMasks result = latest_;
      end_queued_ = false;
      DropRoundItems();
      return result;
    }
    if (Cancelled()) {
      end_queued_ = false;
      return absl::CancelledError(absl::StrCat("run cancelled while waiting for the masks of iteration ", iteration));
    }
    if (!permanent_error_.ok()) return GiveUp(permanent_error_.code(), std::string(permanent_error_.message()));
    if (!fit_error_.empty()) {
      if (fit_errors_ > kMaxFitRetries) {
        return GiveUp(absl::StatusCode::kAborted, absl::StrCat("the pruner's fit failed ", fit_errors_,
                                                               " times; last: ", fit_error_));
      }
      fit_error_.clear();
      CancelStream();  // reconnect and resend the iteration's end
    }
    if (stream_failures_ >= kMaxStreamFailures) {
      return GiveUp(absl::StatusCode::kUnavailable,
                    absl::StrCat("the pruner stream failed ", stream_failures_, " times in a row (last error: ",
                                 last_error_, ")"));
    }
    const absl::Time now = absl::Now();
    if (UnreachableBeyondGrace(attempts_at_start, wait_start)) {
      return GiveUp(absl::StatusCode::kUnavailable,
                    absl::StrCat("pruner at ", options_.address, " unreachable for ",
                                 absl::FormatDuration(options_.grace),
                                 last_error_.empty() ? "" : absl::StrCat(" (last error: ", last_error_, ")")));
    }
    // Silence counts from the later of the pruner's last message and the start of this wait: a pruner that
    // had nothing to say during a long training phase (no collection steps, e.g. magnitude pruning) is not
    // silent, and it gets the whole grace period for the fit.
    if (connected_ && now - std::max(last_heard_, wait_start) >= options_.grace) {
      return GiveUp(absl::StatusCode::kDeadlineExceeded,
                    absl::StrCat("pruner at ", options_.address, " sent nothing for ",
                                 absl::FormatDuration(options_.grace), " while the masks were awaited"));
    }
    mu_.AwaitWithTimeout(absl::Condition(&changed), kPollPeriod);
  }
}

bool PrunerClient::UnreachableBeyondGrace(int64_t attempts_at_start, absl::Time wait_start) const {
  const absl::Time now = absl::Now();
  if (connected_ || now - disconnected_since_ < options_.grace) return false;
  return attempts_ > attempts_at_start || now - wait_start >= options_.grace;
}

absl::StatusOr<IterationMasks> PrunerClient::GiveUp(absl::StatusCode code, const std::string& reason) {
  end_queued_ = false;
  const std::string message = absl::StrCat("iteration ", trainer_iteration_, ": no masks: ", reason);
  if (!options_.fail_open) {
    Emit(v1::PRUNER_STATE_FAILED, absl::StrCat(message, "; failing the run (strict policy)"));
    return absl::Status(code, absl::StrCat(message, " (strict policy)"));
  }
  IterationMasks skipped;
  skipped.skipped = true;
  skipped.skip_reason = reason;
  skipped.pruner_iteration = latest_.pruner_iteration;
  if (!session_id_.empty() && permanent_error_.ok()) stale_ = true;
  DropRoundItems();
  CancelStream();
  Emit(permanent_error_.ok() ? v1::PRUNER_STATE_FAILED : state_,
       absl::StrCat(message, "; keeping the previous masks (fail-open)"));
  return skipped;
}

void PrunerClient::Close(bool complete) {
  {
    absl::MutexLock lock(&mu_);
    if (!started_) return;
    close_requested_ = true;
    close_complete_ = complete;
    if (!connected_) CancelStream();  // nothing to deliver: stop any connection attempt
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), kCloseTimeout + absl::Seconds(1))) {
      shutdown_ = true;
      CancelStream();
    }
  }
  if (connection_thread_.joinable()) connection_thread_.join();
}

bool PrunerClient::WaitForAcks(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return CountSteps() == 0 || !permanent_error_.ok(); };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  return CountSteps() == 0;
}

LinkStats PrunerClient::stats() const {
  absl::MutexLock lock(&mu_);
  LinkStats stats;
  stats.session_id = session_id_;
  stats.state = state_;
  stats.steps_sent = steps_sent_;
  stats.acked_step = acked_step_;
  stats.unacked_steps = CountSteps();
  stats.reconnects = reconnects_;
  stats.dropped_steps = dropped_total_;
  return stats;
}

}  // namespace gcprune::trainer
