// Network definitions without C++: an ordered list of layer specs with an input shape, a small text format
// for it, and the presets of METHOD.md §6.
//
// Text grammar (whitespace around tokens is ignored, keywords are lower case):
//   spec    := layer ("," layer)*
//   layer   := "conv:" OUT ":" K (":" conv_opt)*        2-D convolution, OUT channels, K×K kernel
//            | "linear:" OUT (":nobias")?               fully connected, OUT features
//            | "maxpool:" K (":" pool_opt)*             K×K max pooling
//            | "relu" | "flatten"
//   conv_opt := "stride=" N | "pad=" N | "nobias"       defaults: stride=1, pad=0, with bias
//   pool_opt := "stride=" N | "pad=" N                  defaults: stride=K, pad=0
//   shape   := N ("x" N)*                               input shape of one example, e.g. "1x28x28"
// Example (LeNet-5-Caffe): "conv:20:5,relu,maxpool:2,conv:50:5,relu,maxpool:2,flatten,linear:500,relu,linear:10".
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_MODEL_SPEC_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_MODEL_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gcprune::trainer {

enum class LayerKind { kConv2d, kLinear, kMaxPool2d, kRelu, kFlatten };

struct LayerSpec {
  LayerKind kind = LayerKind::kRelu;
  int64_t out = 0;      // kConv2d: output channels; kLinear: output features
  int64_t kernel = 0;   // kConv2d, kMaxPool2d: window side
  int64_t stride = 0;   // kConv2d: default 1; kMaxPool2d: 0 means kernel
  int64_t padding = 0;  // kConv2d, kMaxPool2d
  bool bias = true;     // kConv2d, kLinear

  bool operator==(const LayerSpec& other) const;
};

struct ModelSpec {
  std::string name = "custom";        // "mlp", "lenet5" for presets
  std::vector<int64_t> input_shape;   // one example: {C, H, W} or {F}
  std::vector<LayerSpec> layers;
};

// Parses "1x28x28". INVALID_ARGUMENT naming the text if it is empty, has a non-numeric or non-positive
// dimension, or more than 3 dimensions.
absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view text);

// Parses the layer list of the grammar above. INVALID_ARGUMENT naming the token (its 1-based position and
// text) for an unknown layer kind or option, a missing, non-numeric or out-of-range number, or an empty
// token. Shapes are checked later, by Model::Create.
absl::StatusOr<std::vector<LayerSpec>> ParseLayers(absl::string_view text);

// ParseLayers plus ParseShape.
absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view layers, absl::string_view input_shape);

// The canonical text of `layers` (parses back to the same list).
std::string FormatLayers(const std::vector<LayerSpec>& layers);

// METHOD.md §6 presets on 1×28×28 inputs:
//   "mlp":    flatten, 784→40→20→10 with ReLU, no biases (32,360 prunable weights);
//   "lenet5": LeNet-5-Caffe, conv 20@5×5 → ReLU → maxpool 2 → conv 50@5×5 → ReLU → maxpool 2 → fc 800→500 →
//             ReLU → fc 500→10, with biases (430,500 prunable weights).
// NOT_FOUND naming the preset and listing the known ones for any other name.
absl::StatusOr<ModelSpec> PresetModelSpec(absl::string_view name);
std::vector<std::string> PresetNames();

// A preset name, or else a layer list (with `input_shape`, e.g. "1x28x28"): what command-line tools accept.
// INVALID_ARGUMENT as ParseModelSpec; for a single word that is neither, the message lists the presets.
absl::StatusOr<ModelSpec> ModelSpecFromFlag(absl::string_view model, absl::string_view input_shape);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_MODEL_SPEC_H_
