// ReLU: eltwise forward and backward computed from the output (relu_use_dst_for_bwd), in place when fused.
#include "trainer_service/engine/relu.h"

namespace gcprune::trainer {

using dnnl::memory;

LayerPlan Relu::Build(const BuildArgs& args) const {
  const dnnl::engine& eng = args.engine;
  const auto relu = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
  const memory::desc md = args.input.value.get_desc();
  LayerPlan plan;
  if (args.relu_already_applied) {
    // The previous layer wrote max(x, 0) into its output: share its memories and turn the gradient
    // w.r.t. the ReLU output into the gradient w.r.t. its input in place.
    plan.output = args.input;
    if (args.training && args.need_input_grad && !args.relu_backward_by_next) {
      const dnnl::eltwise_forward::primitive_desc hint(
          dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, relu, md, 0.0f, 0.0f), eng);
      const dnnl::eltwise_backward::primitive_desc bwd_pd(
          dnnl::eltwise_backward::desc(relu, args.input.grad.get_desc(), md, 0.0f, 0.0f), eng, hint);
      plan.backward.push_back(Op{dnnl::eltwise_backward(bwd_pd),
                                 {{DNNL_ARG_DST, args.input.value},
                                  {DNNL_ARG_DIFF_DST, args.input.grad},
                                  {DNNL_ARG_DIFF_SRC, args.input.grad}},
                                 nullptr});
    }
    return plan;
  }

  const auto prop = args.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const dnnl::eltwise_forward::primitive_desc fwd_pd(dnnl::eltwise_forward::desc(prop, relu, md, 0.0f, 0.0f), eng);
  plan.output.value = memory(fwd_pd.dst_desc(), eng);
  plan.forward.push_back(Op{dnnl::eltwise_forward(fwd_pd),
                            {{DNNL_ARG_SRC, args.input.value}, {DNNL_ARG_DST, plan.output.value}},
                            nullptr});
  if (!args.training) return plan;
  if (args.need_output_grad && !(args.need_input_grad && args.relu_backward_by_next)) {
    plan.output.grad = memory(fwd_pd.dst_desc(), eng);
  }
  if (args.need_input_grad && args.relu_backward_by_next) {
    // The next layer masks the gradient; the gradient w.r.t. the output is the one w.r.t. the input.
    plan.output.grad = args.input.grad;
  } else if (args.need_input_grad) {
    const dnnl::eltwise_backward::primitive_desc bwd_pd(
        dnnl::eltwise_backward::desc(relu, args.input.grad.get_desc(), fwd_pd.dst_desc(), 0.0f, 0.0f), eng, fwd_pd);
    const memory diff_dst = ReorderedInput(plan.output.grad, bwd_pd.diff_dst_desc(), eng, &plan.backward);
    std::vector<Op> after;
    const memory diff_src = ReorderedOutput(args.input.grad, bwd_pd.diff_src_desc(), eng, &after);
    plan.backward.push_back(Op{dnnl::eltwise_backward(bwd_pd),
                               {{DNNL_ARG_DST, plan.output.value},
                                {DNNL_ARG_DIFF_DST, diff_dst},
                                {DNNL_ARG_DIFF_SRC, diff_src}},
                               nullptr});
    plan.backward.insert(plan.backward.end(), after.begin(), after.end());
  }
  return plan;
}

}  // namespace gcprune::trainer
