// The flags of `gcprune run` that define a gcprune.v1.RunSpec (model, data, training phases, collection,
// pruning method and pruner endpoint), their defaults, and the translation into the proto. The defaults
// are a short protocol that finishes in minutes on two cores (docs/CLI.md), not the reference's 10/10/300
// epochs.
#ifndef GCPRUNE_CLIENTS_CLI_RUN_SPEC_FLAGS_H_
#define GCPRUNE_CLIENTS_CLI_RUN_SPEC_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clients/cli/flag_set.h"
#include "protos/gcprune/v1/common.pb.h"
#include "protos/gcprune/v1/trainer.pb.h"

namespace gcprune::cli {

// Parsers of the command line's names for proto enums and small specs. Each returns INVALID_ARGUMENT
// naming `flag`, the value and the accepted names.
absl::StatusOr<v1::Method> ParseMethodName(absl::string_view flag, absl::string_view text);
// "1x28x28" or "1,28,28": 1 to 3 positive dimensions [C, H, W].
absl::StatusOr<std::vector<int32_t>> ParseInputShape(absl::string_view flag, absl::string_view text);
// "cubic", "geometric", "one-shot" or "custom:S1,S2,...,Sn" (cumulative sparsities in [0, 1)). Fills
// schedule->kind and, for custom, schedule->custom_sparsity.
absl::Status ParseScheduleText(absl::string_view flag, absl::string_view text, v1::Schedule* schedule);
// Applies "key=value,key=value" to a phase: keys epochs, batch, optimizer (sgd|adam), lr, momentum,
// weight_decay, nesterov, beta1, beta2, eps, schedule (constant|cosine|step), min_lr, step_epochs, gamma,
// patience, min_delta. Values are checked for form (numbers, names), not for range: the trainer checks
// ranges and names the field. If `keys` is not null, the normalised keys applied are appended to it.
absl::Status ApplyPhaseOverrides(absl::string_view flag, absl::string_view text, v1::PhaseSpec* phase,
                                 std::vector<std::string>* keys = nullptr);

// Registers the run-spec flags on a FlagSet and builds the RunSpec after parsing. Usage:
//   FlagSet flags(...); RunSpecFlags spec_flags; spec_flags.Register(&flags);
//   flags.Parse(args); absl::StatusOr<v1::RunSpec> spec = spec_flags.Build();
// The FlagSet must outlive this object (Build asks it which flags were given explicitly).
class RunSpecFlags {
 public:
  void Register(FlagSet* flags);

  // The RunSpec of the parsed flags. INVALID_ARGUMENT naming the flag and value for a malformed name,
  // shape, schedule or override, for --model together with --layers, and for values that can never be
  // valid (negative epochs or sizes, sparsity outside [0, 1), a non-positive learning rate).
  absl::StatusOr<v1::RunSpec> Build() const;

 private:
  bool IsSet(absl::string_view name) const { return flags_ != nullptr && flags_->IsSet(name); }
  // `phase_name` is "pretrain", "train" or "finetune", the stem of the phase's flags.
  absl::StatusOr<v1::PhaseSpec> BuildPhase(absl::string_view phase_name, const std::string& overrides,
                                           int64_t epochs) const;
  absl::StatusOr<v1::MethodConfig> BuildMethod() const;

  const FlagSet* flags_ = nullptr;

  // Model and data.
  std::string model_;
  std::string layers_;
  std::string input_shape_;
  int64_t num_classes_ = 0;
  std::string data_ = "fashion-mnist";
  std::string data_dir_;
  int64_t train_subset_ = 0;
  int64_t test_subset_ = 0;
  int64_t test_batch_size_ = 0;

  // Training phases: the shared settings, then per-phase epochs and overrides.
  int64_t pretrain_epochs_ = 2;
  int64_t train_epochs_ = 1;
  int64_t finetune_epochs_ = 3;
  int64_t batch_size_ = 256;
  std::string optimizer_ = "sgd";
  double lr_ = 0.01;
  double momentum_ = 0.9;
  double weight_decay_ = 0;
  bool nesterov_ = false;
  std::string lr_schedule_ = "constant";
  double min_lr_ = 0;
  std::string pretrain_overrides_;
  std::string train_overrides_;
  std::string finetune_overrides_;

  // Collection (0 = the method's default).
  int64_t collect_epochs_ = 0;
  int64_t collect_batch_size_ = 0;
  double collect_lr_ = 0;
  double collect_momentum_ = 0;

  // Method.
  std::string method_ = "causal-v2";
  double target_sparsity_ = 0.9;
  int64_t iterations_ = 5;
  std::string schedule_;
  std::string scope_;
  std::string count_rule_;
  std::string solver_;
  double l1_ = 1e-3;
  int64_t lasso_epochs_ = 30;
  double alpha_ = 0;
  double min_layer_sparsity_ = 0;
  double max_layer_sparsity_ = 1;
  std::string sample_encoding_;
  int64_t memory_budget_mb_ = 0;
  bool reference_ranking_ = false;
  bool v1_momentum_ = false;
  uint64_t method_seed_ = 0;

  // Run-wide settings.
  uint64_t seed_ = 314159;
  std::string pruner_;
  std::string failure_policy_ = "fail-open";
  absl::Duration grace_period_ = absl::ZeroDuration();
  bool pruner_tls_ = false;
  bool rewind_ = false;
  bool reset_norm_ = false;
  double label_smoothing_ = 0.1;
  std::string label_;
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_RUN_SPEC_FLAGS_H_
