// MaxPool2d: pooling_max forward (with workspace when training) and backward.
#include "trainer_service/engine/max_pool2d.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gcprune::trainer {

using dnnl::memory;

absl::StatusOr<std::unique_ptr<MaxPool2d>> MaxPool2d::Create(std::string name, const Shape& input_shape,
                                                             const MaxPool2dOptions& options) {
  if (input_shape.size() != 3 || input_shape[0] < 1 || input_shape[1] < 1 || input_shape[2] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": MaxPool2d needs a CxHxW input with positive sizes, got ",
                                                   ShapeToString(input_shape)));
  }
  MaxPool2dOptions resolved = options;
  if (resolved.stride == 0) resolved.stride = resolved.kernel;
  if (resolved.kernel < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": kernel must be >= 1, got ", options.kernel));
  }
  if (resolved.stride < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": stride must be >= 1, got ", options.stride));
  }
  if (resolved.padding < 0 || 2 * resolved.padding > resolved.kernel) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": padding must be in [0, kernel/2], got ", options.padding));
  }
  const int64_t oh = OutputSize(input_shape[1], resolved.kernel, resolved.stride, resolved.padding);
  const int64_t ow = OutputSize(input_shape[2], resolved.kernel, resolved.stride, resolved.padding);
  if (oh < 1 || ow < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": window ", resolved.kernel, " does not fit the input ",
                                                   ShapeToString(input_shape)));
  }
  return std::unique_ptr<MaxPool2d>(
      new MaxPool2d(std::move(name), input_shape, Shape{input_shape[0], oh, ow}, resolved));
}

std::string MaxPool2d::DebugString() const {
  return absl::StrCat("MaxPool2d(kernel_size=", options_.kernel, ", stride=", options_.stride,
                      ", padding=", options_.padding, ")");
}

LayerPlan MaxPool2d::Build(const BuildArgs& args) const {
  const dnnl::engine& eng = args.engine;
  LayerPlan plan;
  const int64_t k = options_.kernel, s = options_.stride, p = options_.padding;
  const memory::dims kernel = {k, k};
  const memory::dims strides = {s, s};
  const memory::dims pad_l = {p, p};
  const memory::dims pad_r = {RightPadding(input_shape()[1], output_shape()[1], k, s, p),
                              RightPadding(input_shape()[2], output_shape()[2], k, s, p)};
  const memory::desc src_md = args.input.value.get_desc();
  const memory::desc dst_any(BatchDims(args.batch, output_shape()), memory::data_type::f32,
                             memory::format_tag::any);
  const auto prop = args.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const auto max = dnnl::algorithm::pooling_max;

  const dnnl::pooling_forward::primitive_desc fwd_pd(
      dnnl::pooling_forward::desc(prop, max, src_md, dst_any, strides, kernel, pad_l, pad_r), eng);
  plan.output.value = memory(fwd_pd.dst_desc(), eng);
  Op fwd{dnnl::pooling_forward(fwd_pd), {{DNNL_ARG_SRC, args.input.value}, {DNNL_ARG_DST, plan.output.value}},
         nullptr};
  memory workspace;
  if (args.training) {
    workspace = memory(fwd_pd.workspace_desc(), eng);
    fwd.args[DNNL_ARG_WORKSPACE] = workspace;
  }
  plan.forward.push_back(std::move(fwd));
  if (!args.training) return plan;

  if (args.need_output_grad) plan.output.grad = memory(fwd_pd.dst_desc(), eng);
  if (args.need_input_grad) {
    const dnnl::pooling_backward::primitive_desc bwd_pd(
        dnnl::pooling_backward::desc(max, src_md, fwd_pd.dst_desc(), strides, kernel, pad_l, pad_r), eng, fwd_pd);
    if (args.input_is_relu_output) {
      // ReLU's backward on the pooled output, in place: grad *= [output > 0] (see BuildArgs).
      const auto relu = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
      const memory::desc out_md = fwd_pd.dst_desc();
      const dnnl::eltwise_forward::primitive_desc hint(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, relu, out_md, 0.0f, 0.0f), eng);
      const dnnl::eltwise_backward::primitive_desc relu_pd(
          dnnl::eltwise_backward::desc(relu, out_md, out_md, 0.0f, 0.0f), eng, hint);
      plan.backward.push_back(Op{dnnl::eltwise_backward(relu_pd),
                                 {{DNNL_ARG_DST, plan.output.value},
                                  {DNNL_ARG_DIFF_DST, plan.output.grad},
                                  {DNNL_ARG_DIFF_SRC, plan.output.grad}},
                                 nullptr});
    }
    const memory diff_dst = ReorderedInput(plan.output.grad, bwd_pd.diff_dst_desc(), eng, &plan.backward);
    std::vector<Op> after;
    const memory diff_src = ReorderedOutput(args.input.grad, bwd_pd.diff_src_desc(), eng, &after);
    plan.backward.push_back(Op{dnnl::pooling_backward(bwd_pd),
                               {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src},
                                {DNNL_ARG_WORKSPACE, workspace}},
                               nullptr});
    plan.backward.insert(plan.backward.end(), after.begin(), after.end());
  }
  return plan;
}

}  // namespace gcprune::trainer
