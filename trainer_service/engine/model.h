// A trainable classifier built from a ModelSpec: layers on oneDNN, label-smoothed softmax cross-entropy,
// pruning masks, snapshots, and the forward/backward/evaluate calls the trainer and the causal step use.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_MODEL_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/engine/model_spec.h"
#include "trainer_service/engine/network.h"
#include "trainer_service/engine/parameter.h"

namespace gcprune::trainer {

struct ModelOptions {
  // ε of the loss, in [0, 1). METHOD.md: 0.1 everywhere in V2; V1 uses plain cross-entropy (0).
  float label_smoothing = 0.1f;
  // Also compute dLoss/dInput (tests only; costs the first layer's backward-data pass).
  bool input_grad = false;
  // OpenMP threads for this model's work, >= 0; 0 keeps OpenMP's default (OMP_NUM_THREADS, else one per
  // core). When > 0, every call that computes sets the calling thread's count (omp_set_num_threads), which
  // oneDNN and the element-wise kernels then use; several models on one machine can so share the cores
  // instead of stalling each other's barriers. Results are bit-identical for a given thread count.
  int num_threads = 0;
};

// OpenMP's default thread count for new work (OMP_NUM_THREADS, else one per core).
int DefaultThreads();

// Mean loss, accuracy and plain cross-entropy over a data set.
struct EvalResult {
  double loss = 0.0;           // mean label-smoothed loss (the model's ε)
  double cross_entropy = 0.0;  // mean −log p_label
  double accuracy = 0.0;       // fraction of arg-max hits, in [0, 1]
  int64_t correct = 0;
  int64_t count = 0;
};

// Every parameter value and mask of a model, in parameters() order.
struct ModelSnapshot {
  std::vector<std::vector<float>> values;
  // One entry per parameter: empty when unmasked, else numel bytes (1 keep, 0 pruned).
  std::vector<std::vector<uint8_t>> masks;
};

// Thread-compatible: one thread at a time. Parameter pointers stay valid for the model's life.
class Model {
 public:
  // Builds the layers of `spec` (names conv1, conv2, fc1, ... in order) and initialises the parameters as
  // PyTorch's defaults from a splitmix64 generator seeded with `seed`, layer by layer (weight, then bias).
  // INVALID_ARGUMENT naming the layer (position, token, shapes) if the spec does not describe a classifier:
  // no layers, a layer that does not fit its input shape, no layer with parameters, or an output that is not
  // flat (end with linear) or has fewer than 2 classes; also for options out of range. INTERNAL if oneDNN
  // cannot create a CPU engine.
  static absl::StatusOr<std::unique_ptr<Model>> Create(const ModelSpec& spec, uint64_t seed,
                                                       const ModelOptions& options = {});

  const ModelSpec& spec() const { return spec_; }
  const Shape& input_shape() const { return network_->input_shape(); }
  int64_t input_numel() const { return input_numel_; }
  int num_classes() const { return num_classes_; }
  float label_smoothing() const { return options_.label_smoothing; }
  int num_threads() const { return options_.num_threads; }
  // INVALID_ARGUMENT unless 0 <= epsilon < 1.
  absl::Status set_label_smoothing(float epsilon);
  // One line per layer, PyTorch style.
  std::string Summary() const;

  // All parameters in PyTorch order (layer by layer, weight then bias), and the prunable ones (weights of
  // Linear and Conv2d layers, METHOD.md §2) in the same order.
  const std::vector<Parameter*>& parameters() { return parameters_; }
  std::vector<const Parameter*> parameters() const;
  const std::vector<Parameter*>& prunable_parameters() { return prunable_; }
  int64_t num_prunable_weights() const { return num_prunable_; }
  // OpenMP threads this model computes with (ModelOptions::num_threads, else OpenMP's default).
  int threads() const;
  int64_t num_parameters() const;
  // Multiply-accumulates of one example's forward pass (Linear and Conv2d layers).
  int64_t ForwardMacsPerExample() const;
  // FLOPs (2 per MAC) of one example's training step: forward, weight gradients, and input gradients of
  // every weight layer but the first.
  int64_t TrainingFlopsPerExample() const;

  // One training forward and backward pass on a batch: images [N, input_shape] (plain NCHW), labels [N].
  // Returns the mean label-smoothed loss and overwrites every parameter's grad with d(mean loss)/dθ; masked
  // gradient entries are 0. `correct`, when not null, receives the number of arg-max hits.
  // INVALID_ARGUMENT if labels is empty, images.size() != N·input_numel(), or a label lies outside
  // [0, num_classes) (the message names the index and value); RESOURCE_EXHAUSTED/INTERNAL from oneDNN.
  absl::StatusOr<float> ForwardBackward(absl::Span<const float> images, absl::Span<const int32_t> labels,
                                        int64_t* correct = nullptr);
  // The same mean loss without gradients, computed by the same (training-mode) primitives, so it equals the
  // loss ForwardBackward would return for the same parameters. Errors as ForwardBackward.
  absl::StatusOr<float> Loss(absl::Span<const float> images, absl::Span<const int32_t> labels,
                             int64_t* correct = nullptr);
  // Inference over all of `data` in order, `batch` examples at a time (the last batch may be smaller).
  // INVALID_ARGUMENT if the data set's shape differs from the model's input, it is empty, a label is out of
  // range, or batch < 1.
  absl::StatusOr<EvalResult> Evaluate(const Dataset& data, int batch = 1000);
  // dLoss/dInput of the last ForwardBackward (plain, N·input_numel floats) when created with input_grad;
  // null otherwise.
  const float* input_grad() const { return last_input_grad_; }

  // Sets one keep-mask per prunable parameter (prunable_parameters() order), each numel bytes of 0 (pruned) or
  // 1 (kept). Masked weights become 0 at once, Parameter::mask points to the model's copy, and every later
  // backward pass zeroes masked gradient entries. The optimizer's state is not touched: call its
  // ApplyMasks(). INVALID_ARGUMENT (nothing changed) for a wrong count, a wrong size or a value other than
  // 0/1, naming the parameter and index.
  absl::Status SetMasks(const std::vector<std::vector<uint8_t>>& masks);
  // Removes all masks (weights keep their current values).
  void ClearMasks();
  // Number of masked (pruned) prunable weights.
  int64_t num_pruned_weights() const;

  // A copy of every parameter value and mask.
  ModelSnapshot Snapshot() const;
  // Restores values and masks exactly as saved. INVALID_ARGUMENT (nothing changed) if the snapshot does not
  // match this model's parameters.
  absl::Status Restore(const ModelSnapshot& snapshot);
  // Restores the saved values but keeps the current masks, re-applied to the restored weights (lottery-ticket
  // rewinding). INVALID_ARGUMENT (nothing changed) if the snapshot does not match.
  absl::Status Rewind(const ModelSnapshot& snapshot);

 private:
  Model(ModelSpec spec, const ModelOptions& options, std::unique_ptr<Network> network);
  absl::Status CheckBatch(absl::Span<const float> images, absl::Span<const int32_t> labels) const;
  absl::Status CheckSnapshot(const ModelSnapshot& snapshot) const;
  void MaskGradients();
  // Applies options_.num_threads to the calling thread (see ModelOptions).
  void UseThreads() const;

  ModelSpec spec_;
  ModelOptions options_;
  std::unique_ptr<Network> network_;
  std::vector<Parameter*> parameters_;
  std::vector<Parameter*> prunable_;
  std::vector<std::vector<uint8_t>> masks_;  // per prunable parameter; empty = unmasked
  int64_t input_numel_ = 0;
  int64_t num_prunable_ = 0;
  int num_classes_ = 0;
  const float* last_input_grad_ = nullptr;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_MODEL_H_
