// SGD (momentum, Nesterov, L2 weight decay) and Adam with PyTorch's float32 update rules, applied
// element by element in vectorisable loops that also enforce the pruning masks.
#include "trainer_service/engine/optimizer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gcprune::trainer {
namespace {

// Below this many elements a tensor is updated by the calling thread alone: waking a thread team
// costs more than the update of a small tensor.
constexpr int64_t kParallelThreshold = int64_t{1} << 16;

// Runs kernel(begin, end) over [0, n), split across OpenMP threads when n is large. The split is
// static and elementwise, so the result does not depend on the number of threads.
template <typename Kernel>
void ForRange(int64_t n, const Kernel& kernel) {
#ifdef _OPENMP
  if (n > kParallelThreshold && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      const int64_t threads = omp_get_num_threads();
      const int64_t t = omp_get_thread_num();
      // Chunks aligned to 64 elements keep each thread on whole cache lines.
      const int64_t chunk = ((n + threads - 1) / threads + 63) / 64 * 64;
      const int64_t begin = std::min(n, t * chunk);
      const int64_t end = std::min(n, begin + chunk);
      if (begin < end) kernel(begin, end);
    }
    return;
  }
#endif
  kernel(0, n);
}

// Checks the parameter list shared by both optimizers.
absl::Status ValidateParams(const std::vector<Parameter*>& params, const char* who) {
  if (params.empty()) return absl::InvalidArgumentError(absl::StrCat(who, ": empty parameter list"));
  absl::flat_hash_set<const float*> seen;
  for (size_t i = 0; i < params.size(); ++i) {
    const Parameter* p = params[i];
    if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat(who, ": params[", i, "] is null"));
    const std::string where = absl::StrCat(who, ": params[", i, "] ('", p->name, "')");
    int64_t numel = 1;
    for (int64_t d : p->shape) {
      if (d < 0) return absl::InvalidArgumentError(absl::StrCat(where, ": negative dimension ", d));
      numel *= d;
    }
    if (p->numel < 0 || (!p->shape.empty() && numel != p->numel)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": numel ", p->numel, " does not match its shape (", numel, " elements)"));
    }
    if (p->numel > 0 && (p->data == nullptr || p->grad == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": null data or grad"));
    }
    if (p->data != nullptr && !seen.insert(p->data).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": listed twice"));
    }
  }
  return absl::OkStatus();
}

// a·b + c as torch computes it on this CPU: its tensor kernels for `add(other, alpha)` and `addcmul`
// fuse the last multiply-add when the CPU has FMA (AVX2 and up) and round twice otherwise. The build
// compiles this file with -ffp-contract=off, so these are the only fused operations.
inline float MulAdd(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

bool InUnitInterval(double x) { return x >= 0.0 && x < 1.0; }
bool NonNegativeFinite(float x) { return std::isfinite(x) && x >= 0.0f; }

// Shared state handling: the parameters, their state slots and the step count.
class OptimizerBase : public Optimizer {
 public:
  OptimizerBase(std::vector<Parameter*> params, std::string kind, int slots_per_parameter)
      : params_(std::move(params)), kind_(std::move(kind)), slots_per_parameter_(slots_per_parameter) {
    for (const Parameter* p : params_) {
      for (int k = 0; k < slots_per_parameter_; ++k) slots_.emplace_back(static_cast<size_t>(p->numel), 0.0f);
    }
  }

  void ApplyMasks() override {
    for (size_t i = 0; i < params_.size(); ++i) {
      const Parameter& p = *params_[i];
      const uint8_t* mask = p.mask;
      if (mask == nullptr) continue;
      float* data = p.data;
      float* grad = p.grad;
      ForRange(p.numel, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          data[j] = mask[j] ? data[j] : 0.0f;
          grad[j] = mask[j] ? grad[j] : 0.0f;
        }
        for (int k = 0; k < slots_per_parameter_; ++k) {
          float* slot = Slot(i, k);
          for (int64_t j = begin; j < end; ++j) slot[j] = mask[j] ? slot[j] : 0.0f;
        }
      });
    }
  }

  OptimizerState SaveState() const override {
    OptimizerState state;
    state.kind = kind_;
    state.step = step_;
    state.slots = slots_;
    return state;
  }

  absl::Status LoadState(const OptimizerState& state) override {
    if (state.kind != kind_) {
      return absl::InvalidArgumentError(
          absl::StrCat("OptimizerState.kind: '", state.kind, "' does not match this optimizer ('", kind_, "')"));
    }
    if (state.step < 0) {
      return absl::InvalidArgumentError(absl::StrCat("OptimizerState.step: ", state.step, " is negative"));
    }
    if (state.slots.size() != slots_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("OptimizerState.slots: ", state.slots.size(),
                                                     " slots, this optimizer has ", slots_.size(), " (",
                                                     params_.size(), " parameters x ", slots_per_parameter_, ")"));
    }
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (state.slots[s].size() != slots_[s].size()) {
        const Parameter& p = *params_[s / static_cast<size_t>(slots_per_parameter_)];
        return absl::InvalidArgumentError(absl::StrCat("OptimizerState.slots[", s, "]: ", state.slots[s].size(),
                                                       " values, parameter '", p.name, "' has ", p.numel));
      }
    }
    step_ = state.step;
    for (size_t s = 0; s < slots_.size(); ++s) std::copy(state.slots[s].begin(), state.slots[s].end(), slots_[s].begin());
    return absl::OkStatus();
  }

 protected:
  float* Slot(size_t param, int k) { return slots_[param * static_cast<size_t>(slots_per_parameter_) + k].data(); }

  std::vector<Parameter*> params_;
  std::string kind_;
  int slots_per_parameter_;
  std::vector<std::vector<float>> slots_;
  int64_t step_ = 0;
};

// One SGD update of elements [begin, end). Masked elements get 0 in weight, gradient and buffer.
template <bool kMasked, bool kMomentum, bool kNesterov>
void SgdKernel(float* __restrict w, float* __restrict g, float* __restrict buf, const uint8_t* __restrict mask,
               int64_t begin, int64_t end, float lr, float wd, float mu) {
  const float neg_lr = -lr;
  for (int64_t j = begin; j < end; ++j) {
    // torch: d_p = grad.add(param, alpha=wd); buf.mul_(mu).add_(d_p); d_p = d_p.add(buf, alpha=mu)
    // (Nesterov) or buf; param.add_(d_p, alpha=-lr).
    float d = g[j];
    if (wd != 0.0f) d = MulAdd(wd, w[j], d);
    if constexpr (kMomentum) {
      float b = buf[j] * mu + d;
      if constexpr (kMasked) b = mask[j] ? b : 0.0f;
      buf[j] = b;
      if constexpr (kNesterov) {
        d = MulAdd(mu, b, d);
      } else {
        d = b;
      }
    }
    const float updated = MulAdd(neg_lr, d, w[j]);
    if constexpr (kMasked) {
      w[j] = mask[j] ? updated : 0.0f;
      g[j] = mask[j] ? g[j] : 0.0f;
    } else {
      w[j] = updated;
    }
  }
}

class Sgd final : public OptimizerBase {
 public:
  Sgd(std::vector<Parameter*> params, const SgdOptions& options)
      : OptimizerBase(std::move(params), "sgd", options.momentum != 0.0f ? 1 : 0), options_(options) {}

  void Step(float lr) override {
    if (!std::isfinite(lr) || lr < 0.0f) return;
    const float wd = options_.weight_decay;
    const float mu = options_.momentum;
    for (size_t i = 0; i < params_.size(); ++i) {
      const Parameter& p = *params_[i];
      float* w = p.data;
      float* g = p.grad;
      float* buf = slots_per_parameter_ > 0 ? Slot(i, 0) : nullptr;
      const uint8_t* mask = p.mask;
      ForRange(p.numel, [&](int64_t begin, int64_t end) {
        if (mask != nullptr) {
          Dispatch<true>(w, g, buf, mask, begin, end, lr, wd, mu);
        } else {
          Dispatch<false>(w, g, buf, mask, begin, end, lr, wd, mu);
        }
      });
    }
    ++step_;
  }

 private:
  template <bool kMasked>
  void Dispatch(float* w, float* g, float* buf, const uint8_t* mask, int64_t begin, int64_t end, float lr,
                float wd, float mu) const {
    if (buf == nullptr) {
      SgdKernel<kMasked, false, false>(w, g, buf, mask, begin, end, lr, wd, mu);
    } else if (options_.nesterov) {
      SgdKernel<kMasked, true, true>(w, g, buf, mask, begin, end, lr, wd, mu);
    } else {
      SgdKernel<kMasked, true, false>(w, g, buf, mask, begin, end, lr, wd, mu);
    }
  }

  SgdOptions options_;
};

// Per-step float32 coefficients of Adam, formed in double as torch does from Python floats.
struct AdamCoefficients {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float neg_step_size;      // -(lr / (1 - beta1^t))
  float bias2_sqrt;         // sqrt(1 - beta2^t)
  float eps, weight_decay;
};

template <bool kMasked>
void AdamKernel(float* __restrict w, float* __restrict g, float* __restrict m, float* __restrict v,
                const uint8_t* __restrict mask, int64_t begin, int64_t end, const AdamCoefficients& c) {
  const AdamCoefficients k = c;  // a local copy the compiler can keep in registers
  for (int64_t j = begin; j < end; ++j) {
    // torch: grad = grad.add(param, alpha=wd); exp_avg.mul_(b1).add_(grad, alpha=1-b1);
    // exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1-b2); denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps);
    // param.addcdiv_(exp_avg, denom, value=-step_size).
    float d = g[j];
    if (k.weight_decay != 0.0f) d = MulAdd(k.weight_decay, w[j], d);
    float mj = MulAdd(k.one_minus_beta1, d, m[j] * k.beta1);
    float vj = MulAdd(k.one_minus_beta2 * d, d, v[j] * k.beta2);
    const float denom = std::sqrt(vj) / k.bias2_sqrt + k.eps;
    const float updated = w[j] + k.neg_step_size * mj / denom;
    if constexpr (kMasked) {
      const bool keep = mask[j] != 0;
      mj = keep ? mj : 0.0f;
      vj = keep ? vj : 0.0f;
      w[j] = keep ? updated : 0.0f;
      g[j] = keep ? g[j] : 0.0f;
    } else {
      w[j] = updated;
    }
    m[j] = mj;
    v[j] = vj;
  }
}

class Adam final : public OptimizerBase {
 public:
  Adam(std::vector<Parameter*> params, const AdamOptions& options)
      : OptimizerBase(std::move(params), "adam", 2), options_(options) {}

  void Step(float lr) override {
    if (!std::isfinite(lr) || lr < 0.0f) return;
    ++step_;
    const double t = static_cast<double>(step_);
    AdamCoefficients c;
    c.beta1 = static_cast<float>(options_.beta1);
    c.one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
    c.beta2 = static_cast<float>(options_.beta2);
    c.one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
    c.neg_step_size = static_cast<float>(-(static_cast<double>(lr) / (1.0 - std::pow(options_.beta1, t))));
    c.bias2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t)));
    c.eps = options_.eps;
    c.weight_decay = options_.weight_decay;
    for (size_t i = 0; i < params_.size(); ++i) {
      const Parameter& p = *params_[i];
      float* w = p.data;
      float* g = p.grad;
      float* m = Slot(i, 0);
      float* v = Slot(i, 1);
      const uint8_t* mask = p.mask;
      ForRange(p.numel, [&](int64_t begin, int64_t end) {
        if (mask != nullptr) {
          AdamKernel<true>(w, g, m, v, mask, begin, end, c);
        } else {
          AdamKernel<false>(w, g, m, v, mask, begin, end, c);
        }
      });
    }
  }

 private:
  AdamOptions options_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> CreateSgd(std::vector<Parameter*> params, const SgdOptions& options) {
  if (!InUnitInterval(options.momentum)) {
    return absl::InvalidArgumentError(absl::StrCat("SgdOptions.momentum: ", options.momentum, " is not in [0, 1)"));
  }
  if (!NonNegativeFinite(options.weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SgdOptions.weight_decay: ", options.weight_decay, " is not finite and >= 0"));
  }
  if (options.nesterov && options.momentum == 0.0f) {
    return absl::InvalidArgumentError("SgdOptions.nesterov: requires momentum > 0");
  }
  absl::Status valid = ValidateParams(params, "CreateSgd");
  if (!valid.ok()) return valid;
  return std::unique_ptr<Optimizer>(new Sgd(std::move(params), options));
}

absl::StatusOr<std::unique_ptr<Optimizer>> CreateAdam(std::vector<Parameter*> params, const AdamOptions& options) {
  if (!InUnitInterval(options.beta1)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.beta1: ", options.beta1, " is not in [0, 1)"));
  }
  if (!InUnitInterval(options.beta2)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.beta2: ", options.beta2, " is not in [0, 1)"));
  }
  if (!NonNegativeFinite(options.eps)) {
    return absl::InvalidArgumentError(absl::StrCat("AdamOptions.eps: ", options.eps, " is not finite and >= 0"));
  }
  if (!NonNegativeFinite(options.weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamOptions.weight_decay: ", options.weight_decay, " is not finite and >= 0"));
  }
  absl::Status valid = ValidateParams(params, "CreateAdam");
  if (!valid.ok()) return valid;
  return std::unique_ptr<Optimizer>(new Adam(std::move(params), options));
}

}  // namespace gcprune::trainer
