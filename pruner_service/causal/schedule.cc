// Target sparsities per iteration and exact prune counts for the cubic, geometric, one-shot and custom
// schedules.
#include "pruner_service/causal/schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace gcprune::pruner {
namespace {

constexpr int kMaxIterations = 100000;

bool InUnitInterval(double x) { return std::isfinite(x) && x >= 0.0 && x <= 1.0; }

}  // namespace

absl::StatusOr<ScheduleKind> ParseScheduleKind(absl::string_view name) {
  if (name == "cubic") return ScheduleKind::kCubic;
  if (name == "geometric") return ScheduleKind::kGeometric;
  if (name == "one-shot") return ScheduleKind::kOneShot;
  if (name == "custom") return ScheduleKind::kCustom;
  return absl::InvalidArgumentError(
      absl::StrCat("schedule: unknown kind '", name, "' (cubic, geometric, one-shot, custom)"));
}

absl::string_view ScheduleKindName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kCubic:
      return "cubic";
    case ScheduleKind::kGeometric:
      return "geometric";
    case ScheduleKind::kOneShot:
      return "one-shot";
    case ScheduleKind::kCustom:
      return "custom";
  }
  return "unknown";
}

absl::StatusOr<CountRule> ParseCountRule(absl::string_view name) {
  if (name == "cumulative") return CountRule::kCumulative;
  if (name == "reference") return CountRule::kReferenceIncremental;
  return absl::InvalidArgumentError(
      absl::StrCat("schedule: unknown count rule '", name, "' (cumulative, reference)"));
}

absl::string_view CountRuleName(CountRule rule) {
  return rule == CountRule::kCumulative ? "cumulative" : "reference";
}

int64_t RoundHalfEven(double x) {
  const double floor = std::floor(x);
  const double diff = x - floor;  // exact for |x| < 2^52
  auto result = static_cast<int64_t>(floor);
  if (diff > 0.5 || (diff == 0.5 && (result % 2) != 0)) ++result;
  return result;
}

absl::StatusOr<Schedule> Schedule::Create(ScheduleKind kind, double target, int iterations,
                                          std::vector<double> custom, CountRule rule) {
  std::vector<double> s = {0.0};
  if (kind == ScheduleKind::kCustom) {
    if (custom.empty() || custom.size() > kMaxIterations) {
      return absl::InvalidArgumentError(
          absl::StrCat("schedule.custom: ", custom.size(), " entries, expected 1..", kMaxIterations));
    }
    for (size_t i = 0; i < custom.size(); ++i) {
      if (!InUnitInterval(custom[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("schedule.custom[", i, "]: ", custom[i], " is not in [0, 1]"));
      }
      if (i > 0 && custom[i] < custom[i - 1]) {
        return absl::InvalidArgumentError(
            absl::StrCat("schedule.custom[", i, "]: ", custom[i], " is below the previous entry ", custom[i - 1]));
      }
      s.push_back(custom[i]);
    }
  } else {
    if (!InUnitInterval(target)) {
      return absl::InvalidArgumentError(absl::StrCat("schedule.target: ", target, " is not in [0, 1]"));
    }
    if (iterations < 1 || iterations > kMaxIterations) {
      return absl::InvalidArgumentError(
          absl::StrCat("schedule.iterations: ", iterations, " is not in [1, ", kMaxIterations, "]"));
    }
    if (!custom.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("schedule.custom: ", custom.size(),
                                                     " entries given for schedule '", ScheduleKindName(kind),
                                                     "' (only 'custom' takes a list)"));
    }
    const double n = iterations;
    for (int j = 1; j <= iterations; ++j) {
      switch (kind) {
        case ScheduleKind::kCubic:
          s.push_back(target * (1.0 - std::pow(1.0 - j / n, 3.0)));
          break;
        case ScheduleKind::kGeometric:
          s.push_back(1.0 - std::pow(1.0 - target, j / n));
          break;
        default:  // kOneShot
          s.push_back(target);
          break;
      }
    }
  }
  std::vector<double> a(s.size(), 0.0);
  for (size_t j = 1; j < s.size(); ++j) {
    if (kind == ScheduleKind::kGeometric) {
      // The reference's per-iteration fraction, computed as it does rather than from s(j).
      a[j] = 1.0 - std::pow(1.0 - target, 1.0 / (static_cast<double>(s.size()) - 1.0));
    } else {
      a[j] = s[j - 1] >= 1.0 ? 1.0 : (s[j] - s[j - 1]) / (1.0 - s[j - 1]);
    }
  }
  return Schedule(kind, rule, std::move(s), std::move(a));
}

double Schedule::TargetSparsity(int j) const {
  if (j <= 0) return 0.0;
  return sparsity_[static_cast<size_t>(std::min(j, num_iterations()))];
}

double Schedule::IterationFraction(int j) const {
  if (j <= 0 || j > num_iterations()) return 0.0;
  return fraction_[static_cast<size_t>(j)];
}

int64_t Schedule::TargetPrunedCount(int j, int64_t num_features, int64_t num_pruned) const {
  if (rule_ == CountRule::kCumulative) {
    return RoundHalfEven(TargetSparsity(j) * static_cast<double>(num_features));
  }
  const int64_t unpruned = num_features - num_pruned;
  return num_pruned + RoundHalfEven(IterationFraction(j) * static_cast<double>(unpruned));
}

absl::StatusOr<int64_t> Schedule::PruneCount(int j, int64_t num_features, int64_t num_pruned) const {
  if (j < 1) return absl::InvalidArgumentError(absl::StrCat("schedule: iteration ", j, " is below 1"));
  if (num_features < 1) {
    return absl::InvalidArgumentError(absl::StrCat("schedule: num_features ", num_features, " is below 1"));
  }
  if (num_pruned < 0 || num_pruned > num_features) {
    return absl::InvalidArgumentError(
        absl::StrCat("schedule: num_pruned ", num_pruned, " is not in [0, ", num_features, "]"));
  }
  const int64_t count = TargetPrunedCount(j, num_features, num_pruned) - num_pruned;
  return std::clamp<int64_t>(count, 0, num_features - num_pruned);
}

}  // namespace gcprune::pruner
