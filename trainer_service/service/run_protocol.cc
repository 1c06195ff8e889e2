// The run protocol (see run_protocol.h).
#include "trainer_service/service/run_protocol.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer_service/engine/causal_step.h"
#include "trainer_service/engine/lr_schedule.h"
#include "trainer_service/engine/optimizer.h"
#include "trainer_service/engine/trainer.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

absl::StatusOr<std::unique_ptr<Optimizer>> MakeOptimizer(const OptimizerPlan& plan, Model* model) {
  if (plan.type == OptimizerType::kAdam) {
    AdamOptions options;
    options.beta1 = plan.beta1;
    options.beta2 = plan.beta2;
    options.eps = static_cast<float>(plan.epsilon);
    options.weight_decay = static_cast<float>(plan.weight_decay);
    return CreateAdam(model->parameters(), options);
  }
  SgdOptions options;
  options.momentum = static_cast<float>(plan.momentum);
  options.weight_decay = static_cast<float>(plan.weight_decay);
  options.nesterov = plan.nesterov;
  return CreateSgd(model->parameters(), options);
}

absl::StatusOr<LrSchedule> MakeLrSchedule(const PhasePlan& phase) {
  switch (phase.lr.type) {
    case LrScheduleType::kCosine:
      return LrSchedule::CosineAnnealing(phase.optimizer.learning_rate, std::max(phase.epochs, 1),
                                         phase.lr.min_learning_rate);
    case LrScheduleType::kStep:
      return LrSchedule::StepDecay(phase.optimizer.learning_rate, phase.lr.step_epochs, phase.lr.gamma);
    case LrScheduleType::kConstant:
      break;
  }
  return LrSchedule::Constant(phase.optimizer.learning_rate);
}

class ProtocolRunner {
 public:
  ProtocolRunner(const RunPlan& plan, const RunData& data, RunRecord* record, const ProtocolOptions& options)
      : plan_(plan), data_(data), record_(record), options_(options) {}

  absl::Status Run(const PruningLinkFactory& make_link);
  // Closes the link once (if it was created) and copies its final counters into the report.
  void CloseLink(bool complete);

 private:
  absl::Status Prepare(const PruningLinkFactory& make_link);
  absl::StatusOr<PhaseOutcome> TrainPhase(v1::Phase phase, int iteration, const PhasePlan& spec);
  // Pre-trains, or restores an identical pre-training from options_.pretrain_cache.
  absl::StatusOr<PhaseOutcome> Pretrain();
  absl::Status Iteration(int iteration, double train_seconds);
  absl::StatusOr<int64_t> Collect(int iteration);
  absl::StatusOr<EvalResult> Evaluate();

  absl::Status CheckCancelled() const;
  void EnterPhase(v1::Phase phase, int iteration, int epochs);
  void MaybeProgress(v1::Phase phase, int iteration, int epoch, int64_t batch, int64_t batches, int64_t examples,
                     double loss_sum, bool force);
  void AddTiming(v1::Phase phase, double seconds);
  std::vector<v1::TensorSparsity> TensorSparsities(const IterationMasks* masks, double target) const;
  double Sparsity() const;
  void SyncLinkStats();

  const RunPlan& plan_;
  const RunData& data_;
  RunRecord* record_;
  const ProtocolOptions& options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PruningLink> link_;
  v1::Layout layout_;
  std::vector<int> prunable_layout_index_;
  ModelSnapshot pretrained_;
  int64_t epoch_counter_ = 0;  // every shuffled epoch of the run draws its own permutation
  std::chrono::steady_clock::time_point last_progress_;
  std::chrono::steady_clock::time_point phase_start_;
  bool link_closed_ = false;
};

void ProtocolRunner::CloseLink(bool complete) {
  if (link_ == nullptr || link_closed_) return;
  link_closed_ = true;
  link_->Close(complete);
  SyncLinkStats();
}

absl::Status ProtocolRunner::CheckCancelled() const {
  if (!record_->cancel_requested()) return absl::OkStatus();
  const std::string reason = record_->cancel_reason();
  return absl::CancelledError(reason.empty() ? "cancelled" : reason);
}

void ProtocolRunner::EnterPhase(v1::Phase phase, int iteration, int epochs) {
  record_->Update([&](v1::Run* run, v1::RunReport*) {
    run->set_phase(phase);
    run->set_iteration(iteration);
    run->set_epoch(0);
    run->set_phase_epochs(epochs);
  });
  v1::RunEvent event;
  v1::PhaseChanged* changed = event.mutable_phase_changed();
  changed->set_phase(phase);
  changed->set_iteration(iteration);
  changed->set_epochs(epochs);
  record_->Emit(std::move(event));
  last_progress_ = phase_start_ = std::chrono::steady_clock::now();
}

void ProtocolRunner::MaybeProgress(v1::Phase phase, int iteration, int epoch, int64_t batch, int64_t batches,
                                   int64_t examples, double loss_sum, bool force) {
  const auto now = std::chrono::steady_clock::now();
  const auto interval = absl::ToChronoNanoseconds(options_.progress_interval);
  if (!force && now - last_progress_ < interval) return;
  last_progress_ = now;
  const double seconds = std::chrono::duration<double>(now - phase_start_).count();
  const LinkStats stats = link_->stats();
  v1::RunEvent event;
  v1::StepProgress* progress = event.mutable_step_progress();
  progress->set_phase(phase);
  progress->set_iteration(iteration);
  progress->set_epoch(epoch);
  progress->set_batch(batch);
  progress->set_batches(batches);
  progress->set_examples_per_second(seconds > 0 ? static_cast<double>(examples) / seconds : 0.0);
  progress->set_running_loss(examples > 0 ? loss_sum / static_cast<double>(examples) : 0.0);
  progress->set_acked_step(phase == v1::PHASE_COLLECT ? stats.acked_step : -1);
  progress->set_unacked_steps(phase == v1::PHASE_COLLECT ? stats.unacked_steps : 0);
  record_->Update([&](v1::Run* run, v1::RunReport* report) {
    run->set_epoch(epoch);
    if (!stats.session_id.empty()) {
      run->set_pruner_session_id(stats.session_id);
      report->set_pruner_session_id(stats.session_id);
    }
    report->set_steps_sent(stats.steps_sent);
    report->set_pruner_reconnects(stats.reconnects);
  });
  record_->Emit(std::move(event));
}

void ProtocolRunner::AddTiming(v1::Phase phase, double seconds) {
  record_->Update([&](v1::Run*, v1::RunReport* report) {
    for (v1::PhaseTiming& timing : *report->mutable_timings()) {
      if (timing.phase() == phase) {
        timing.set_seconds(timing.seconds() + seconds);
        return;
      }
    }
    v1::PhaseTiming* timing = report->add_timings();
    timing->set_phase(phase);
    timing->set_seconds(seconds);
  });
}

void ProtocolRunner::SyncLinkStats() {
  const LinkStats stats = link_->stats();
  record_->Update([&](v1::Run* run, v1::RunReport* report) {
    if (!stats.session_id.empty()) {
      run->set_pruner_session_id(stats.session_id);
      report->set_pruner_session_id(stats.session_id);
    }
    report->set_steps_sent(stats.steps_sent);
    report->set_pruner_reconnects(stats.reconnects);
  });
}

double ProtocolRunner::Sparsity() const {
  const int64_t total = model_->num_prunable_weights();
  return total > 0 ? static_cast<double>(model_->num_pruned_weights()) / static_cast<double>(total) : 0.0;
}

std::vector<v1::TensorSparsity> ProtocolRunner::TensorSparsities(const IterationMasks* masks, double target) const {
  std::vector<v1::TensorSparsity> result;
  const std::vector<Parameter*>& prunable = model_->prunable_parameters();
  for (size_t p = 0; p < prunable.size(); ++p) {
    const Parameter& param = *prunable[p];
    int64_t kept = param.numel;
    if (param.mask != nullptr) {
      kept = 0;
      for (int64_t i = 0; i < param.numel; ++i) kept += param.mask[i] != 0;
    }
    v1::TensorSparsity tensor;
    tensor.set_tensor_index(static_cast<uint32_t>(prunable_layout_index_[p]));
    tensor.set_name(param.name);
    tensor.set_num_elements(param.numel);
    tensor.set_kept(kept);
    tensor.set_pruned(param.numel - kept);
    tensor.set_sparsity(static_cast<double>(param.numel - kept) / static_cast<double>(param.numel));
    tensor.set_target_sparsity(target);
    if (masks != nullptr) {
      for (const v1::TensorSparsity& summary : masks->tensors) {
        if (summary.tensor_index() == tensor.tensor_index()) tensor.set_target_sparsity(summary.target_sparsity());
      }
    }
    result.push_back(std::move(tensor));
  }
  return result;
}

absl::StatusOr<EvalResult> ProtocolRunner::Evaluate() {
  return model_->Evaluate(*data_.test, plan_.data.test_batch_size);
}

absl::Status ProtocolRunner::Prepare(const PruningLinkFactory& make_link) {
  ModelOptions model_options;
  model_options.label_smoothing = plan_.label_smoothing;
  model_options.num_threads = options_.threads;
  GCPRUNE_ASSIGN_OR_RETURN(model_, Model::Create(plan_.model, plan_.seed, model_options));
  layout_ = LayoutOfModel(*model_);
  for (int i = 0; i < layout_.tensors_size(); ++i) {
    if (layout_.tensors(i).prunable()) prunable_layout_index_.push_back(i);
  }
  GCPRUNE_ASSIGN_OR_RETURN(link_, make_link(layout_));
  const int64_t prunable = model_->num_prunable_weights();
  record_->Update([&](v1::Run* run, v1::RunReport* report) {
    report->set_prunable_weights(prunable);
    run->set_pruner_state(plan_.pruner.enabled ? v1::PRUNER_STATE_CONNECTING : v1::PRUNER_STATE_DISABLED);
    for (v1::Phase phase : {v1::PHASE_PRETRAIN, v1::PHASE_TRAIN, v1::PHASE_COLLECT, v1::PHASE_PRUNE,
                            v1::PHASE_FINETUNE}) {
      v1::PhaseTiming* timing = report->add_timings();
      timing->set_phase(phase);
      timing->set_seconds(0.0);
    }
  });
  return link_->Start();
}

absl::StatusOr<PhaseOutcome> ProtocolRunner::TrainPhase(v1::Phase phase, int iteration, const PhasePlan& spec) {
  EnterPhase(phase, iteration, spec.epochs);
  PhaseOutcome outcome;
  if (spec.epochs == 0) return outcome;
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer, MakeOptimizer(spec.optimizer, model_.get()));
  GCPRUNE_ASSIGN_OR_RETURN(LrSchedule schedule, MakeLrSchedule(spec));
  double best_loss = std::numeric_limits<double>::infinity();
  int epochs_without_improvement = 0;
  std::vector<float> images;
  std::vector<int32_t> labels;
  for (int epoch = 1; epoch <= spec.epochs; ++epoch) {
    const Stopwatch watch;
    const float lr = static_cast<float>(schedule.LearningRate(epoch - 1));
    BatchIterator batches(*data_.train, spec.batch_size, /*shuffle=*/true, plan_.seed, epoch_counter_++);
    const int64_t num_batches = batches.num_batches();
    double loss_sum = 0.0;
    int64_t correct_sum = 0;
    int64_t examples = 0;
    int64_t batch = 0;
    for (int n = batches.Next(&images, &labels); n > 0; n = batches.Next(&images, &labels)) {
      GCPRUNE_RETURN_IF_ERROR(CheckCancelled());
      int64_t correct = 0;
      GCPRUNE_ASSIGN_OR_RETURN(float loss, TrainStep(model_.get(), optimizer.get(), images, labels, lr, &correct));
      loss_sum += static_cast<double>(loss) * n;
      correct_sum += correct;
      examples += n;
      ++batch;
      MaybeProgress(phase, iteration, epoch, batch, num_batches, examples, loss_sum, false);
    }
    GCPRUNE_ASSIGN_OR_RETURN(EvalResult eval, Evaluate());
    const double train_loss = loss_sum / static_cast<double>(std::max<int64_t>(examples, 1));
    outcome.epochs = epoch;
    outcome.last_accuracy = eval.accuracy;
    outcome.last_loss = eval.loss;
    if (outcome.best_epoch == 0 || eval.accuracy > outcome.best_accuracy) {
      outcome.best_accuracy = eval.accuracy;
      outcome.best_epoch = epoch;
    }
    v1::RunEvent event;
    v1::EpochFinished* finished = event.mutable_epoch_finished();
    finished->set_phase(phase);
    finished->set_iteration(iteration);
    finished->set_epoch(epoch);
    finished->set_epochs(spec.epochs);
    finished->set_train_loss(train_loss);
    finished->set_train_accuracy(static_cast<double>(correct_sum) / static_cast<double>(std::max<int64_t>(examples, 1)));
    finished->set_test_loss(eval.loss);
    finished->set_test_accuracy(eval.accuracy);
    finished->set_learning_rate(lr);
    finished->set_seconds(watch.Seconds());
    record_->Update([&](v1::Run* run, v1::RunReport*) {
      run->set_epoch(epoch);
      run->set_test_accuracy(eval.accuracy);
    });
    record_->Emit(std::move(event));
    if (spec.early_stop_patience > 0) {
      if (train_loss < best_loss - spec.early_stop_min_delta) {
        best_loss = train_loss;
        epochs_without_improvement = 0;
      } else if (++epochs_without_improvement >= spec.early_stop_patience) {
        break;
      }
    }
  }
  return outcome;
}

absl::StatusOr<int64_t> ProtocolRunner::Collect(int iteration) {
  const CollectionPlan& spec = plan_.collection;
  EnterPhase(v1::PHASE_COLLECT, iteration, spec.epochs);
  CausalStepOptions step_options;
  step_options.lr = static_cast<float>(spec.learning_rate);
  step_options.momentum = static_cast<float>(spec.momentum);
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<CausalStepper> stepper, CausalStepper::Create(model_.get(), step_options));
  const bool v2 = plan_.method_kind == MethodKind::kCausalV2;
  CausalSample sample;
  std::vector<float> images;
  std::vector<int32_t> labels;
  int64_t steps = 0;
  for (int epoch = 1; epoch <= spec.epochs; ++epoch) {
    const Stopwatch watch;
    BatchIterator batches(*data_.train, spec.batch_size, /*shuffle=*/true, plan_.seed, epoch_counter_++);
    const int64_t num_batches = batches.num_batches();
    double loss_sum = 0.0;
    int64_t examples = 0;
    int64_t batch = 0;
    for (int n = batches.Next(&images, &labels); n > 0; n = batches.Next(&images, &labels)) {
      GCPRUNE_RETURN_IF_ERROR(CheckCancelled());
      GCPRUNE_RETURN_IF_ERROR(v2 ? stepper->StepV2(images, labels, &sample) : stepper->StepV1(images, labels, &sample));
      StepRecord step;
      step.loss_before = sample.loss_before;
      step.loss_after = sample.loss_after;
      step.learning_rate = spec.learning_rate;
      step.momentum = spec.momentum;
      step.deltas = &sample.deltas;
      GCPRUNE_RETURN_IF_ERROR(link_->AddStep(step));
      ++steps;
      loss_sum += static_cast<double>(sample.loss_before) * n;
      examples += n;
      ++batch;
      MaybeProgress(v1::PHASE_COLLECT, iteration, epoch, batch, num_batches, examples, loss_sum, false);
    }
    v1::RunEvent event;
    v1::EpochFinished* finished = event.mutable_epoch_finished();
    finished->set_phase(v1::PHASE_COLLECT);
    finished->set_iteration(iteration);
    finished->set_epoch(epoch);
    finished->set_epochs(spec.epochs);
    finished->set_train_loss(loss_sum / static_cast<double>(std::max<int64_t>(examples, 1)));
    finished->set_train_accuracy(kNaN);  // the causal step does not count hits
    finished->set_test_loss(kNaN);
    finished->set_test_accuracy(kNaN);
    finished->set_learning_rate(spec.learning_rate);
    finished->set_seconds(watch.Seconds());
    record_->Update([&](v1::Run* run, v1::RunReport*) { run->set_epoch(epoch); });
    record_->Emit(std::move(event));
  }
  return steps;
}

absl::Status ProtocolRunner::Iteration(int iteration, double train_seconds) {
  const ModelSnapshot snapshot = model_->Snapshot();
  GCPRUNE_RETURN_IF_ERROR(link_->BeginIteration(iteration));
  const Stopwatch collect_watch;
  int64_t steps = 0;
  if (plan_.wants_steps) {
    GCPRUNE_ASSIGN_OR_RETURN(steps, Collect(iteration));
  }
  const double collect_seconds = plan_.wants_steps ? collect_watch.Seconds() : 0.0;
  AddTiming(v1::PHASE_COLLECT, collect_seconds);

  EnterPhase(v1::PHASE_PRUNE, iteration, 0);
  const Stopwatch prune_watch;
  std::vector<absl::Span<const float>> weights;
  for (const Parameter* param : model_->prunable_parameters()) {
    weights.emplace_back(param->data, static_cast<size_t>(param->numel));
  }
  absl::StatusOr<IterationMasks> masks = link_->EndIteration(iteration, weights);
  const double wait_seconds = prune_watch.Seconds();
  SyncLinkStats();
  if (!masks.ok()) {
    // A cancelled wait reports the run's cancellation reason.
    if (record_->cancel_requested()) return CheckCancelled();
    return masks.status();
  }
  // The collection steps are discarded (METHOD.md §3.5): back to the start of the collection.
  GCPRUNE_RETURN_IF_ERROR(model_->Restore(snapshot));
  if (!masks->skipped) {
    const absl::Status applied = model_->SetMasks(masks->keep);
    if (!applied.ok()) {
      return absl::Status(applied.code(), absl::StrCat("iteration ", iteration, ": the pruner's masks do not fit the model: ",
                                                       applied.message()));
    }
  }
  if (plan_.rewind_to_pretrained) GCPRUNE_RETURN_IF_ERROR(model_->Rewind(pretrained_));
  GCPRUNE_ASSIGN_OR_RETURN(EvalResult eval, Evaluate());
  AddTiming(v1::PHASE_PRUNE, prune_watch.Seconds());
  if (options_.on_masks_applied) options_.on_masks_applied(iteration, *model_);

  const double schedule_target = plan_.target_sparsity[static_cast<size_t>(iteration - 1)];
  const double target = masks->skipped ? schedule_target : masks->target_sparsity;
  const std::vector<v1::TensorSparsity> tensors = TensorSparsities(masks->skipped ? nullptr : &*masks, target);
  const double sparsity = Sparsity();

  v1::IterationResult result;
  result.set_iteration(iteration);
  result.set_target_sparsity(target);
  result.set_achieved_sparsity(sparsity);
  result.set_test_accuracy_after_prune(eval.accuracy);
  result.set_test_loss_after_prune(eval.loss);
  for (const v1::TensorSparsity& tensor : tensors) *result.add_tensors() = tensor;
  result.set_train_seconds(train_seconds);
  result.set_collect_seconds(collect_seconds);
  result.set_prune_wait_seconds(wait_seconds);
  result.set_num_steps(steps);
  result.set_skipped(masks->skipped);

  v1::RunEvent event;
  v1::MasksApplied* applied = event.mutable_masks_applied();
  applied->set_iteration(iteration);
  applied->set_apply_at_step(masks->skipped ? -1 : masks->apply_at_step);
  applied->set_target_sparsity(target);
  applied->set_achieved_sparsity(sparsity);
  for (const v1::TensorSparsity& tensor : tensors) *applied->add_tensors() = tensor;
  applied->set_test_accuracy(eval.accuracy);
  applied->set_test_loss(eval.loss);
  applied->set_skipped(masks->skipped);

  record_->Update([&](v1::Run* run, v1::RunReport* report) {
    run->set_sparsity(sparsity);
    run->set_test_accuracy(eval.accuracy);
    *report->add_iterations() = result;
    report->mutable_tensors()->Clear();
    for (const v1::TensorSparsity& tensor : tensors) *report->add_tensors() = tensor;
  });
  record_->Emit(std::move(event));
  return absl::OkStatus();
}

absl::StatusOr<PhaseOutcome> ProtocolRunner::Pretrain() {
  PretrainCache* cache = options_.pretrain_cache;
  const bool cacheable = cache != nullptr && plan_.pretrain.epochs > 0;
  const std::string key = cacheable ? PretrainKey(plan_, model_->threads()) : std::string();
  if (cacheable && !plan_.spec.fresh_pretraining()) {
    if (std::shared_ptr<const PretrainedModel> saved = cache->Find(key)) {
      // Restore exactly what the pre-training left: weights, and the shuffles it drew.
      GCPRUNE_RETURN_IF_ERROR(model_->Restore(saved->model));
      epoch_counter_ = saved->epochs_drawn;
      EnterPhase(v1::PHASE_PRETRAIN, 0, 0);
      record_->Update([&](v1::Run*, v1::RunReport* report) {
        v1::PretrainReuse* reuse = report->mutable_pretrain_reused();
        reuse->set_source_run_id(saved->source_run);
        reuse->set_epochs(saved->outcome.epochs);
        reuse->set_seconds_saved(saved->seconds);
      });
      return saved->outcome;
    }
  }
  const Stopwatch watch;
  GCPRUNE_ASSIGN_OR_RETURN(PhaseOutcome outcome, TrainPhase(v1::PHASE_PRETRAIN, 0, plan_.pretrain));
  if (outcome.epochs == 0) {
    GCPRUNE_ASSIGN_OR_RETURN(EvalResult eval, Evaluate());
    outcome.last_accuracy = eval.accuracy;
    return outcome;
  }
  if (cacheable) {
    auto saved = std::make_shared<PretrainedModel>();
    saved->model = model_->Snapshot();
    saved->epochs_drawn = epoch_counter_;
    saved->outcome = outcome;
    saved->seconds = watch.Seconds();
    saved->source_run = record_->id();
    cache->Insert(key, std::move(saved));
  }
  return outcome;
}

absl::Status ProtocolRunner::Run(const PruningLinkFactory& make_link) {
  const Stopwatch total;
  GCPRUNE_RETURN_IF_ERROR(Prepare(make_link));

  const Stopwatch pretrain_watch;
  GCPRUNE_ASSIGN_OR_RETURN(PhaseOutcome pretrain, Pretrain());
  AddTiming(v1::PHASE_PRETRAIN, pretrain_watch.Seconds());
  record_->Update([&](v1::Run* run, v1::RunReport* report) {
    report->set_pretrain_test_accuracy(pretrain.last_accuracy);
    run->set_test_accuracy(pretrain.last_accuracy);
  });
  if (plan_.rewind_to_pretrained) pretrained_ = model_->Snapshot();

  for (int j = 1; j <= plan_.iterations; ++j) {
    double train_seconds = 0.0;
    if (j > 1) {
      const Stopwatch train_watch;
      GCPRUNE_ASSIGN_OR_RETURN(PhaseOutcome train, TrainPhase(v1::PHASE_TRAIN, j, plan_.train));
      (void)train;
      train_seconds = train_watch.Seconds();
      AddTiming(v1::PHASE_TRAIN, train_seconds);
    }
    GCPRUNE_RETURN_IF_ERROR(CheckCancelled());
    GCPRUNE_RETURN_IF_ERROR(Iteration(j, train_seconds));
  }

  const Stopwatch finetune_watch;
  GCPRUNE_ASSIGN_OR_RETURN(PhaseOutcome finetune, TrainPhase(v1::PHASE_FINETUNE, plan_.iterations, plan_.finetune));
  AddTiming(v1::PHASE_FINETUNE, finetune_watch.Seconds());
  if (options_.on_finished) options_.on_finished(*model_);
  CloseLink(/*complete=*/true);
  const double seconds = total.Seconds();
  record_->Update([&](v1::Run* run, v1::RunReport* report) {
    if (finetune.epochs > 0) {
      v1::FinetuneResult* result = report->mutable_finetune();
      result->set_epochs(finetune.epochs);
      result->set_last_test_accuracy(finetune.last_accuracy);
      result->set_last_test_loss(finetune.last_loss);
      result->set_best_test_accuracy(finetune.best_accuracy);
      result->set_best_epoch(finetune.best_epoch);
    }
    if (report->tensors_size() == 0) {
      for (const v1::TensorSparsity& tensor : TensorSparsities(nullptr, 0.0)) *report->add_tensors() = tensor;
    }
    report->set_total_seconds(seconds);
    run->set_phase(v1::PHASE_DONE);
    run->set_epoch(0);
  });
  return absl::OkStatus();
}

}  // namespace

v1::Layout LayoutOfModel(Model& model) {
  v1::Layout layout;
  for (const Parameter* param : model.parameters()) {
    v1::TensorSpec* tensor = layout.add_tensors();
    tensor->set_name(param->name);
    for (int64_t d : param->shape) tensor->add_shape(d);
    tensor->set_prunable(param->prunable);
  }
  return layout;
}

absl::Status RunProtocol(const RunPlan& plan, const RunData& data, const PruningLinkFactory& make_link,
                         RunRecord* record, const ProtocolOptions& options) {
  ProtocolRunner runner(plan, data, record, options);
  absl::Status status = runner.Run(make_link);
  runner.CloseLink(/*complete=*/false);  // no-op after a successful run
  return status;
}

}  // namespace gcprune::trainer
