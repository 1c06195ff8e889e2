// Benchmarks of the pruner server over loopback at LeNet-5 scale (N = 430,500 prunable weights):
// step-to-ack latency (StepBegin, chunks of 262,144 elements, StepCommit, then the Ack; float32 or
// bfloat16 on the wire, with and without --fsync) and iteration-end-to-mask latency with T = 235 samples.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/server_bootstrap.h"
#include "common/tensor_chunk.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "pruner_service/causal/splitmix64.h"
#include "pruner_service/service/fit_executor.h"
#include "pruner_service/service/pruner_service.h"
#include "pruner_service/service/session_manager.h"
#include "pruner_service/service/state_directory.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;

// LeNet-5 (Caffe variant): conv1 20×1×5×5, conv2 50×20×5×5, fc1 500×800, fc2 10×500, with biases.
v1::Layout LeNet5() {
  v1::Layout layout;
  auto add = [&layout](const char* name, std::vector<int64_t> shape, bool prunable) {
    v1::TensorSpec* t = layout.add_tensors();
    t->set_name(name);
    for (int64_t d : shape) t->add_shape(d);
    t->set_prunable(prunable);
  };
  add("conv1.weight", {20, 1, 5, 5}, true);
  add("conv1.bias", {20}, false);
  add("conv2.weight", {50, 20, 5, 5}, true);
  add("conv2.bias", {50}, false);
  add("fc1.weight", {500, 800}, true);
  add("fc1.bias", {500}, false);
  add("fc2.weight", {10, 500}, true);
  add("fc2.bias", {10}, false);
  return layout;
}

// The whole server in this process on 127.0.0.1 over a temporary state directory.
class Server {
 public:
  explicit Server(bool fsync) {
    std::string pattern = (std::filesystem::temp_directory_path() / "gcprune-pruner-bench-XXXXXX").string();
    root_ = mkdtemp(pattern.data());
    dir_ = *StateDirectory::Open(root_, fsync);
    executor_ = *FitExecutor::Create(1);
    SessionManagerOptions options;
    options.session.core.default_memory_budget_bytes = int64_t{2} << 30;
    options.session.core.solver_threads = 2;
    manager_ = *SessionManager::Create(dir_.get(), executor_.get(), options);
    service_ = std::make_unique<PrunerService>(manager_.get());
    common::ServerOptions server_options;
    server_options.host = "127.0.0.1";
    server_options.port = 0;
    server_ = *common::GrpcServer::Start(server_options, {{service_.get(), v1::Pruner::service_full_name()}});
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    stub_ = v1::Pruner::NewStub(
        grpc::CreateCustomChannel(server_->local_address(), grpc::InsecureChannelCredentials(), args));
  }
  ~Server() {
    stub_.reset();
    server_->Shutdown(absl::ZeroDuration());
    server_->Wait();
    executor_->Shutdown();
    server_.reset();
    manager_.reset();
    dir_.reset();
    std::filesystem::remove_all(root_);
  }
  v1::Pruner::Stub* stub() { return stub_.get(); }

 private:
  std::string root_;
  std::unique_ptr<StateDirectory> dir_;
  std::unique_ptr<FitExecutor> executor_;
  std::unique_ptr<SessionManager> manager_;
  std::unique_ptr<PrunerService> service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<v1::Pruner::Stub> stub_;
};

// A session stream with the messages of one step prepared once (only the step numbers change), so the
// measurement is the transport and the server, not the client's encoding.
class Stream {
 public:
  Stream(v1::Pruner::Stub* stub, v1::ValueEncoding encoding, const v1::MethodConfig& method) {
    stream_ = stub->Session(&context_);
    v1::SessionRequest open;
    *open.mutable_open()->mutable_create()->mutable_layout() = LeNet5();
    *open.mutable_open()->mutable_create()->mutable_method() = method;
    stream_->Write(open);
    v1::SessionResponse response;
    stream_->Read(&response);
    opened_ = response.opened();

    std::vector<std::pair<uint32_t, int64_t>> tensors;
    int64_t n = 0;
    for (int i = 0; i < opened_.layout().tensors_size(); ++i) {
      const v1::TensorSpec& t = opened_.layout().tensors(i);
      if (!t.prunable()) continue;
      int64_t numel = 1;
      for (int64_t d : t.shape()) numel *= d;
      tensors.emplace_back(static_cast<uint32_t>(i), numel);
      offsets_[static_cast<uint32_t>(i)] = n;
      n += numel;
    }
    SplitMix64 rng(42);
    std::vector<float> deltas(static_cast<size_t>(n));
    for (float& d : deltas) d = static_cast<float>(static_cast<double>(rng.Next() >> 40) * 0x1.0p-24 - 0.5) * 1e-3f;
    const auto plan = *common::PlanChunkMessages(tensors, opened_.recommended_chunk_elements());
    for (const auto& message : plan) {
      v1::SessionRequest request;
      for (const common::ChunkSpan& span : message) {
        const float* values = deltas.data() + offsets_[span.tensor_index] + span.offset;
        common::EncodeChunk(span.tensor_index, span.offset, absl::MakeConstSpan(values, static_cast<size_t>(span.count)),
                            encoding, /*as_bytes=*/encoding != v1::VALUE_ENCODING_FLOAT32,
                            request.mutable_step_chunk()->add_deltas())
            .IgnoreError();
      }
      chunks_.push_back(std::move(request));
    }
    for (const v1::SessionRequest& c : chunks_) bytes_per_step_ += static_cast<int64_t>(c.ByteSizeLong());
  }

  ~Stream() {
    context_.TryCancel();
    v1::SessionResponse response;
    while (stream_->Read(&response)) {
    }
    stream_->Finish().ok();
  }

  // Sends one step and waits for its ack; returns the latency.
  absl::Duration Step(int iteration) {
    const int64_t step = next_step_++;
    const absl::Time start = absl::Now();
    v1::SessionRequest begin;
    v1::StepBegin* b = begin.mutable_step_begin();
    b->set_step(step);
    b->set_iteration(iteration);
    b->set_loss_before(2.3 - 1e-4 * static_cast<double>(step));
    b->set_loss_after(2.3 - 1e-4 * static_cast<double>(step) - 1e-3 * static_cast<double>(step % 7));
    b->set_learning_rate(1e-3);
    stream_->Write(begin);
    for (v1::SessionRequest& chunk : chunks_) {
      chunk.mutable_step_chunk()->set_step(step);
      stream_->Write(chunk);
    }
    v1::SessionRequest commit;
    commit.mutable_step_commit()->set_step(step);
    stream_->Write(commit);
    v1::SessionResponse response;
    while (stream_->Read(&response)) {
      if (response.has_ack() && response.ack().step() >= step) break;
    }
    return absl::Now() - start;
  }

  // Ends the iteration and waits for the last mask part; returns the latency.
  absl::Duration EndIteration(int iteration) {
    const absl::Time start = absl::Now();
    v1::SessionRequest end;
    end.mutable_iteration_end()->set_iteration(iteration);
    end.mutable_iteration_end()->set_last_step(next_step_ - 1);
    stream_->Write(end);
    v1::SessionResponse response;
    while (stream_->Read(&response)) {
      if (response.has_progress() && response.progress().event() == v1::FIT_EVENT_FINISHED) {
        fit_epochs_ = response.progress().epoch();
      }
      if (response.has_mask_update() && response.mask_update().last_part()) break;
    }
    return absl::Now() - start;
  }

  int64_t bytes_per_step() const { return bytes_per_step_; }
  int fit_epochs() const { return fit_epochs_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>> stream_;
  v1::Opened opened_;
  std::map<uint32_t, int64_t> offsets_;
  std::vector<v1::SessionRequest> chunks_;
  int64_t bytes_per_step_ = 0;
  int64_t next_step_ = 0;
  int fit_epochs_ = 0;
};

double Percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const size_t i = std::min(values.size() - 1, static_cast<size_t>(q * static_cast<double>(values.size())));
  return values[i];
}

v1::MethodConfig CausalV2() {
  v1::MethodConfig method;
  method.set_method(v1::METHOD_CAUSAL_V2);
  method.set_seed(314159);
  return method;
}

// Arguments: 0 = float32 values / 1 = bfloat16 data on the wire; fsync 0/1.
void BM_StepToAck(benchmark::State& state) {
  const v1::ValueEncoding encoding = state.range(0) == 0 ? v1::VALUE_ENCODING_FLOAT32 : v1::VALUE_ENCODING_BFLOAT16;
  Server server(state.range(1) != 0);
  Stream stream(server.stub(), encoding, CausalV2());
  for (int i = 0; i < 5; ++i) stream.Step(1);  // warm-up: connection, allocations
  std::vector<double> ms;
  for (auto _ : state) {
    const absl::Duration latency = stream.Step(1);
    state.SetIterationTime(absl::ToDoubleSeconds(latency));
    ms.push_back(absl::ToDoubleMilliseconds(latency));
  }
  state.counters["p50_ms"] = Percentile(ms, 0.50);
  state.counters["p99_ms"] = Percentile(ms, 0.99);
  state.counters["wire_MB_per_step"] = static_cast<double>(stream.bytes_per_step()) / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * stream.bytes_per_step());
}
BENCHMARK(BM_StepToAck)
    ->ArgNames({"bf16", "fsync"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Iterations(200)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// One causal-v2 iteration end (LassoSGD defaults, 2 solver threads) with T = 235 samples of N = 430,500.
void BM_IterationEndToMask(benchmark::State& state) {
  Server server(false);
  Stream stream(server.stub(), v1::VALUE_ENCODING_FLOAT32, CausalV2());
  int iteration = 1;
  std::vector<double> seconds;
  for (auto _ : state) {
    for (int t = 0; t < 235; ++t) stream.Step(iteration);
    const absl::Duration latency = stream.EndIteration(iteration);
    state.SetIterationTime(absl::ToDoubleSeconds(latency));
    seconds.push_back(absl::ToDoubleSeconds(latency));
    ++iteration;
  }
  state.counters["fit_epochs"] = stream.fit_epochs();
}
BENCHMARK(BM_IterationEndToMask)->Iterations(2)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gcprune::pruner

BENCHMARK_MAIN();
