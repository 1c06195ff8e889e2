// Conv2d: convolution forward (optionally with a fused ReLU), backward-weights and, unless it is the first
// layer, backward-data, with reorders only where oneDNN's chosen layouts differ from the neighbours'.
#include "trainer_service/engine/conv2d.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "trainer_service/engine/dnnl_context.h"

namespace gcprune::trainer {

using dnnl::memory;

namespace {
// Layout policy, from measurements on AVX-512 (batch 256, one thread, LeNet-5's layers):
// - few input channels (the first layer's images): source as given (plain NCHW), destination chosen by
//   oneDNN (nChw16c): jit:avx512_core, 62 GFLOP/s forward; channels-last is 2x slower here and NCHW→NHWC
//   falls back to the reference kernel;
// - otherwise channels-last (NHWC) source and destination: brgconv, 74 GFLOP/s forward and 64-78 backward
//   for 20→50 channels, against 33-36 with the blocked layouts, whose 16-channel blocks pad 20 and 50.
constexpr int64_t kMinChannelsForChannelsLast = 8;
}  // namespace

absl::StatusOr<std::unique_ptr<Conv2d>> Conv2d::Create(std::string name, const Shape& input_shape,
                                                       const Conv2dOptions& options) {
  if (input_shape.size() != 3 || input_shape[0] < 1 || input_shape[1] < 1 || input_shape[2] < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": Conv2d needs a CxHxW input with positive sizes, got ", ShapeToString(input_shape)));
  }
  if (options.out_channels < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": out_channels must be >= 1, got ", options.out_channels));
  }
  if (options.kernel < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": kernel must be >= 1, got ", options.kernel));
  }
  if (options.stride < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": stride must be >= 1, got ", options.stride));
  }
  if (options.padding < 0 || options.padding >= options.kernel) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": padding must be in [0, kernel), got ", options.padding));
  }
  const int64_t oh = OutputSize(input_shape[1], options.kernel, options.stride, options.padding);
  const int64_t ow = OutputSize(input_shape[2], options.kernel, options.stride, options.padding);
  if (oh < 1 || ow < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": kernel ", options.kernel, " with padding ",
                                                   options.padding, " does not fit the input ",
                                                   ShapeToString(input_shape)));
  }
  if (!FitsTensorLimit({options.out_channels, input_shape[0], options.kernel, options.kernel}) ||
      !FitsTensorLimit({options.out_channels, oh, ow})) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": weight or output exceeds ", kMaxTensorElements,
                                                   " elements"));
  }
  std::unique_ptr<Conv2d> layer;
  absl::Status status = CallDnnl("Conv2d::Create", [&]() {
    layer.reset(new Conv2d(name, input_shape, Shape{options.out_channels, oh, ow}, options));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return layer;
}

Conv2d::Conv2d(std::string name, const Shape& input_shape, const Shape& output_shape, const Conv2dOptions& options)
    : Layer(name, input_shape, output_shape), options_(options) {
  weight_ = std::make_unique<ParameterTensor>(
      name + ".weight", Shape{options.out_channels, input_shape[0], options.kernel, options.kernel},
      /*prunable=*/true);
  if (options.bias) {
    bias_ = std::make_unique<ParameterTensor>(name + ".bias", Shape{options.out_channels}, /*prunable=*/false);
  }
}

std::string Conv2d::DebugString() const {
  return absl::StrCat("Conv2d(", input_shape()[0], ", ", options_.out_channels, ", kernel_size=", options_.kernel,
                      ", stride=", options_.stride, ", padding=", options_.padding,
                      ", bias=", bias_ ? "True" : "False", ")");
}

std::vector<Parameter*> Conv2d::parameters() {
  std::vector<Parameter*> params = {weight_->parameter()};
  if (bias_) params.push_back(bias_->parameter());
  return params;
}

int64_t Conv2d::ForwardMacs() const {
  return ShapeNumel(output_shape()) * input_shape()[0] * options_.kernel * options_.kernel;
}

void Conv2d::ResetParameters(SplitMix64* rng) {
  const int64_t fan_in = input_shape()[0] * options_.kernel * options_.kernel;
  const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
  weight_->FillUniform(bound, rng);
  if (bias_) bias_->FillUniform(bound, rng);
}

LayerPlan Conv2d::Build(const BuildArgs& args) const {
  using conv_fwd = dnnl::convolution_forward;
  using conv_bwd_w = dnnl::convolution_backward_weights;
  using conv_bwd_d = dnnl::convolution_backward_data;
  const dnnl::engine& eng = args.engine;
  const auto f32 = memory::data_type::f32;
  const auto any = memory::format_tag::any;
  const auto direct = dnnl::algorithm::convolution_direct;
  LayerPlan plan;

  const int64_t c = input_shape()[0], h = input_shape()[1], w = input_shape()[2];
  const int64_t k = options_.kernel, s = options_.stride, p = options_.padding;
  const memory::dims w_dims = {options_.out_channels, c, k, k};
  const memory::dims strides = {s, s};
  const memory::dims pad_l = {p, p};
  const memory::dims pad_r = {RightPadding(h, output_shape()[1], k, s, p), RightPadding(w, output_shape()[2], k, s, p)};
  const memory::desc in_md = args.input.value.get_desc();
  const bool channels_last = c >= kMinChannelsForChannelsLast;
  const auto nhwc = memory::format_tag::nhwc;
  const memory::desc src_md = channels_last ? memory::desc(in_md.dims(), f32, nhwc) : in_md;
  const memory::desc w_any(w_dims, f32, any);
  const memory::desc b_md = PlainDesc({options_.out_channels});
  const memory::desc dst_md(BatchDims(args.batch, output_shape()), f32, channels_last ? nhwc : any);
  const auto prop = args.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;

  const conv_fwd::desc fwd_desc = bias_ ? conv_fwd::desc(prop, direct, src_md, w_any, b_md, dst_md, strides, pad_l, pad_r)
                                        : conv_fwd::desc(prop, direct, src_md, w_any, dst_md, strides, pad_l, pad_r);
  const conv_fwd::primitive_desc fwd_pd(fwd_desc, ReluAttr(args.fuse_relu), eng);

  const memory src = ReorderedInput(args.input.value, fwd_pd.src_desc(), eng, &plan.forward);
  const memory w_user(PlainDesc(w_dims), eng, weight_->data());
  const memory w_mem = ReorderedInput(w_user, fwd_pd.weights_desc(), eng, &plan.forward);
  plan.output.value = memory(fwd_pd.dst_desc(), eng);
  Op fwd{conv_fwd(fwd_pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, plan.output.value}}, nullptr};
  if (bias_) fwd.args[DNNL_ARG_BIAS] = memory(b_md, eng, bias_->data());
  plan.forward.push_back(std::move(fwd));
  if (!args.training) return plan;

  plan.output.grad = memory(fwd_pd.dst_desc(), eng);

  const conv_bwd_w::desc bw_desc =
      bias_ ? conv_bwd_w::desc(direct, fwd_pd.src_desc(), w_any, b_md, fwd_pd.dst_desc(), strides, pad_l, pad_r)
            : conv_bwd_w::desc(direct, fwd_pd.src_desc(), w_any, fwd_pd.dst_desc(), strides, pad_l, pad_r);
  const conv_bwd_w::primitive_desc bw_pd(bw_desc, eng, fwd_pd);
  std::vector<Op> after;
  const memory dw_user(PlainDesc(w_dims), eng, weight_->grad());
  const memory dw_mem = ReorderedOutput(dw_user, bw_pd.diff_weights_desc(), eng, &after);
  const memory bw_src = ReorderedInput(src, bw_pd.src_desc(), eng, &plan.backward);
  const memory bw_diff_dst = ReorderedInput(plan.output.grad, bw_pd.diff_dst_desc(), eng, &plan.backward);
  Op bw{conv_bwd_w(bw_pd),
        {{DNNL_ARG_SRC, bw_src}, {DNNL_ARG_DIFF_DST, bw_diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, dw_mem}},
        nullptr};
  if (bias_) bw.args[DNNL_ARG_DIFF_BIAS] = memory(b_md, eng, bias_->grad());
  plan.backward.push_back(std::move(bw));
  plan.backward.insert(plan.backward.end(), after.begin(), after.end());

  if (args.need_input_grad) {
    const conv_bwd_d::desc bd_desc(direct, fwd_pd.src_desc(), w_any, fwd_pd.dst_desc(), strides, pad_l, pad_r);
    const conv_bwd_d::primitive_desc bd_pd(bd_desc, eng, fwd_pd);
    const memory bd_w = bd_pd.weights_desc() == w_mem.get_desc()
                            ? w_mem
                            : ReorderedInput(w_user, bd_pd.weights_desc(), eng, &plan.backward);
    const memory bd_diff_dst = ReorderedInput(plan.output.grad, bd_pd.diff_dst_desc(), eng, &plan.backward);
    std::vector<Op> after_data;
    const memory diff_src = ReorderedOutput(args.input.grad, bd_pd.diff_src_desc(), eng, &after_data);
    plan.backward.push_back(Op{conv_bwd_d(bd_pd),
                               {{DNNL_ARG_DIFF_DST, bd_diff_dst}, {DNNL_ARG_WEIGHTS, bd_w},
                                {DNNL_ARG_DIFF_SRC, diff_src}},
                               nullptr});
    plan.backward.insert(plan.backward.end(), after_data.begin(), after_data.end());
  }
  return plan;
}

}  // namespace gcprune::trainer
