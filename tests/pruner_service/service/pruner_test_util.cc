// Implementation of the pruner test helpers (see pruner_test_util.h).
#include "tests/pruner_service/service/pruner_test_util.h"

#include <grpcpp/create_channel.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/half_float.h"
#include "common/mask_runs.h"
#include "common/tensor_chunk.h"
#include "common/status_macros.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"
#include "pruner_service/causal/pruning_session.h"
#include "pruner_service/causal/splitmix64.h"
#include "pruner_service/service/wire_format.h"

namespace gcprune::pruner::testing {
namespace {

namespace v1 = ::gcprune::v1;

// Uniform in [-1, 1).
float Uniform(SplitMix64* rng) {
  return static_cast<float>(static_cast<double>(rng->Next() >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

float RoundTo(float value, v1::ValueEncoding encoding) {
  switch (encoding) {
    case v1::VALUE_ENCODING_BFLOAT16:
      return common::Bfloat16BitsToFloat(common::FloatToBfloat16Bits(value));
    case v1::VALUE_ENCODING_FLOAT16:
      return common::Float16BitsToFloat(common::FloatToFloat16Bits(value));
    default:
      return value;
  }
}

}  // namespace

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "gcprune-pruner-test-XXXXXX").string();
  path_ = mkdtemp(pattern.data());
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

// ---------------------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<InProcessPruner>> InProcessPruner::Start(const std::string& state_dir,
                                                                        const InProcessPrunerOptions& options) {
  std::unique_ptr<InProcessPruner> pruner(new InProcessPruner());
  GCPRUNE_ASSIGN_OR_RETURN(pruner->dir_, StateDirectory::Open(state_dir, /*sync=*/false));
  GCPRUNE_ASSIGN_OR_RETURN(pruner->executor_, FitExecutor::Create(options.fit_threads));
  SessionManagerOptions manager_options = options.manager;
  manager_options.session.max_message_bytes = options.max_receive_message_bytes;
  GCPRUNE_ASSIGN_OR_RETURN(pruner->manager_,
                           SessionManager::Create(pruner->dir_.get(), pruner->executor_.get(), manager_options));
  pruner->service_ = std::make_unique<PrunerService>(pruner->manager_.get());
  common::ServerOptions server_options;
  server_options.host = "127.0.0.1";
  server_options.port = 0;
  server_options.max_receive_message_bytes = options.max_receive_message_bytes;
  server_options.shutdown_grace = absl::Seconds(2);
  GCPRUNE_ASSIGN_OR_RETURN(
      pruner->server_,
      common::GrpcServer::Start(server_options, {{pruner->service_.get(), v1::Pruner::service_full_name()}}));
  SessionManager* manager = pruner->manager_.get();
  pruner->server_->AddShutdownHook([manager] { manager->Shutdown(); });
  return pruner;
}

InProcessPruner::~InProcessPruner() { Shutdown(); }

void InProcessPruner::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  server_->Shutdown(absl::Seconds(2));
  server_->Wait();
  executor_->Shutdown();
}

std::unique_ptr<v1::Pruner::Stub> InProcessPruner::NewStub() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return v1::Pruner::NewStub(grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args));
}

// ---------------------------------------------------------------------------------------------------

SyntheticRun::SyntheticRun(v1::Layout layout, uint64_t seed, int64_t steps_per_iteration)
    : layout_(std::move(layout)), seed_(seed), steps_per_iteration_(steps_per_iteration) {
  for (int i = 0; i < layout_.tensors_size(); ++i) {
    const v1::TensorSpec& t = layout_.tensors(i);
    if (!t.prunable()) continue;
    int64_t numel = 1;
    for (int64_t d : t.shape()) numel *= d;
    prunable_.emplace_back(static_cast<uint32_t>(i), numel);
    feature_offsets_.push_back(num_features_);
    num_features_ += numel;
  }
}

v1::Layout SyntheticRun::SmallLayout() {
  v1::Layout layout;
  auto add = [&layout](const std::string& name, std::vector<int64_t> shape, bool prunable) {
    v1::TensorSpec* t = layout.add_tensors();
    t->set_name(name);
    for (int64_t d : shape) t->add_shape(d);
    t->set_prunable(prunable);
  };
  add("fc1.weight", {24, 40}, true);
  add("fc1.bias", {24}, false);
  add("fc2.weight", {10, 24}, true);
  return layout;
}

v1::Layout SyntheticRun::WideLayout(int64_t rows, int64_t cols) {
  v1::Layout layout;
  v1::TensorSpec* w = layout.add_tensors();
  w->set_name("wide.weight");
  w->add_shape(rows);
  w->add_shape(cols);
  w->set_prunable(true);
  v1::TensorSpec* b = layout.add_tensors();
  b->set_name("wide.bias");
  b->add_shape(rows);
  return layout;
}

std::vector<float> SyntheticRun::Deltas(int64_t step) const {
  SplitMix64 rng(seed_ * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step) * 0xD1B54A32D192ED03ULL + 1);
  std::vector<float> deltas(static_cast<size_t>(num_features_));
  for (int64_t k = 0; k < num_features_; ++k) {
    deltas[static_cast<size_t>(k)] = Uniform(&rng) * 1e-3f * static_cast<float>(1 + k % 7);
  }
  return deltas;
}

v1::StepBegin SyntheticRun::Begin(int64_t step, int iteration) const {
  const std::vector<float> deltas = Deltas(step);
  constexpr double kLr = 0.01;
  // Planted model: every fifth weight drives the loss change.
  double signal = 0;
  for (size_t k = 0; k < deltas.size(); k += 5) signal += static_cast<double>(deltas[k]) * deltas[k] / kLr;
  SplitMix64 rng(seed_ + static_cast<uint64_t>(step) * 7919);
  const double loss_before = 2.0 - 0.001 * static_cast<double>(step) + 0.01 * Uniform(&rng);
  v1::StepBegin begin;
  begin.set_step(step);
  begin.set_iteration(iteration);
  begin.set_loss_before(loss_before);
  begin.set_loss_after(loss_before - 3.0 * signal - 1e-4 * (1.0 + Uniform(&rng)));
  begin.set_learning_rate(kLr);
  begin.set_momentum(0.0);
  return begin;
}

std::vector<float> SyntheticRun::Weights(int iteration) const {
  SplitMix64 rng(seed_ + 1000003ULL * static_cast<uint64_t>(iteration));
  std::vector<float> weights(static_cast<size_t>(num_features_));
  for (float& w : weights) w = Uniform(&rng);
  return weights;
}

// ---------------------------------------------------------------------------------------------------

SessionClient::SessionClient(v1::Pruner::Stub* stub, absl::Duration deadline) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  stream_ = stub->Session(&context_);
}

SessionClient::~SessionClient() {
  if (!finished_) {
    context_.TryCancel();
    WaitForEnd().IgnoreError();
  }
}

absl::StatusOr<v1::Opened> SessionClient::Create(const v1::Layout& layout, const v1::MethodConfig& method,
                                                 const std::string& label) {
  v1::SessionRequest request;
  v1::NewSession* create = request.mutable_open()->mutable_create();
  *create->mutable_layout() = layout;
  *create->mutable_method() = method;
  create->set_label(label);
  Write(request);
  GCPRUNE_ASSIGN_OR_RETURN(v1::SessionResponse response, Read());
  if (!response.has_opened()) return absl::InternalError("the first response is not opened");
  return response.opened();
}

absl::StatusOr<v1::Opened> SessionClient::Resume(const std::string& session_id, bool restart_iteration) {
  v1::SessionRequest request;
  request.mutable_open()->mutable_resume()->set_session_id(session_id);
  request.mutable_open()->mutable_resume()->set_restart_iteration(restart_iteration);
  Write(request);
  GCPRUNE_ASSIGN_OR_RETURN(v1::SessionResponse response, Read());
  if (!response.has_opened()) return absl::InternalError("the first response is not opened");
  return response.opened();
}

bool SessionClient::Write(const v1::SessionRequest& request) { return !finished_ && stream_->Write(request); }

bool SessionClient::SendStep(const SyntheticRun& run, int64_t step, int iteration, const SendOptions& options) {
  v1::SessionRequest begin;
  *begin.mutable_step_begin() = run.Begin(step, iteration);
  if (!Write(begin)) return false;
  const std::vector<float> deltas = run.Deltas(step);
  absl::StatusOr<std::vector<std::vector<common::ChunkSpan>>> plan =
      common::PlanChunkMessages(run.prunable(), options.chunk_elements);
  if (!plan.ok()) return false;
  if (options.reverse_order) std::reverse(plan->begin(), plan->end());
  for (const std::vector<common::ChunkSpan>& message : *plan) {
    v1::SessionRequest request;
    v1::StepChunk* chunk = request.mutable_step_chunk();
    chunk->set_step(step);
    for (const common::ChunkSpan& span : message) {
      size_t p = 0;
      while (run.prunable()[p].first != span.tensor_index) ++p;
      const float* values = deltas.data() + run.feature_offsets()[p] + span.offset;
      if (!common::EncodeChunk(span.tensor_index, span.offset,
                               absl::MakeConstSpan(values, static_cast<size_t>(span.count)), options.encoding,
                               options.as_bytes, chunk->add_deltas())
               .ok()) {
        return false;
      }
    }
    if (!Write(request)) return false;
  }
  v1::SessionRequest commit;
  commit.mutable_step_commit()->set_step(step);
  return Write(commit);
}

bool SessionClient::SendWeights(const SyntheticRun& run, int iteration, const SendOptions& options) {
  const std::vector<float> weights = run.Weights(iteration);
  absl::StatusOr<std::vector<std::vector<common::ChunkSpan>>> plan =
      common::PlanChunkMessages(run.prunable(), options.chunk_elements);
  if (!plan.ok()) return false;
  for (const std::vector<common::ChunkSpan>& message : *plan) {
    v1::SessionRequest request;
    v1::IterationWeights* w = request.mutable_iteration_weights();
    w->set_iteration(iteration);
    for (const common::ChunkSpan& span : message) {
      size_t p = 0;
      while (run.prunable()[p].first != span.tensor_index) ++p;
      const float* values = weights.data() + run.feature_offsets()[p] + span.offset;
      if (!common::EncodeChunk(span.tensor_index, span.offset,
                               absl::MakeConstSpan(values, static_cast<size_t>(span.count)), options.encoding,
                               options.as_bytes, w->add_weights())
               .ok()) {
        return false;
      }
    }
    if (!Write(request)) return false;
  }
  return true;
}

absl::StatusOr<v1::SessionResponse> SessionClient::Read() {
  if (finished_) return final_status_.ok() ? absl::OutOfRangeError("the stream ended with OK") : final_status_;
  v1::SessionResponse response;
  if (stream_->Read(&response)) {
    if (response.has_ack()) last_ack_ = std::max(last_ack_, response.ack().step());
    history_.push_back(response);
    return response;
  }
  finished_ = true;
  final_status_ = common::FromGrpcStatus(stream_->Finish());
  return final_status_.ok() ? absl::OutOfRangeError("the stream ended with OK") : final_status_;
}

absl::Status SessionClient::WaitForAck(int64_t step) {
  while (last_ack_ < step) {
    GCPRUNE_RETURN_IF_ERROR(Read().status());
  }
  return absl::OkStatus();
}

absl::StatusOr<ReceivedMask> SessionClient::ReadMask() {
  ReceivedMask mask;
  std::map<uint32_t, std::vector<v1::TensorMask>> runs;
  for (;;) {
    GCPRUNE_ASSIGN_OR_RETURN(v1::SessionResponse response, Read());
    if (response.has_error() && response.error().code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(response.error().code()), response.error().message());
    }
    if (!response.has_mask_update()) continue;
    const v1::MaskUpdate& part = response.mask_update();
    if (mask.parts > 0 && part.iteration() != mask.iteration) {
      return absl::InternalError(absl::StrCat("mask parts of iterations ", mask.iteration, " and ", part.iteration()));
    }
    mask.iteration = part.iteration();
    mask.apply_at_step = part.apply_at_step();
    ++mask.parts;
    for (const v1::TensorMask& run : part.masks()) runs[run.tensor_index()].push_back(run);
    if (part.last_part()) {
      mask.last = part;
      break;
    }
  }
  for (auto& [tensor, tensor_runs] : runs) {
    int64_t numel = 0;
    for (const v1::TensorSparsity& t : mask.last.tensors()) {
      if (t.tensor_index() == tensor) numel = t.num_elements();
    }
    if (numel < 1) return absl::InternalError(absl::StrCat("no summary for tensor ", tensor));
    common::PackedMaskAssembler assembler(numel);
    for (const v1::TensorMask& run : tensor_runs) GCPRUNE_RETURN_IF_ERROR(assembler.Add(run));
    GCPRUNE_ASSIGN_OR_RETURN(mask.packed[tensor], assembler.Finish());
  }
  return mask;
}

absl::StatusOr<ReceivedMask> SessionClient::EndIteration(int iteration, int64_t last_step) {
  v1::SessionRequest request;
  request.mutable_iteration_end()->set_iteration(iteration);
  request.mutable_iteration_end()->set_last_step(last_step);
  Write(request);
  return ReadMask();
}

absl::Status SessionClient::WaitForEnd() {
  while (!finished_) Read().IgnoreError();
  return final_status_;
}

absl::Status SessionClient::Close(bool complete) {
  v1::SessionRequest request;
  request.mutable_close()->set_complete(complete);
  Write(request);
  return Finish();
}

absl::Status SessionClient::Finish() {
  if (!finished_) stream_->WritesDone();
  return WaitForEnd();
}

// ---------------------------------------------------------------------------------------------------

absl::StatusOr<std::vector<MaskSet>> ReferenceMasks(const SyntheticRun& run, const v1::MethodConfig& method,
                                                    int iterations, v1::ValueEncoding encoding) {
  GCPRUNE_ASSIGN_OR_RETURN(Layout layout, LayoutFromProto(run.layout(), "layout"));
  GCPRUNE_ASSIGN_OR_RETURN(MethodConfig config, MethodConfigFromProto(method, "method"));
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<PruningSession> session, PruningSession::Create(layout, config));
  std::vector<MaskSet> masks;
  for (int j = 1; j <= iterations; ++j) {
    if (session->wants_steps()) {
      for (int64_t step = run.FirstStep(j); step <= run.LastStep(j); ++step) {
        const v1::StepBegin begin = run.Begin(step, j);
        std::vector<float> deltas = run.Deltas(step);
        for (float& d : deltas) d = RoundTo(d, encoding);
        TensorWeights spans;
        for (size_t p = 0; p < run.prunable().size(); ++p) {
          spans.push_back(absl::MakeConstSpan(deltas.data() + run.feature_offsets()[p],
                                              static_cast<size_t>(run.prunable()[p].second)));
        }
        GCPRUNE_RETURN_IF_ERROR(session->AddStep(
            StepHeader{step, begin.loss_before(), begin.loss_after(), begin.learning_rate()}, spans));
      }
    }
    std::vector<float> weights;
    TensorWeights weight_spans;
    if (session->wants_weights()) {
      weights = run.Weights(j);
      for (float& w : weights) w = RoundTo(w, encoding);
      for (size_t p = 0; p < run.prunable().size(); ++p) {
        weight_spans.push_back(absl::MakeConstSpan(weights.data() + run.feature_offsets()[p],
                                                   static_cast<size_t>(run.prunable()[p].second)));
      }
    }
    GCPRUNE_ASSIGN_OR_RETURN(IterationResult result, session->EndIteration(weight_spans));
    masks.push_back(result.masks);
  }
  return masks;
}

absl::Status CompareMasks(const MaskSet& expected, const ReceivedMask& received) {
  if (static_cast<int>(received.packed.size()) != expected.num_tensors()) {
    return absl::InternalError(absl::StrCat("received masks of ", received.packed.size(), " tensors, expected ",
                                            expected.num_tensors()));
  }
  for (int p = 0; p < expected.num_tensors(); ++p) {
    const MaskTensor& t = expected.tensor(p);
    auto it = received.packed.find(static_cast<uint32_t>(t.layout_index));
    if (it == received.packed.end()) return absl::InternalError(absl::StrCat("no mask for '", t.name, "'"));
    if (it->second != expected.PackTensor(p)) {
      return absl::InternalError(absl::StrCat("the mask of '", t.name, "' differs from the in-process one"));
    }
  }
  return absl::OkStatus();
}

bool IsServing(const std::string& address, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&context, request, &response).ok() &&
         response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

v1::MethodConfig CausalV2Config(int iterations, double target, uint64_t seed) {
  v1::MethodConfig method;
  method.set_method(v1::METHOD_CAUSAL_V2);
  method.mutable_schedule()->set_iterations(iterations);
  method.mutable_schedule()->set_target_sparsity(target);
  method.set_seed(seed);
  return method;
}

}  // namespace gcprune::pruner::testing
