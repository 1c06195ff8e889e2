// RunSpec validation and resolution (see run_plan.h).
#include "trainer_service/service/run_plan.h"

#include <sys/stat.h>

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/service/wire_format.h"
#include "trainer_service/engine/model.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

constexpr int kMaxEpochs = 100000;
constexpr int kMaxBatch = 65536;
constexpr int kMaxCollectionEpochs = 1000;
constexpr size_t kMaxLabelBytes = 256;
constexpr double kDefaultGraceSeconds = 60.0;
constexpr double kMaxGraceSeconds = 7 * 86400.0;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

std::string Field(absl::string_view prefix, absl::string_view name) { return absl::StrCat(prefix, ".", name); }

// Checks lo <= value < hi (or <= hi when hi_inclusive), and finiteness.
absl::Status CheckRange(absl::string_view field, double value, double lo, double hi, bool hi_inclusive) {
  const bool ok = std::isfinite(value) && value >= lo && (hi_inclusive ? value <= hi : value < hi);
  if (ok) return absl::OkStatus();
  return Invalid(field, absl::StrCat("must be in [", lo, ", ", hi, hi_inclusive ? "]" : ")", ", got ", value));
}

absl::Status CheckNonNegative(absl::string_view field, double value) {
  if (std::isfinite(value) && value >= 0.0) return absl::OkStatus();
  return Invalid(field, absl::StrCat("must be finite and >= 0, got ", value));
}

std::string ShapeText(const std::vector<int64_t>& shape) { return absl::StrCat("[", absl::StrJoin(shape, ", "), "]"); }

absl::StatusOr<OptimizerPlan> ResolveOptimizer(const v1::OptimizerSpec& spec, absl::string_view prefix,
                                               bool required) {
  OptimizerPlan plan;
  switch (spec.kind()) {
    case v1::OPTIMIZER_KIND_UNSPECIFIED:
    case v1::OPTIMIZER_KIND_SGD:
      plan.type = OptimizerType::kSgd;
      break;
    case v1::OPTIMIZER_KIND_ADAM:
      plan.type = OptimizerType::kAdam;
      break;
    default:
      return Invalid(Field(prefix, "kind"), absl::StrCat("unknown value ", static_cast<int>(spec.kind())));
  }
  const double lr = spec.learning_rate();
  if (required || lr != 0.0) {
    if (!(std::isfinite(lr) && lr > 0.0)) {
      return Invalid(Field(prefix, "learning_rate"), absl::StrCat("must be finite and > 0, got ", lr));
    }
  }
  plan.learning_rate = lr;
  const bool adam = plan.type == OptimizerType::kAdam;
  if (adam && spec.momentum() != 0.0) {
    return Invalid(Field(prefix, "momentum"), absl::StrCat("applies to SGD only, got ", spec.momentum(), " with ADAM"));
  }
  if (adam && spec.nesterov()) return Invalid(Field(prefix, "nesterov"), "applies to SGD only, got true with ADAM");
  GCPRUNE_RETURN_IF_ERROR(CheckRange(Field(prefix, "momentum"), spec.momentum(), 0.0, 1.0, false));
  plan.momentum = spec.momentum();
  GCPRUNE_RETURN_IF_ERROR(CheckNonNegative(Field(prefix, "weight_decay"), spec.weight_decay()));
  plan.weight_decay = spec.weight_decay();
  if (spec.nesterov() && !(spec.momentum() > 0.0)) {
    return Invalid(Field(prefix, "nesterov"), absl::StrCat("needs momentum > 0, got momentum ", spec.momentum()));
  }
  plan.nesterov = spec.nesterov();
  if (!adam && (spec.has_beta1() || spec.has_beta2() || spec.has_epsilon())) {
    const char* name = spec.has_beta1() ? "beta1" : spec.has_beta2() ? "beta2" : "epsilon";
    return Invalid(Field(prefix, name), "applies to ADAM only, but the optimizer is SGD");
  }
  if (spec.has_beta1()) {
    GCPRUNE_RETURN_IF_ERROR(CheckRange(Field(prefix, "beta1"), spec.beta1(), 0.0, 1.0, false));
    plan.beta1 = spec.beta1();
  }
  if (spec.has_beta2()) {
    GCPRUNE_RETURN_IF_ERROR(CheckRange(Field(prefix, "beta2"), spec.beta2(), 0.0, 1.0, false));
    plan.beta2 = spec.beta2();
  }
  if (spec.has_epsilon()) {
    if (!(std::isfinite(spec.epsilon()) && spec.epsilon() > 0.0)) {
      return Invalid(Field(prefix, "epsilon"), absl::StrCat("must be finite and > 0, got ", spec.epsilon()));
    }
    plan.epsilon = spec.epsilon();
  }
  return plan;
}

absl::StatusOr<LrPlan> ResolveLrSchedule(const v1::LrSchedule& spec, absl::string_view prefix) {
  LrPlan plan;
  switch (spec.kind()) {
    case v1::LR_SCHEDULE_KIND_UNSPECIFIED:
    case v1::LR_SCHEDULE_KIND_CONSTANT:
      plan.type = LrScheduleType::kConstant;
      return plan;
    case v1::LR_SCHEDULE_KIND_COSINE:
      plan.type = LrScheduleType::kCosine;
      GCPRUNE_RETURN_IF_ERROR(CheckNonNegative(Field(prefix, "min_learning_rate"), spec.min_learning_rate()));
      plan.min_learning_rate = spec.min_learning_rate();
      return plan;
    case v1::LR_SCHEDULE_KIND_STEP:
      plan.type = LrScheduleType::kStep;
      if (spec.step_epochs() < 1) {
        return Invalid(Field(prefix, "step_epochs"), absl::StrCat("must be >= 1 for STEP, got ", spec.step_epochs()));
      }
      plan.step_epochs = spec.step_epochs();
      if (!(std::isfinite(spec.gamma()) && spec.gamma() > 0.0 && spec.gamma() <= 1.0)) {
        return Invalid(Field(prefix, "gamma"), absl::StrCat("must be in (0, 1] for STEP, got ", spec.gamma()));
      }
      plan.gamma = spec.gamma();
      return plan;
    default:
      return Invalid(Field(prefix, "kind"), absl::StrCat("unknown value ", static_cast<int>(spec.kind())));
  }
}

absl::StatusOr<PhasePlan> ResolvePhase(const v1::PhaseSpec& spec, absl::string_view prefix) {
  PhasePlan plan;
  if (spec.epochs() < 0 || spec.epochs() > kMaxEpochs) {
    return Invalid(Field(prefix, "epochs"), absl::StrCat("must be in [0, ", kMaxEpochs, "], got ", spec.epochs()));
  }
  plan.epochs = spec.epochs();
  const bool active = plan.epochs > 0;
  if (spec.batch_size() < (active ? 1 : 0) || spec.batch_size() > kMaxBatch) {
    return Invalid(Field(prefix, "batch_size"),
                   absl::StrCat("must be in [1, ", kMaxBatch, "]", active ? " when epochs > 0" : "", ", got ",
                                spec.batch_size()));
  }
  if (spec.batch_size() > 0) plan.batch_size = spec.batch_size();
  GCPRUNE_ASSIGN_OR_RETURN(plan.optimizer, ResolveOptimizer(spec.optimizer(), Field(prefix, "optimizer"), active));
  GCPRUNE_ASSIGN_OR_RETURN(plan.lr, ResolveLrSchedule(spec.lr_schedule(), Field(prefix, "lr_schedule")));
  if (spec.early_stop().patience() < 0) {
    return Invalid(Field(prefix, "early_stop.patience"),
                   absl::StrCat("must be >= 0, got ", spec.early_stop().patience()));
  }
  GCPRUNE_RETURN_IF_ERROR(CheckNonNegative(Field(prefix, "early_stop.min_delta"), spec.early_stop().min_delta()));
  plan.early_stop_patience = spec.early_stop().patience();
  plan.early_stop_min_delta = spec.early_stop().min_delta();
  return plan;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

absl::StatusOr<DataPlan> ResolveData(const v1::RunSpec& spec, const RunSpecDefaults& defaults) {
  const v1::DataSpec& data = spec.data();
  DataPlan plan;
  const std::string name = absl::AsciiStrToLower(data.name());
  if (name.empty() || name == "fashion-mnist" || name == "fashion_mnist" || name == "fashionmnist") {
    plan.source = DataSource::kFashionMnist;
    plan.name = "fashion-mnist";
  } else if (name == "mnist") {
    plan.source = DataSource::kMnist;
    plan.name = "mnist";
  } else if (name == "cifar10" || name == "cifar-10") {
    plan.source = DataSource::kCifar10;
    plan.name = "cifar10";
  } else if (name == "synthetic") {
    plan.source = DataSource::kSynthetic;
    plan.name = "synthetic";
  } else {
    return Invalid("spec.data.name", absl::StrCat("unknown data set '", data.name(), "' (known: ",
                                                  absl::StrJoin(DataSetNames(), ", "), ")"));
  }
  if (data.train_subset() < 0) {
    return Invalid("spec.data.train_subset", absl::StrCat("must be >= 0, got ", data.train_subset()));
  }
  if (data.test_subset() < 0) {
    return Invalid("spec.data.test_subset", absl::StrCat("must be >= 0, got ", data.test_subset()));
  }
  if (data.test_batch_size() < 0 || data.test_batch_size() > kMaxBatch) {
    return Invalid("spec.data.test_batch_size",
                   absl::StrCat("must be in [0, ", kMaxBatch, "], got ", data.test_batch_size()));
  }
  plan.train_subset = data.train_subset();
  plan.test_subset = data.test_subset();
  if (data.test_batch_size() > 0) plan.test_batch_size = data.test_batch_size();

  // Shape and classes of the data set; a given input_shape / num_classes must agree with them.
  std::vector<int64_t> shape;
  int classes = 10;
  switch (plan.source) {
    case DataSource::kFashionMnist:
    case DataSource::kMnist:
      shape = {1, 28, 28};
      break;
    case DataSource::kCifar10:
      shape = {3, 32, 32};
      break;
    case DataSource::kSynthetic:
      shape = {1, 28, 28};
      break;
  }
  if (spec.input_shape_size() != 0) {
    if (spec.input_shape_size() != 3) {
      return Invalid("spec.input_shape", absl::StrCat("must be [C, H, W] (3 values), got ", spec.input_shape_size(),
                                                      " values"));
    }
    std::vector<int64_t> given;
    for (int i = 0; i < 3; ++i) {
      if (spec.input_shape(i) < 1 || spec.input_shape(i) > 65536) {
        return Invalid(absl::StrCat("spec.input_shape[", i, "]"),
                       absl::StrCat("must be in [1, 65536], got ", spec.input_shape(i)));
      }
      given.push_back(spec.input_shape(i));
    }
    if (plan.source == DataSource::kSynthetic) {
      shape = given;
    } else if (given != shape) {
      return Invalid("spec.input_shape", absl::StrCat(ShapeText(given), " does not match ", plan.name, "'s ",
                                                      ShapeText(shape)));
    }
  }
  if (spec.num_classes() < 0 || spec.num_classes() == 1 || spec.num_classes() > 100000) {
    return Invalid("spec.num_classes", absl::StrCat("must be 0 or in [2, 100000], got ", spec.num_classes()));
  }
  if (spec.num_classes() != 0) {
    if (plan.source == DataSource::kSynthetic) {
      classes = spec.num_classes();
    } else if (spec.num_classes() != classes) {
      return Invalid("spec.num_classes",
                     absl::StrCat(spec.num_classes(), " does not match ", plan.name, "'s ", classes, " classes"));
    }
  }
  plan.input_shape = shape;
  plan.num_classes = classes;

  if (plan.source == DataSource::kSynthetic) {
    if (!data.directory().empty()) {
      return Invalid("spec.data.directory", absl::StrCat("must be empty for synthetic data, got '", data.directory(), "'"));
    }
    return plan;
  }
  plan.directory = data.directory();
  if (plan.directory.empty()) {
    const std::string folder = plan.source == DataSource::kFashionMnist ? "fashion-mnist"
                               : plan.source == DataSource::kMnist      ? "mnist"
                                                                        : "cifar10";
    plan.directory = absl::StrCat(defaults.data_root, "/", folder);
  }
  if (!IsDirectory(plan.directory)) {
    return absl::NotFoundError(absl::StrCat("spec.data.directory: ", plan.name, " directory '", plan.directory,
                                            "' does not exist or is not a directory"));
  }
  return plan;
}

absl::StatusOr<ModelSpec> ResolveModel(const v1::ModelSpec& spec, const DataPlan& data) {
  ModelSpec model;
  switch (spec.source_case()) {
    case v1::ModelSpec::kPreset: {
      absl::StatusOr<ModelSpec> preset = PresetModelSpec(spec.preset());
      if (!preset.ok()) return Invalid("spec.model.preset", preset.status().message());
      model = *std::move(preset);
      break;
    }
    case v1::ModelSpec::kLayers: {
      absl::StatusOr<std::vector<LayerSpec>> layers = ParseLayers(NormalizeLayerText(spec.layers()));
      if (!layers.ok()) return Invalid("spec.model.layers", layers.status().message());
      model.name = "custom";
      model.layers = *std::move(layers);
      break;
    }
    default:
      return Invalid("spec.model", "exactly one of preset and layers must be set, got neither");
  }
  model.input_shape = data.input_shape;
  // Building the model once is the only complete check that the layers fit the input shape.
  absl::StatusOr<std::unique_ptr<Model>> built = Model::Create(model, /*seed=*/0);
  if (!built.ok()) {
    return absl::Status(built.status().code() == absl::StatusCode::kInvalidArgument ? built.status().code()
                                                                                     : absl::StatusCode::kInternal,
                        absl::StrCat("spec.model: ", built.status().message()));
  }
  if ((*built)->num_classes() != data.num_classes) {
    return Invalid("spec.model", absl::StrCat("the model has ", (*built)->num_classes(), " outputs but ", data.name,
                                              " has ", data.num_classes, " classes"));
  }
  return model;
}

MethodKind KindOf(pruner::Method method) {
  switch (method) {
    case pruner::Method::kCausalV2:
      return MethodKind::kCausalV2;
    case pruner::Method::kCausalV1:
      return MethodKind::kCausalV1;
    case pruner::Method::kMagnitudeGlobal:
      return MethodKind::kMagnitudeGlobal;
    case pruner::Method::kMagnitudeLayer:
      return MethodKind::kMagnitudeLayer;
    case pruner::Method::kRandom:
      return MethodKind::kRandom;
    case pruner::Method::kNone:
      return MethodKind::kNone;
  }
  return MethodKind::kNone;
}

absl::Status ResolveMethod(const v1::RunSpec& spec, RunPlan* plan) {
  GCPRUNE_ASSIGN_OR_RETURN(pruner::MethodConfig config, pruner::MethodConfigFromProto(spec.method(), "spec.method"));
  plan->method = spec.method();
  if (plan->method.seed() == 0) {
    plan->method.set_seed(spec.seed());
    config.seed = spec.seed();
  }
  GCPRUNE_ASSIGN_OR_RETURN(pruner::MethodConfig resolved, pruner::ResolveMethodConfig(config));
  GCPRUNE_ASSIGN_OR_RETURN(pruner::Schedule schedule, pruner::MakeSchedule(resolved));
  plan->method_kind = KindOf(resolved.method);
  plan->iterations = schedule.num_iterations();
  plan->target_sparsity.clear();
  for (int j = 1; j <= plan->iterations; ++j) {
    plan->target_sparsity.push_back(plan->method_kind == MethodKind::kCausalV1
                                        ? std::numeric_limits<double>::quiet_NaN()
                                        : schedule.TargetSparsity(j));
  }
  plan->wants_steps = pruner::IsCausal(resolved.method);
  plan->wants_weights = pruner::NeedsWeights(resolved.method);
  return absl::OkStatus();
}

absl::StatusOr<CollectionPlan> ResolveCollection(const v1::CollectionSpec& spec, MethodKind kind) {
  const bool v1_method = kind == MethodKind::kCausalV1;
  CollectionPlan plan;
  if (spec.epochs() < 0 || spec.epochs() > kMaxCollectionEpochs) {
    return Invalid("spec.collection.epochs",
                   absl::StrCat("must be in [0, ", kMaxCollectionEpochs, "], got ", spec.epochs()));
  }
  plan.epochs = spec.epochs() != 0 ? spec.epochs() : (v1_method ? 10 : 1);
  if (!(std::isfinite(spec.learning_rate()) && spec.learning_rate() >= 0.0)) {
    return Invalid("spec.collection.learning_rate",
                   absl::StrCat("must be finite and > 0 (0 = 1e-3), got ", spec.learning_rate()));
  }
  plan.learning_rate = spec.learning_rate() != 0.0 ? spec.learning_rate() : 1e-3;
  if (spec.batch_size() < 0 || spec.batch_size() > kMaxBatch) {
    return Invalid("spec.collection.batch_size",
                   absl::StrCat("must be in [0, ", kMaxBatch, "] (0 = the method's default), got ", spec.batch_size()));
  }
  plan.batch_size = spec.batch_size() != 0 ? spec.batch_size() : (v1_method ? 512 : 256);
  GCPRUNE_RETURN_IF_ERROR(CheckRange("spec.collection.momentum", spec.momentum(), 0.0, 1.0, false));
  if (spec.momentum() != 0.0 && kind == MethodKind::kCausalV2) {
    return Invalid("spec.collection.momentum",
                   absl::StrCat("causal-v2 collects with plain SGD (momentum 0), got ", spec.momentum()));
  }
  plan.momentum = spec.momentum();
  return plan;
}

absl::StatusOr<PrunerPlan> ResolvePruner(const v1::PrunerEndpoint& spec, MethodKind kind,
                                         const RunSpecDefaults& defaults) {
  PrunerPlan plan;
  plan.address = spec.address().empty() ? defaults.pruner_address : spec.address();
  if (plan.address.empty()) {
    if (kind != MethodKind::kNone) {
      return Invalid("spec.pruner.address",
                     absl::StrCat("required for method ", MethodKindName(kind), " (the server has no default pruner)"));
    }
    plan.enabled = false;
  }
  switch (spec.failure_policy()) {
    case v1::FAILURE_POLICY_UNSPECIFIED:
    case v1::FAILURE_POLICY_FAIL_OPEN:
      plan.fail_open = true;
      break;
    case v1::FAILURE_POLICY_STRICT:
      plan.fail_open = false;
      break;
    default:
      return Invalid("spec.pruner.failure_policy",
                     absl::StrCat("unknown value ", static_cast<int>(spec.failure_policy())));
  }
  GCPRUNE_RETURN_IF_ERROR(
      CheckRange("spec.pruner.grace_period_seconds", spec.grace_period_seconds(), 0.0, kMaxGraceSeconds, true));
  plan.grace_seconds = spec.grace_period_seconds() > 0.0 ? spec.grace_period_seconds() : kDefaultGraceSeconds;
  plan.use_tls = spec.use_tls();
  return plan;
}

}  // namespace

std::vector<std::string> DataSetNames() { return {"fashion-mnist", "mnist", "cifar10", "synthetic"}; }

absl::string_view MethodKindName(MethodKind kind) {
  switch (kind) {
    case MethodKind::kCausalV2:
      return "causal-v2";
    case MethodKind::kCausalV1:
      return "causal-v1";
    case MethodKind::kMagnitudeGlobal:
      return "magnitude-global";
    case MethodKind::kMagnitudeLayer:
      return "magnitude-layer";
    case MethodKind::kRandom:
      return "random";
    case MethodKind::kNone:
      return "none";
  }
  return "unknown";
}

std::string NormalizeLayerText(absl::string_view text) {
  // Split on commas outside parentheses, then rewrite "name(a,b,k=v)" as "name:a:b:k=v".
  std::vector<std::string> tokens;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth <= 0) {
      tokens.push_back(current);
      current.clear();
      continue;
    }
    current.push_back(c);
  }
  tokens.push_back(current);
  for (std::string& token : tokens) {
    std::string t(absl::StripAsciiWhitespace(token));
    const size_t open = t.find('(');
    if (open != std::string::npos && !t.empty() && t.back() == ')') {
      std::string name(absl::StripAsciiWhitespace(t.substr(0, open)));
      const std::string args = t.substr(open + 1, t.size() - open - 2);
      if (name == "fc") name = "linear";
      std::vector<std::string> parts;
      for (absl::string_view part : absl::StrSplit(args, ',')) {
        parts.emplace_back(absl::StripAsciiWhitespace(part));
      }
      t = parts.empty() || (parts.size() == 1 && parts[0].empty()) ? name
                                                                    : absl::StrCat(name, ":", absl::StrJoin(parts, ":"));
    } else if (t == "fc") {
      t = "linear";
    }
    token = t;
  }
  return absl::StrJoin(tokens, ",");
}

absl::StatusOr<RunPlan> ResolveRunSpec(const v1::RunSpec& spec, const RunSpecDefaults& defaults) {
  RunPlan plan;
  plan.spec = spec;
  plan.seed = spec.seed();
  if (spec.label().size() > kMaxLabelBytes) {
    return Invalid("spec.label", absl::StrCat("must be at most ", kMaxLabelBytes, " bytes, got ", spec.label().size()));
  }
  plan.label = spec.label();
  GCPRUNE_RETURN_IF_ERROR(ResolveMethod(spec, &plan));
  GCPRUNE_ASSIGN_OR_RETURN(plan.pretrain, ResolvePhase(spec.pretrain(), "spec.pretrain"));
  GCPRUNE_ASSIGN_OR_RETURN(plan.train, ResolvePhase(spec.train(), "spec.train"));
  GCPRUNE_ASSIGN_OR_RETURN(plan.finetune, ResolvePhase(spec.finetune(), "spec.finetune"));
  GCPRUNE_ASSIGN_OR_RETURN(plan.collection, ResolveCollection(spec.collection(), plan.method_kind));
  GCPRUNE_ASSIGN_OR_RETURN(plan.pruner, ResolvePruner(spec.pruner(), plan.method_kind, defaults));
  const bool v1_method = plan.method_kind == MethodKind::kCausalV1;
  plan.rewind_to_pretrained = spec.rewind().rewind_to_pretrained() || v1_method;
  plan.reset_normalization = spec.rewind().reset_normalization();
  if (spec.has_label_smoothing()) {
    GCPRUNE_RETURN_IF_ERROR(CheckRange("spec.label_smoothing", spec.label_smoothing(), 0.0, 1.0, false));
    plan.label_smoothing = static_cast<float>(spec.label_smoothing());
  } else {
    plan.label_smoothing = v1_method ? 0.0f : 0.1f;
  }
  // Data last: it is the only check that touches the file system.
  GCPRUNE_ASSIGN_OR_RETURN(plan.data, ResolveData(spec, defaults));
  GCPRUNE_ASSIGN_OR_RETURN(plan.model, ResolveModel(spec.model(), plan.data));
  return plan;
}

}  // namespace gcprune::trainer
