// Flatten: a view when the input layout is plain, a reorder to plain NCHW otherwise.
#include "trainer_service/engine/flatten.h"

namespace gcprune::trainer {

using dnnl::memory;

LayerPlan Flatten::Build(const BuildArgs& args) const {
  const dnnl::engine& eng = args.engine;
  LayerPlan plan;
  const memory::desc in_plain = PlainDesc(BatchDims(args.batch, input_shape()));
  const memory::desc out_md = PlainDesc(BatchDims(args.batch, output_shape()));
  if (args.input.value.get_desc() == in_plain) {
    // Same bytes, another shape. The input's buffer may be swapped per call (the network's input images),
    // so the view follows it at every forward pass.
    const memory in = args.input.value;
    plan.output.value = memory(out_md, eng, in.get_data_handle());
    const memory out = plan.output.value;
    plan.forward.push_back(Op{{}, {}, [in, out]() { out.set_data_handle(in.get_data_handle()); }});
    if (args.training && args.need_output_grad) {
      plan.output.grad = args.need_input_grad ? memory(out_md, eng, args.input.grad.get_data_handle())
                                              : memory(out_md, eng);
    }
    return plan;
  }
  plan.output.value = memory(out_md, eng);
  const memory out_as_4d(in_plain, eng, plan.output.value.get_data_handle());
  plan.forward.push_back(Op{dnnl::reorder(args.input.value, out_as_4d),
                            {{DNNL_ARG_FROM, args.input.value}, {DNNL_ARG_TO, out_as_4d}},
                            nullptr});
  if (args.training && args.need_output_grad) plan.output.grad = memory(out_md, eng);
  if (args.training && args.need_input_grad) {
    const memory grad_as_4d(in_plain, eng, plan.output.grad.get_data_handle());
    plan.backward.push_back(Op{dnnl::reorder(grad_as_4d, args.input.grad),
                               {{DNNL_ARG_FROM, grad_as_4d}, {DNNL_ARG_TO, args.input.grad}},
                               nullptr});
  }
  return plan;
}

}  // namespace gcprune::trainer
