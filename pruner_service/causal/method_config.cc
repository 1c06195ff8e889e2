// Names, validation, defaults and the key=value text form of a session's method configuration.
#include "pruner_service/causal/method_config.h"

#include <cmath>
#include <type_traits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace gcprune::pruner {
namespace {

constexpr int kMaxIterations = 1000;

absl::Status Invalid(absl::string_view key, const std::string& value, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", value, " ", why));
}

// The shortest of %.15g..%.17g that reads back as the same double ("0.4", not "0.40000000000000002").
std::string Num(double v) {
  for (int precision : {15, 16}) {
    std::string text = absl::StrFormat("%.*g", precision, v);
    double back;
    if (absl::SimpleAtod(text, &back) && back == v) return text;
  }
  return absl::StrFormat("%.17g", v);
}

absl::Status CheckRange(absl::string_view key, double v, double lo, double hi, bool hi_open = false) {
  if (!std::isfinite(v) || v < lo || v > hi || (hi_open && v == hi)) {
    return Invalid(key, Num(v), absl::StrCat("is not in [", Num(lo), ", ", Num(hi), hi_open ? ")" : "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckIntRange(absl::string_view key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) return Invalid(key, absl::StrCat(v), absl::StrCat("is not in [", lo, ", ", hi, "]"));
  return absl::OkStatus();
}

absl::Status CheckPositive(absl::string_view key, double v) {
  if (!std::isfinite(v) || v <= 0) return Invalid(key, Num(v), "is not a finite number > 0");
  return absl::OkStatus();
}

absl::Status CheckNonNegative(absl::string_view key, double v) {
  if (!std::isfinite(v) || v < 0) return Invalid(key, Num(v), "is not a finite number >= 0");
  return absl::OkStatus();
}

ScheduleKind DefaultScheduleKind(Method method) {
  return method == Method::kCausalV2 ? ScheduleKind::kCubic : ScheduleKind::kGeometric;
}

RankScope DefaultScope(Method method) {
  return (method == Method::kMagnitudeLayer || method == Method::kCausalV1) ? RankScope::kPerLayer
                                                                            : RankScope::kGlobal;
}

bool IsV1(Method method) { return method == Method::kCausalV1; }

// The custom list and the one-shot iteration count.
absl::Status ValidateScheduleShape(const ScheduleParams& s, ScheduleKind kind) {
  if (kind == ScheduleKind::kCustom) {
    if (s.custom_sparsity.empty() || s.custom_sparsity.size() > kMaxIterations) {
      return Invalid("schedule.custom_sparsity", absl::StrCat(s.custom_sparsity.size(), " values"),
                     absl::StrCat("for schedule 'custom', expected 1..", kMaxIterations));
    }
    for (size_t i = 0; i < s.custom_sparsity.size(); ++i) {
      const std::string key = absl::StrCat("schedule.custom_sparsity[", i, "]");
      GCPRUNE_RETURN_IF_ERROR(CheckRange(key, s.custom_sparsity[i], 0, 1, /*hi_open=*/true));
      if (i > 0 && s.custom_sparsity[i] < s.custom_sparsity[i - 1]) {
        return Invalid(key, Num(s.custom_sparsity[i]),
                       absl::StrCat("is below the previous value ", Num(s.custom_sparsity[i - 1])));
      }
    }
    if (s.iterations && *s.iterations != static_cast<int>(s.custom_sparsity.size())) {
      return Invalid("schedule.iterations", absl::StrCat(*s.iterations),
                     absl::StrCat("differs from the ", s.custom_sparsity.size(), " custom_sparsity values"));
    }
  } else if (!s.custom_sparsity.empty()) {
    return Invalid("schedule.custom_sparsity", absl::StrCat(s.custom_sparsity.size(), " values"),
                   absl::StrCat("given for schedule '", ScheduleKindName(kind), "' (only 'custom' takes them)"));
  }
  if (kind == ScheduleKind::kOneShot && s.iterations && *s.iterations != 1) {
    return Invalid("schedule.iterations", absl::StrCat(*s.iterations), "must be 1 (or unset) for 'one-shot'");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Method> ParseMethod(absl::string_view name) {
  for (Method m : {Method::kCausalV2, Method::kCausalV1, Method::kMagnitudeGlobal, Method::kMagnitudeLayer,
                   Method::kRandom, Method::kNone}) {
    if (name == MethodName(m)) return m;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("method: unknown value '", name,
                   "' (causal-v2, causal-v1, magnitude-global, magnitude-layer, random, none)"));
}

absl::string_view MethodName(Method method) {
  switch (method) {
    case Method::kCausalV2:
      return "causal-v2";
    case Method::kCausalV1:
      return "causal-v1";
    case Method::kMagnitudeGlobal:
      return "magnitude-global";
    case Method::kMagnitudeLayer:
      return "magnitude-layer";
    case Method::kRandom:
      return "random";
    case Method::kNone:
      return "none";
  }
  return "unknown";
}

absl::StatusOr<Solver> ParseSolver(absl::string_view name) {
  if (name == "lasso-sgd") return Solver::kLassoSgd;
  if (name == "exact") return Solver::kExact;
  return absl::InvalidArgumentError(absl::StrCat("solver: unknown value '", name, "' (lasso-sgd, exact)"));
}

absl::string_view SolverName(Solver solver) { return solver == Solver::kLassoSgd ? "lasso-sgd" : "exact"; }

absl::StatusOr<SampleEncoding> ParseSampleEncoding(absl::string_view name) {
  if (name == "float32") return SampleEncoding::kFloat32;
  if (name == "bfloat16") return SampleEncoding::kBfloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("sample_encoding: unknown value '", name, "' (float32, bfloat16)"));
}

absl::string_view SampleEncodingName(SampleEncoding encoding) {
  return encoding == SampleEncoding::kFloat32 ? "float32" : "bfloat16";
}

bool IsCausal(Method method) { return method == Method::kCausalV2 || method == Method::kCausalV1; }

bool NeedsWeights(Method method) {
  return method == Method::kMagnitudeGlobal || method == Method::kMagnitudeLayer;
}

absl::Status ValidateMethodConfig(const MethodConfig& c) {
  const ScheduleParams& s = c.schedule;
  const ScheduleKind kind = s.kind.value_or(DefaultScheduleKind(c.method));
  GCPRUNE_RETURN_IF_ERROR(CheckRange("schedule.target_sparsity", s.target_sparsity, 0, 1, /*hi_open=*/true));
  if (s.iterations) {
    GCPRUNE_RETURN_IF_ERROR(CheckIntRange("schedule.iterations", *s.iterations, 1, kMaxIterations));
  }
  // causal-v1 sets no target: it reads only `iterations` of the schedule.
  if (!IsV1(c.method)) GCPRUNE_RETURN_IF_ERROR(ValidateScheduleShape(s, kind));
  if (absl::Status st = ValidateLayerLimits(MakeLayerLimits(c)); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("schedule.", st.message()));
  }

  const LassoSgdParams& l = c.lasso_sgd;
  if (l.lr0) GCPRUNE_RETURN_IF_ERROR(CheckPositive("lasso_sgd.lr0", *l.lr0));
  if (l.lr_power) GCPRUNE_RETURN_IF_ERROR(CheckRange("lasso_sgd.lr_power", *l.lr_power, 0, 1));
  if (l.l1) GCPRUNE_RETURN_IF_ERROR(CheckNonNegative("lasso_sgd.l1", *l.l1));
  if (l.minibatch) GCPRUNE_RETURN_IF_ERROR(CheckIntRange("lasso_sgd.minibatch", *l.minibatch, 1, 65536));
  GCPRUNE_RETURN_IF_ERROR(CheckIntRange("lasso_sgd.max_epochs", l.max_epochs, 1, 10000));
  GCPRUNE_RETURN_IF_ERROR(CheckIntRange("lasso_sgd.patience", l.patience, 1, 10000));
  GCPRUNE_RETURN_IF_ERROR(CheckNonNegative("lasso_sgd.tol", l.tol));
  GCPRUNE_RETURN_IF_ERROR(CheckPositive("lasso_sgd.grad_clamp", l.grad_clamp));

  if (c.exact.alpha) GCPRUNE_RETURN_IF_ERROR(CheckNonNegative("exact.alpha", *c.exact.alpha));
  GCPRUNE_RETURN_IF_ERROR(CheckNonNegative("exact.tolerance", c.exact.tolerance));
  GCPRUNE_RETURN_IF_ERROR(CheckIntRange("exact.max_iterations", c.exact.max_iterations, 1, 1000000));

  if (c.memory_budget_bytes < 0) {
    return Invalid("memory_budget_bytes", absl::StrCat(c.memory_budget_bytes), "is negative");
  }
  if (c.reference_ranking && (c.method != Method::kCausalV2 || c.solver != Solver::kLassoSgd)) {
    return Invalid("reference_ranking", "true",
                   absl::StrCat("needs method causal-v2 and solver lasso-sgd (have ", MethodName(c.method), ", ",
                                SolverName(c.solver), ")"));
  }
  if (c.v1_momentum && c.method != Method::kCausalV1) {
    return Invalid("v1_momentum", "true",
                   absl::StrCat("needs method causal-v1 (have ", MethodName(c.method), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<MethodConfig> ResolveMethodConfig(const MethodConfig& config) {
  GCPRUNE_RETURN_IF_ERROR(ValidateMethodConfig(config));
  MethodConfig c = config;
  const bool v1 = IsV1(c.method);
  ScheduleParams& s = c.schedule;
  if (!s.kind) s.kind = DefaultScheduleKind(c.method);
  if (!s.iterations) {
    if (*s.kind == ScheduleKind::kCustom && !v1) {
      s.iterations = static_cast<int>(s.custom_sparsity.size());
    } else if (*s.kind == ScheduleKind::kOneShot && !v1) {
      s.iterations = 1;
    } else {
      s.iterations = 10;
    }
  }
  if (!s.scope) s.scope = DefaultScope(c.method);
  LassoSgdParams& l = c.lasso_sgd;
  if (!l.lr0) l.lr0 = v1 ? 0.01 : 0.1;
  if (!l.lr_power) l.lr_power = v1 ? 0.25 : 0.1;
  if (!l.l1) l.l1 = v1 ? 1e-14 : 1e-3;
  if (!l.minibatch) l.minibatch = v1 ? 1 : 16;
  // exact.alpha depends on N, known only with the layout: it stays unset here and the session derives it.
  return c;
}

absl::StatusOr<Schedule> MakeSchedule(const MethodConfig& config) {
  GCPRUNE_ASSIGN_OR_RETURN(MethodConfig c, ResolveMethodConfig(config));
  const ScheduleParams& s = c.schedule;
  if (IsV1(c.method)) return Schedule::Create(ScheduleKind::kOneShot, 0.0, *s.iterations, {}, s.count_rule);
  return Schedule::Create(*s.kind, s.target_sparsity, *s.iterations, s.custom_sparsity, s.count_rule);
}

LayerLimits MakeLayerLimits(const MethodConfig& config) {
  return {config.schedule.min_layer_sparsity, config.schedule.max_layer_sparsity,
          config.schedule.allow_layer_collapse};
}

// ---------------------------------------------------------------------------------------------------
// Text form.

namespace {

absl::Status BadValue(absl::string_view key, absl::string_view value, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": cannot parse '", value, "' as ", expected));
}

absl::StatusOr<double> ParseDouble(absl::string_view key, absl::string_view value) {
  double v;
  if (!absl::SimpleAtod(value, &v)) return BadValue(key, value, "a number");
  return v;
}

template <typename Int>
absl::StatusOr<Int> ParseInt(absl::string_view key, absl::string_view value) {
  Int v;
  if (absl::StartsWith(value, "0x") || absl::StartsWith(value, "0X")) {
    if (!absl::SimpleHexAtoi(value.substr(2), &v)) return BadValue(key, value, "an integer");
  } else if (!absl::SimpleAtoi(value, &v)) {
    return BadValue(key, value, "an integer");
  }
  return v;
}

absl::StatusOr<bool> ParseBool(absl::string_view key, absl::string_view value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return BadValue(key, value, "a boolean (true, false, 1, 0)");
}

// Optional numeric fields: "default" resets them.
template <typename T>
absl::Status SetOptional(absl::string_view key, absl::string_view value, std::optional<T>* field) {
  if (value == "default") {
    field->reset();
    return absl::OkStatus();
  }
  if constexpr (std::is_floating_point_v<T>) {
    GCPRUNE_ASSIGN_OR_RETURN(*field, ParseDouble(key, value));
  } else {
    GCPRUNE_ASSIGN_OR_RETURN(*field, ParseInt<T>(key, value));
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status SetPlain(absl::string_view key, absl::string_view value, T* field) {
  if constexpr (std::is_floating_point_v<T>) {
    GCPRUNE_ASSIGN_OR_RETURN(*field, ParseDouble(key, value));
  } else {
    GCPRUNE_ASSIGN_OR_RETURN(*field, ParseInt<T>(key, value));
  }
  return absl::OkStatus();
}

template <typename E>
absl::Status SetEnum(absl::StatusOr<E> parsed, E* field) {
  GCPRUNE_ASSIGN_OR_RETURN(*field, std::move(parsed));
  return absl::OkStatus();
}

template <typename E>
absl::Status SetOptionalEnum(absl::string_view value, absl::StatusOr<E> parsed, std::optional<E>* field) {
  if (value == "default") {
    field->reset();
    return absl::OkStatus();
  }
  GCPRUNE_ASSIGN_OR_RETURN(*field, std::move(parsed));
  return absl::OkStatus();
}

absl::Status SetBool(absl::string_view key, absl::string_view value, bool* field) {
  GCPRUNE_ASSIGN_OR_RETURN(*field, ParseBool(key, value));
  return absl::OkStatus();
}

absl::Status SetCustom(absl::string_view key, absl::string_view value, std::vector<double>* field) {
  std::vector<double> values;
  if (!value.empty() && value != "none") {
    for (absl::string_view part : absl::StrSplit(value, '/')) {
      GCPRUNE_ASSIGN_OR_RETURN(double x, ParseDouble(key, part));
      values.push_back(x);
    }
  }
  *field = std::move(values);
  return absl::OkStatus();
}

template <typename T>
std::string OptionalText(const std::optional<T>& v) {
  if (!v) return "default";
  if constexpr (std::is_floating_point_v<T>) {
    return Num(*v);
  } else {
    return absl::StrCat(*v);
  }
}

}  // namespace

absl::Status SetMethodConfigField(absl::string_view key, absl::string_view value, MethodConfig* c) {
  ScheduleParams& s = c->schedule;
  LassoSgdParams& l = c->lasso_sgd;
  if (key == "method") return SetEnum(ParseMethod(value), &c->method);
  if (key == "solver") return SetEnum(ParseSolver(value), &c->solver);
  if (key == "seed") return SetPlain(key, value, &c->seed);
  if (key == "sample_encoding") return SetEnum(ParseSampleEncoding(value), &c->sample_encoding);
  if (key == "memory_budget_bytes") return SetPlain(key, value, &c->memory_budget_bytes);
  if (key == "reference_ranking") return SetBool(key, value, &c->reference_ranking);
  if (key == "v1_momentum") return SetBool(key, value, &c->v1_momentum);
  if (key == "schedule.kind") return SetOptionalEnum(value, ParseScheduleKind(value), &s.kind);
  if (key == "schedule.target_sparsity") return SetPlain(key, value, &s.target_sparsity);
  if (key == "schedule.iterations") return SetOptional(key, value, &s.iterations);
  if (key == "schedule.custom_sparsity") return SetCustom(key, value, &s.custom_sparsity);
  if (key == "schedule.scope") return SetOptionalEnum(value, ParseRankScope(value), &s.scope);
  if (key == "schedule.min_layer_sparsity") return SetPlain(key, value, &s.min_layer_sparsity);
  if (key == "schedule.max_layer_sparsity") return SetPlain(key, value, &s.max_layer_sparsity);
  if (key == "schedule.allow_layer_collapse") return SetBool(key, value, &s.allow_layer_collapse);
  if (key == "schedule.count_rule") return SetEnum(ParseCountRule(value), &s.count_rule);
  if (key == "lasso_sgd.lr0") return SetOptional(key, value, &l.lr0);
  if (key == "lasso_sgd.lr_power") return SetOptional(key, value, &l.lr_power);
  if (key == "lasso_sgd.l1") return SetOptional(key, value, &l.l1);
  if (key == "lasso_sgd.minibatch") return SetOptional(key, value, &l.minibatch);
  if (key == "lasso_sgd.max_epochs") return SetPlain(key, value, &l.max_epochs);
  if (key == "lasso_sgd.patience") return SetPlain(key, value, &l.patience);
  if (key == "lasso_sgd.tol") return SetPlain(key, value, &l.tol);
  if (key == "lasso_sgd.grad_clamp") return SetPlain(key, value, &l.grad_clamp);
  if (key == "exact.alpha") return SetOptional(key, value, &c->exact.alpha);
  if (key == "exact.tolerance") return SetPlain(key, value, &c->exact.tolerance);
  if (key == "exact.max_iterations") return SetPlain(key, value, &c->exact.max_iterations);
  return absl::InvalidArgumentError(absl::StrCat("method config: unknown key '", key, "'"));
}

absl::StatusOr<MethodConfig> ParseMethodConfig(absl::string_view text, const MethodConfig& base) {
  MethodConfig config = base;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = line.substr(0, line.find('#'));
    for (absl::string_view token : absl::StrSplit(line, absl::ByAnyChar(",; \t\r"), absl::SkipEmpty())) {
      const size_t eq = token.find('=');
      if (eq == absl::string_view::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("method config: '", token, "' is not of the form key=value"));
      }
      GCPRUNE_RETURN_IF_ERROR(SetMethodConfigField(token.substr(0, eq), token.substr(eq + 1), &config));
    }
  }
  GCPRUNE_RETURN_IF_ERROR(ValidateMethodConfig(config));
  return config;
}

std::string FormatMethodConfig(const MethodConfig& c) {
  const ScheduleParams& s = c.schedule;
  const LassoSgdParams& l = c.lasso_sgd;
  std::vector<std::string> custom;
  for (double v : s.custom_sparsity) custom.push_back(Num(v));
  std::string out;
  auto line = [&out](absl::string_view key, absl::string_view value) {
    absl::StrAppend(&out, key, "=", value, "\n");
  };
  line("method", MethodName(c.method));
  line("solver", SolverName(c.solver));
  line("seed", absl::StrCat(c.seed));
  line("sample_encoding", SampleEncodingName(c.sample_encoding));
  line("memory_budget_bytes", absl::StrCat(c.memory_budget_bytes));
  line("reference_ranking", c.reference_ranking ? "true" : "false");
  line("v1_momentum", c.v1_momentum ? "true" : "false");
  line("schedule.kind", s.kind ? ScheduleKindName(*s.kind) : "default");
  line("schedule.target_sparsity", Num(s.target_sparsity));
  line("schedule.iterations", OptionalText(s.iterations));
  line("schedule.custom_sparsity", custom.empty() ? "none" : absl::StrJoin(custom, "/"));
  line("schedule.scope", s.scope ? RankScopeName(*s.scope) : "default");
  line("schedule.min_layer_sparsity", Num(s.min_layer_sparsity));
  line("schedule.max_layer_sparsity", Num(s.max_layer_sparsity));
  line("schedule.allow_layer_collapse", s.allow_layer_collapse ? "true" : "false");
  line("schedule.count_rule", CountRuleName(s.count_rule));
  line("lasso_sgd.lr0", OptionalText(l.lr0));
  line("lasso_sgd.lr_power", OptionalText(l.lr_power));
  line("lasso_sgd.l1", OptionalText(l.l1));
  line("lasso_sgd.minibatch", OptionalText(l.minibatch));
  line("lasso_sgd.max_epochs", absl::StrCat(l.max_epochs));
  line("lasso_sgd.patience", absl::StrCat(l.patience));
  line("lasso_sgd.tol", Num(l.tol));
  line("lasso_sgd.grad_clamp", Num(l.grad_clamp));
  line("exact.alpha", OptionalText(c.exact.alpha));
  line("exact.tolerance", Num(c.exact.tolerance));
  line("exact.max_iterations", absl::StrCat(c.exact.max_iterations));
  return out;
}

bool operator==(const LassoSgdParams& a, const LassoSgdParams& b) {
  return a.lr0 == b.lr0 && a.lr_power == b.lr_power && a.l1 == b.l1 && a.minibatch == b.minibatch &&
         a.max_epochs == b.max_epochs && a.patience == b.patience && a.tol == b.tol &&
         a.grad_clamp == b.grad_clamp;
}

bool operator==(const ExactParams& a, const ExactParams& b) {
  return a.alpha == b.alpha && a.tolerance == b.tolerance && a.max_iterations == b.max_iterations;
}

bool operator==(const ScheduleParams& a, const ScheduleParams& b) {
  return a.kind == b.kind && a.target_sparsity == b.target_sparsity && a.iterations == b.iterations &&
         a.custom_sparsity == b.custom_sparsity && a.scope == b.scope &&
         a.min_layer_sparsity == b.min_layer_sparsity && a.max_layer_sparsity == b.max_layer_sparsity &&
         a.allow_layer_collapse == b.allow_layer_collapse && a.count_rule == b.count_rule;
}

bool operator==(const MethodConfig& a, const MethodConfig& b) {
  return a.method == b.method && a.solver == b.solver && a.schedule == b.schedule && a.lasso_sgd == b.lasso_sgd &&
         a.exact == b.exact && a.seed == b.seed && a.sample_encoding == b.sample_encoding &&
         a.memory_budget_bytes == b.memory_budget_bytes && a.reference_ranking == b.reference_ranking &&
         a.v1_momentum == b.v1_momentum;
}

}  // namespace gcprune::pruner
