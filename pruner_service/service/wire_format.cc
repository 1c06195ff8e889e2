// Conversions between gcprune.v1 messages and the causal core (see wire_format.h).
#include "pruner_service/service/wire_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/mask_runs.h"
#include "common/status_macros.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Prefixes a core validation message ("schedule.iterations: 0 ...") with the wire path of the config.
absl::Status Prefixed(absl::string_view field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(field, ".", status.message()));
}

absl::StatusOr<Method> MethodFromProto(v1::Method method, absl::string_view field) {
  switch (method) {
    case v1::METHOD_UNSPECIFIED:
    case v1::METHOD_CAUSAL_V2:
      return Method::kCausalV2;
    case v1::METHOD_CAUSAL_V1:
      return Method::kCausalV1;
    case v1::METHOD_MAGNITUDE_GLOBAL:
      return Method::kMagnitudeGlobal;
    case v1::METHOD_MAGNITUDE_LAYER:
      return Method::kMagnitudeLayer;
    case v1::METHOD_RANDOM:
      return Method::kRandom;
    case v1::METHOD_NONE:
      return Method::kNone;
    default:
      return Invalid(absl::StrCat(field, ".method"), absl::StrCat("unknown value ", static_cast<int>(method)));
  }
}

v1::Method MethodToProto(Method method) {
  switch (method) {
    case Method::kCausalV2:
      return v1::METHOD_CAUSAL_V2;
    case Method::kCausalV1:
      return v1::METHOD_CAUSAL_V1;
    case Method::kMagnitudeGlobal:
      return v1::METHOD_MAGNITUDE_GLOBAL;
    case Method::kMagnitudeLayer:
      return v1::METHOD_MAGNITUDE_LAYER;
    case Method::kRandom:
      return v1::METHOD_RANDOM;
    case Method::kNone:
      return v1::METHOD_NONE;
  }
  return v1::METHOD_UNSPECIFIED;
}

absl::StatusOr<std::optional<ScheduleKind>> ScheduleKindFromProto(v1::ScheduleKind kind, absl::string_view field) {
  switch (kind) {
    case v1::SCHEDULE_KIND_UNSPECIFIED:
      return std::optional<ScheduleKind>();
    case v1::SCHEDULE_KIND_CUBIC:
      return std::optional<ScheduleKind>(ScheduleKind::kCubic);
    case v1::SCHEDULE_KIND_GEOMETRIC:
      return std::optional<ScheduleKind>(ScheduleKind::kGeometric);
    case v1::SCHEDULE_KIND_ONE_SHOT:
      return std::optional<ScheduleKind>(ScheduleKind::kOneShot);
    case v1::SCHEDULE_KIND_CUSTOM:
      return std::optional<ScheduleKind>(ScheduleKind::kCustom);
    default:
      return Invalid(absl::StrCat(field, ".schedule.kind"), absl::StrCat("unknown value ", static_cast<int>(kind)));
  }
}

v1::ScheduleKind ScheduleKindToProto(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kCubic:
      return v1::SCHEDULE_KIND_CUBIC;
    case ScheduleKind::kGeometric:
      return v1::SCHEDULE_KIND_GEOMETRIC;
    case ScheduleKind::kOneShot:
      return v1::SCHEDULE_KIND_ONE_SHOT;
    case ScheduleKind::kCustom:
      return v1::SCHEDULE_KIND_CUSTOM;
  }
  return v1::SCHEDULE_KIND_UNSPECIFIED;
}

absl::Status ScheduleFromProto(const v1::Schedule& proto, absl::string_view field, ScheduleParams* s) {
  GCPRUNE_ASSIGN_OR_RETURN(s->kind, ScheduleKindFromProto(proto.kind(), field));
  if (proto.has_target_sparsity()) s->target_sparsity = proto.target_sparsity();
  if (proto.has_iterations()) s->iterations = proto.iterations();
  s->custom_sparsity.assign(proto.custom_sparsity().begin(), proto.custom_sparsity().end());
  switch (proto.scope()) {
    case v1::PRUNING_SCOPE_UNSPECIFIED:
      s->scope.reset();
      break;
    case v1::PRUNING_SCOPE_GLOBAL:
      s->scope = RankScope::kGlobal;
      break;
    case v1::PRUNING_SCOPE_PER_LAYER:
      s->scope = RankScope::kPerLayer;
      break;
    default:
      return Invalid(absl::StrCat(field, ".schedule.scope"),
                     absl::StrCat("unknown value ", static_cast<int>(proto.scope())));
  }
  if (proto.has_min_layer_sparsity()) s->min_layer_sparsity = proto.min_layer_sparsity();
  if (proto.has_max_layer_sparsity()) s->max_layer_sparsity = proto.max_layer_sparsity();
  s->allow_layer_collapse = proto.allow_layer_collapse();
  switch (proto.count_rule()) {
    case v1::COUNT_RULE_UNSPECIFIED:
    case v1::COUNT_RULE_CUMULATIVE:
      s->count_rule = CountRule::kCumulative;
      break;
    case v1::COUNT_RULE_REFERENCE_INCREMENTAL:
      s->count_rule = CountRule::kReferenceIncremental;
      break;
    default:
      return Invalid(absl::StrCat(field, ".schedule.count_rule"),
                     absl::StrCat("unknown value ", static_cast<int>(proto.count_rule())));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Layout> LayoutFromProto(const v1::Layout& proto, absl::string_view field) {
  const int n = proto.tensors_size();
  if (n < 1 || n > kMaxLayoutTensors) {
    return Invalid(absl::StrCat(field, ".tensors"),
                   absl::StrCat(n, " tensors, expected 1 to ", kMaxLayoutTensors));
  }
  std::vector<TensorSpec> specs;
  specs.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const v1::TensorSpec& t = proto.tensors(i);
    const std::string tf = absl::StrCat(field, ".tensors[", i, "]");
    if (t.name().empty() || t.name().size() > kMaxTensorNameBytes) {
      return Invalid(absl::StrCat(tf, ".name"),
                     absl::StrCat("length ", t.name().size(), " bytes, expected 1 to ", kMaxTensorNameBytes));
    }
    if (t.shape_size() < 1 || t.shape_size() > kMaxTensorRank) {
      return Invalid(absl::StrCat(tf, ".shape"), absl::StrCat("tensor '", t.name(), "' has ", t.shape_size(),
                                                             " dimensions, expected 1 to ", kMaxTensorRank));
    }
    // The product is bounded before Layout::Create sees it, so it cannot overflow there.
    int64_t numel = 1;
    for (int d = 0; d < t.shape_size(); ++d) {
      const int64_t dim = t.shape(d);
      if (dim < 1) {
        return Invalid(absl::StrCat(tf, ".shape[", d, "]"),
                       absl::StrCat(dim, " in tensor '", t.name(), "', expected >= 1"));
      }
      if (numel > (int64_t{1} << 40) / dim) {
        return Invalid(absl::StrCat(tf, ".shape"),
                       absl::StrCat("tensor '", t.name(), "' has more than 2^40 elements"));
      }
      numel *= dim;
    }
    specs.push_back(TensorSpec{t.name(), std::vector<int64_t>(t.shape().begin(), t.shape().end()), t.prunable()});
  }
  absl::StatusOr<Layout> layout = Layout::Create(std::move(specs));
  if (!layout.ok()) return Invalid(field, layout.status().message());
  return layout;
}

v1::Layout LayoutToProto(const Layout& layout) {
  v1::Layout proto;
  for (const TensorSpec& t : layout.tensors()) {
    v1::TensorSpec* spec = proto.add_tensors();
    spec->set_name(t.name);
    for (int64_t d : t.shape) spec->add_shape(d);
    spec->set_prunable(t.prunable);
  }
  return proto;
}

absl::Status CheckLayoutMatches(const Layout& layout, const v1::Layout& expected, absl::string_view field) {
  const int n = std::min(layout.num_tensors(), expected.tensors_size());
  for (int i = 0; i < n; ++i) {
    const TensorSpec& have = layout.tensor(i);
    const v1::TensorSpec& want = expected.tensors(i);
    const bool same_shape = std::equal(have.shape.begin(), have.shape.end(), want.shape().begin(),
                                       want.shape().end());
    if (have.name != want.name() || !same_shape || have.prunable != want.prunable()) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, ".tensors[", i, "]: '", want.name(), "' differs from the session's tensor '",
                       have.name, "' (name, shape or prunable flag)"));
    }
  }
  if (layout.num_tensors() != expected.tensors_size()) {
    return absl::FailedPreconditionError(absl::StrCat(field, ".tensors: ", expected.tensors_size(),
                                                      " tensors, the session has ", layout.num_tensors()));
  }
  return absl::OkStatus();
}

absl::StatusOr<MethodConfig> MethodConfigFromProto(const v1::MethodConfig& proto, absl::string_view field) {
  MethodConfig c;
  GCPRUNE_ASSIGN_OR_RETURN(c.method, MethodFromProto(proto.method(), field));
  switch (proto.solver()) {
    case v1::SOLVER_UNSPECIFIED:
    case v1::SOLVER_LASSO_SGD:
      c.solver = Solver::kLassoSgd;
      break;
    case v1::SOLVER_EXACT:
      c.solver = Solver::kExact;
      break;
    default:
      return Invalid(absl::StrCat(field, ".solver"), absl::StrCat("unknown value ", static_cast<int>(proto.solver())));
  }
  GCPRUNE_RETURN_IF_ERROR(ScheduleFromProto(proto.schedule(), field, &c.schedule));

  const v1::LassoSgdConfig& l = proto.lasso_sgd();
  if (l.has_lr0()) c.lasso_sgd.lr0 = l.lr0();
  if (l.has_lr_power()) c.lasso_sgd.lr_power = l.lr_power();
  if (l.has_l1()) c.lasso_sgd.l1 = l.l1();
  if (l.has_minibatch()) c.lasso_sgd.minibatch = l.minibatch();
  if (l.has_max_epochs()) c.lasso_sgd.max_epochs = l.max_epochs();
  if (l.has_patience()) c.lasso_sgd.patience = l.patience();
  if (l.has_tol()) c.lasso_sgd.tol = l.tol();
  if (l.has_grad_clamp()) c.lasso_sgd.grad_clamp = l.grad_clamp();

  const v1::ExactLassoConfig& e = proto.exact();
  if (e.has_alpha()) c.exact.alpha = e.alpha();
  if (e.has_tolerance()) c.exact.tolerance = e.tolerance();
  if (e.has_max_iterations()) c.exact.max_iterations = e.max_iterations();

  c.seed = proto.seed();
  switch (proto.sample_encoding()) {
    case v1::VALUE_ENCODING_UNSPECIFIED:
    case v1::VALUE_ENCODING_FLOAT32:
      c.sample_encoding = SampleEncoding::kFloat32;
      break;
    case v1::VALUE_ENCODING_BFLOAT16:
      c.sample_encoding = SampleEncoding::kBfloat16;
      break;
    case v1::VALUE_ENCODING_FLOAT16:
      return Invalid(absl::StrCat(field, ".sample_encoding"),
                     "VALUE_ENCODING_FLOAT16 is not a sample encoding (FLOAT32 or BFLOAT16)");
    default:
      return Invalid(absl::StrCat(field, ".sample_encoding"),
                     absl::StrCat("unknown value ", static_cast<int>(proto.sample_encoding())));
  }
  c.memory_budget_bytes = proto.memory_budget_bytes();
  c.reference_ranking = proto.reference_ranking();
  c.v1_momentum = proto.v1_momentum();
  GCPRUNE_RETURN_IF_ERROR(Prefixed(field, ValidateMethodConfig(c)));
  return c;
}

v1::MethodConfig MethodConfigToProto(const MethodConfig& c) {
  v1::MethodConfig proto;
  proto.set_method(MethodToProto(c.method));
  proto.set_solver(c.solver == Solver::kExact ? v1::SOLVER_EXACT : v1::SOLVER_LASSO_SGD);
  v1::Schedule* s = proto.mutable_schedule();
  if (c.schedule.kind) s->set_kind(ScheduleKindToProto(*c.schedule.kind));
  s->set_target_sparsity(c.schedule.target_sparsity);
  if (c.schedule.iterations) s->set_iterations(*c.schedule.iterations);
  for (double v : c.schedule.custom_sparsity) s->add_custom_sparsity(v);
  if (c.schedule.scope) {
    s->set_scope(*c.schedule.scope == RankScope::kGlobal ? v1::PRUNING_SCOPE_GLOBAL : v1::PRUNING_SCOPE_PER_LAYER);
  }
  s->set_min_layer_sparsity(c.schedule.min_layer_sparsity);
  s->set_max_layer_sparsity(c.schedule.max_layer_sparsity);
  s->set_allow_layer_collapse(c.schedule.allow_layer_collapse);
  s->set_count_rule(c.schedule.count_rule == CountRule::kReferenceIncremental ? v1::COUNT_RULE_REFERENCE_INCREMENTAL
                                                                              : v1::COUNT_RULE_CUMULATIVE);

  v1::LassoSgdConfig* l = proto.mutable_lasso_sgd();
  if (c.lasso_sgd.lr0) l->set_lr0(*c.lasso_sgd.lr0);
  if (c.lasso_sgd.lr_power) l->set_lr_power(*c.lasso_sgd.lr_power);
  if (c.lasso_sgd.l1) l->set_l1(*c.lasso_sgd.l1);
  if (c.lasso_sgd.minibatch) l->set_minibatch(*c.lasso_sgd.minibatch);
  l->set_max_epochs(c.lasso_sgd.max_epochs);
  l->set_patience(c.lasso_sgd.patience);
  l->set_tol(c.lasso_sgd.tol);
  l->set_grad_clamp(c.lasso_sgd.grad_clamp);

  v1::ExactLassoConfig* e = proto.mutable_exact();
  if (c.exact.alpha) e->set_alpha(*c.exact.alpha);
  e->set_tolerance(c.exact.tolerance);
  e->set_max_iterations(c.exact.max_iterations);

  proto.set_seed(c.seed);
  proto.set_sample_encoding(c.sample_encoding == SampleEncoding::kBfloat16 ? v1::VALUE_ENCODING_BFLOAT16
                                                                           : v1::VALUE_ENCODING_FLOAT32);
  proto.set_memory_budget_bytes(c.memory_budget_bytes);
  proto.set_reference_ranking(c.reference_ranking);
  proto.set_v1_momentum(c.v1_momentum);
  return proto;
}

MaskCursor AppendMaskRuns(const MaskSet& mask, const std::vector<int>& tensors, MaskCursor start, int64_t max_bytes,
                          v1::MaskUpdate* update) {
  max_bytes = std::max<int64_t>(max_bytes, 1);
  int64_t budget = max_bytes;
  MaskCursor cursor = start;
  while (cursor.list_index < static_cast<int>(tensors.size()) && budget > 0) {
    const int p = tensors[static_cast<size_t>(cursor.list_index)];
    const MaskTensor& t = mask.tensor(p);
    const std::string packed = mask.PackTensor(p);
    // The rest of the tensor from the cursor (a multiple of 8), as runs of at most max_bytes bytes.
    absl::StatusOr<std::vector<v1::TensorMask>> runs =
        common::SplitPackedMask(static_cast<uint32_t>(t.layout_index), absl::string_view(packed).substr(cursor.offset / 8),
                                t.numel - cursor.offset, max_bytes);
    if (!runs.ok()) break;  // impossible for a consistent mask and cursor
    for (v1::TensorMask& run : *runs) {
      const int64_t bytes = static_cast<int64_t>(run.bits().size());
      if (bytes > budget) return cursor;
      budget -= bytes;
      run.set_offset(run.offset() + cursor.offset);
      cursor.offset = run.offset() + run.num_elements();
      *update->add_masks() = std::move(run);
    }
    ++cursor.list_index;
    cursor.offset = 0;
  }
  return cursor;
}

void FillMaskSummary(const MaskSet& mask, const std::vector<int>& tensors, double target_sparsity,
                     bool final_iteration, v1::MaskUpdate* update) {
  update->set_last_part(true);
  for (int p : tensors) {
    const MaskTensor& t = mask.tensor(p);
    v1::TensorSparsity* s = update->add_tensors();
    s->set_tensor_index(static_cast<uint32_t>(t.layout_index));
    s->set_name(t.name);
    s->set_num_elements(t.numel);
    s->set_pruned(mask.num_pruned(p));
    s->set_kept(t.numel - mask.num_pruned(p));
    s->set_sparsity(mask.sparsity(p));
    s->set_target_sparsity(target_sparsity);
  }
  update->set_global_sparsity(mask.sparsity());
  update->set_target_sparsity(target_sparsity);
  update->set_kept(mask.num_kept());
  update->set_pruned(mask.num_pruned());
  update->set_final_iteration(final_iteration);
}

std::vector<v1::MaskUpdate> MakeMaskUpdates(const MaskSet& mask, int iteration, int64_t apply_at_step,
                                            double target_sparsity, bool final_iteration, int64_t max_part_bytes) {
  std::vector<int> all(static_cast<size_t>(mask.num_tensors()));
  for (int p = 0; p < mask.num_tensors(); ++p) all[static_cast<size_t>(p)] = p;
  std::vector<v1::MaskUpdate> parts;
  MaskCursor cursor;
  while (cursor.list_index < static_cast<int>(all.size())) {
    v1::MaskUpdate part;
    part.set_iteration(iteration);
    part.set_apply_at_step(apply_at_step);
    cursor = AppendMaskRuns(mask, all, cursor, max_part_bytes, &part);
    parts.push_back(std::move(part));
  }
  FillMaskSummary(mask, all, target_sparsity, final_iteration, &parts.back());
  return parts;
}

v1::IterationReport IterationReportToProto(const IterationReport& r, int64_t first_step, int64_t last_step,
                                           int64_t finished_unix_ms) {
  v1::IterationReport proto;
  proto.set_iteration(r.iteration);
  proto.set_first_step(first_step);
  proto.set_last_step(last_step);
  proto.set_num_samples(r.num_samples);
  proto.set_num_features(r.num_features);
  proto.set_target_sparsity(r.target_sparsity);
  proto.set_achieved_sparsity(r.achieved_sparsity);
  for (const TensorSparsityReport& t : r.tensors) {
    v1::TensorSparsity* s = proto.add_tensors();
    s->set_tensor_index(static_cast<uint32_t>(t.tensor_index));
    s->set_name(t.name);
    s->set_num_elements(t.num_elements);
    s->set_kept(t.kept);
    s->set_pruned(t.pruned);
    s->set_sparsity(t.sparsity);
    s->set_target_sparsity(t.target_sparsity);
  }
  for (const CoefficientStats& c : r.coefficients) {
    v1::CoefficientStats* s = proto.add_coefficients();
    s->set_tensor_index(static_cast<uint32_t>(c.tensor_index));
    s->set_name(c.name);
    s->set_count(c.count);
    s->set_zero(c.zero);
    s->set_positive(c.positive);
    s->set_negative(c.negative);
    s->set_min(c.min);
    s->set_max(c.max);
    s->set_mean(c.mean);
    s->set_mean_abs(c.mean_abs);
    for (double e : c.log10_abs_histogram.edges) s->mutable_log10_abs_histogram()->add_edges(e);
    for (int64_t n : c.log10_abs_histogram.counts) s->mutable_log10_abs_histogram()->add_counts(n);
  }
  if (r.fit) {
    v1::FitReport* f = proto.mutable_fit();
    f->set_solver(r.fit->solver == Solver::kExact ? v1::SOLVER_EXACT : v1::SOLVER_LASSO_SGD);
    f->set_epochs(r.fit->epochs);
    f->set_best_epoch(r.fit->best_epoch);
    f->set_early_stopped(r.fit->early_stopped);
    f->set_final_loss(r.fit->final_loss);
    f->set_best_loss(r.fit->best_loss);
    f->set_fit_seconds(r.fit->fit_seconds);
    f->set_converged(r.fit->converged);
    f->set_nonzero_coefficients(r.fit->nonzero_coefficients);
  }
  proto.set_nan_count(r.target_nan + r.feature_nonfinite);
  proto.set_inf_count(r.target_inf);
  proto.set_target_mean(r.target_mean);
  proto.set_finished_unix_ms(finished_unix_ms);
  return proto;
}

absl::string_view SessionStateName(v1::SessionState state) {
  switch (state) {
    case v1::SESSION_STATE_COLLECTING:
      return "COLLECTING";
    case v1::SESSION_STATE_FITTING:
      return "FITTING";
    case v1::SESSION_STATE_COMPLETED:
      return "COMPLETED";
    case v1::SESSION_STATE_FAILED:
      return "FAILED";
    default:
      return "UNSPECIFIED";
  }
}

}  // namespace gcprune::pruner
