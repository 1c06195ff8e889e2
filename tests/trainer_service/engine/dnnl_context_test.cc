// Tests of the oneDNN boundary: exceptions become the documented status codes with the function's name.
#include "trainer_service/engine/dnnl_context.h"

#include <new>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

TEST(DnnlContextTest, CreatesACpuEngineAndStream) {
  ASSERT_OK_AND_ASSIGN(auto context, DnnlContext::Create());
  EXPECT_EQ(context->engine().get_kind(), dnnl::engine::kind::cpu);
}

TEST(DnnlContextTest, PassesStatusesThrough) {
  EXPECT_OK(CallDnnl("F", [] { return absl::OkStatus(); }));
  EXPECT_THAT(CallDnnl("F", [] { return absl::NotFoundError("x"); }), StatusIs(absl::StatusCode::kNotFound));
}

TEST(DnnlContextTest, RejectedPrimitiveBecomesInternal) {
  ASSERT_OK_AND_ASSIGN(auto context, DnnlContext::Create());
  // A reorder between descriptors of different sizes: oneDNN refuses it.
  const absl::Status status = CallDnnl("Layer::Build", [&] {
    dnnl::memory a({{2, 3}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab}, context->engine());
    dnnl::memory b({{3, 3}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab}, context->engine());
    dnnl::reorder r(a, b);
    return absl::OkStatus();
  });
  EXPECT_THAT(status, StatusIsWithMessage(absl::StatusCode::kInternal, "Layer::Build: oneDNN error"));
}

TEST(DnnlContextTest, OutOfMemoryBecomesResourceExhausted) {
  EXPECT_THAT(CallDnnl("Network::BuildPlan", []() -> absl::Status { throw std::bad_alloc(); }),
              StatusIsWithMessage(absl::StatusCode::kResourceExhausted, "Network::BuildPlan: out of memory"));
  EXPECT_THAT(CallDnnl("Network::BuildPlan",
                       []() -> absl::Status { throw dnnl::error(dnnl_out_of_memory, "could not allocate"); }),
              StatusIsWithMessage(absl::StatusCode::kResourceExhausted, "could not allocate"));
}

}  // namespace
}  // namespace gcprune::trainer
