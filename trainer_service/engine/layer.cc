// Shared layer helpers: shapes, aligned parameter storage, reorders and descriptors.
#include "trainer_service/engine/layer.h"

#include <cstring>
#include <new>

#include "absl/strings/str_join.h"

namespace gcprune::trainer {

int64_t ShapeNumel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool FitsTensorLimit(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 1 || n > kMaxTensorElements / d) return false;
    n *= d;
  }
  return true;
}

std::string ShapeToString(const Shape& shape) { return absl::StrJoin(shape, "x"); }

AlignedFloats::AlignedFloats(int64_t size) : size_(size) {
  // aligned_alloc needs a size that is a multiple of the alignment.
  const size_t bytes = ((static_cast<size_t>(size) * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes > 0 ? bytes : 64);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes > 0 ? bytes : 64);
  data_.reset(static_cast<float*>(p));
}

ParameterTensor::ParameterTensor(std::string name, Shape shape, bool prunable) {
  const int64_t numel = ShapeNumel(shape);
  data_ = AlignedFloats(numel);
  grad_ = AlignedFloats(numel);
  parameter_.name = std::move(name);
  parameter_.shape = std::move(shape);
  parameter_.numel = numel;
  parameter_.prunable = prunable;
  parameter_.data = data_.data();
  parameter_.grad = grad_.data();
}

void ParameterTensor::FillUniform(float bound, SplitMix64* rng) {
  for (int64_t i = 0; i < parameter_.numel; ++i) {
    // 24 random bits give every float in [0, 1) on a 2^-24 grid, exactly representable.
    const float u = static_cast<float>(rng->Next() >> 40) * 0x1p-24f;
    parameter_.data[i] = (2.0f * u - 1.0f) * bound;
  }
}

dnnl::memory::desc PlainDesc(const dnnl::memory::dims& dims) {
  using tag = dnnl::memory::format_tag;
  tag t = tag::a;
  switch (dims.size()) {
    case 1: t = tag::a; break;
    case 2: t = tag::ab; break;
    case 3: t = tag::abc; break;
    case 4: t = tag::abcd; break;
    default: t = tag::abcde; break;
  }
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, t);
}

dnnl::memory::dims BatchDims(int64_t batch, const Shape& shape) {
  dnnl::memory::dims dims = {batch};
  dims.insert(dims.end(), shape.begin(), shape.end());
  return dims;
}

dnnl::memory ReorderedInput(const dnnl::memory& from, const dnnl::memory::desc& want, const dnnl::engine& engine,
                            std::vector<Op>* ops) {
  if (from.get_desc() == want) return from;
  dnnl::memory to(want, engine);
  ops->push_back(Op{dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, nullptr});
  return to;
}

dnnl::memory ReorderedOutput(const dnnl::memory& to, const dnnl::memory::desc& want, const dnnl::engine& engine,
                             std::vector<Op>* ops_after) {
  if (to.get_desc() == want) return to;
  dnnl::memory from(want, engine);
  ops_after->push_back(Op{dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}}, nullptr});
  return from;
}

dnnl::primitive_attr ReluAttr(bool relu) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

int64_t OutputSize(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  const int64_t span = in + 2 * pad - kernel;
  if (span < 0) return 0;
  return span / stride + 1;
}

int64_t RightPadding(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad) {
  return (out - 1) * stride + kernel - in - pad;
}

}  // namespace gcprune::trainer
