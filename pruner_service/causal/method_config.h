// The configuration of a pruning session (method, solver, schedule, limits, solver parameters), its
// validation and defaults, and the one text parser that services and command-line tools share.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_METHOD_CONFIG_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_METHOD_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pruner_service/causal/ranking.h"
#include "pruner_service/causal/schedule.h"

namespace gcprune::pruner {

enum class Method { kCausalV2, kCausalV1, kMagnitudeGlobal, kMagnitudeLayer, kRandom, kNone };
enum class Solver { kLassoSgd, kExact };
enum class SampleEncoding { kFloat32, kBfloat16 };

// Names: "causal-v2", "causal-v1", "magnitude-global", "magnitude-layer", "random", "none";
// "lasso-sgd", "exact"; "float32", "bfloat16". Parse* return INVALID_ARGUMENT for unknown names.
absl::StatusOr<Method> ParseMethod(absl::string_view name);
absl::string_view MethodName(Method method);
absl::StatusOr<Solver> ParseSolver(absl::string_view name);
absl::string_view SolverName(Solver solver);
absl::StatusOr<SampleEncoding> ParseSampleEncoding(absl::string_view name);
absl::string_view SampleEncodingName(SampleEncoding encoding);

// True for the methods that fit a regression on collected steps (causal-v2, causal-v1).
bool IsCausal(Method method);
// True for the methods that rank the current weights (magnitude-global, magnitude-layer).
bool NeedsWeights(Method method);

// Parameters of LassoSGD (METHOD.md §3.3 and §4). Unset = the method's default, noted as V2 / V1.
struct LassoSgdParams {
  std::optional<double> lr0;       // lr_τ = lr0 / τ^lr_power; > 0. 0.1 / 0.01
  std::optional<double> lr_power;  // in [0, 1]. 0.1 / 0.25
  std::optional<double> l1;        // >= 0; V2 uses α = l1 / N, V1 α = l1. 1e-3 / 1e-14
  std::optional<int> minibatch;    // samples per update, [1, 65536]. 16 / 1
  int max_epochs = 30;             // [1, 10000]
  int patience = 2;                // epochs without improvement before stopping, [1, 10000]
  double tol = 1e-7;               // improvement threshold on the epoch-mean loss, >= 0
  double grad_clamp = 1e12;        // gradient clamped to ±grad_clamp, > 0
};

// Parameters of the exact coordinate-descent Lasso (exact_lasso.h, objective (1/2T)‖y − Xβ‖² + α‖β‖₁).
struct ExactParams {
  // >= 0. Unset = the α of the same objective as LassoSGD's penalty: l1 / (2N) for V2, l1 for V1
  // (ExactAlphaFromLassoSgdV2/V1).
  std::optional<double> alpha;
  double tolerance = 1e-4;   // duality gap tolerance relative to ‖y‖²/T, >= 0
  int max_iterations = 100;  // outer (working-set) iterations, [1, 1000000]
};

// The sparsity schedule and its ranking.
struct ScheduleParams {
  std::optional<ScheduleKind> kind;     // unset: cubic for causal-v2, geometric for the baselines
  double target_sparsity = 0.9;         // P in [0, 1); ignored by custom (its last entry is the target)
  std::optional<int> iterations;        // n in [1, 1000]; unset: 10 (1 for one-shot, the list size for custom)
  std::vector<double> custom_sparsity;  // custom only: s(1..n), each in [0, 1), non-decreasing, <= 1000
  std::optional<RankScope> scope;       // unset: per-layer for magnitude-layer and causal-v1, else global
  double min_layer_sparsity = 0.0;      // see LayerLimits; in [0, 1]
  double max_layer_sparsity = 1.0;      // in [min_layer_sparsity, 1]
  bool allow_layer_collapse = false;    // let a layer lose every weight
  CountRule count_rule = CountRule::kCumulative;
};

// Everything that decides which weights a session prunes. Mirrors gcprune.v1.MethodConfig, plus
// allow_layer_collapse and count_rule (defaults here).
struct MethodConfig {
  Method method = Method::kCausalV2;
  Solver solver = Solver::kLassoSgd;
  ScheduleParams schedule;
  LassoSgdParams lasso_sgd;
  ExactParams exact;
  uint64_t seed = 0;  // splitmix64 seed of the solver's shuffling and of random pruning
  SampleEncoding sample_encoding = SampleEncoding::kFloat32;
  int64_t memory_budget_bytes = 0;  // >= 0; 0 = the server's default
  bool reference_ranking = false;   // causal-v2 with lasso-sgd only (METHOD.md §3.3 compatibility note)
  bool v1_momentum = false;         // causal-v1 only: 3N features per sample (METHOD.md §4)
};

// OK, or INVALID_ARGUMENT naming the first invalid field (by its text key, see below) and its value.
absl::Status ValidateMethodConfig(const MethodConfig& config);

// Validates and returns a copy with every optional field engaged (the method's default where unset), so
// that consumers read the values directly. INVALID_ARGUMENT as above.
absl::StatusOr<MethodConfig> ResolveMethodConfig(const MethodConfig& config);

// The schedule of a resolved config (for causal-v1 a one-shot schedule at 0 with its iteration count:
// V1 sets no target). INVALID_ARGUMENT if the config does not validate.
absl::StatusOr<Schedule> MakeSchedule(const MethodConfig& config);
// The per-layer limits of a config.
LayerLimits MakeLayerLimits(const MethodConfig& config);

// Text form: "key=value" assignments separated by commas, semicolons, spaces or newlines; later keys
// override earlier ones; '#' starts a comment to the end of the line. Keys:
//   method, solver, seed, sample_encoding, memory_budget_bytes, reference_ranking, v1_momentum,
//   schedule.kind, schedule.target_sparsity, schedule.iterations, schedule.custom_sparsity (values
//   separated by '/', e.g. 0.5/0.8/0.9), schedule.scope, schedule.min_layer_sparsity,
//   schedule.max_layer_sparsity, schedule.allow_layer_collapse, schedule.count_rule,
//   lasso_sgd.{lr0, lr_power, l1, minibatch, max_epochs, patience, tol, grad_clamp},
//   exact.{alpha, tolerance, max_iterations}.
// Booleans: true/false/1/0. Enum values by the names above ("default" unsets an optional field).
// SetMethodConfigField: INVALID_ARGUMENT for an unknown key or a malformed value (naming both); it does
// not validate ranges (ValidateMethodConfig does).
absl::Status SetMethodConfigField(absl::string_view key, absl::string_view value, MethodConfig* config);
// Applies `text` to `base` and validates the result. INVALID_ARGUMENT naming the key, or a token that is
// not key=value.
absl::StatusOr<MethodConfig> ParseMethodConfig(absl::string_view text, const MethodConfig& base = {});
// One "key=value" per line for every field, unset optionals as "default", in the key order above;
// ParseMethodConfig(FormatMethodConfig(c)) == c for any valid c. Doubles keep all 17 significant digits.
std::string FormatMethodConfig(const MethodConfig& config);

bool operator==(const LassoSgdParams& a, const LassoSgdParams& b);
bool operator==(const ExactParams& a, const ExactParams& b);
bool operator==(const ScheduleParams& a, const ScheduleParams& b);
bool operator==(const MethodConfig& a, const MethodConfig& b);
inline bool operator!=(const MethodConfig& a, const MethodConfig& b) { return !(a == b); }

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_METHOD_CONFIG_H_
