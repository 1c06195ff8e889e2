// Tests of the run protocol in process (no services): scheduled pruned counts, events in protocol order,
// the report, determinism, masks applied exactly as the pruning session computed them, rewinding,
// skipped iterations, cancellation and link errors. Small MLPs on synthetic data, so each run takes
// well under a second.
#include "trainer_service/service/run_protocol.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pruner_service/causal/schedule.h"
#include "tests/testing/status_matchers.h"
#include "tests/trainer_service/service/local_pruner_link.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using testing::LocalPrunerLink;
using testing::LocalPrunerRecord;

v1::RunSpec SmallSpec(v1::Method method, int iterations, double target) {
  v1::RunSpec spec;
  spec.mutable_model()->set_preset("mlp");
  spec.mutable_data()->set_name("synthetic");
  spec.mutable_data()->set_train_subset(512);
  spec.mutable_data()->set_test_subset(256);
  for (v1::PhaseSpec* phase : {spec.mutable_pretrain(), spec.mutable_train(), spec.mutable_finetune()}) {
    phase->set_epochs(1);
    phase->set_batch_size(64);
    phase->mutable_optimizer()->set_learning_rate(0.05);
    phase->mutable_optimizer()->set_momentum(0.9);
  }
  spec.mutable_finetune()->set_epochs(2);
  spec.mutable_collection()->set_batch_size(128);
  spec.mutable_method()->set_method(method);
  spec.mutable_method()->mutable_schedule()->set_iterations(iterations);
  spec.mutable_method()->mutable_schedule()->set_target_sparsity(target);
  spec.mutable_pruner()->set_address("in-process");
  spec.set_seed(2024);
  return spec;
}

struct Outcome {
  absl::Status status;
  std::shared_ptr<LocalPrunerRecord> pruner = std::make_shared<LocalPrunerRecord>();
  std::unique_ptr<RunRecord> record;
  std::vector<std::vector<std::vector<uint8_t>>> applied;  // the model's masks after each iteration
  std::vector<std::vector<std::vector<float>>> weights;    // the model's prunable weights after each iteration
};

std::vector<std::vector<uint8_t>> ModelMasks(const Model& model) {
  std::vector<std::vector<uint8_t>> masks;
  for (const Parameter* param : const_cast<Model&>(model).prunable_parameters()) {
    std::vector<uint8_t> keep(static_cast<size_t>(param->numel), 1);
    if (param->mask != nullptr) keep.assign(param->mask, param->mask + param->numel);
    masks.push_back(std::move(keep));
  }
  return masks;
}

// Runs `spec` in process; `make_link` defaults to a LocalPrunerLink.
Outcome RunInProcess(const v1::RunSpec& spec, PruningLinkFactory make_link = nullptr,
                     PretrainCache* pretrain_cache = nullptr) {
  Outcome outcome;
  absl::StatusOr<RunPlan> plan = ResolveRunSpec(spec, {});
  EXPECT_TRUE(plan.ok()) << plan.status();
  DatasetCache cache;
  absl::StatusOr<RunData> data = cache.Load(plan->data);
  EXPECT_TRUE(data.ok()) << data.status();
  outcome.record = std::make_unique<RunRecord>("run-test", 1, spec, plan->iterations, 100000);
  outcome.record->MarkRunning();
  if (!make_link) {
    auto pruner = outcome.pruner;
    const v1::MethodConfig method = plan->method;
    make_link = [pruner, method](const v1::Layout& layout) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
      auto link = LocalPrunerLink::Create(layout, method, pruner);
      if (!link.ok()) return link.status();
      return std::unique_ptr<PruningLink>(*std::move(link));
    };
  }
  ProtocolOptions options;
  options.progress_interval = absl::Milliseconds(1);
  options.pretrain_cache = pretrain_cache;
  options.on_masks_applied = [&outcome](int, const Model& model) {
    outcome.applied.push_back(ModelMasks(model));
    std::vector<std::vector<float>> weights;
    for (const Parameter* param : const_cast<Model&>(model).prunable_parameters()) {
      weights.emplace_back(param->data, param->data + param->numel);
    }
    outcome.weights.push_back(std::move(weights));
  };
  outcome.status = RunProtocol(*plan, *data, make_link, outcome.record.get(), options);
  return outcome;
}

std::vector<v1::RunEvent> Events(const RunRecord& record) {
  std::vector<v1::RunEvent> events;
  for (int64_t after = 0;;) {
    std::optional<v1::RunEvent> next = record.events()->Next(after);
    if (!next.has_value()) break;
    after = next->sequence();
    events.push_back(*std::move(next));
  }
  return events;
}

TEST(RunProtocolTest, CausalV2PrunesTheScheduledCountsAndReportsEachIteration) {
  const Outcome run = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 3, 0.5));
  ASSERT_OK(run.status);
  const v1::RunReport report = run.record->GetReport();
  constexpr int64_t kWeights = 32360;
  EXPECT_EQ(report.prunable_weights(), kWeights);
  auto schedule = pruner::Schedule::Create(pruner::ScheduleKind::kCubic, 0.5, 3);
  ASSERT_TRUE(schedule.ok());
  ASSERT_EQ(report.iterations_size(), 3);
  for (int j = 1; j <= 3; ++j) {
    const v1::IterationResult& result = report.iterations(j - 1);
    SCOPED_TRACE(j);
    const int64_t expected = schedule->TargetPrunedCount(j, kWeights, 0);
    EXPECT_EQ(result.iteration(), j);
    EXPECT_NEAR(result.target_sparsity(), schedule->TargetSparsity(j), 1e-12);
    EXPECT_DOUBLE_EQ(result.achieved_sparsity(), static_cast<double>(expected) / kWeights);
    int64_t pruned = 0;
    for (const v1::TensorSparsity& tensor : result.tensors()) pruned += tensor.pruned();
    EXPECT_EQ(pruned, expected);
    EXPECT_EQ(result.num_steps(), 4);  // 512 examples, batch 128
    EXPECT_FALSE(result.skipped());
    EXPECT_GE(result.test_accuracy_after_prune(), 0.0);
    EXPECT_LE(result.test_accuracy_after_prune(), 1.0);
  }
  EXPECT_EQ(run.pruner->steps, 12);
  ASSERT_EQ(report.tensors_size(), 3);
  EXPECT_EQ(report.tensors(0).name(), "fc1.weight");
  EXPECT_EQ(report.finetune().epochs(), 2);
  EXPECT_GE(report.finetune().best_test_accuracy(), report.finetune().last_test_accuracy());
  EXPECT_GT(report.pretrain_test_accuracy(), 0.2);  // the synthetic classes are easy
  EXPECT_EQ(report.timings_size(), 5);
  EXPECT_GT(report.total_seconds(), 0.0);
  const v1::Run state = run.record->GetRun();
  EXPECT_EQ(state.phase(), v1::PHASE_DONE);
  EXPECT_DOUBLE_EQ(state.sparsity(), report.iterations(2).achieved_sparsity());
}

TEST(RunProtocolTest, EventsFollowTheProtocolOrder) {
  const Outcome run = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.5));
  ASSERT_OK(run.status);
  std::vector<std::string> phases;
  int masks_applied = 0;
  int64_t expected_sequence = 1;
  for (const v1::RunEvent& event : Events(*run.record)) {
    EXPECT_EQ(event.sequence(), expected_sequence++);
    EXPECT_EQ(event.run_id(), "run-test");
    if (event.has_phase_changed()) {
      phases.push_back(absl::StrCat(v1::Phase_Name(event.phase_changed().phase()), "/",
                                    event.phase_changed().iteration()));
    }
    if (event.has_masks_applied()) {
      ++masks_applied;
      EXPECT_FALSE(event.masks_applied().skipped());
      EXPECT_EQ(event.masks_applied().tensors_size(), 3);
    }
  }
  EXPECT_THAT(phases, ::testing::ElementsAre("PHASE_PRETRAIN/0", "PHASE_COLLECT/1", "PHASE_PRUNE/1", "PHASE_TRAIN/2",
                                             "PHASE_COLLECT/2", "PHASE_PRUNE/2", "PHASE_FINETUNE/2"));
  EXPECT_EQ(masks_applied, 2);
}

TEST(RunProtocolTest, SameSeedSameMasksAndTheModelCarriesThePrunersMasks) {
  const Outcome first = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.7));
  const Outcome second = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.7));
  ASSERT_OK(first.status);
  ASSERT_OK(second.status);
  ASSERT_EQ(first.pruner->masks.size(), 2u);
  EXPECT_EQ(first.pruner->masks, second.pruner->masks);
  for (size_t j = 0; j < 2; ++j) EXPECT_EQ(first.applied[j], testing::KeepBytes(first.pruner->masks[j]));
  // Pruned weights are exactly zero.
  for (size_t p = 0; p < first.weights[1].size(); ++p) {
    for (size_t k = 0; k < first.weights[1][p].size(); ++k) {
      if (first.applied[1][p][k] == 0) {
        ASSERT_EQ(first.weights[1][p][k], 0.0f);
      }
    }
  }
}

TEST(RunProtocolTest, AnIdenticalPretrainingIsReusedBitForBit) {
  PretrainCache cache(int64_t{64} << 20);
  const Outcome repeated = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.7));
  const Outcome first = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.7), nullptr, &cache);
  const Outcome reused = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.7), nullptr, &cache);
  ASSERT_OK(repeated.status);
  ASSERT_OK(first.status);
  ASSERT_OK(reused.status);
  EXPECT_FALSE(first.record->GetReport().has_pretrain_reused());
  EXPECT_EQ(cache.size(), 1);
  const v1::RunReport report = reused.record->GetReport();
  ASSERT_TRUE(report.has_pretrain_reused());
  EXPECT_EQ(report.pretrain_reused().source_run_id(), "run-test");
  EXPECT_EQ(report.pretrain_reused().epochs(), 1);
  EXPECT_GT(report.pretrain_reused().seconds_saved(), 0.0);
  // The run continues exactly as one that pre-trained itself: same accuracies, masks and weights.
  const v1::RunReport reference = repeated.record->GetReport();
  EXPECT_EQ(report.pretrain_test_accuracy(), reference.pretrain_test_accuracy());
  EXPECT_EQ(reused.pruner->masks, repeated.pruner->masks);
  EXPECT_EQ(reused.weights, repeated.weights);
  EXPECT_EQ(report.finetune().last_test_accuracy(), reference.finetune().last_test_accuracy());
  EXPECT_EQ(report.finetune().last_test_loss(), reference.finetune().last_test_loss());
  // The pre-training phase is announced with no epochs.
  bool announced = false;
  for (const v1::RunEvent& event : Events(*reused.record)) {
    if (event.has_phase_changed() && event.phase_changed().phase() == v1::PHASE_PRETRAIN) {
      announced = true;
      EXPECT_EQ(event.phase_changed().epochs(), 0);
    }
    EXPECT_FALSE(event.has_epoch_finished() && event.epoch_finished().phase() == v1::PHASE_PRETRAIN);
  }
  EXPECT_TRUE(announced);
}

TEST(RunProtocolTest, PretrainingIsReusedOnlyWhenItIsTheSame) {
  PretrainCache cache(int64_t{64} << 20);
  ASSERT_OK(RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 1, 0.5), nullptr, &cache).status);
  // Another method with the same loss reuses it; another seed, learning rate or loss does not.
  const Outcome magnitude = RunInProcess(SmallSpec(v1::METHOD_MAGNITUDE_GLOBAL, 1, 0.5), nullptr, &cache);
  ASSERT_OK(magnitude.status);
  EXPECT_TRUE(magnitude.record->GetReport().has_pretrain_reused());
  v1::RunSpec seed = SmallSpec(v1::METHOD_CAUSAL_V2, 1, 0.5);
  seed.set_seed(2025);
  v1::RunSpec lr = SmallSpec(v1::METHOD_CAUSAL_V2, 1, 0.5);
  lr.mutable_pretrain()->mutable_optimizer()->set_learning_rate(0.04);
  v1::RunSpec smoothing = SmallSpec(v1::METHOD_CAUSAL_V2, 1, 0.5);
  smoothing.set_label_smoothing(0.0);
  v1::RunSpec fresh = SmallSpec(v1::METHOD_CAUSAL_V2, 1, 0.5);
  fresh.set_fresh_pretraining(true);
  for (const v1::RunSpec& spec : {seed, lr, smoothing, fresh}) {
    const Outcome run = RunInProcess(spec, nullptr, &cache);
    ASSERT_OK(run.status);
    EXPECT_FALSE(run.record->GetReport().has_pretrain_reused()) << spec.ShortDebugString();
  }
  EXPECT_EQ(cache.size(), 4);  // the first, and the seed, learning-rate and smoothing variants
}

TEST(RunProtocolTest, RewindingRestoresThePretrainedWeights) {
  v1::RunSpec spec = SmallSpec(v1::METHOD_MAGNITUDE_GLOBAL, 2, 0.5);
  spec.mutable_rewind()->set_rewind_to_pretrained(true);
  const Outcome rewound = RunInProcess(spec);
  ASSERT_OK(rewound.status);
  // Both iterations end with the pre-trained weights under their masks, though training ran between.
  for (size_t p = 0; p < rewound.weights[0].size(); ++p) {
    for (size_t k = 0; k < rewound.weights[0][p].size(); ++k) {
      if (rewound.applied[1][p][k] != 0) {
        ASSERT_EQ(rewound.weights[1][p][k], rewound.weights[0][p][k]);
      }
    }
  }
  spec.mutable_rewind()->set_rewind_to_pretrained(false);
  const Outcome trained = RunInProcess(spec);
  ASSERT_OK(trained.status);
  EXPECT_NE(trained.weights[1], trained.weights[0]);
}

// A link that answers from a script: skipped iterations, errors, cancellation.
class ScriptedLink final : public PruningLink {
 public:
  std::function<absl::StatusOr<IterationMasks>(int)> on_end;
  std::function<absl::Status(int64_t)> on_step;
  std::vector<int64_t> numels;
  int64_t steps = 0;

  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status BeginIteration(int) override { return absl::OkStatus(); }
  absl::Status AddStep(const StepRecord&) override { return on_step ? on_step(steps++) : absl::OkStatus(); }
  absl::StatusOr<IterationMasks> EndIteration(int iteration, const std::vector<absl::Span<const float>>&) override {
    return on_end(iteration);
  }
  void Close(bool) override {}
  LinkStats stats() const override { return {}; }
};

// Prunes the first `count` weights of the first tensor.
IterationMasks FirstWeightsPruned(int64_t count) {
  IterationMasks masks;
  masks.target_sparsity = 0.1;
  for (int64_t numel : {31360, 800, 200}) masks.keep.emplace_back(static_cast<size_t>(numel), uint8_t{1});
  for (int64_t k = 0; k < count; ++k) masks.keep[0][k] = 0;
  return masks;
}

TEST(RunProtocolTest, SkippedIterationsKeepThePreviousMasks) {
  auto make = [](const v1::Layout&) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    auto link = std::make_unique<ScriptedLink>();
    link->on_end = [](int iteration) -> absl::StatusOr<IterationMasks> {
      if (iteration == 2) {
        IterationMasks skipped;
        skipped.skipped = true;
        skipped.skip_reason = "pruner down";
        return skipped;
      }
      return FirstWeightsPruned(iteration == 1 ? 100 : 300);
    };
    return std::unique_ptr<PruningLink>(std::move(link));
  };
  const Outcome run = RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 3, 0.5), make);
  ASSERT_OK(run.status);
  const v1::RunReport report = run.record->GetReport();
  ASSERT_EQ(report.iterations_size(), 3);
  EXPECT_FALSE(report.iterations(0).skipped());
  EXPECT_TRUE(report.iterations(1).skipped());
  EXPECT_DOUBLE_EQ(report.iterations(1).achieved_sparsity(), 100.0 / 32360);
  EXPECT_DOUBLE_EQ(report.iterations(2).achieved_sparsity(), 300.0 / 32360);
  int skipped_events = 0;
  for (const v1::RunEvent& event : Events(*run.record)) {
    if (event.has_masks_applied() && event.masks_applied().skipped()) ++skipped_events;
  }
  EXPECT_EQ(skipped_events, 1);
}

TEST(RunProtocolTest, CancellationStopsAtTheNextBatch) {
  RunRecord* record = nullptr;
  auto make = [&record](const v1::Layout&) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    auto link = std::make_unique<ScriptedLink>();
    link->on_step = [&record](int64_t step) {
      if (step == 1) record->RequestCancel("stop now");
      return absl::OkStatus();
    };
    link->on_end = [](int) -> absl::StatusOr<IterationMasks> { return FirstWeightsPruned(1); };
    return std::unique_ptr<PruningLink>(std::move(link));
  };
  v1::RunSpec spec = SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.5);
  absl::StatusOr<RunPlan> plan = ResolveRunSpec(spec, {});
  ASSERT_OK(plan.status());
  DatasetCache cache;
  ASSERT_OK_AND_ASSIGN(RunData data, cache.Load(plan->data));
  RunRecord run("run-cancel", 1, spec, plan->iterations, 1000);
  run.MarkRunning();
  record = &run;
  EXPECT_THAT(RunProtocol(*plan, data, make, &run), StatusIsWithMessage(absl::StatusCode::kCancelled, "stop now"));
  EXPECT_EQ(run.GetReport().iterations_size(), 0);
}

TEST(RunProtocolTest, LinkErrorsEndTheRun) {
  auto make = [](const v1::Layout&) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    auto link = std::make_unique<ScriptedLink>();
    link->on_end = [](int) -> absl::StatusOr<IterationMasks> {
      return absl::UnavailableError("pruner unreachable (strict policy)");
    };
    return std::unique_ptr<PruningLink>(std::move(link));
  };
  EXPECT_THAT(RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.5), make).status,
              StatusIsWithMessage(absl::StatusCode::kUnavailable, "strict policy"));
  auto refuse = [](const v1::Layout&) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    return absl::InvalidArgumentError("no link");
  };
  EXPECT_THAT(RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.5), refuse).status, StatusIs(absl::StatusCode::kInvalidArgument));
  auto bad_masks = [](const v1::Layout&) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    auto link = std::make_unique<ScriptedLink>();
    link->on_end = [](int) -> absl::StatusOr<IterationMasks> {
      IterationMasks masks = FirstWeightsPruned(1);
      masks.keep.pop_back();
      return masks;
    };
    return std::unique_ptr<PruningLink>(std::move(link));
  };
  EXPECT_THAT(RunInProcess(SmallSpec(v1::METHOD_CAUSAL_V2, 2, 0.5), bad_masks).status,
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "do not fit the model"));
}

TEST(RunProtocolTest, MethodNoneKeepsEveryWeight) {
  v1::RunSpec spec = SmallSpec(v1::METHOD_NONE, 2, 0.5);
  spec.mutable_pruner()->clear_address();
  auto make = [](const v1::Layout&) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    return std::unique_ptr<PruningLink>(std::make_unique<NoPrunerLink>(std::vector<int64_t>{31360, 800, 200},
                                                                       std::vector<int>{0, 1, 2}));
  };
  const Outcome run = RunInProcess(spec, make);
  ASSERT_OK(run.status);
  const v1::RunReport report = run.record->GetReport();
  ASSERT_EQ(report.iterations_size(), 2);
  EXPECT_EQ(report.iterations(1).achieved_sparsity(), 0.0);
  EXPECT_EQ(report.iterations(1).num_steps(), 0);  // method none collects nothing
}

}  // namespace
}  // namespace gcprune::trainer
