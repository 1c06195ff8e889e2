// Closed forms of torch's constant, cosine-annealing and step-decay learning rates.
#include "trainer_service/engine/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gcprune::trainer {
namespace {

constexpr double kPi = 3.14159265358979323846;

bool FiniteNonNegative(double x) { return std::isfinite(x) && x >= 0.0; }

}  // namespace

absl::StatusOr<LrSchedule> LrSchedule::Create(const LrScheduleOptions& options) {
  if (!FiniteNonNegative(options.base_lr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LrScheduleOptions.base_lr: ", options.base_lr, " is not finite and >= 0"));
  }
  switch (options.kind) {
    case LrScheduleKind::kConstant:
      break;
    case LrScheduleKind::kCosine:
      if (options.t_max < 1) {
        return absl::InvalidArgumentError(absl::StrCat("LrScheduleOptions.t_max: ", options.t_max, " is not >= 1"));
      }
      if (!FiniteNonNegative(options.eta_min)) {
        return absl::InvalidArgumentError(
            absl::StrCat("LrScheduleOptions.eta_min: ", options.eta_min, " is not finite and >= 0"));
      }
      break;
    case LrScheduleKind::kStep:
      if (options.step_size < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("LrScheduleOptions.step_size: ", options.step_size, " is not >= 1"));
      }
      if (!std::isfinite(options.gamma) || !(options.gamma > 0.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("LrScheduleOptions.gamma: ", options.gamma, " is not finite and > 0"));
      }
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("LrScheduleOptions.kind: unknown value ", static_cast<int>(options.kind)));
  }
  return LrSchedule(options);
}

absl::StatusOr<LrSchedule> LrSchedule::Constant(double lr) {
  LrScheduleOptions options;
  options.kind = LrScheduleKind::kConstant;
  options.base_lr = lr;
  return Create(options);
}

absl::StatusOr<LrSchedule> LrSchedule::CosineAnnealing(double base_lr, int64_t t_max, double eta_min) {
  LrScheduleOptions options;
  options.kind = LrScheduleKind::kCosine;
  options.base_lr = base_lr;
  options.t_max = t_max;
  options.eta_min = eta_min;
  return Create(options);
}

absl::StatusOr<LrSchedule> LrSchedule::StepDecay(double base_lr, int64_t step_size, double gamma) {
  LrScheduleOptions options;
  options.kind = LrScheduleKind::kStep;
  options.base_lr = base_lr;
  options.step_size = step_size;
  options.gamma = gamma;
  return Create(options);
}

double LrSchedule::LearningRate(int64_t t) const {
  t = std::max<int64_t>(t, 0);
  switch (options_.kind) {
    case LrScheduleKind::kCosine: {
      // Reduce t modulo the period first so huge t keeps full precision in the cosine's argument.
      const int64_t phase = t % (2 * options_.t_max);
      const double c = std::cos(kPi * static_cast<double>(phase) / static_cast<double>(options_.t_max));
      return options_.eta_min + (options_.base_lr - options_.eta_min) * (1.0 + c) / 2.0;
    }
    case LrScheduleKind::kStep:
      return options_.base_lr * std::pow(options_.gamma, static_cast<double>(t / options_.step_size));
    case LrScheduleKind::kConstant:
    default:
      return options_.base_lr;
  }
}

std::string LrSchedule::DebugString() const {
  switch (options_.kind) {
    case LrScheduleKind::kCosine:
      return absl::StrCat("cosine(base_lr=", options_.base_lr, ", t_max=", options_.t_max,
                          ", eta_min=", options_.eta_min, ")");
    case LrScheduleKind::kStep:
      return absl::StrCat("step(base_lr=", options_.base_lr, ", step_size=", options_.step_size,
                          ", gamma=", options_.gamma, ")");
    case LrScheduleKind::kConstant:
    default:
      return absl::StrCat("constant(lr=", options_.base_lr, ")");
  }
}

}  // namespace gcprune::trainer
