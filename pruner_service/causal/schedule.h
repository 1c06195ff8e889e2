// Pruning schedules shared by every method: the target sparsity after each iteration and the exact number
// of weights an iteration prunes (cubic, geometric, one-shot, or a custom list).
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_SCHEDULE_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_SCHEDULE_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gcprune::pruner {

enum class ScheduleKind {
  kCubic,      // Zhu & Gupta: s(j) = P · (1 − (1 − j/n)³)                         METHOD.md §3.4
  kGeometric,  // s(j) = 1 − (1 − P)^(j/n): the fraction 1 − (1 − P)^(1/n) of the
               // remaining weights each iteration                                  METHOD.md §5
  kOneShot,    // s(j) = P for every j >= 1: everything at the first iteration
  kCustom,     // s(j) = the j-th entry of a user list
};

// How an iteration's count is derived from the target sparsities.
enum class CountRule {
  // Default. After iteration j exactly R(s(j) · N) weights are pruned, where R rounds half to even (as
  // Python's round()); the iteration prunes R(s(j) · N) − (already pruned), or 0 if that is negative.
  // Rounding errors never accumulate, and weights pruned by other means (a client's mask) are counted.
  kCumulative,
  // The reference code's rule: the iteration prunes R(a_j · U) weights, U = the still-unpruned weights,
  // a_j = (s(j) − s(j−1)) / (1 − s(j−1)) (a_j = 1 when s(j−1) = 1). Rounding errors of up to ½ weight
  // per iteration accumulate, as in the reference.
  kReferenceIncremental,
};

// "cubic", "geometric", "one-shot", "custom" (and back). INVALID_ARGUMENT for an unknown name.
absl::StatusOr<ScheduleKind> ParseScheduleKind(absl::string_view name);
absl::string_view ScheduleKindName(ScheduleKind kind);
// "cumulative", "reference" (and back). INVALID_ARGUMENT for an unknown name.
absl::StatusOr<CountRule> ParseCountRule(absl::string_view name);
absl::string_view CountRuleName(CountRule rule);

// Rounds half to even (banker's rounding, Python's round()) without depending on the FPU rounding mode.
// `x` must be finite and within ±2^62.
int64_t RoundHalfEven(double x);

// An immutable, validated schedule of n iterations, numbered j = 1..n; s(0) = 0.
class Schedule {
 public:
  // `target` P in [0, 1] and `iterations` n in [1, 100000] are used by cubic, geometric and one-shot;
  // `custom` must be empty for them. For kCustom, `custom` holds s(1..n) (n = its size, 1..100000), each
  // in [0, 1] and non-decreasing; `target` and `iterations` are ignored. INVALID_ARGUMENT naming the
  // argument and value otherwise.
  static absl::StatusOr<Schedule> Create(ScheduleKind kind, double target, int iterations,
                                         std::vector<double> custom = {}, CountRule rule = CountRule::kCumulative);

  ScheduleKind kind() const { return kind_; }
  CountRule count_rule() const { return rule_; }
  int num_iterations() const { return static_cast<int>(sparsity_.size()) - 1; }
  // s(n), the sparsity the schedule ends at.
  double final_sparsity() const { return sparsity_.back(); }

  // Target sparsity s(j) after iteration j, 0 <= j <= n (s(0) = 0); j > n gives s(n).
  double TargetSparsity(int j) const;
  // Fraction a_j of the still-unpruned weights pruned at iteration j >= 1: (s(j) − s(j−1)) / (1 − s(j−1)),
  // 1 if s(j−1) = 1, 0 after the last iteration.
  double IterationFraction(int j) const;
  // Number of pruned weights the schedule asks for after iteration j (1 <= j), for N = `num_features`:
  // under kCumulative R(s(j) · N); under kReferenceIncremental the pruned count before the iteration plus
  // R(a_j · unpruned), which needs `num_pruned`.
  int64_t TargetPrunedCount(int j, int64_t num_features, int64_t num_pruned) const;
  // Number of weights to prune at iteration j given N = `num_features` of which `num_pruned` are already
  // pruned: TargetPrunedCount − num_pruned, at least 0 and at most N − num_pruned.
  // INVALID_ARGUMENT if j < 1, num_features < 1 or num_pruned is not in [0, num_features].
  absl::StatusOr<int64_t> PruneCount(int j, int64_t num_features, int64_t num_pruned) const;

 private:
  Schedule(ScheduleKind kind, CountRule rule, std::vector<double> sparsity, std::vector<double> fraction)
      : kind_(kind), rule_(rule), sparsity_(std::move(sparsity)), fraction_(std::move(fraction)) {}

  ScheduleKind kind_;
  CountRule rule_;
  std::vector<double> sparsity_;  // s(0..n)
  std::vector<double> fraction_;  // a_0..a_n (a_0 = 0)
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_SCHEDULE_H_
