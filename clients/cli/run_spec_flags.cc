// Implementation of the run-spec flags of `gcprune run`.
#include "clients/cli/run_spec_flags.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cli/connection_flags.h"

namespace gcprune::cli {
namespace {

template <typename E>
struct NamedValue {
  const char* name;
  E value;
};

constexpr NamedValue<v1::Method> kMethods[] = {
    {"causal-v2", v1::METHOD_CAUSAL_V2},
    {"causal-v1", v1::METHOD_CAUSAL_V1},
    {"magnitude-global", v1::METHOD_MAGNITUDE_GLOBAL},
    {"magnitude-layer", v1::METHOD_MAGNITUDE_LAYER},
    {"random", v1::METHOD_RANDOM},
    {"none", v1::METHOD_NONE},
};
constexpr NamedValue<v1::ScheduleKind> kSchedules[] = {
    {"cubic", v1::SCHEDULE_KIND_CUBIC},
    {"geometric", v1::SCHEDULE_KIND_GEOMETRIC},
    {"one-shot", v1::SCHEDULE_KIND_ONE_SHOT},
    {"custom", v1::SCHEDULE_KIND_CUSTOM},
};
constexpr NamedValue<v1::PruningScope> kScopes[] = {
    {"global", v1::PRUNING_SCOPE_GLOBAL},
    {"per-layer", v1::PRUNING_SCOPE_PER_LAYER},
};
constexpr NamedValue<v1::CountRule> kCountRules[] = {
    {"cumulative", v1::COUNT_RULE_CUMULATIVE},
    {"reference", v1::COUNT_RULE_REFERENCE_INCREMENTAL},
};
constexpr NamedValue<v1::Solver> kSolvers[] = {
    {"lasso-sgd", v1::SOLVER_LASSO_SGD},
    {"exact", v1::SOLVER_EXACT},
};
constexpr NamedValue<v1::ValueEncoding> kSampleEncodings[] = {
    {"float32", v1::VALUE_ENCODING_FLOAT32},
    {"bfloat16", v1::VALUE_ENCODING_BFLOAT16},
};
constexpr NamedValue<v1::OptimizerKind> kOptimizers[] = {
    {"sgd", v1::OPTIMIZER_KIND_SGD},
    {"adam", v1::OPTIMIZER_KIND_ADAM},
};
constexpr NamedValue<v1::LrScheduleKind> kLrSchedules[] = {
    {"constant", v1::LR_SCHEDULE_KIND_CONSTANT},
    {"cosine", v1::LR_SCHEDULE_KIND_COSINE},
    {"step", v1::LR_SCHEDULE_KIND_STEP},
};
constexpr NamedValue<v1::FailurePolicy> kFailurePolicies[] = {
    {"fail-open", v1::FAILURE_POLICY_FAIL_OPEN},
    {"strict", v1::FAILURE_POLICY_STRICT},
};

// Names are matched case-insensitively, with '_' accepted for '-'.
std::string NormaliseName(absl::string_view text) {
  std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  for (char& c : name) {
    if (c == '_') c = '-';
  }
  return name;
}

template <typename E, size_t N>
absl::StatusOr<E> LookUp(absl::string_view flag, absl::string_view text, const NamedValue<E> (&table)[N]) {
  const std::string name = NormaliseName(text);
  std::vector<std::string> known;
  for (const NamedValue<E>& entry : table) {
    if (name == entry.name) return entry.value;
    known.push_back(entry.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, ": unknown value '", text, "' (known: ", absl::StrJoin(known, ", "), ")"));
}

absl::Status BadNumber(absl::string_view flag, absl::string_view text, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": '", text, "' is not ", expected));
}

absl::StatusOr<double> ParseFiniteDouble(absl::string_view flag, absl::string_view text) {
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) return BadNumber(flag, text, "a number");
  return value;
}

absl::StatusOr<int32_t> ParseInt32(absl::string_view flag, absl::string_view text) {
  int32_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) return BadNumber(flag, text, "a 32-bit integer");
  return value;
}

absl::StatusOr<bool> ParseBoolText(absl::string_view flag, absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  if (lower == "false" || lower == "0" || lower == "no") return false;
  return BadNumber(flag, text, "a boolean (true/false)");
}

// INVALID_ARGUMENT unless lo <= value <= hi (as integers that must fit an int32 field).
absl::StatusOr<int32_t> CheckedInt32(absl::string_view flag, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", value, " is outside [", lo, ", ", hi, "]"));
  }
  return static_cast<int32_t>(value);
}

absl::Status CheckFraction(absl::string_view flag, double value, bool allow_one) {
  if (value < 0 || value > 1 || (!allow_one && value == 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", value, " is outside [0, 1", allow_one ? "]" : ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Method> ParseMethodName(absl::string_view flag, absl::string_view text) {
  return LookUp(flag, text, kMethods);
}

absl::StatusOr<std::vector<int32_t>> ParseInputShape(absl::string_view flag, absl::string_view text) {
  std::vector<int32_t> shape;
  const std::vector<absl::string_view> parts = absl::StrSplit(text, absl::ByAnyChar("x,X"));
  if (parts.empty() || parts.size() > 3) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": '", text, "' is not a shape such as 1x28x28"));
  }
  for (absl::string_view part : parts) {
    int32_t dim = 0;
    if (!absl::SimpleAtoi(part, &dim) || dim < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": '", text, "' is not a shape of positive dimensions such as 1x28x28"));
    }
    shape.push_back(dim);
  }
  return shape;
}

absl::Status ParseScheduleText(absl::string_view flag, absl::string_view text, v1::Schedule* schedule) {
  absl::string_view kind_text = text;
  absl::string_view values_text;
  bool has_values = false;
  if (const size_t colon = text.find(':'); colon != absl::string_view::npos) {
    kind_text = text.substr(0, colon);
    values_text = text.substr(colon + 1);
    has_values = true;
  }
  absl::StatusOr<v1::ScheduleKind> kind = LookUp(flag, kind_text, kSchedules);
  if (!kind.ok()) return kind.status();
  schedule->set_kind(*kind);
  if (*kind != v1::SCHEDULE_KIND_CUSTOM) {
    if (has_values) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": only the custom schedule takes values, got '", text, "'"));
    }
    return absl::OkStatus();
  }
  if (!has_values || values_text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": custom needs its cumulative sparsities, e.g. custom:0.5,0.8,0.9"));
  }
  schedule->clear_custom_sparsity();
  for (absl::string_view part : absl::StrSplit(values_text, ',')) {
    absl::StatusOr<double> value = ParseFiniteDouble(flag, part);
    if (!value.ok()) return value.status();
    if (absl::Status status = CheckFraction(flag, *value, /*allow_one=*/false); !status.ok()) return status;
    schedule->add_custom_sparsity(*value);
  }
  return absl::OkStatus();
}

absl::Status ApplyPhaseOverrides(absl::string_view flag, absl::string_view text, v1::PhaseSpec* phase,
                                 std::vector<std::string>* keys) {
  if (absl::StripAsciiWhitespace(text).empty()) return absl::OkStatus();
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    const std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    const std::string key = NormaliseName(kv.first);
    const absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    const std::string where = absl::StrCat(flag, " ", key);
    if (item.find('=') == absl::string_view::npos || value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": '", item, "' is not key=value"));
    }
    v1::OptimizerSpec* optimizer = phase->mutable_optimizer();
    v1::LrSchedule* schedule = phase->mutable_lr_schedule();
    absl::Status status;
    auto set_double = [&](auto setter) {
      absl::StatusOr<double> parsed = ParseFiniteDouble(where, value);
      if (parsed.ok()) setter(*parsed);
      return parsed.status();
    };
    auto set_int = [&](auto setter) {
      absl::StatusOr<int32_t> parsed = ParseInt32(where, value);
      if (parsed.ok()) setter(*parsed);
      return parsed.status();
    };
    if (key == "epochs") {
      status = set_int([&](int32_t v) { phase->set_epochs(v); });
    } else if (key == "batch" || key == "batch-size") {
      status = set_int([&](int32_t v) { phase->set_batch_size(v); });
    } else if (key == "optimizer") {
      absl::StatusOr<v1::OptimizerKind> kind = LookUp(where, value, kOptimizers);
      if (kind.ok()) optimizer->set_kind(*kind);
      status = kind.status();
    } else if (key == "lr") {
      status = set_double([&](double v) { optimizer->set_learning_rate(v); });
    } else if (key == "momentum") {
      status = set_double([&](double v) { optimizer->set_momentum(v); });
    } else if (key == "weight-decay" || key == "wd") {
      status = set_double([&](double v) { optimizer->set_weight_decay(v); });
    } else if (key == "nesterov") {
      absl::StatusOr<bool> parsed = ParseBoolText(where, value);
      if (parsed.ok()) optimizer->set_nesterov(*parsed);
      status = parsed.status();
    } else if (key == "beta1") {
      status = set_double([&](double v) { optimizer->set_beta1(v); });
    } else if (key == "beta2") {
      status = set_double([&](double v) { optimizer->set_beta2(v); });
    } else if (key == "eps") {
      status = set_double([&](double v) { optimizer->set_epsilon(v); });
    } else if (key == "schedule") {
      absl::StatusOr<v1::LrScheduleKind> kind = LookUp(where, value, kLrSchedules);
      if (kind.ok()) schedule->set_kind(*kind);
      status = kind.status();
    } else if (key == "min-lr") {
      status = set_double([&](double v) { schedule->set_min_learning_rate(v); });
    } else if (key == "step-epochs") {
      status = set_int([&](int32_t v) { schedule->set_step_epochs(v); });
    } else if (key == "gamma") {
      status = set_double([&](double v) { schedule->set_gamma(v); });
    } else if (key == "patience") {
      status = set_int([&](int32_t v) { phase->mutable_early_stop()->set_patience(v); });
    } else if (key == "min-delta") {
      status = set_double([&](double v) { phase->mutable_early_stop()->set_min_delta(v); });
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": unknown key '", kv.first,
          "' (known: epochs, batch, optimizer, lr, momentum, weight_decay, nesterov, beta1, beta2, eps, "
          "schedule, min_lr, step_epochs, gamma, patience, min_delta)"));
    }
    if (!status.ok()) return status;
    if (keys != nullptr) keys->push_back(key);
  }
  return absl::OkStatus();
}

void RunSpecFlags::Register(FlagSet* flags) {
  flags_ = flags;
  // Model and data.
  flags->AddString("model", &model_, "model preset: lenet5 or mlp (the trainer lists others)");
  flags->AddString("layers", &layers_, "layer list instead of --model (grammar: docs/PROTOCOL.md)");
  flags->AddString("input_shape", &input_shape_, "input shape CxHxW, e.g. 1x28x28; empty = the data set's");
  flags->AddInt("num_classes", &num_classes_, "number of classes; 0 = the data set's");
  flags->AddString("data", &data_, "data set: fashion-mnist, mnist, cifar10 or synthetic");
  flags->AddString("data_dir", &data_dir_, "data directory on the trainer's machine; empty = its default");
  flags->AddInt("train_subset", &train_subset_, "use only the first N training examples; 0 = all");
  flags->AddInt("test_subset", &test_subset_, "use only the first N test examples; 0 = all");
  flags->AddInt("test_batch_size", &test_batch_size_, "evaluation batch size; 0 = 1000");
  // Training phases.
  flags->AddInt("pretrain_epochs", &pretrain_epochs_, "pre-training epochs");
  flags->AddInt("train_epochs", &train_epochs_, "training epochs between prune iterations (not before the first)");
  flags->AddInt("finetune_epochs", &finetune_epochs_, "fine-tuning epochs after the last iteration");
  flags->AddInt("batch_size", &batch_size_, "training batch size of the three training phases");
  flags->AddString("optimizer", &optimizer_, "sgd or adam, for the three training phases");
  flags->AddDouble("lr", &lr_, "learning rate of the training phases");
  flags->AddDouble("momentum", &momentum_, "SGD momentum of the training phases");
  flags->AddDouble("weight_decay", &weight_decay_, "L2 weight decay of the training phases");
  flags->AddBool("nesterov", &nesterov_, "Nesterov momentum (SGD)");
  flags->AddString("lr_schedule", &lr_schedule_, "constant, cosine or step, restarted in each phase");
  flags->AddDouble("min_lr", &min_lr_, "final learning rate of the cosine schedule");
  flags->AddString("pretrain", &pretrain_overrides_, "pre-training overrides, e.g. \"epochs=3,lr=0.05\"");
  flags->AddString("train", &train_overrides_, "overrides of the training between iterations");
  flags->AddString("finetune", &finetune_overrides_,
                   "fine-tuning overrides, e.g. \"optimizer=sgd,lr=0.01,weight_decay=5e-4,schedule=cosine\"");
  // Collection.
  flags->AddInt("collect_epochs", &collect_epochs_, "collection epochs per iteration; 0 = the method's (v2: 1)");
  flags->AddInt("collect_batch_size", &collect_batch_size_, "collection batch size; 0 = the method's (v2: 256)");
  flags->AddDouble("collect_lr", &collect_lr_, "plain-SGD learning rate of the collection; 0 = 1e-3");
  flags->AddDouble("collect_momentum", &collect_momentum_, "collection momentum (causal-v1 momentum variant)");
  // Method.
  flags->AddString("method", &method_,
                   "causal-v2, causal-v1, magnitude-global, magnitude-layer, random or none");
  flags->AddDouble("target_sparsity", &target_sparsity_, "final target sparsity P in [0, 1)");
  flags->AddInt("iterations", &iterations_, "prune iterations n");
  flags->AddString("schedule", &schedule_,
                   "cubic, geometric, one-shot or custom:S1,...,Sn; empty = the method's (v2: cubic)");
  flags->AddString("scope", &scope_, "global or per-layer; empty = the method's");
  flags->AddString("count_rule", &count_rule_, "cumulative or reference; empty = cumulative");
  flags->AddString("solver", &solver_, "lasso-sgd or exact (causal methods); empty = lasso-sgd");
  flags->AddDouble("l1", &l1_, "LassoSGD L1 strength (v2 divides it by N)");
  flags->AddInt("lasso_epochs", &lasso_epochs_, "LassoSGD maximum epochs");
  flags->AddDouble("alpha", &alpha_, "exact solver penalty alpha");
  flags->AddDouble("min_layer_sparsity", &min_layer_sparsity_, "floor on every tensor's sparsity");
  flags->AddDouble("max_layer_sparsity", &max_layer_sparsity_, "ceiling on every tensor's sparsity");
  flags->AddString("sample_encoding", &sample_encoding_, "float32 or bfloat16 sample storage in the pruner");
  flags->AddInt("memory_budget_mb", &memory_budget_mb_, "pruner memory budget of the session in MiB; 0 = its default");
  flags->AddBool("reference_ranking", &reference_ranking_, "rank as the reference code does (causal-v2)");
  flags->AddBool("v1_momentum", &v1_momentum_, "causal-v1 momentum variant (3N features)");
  flags->AddUint64("method_seed", &method_seed_, "seed of the pruner's shuffling");
  // Run-wide.
  flags->AddUint64("seed", &seed_, "seed of initialisation and shuffling");
  flags->AddString("pruner", &pruner_,
                   "pruner address as seen from the trainer");
  flags->AddString("failure_policy", &failure_policy_, "fail-open (keep training without the pruner) or strict");
  flags->AddDuration("grace_period", &grace_period_, "how long the pruner may be unreachable; 0 = 60s");
  flags->AddBool("pruner_tls", &pruner_tls_, "the trainer talks TLS to the pruner");
  flags->AddBool("rewind", &rewind_, "rewind to the pre-trained weights after each iteration (lottery ticket)");
  flags->AddBool("reset_norm", &reset_norm_, "reset normalisation statistics after applying masks");
  flags->AddDouble("label_smoothing", &label_smoothing_, "label smoothing in [0, 1)");
  flags->AddString("label", &label_, "free text shown in `gcprune runs`");
  // Flags whose unset state means "the method's or the server's default".
  flags->SetDefaultText("model", "lenet5");
  flags->SetDefaultText("iterations", "5; one-shot and custom: the schedule's");
  flags->SetDefaultText("target_sparsity", "0.9; not sent for causal-v1 and none");
  flags->SetDefaultText("l1", "the method's: 1e-3 (v2), 1e-14 (v1)");
  flags->SetDefaultText("lasso_epochs", "30");
  flags->SetDefaultText("alpha", "the method's");
  flags->SetDefaultText("min_layer_sparsity", "0");
  flags->SetDefaultText("max_layer_sparsity", "1");
  flags->SetDefaultText("method_seed", "--seed");
  flags->SetDefaultText("pruner", absl::StrCat("$", kPrunerAddressEnvVar, ", else the trainer's default"));
  flags->SetDefaultText("label_smoothing", "0.1, causal-v1: 0");
}

absl::StatusOr<v1::PhaseSpec> RunSpecFlags::BuildPhase(absl::string_view phase_name,
                                                       const std::string& overrides, int64_t epochs) const {
  v1::PhaseSpec phase;
  const std::string override_flag = absl::StrCat("--", phase_name);
  absl::StatusOr<int32_t> checked_epochs = CheckedInt32(absl::StrCat(override_flag, "_epochs"), epochs, 0, 100000);
  if (!checked_epochs.ok()) return checked_epochs.status();
  phase.set_epochs(*checked_epochs);
  absl::StatusOr<int32_t> batch = CheckedInt32("--batch_size", batch_size_, 1, 65536);
  if (!batch.ok()) return batch.status();
  phase.set_batch_size(*batch);
  absl::StatusOr<v1::OptimizerKind> optimizer = LookUp("--optimizer", optimizer_, kOptimizers);
  if (!optimizer.ok()) return optimizer.status();
  if (!(lr_ > 0)) return absl::InvalidArgumentError(absl::StrCat("--lr: ", lr_, " is not > 0"));
  phase.mutable_optimizer()->set_kind(*optimizer);
  phase.mutable_optimizer()->set_learning_rate(lr_);
  // Adam has no momentum: its betas take that role.
  if (*optimizer == v1::OPTIMIZER_KIND_SGD) {
    phase.mutable_optimizer()->set_momentum(momentum_);
    phase.mutable_optimizer()->set_nesterov(nesterov_);
  } else if (IsSet("momentum") || IsSet("nesterov")) {
    return absl::InvalidArgumentError("--momentum and --nesterov apply to --optimizer=sgd only");
  }
  phase.mutable_optimizer()->set_weight_decay(weight_decay_);
  absl::StatusOr<v1::LrScheduleKind> schedule = LookUp("--lr_schedule", lr_schedule_, kLrSchedules);
  if (!schedule.ok()) return schedule.status();
  phase.mutable_lr_schedule()->set_kind(*schedule);
  if (*schedule == v1::LR_SCHEDULE_KIND_COSINE) phase.mutable_lr_schedule()->set_min_learning_rate(min_lr_);
  if (*schedule == v1::LR_SCHEDULE_KIND_STEP) {
    // Decay by 10x every epoch unless the overrides say otherwise.
    phase.mutable_lr_schedule()->set_step_epochs(1);
    phase.mutable_lr_schedule()->set_gamma(0.1);
  }
  std::vector<std::string> keys;
  if (absl::Status status = ApplyPhaseOverrides(override_flag, overrides, &phase, &keys); !status.ok()) {
    return status;
  }
  // An optimizer switched to Adam by an override drops the SGD-only settings inherited from the flags.
  auto overridden = [&keys](const char* key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
  if (phase.optimizer().kind() == v1::OPTIMIZER_KIND_ADAM) {
    if (!overridden("momentum")) phase.mutable_optimizer()->set_momentum(0);
    if (!overridden("nesterov")) phase.mutable_optimizer()->set_nesterov(false);
  }
  return phase;
}

absl::StatusOr<v1::MethodConfig> RunSpecFlags::BuildMethod() const {
  v1::MethodConfig method;
  absl::StatusOr<v1::Method> kind = ParseMethodName("--method", method_);
  if (!kind.ok()) return kind.status();
  method.set_method(*kind);

  v1::Schedule* schedule = method.mutable_schedule();
  if (!schedule_.empty()) {
    if (absl::Status status = ParseScheduleText("--schedule", schedule_, schedule); !status.ok()) return status;
  }
  const bool schedule_sets_count =
      schedule->kind() == v1::SCHEDULE_KIND_ONE_SHOT || schedule->kind() == v1::SCHEDULE_KIND_CUSTOM;
  if (!schedule_sets_count || IsSet("iterations")) {
    absl::StatusOr<int32_t> iterations = CheckedInt32("--iterations", iterations_, 1, 1000);
    if (!iterations.ok()) return iterations.status();
    schedule->set_iterations(*iterations);
  }
  // causal-v1 prunes by its penalty, not to a target; none prunes nothing.
  const bool uses_target = *kind != v1::METHOD_CAUSAL_V1 && *kind != v1::METHOD_NONE &&
                           schedule->kind() != v1::SCHEDULE_KIND_CUSTOM;
  if (uses_target || IsSet("target_sparsity")) {
    if (absl::Status status = CheckFraction("--target_sparsity", target_sparsity_, false); !status.ok()) {
      return status;
    }
    schedule->set_target_sparsity(target_sparsity_);
  }
  if (!scope_.empty()) {
    absl::StatusOr<v1::PruningScope> scope = LookUp("--scope", scope_, kScopes);
    if (!scope.ok()) return scope.status();
    schedule->set_scope(*scope);
  }
  if (!count_rule_.empty()) {
    absl::StatusOr<v1::CountRule> rule = LookUp("--count_rule", count_rule_, kCountRules);
    if (!rule.ok()) return rule.status();
    schedule->set_count_rule(*rule);
  }
  if (IsSet("min_layer_sparsity")) {
    if (absl::Status s = CheckFraction("--min_layer_sparsity", min_layer_sparsity_, true); !s.ok()) return s;
    schedule->set_min_layer_sparsity(min_layer_sparsity_);
  }
  if (IsSet("max_layer_sparsity")) {
    if (absl::Status s = CheckFraction("--max_layer_sparsity", max_layer_sparsity_, true); !s.ok()) return s;
    schedule->set_max_layer_sparsity(max_layer_sparsity_);
  }

  if (!solver_.empty()) {
    absl::StatusOr<v1::Solver> solver = LookUp("--solver", solver_, kSolvers);
    if (!solver.ok()) return solver.status();
    method.set_solver(*solver);
  }
  if (IsSet("l1")) method.mutable_lasso_sgd()->set_l1(l1_);
  if (IsSet("lasso_epochs")) {
    absl::StatusOr<int32_t> epochs = CheckedInt32("--lasso_epochs", lasso_epochs_, 1, 10000);
    if (!epochs.ok()) return epochs.status();
    method.mutable_lasso_sgd()->set_max_epochs(*epochs);
  }
  if (IsSet("alpha")) method.mutable_exact()->set_alpha(alpha_);
  if (!sample_encoding_.empty()) {
    absl::StatusOr<v1::ValueEncoding> encoding = LookUp("--sample_encoding", sample_encoding_, kSampleEncodings);
    if (!encoding.ok()) return encoding.status();
    method.set_sample_encoding(*encoding);
  }
  if (memory_budget_mb_ < 0 || memory_budget_mb_ > (int64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat("--memory_budget_mb: ", memory_budget_mb_, " is out of range"));
  }
  method.set_memory_budget_bytes(memory_budget_mb_ << 20);
  method.set_reference_ranking(reference_ranking_);
  method.set_v1_momentum(v1_momentum_);
  method.set_seed(IsSet("method_seed") ? method_seed_ : seed_);
  return method;
}

absl::StatusOr<v1::RunSpec> RunSpecFlags::Build() const {
  v1::RunSpec spec;
  if (!model_.empty() && !layers_.empty()) {
    return absl::InvalidArgumentError("--model and --layers exclude each other: give one");
  }
  if (!layers_.empty()) {
    spec.mutable_model()->set_layers(layers_);
  } else {
    spec.mutable_model()->set_preset(model_.empty() ? "lenet5" : NormaliseName(model_));
  }
  if (!input_shape_.empty()) {
    absl::StatusOr<std::vector<int32_t>> shape = ParseInputShape("--input_shape", input_shape_);
    if (!shape.ok()) return shape.status();
    spec.mutable_input_shape()->Assign(shape->begin(), shape->end());
  }
  absl::StatusOr<int32_t> classes = CheckedInt32("--num_classes", num_classes_, 0, 1 << 24);
  if (!classes.ok()) return classes.status();
  spec.set_num_classes(*classes);

  v1::DataSpec* data = spec.mutable_data();
  data->set_name(NormaliseName(data_));
  data->set_directory(data_dir_);
  absl::StatusOr<int32_t> train_subset = CheckedInt32("--train_subset", train_subset_, 0, INT32_MAX);
  if (!train_subset.ok()) return train_subset.status();
  absl::StatusOr<int32_t> test_subset = CheckedInt32("--test_subset", test_subset_, 0, INT32_MAX);
  if (!test_subset.ok()) return test_subset.status();
  absl::StatusOr<int32_t> test_batch = CheckedInt32("--test_batch_size", test_batch_size_, 0, 65536);
  if (!test_batch.ok()) return test_batch.status();
  data->set_train_subset(*train_subset);
  data->set_test_subset(*test_subset);
  data->set_test_batch_size(*test_batch);

  absl::StatusOr<v1::PhaseSpec> pretrain = BuildPhase("pretrain", pretrain_overrides_, pretrain_epochs_);
  if (!pretrain.ok()) return pretrain.status();
  absl::StatusOr<v1::PhaseSpec> train = BuildPhase("train", train_overrides_, train_epochs_);
  if (!train.ok()) return train.status();
  absl::StatusOr<v1::PhaseSpec> finetune = BuildPhase("finetune", finetune_overrides_, finetune_epochs_);
  if (!finetune.ok()) return finetune.status();
  *spec.mutable_pretrain() = *std::move(pretrain);
  *spec.mutable_train() = *std::move(train);
  *spec.mutable_finetune() = *std::move(finetune);

  v1::CollectionSpec* collection = spec.mutable_collection();
  absl::StatusOr<int32_t> collect_epochs = CheckedInt32("--collect_epochs", collect_epochs_, 0, 1000);
  if (!collect_epochs.ok()) return collect_epochs.status();
  absl::StatusOr<int32_t> collect_batch = CheckedInt32("--collect_batch_size", collect_batch_size_, 0, 65536);
  if (!collect_batch.ok()) return collect_batch.status();
  if (collect_lr_ < 0) return absl::InvalidArgumentError(absl::StrCat("--collect_lr: ", collect_lr_, " is < 0"));
  collection->set_epochs(*collect_epochs);
  collection->set_batch_size(*collect_batch);
  collection->set_learning_rate(collect_lr_);
  collection->set_momentum(collect_momentum_);

  spec.set_seed(seed_);
  absl::StatusOr<v1::MethodConfig> method = BuildMethod();
  if (!method.ok()) return method.status();
  *spec.mutable_method() = *std::move(method);

  v1::PrunerEndpoint* pruner = spec.mutable_pruner();
  // Unset, the trainer dials its own default pruner (its --pruner_address). With method none no pruner
  // is needed, so the environment's is not named either.
  if (!pruner_.empty()) {
    pruner->set_address(pruner_);
  } else if (spec.method().method() != v1::METHOD_NONE) {
    pruner->set_address(AddressFromEnv(kPrunerAddressEnvVar, ""));
  }
  absl::StatusOr<v1::FailurePolicy> policy = LookUp("--failure_policy", failure_policy_, kFailurePolicies);
  if (!policy.ok()) return policy.status();
  pruner->set_failure_policy(*policy);
  if (grace_period_ < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--grace_period: ", absl::FormatDuration(grace_period_), " is negative"));
  }
  pruner->set_grace_period_seconds(absl::ToDoubleSeconds(grace_period_));
  pruner->set_use_tls(pruner_tls_);

  spec.mutable_rewind()->set_rewind_to_pretrained(rewind_);
  spec.mutable_rewind()->set_reset_normalization(reset_norm_);
  if (IsSet("label_smoothing")) {
    if (absl::Status s = CheckFraction("--label_smoothing", label_smoothing_, false); !s.ok()) return s;
    spec.set_label_smoothing(label_smoothing_);
  }
  if (label_.size() > 256) {
    return absl::InvalidArgumentError(absl::StrCat("--label: ", label_.size(), " bytes, at most 256"));
  }
  spec.set_label(label_);
  return spec;
}

}  // namespace gcprune::cli
