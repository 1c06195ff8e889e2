// Validation of a gcprune.v1.RunSpec and its resolution into a RunPlan: every default filled in, every
// count and hyper-parameter of the protocol (METHOD.md §3–§5) in plain C++ types, ready to execute.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_PLAN_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protos/gcprune/v1/trainer.pb.h"
#include "trainer_service/engine/model_spec.h"

namespace gcprune::trainer {

enum class OptimizerType { kSgd, kAdam };
enum class LrScheduleType { kConstant, kCosine, kStep };

// An optimizer of one phase, defaults filled in.
struct OptimizerPlan {
  OptimizerType type = OptimizerType::kSgd;
  double learning_rate = 0.01;  // > 0
  double momentum = 0.0;        // SGD, [0, 1)
  double weight_decay = 0.0;    // >= 0
  bool nesterov = false;        // SGD, needs momentum > 0
  double beta1 = 0.9;           // Adam, [0, 1)
  double beta2 = 0.999;         // Adam, [0, 1)
  double epsilon = 1e-8;        // Adam, > 0
};

// The learning rate over a phase's epochs (stepped once per epoch, as torch's schedulers).
struct LrPlan {
  LrScheduleType type = LrScheduleType::kConstant;
  double min_learning_rate = 0.0;  // cosine floor, >= 0
  int step_epochs = 1;             // step decay period, >= 1
  double gamma = 0.1;              // step decay factor, (0, 1]
};

// One training phase (pre-training, training between iterations, fine-tuning).
struct PhasePlan {
  int epochs = 0;        // [0, 100000]; 0 skips the phase
  int batch_size = 256;  // [1, 65536]
  OptimizerPlan optimizer;
  LrPlan lr;
  int early_stop_patience = 0;     // epochs without improvement of the training loss; 0 = never stop early
  double early_stop_min_delta = 0.0;
};

// The collection epochs of every prune iteration (causal methods only).
struct CollectionPlan {
  int epochs = 1;             // [1, 1000]
  double learning_rate = 1e-3;  // plain SGD η, > 0
  int batch_size = 256;       // [1, 65536]
  double momentum = 0.0;      // [0, 1); causal-v1 only
};

enum class DataSource { kFashionMnist, kMnist, kCifar10, kSynthetic };

// The data set of a run.
struct DataPlan {
  DataSource source = DataSource::kFashionMnist;
  std::string name;       // the canonical name, e.g. "fashion-mnist"
  std::string directory;  // resolved directory (empty for synthetic)
  int64_t train_subset = 0;  // first N training examples, 0 = all
  int64_t test_subset = 0;   // first N test examples, 0 = all
  int test_batch_size = 1000;
  // Shape of one example {C, H, W} and the number of classes.
  std::vector<int64_t> input_shape;
  int num_classes = 10;
};

// How the trainer reaches the pruner.
struct PrunerPlan {
  bool enabled = true;         // false only for method NONE without an address
  std::string address;         // "host:port"
  bool fail_open = true;       // FAIL_OPEN (default) or STRICT
  double grace_seconds = 60.0; // > 0
  bool use_tls = false;
};

// The method-dependent shape of the protocol, derived from the resolved MethodConfig.
enum class MethodKind { kCausalV2, kCausalV1, kMagnitudeGlobal, kMagnitudeLayer, kRandom, kNone };

// Everything a run executes. Built only by ResolveRunSpec.
struct RunPlan {
  gcprune::v1::RunSpec spec;  // as given by the client
  ModelSpec model;            // input shape set to the data set's
  DataPlan data;
  PhasePlan pretrain;
  PhasePlan train;
  CollectionPlan collection;
  PhasePlan finetune;
  uint64_t seed = 0;
  // The configuration sent to the pruner: the client's, with `seed` set to the run seed when it was 0.
  gcprune::v1::MethodConfig method;
  MethodKind method_kind = MethodKind::kCausalV2;
  int iterations = 1;                   // n, planned prune iterations
  std::vector<double> target_sparsity;  // s(1..n); NaN for causal-v1, which sets no target
  bool wants_steps = true;              // the method consumes collection steps (causal-v1/v2)
  bool wants_weights = false;           // the method ranks the current weights (magnitude)
  PrunerPlan pruner;
  bool rewind_to_pretrained = false;    // always true for causal-v1
  bool reset_normalization = false;     // accepted; the engine has no normalisation layers
  float label_smoothing = 0.1f;         // [0, 1); causal-v1 default 0
  std::string label;
};

// Server-side defaults that complete a spec.
struct RunSpecDefaults {
  // Directory holding one folder per data set: fashion-mnist/, mnist/, cifar10/.
  std::string data_root = "/usr/share/datasets";
  // Used when spec.pruner.address is empty and the method is not NONE; empty = no default.
  std::string pruner_address;
};

// Canonical data set names accepted in DataSpec.name ("" = "fashion-mnist").
std::vector<std::string> DataSetNames();

// Validates `spec` completely and resolves it. Errors:
//   INVALID_ARGUMENT naming the field by its path and the value, e.g.
//     "spec.pretrain.batch_size: must be in [1, 65536] when epochs > 0, got 0";
//     the method configuration is checked as the pruner checks it ("spec.method.schedule...."), the model
//     is built once to check that it fits the data (layer errors name the layer);
//   NOT_FOUND when the data set's directory does not exist (message names the path).
// The data files themselves are read only when the run starts.
absl::StatusOr<RunPlan> ResolveRunSpec(const gcprune::v1::RunSpec& spec, const RunSpecDefaults& defaults);

// Converts the proto's layer text ("conv(20,5),relu,maxpool(2),flatten,fc(500)") to the engine's
// grammar ("conv:20:5,relu,maxpool:2,flatten,linear:500"); text already in the engine's grammar passes
// through unchanged. Never fails: malformed text is left for ParseLayers to report.
std::string NormalizeLayerText(absl::string_view text);

absl::string_view MethodKindName(MethodKind kind);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_PLAN_H_
