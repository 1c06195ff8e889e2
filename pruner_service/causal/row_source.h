// A read-only, row-major view of a regression's design matrix, as the Lasso solvers consume it.
#ifndef GCPRUNE_PRUNER_SERVICE_CAUSAL_ROW_SOURCE_H_
#define GCPRUNE_PRUNER_SERVICE_CAUSAL_ROW_SOURCE_H_

#include <cstdint>

namespace gcprune::pruner {

// T rows (samples) of N features (columns). Implementations: the sample store (float32 or bfloat16
// storage) and dense test matrices. Thread-safe for concurrent reads.
class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual int64_t num_rows() const = 0;
  virtual int64_t num_cols() const = 0;
  // Row t as float32: a pointer into storage, or `scratch` (num_cols() floats) after decoding.
  virtual const float* Row(int64_t t, float* scratch) const = 0;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_CAUSAL_ROW_SOURCE_H_
