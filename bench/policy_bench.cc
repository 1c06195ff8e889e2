// Pruning policy at LeNet-5 scale (N = 430,500 prunable weights in 4 tensors): the whole mask computation
// of an iteration (scores → keys → selection → masks), its parts, bitmask packing and session metadata.
#include <cmath>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "pruner_service/causal/baselines.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/mask_set.h"
#include "pruner_service/causal/pruning_session.h"
#include "pruner_service/causal/ranking.h"
#include "pruner_service/causal/schedule.h"
#include "pruner_service/causal/splitmix64.h"

namespace gcprune::pruner {
namespace {

Layout LeNet5() {
  return *Layout::Create({{"conv1.weight", {20, 1, 5, 5}, true},
                          {"conv1.bias", {20}, false},
                          {"conv2.weight", {50, 20, 5, 5}, true},
                          {"conv2.bias", {50}, false},
                          {"fc1.weight", {500, 800}, true},
                          {"fc1.bias", {500}, false},
                          {"fc2.weight", {10, 500}, true},
                          {"fc2.bias", {10}, false}});
}

// Coefficients spread over several decades, as LassoSGD's β after a few epochs.
std::vector<float> Scores(int64_t n, uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> beta(static_cast<size_t>(n));
  for (float& b : beta) {
    const double u = (static_cast<double>(rng.Next() >> 11) + 0.5) * 0x1.0p-53;
    b = static_cast<float>(std::pow(10.0, -8.0 + 6.0 * u));
  }
  return beta;
}

// The mask before iteration j of the default cubic schedule (P = 0.9, n = 10), pruned by the same scores.
MaskSet MaskBefore(int j, const std::vector<float>& beta) {
  MaskSet mask(LeNet5());
  const Schedule schedule = *Schedule::Create(ScheduleKind::kCubic, 0.9, 10);
  for (int i = 1; i < j; ++i) {
    const int64_t count = *schedule.PruneCount(i, mask.num_features(), mask.num_pruned());
    const Selection s = *SelectSmallest(beta, true, mask, count, RankScope::kGlobal, {});
    (void)mask.Prune(s.features);
  }
  return mask;
}

// Everything an iteration does after the fit: |β| keys, exact count, selection, mask update.
void BM_MaskComputation(benchmark::State& state) {
  const int j = static_cast<int>(state.range(0));
  const RankScope scope = state.range(1) ? RankScope::kPerLayer : RankScope::kGlobal;
  const std::vector<float> beta = Scores(430500, 1);
  const std::vector<float> fresh = Scores(430500, 2);
  const MaskSet before = MaskBefore(j, beta);
  const Schedule schedule = *Schedule::Create(ScheduleKind::kCubic, 0.9, 10);
  int64_t pruned = 0;
  for (auto _ : state) {
    state.PauseTiming();
    MaskSet mask = before;
    state.ResumeTiming();
    const int64_t count = *schedule.PruneCount(j, mask.num_features(), mask.num_pruned());
    const Selection s = *SelectToPrune(OrderKeys(fresh, /*absolute=*/true), mask, count, scope, {});
    (void)mask.Prune(s.features);
    pruned = static_cast<int64_t>(s.features.size());
    benchmark::DoNotOptimize(mask.num_pruned());
  }
  state.counters["pruned"] = static_cast<double>(pruned);
  state.counters["kept_before"] = static_cast<double>(before.num_kept());
}
BENCHMARK(BM_MaskComputation)
    ->ArgNames({"iteration", "per_layer"})
    ->Args({1, 0})
    ->Args({5, 0})
    ->Args({10, 0})
    ->Args({1, 1})
    ->Unit(benchmark::kMillisecond);

// Global selection when the layer maximum binds (fc1 capped at 50 %), so the share moves in rounds.
void BM_SelectWithBindingMaximum(benchmark::State& state) {
  const std::vector<float> beta = Scores(430500, 3);
  const MaskSet mask(LeNet5());
  LayerLimits limits;
  limits.max_sparsity = 0.5;
  for (auto _ : state) {
    const Selection s = *SelectSmallest(beta, true, mask, 215250, RankScope::kGlobal, limits);
    benchmark::DoNotOptimize(s.features.data());
  }
}
BENCHMARK(BM_SelectWithBindingMaximum)->Unit(benchmark::kMillisecond);

void BM_MagnitudeKeys(benchmark::State& state) {
  const MaskSet mask(LeNet5());
  std::vector<std::vector<float>> weights;
  for (int p = 0; p < mask.num_tensors(); ++p) weights.push_back(Scores(mask.tensor(p).numel, 10 + p));
  TensorWeights spans(weights.begin(), weights.end());
  for (auto _ : state) benchmark::DoNotOptimize(MagnitudeKeys(mask, spans)->data());
}
BENCHMARK(BM_MagnitudeKeys)->Unit(benchmark::kMillisecond);

void BM_RandomKeys(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(RandomKeys(430500, 7, 3).data());
}
BENCHMARK(BM_RandomKeys)->Unit(benchmark::kMillisecond);

// Packing every tensor's bitmask (the MaskUpdate payload, 53,813 bytes) and unpacking it again.
void BM_PackUnpack(benchmark::State& state) {
  const MaskSet mask = MaskBefore(6, Scores(430500, 4));
  for (auto _ : state) {
    MaskSet copy(LeNet5());
    for (int p = 0; p < mask.num_tensors(); ++p) (void)copy.UnpackTensor(p, mask.PackTensor(p), true);
    benchmark::DoNotOptimize(copy.num_pruned());
  }
  state.SetBytesProcessed(state.iterations() * mask.PackedSize());
}
BENCHMARK(BM_PackUnpack)->Unit(benchmark::kMillisecond);

// A whole magnitude iteration end of a session: keys from the weights, selection, masks, report.
void BM_SessionMagnitudeIteration(benchmark::State& state) {
  MethodConfig config;
  config.method = Method::kMagnitudeGlobal;
  const MaskSet shape(LeNet5());
  std::vector<std::vector<float>> weights;
  for (int p = 0; p < shape.num_tensors(); ++p) weights.push_back(Scores(shape.tensor(p).numel, 20 + p));
  const TensorWeights spans(weights.begin(), weights.end());
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<PruningSession> session = *PruningSession::Create(LeNet5(), config);
    state.ResumeTiming();
    benchmark::DoNotOptimize(session->EndIteration(spans)->masks.num_pruned());
  }
}
BENCHMARK(BM_SessionMagnitudeIteration)->Unit(benchmark::kMillisecond);

// "Samples in, masks out" at LeNet-5 scale: one causal-v2 iteration of T = 235 steps (one epoch of
// Fashion-MNIST at batch 256), timing EndIteration (LassoSGD fit, selection, masks, report) only.
void BM_SessionCausalV2Iteration(benchmark::State& state) {
  MethodConfig config;
  config.sample_encoding = state.range(0) ? SampleEncoding::kBfloat16 : SampleEncoding::kFloat32;
  const MaskSet shape(LeNet5());
  std::vector<std::vector<float>> deltas;
  for (int p = 0; p < shape.num_tensors(); ++p) deltas.push_back(std::vector<float>(shape.tensor(p).numel));
  SplitMix64 rng(5);
  double epochs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<PruningSession> session = *PruningSession::Create(LeNet5(), config);
    for (int64_t t = 0; t < 235; ++t) {
      double dl = 0;
      for (std::vector<float>& d : deltas) {
        for (float& v : d) {
          const uint64_t r = rng.Next();
          v = (r & 7) ? 0.0f : 1e-6f * static_cast<float>(static_cast<int64_t>(r >> 40) - (1 << 23)) / (1 << 23);
          dl -= 1e3 * v * v;
        }
      }
      (void)session->AddStep({t, 2.0, 2.0 + dl, 1e-3}, TensorWeights(deltas.begin(), deltas.end()));
    }
    state.ResumeTiming();
    absl::StatusOr<IterationResult> r = session->EndIteration();
    epochs = r.ok() ? r->report.fit->epochs : -1;
    benchmark::DoNotOptimize(r.ok());
  }
  state.counters["epochs"] = epochs;
}
BENCHMARK(BM_SessionCausalV2Iteration)
    ->ArgName("bfloat16")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// Session metadata for durability: serialise and restore after 5 random-pruning iterations.
void BM_SessionSerializeDeserialize(benchmark::State& state) {
  MethodConfig config;
  config.method = Method::kRandom;
  std::unique_ptr<PruningSession> session = *PruningSession::Create(LeNet5(), config);
  for (int j = 0; j < 5; ++j) (void)session->EndIteration();
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string blob = session->Serialize();
    bytes = blob.size();
    benchmark::DoNotOptimize(PruningSession::Deserialize(blob)->get());
  }
  state.counters["blob_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_SessionSerializeDeserialize)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gcprune::pruner

BENCHMARK_MAIN();
