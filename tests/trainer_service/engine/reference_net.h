// Double-precision reference implementations of the engine's layers and loss (PyTorch semantics, naive
// loops), and helpers to run engine networks and compare their gradients with finite differences of the
// reference. Test-only.
#ifndef GCPRUNE_TESTS_TRAINER_SERVICE_ENGINE_REFERENCE_NET_H_
#define GCPRUNE_TESTS_TRAINER_SERVICE_ENGINE_REFERENCE_NET_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "trainer_service/engine/layer.h"
#include "trainer_service/engine/model_spec.h"
#include "trainer_service/engine/parameter.h"

namespace gcprune::trainer::testing {

// A batch of examples in plain NCHW (or [N, F]) order.
struct RefTensor {
  int64_t n = 0;
  Shape shape;  // one example
  std::vector<double> v;
  int64_t numel() const { return ShapeNumel(shape); }
};

inline RefTensor RefLinear(const RefTensor& x, const std::vector<double>& w, const std::vector<double>* b,
                           int64_t out) {
  const int64_t in = x.numel();
  RefTensor y{x.n, {out}, std::vector<double>(x.n * out)};
  for (int64_t i = 0; i < x.n; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      double s = b != nullptr ? (*b)[o] : 0.0;
      for (int64_t j = 0; j < in; ++j) s += w[o * in + j] * x.v[i * in + j];
      y.v[i * out + o] = s;
    }
  }
  return y;
}

inline RefTensor RefConv2d(const RefTensor& x, const std::vector<double>& w, const std::vector<double>* b,
                           int64_t oc, int64_t k, int64_t stride, int64_t pad) {
  const int64_t c = x.shape[0], h = x.shape[1], wd = x.shape[2];
  const int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (wd + 2 * pad - k) / stride + 1;
  RefTensor y{x.n, {oc, oh, ow}, std::vector<double>(x.n * oc * oh * ow)};
  for (int64_t i = 0; i < x.n; ++i)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t q = 0; q < ow; ++q) {
          double s = b != nullptr ? (*b)[o] : 0.0;
          // The kernel rows and columns that land inside the input (zero padding elsewhere).
          const int64_t y0 = r * stride - pad, x0 = q * stride - pad;
          const int64_t kr0 = std::max<int64_t>(0, -y0), kr1 = std::min<int64_t>(k, h - y0);
          const int64_t kc0 = std::max<int64_t>(0, -x0), kc1 = std::min<int64_t>(k, wd - x0);
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t kr = kr0; kr < kr1; ++kr) {
              const double* wrow = &w[((o * c + ci) * k + kr) * k];
              const double* xrow = &x.v[((i * c + ci) * h + y0 + kr) * wd + x0];
              for (int64_t kc = kc0; kc < kc1; ++kc) s += wrow[kc] * xrow[kc];
            }
          y.v[((i * oc + o) * oh + r) * ow + q] = s;
        }
  return y;
}

inline RefTensor RefMaxPool2d(const RefTensor& x, int64_t k, int64_t stride, int64_t pad) {
  const int64_t c = x.shape[0], h = x.shape[1], wd = x.shape[2];
  const int64_t oh = (h + 2 * pad - k) / stride + 1, ow = (wd + 2 * pad - k) / stride + 1;
  RefTensor y{x.n, {c, oh, ow}, std::vector<double>(x.n * c * oh * ow)};
  for (int64_t i = 0; i < x.n * c; ++i)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t q = 0; q < ow; ++q) {
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t kr = 0; kr < k; ++kr)
          for (int64_t kc = 0; kc < k; ++kc) {
            const int64_t yy = r * stride - pad + kr, xx = q * stride - pad + kc;
            if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
            m = std::max(m, x.v[(i * h + yy) * wd + xx]);
          }
        y.v[(i * oh + r) * ow + q] = m;
      }
  return y;
}

inline RefTensor RefRelu(RefTensor x) {
  for (double& v : x.v) v = std::max(v, 0.0);
  return x;
}

// Mean over the batch of PyTorch's CrossEntropyLoss(label_smoothing = eps).
inline double RefLoss(const RefTensor& logits, const std::vector<int32_t>& labels, double eps) {
  const int64_t c = logits.numel();
  double total = 0.0;
  for (int64_t i = 0; i < logits.n; ++i) {
    const double* x = &logits.v[i * c];
    const double m = *std::max_element(x, x + c);
    double s = 0.0, mean = 0.0;
    for (int64_t j = 0; j < c; ++j) {
      s += std::exp(x[j] - m);
      mean += x[j];
    }
    const double lse = m + std::log(s);
    mean /= static_cast<double>(c);
    total += (1.0 - eps) * (lse - x[labels[i]]) + eps * (lse - mean);
  }
  return total / static_cast<double>(logits.n);
}

// Runs `layers` of a spec on `x` with `params` (one vector per engine parameter, in Model order).
inline RefTensor RefForward(const std::vector<LayerSpec>& layers, const std::vector<std::vector<double>>& params,
                            RefTensor x) {
  size_t p = 0;
  for (const LayerSpec& l : layers) {
    switch (l.kind) {
      case LayerKind::kLinear: {
        const std::vector<double>& w = params[p++];
        const std::vector<double>* b = l.bias ? &params[p++] : nullptr;
        x = RefLinear(x, w, b, l.out);
        break;
      }
      case LayerKind::kConv2d: {
        const std::vector<double>& w = params[p++];
        const std::vector<double>* b = l.bias ? &params[p++] : nullptr;
        x = RefConv2d(x, w, b, l.out, l.kernel, l.stride == 0 ? 1 : l.stride, l.padding);
        break;
      }
      case LayerKind::kMaxPool2d:
        x = RefMaxPool2d(x, l.kernel, l.stride == 0 ? l.kernel : l.stride, l.padding);
        break;
      case LayerKind::kRelu:
        x = RefRelu(std::move(x));
        break;
      case LayerKind::kFlatten:
        x.shape = {x.numel()};
        break;
    }
  }
  return x;
}

inline std::vector<double> ToDouble(const float* p, int64_t n) { return std::vector<double>(p, p + n); }

inline std::vector<std::vector<double>> ParamsToDouble(const std::vector<Parameter*>& params) {
  std::vector<std::vector<double>> out;
  for (const Parameter* p : params) out.push_back(ToDouble(p->data, p->numel));
  return out;
}

inline std::vector<float> RandomFloats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Maximum of |a − b| over the vectors, relative to max(1, max |b|): the error bound the gradient checks
// state.
inline double MaxRelativeError(const std::vector<double>& a, const std::vector<double>& b) {
  double err = 0.0, scale = 1.0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

// Central finite difference in double of f at `v` along every coordinate: df/dv[i].
template <typename F>
std::vector<double> NumericGradient(std::vector<double>* v, F f, double h = 1e-6) {
  std::vector<double> g(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const double saved = (*v)[i];
    (*v)[i] = saved + h;
    const double plus = f();
    (*v)[i] = saved - h;
    const double minus = f();
    (*v)[i] = saved;
    g[i] = (plus - minus) / (2.0 * h);
  }
  return g;
}

// Σ r ⊙ y: the scalar whose gradient a layer check compares.
inline double Project(const RefTensor& y, const std::vector<float>& r) {
  double s = 0.0;
  for (size_t i = 0; i < y.v.size(); ++i) s += y.v[i] * r[i];
  return s;
}

}  // namespace gcprune::trainer::testing

#endif  // GCPRUNE_TESTS_TRAINER_SERVICE_ENGINE_REFERENCE_NET_H_
