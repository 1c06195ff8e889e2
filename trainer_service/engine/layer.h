// The layer interface of the engine: what a layer contributes to a network's per-batch plan (oneDNN
// primitives for forward and backward, memories in between), plus the helpers the layers share.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_LAYER_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_LAYER_H_

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "trainer_service/engine/parameter.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {

// The shape of one example, without the batch dimension: {C, H, W} for feature maps, {F} for flat
// features.
using Shape = std::vector<int64_t>;

// Largest number of elements of one parameter tensor or of one example's activations (1 GiB of floats, 7x
// AlexNet's largest layer): beyond it a spec is rejected instead of overflowing sizes or exhausting memory.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 28;

// Product of the dimensions (1 for an empty shape).
int64_t ShapeNumel(const Shape& shape);
// Whether the product of `dims` is at most kMaxTensorElements (checked without overflow; dims >= 1).
bool FitsTensorLimit(const std::vector<int64_t>& dims);
// "1x28x28".
std::string ShapeToString(const Shape& shape);

// A tensor flowing between two layers in one plan: its value and, when a gradient flows back into it,
// the gradient w.r.t. it. Both use the same memory descriptor (possibly a blocked oneDNN layout).
struct Activation {
  dnnl::memory value;
  dnnl::memory grad;  // empty when no gradient is needed
};

// One step of a plan: a oneDNN primitive with its arguments, or host code run in between.
struct Op {
  dnnl::primitive primitive;
  std::unordered_map<int, dnnl::memory> args;
  std::function<void()> host;  // used when `primitive` is empty
};

// What a layer gets to build its part of a plan for one batch size.
struct BuildArgs {
  dnnl::engine engine;
  int64_t batch = 0;
  // true: forward_training primitives plus backward ops; false: forward_inference only.
  bool training = false;
  Activation input;
  // Write the gradient w.r.t. the input into input.grad (which is then non-empty).
  bool need_input_grad = false;
  // Allocate output.grad: something upstream needs gradients (training only).
  bool need_output_grad = false;
  // Linear and Conv2d: apply ReLU to the output as a post-op (the next layer is a ReLU that knows it).
  bool fuse_relu = false;
  // ReLU: the previous layer already applied ReLU; only the backward pass is left to this layer.
  bool relu_already_applied = false;
  // ReLU: the next layer (a max pooling) masks the gradient instead (input_is_relu_output): no backward here.
  bool relu_backward_by_next = false;
  // MaxPool2d: the input is a ReLU output whose backward was left to this layer. Max pooling commutes with
  // ReLU, and at each window's arg-max p, relu'(x_p) = [pool output > 0]; so masking the gradient of the
  // (4x smaller) pool output before the pooling backward gives exactly ReLU's gradient.
  bool input_is_relu_output = false;
};

// A layer's contribution to a plan. `forward` ops run in order, first to last layer; `backward` ops run
// in order, last to first layer, after the gradient w.r.t. `output` has been written.
struct LayerPlan {
  Activation output;
  std::vector<Op> forward;
  std::vector<Op> backward;
};

// Float storage aligned to 64 bytes, zero-initialised, never reallocated.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(int64_t size);
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  int64_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  int64_t size_ = 0;
};

// Owns the value and gradient buffers of one Parameter (plain PyTorch layout).
class ParameterTensor {
 public:
  ParameterTensor(std::string name, Shape shape, bool prunable);
  ParameterTensor(const ParameterTensor&) = delete;
  ParameterTensor& operator=(const ParameterTensor&) = delete;
  Parameter* parameter() { return &parameter_; }
  const Parameter& parameter() const { return parameter_; }
  float* data() const { return parameter_.data; }
  float* grad() const { return parameter_.grad; }
  // Fills the values with U(-bound, bound) drawn from `rng` in flattened order.
  void FillUniform(float bound, SplitMix64* rng);

 private:
  AlignedFloats data_, grad_;
  Parameter parameter_;
};

// A layer of a sequential network. Layers are immutable after creation except for their parameter values;
// Build may be called any number of times (once per batch size and mode). Thread-compatible.
class Layer {
 public:
  virtual ~Layer() = default;

  // "conv1", "fc2", "pool1", "relu3", "flatten1".
  const std::string& name() const { return name_; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

  // PyTorch-like description, e.g. "Conv2d(1, 20, kernel_size=5, stride=1, padding=0, bias=True)".
  virtual std::string DebugString() const = 0;
  // The layer's parameters (weight first, then bias), empty for parameter-free layers.
  virtual std::vector<Parameter*> parameters() { return {}; }
  // Multiply-accumulates of the forward pass per example (0 for layers without them).
  virtual int64_t ForwardMacs() const { return 0; }
  // Whether this layer can apply a following ReLU as a oneDNN post-op (BuildArgs::fuse_relu).
  virtual bool CanFuseRelu() const { return false; }
  // Re-initialises the parameters as PyTorch's reset_parameters does, drawing from `rng`.
  virtual void ResetParameters(SplitMix64* /*rng*/) {}

  // Creates this layer's primitives and memories for `args.batch` examples. May throw dnnl::error or
  // std::bad_alloc: call it inside CallDnnl.
  virtual LayerPlan Build(const BuildArgs& args) const = 0;

 protected:
  Layer(std::string name, Shape input_shape, Shape output_shape)
      : name_(std::move(name)), input_shape_(std::move(input_shape)), output_shape_(std::move(output_shape)) {}

 private:
  std::string name_;
  Shape input_shape_, output_shape_;
};

// oneDNN helpers shared by the layers. All may throw dnnl::error.

// The plain (PyTorch) f32 descriptor of `dims`: a, nc/ab, nchw/abcd by rank.
dnnl::memory::desc PlainDesc(const dnnl::memory::dims& dims);
// {batch} followed by `shape`.
dnnl::memory::dims BatchDims(int64_t batch, const Shape& shape);
// `from` itself when it already has descriptor `want`; otherwise a new memory with `want` and a reorder
// from `from` into it appended to `ops`.
dnnl::memory ReorderedInput(const dnnl::memory& from, const dnnl::memory::desc& want, const dnnl::engine& engine,
                            std::vector<Op>* ops);
// `to` itself when it already has descriptor `want`; otherwise a new memory with `want`, and a reorder from
// it into `to` appended to `ops_after` (to run after the op that writes it).
dnnl::memory ReorderedOutput(const dnnl::memory& to, const dnnl::memory::desc& want, const dnnl::engine& engine,
                             std::vector<Op>* ops_after);
// An attribute with a ReLU post-op when `relu`, empty otherwise.
dnnl::primitive_attr ReluAttr(bool relu);
// Right padding making oneDNN's output size equal PyTorch's floor((in + 2 pad - kernel) / stride) + 1.
int64_t RightPadding(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad);
// PyTorch's output size floor((in + 2 pad - kernel) / stride) + 1 (may be < 1 for invalid settings).
int64_t OutputSize(int64_t in, int64_t kernel, int64_t stride, int64_t pad);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_LAYER_H_
