// The fake Pruner for client tests (see fake_pruner.h).
#include "tests/trainer_service/service/fake_pruner.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/tensor_chunk.h"
#include "pruner_service/service/wire_format.h"

namespace gcprune::trainer::testing {
namespace {

namespace v1 = ::gcprune::v1;

v1::SessionResponse MaskMessage(const pruner::PruningSession& session, const pruner::MaskSet& masks, int iteration,
                                int64_t apply_at_step) {
  v1::SessionResponse response;
  v1::MaskUpdate* update = response.mutable_mask_update();
  update->set_iteration(iteration);
  update->set_apply_at_step(apply_at_step);
  for (int p = 0; p < masks.num_tensors(); ++p) {
    const pruner::MaskTensor& tensor = masks.tensor(p);
    v1::TensorMask* run = update->add_masks();
    run->set_tensor_index(static_cast<uint32_t>(tensor.layout_index));
    run->set_offset(0);
    run->set_num_elements(tensor.numel);
    run->set_bits(masks.PackTensor(p));
    v1::TensorSparsity* summary = update->add_tensors();
    summary->set_tensor_index(static_cast<uint32_t>(tensor.layout_index));
    summary->set_name(tensor.name);
    summary->set_num_elements(tensor.numel);
    summary->set_kept(tensor.numel - masks.num_pruned(p));
    summary->set_pruned(masks.num_pruned(p));
    summary->set_sparsity(masks.sparsity(p));
  }
  const bool v1_method = session.config().method == pruner::Method::kCausalV1;
  update->set_last_part(true);
  update->set_global_sparsity(masks.sparsity());
  update->set_target_sparsity(v1_method ? std::nan("") : session.schedule().TargetSparsity(iteration));
  update->set_kept(masks.num_kept());
  update->set_pruned(masks.num_pruned());
  update->set_final_iteration(iteration >= session.total_iterations());
  return response;
}

grpc::Status Fail(grpc::StatusCode code, const std::string& message) { return grpc::Status(code, message); }

}  // namespace

void FakePruner::set_knobs(const Knobs& knobs) {
  absl::MutexLock lock(&mu_);
  knobs_ = knobs;
}

int FakePruner::opens() const {
  absl::MutexLock lock(&mu_);
  return opens_;
}

int FakePruner::resumes_with_restart() const {
  absl::MutexLock lock(&mu_);
  return restarts_;
}

int64_t FakePruner::duplicate_steps() const {
  absl::MutexLock lock(&mu_);
  return duplicates_;
}

int64_t FakePruner::stored_steps() const {
  absl::MutexLock lock(&mu_);
  return stored_;
}

std::vector<pruner::MaskSet> FakePruner::masks() const {
  absl::MutexLock lock(&mu_);
  if (sessions_.empty()) return {};
  return sessions_.begin()->second.history;
}

grpc::Status FakePruner::Session(grpc::ServerContext*,
                                 grpc::ServerReaderWriter<v1::SessionResponse, v1::SessionRequest>* stream) {
  v1::SessionRequest request;
  if (!stream->Read(&request) || !request.has_open()) {
    return Fail(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be open");
  }
  std::string id;
  Knobs knobs;
  v1::SessionResponse opened;
  std::vector<v1::SessionResponse> latest;
  {
    absl::MutexLock lock(&mu_);
    knobs = knobs_;
    ++opens_;
    if (!knobs.refuse_open.ok()) return knobs.refuse_open;
    if (request.open().has_create()) {
      absl::StatusOr<pruner::Layout> layout = pruner::LayoutFromProto(request.open().create().layout(), "layout");
      if (!layout.ok()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string(layout.status().message()));
      absl::StatusOr<pruner::MethodConfig> config =
          pruner::MethodConfigFromProto(request.open().create().method(), "method");
      if (!config.ok()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string(config.status().message()));
      absl::StatusOr<std::unique_ptr<pruner::PruningSession>> session = pruner::PruningSession::Create(*layout, *config);
      if (!session.ok()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string(session.status().message()));
      id = absl::StrCat("fake-", sessions_.size() + 1);
      sessions_[id].session = *std::move(session);
    } else {
      id = request.open().resume().session_id();
      auto it = sessions_.find(id);
      if (it == sessions_.end()) return Fail(grpc::StatusCode::NOT_FOUND, absl::StrCat("session ", id, " not found"));
      if (request.open().resume().restart_iteration()) {
        ++restarts_;
        // A session rebuilt from its metadata has no samples: the open iteration starts over.
        absl::StatusOr<std::unique_ptr<pruner::PruningSession>> fresh =
            pruner::PruningSession::Deserialize(it->second.session->Serialize());
        if (!fresh.ok()) return Fail(grpc::StatusCode::INTERNAL, std::string(fresh.status().message()));
        it->second.session = *std::move(fresh);
      }
    }
    FakeSession& s = sessions_[id];
    v1::Opened* o = opened.mutable_opened();
    o->set_session_id(id);
    o->set_next_step(s.next_step);
    o->set_completed_iterations(s.session->completed_iterations());
    o->set_total_iterations(s.session->total_iterations());
    o->set_state(s.session->finished() ? v1::SESSION_STATE_COMPLETED : v1::SESSION_STATE_COLLECTING);
    o->set_wants_steps(s.session->wants_steps());
    o->set_wants_weights(s.session->wants_weights());
    o->set_max_message_bytes(4 << 20);
    o->set_recommended_chunk_elements(knobs.recommended_chunk_elements);
    if (!s.history.empty()) {
      const int done = static_cast<int>(s.history.size());
      latest.push_back(MaskMessage(*s.session, s.history.back(), done, s.last_step_of_iteration + 1));
    }
  }
  if (!stream->Write(opened)) return grpc::Status::CANCELLED;
  for (const v1::SessionResponse& mask : latest) stream->Write(mask);
  if (knobs.silent) {
    while (stream->Read(&request)) {
    }
    return grpc::Status::OK;
  }

  bool step_open = false;
  bool duplicate = false;
  int64_t open_step = -1;
  // Whatever ends the stream, a step left open is dropped, as a real pruner does.
  struct AbortOpenStep {
    FakePruner* fake;
    const std::string& id;
    const bool& open;
    const bool& duplicate;
    ~AbortOpenStep() {
      absl::MutexLock lock(&fake->mu_);
      if (open && !duplicate) fake->sessions_[id].session->AbortStep();
    }
  } abort_open_step{this, id, step_open, duplicate};
  while (stream->Read(&request)) {
    v1::SessionResponse response;
    bool reply = false;
    absl::Duration delay = absl::ZeroDuration();
    {
      absl::MutexLock lock(&mu_);
      FakeSession& s = sessions_[id];
      switch (request.kind_case()) {
        case v1::SessionRequest::kStepBegin: {
          const v1::StepBegin& begin = request.step_begin();
          if (step_open) return Fail(grpc::StatusCode::FAILED_PRECONDITION, "a step is open");
          if (begin.step() > s.next_step) {
            return Fail(grpc::StatusCode::OUT_OF_RANGE, absl::StrCat("step ", begin.step(), ": expected ", s.next_step));
          }
          duplicate = begin.step() < s.next_step;
          if (duplicate) {
            ++duplicates_;
          } else {
            if (begin.iteration() != s.session->current_iteration()) {
              return Fail(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("step_begin.iteration: ", begin.iteration(), ", collecting ",
                                       s.session->current_iteration()));
            }
            pruner::StepHeader header;
            header.step = begin.step();
            header.loss_before = begin.loss_before();
            header.loss_after = begin.loss_after();
            header.lr = begin.learning_rate();
            const absl::Status status = s.session->BeginStep(header);
            if (!status.ok()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string(status.message()));
          }
          step_open = true;
          open_step = begin.step();
          break;
        }
        case v1::SessionRequest::kStepChunk: {
          if (!step_open || request.step_chunk().step() != open_step) {
            return Fail(grpc::StatusCode::FAILED_PRECONDITION, "chunk for a step that is not open");
          }
          if (duplicate) break;
          for (const v1::TensorChunk& chunk : request.step_chunk().deltas()) {
            std::vector<float> values;
            absl::Status status = common::DecodeChunkValues(chunk, &values);
            if (status.ok()) status = s.session->AddDeltas(static_cast<int>(chunk.tensor_index()), chunk.offset(), values);
            if (!status.ok()) {
              s.session->AbortStep();
              return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string(status.message()));
            }
          }
          break;
        }
        case v1::SessionRequest::kStepCommit: {
          if (!step_open || request.step_commit().step() != open_step) {
            return Fail(grpc::StatusCode::FAILED_PRECONDITION, "commit for a step that is not open");
          }
          if (!duplicate) {
            if (knobs_.break_after_commits == 0) {
              knobs_.break_after_commits = -1;
              s.session->AbortStep();
              return Fail(grpc::StatusCode::UNAVAILABLE, "fake pruner: simulated crash");
            }
            if (knobs_.break_after_commits > 0) --knobs_.break_after_commits;
            const absl::Status status = s.session->EndStep();
            if (!status.ok()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, std::string(status.message()));
            ++s.next_step;
            ++stored_;
          }
          step_open = false;
          response.mutable_ack()->set_step(s.next_step - 1);
          reply = true;
          delay = knobs_.ack_delay;
          break;
        }
        case v1::SessionRequest::kIterationWeights: {
          const pruner::MaskSet& mask = s.session->masks();
          if (s.weights.empty()) {
            for (int p = 0; p < mask.num_tensors(); ++p) s.weights.emplace_back(mask.tensor(p).numel, 0.0f);
          }
          for (const v1::TensorChunk& chunk : request.iteration_weights().weights()) {
            std::vector<float> values;
            if (!common::DecodeChunkValues(chunk, &values).ok()) {
              return Fail(grpc::StatusCode::INVALID_ARGUMENT, "bad weights");
            }
            int p = 0;
            while (p < mask.num_tensors() && mask.tensor(p).layout_index != static_cast<int>(chunk.tensor_index())) ++p;
            if (p == mask.num_tensors()) return Fail(grpc::StatusCode::INVALID_ARGUMENT, "weights of an unknown tensor");
            std::copy(values.begin(), values.end(), s.weights[p].begin() + chunk.offset());
          }
          break;
        }
        case v1::SessionRequest::kIterationEnd: {
          const int iteration = request.iteration_end().iteration();
          if (iteration <= s.session->completed_iterations()) {
            response = MaskMessage(*s.session, s.history[iteration - 1], iteration, s.last_step_of_iteration + 1);
            reply = true;
            break;
          }
          if (iteration != s.session->current_iteration()) {
            return Fail(grpc::StatusCode::FAILED_PRECONDITION, absl::StrCat("iteration_end.iteration: ", iteration));
          }
          pruner::TensorWeights weights;
          for (const std::vector<float>& w : s.weights) weights.emplace_back(w.data(), w.size());
          absl::StatusOr<pruner::IterationResult> result = s.session->EndIteration(weights);
          if (!result.ok()) return Fail(grpc::StatusCode::FAILED_PRECONDITION, std::string(result.status().message()));
          s.weights.clear();
          s.history.push_back(result->masks);
          s.last_step_of_iteration = request.iteration_end().last_step();
          response = MaskMessage(*s.session, result->masks, iteration, s.last_step_of_iteration + 1);
          reply = true;
          break;
        }
        case v1::SessionRequest::kClose:
          return grpc::Status::OK;
        default:
          return Fail(grpc::StatusCode::INVALID_ARGUMENT, "empty or repeated open request");
      }
    }
    if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    if (reply && !stream->Write(response)) break;
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "stream ended");
}

}  // namespace gcprune::trainer::testing
