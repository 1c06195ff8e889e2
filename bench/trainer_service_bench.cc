// Collection-phase throughput of LeNet-5 at batch 256: the engine's causal step alone (in process) against
// the same steps streamed through PrunerClient to a real gcprune-pruner over loopback, which stores and
// acknowledges every step (430,500 deltas, 1.7 MB per step). The pruner is started from
// $GCPRUNE_BINARY_DIR/pruner_service/gcprune-pruner (or the build tree's) with a temporary state directory.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "trainer_service/engine/causal_step.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/service/pruner_client.h"
#include "trainer_service/service/run_data.h"
#include "trainer_service/service/run_protocol.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

constexpr int kBatch = 256;
constexpr int kSteps = 60;  // collection steps per benchmark run (~100 MB of deltas)

// The gcprune-pruner child process, started once for the whole benchmark.
struct PrunerProcess {
  pid_t pid = -1;
  std::string address;
  std::string state_dir;

  bool Start() {
    const char* dir = std::getenv("GCPRUNE_BINARY_DIR");
    const std::string binary = dir != nullptr ? absl::StrCat(dir, "/pruner_service/gcprune-pruner") : GCPRUNE_PRUNER_BINARY;
    char pattern[] = "/tmp/gcprune-bench-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return false;
    state_dir = pattern;
    int fds[2];
    if (::pipe(fds) != 0) return false;
    pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, STDERR_FILENO);
      ::close(fds[0]);
      const std::string state = absl::StrCat("--state_dir=", state_dir);
      ::execl(binary.c_str(), binary.c_str(), "--host=127.0.0.1", "--port=0", state.c_str(), "--shutdown_grace_seconds=0",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    FILE* out = ::fdopen(fds[0], "r");
    char line[256];
    while (out != nullptr && std::fgets(line, sizeof(line), out) != nullptr) {
      const std::string text(line);
      const size_t at = text.find("listening on ");
      if (at == std::string::npos) continue;
      address = text.substr(at + 13);
      while (!address.empty() && (address.back() == '\n' || address.back() == '\r')) address.pop_back();
      return true;  // stdout stays open (the pipe is never closed) so later writes cannot SIGPIPE it
    }
    return false;
  }

  ~PrunerProcess() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    std::error_code ignored;
    if (!state_dir.empty()) std::filesystem::remove_all(state_dir, ignored);
  }
};

PrunerProcess* g_pruner = nullptr;

// CPU seconds used so far by process `pid` (user + system), from /proc/<pid>/stat; 0 if unreadable.
double ProcessCpuSeconds(pid_t pid) {
  FILE* file = std::fopen(absl::StrCat("/proc/", pid, "/stat").c_str(), "r");
  if (file == nullptr) return 0.0;
  char buffer[1024];
  const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  std::fclose(file);
  buffer[n] = '\0';
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const char* rest = std::strrchr(buffer, ')');
  if (rest == nullptr) return 0.0;
  unsigned long utime = 0, stime = 0;
  // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  if (std::sscanf(rest + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return 0.0;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Random N(0, 1) images with random labels, as engine_bench: the cost of a step does not depend on the data.
const Dataset& Data() {
  static const Dataset* data = new Dataset(MakeSyntheticDataset(kBatch * kSteps, {1, 28, 28}, 10, 3));
  return *data;
}

std::unique_ptr<Model> LeNet() {
  absl::StatusOr<ModelSpec> spec = PresetModelSpec("lenet5");
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*spec, /*seed=*/1);
  if (!model.ok()) std::abort();
  return *std::move(model);
}

void BM_CollectInProcess(benchmark::State& state) {
  std::unique_ptr<Model> model = LeNet();
  auto stepper = CausalStepper::Create(model.get(), {});
  CausalSample sample;
  std::vector<float> images;
  std::vector<int32_t> labels;
  BatchIterator batches(Data(), kBatch, /*shuffle=*/true, 1, 0);
  for (auto _ : state) {
    if (batches.Next(&images, &labels) == 0) {
      batches.Rewind();
      batches.Next(&images, &labels);
    }
    if (!(*stepper)->StepV2(images, labels, &sample).ok()) state.SkipWithError("causal step failed");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_CollectWithPruner(benchmark::State& state) {
  std::unique_ptr<Model> model = LeNet();
  auto stepper = CausalStepper::Create(model.get(), {});
  PrunerClientOptions options;
  options.address = g_pruner->address;
  options.layout = LayoutOfModel(*model);
  options.method.set_method(v1::METHOD_CAUSAL_V2);
  options.method.mutable_schedule()->set_iterations(1);
  options.label = "trainer_service_bench";
  absl::StatusOr<std::unique_ptr<PrunerClient>> client = PrunerClient::Create(options);
  if (!client.ok() || !(*client)->Start().ok()) {
    state.SkipWithError("cannot create the pruner client");
    return;
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while ((*client)->stats().state != v1::PRUNER_STATE_CONNECTED && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  (void)(*client)->BeginIteration(1);
  CausalSample sample;
  std::vector<float> images;
  std::vector<int32_t> labels;
  BatchIterator batches(Data(), kBatch, /*shuffle=*/true, 1, 0);
  for (auto _ : state) {
    if (batches.Next(&images, &labels) == 0) {
      batches.Rewind();
      batches.Next(&images, &labels);
    }
    if (!(*stepper)->StepV2(images, labels, &sample).ok()) state.SkipWithError("causal step failed");
    StepRecord step;
    step.loss_before = sample.loss_before;
    step.loss_after = sample.loss_after;
    step.learning_rate = 1e-3;
    step.deltas = &sample.deltas;
    if (!(*client)->AddStep(step).ok()) state.SkipWithError("AddStep failed");
  }
  // Outside the timed loop: how long the pruner needs to store what is still in flight.
  const absl::Time drain_start = absl::Now();
  const bool drained = (*client)->WaitForAcks(absl::Seconds(60));
  state.counters["drain_ms"] = absl::ToDoubleMilliseconds(absl::Now() - drain_start);
  if (!drained) state.SkipWithError("steps were not acknowledged");
  const LinkStats stats = (*client)->stats();
  state.counters["steps_sent"] = static_cast<double>(stats.steps_sent);
  state.SetItemsProcessed(state.iterations() * kBatch);
  (*client)->Close(false);
  // Free the pruner's memory for the next run.
  auto stub = v1::Pruner::NewStub(grpc::CreateChannel(g_pruner->address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::DeleteSessionRequest request;
  request.set_session_id(stats.session_id);
  request.set_force(true);
  v1::DeleteSessionResponse response;
  (void)stub->DeleteSession(&context, request, &response);
}

// Both kinds of steps alternately in blocks of 10 on one model, so that both see the same machine load
// (other processes on a shared machine make separate runs drift). A pruner block's time includes waiting
// until the pruner has stored and acknowledged all of its steps. Counters: milliseconds per step of each
// kind and the overhead of streaming in percent.
void BM_CollectInterleaved(benchmark::State& state) {
  constexpr int kBlock = 10;
  std::unique_ptr<Model> model = LeNet();
  auto stepper = CausalStepper::Create(model.get(), {});
  PrunerClientOptions options;
  options.address = g_pruner->address;
  options.layout = LayoutOfModel(*model);
  options.method.set_method(v1::METHOD_CAUSAL_V2);
  options.method.mutable_schedule()->set_iterations(1);
  options.label = "trainer_service_bench interleaved";
  absl::StatusOr<std::unique_ptr<PrunerClient>> client = PrunerClient::Create(options);
  if (!client.ok() || !(*client)->Start().ok()) {
    state.SkipWithError("cannot create the pruner client");
    return;
  }
  (void)(*client)->BeginIteration(1);
  CausalSample sample;
  std::vector<float> images;
  std::vector<int32_t> labels;
  BatchIterator batches(Data(), kBatch, /*shuffle=*/true, 1, 0);
  auto next_batch = [&] {
    if (batches.Next(&images, &labels) == 0) {
      batches.Rewind();
      batches.Next(&images, &labels);
    }
  };
  double alone_seconds = 0.0;
  double streamed_seconds = 0.0;
  double alone_cpu = 0.0;     // this process (training threads, client threads)
  double streamed_cpu = 0.0;
  double pruner_cpu = 0.0;    // the pruner process, during the streamed blocks
  int64_t blocks = 0;
  const pid_t self = ::getpid();
  for (auto _ : state) {
    absl::Time start = absl::Now();
    double cpu = ProcessCpuSeconds(self);
    for (int i = 0; i < kBlock; ++i) {
      next_batch();
      (void)(*stepper)->StepV2(images, labels, &sample);
    }
    alone_seconds += absl::ToDoubleSeconds(absl::Now() - start);
    alone_cpu += ProcessCpuSeconds(self) - cpu;
    start = absl::Now();
    cpu = ProcessCpuSeconds(self);
    const double pruner_start = ProcessCpuSeconds(g_pruner->pid);
    for (int i = 0; i < kBlock; ++i) {
      next_batch();
      (void)(*stepper)->StepV2(images, labels, &sample);
      StepRecord step;
      step.loss_before = sample.loss_before;
      step.loss_after = sample.loss_after;
      step.learning_rate = 1e-3;
      step.deltas = &sample.deltas;
      if (!(*client)->AddStep(step).ok()) state.SkipWithError("AddStep failed");
    }
    if (!(*client)->WaitForAcks(absl::Seconds(60))) state.SkipWithError("steps were not acknowledged");
    streamed_seconds += absl::ToDoubleSeconds(absl::Now() - start);
    streamed_cpu += ProcessCpuSeconds(self) - cpu;
    pruner_cpu += ProcessCpuSeconds(g_pruner->pid) - pruner_start;
    ++blocks;
  }
  const double steps = static_cast<double>(blocks * kBlock);
  state.counters["alone_ms"] = 1e3 * alone_seconds / steps;
  state.counters["streamed_ms"] = 1e3 * streamed_seconds / steps;
  state.counters["overhead_pct"] = 100.0 * (streamed_seconds / alone_seconds - 1.0);
  // CPU per step: the trainer process alone and streaming, and the pruner process (clock ticks of 10 ms).
  state.counters["cpu_alone_ms"] = 1e3 * alone_cpu / steps;
  state.counters["cpu_streamed_ms"] = 1e3 * streamed_cpu / steps;
  state.counters["pruner_cpu_ms"] = 1e3 * pruner_cpu / steps;
  const std::string session = (*client)->stats().session_id;
  (*client)->Close(false);
  auto stub = v1::Pruner::NewStub(grpc::CreateChannel(g_pruner->address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::DeleteSessionRequest request;
  request.set_session_id(session);
  request.set_force(true);
  v1::DeleteSessionResponse response;
  (void)stub->DeleteSession(&context, request, &response);
}

BENCHMARK(BM_CollectInProcess)->Iterations(kSteps)->Repetitions(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CollectWithPruner)->Iterations(kSteps)->Repetitions(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CollectInterleaved)->Iterations(10)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gcprune::trainer

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  gcprune::trainer::PrunerProcess pruner;
  if (!pruner.Start()) {
    std::fprintf(stderr, "trainer_service_bench: cannot start gcprune-pruner (set GCPRUNE_BINARY_DIR)\n");
    return 1;
  }
  gcprune::trainer::g_pruner = &pruner;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
