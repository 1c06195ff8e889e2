// Linear layer: inner_product forward (optionally with a fused ReLU), backward-data and backward-weights.
#include "trainer_service/engine/linear.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "trainer_service/engine/dnnl_context.h"

namespace gcprune::trainer {

using dnnl::memory;

namespace {
// Weight layouts, from single-thread measurements on AVX-512 at batch 64 and 256 (784x40, 800x500, 40x20,
// 20x10, 500x10): backward-weights and backward-data on the plain [out, in] weights (gemm) are as fast as or
// up to 2x faster than brgemm on its blocked layout, and read and write the canonical buffers directly, so they
// never reorder. Forward brgemm is up to 2x faster for small matrices, whose reorder costs about a microsecond;
// for large ones it is no faster than gemm on the plain weights once the reorder of the whole matrix at every
// forward pass is counted (800x500: 1.82 ms + 0.3 ms reorder against 2.07 ms).
constexpr int64_t kMaxBlockedForwardWeights = 1 << 15;
}  // namespace

absl::StatusOr<std::unique_ptr<Linear>> Linear::Create(std::string name, const Shape& input_shape,
                                                       int64_t out_features, bool bias) {
  if (input_shape.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": Linear needs a flat input, got ",
                                                   ShapeToString(input_shape), " (add a flatten layer before it)"));
  }
  if (input_shape[0] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": in_features must be >= 1, got ", input_shape[0]));
  }
  if (out_features < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": out_features must be >= 1, got ", out_features));
  }
  if (!FitsTensorLimit({out_features, input_shape[0]})) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": weight ", out_features, "x", input_shape[0],
                                                   " exceeds ", kMaxTensorElements, " elements"));
  }
  std::unique_ptr<Linear> layer;
  absl::Status status = CallDnnl("Linear::Create", [&]() {
    layer.reset(new Linear(name, input_shape[0], out_features, bias));
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return layer;
}

Linear::Linear(std::string name, int64_t in, int64_t out, bool bias)
    : Layer(name, {in}, {out}), in_(in), out_(out) {
  weight_ = std::make_unique<ParameterTensor>(name + ".weight", Shape{out, in}, /*prunable=*/true);
  if (bias) bias_ = std::make_unique<ParameterTensor>(name + ".bias", Shape{out}, /*prunable=*/false);
}

std::string Linear::DebugString() const {
  return absl::StrCat("Linear(in_features=", in_, ", out_features=", out_, ", bias=", bias_ ? "True" : "False", ")");
}

std::vector<Parameter*> Linear::parameters() {
  std::vector<Parameter*> params = {weight_->parameter()};
  if (bias_) params.push_back(bias_->parameter());
  return params;
}

void Linear::ResetParameters(SplitMix64* rng) {
  // kaiming_uniform_(a=√5): gain √(2/(1+5)), bound = gain·√3/√fan_in = 1/√fan_in.
  const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(in_)));
  weight_->FillUniform(bound, rng);
  if (bias_) bias_->FillUniform(bound, rng);
}

LayerPlan Linear::Build(const BuildArgs& args) const {
  using ip_fwd = dnnl::inner_product_forward;
  const dnnl::engine& eng = args.engine;
  LayerPlan plan;
  const memory::desc src_md = args.input.value.get_desc();
  const memory::dims w_dims = {out_, in_};
  const memory::desc w_plain = PlainDesc(w_dims);
  const memory::desc w_fwd = out_ * in_ <= kMaxBlockedForwardWeights
                                 ? memory::desc(w_dims, memory::data_type::f32, memory::format_tag::any)
                                 : w_plain;
  const memory::desc b_md = PlainDesc({out_});
  const memory::desc dst_md = PlainDesc({args.batch, out_});
  const auto prop = args.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;

  const ip_fwd::desc fwd_desc =
      bias_ ? ip_fwd::desc(prop, src_md, w_fwd, b_md, dst_md) : ip_fwd::desc(prop, src_md, w_fwd, dst_md);
  const ip_fwd::primitive_desc fwd_pd(fwd_desc, ReluAttr(args.fuse_relu), eng);

  const memory w_user(w_plain, eng, weight_->data());
  const memory w_mem = ReorderedInput(w_user, fwd_pd.weights_desc(), eng, &plan.forward);
  plan.output.value = memory(fwd_pd.dst_desc(), eng);
  Op fwd{ip_fwd(fwd_pd),
         {{DNNL_ARG_SRC, args.input.value}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, plan.output.value}},
         nullptr};
  if (bias_) fwd.args[DNNL_ARG_BIAS] = memory(b_md, eng, bias_->data());
  plan.forward.push_back(std::move(fwd));
  if (!args.training) return plan;

  // Parameters always need gradients, so the output always needs one too.
  plan.output.grad = memory(fwd_pd.dst_desc(), eng);

  using ip_bwd_w = dnnl::inner_product_backward_weights;
  const ip_bwd_w::desc bw_desc =
      bias_ ? ip_bwd_w::desc(src_md, w_plain, b_md, dst_md) : ip_bwd_w::desc(src_md, w_plain, dst_md);
  const ip_bwd_w::primitive_desc bw_pd(bw_desc, eng, fwd_pd);
  std::vector<Op> after;
  const memory dw_user(w_plain, eng, weight_->grad());
  const memory dw_mem = ReorderedOutput(dw_user, bw_pd.diff_weights_desc(), eng, &after);
  const memory bw_src = ReorderedInput(args.input.value, bw_pd.src_desc(), eng, &plan.backward);
  const memory bw_diff_dst = ReorderedInput(plan.output.grad, bw_pd.diff_dst_desc(), eng, &plan.backward);
  Op bw{ip_bwd_w(bw_pd),
        {{DNNL_ARG_SRC, bw_src}, {DNNL_ARG_DIFF_DST, bw_diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, dw_mem}},
        nullptr};
  if (bias_) bw.args[DNNL_ARG_DIFF_BIAS] = memory(b_md, eng, bias_->grad());
  plan.backward.push_back(std::move(bw));
  plan.backward.insert(plan.backward.end(), after.begin(), after.end());

  if (args.need_input_grad) {
    using ip_bwd_d = dnnl::inner_product_backward_data;
    const ip_bwd_d::primitive_desc bd_pd(ip_bwd_d::desc(src_md, w_plain, dst_md), eng, fwd_pd);
    const memory bd_w = ReorderedInput(w_user, bd_pd.weights_desc(), eng, &plan.backward);
    const memory bd_diff_dst = ReorderedInput(plan.output.grad, bd_pd.diff_dst_desc(), eng, &plan.backward);
    std::vector<Op> after_data;
    const memory diff_src = ReorderedOutput(args.input.grad, bd_pd.diff_src_desc(), eng, &after_data);
    plan.backward.push_back(Op{ip_bwd_d(bd_pd),
                               {{DNNL_ARG_DIFF_DST, bd_diff_dst}, {DNNL_ARG_WEIGHTS, bd_w},
                                {DNNL_ARG_DIFF_SRC, diff_src}},
                               nullptr});
    plan.backward.insert(plan.backward.end(), after_data.begin(), after_data.end());
  }
  return plan;
}

}  // namespace gcprune::trainer
