// Causal core benchmarks at LeNet-5 scale (T = 235 samples, N = 430,500 features): appending a chunked
// sample, one streaming pass over the store (the memory-bandwidth yardstick), one LassoSGD V2 epoch and
// a full fit, for float32 and bfloat16 storage, with the store's peak memory against the raw sample bytes.
#include <algorithm>
#include <chrono>
#include <string>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "pruner_service/causal/lasso_kernels.h"
#include "pruner_service/causal/lasso_sgd.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/sample_store.h"
#include "pruner_service/causal/splitmix64.h"

namespace gcprune::pruner {
namespace {

constexpr int kSamples = 235;          // one Fashion-MNIST epoch at batch 256
constexpr int64_t kChunkValues = 1 << 18;  // 1 MiB of float32 per chunk message
constexpr double kLr = 1e-3;

Layout LeNet5() {
  absl::StatusOr<Layout> layout = Layout::Create({{"conv1.weight", {20, 1, 5, 5}, true},
                                                  {"conv1.bias", {20}, false},
                                                  {"conv2.weight", {50, 20, 5, 5}, true},
                                                  {"conv2.bias", {50}, false},
                                                  {"fc1.weight", {500, 800}, true},
                                                  {"fc1.bias", {500}, false},
                                                  {"fc2.weight", {10, 500}, true},
                                                  {"fc2.bias", {10}, false}});
  if (!layout.ok()) std::abort();
  return *layout;
}

// Realistic parameter changes Δθ = lr · g: g is Student-t(3) (heavy-tailed) times a per-parameter
// scale spread over two orders of magnitude, drawn from a precomputed table for speed.
class DeltaSource {
 public:
  explicit DeltaSource(int64_t n) : rng_(20241203) {
    std::mt19937 gen(7);
    std::student_t_distribution<float> t3(3.0f);
    std::normal_distribution<float> log_scale(0.0f, 1.0f);
    table_.resize(1 << 16);
    for (float& v : table_) v = t3(gen);
    scale_.resize(static_cast<size_t>(n));
    for (float& s : scale_) s = 0.05f * std::exp(log_scale(gen));
  }
  // Fills `out` with one step's deltas and returns the step's loss change y (≈ −0.01 with noise,
  // larger drops for larger steps).
  double Step(std::vector<float>* out) {
    out->resize(scale_.size());
    double energy = 0.0;
    for (size_t k = 0; k < scale_.size(); ++k) {
      const float g = table_[rng_.Next() >> 48] * scale_[k];
      (*out)[k] = static_cast<float>(kLr) * g;
      energy += static_cast<double>(g) * g;
    }
    const double noise = static_cast<double>(table_[rng_.Next() >> 48]) * 0.002;
    return -0.01 * energy / expected_energy() + noise;
  }

 private:
  double expected_energy() const {
    if (expected_energy_ == 0.0) {
      for (float s : scale_) expected_energy_ += 3.0 * static_cast<double>(s) * s;  // Var(t3) = 3
    }
    return expected_energy_;
  }
  SplitMix64 rng_;
  std::vector<float> table_;
  std::vector<float> scale_;
  mutable double expected_energy_ = 0.0;
};

// Appends one step as V2 samples arrive on the wire: per tensor, in chunks of kChunkValues.
void AppendStep(SampleStore* store, const Layout& layout, const std::vector<float>& deltas, double y) {
  if (!store->BeginSample().ok()) std::abort();
  const float scale = static_cast<float>(1.0 / (kLr * kLr));
  for (int i = layout.num_tensors() - 1; i >= 0; --i) {  // tensors in reverse order, as a backward pass would
    const int64_t base = layout.feature_offset(i);
    if (base < 0) continue;
    const int64_t numel = layout.tensor(i).numel();
    for (int64_t off = 0; off < numel; off += kChunkValues) {
      const size_t count = static_cast<size_t>(std::min(kChunkValues, numel - off));
      if (!store->AppendSquaredDeltas(i, off, absl::MakeConstSpan(deltas.data() + base + off, count), scale).ok()) {
        std::abort();
      }
    }
  }
  if (!store->CommitSample(y).ok()) std::abort();
}

// The full store of one collection epoch, built once per encoding.
SampleStore& FullStore(SampleEncoding encoding) {
  static std::unique_ptr<SampleStore> stores[2];
  std::unique_ptr<SampleStore>& store = stores[encoding == SampleEncoding::kFloat32 ? 0 : 1];
  if (store == nullptr) {
    const Layout layout = LeNet5();
    store = std::move(SampleStore::Create(layout, SampleStoreOptions{encoding, int64_t{4} << 30, 1})).value();
    DeltaSource source(layout.num_features());
    std::vector<float> deltas;
    for (int t = 0; t < kSamples; ++t) {
      const double y = source.Step(&deltas);
      AppendStep(store.get(), layout, deltas, y);
    }
  }
  return *store;
}

SampleEncoding EncodingOf(const benchmark::State& state) {
  return state.range(0) == 0 ? SampleEncoding::kFloat32 : SampleEncoding::kBfloat16;
}

void BM_AppendSample(benchmark::State& state) {
  const SampleEncoding encoding = EncodingOf(state);
  const Layout layout = LeNet5();
  auto store = std::move(SampleStore::Create(layout, SampleStoreOptions{encoding, int64_t{4} << 30, 1})).value();
  DeltaSource source(layout.num_features());
  std::vector<float> deltas;
  const double y = source.Step(&deltas);
  for (auto _ : state) {
    if (store->num_rows() == kSamples) {
      state.PauseTiming();
      store->Clear();
      state.ResumeTiming();
    }
    AppendStep(store.get(), layout, deltas, y);
  }
  state.SetBytesProcessed(state.iterations() * layout.num_features() * static_cast<int64_t>(sizeof(float)));
  state.SetLabel(std::string(SampleEncodingName(encoding)));
}

void BM_StreamingPass(benchmark::State& state) {
  const SampleStore& store = FullStore(EncodingOf(state));
  const int threads = static_cast<int>(state.range(1));
  for (auto _ : state) benchmark::DoNotOptimize(lasso_kernels::StreamingSum(store, threads));
  state.SetBytesProcessed(state.iterations() * store.raw_bytes());
  state.counters["peak_over_raw"] =
      static_cast<double>(store.peak_allocated_bytes()) / static_cast<double>(store.raw_bytes());
  state.counters["raw_MB"] = static_cast<double>(store.raw_bytes()) / 1e6;
  state.counters["peak_MB"] = static_cast<double>(store.peak_allocated_bytes()) / 1e6;
  state.SetLabel(std::string(SampleEncodingName(store.encoding())));
}

// CPU time of the calling thread in seconds: with one thread the work runs there, and unlike wall time
// it does not count the time other processes on this shared machine hold the core.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Timing {
  double wall = 1e30;  // best of the runs, seconds
  double cpu = 1e30;   // best thread CPU time of the runs, seconds
  void Add(double w, double c) {
    wall = std::min(wall, w);
    cpu = std::min(cpu, c);
  }
};

// Best of ten streaming passes with `threads` threads.
Timing StreamingTiming(const SampleStore& store, int threads) {
  Timing timing;
  for (int i = 0; i < 10; ++i) {
    const double cpu0 = ThreadCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(lasso_kernels::StreamingSum(store, threads));
    timing.Add(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
               ThreadCpuSeconds() - cpu0);
  }
  return timing;
}

void BM_LassoEpoch(benchmark::State& state) {
  const SampleStore& store = FullStore(EncodingOf(state));
  const std::vector<uint8_t> active(static_cast<size_t>(store.num_cols()), 1);
  LassoSgdV2Options options;
  options.max_epochs = 1;
  options.seed = 314159;
  options.num_threads = static_cast<int>(state.range(1));
  Timing epoch;
  for (auto _ : state) {
    const double cpu0 = ThreadCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<LassoSgdV2Result> result = FitLassoSgdV2(store, store.targets(), active, options);
    epoch.Add(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              ThreadCpuSeconds() - cpu0);
    if (!result.ok()) state.SkipWithError(std::string(result.status().message()).c_str());
    benchmark::DoNotOptimize(result);
  }
  const Timing stream = StreamingTiming(store, options.num_threads);
  state.SetBytesProcessed(state.iterations() * store.raw_bytes());
  state.counters["best_epoch_ms"] = epoch.wall * 1e3;
  state.counters["stream_ms"] = stream.wall * 1e3;
  state.counters["epoch_over_stream"] = epoch.wall / stream.wall;
  if (options.num_threads == 1) {  // the CPU-time ratio is meaningful only when all work is on this thread
    state.counters["epoch_cpu_ms"] = epoch.cpu * 1e3;
    state.counters["stream_cpu_ms"] = stream.cpu * 1e3;
    state.counters["cpu_epoch_over_stream"] = epoch.cpu / stream.cpu;
  }
  state.SetLabel(std::string(SampleEncodingName(store.encoding())) + ", " + std::to_string(options.num_threads) +
                 " thread(s)");
}

void BM_LassoFit(benchmark::State& state) {
  const SampleStore& store = FullStore(EncodingOf(state));
  const std::vector<uint8_t> active(static_cast<size_t>(store.num_cols()), 1);
  LassoSgdV2Options options;
  options.seed = 314159;
  int epochs = 0;
  int best_epoch = 0;
  for (auto _ : state) {
    absl::StatusOr<LassoSgdV2Result> result = FitLassoSgdV2(store, store.targets(), active, options);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      break;
    }
    epochs = result->report.epochs_run;
    best_epoch = result->report.best_epoch;
  }
  state.counters["epochs"] = epochs;
  state.counters["best_epoch"] = best_epoch;
  state.SetLabel(std::string(SampleEncodingName(store.encoding())));
}

BENCHMARK(BM_AppendSample)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(0.5);
// Arguments: encoding (0 = float32, 1 = bfloat16), threads.
BENCHMARK(BM_StreamingPass)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_LassoEpoch)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_LassoFit)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace gcprune::pruner

BENCHMARK_MAIN();
