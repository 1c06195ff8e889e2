// Learning-rate schedules (constant, cosine annealing, step decay) with the values of
// torch.optim.lr_scheduler, so a run can be compared with a PyTorch one epoch by epoch.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_LR_SCHEDULE_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_LR_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace gcprune::trainer {

enum class LrScheduleKind { kConstant, kCosine, kStep };

// A schedule's parameters. Time t counts whatever unit the caller chooses, epochs or optimizer steps;
// t_max and step_size are in that same unit.
struct LrScheduleOptions {
  LrScheduleKind kind = LrScheduleKind::kConstant;
  double base_lr = 0.01;  // the rate at t = 0; finite, >= 0
  int64_t t_max = 1;      // kCosine: length of the annealing, >= 1
  double eta_min = 0.0;   // kCosine: the floor reached at t = t_max; finite, >= 0
  int64_t step_size = 1;  // kStep: the rate is multiplied by gamma every step_size units, >= 1
  double gamma = 0.1;     // kStep: finite, > 0
};

// The learning rate as a function of time. A small copyable value; LearningRate is pure and cheap
// (one cos or pow), so it may be called every step. Per-epoch use, as torch's schedulers stepped once
// per epoch: LearningRate(epoch). Per-step use: build with t_max / step_size counted in steps and call
// LearningRate(global_step).
class LrSchedule {
 public:
  // INVALID_ARGUMENT naming the field for a value out of the ranges above.
  static absl::StatusOr<LrSchedule> Create(const LrScheduleOptions& options);
  // torch's constant rate (no scheduler).
  static absl::StatusOr<LrSchedule> Constant(double lr);
  // torch.optim.lr_scheduler.CosineAnnealingLR(T_max = t_max, eta_min):
  //   lr(t) = eta_min + (base_lr − eta_min) · (1 + cos(π t / t_max)) / 2.
  // As in torch the curve is not clamped: past t_max it rises again (period 2·t_max), so size t_max to
  // the whole run (or phase) it anneals.
  static absl::StatusOr<LrSchedule> CosineAnnealing(double base_lr, int64_t t_max, double eta_min = 0.0);
  // torch.optim.lr_scheduler.StepLR(step_size, gamma): lr(t) = base_lr · gamma^floor(t / step_size).
  static absl::StatusOr<LrSchedule> StepDecay(double base_lr, int64_t step_size, double gamma);

  // The learning rate at time t (>= 0; a negative t is taken as 0).
  double LearningRate(int64_t t) const;
  const LrScheduleOptions& options() const { return options_; }
  // E.g. "cosine(base_lr=0.1, t_max=30, eta_min=0)".
  std::string DebugString() const;

 private:
  explicit LrSchedule(const LrScheduleOptions& options) : options_(options) {}
  LrScheduleOptions options_;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_LR_SCHEDULE_H_
