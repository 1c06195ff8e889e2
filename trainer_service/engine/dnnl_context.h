// The engine's single boundary with oneDNN's exceptions: a CPU engine and stream, and CallDnnl, which runs
// oneDNN code and turns dnnl::error and std::bad_alloc into absl::Status.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_DNNL_CONTEXT_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_DNNL_CONTEXT_H_

#include <memory>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace gcprune::trainer {

// Runs `body` and returns its status. A dnnl::error thrown inside becomes RESOURCE_EXHAUSTED when oneDNN
// ran out of memory and INTERNAL otherwise; std::bad_alloc becomes RESOURCE_EXHAUSTED. The message starts
// with `function` and carries oneDNN's own message and status code. This is the only place in the engine
// that catches oneDNN's exceptions.
absl::Status CallDnnl(const char* function, absl::FunctionRef<absl::Status()> body);

// A oneDNN CPU engine and an in-order stream on it. Primitives built on the engine execute on the stream
// synchronously from the caller's point of view (OpenMP runtime). Thread-compatible.
class DnnlContext {
 public:
  // INTERNAL if oneDNN cannot create a CPU engine or stream.
  static absl::StatusOr<std::unique_ptr<DnnlContext>> Create();

  const dnnl::engine& engine() const { return engine_; }
  dnnl::stream& stream() { return stream_; }

 private:
  DnnlContext() = default;
  dnnl::engine engine_;
  dnnl::stream stream_;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_DNNL_CONTEXT_H_
