// Speed of the training engine on the presets: a training step (SGD momentum 0.9, lr 0.01, label smoothing
// 0.1), the causal step of METHOD.md §3.1 (plain SGD, lr 1e-3, second forward pass, Δθ) and evaluation, on a
// fixed random batch. Names BM_TrainStep/<model>/<batch>, BM_CausalStep/<model>/<batch>, BM_Eval/<model>/1000
// (bench/compare_pytorch.py parses them). Counters: items = images; GFLOPS = achieved rate from the model's
// FLOP count (2 per multiply-accumulate; training: forward, weight gradients, input gradients of every weight
// layer but the first; causal: training plus one forward; eval: forward). Times are wall-clock.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "trainer_service/engine/causal_step.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/engine/optimizer.h"
#include "trainer_service/engine/trainer.h"

namespace gcprune::trainer {
namespace {

constexpr float kTrainLr = 0.01f;
constexpr float kTrainMomentum = 0.9f;
constexpr float kCollectLr = 1e-3f;

struct Fixture {
  std::unique_ptr<Model> model;
  std::vector<float> images;
  std::vector<int32_t> labels;
};

// A fresh preset (seed 0) and a fixed batch: images N(0, 1), labels uniform in [0, 10). Reports the error
// through `state` and returns false if anything fails.
bool Prepare(benchmark::State& state, const std::string& preset, int batch, Fixture* f) {
  absl::StatusOr<ModelSpec> spec = PresetModelSpec(preset);
  absl::StatusOr<std::unique_ptr<Model>> model =
      spec.ok() ? Model::Create(*spec, /*seed=*/0) : absl::StatusOr<std::unique_ptr<Model>>(spec.status());
  if (!model.ok()) {
    state.SkipWithError(model.status().ToString().c_str());
    return false;
  }
  f->model = *std::move(model);
  std::mt19937 gen(0);
  std::normal_distribution<float> normal;
  f->images.resize(static_cast<size_t>(batch) * f->model->input_numel());
  for (float& v : f->images) v = normal(gen);
  f->labels.resize(batch);
  for (int32_t& l : f->labels) l = static_cast<int32_t>(gen() % 10);
  return true;
}

void SetCounters(benchmark::State& state, int batch, double flops_per_image) {
  const double images = static_cast<double>(state.iterations()) * batch;
  state.SetItemsProcessed(static_cast<int64_t>(images));
  state.counters["GFLOPS"] = benchmark::Counter(images * flops_per_image / 1e9, benchmark::Counter::kIsRate);
}

void BM_TrainStep(benchmark::State& state, const std::string& preset, int batch) {
  Fixture f;
  if (!Prepare(state, preset, batch, &f)) return;
  SgdOptions sgd_options;
  sgd_options.momentum = kTrainMomentum;
  absl::StatusOr<std::unique_ptr<Optimizer>> sgd = CreateSgd(f.model->parameters(), sgd_options);
  if (!sgd.ok()) return state.SkipWithError(sgd.status().ToString().c_str());
  for (auto _ : state) {
    absl::StatusOr<float> loss = TrainStep(f.model.get(), sgd->get(), f.images, f.labels, kTrainLr);
    if (!loss.ok()) return state.SkipWithError(loss.status().ToString().c_str());
    benchmark::DoNotOptimize(*loss);
  }
  SetCounters(state, batch, static_cast<double>(f.model->TrainingFlopsPerExample()));
}

void BM_CausalStep(benchmark::State& state, const std::string& preset, int batch) {
  Fixture f;
  if (!Prepare(state, preset, batch, &f)) return;
  CausalStepOptions options;
  options.lr = kCollectLr;
  absl::StatusOr<std::unique_ptr<CausalStepper>> stepper = CausalStepper::Create(f.model.get(), options);
  if (!stepper.ok()) return state.SkipWithError(stepper.status().ToString().c_str());
  CausalSample sample;
  for (auto _ : state) {
    absl::Status status = (*stepper)->StepV2(f.images, f.labels, &sample);
    if (!status.ok()) return state.SkipWithError(status.ToString().c_str());
    benchmark::DoNotOptimize(sample.deltas.data());
  }
  SetCounters(state, batch,
              static_cast<double>(f.model->TrainingFlopsPerExample() + 2 * f.model->ForwardMacsPerExample()));
}

void BM_Eval(benchmark::State& state, const std::string& preset, int batch) {
  Fixture f;
  if (!Prepare(state, preset, batch, &f)) return;
  Dataset data;
  data.size = batch;
  data.channels = 1;
  data.height = 28;
  data.width = 28;
  data.num_classes = 10;
  data.images = f.images;
  data.labels = f.labels;
  for (auto _ : state) {
    absl::StatusOr<EvalResult> result = f.model->Evaluate(data, batch);
    if (!result.ok()) return state.SkipWithError(result.status().ToString().c_str());
    benchmark::DoNotOptimize(result->accuracy);
  }
  SetCounters(state, batch, 2.0 * static_cast<double>(f.model->ForwardMacsPerExample()));
}

void RegisterAll() {
  for (const char* model : {"mlp", "lenet5"}) {
    for (int batch : {64, 256}) {
      benchmark::RegisterBenchmark(("BM_TrainStep/" + std::string(model) + "/" + std::to_string(batch)).c_str(),
                                   BM_TrainStep, std::string(model), batch)
          ->UseRealTime();
    }
  }
  for (const char* model : {"mlp", "lenet5"}) {
    for (int batch : {64, 256}) {
      benchmark::RegisterBenchmark(("BM_CausalStep/" + std::string(model) + "/" + std::to_string(batch)).c_str(),
                                   BM_CausalStep, std::string(model), batch)
          ->UseRealTime();
    }
  }
  for (const char* model : {"mlp", "lenet5"}) {
    benchmark::RegisterBenchmark(("BM_Eval/" + std::string(model) + "/1000").c_str(), BM_Eval, std::string(model),
                                 1000)
        ->UseRealTime();
  }
}

}  // namespace
}  // namespace gcprune::trainer

int main(int argc, char** argv) {
  gcprune::trainer::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
