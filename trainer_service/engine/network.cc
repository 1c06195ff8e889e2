// Network: chains the layers' plans (fusing ReLU into the preceding Linear/Conv2d), caches them per batch
// size and mode, and runs them on one oneDNN stream.
#include "trainer_service/engine/network.h"

#include "absl/strings/str_cat.h"
#include "trainer_service/engine/max_pool2d.h"
#include "trainer_service/engine/relu.h"

namespace gcprune::trainer {

absl::StatusOr<std::unique_ptr<Network>> Network::Create(std::vector<std::unique_ptr<Layer>> layers,
                                                         const Options& options) {
  if (layers.empty()) return absl::InvalidArgumentError("Network::Create: no layers");
  if (options.max_cached_plans < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Network::Create: max_cached_plans must be >= 1, got ", options.max_cached_plans));
  }
  for (size_t i = 1; i < layers.size(); ++i) {
    if (layers[i]->input_shape() != layers[i - 1]->output_shape()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Network::Create: layer ", i, " (", layers[i]->name(), ") expects input ",
          ShapeToString(layers[i]->input_shape()), " but layer ", i - 1, " (", layers[i - 1]->name(),
          ") produces ", ShapeToString(layers[i - 1]->output_shape())));
    }
  }
  absl::StatusOr<std::unique_ptr<DnnlContext>> context = DnnlContext::Create();
  if (!context.ok()) return context.status();
  return std::unique_ptr<Network>(new Network(*std::move(context), std::move(layers), options));
}

std::vector<Parameter*> Network::parameters() const {
  std::vector<Parameter*> params;
  for (const auto& layer : layers_) {
    for (Parameter* p : layer->parameters()) params.push_back(p);
  }
  return params;
}

absl::StatusOr<NetworkPlan*> Network::Prepare(int64_t batch, PlanMode mode) {
  if (batch < 1) return absl::InvalidArgumentError(absl::StrCat("Network::Prepare: batch must be >= 1, got ", batch));
  for (auto it = plans_.begin(); it != plans_.end(); ++it) {
    if ((*it)->batch_ == batch && (*it)->mode_ == mode) {
      if (it != plans_.begin()) plans_.splice(plans_.begin(), plans_, it);
      return plans_.front().get();
    }
  }
  absl::StatusOr<std::unique_ptr<NetworkPlan>> plan = BuildPlan(batch, mode);
  if (!plan.ok()) return plan.status();
  plans_.push_front(*std::move(plan));
  while (static_cast<int>(plans_.size()) > options_.max_cached_plans) plans_.pop_back();
  return plans_.front().get();
}

absl::StatusOr<std::unique_ptr<NetworkPlan>> Network::BuildPlan(int64_t batch, PlanMode mode) {
  auto plan = std::make_unique<NetworkPlan>();
  plan->batch_ = batch;
  plan->mode_ = mode;
  const bool training = mode == PlanMode::kTraining;
  absl::Status status = CallDnnl("Network::BuildPlan", [&]() {
    const dnnl::engine& eng = context_->engine();
    const dnnl::memory::desc in_md = PlainDesc(BatchDims(batch, input_shape()));
    plan->input_ = dnnl::memory(in_md, eng, nullptr);
    Activation act{plan->input_, {}};
    bool grad_flows = training && options_.input_grad;  // is a gradient w.r.t. `act` needed?
    if (grad_flows) {
      act.grad = dnnl::memory(in_md, eng);
      plan->input_grad_ = act.grad;
    }
    std::vector<std::vector<Op>> backward(layers_.size());
    bool relu_applied = false;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& layer = *layers_[i];
      const bool is_relu = dynamic_cast<const Relu*>(&layer) != nullptr;
      BuildArgs args;
      args.engine = eng;
      args.batch = batch;
      args.training = training;
      args.input = act;
      args.need_input_grad = grad_flows;
      args.need_output_grad = training && (grad_flows || !layers_[i]->parameters().empty());
      const Layer* next = i + 1 < layers_.size() ? layers_[i + 1].get() : nullptr;
      args.relu_already_applied = is_relu && relu_applied;
      args.relu_backward_by_next = is_relu && dynamic_cast<const MaxPool2d*>(next) != nullptr;
      args.input_is_relu_output = i > 0 && dynamic_cast<const MaxPool2d*>(&layer) != nullptr &&
                                  dynamic_cast<const Relu*>(layers_[i - 1].get()) != nullptr;
      args.fuse_relu = layer.CanFuseRelu() && dynamic_cast<const Relu*>(next) != nullptr;
      LayerPlan layer_plan = layer.Build(args);
      plan->forward_.insert(plan->forward_.end(), layer_plan.forward.begin(), layer_plan.forward.end());
      backward[i] = std::move(layer_plan.backward);
      act = layer_plan.output;
      grad_flows = args.need_output_grad;
      relu_applied = args.fuse_relu;
    }
    // The host reads the output and writes its gradient in plain layout.
    const dnnl::memory::desc out_md = PlainDesc(BatchDims(batch, output_shape()));
    plan->output_ = ReorderedInput(act.value, out_md, eng, &plan->forward_);
    if (training) {
      // Without any gradient flowing (no parameters, no input_grad) the buffer is only written, never used.
      const bool usable = act.grad && act.grad.get_desc() == out_md;
      plan->output_grad_ = usable ? act.grad : dnnl::memory(out_md, eng);
      if (act.grad && !usable) {
        plan->backward_.push_back(Op{dnnl::reorder(plan->output_grad_, act.grad),
                                     {{DNNL_ARG_FROM, plan->output_grad_}, {DNNL_ARG_TO, act.grad}},
                                     nullptr});
      }
      for (size_t i = layers_.size(); i-- > 0;) {
        plan->backward_.insert(plan->backward_.end(), backward[i].begin(), backward[i].end());
      }
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return plan;
}

void Network::Run(const std::vector<Op>& ops) {
  dnnl::stream& stream = context_->stream();
  for (const Op& op : ops) {
    if (op.host) {
      stream.wait();
      op.host();
    } else {
      op.primitive.execute(stream, op.args);
    }
  }
  stream.wait();
}

absl::Status Network::Forward(NetworkPlan* plan, const float* input) {
  return CallDnnl("Network::Forward", [&]() {
    // oneDNN only reads a source memory, so the caller's const buffer can be handed over as is.
    plan->input_.set_data_handle(const_cast<float*>(input));
    Run(plan->forward_);
    return absl::OkStatus();
  });
}

absl::Status Network::Backward(NetworkPlan* plan) {
  if (plan->mode_ != PlanMode::kTraining) {
    return absl::FailedPreconditionError("Network::Backward: the plan was built for inference");
  }
  return CallDnnl("Network::Backward", [&]() {
    Run(plan->backward_);
    return absl::OkStatus();
  });
}

}  // namespace gcprune::trainer
