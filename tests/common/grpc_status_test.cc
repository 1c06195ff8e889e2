// Tests of the absl::Status <-> grpc::Status mapping: every code both ways, messages, odd codes.
#include "common/grpc_status.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gcprune::common {
namespace {

struct CodePair {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
};

const std::vector<CodePair>& AllCodes() {
  static const std::vector<CodePair> kCodes = {
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
      {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
      {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
      {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
  };
  return kCodes;
}

TEST(GrpcStatusTest, MapsEveryErrorCodeToGrpcWithMessage) {
  for (const CodePair& pair : AllCodes()) {
    SCOPED_TRACE(absl::StatusCodeToString(pair.absl_code));
    const grpc::Status converted = ToGrpcStatus(absl::Status(pair.absl_code, "step 7: gap"));
    EXPECT_EQ(converted.error_code(), pair.grpc_code);
    EXPECT_EQ(converted.error_message(), "step 7: gap");
  }
}

TEST(GrpcStatusTest, MapsEveryErrorCodeFromGrpcWithMessage) {
  for (const CodePair& pair : AllCodes()) {
    SCOPED_TRACE(absl::StatusCodeToString(pair.absl_code));
    const absl::Status converted = FromGrpcStatus(grpc::Status(pair.grpc_code, "layout: tensor 'fc1.weight'"));
    EXPECT_EQ(converted.code(), pair.absl_code);
    EXPECT_EQ(converted.message(), "layout: tensor 'fc1.weight'");
  }
}

TEST(GrpcStatusTest, RoundTripsBothWays) {
  for (const CodePair& pair : AllCodes()) {
    SCOPED_TRACE(absl::StatusCodeToString(pair.absl_code));
    const absl::Status original(pair.absl_code, "m");
    EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(original)), original);
  }
}

TEST(GrpcStatusTest, OkMapsToOkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, UnknownCodesBecomeUnknown) {
  const grpc::Status from_absl = ToGrpcStatus(absl::Status(static_cast<absl::StatusCode>(42), "odd"));
  EXPECT_EQ(from_absl.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(from_absl.error_message(), "odd");
  // 20 is outside the named codes but inside the enum's value range (no undefined behaviour).
  const absl::Status from_grpc = FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd"));
  EXPECT_EQ(from_grpc.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(from_grpc.message(), "odd");
}

TEST(GrpcStatusTest, LongMessagesAreCut) {
  const std::string long_message(kMaxGrpcStatusMessageBytes * 3, 'x');
  const grpc::Status converted = ToGrpcStatus(absl::InvalidArgumentError(long_message));
  EXPECT_EQ(converted.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(converted.error_message().size(), kMaxGrpcStatusMessageBytes);
  EXPECT_EQ(converted.error_message().substr(kMaxGrpcStatusMessageBytes - 3), "...");
}

}  // namespace
}  // namespace gcprune::common
