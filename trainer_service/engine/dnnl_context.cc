// CallDnnl and DnnlContext: oneDNN exceptions become absl::Status here and nowhere else.
#include "trainer_service/engine/dnnl_context.h"

#include <new>

#include "absl/strings/str_cat.h"

namespace gcprune::trainer {

absl::Status CallDnnl(const char* function, absl::FunctionRef<absl::Status()> body) {
  try {
    return body();
  } catch (const dnnl::error& e) {
    std::string message = absl::StrCat(function, ": oneDNN error ", static_cast<int>(e.status), ": ", e.what());
    if (e.status == dnnl_out_of_memory) return absl::ResourceExhaustedError(message);
    return absl::InternalError(message);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(function, ": out of memory"));
  }
}

absl::StatusOr<std::unique_ptr<DnnlContext>> DnnlContext::Create() {
  std::unique_ptr<DnnlContext> context(new DnnlContext());
  absl::Status status = CallDnnl("DnnlContext::Create", [&]() {
    context->engine_ = dnnl::engine(dnnl::engine::kind::cpu, 0);
    context->stream_ = dnnl::stream(context->engine_);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return context;
}

}  // namespace gcprune::trainer
