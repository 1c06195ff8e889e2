// Model: layers from a spec, PyTorch-default initialisation, loss, masks and snapshots on top of Network.
#include "trainer_service/engine/model.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "trainer_service/engine/conv2d.h"
#include "trainer_service/engine/elementwise.h"
#include "trainer_service/engine/flatten.h"
#include "trainer_service/engine/linear.h"
#include "trainer_service/engine/max_pool2d.h"
#include "trainer_service/engine/relu.h"
#include "trainer_service/engine/softmax_cross_entropy.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

constexpr int kMaxThreads = 1024;

absl::StatusOr<std::unique_ptr<Layer>> MakeLayer(const LayerSpec& spec, const Shape& input, int index[5]) {
  const int k = ++index[static_cast<int>(spec.kind)];
  switch (spec.kind) {
    case LayerKind::kConv2d: {
      Conv2dOptions options;
      options.out_channels = spec.out;
      options.kernel = spec.kernel;
      options.stride = spec.stride;
      options.padding = spec.padding;
      options.bias = spec.bias;
      GCPRUNE_ASSIGN_OR_RETURN(auto layer, Conv2d::Create(absl::StrCat("conv", k), input, options));
      return std::unique_ptr<Layer>(std::move(layer));
    }
    case LayerKind::kLinear: {
      GCPRUNE_ASSIGN_OR_RETURN(auto layer, Linear::Create(absl::StrCat("fc", k), input, spec.out, spec.bias));
      return std::unique_ptr<Layer>(std::move(layer));
    }
    case LayerKind::kMaxPool2d: {
      MaxPool2dOptions options;
      options.kernel = spec.kernel;
      options.stride = spec.stride;
      options.padding = spec.padding;
      GCPRUNE_ASSIGN_OR_RETURN(auto layer, MaxPool2d::Create(absl::StrCat("pool", k), input, options));
      return std::unique_ptr<Layer>(std::move(layer));
    }
    case LayerKind::kRelu:
      return std::unique_ptr<Layer>(std::make_unique<Relu>(absl::StrCat("relu", k), input));
    case LayerKind::kFlatten:
      if (input.size() != 3) {
        return absl::InvalidArgumentError(
            absl::StrCat("flatten needs a CxHxW input, got ", ShapeToString(input)));
      }
      return std::unique_ptr<Layer>(std::make_unique<Flatten>(absl::StrCat("flatten", k), input));
  }
  return absl::InvalidArgumentError("unknown layer kind");
}

absl::StatusOr<std::vector<std::unique_ptr<Layer>>> MakeLayers(const ModelSpec& spec) {
  if (spec.input_shape.size() != 1 && spec.input_shape.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat("model '", spec.name, "': input shape must be CxHxW or F, got '",
                                                   ShapeToString(spec.input_shape), "'"));
  }
  for (int64_t d : spec.input_shape) {
    if (d < 1) {
      return absl::InvalidArgumentError(absl::StrCat("model '", spec.name, "': input shape '",
                                                     ShapeToString(spec.input_shape), "' has a size below 1"));
    }
  }
  if (!FitsTensorLimit(spec.input_shape)) {
    return absl::InvalidArgumentError(absl::StrCat("model '", spec.name, "': input shape '",
                                                   ShapeToString(spec.input_shape), "' exceeds ",
                                                   kMaxTensorElements, " elements"));
  }
  if (spec.layers.empty()) return absl::InvalidArgumentError(absl::StrCat("model '", spec.name, "': no layers"));
  std::vector<std::unique_ptr<Layer>> layers;
  int index[5] = {0, 0, 0, 0, 0};
  Shape shape = spec.input_shape;
  bool has_parameters = false;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    absl::StatusOr<std::unique_ptr<Layer>> layer = MakeLayer(spec.layers[i], shape, index);
    if (!layer.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", i + 1, " '", FormatLayers({spec.layers[i]}),
                                                     "' on input ", ShapeToString(shape), ": ",
                                                     layer.status().message()));
    }
    shape = (*layer)->output_shape();
    has_parameters = has_parameters || !(*layer)->parameters().empty();
    layers.push_back(*std::move(layer));
  }
  if (!has_parameters) {
    return absl::InvalidArgumentError(absl::StrCat("model '", spec.name, "': no layer with parameters"));
  }
  if (shape.size() != 1 || shape[0] < 2) {
    return absl::InvalidArgumentError(absl::StrCat("model '", spec.name, "': the output must be flat with >= 2 ",
                                                   "classes (end with linear:<classes>), got ", ShapeToString(shape)));
  }
  return layers;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Create(const ModelSpec& spec, uint64_t seed,
                                                     const ModelOptions& options) {
  if (!(options.label_smoothing >= 0.0f && options.label_smoothing < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("label_smoothing must be in [0, 1), got ", options.label_smoothing));
  }
  if (options.num_threads < 0 || options.num_threads > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be in [0, ", kMaxThreads, "], got ", options.num_threads));
  }
  GCPRUNE_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<Layer>> layers, MakeLayers(spec));
  SplitMix64 rng(seed);
  for (auto& layer : layers) layer->ResetParameters(&rng);
  Network::Options network_options;
  network_options.input_grad = options.input_grad;
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<Network> network, Network::Create(std::move(layers), network_options));
  return std::unique_ptr<Model>(new Model(spec, options, std::move(network)));
}

Model::Model(ModelSpec spec, const ModelOptions& options, std::unique_ptr<Network> network)
    : spec_(std::move(spec)), options_(options), network_(std::move(network)) {
  parameters_ = network_->parameters();
  for (Parameter* p : parameters_) {
    if (!p->prunable) continue;
    prunable_.push_back(p);
    num_prunable_ += p->numel;
  }
  masks_.resize(prunable_.size());
  input_numel_ = ShapeNumel(network_->input_shape());
  num_classes_ = static_cast<int>(network_->output_shape()[0]);
}

absl::Status Model::set_label_smoothing(float epsilon) {
  if (!(epsilon >= 0.0f && epsilon < 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("label_smoothing must be in [0, 1), got ", epsilon));
  }
  options_.label_smoothing = epsilon;
  return absl::OkStatus();
}

std::string Model::Summary() const {
  std::string out = absl::StrCat(spec_.name, ": input ", ShapeToString(network_->input_shape()), "\n");
  for (const auto& layer : network_->layers()) {
    absl::StrAppend(&out, "  ", layer->name(), ": ", layer->DebugString(), " -> ",
                    ShapeToString(layer->output_shape()), "\n");
  }
  absl::StrAppend(&out, "  parameters: ", num_parameters(), ", prunable weights: ", num_prunable_, "\n");
  return out;
}

std::vector<const Parameter*> Model::parameters() const { return {parameters_.begin(), parameters_.end()}; }

int64_t Model::num_parameters() const {
  int64_t n = 0;
  for (const Parameter* p : parameters_) n += p->numel;
  return n;
}

int64_t Model::ForwardMacsPerExample() const {
  int64_t macs = 0;
  for (const auto& layer : network_->layers()) macs += layer->ForwardMacs();
  return macs;
}

int64_t Model::TrainingFlopsPerExample() const {
  int64_t flops = 0;
  bool first = true;
  for (const auto& layer : network_->layers()) {
    const int64_t macs = layer->ForwardMacs();
    if (macs == 0) continue;
    flops += 2 * macs * (first ? 2 : 3);
    first = false;
  }
  return flops;
}

absl::Status Model::CheckBatch(absl::Span<const float> images, absl::Span<const int32_t> labels) const {
  if (labels.empty()) return absl::InvalidArgumentError("labels: empty batch");
  const int64_t n = static_cast<int64_t>(labels.size());
  if (static_cast<int64_t>(images.size()) != n * input_numel_) {
    return absl::InvalidArgumentError(absl::StrCat("images: expected ", n, " x ", input_numel_, " = ",
                                                   n * input_numel_, " floats for ", n, " labels, got ",
                                                   images.size()));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", i, "] = ", labels[i], " is outside [0, ", num_classes_, ")"));
    }
  }
  return absl::OkStatus();
}

int DefaultThreads() { return omp_get_max_threads(); }

int Model::threads() const { return options_.num_threads > 0 ? options_.num_threads : omp_get_max_threads(); }

void Model::UseThreads() const {
  if (options_.num_threads > 0) omp_set_num_threads(options_.num_threads);
}

void Model::MaskGradients() {
  for (size_t i = 0; i < prunable_.size(); ++i) {
    if (!masks_[i].empty()) ApplyMask(prunable_[i]->grad, masks_[i].data(), prunable_[i]->numel);
  }
}

absl::StatusOr<float> Model::ForwardBackward(absl::Span<const float> images, absl::Span<const int32_t> labels,
                                             int64_t* correct) {
  GCPRUNE_RETURN_IF_ERROR(CheckBatch(images, labels));
  UseThreads();
  const int64_t n = static_cast<int64_t>(labels.size());
  GCPRUNE_ASSIGN_OR_RETURN(NetworkPlan * plan, network_->Prepare(n, PlanMode::kTraining));
  GCPRUNE_RETURN_IF_ERROR(network_->Forward(plan, images.data()));
  const CrossEntropySums sums = SoftmaxCrossEntropy(plan->output(), labels.data(), n, num_classes_,
                                                    options_.label_smoothing, plan->output_grad());
  GCPRUNE_RETURN_IF_ERROR(network_->Backward(plan));
  MaskGradients();
  last_input_grad_ = plan->input_grad();
  if (correct != nullptr) *correct = sums.correct;
  return static_cast<float>(sums.loss / static_cast<double>(n));
}

absl::StatusOr<float> Model::Loss(absl::Span<const float> images, absl::Span<const int32_t> labels,
                                  int64_t* correct) {
  GCPRUNE_RETURN_IF_ERROR(CheckBatch(images, labels));
  UseThreads();
  const int64_t n = static_cast<int64_t>(labels.size());
  GCPRUNE_ASSIGN_OR_RETURN(NetworkPlan * plan, network_->Prepare(n, PlanMode::kTraining));
  GCPRUNE_RETURN_IF_ERROR(network_->Forward(plan, images.data()));
  const CrossEntropySums sums =
      SoftmaxCrossEntropy(plan->output(), labels.data(), n, num_classes_, options_.label_smoothing, nullptr);
  if (correct != nullptr) *correct = sums.correct;
  return static_cast<float>(sums.loss / static_cast<double>(n));
}

absl::StatusOr<EvalResult> Model::Evaluate(const Dataset& data, int batch) {
  if (batch < 1) return absl::InvalidArgumentError(absl::StrCat("Evaluate: batch must be >= 1, got ", batch));
  if (data.size < 1) return absl::InvalidArgumentError("Evaluate: empty data set");
  if (data.image_numel() != input_numel_ ||
      (input_shape().size() == 3 &&
       (data.channels != input_shape()[0] || data.height != input_shape()[1] || data.width != input_shape()[2]))) {
    return absl::InvalidArgumentError(absl::StrCat("Evaluate: data set images are ", data.channels, "x", data.height,
                                                   "x", data.width, ", the model expects ",
                                                   ShapeToString(input_shape())));
  }
  if (static_cast<int64_t>(data.images.size()) != data.size * input_numel_ ||
      static_cast<int64_t>(data.labels.size()) != data.size) {
    return absl::InvalidArgumentError(absl::StrCat("Evaluate: data set holds ", data.images.size(), " floats and ",
                                                   data.labels.size(), " labels for size ", data.size));
  }
  UseThreads();
  CrossEntropySums total;
  for (int64_t begin = 0; begin < data.size; begin += batch) {
    const int64_t n = std::min<int64_t>(batch, data.size - begin);
    absl::Span<const float> images(data.images.data() + begin * input_numel_, n * input_numel_);
    absl::Span<const int32_t> labels(data.labels.data() + begin, n);
    GCPRUNE_RETURN_IF_ERROR(CheckBatch(images, labels));
    GCPRUNE_ASSIGN_OR_RETURN(NetworkPlan * plan, network_->Prepare(n, PlanMode::kInference));
    GCPRUNE_RETURN_IF_ERROR(network_->Forward(plan, images.data()));
    const CrossEntropySums sums =
        SoftmaxCrossEntropy(plan->output(), labels.data(), n, num_classes_, options_.label_smoothing, nullptr);
    total.loss += sums.loss;
    total.cross_entropy += sums.cross_entropy;
    total.correct += sums.correct;
  }
  EvalResult result;
  result.count = data.size;
  result.correct = total.correct;
  result.loss = total.loss / static_cast<double>(data.size);
  result.cross_entropy = total.cross_entropy / static_cast<double>(data.size);
  result.accuracy = static_cast<double>(total.correct) / static_cast<double>(data.size);
  return result;
}

absl::Status Model::SetMasks(const std::vector<std::vector<uint8_t>>& masks) {
  if (masks.size() != prunable_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("masks: expected ", prunable_.size(), " (one per prunable tensor), got ", masks.size()));
  }
  for (size_t i = 0; i < masks.size(); ++i) {
    const Parameter& p = *prunable_[i];
    if (static_cast<int64_t>(masks[i].size()) != p.numel) {
      return absl::InvalidArgumentError(
          absl::StrCat("mask of ", p.name, ": expected ", p.numel, " bytes, got ", masks[i].size()));
    }
    for (size_t j = 0; j < masks[i].size(); ++j) {
      if (masks[i][j] > 1) {
        return absl::InvalidArgumentError(absl::StrCat("mask of ", p.name, "[", j, "] = ",
                                                       static_cast<int>(masks[i][j]), ", expected 0 or 1"));
      }
    }
  }
  for (size_t i = 0; i < masks.size(); ++i) {
    masks_[i] = masks[i];
    prunable_[i]->mask = masks_[i].data();
    ApplyMask(prunable_[i]->data, masks_[i].data(), prunable_[i]->numel);
  }
  return absl::OkStatus();
}

void Model::ClearMasks() {
  for (size_t i = 0; i < prunable_.size(); ++i) {
    masks_[i].clear();
    masks_[i].shrink_to_fit();
    prunable_[i]->mask = nullptr;
  }
}

int64_t Model::num_pruned_weights() const {
  int64_t pruned = 0;
  for (const std::vector<uint8_t>& mask : masks_) pruned += std::count(mask.begin(), mask.end(), uint8_t{0});
  return pruned;
}

ModelSnapshot Model::Snapshot() const {
  ModelSnapshot snapshot;
  snapshot.values.reserve(parameters_.size());
  snapshot.masks.resize(parameters_.size());
  size_t k = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Parameter& p = *parameters_[i];
    snapshot.values.emplace_back(p.data, p.data + p.numel);
    if (p.prunable) {
      snapshot.masks[i] = masks_[k];
      ++k;
    }
  }
  return snapshot;
}

absl::Status Model::CheckSnapshot(const ModelSnapshot& snapshot) const {
  if (snapshot.values.size() != parameters_.size() || snapshot.masks.size() != parameters_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot: holds ", snapshot.values.size(), " tensors and ",
                                                   snapshot.masks.size(), " masks, the model has ",
                                                   parameters_.size(), " parameters"));
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Parameter& p = *parameters_[i];
    if (static_cast<int64_t>(snapshot.values[i].size()) != p.numel) {
      return absl::InvalidArgumentError(absl::StrCat("snapshot: ", p.name, " has ", snapshot.values[i].size(),
                                                     " values, expected ", p.numel));
    }
    const std::vector<uint8_t>& mask = snapshot.masks[i];
    if (!mask.empty() && (!p.prunable || static_cast<int64_t>(mask.size()) != p.numel)) {
      return absl::InvalidArgumentError(absl::StrCat("snapshot: mask of ", p.name, " has ", mask.size(),
                                                     " entries, expected ", p.prunable ? p.numel : 0));
    }
  }
  return absl::OkStatus();
}

absl::Status Model::Restore(const ModelSnapshot& snapshot) {
  GCPRUNE_RETURN_IF_ERROR(CheckSnapshot(snapshot));
  size_t k = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Parameter& p = *parameters_[i];
    std::memcpy(p.data, snapshot.values[i].data(), sizeof(float) * p.numel);
    if (!p.prunable) continue;
    masks_[k] = snapshot.masks[i];
    p.mask = masks_[k].empty() ? nullptr : masks_[k].data();
    if (p.mask != nullptr) ApplyMask(p.data, p.mask, p.numel);
    ++k;
  }
  return absl::OkStatus();
}

absl::Status Model::Rewind(const ModelSnapshot& snapshot) {
  GCPRUNE_RETURN_IF_ERROR(CheckSnapshot(snapshot));
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Parameter& p = *parameters_[i];
    std::memcpy(p.data, snapshot.values[i].data(), sizeof(float) * p.numel);
    if (p.mask != nullptr) ApplyMask(p.data, p.mask, p.numel);
  }
  return absl::OkStatus();
}

}  // namespace gcprune::trainer
