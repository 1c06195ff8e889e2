// Test helpers for absl::Status / absl::StatusOr, which GoogleTest 1.12 and Abseil 20220623 lack.
#ifndef GCPRUNE_TESTS_TESTING_STATUS_MATCHERS_H_
#define GCPRUNE_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gcprune::testing {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Matches a Status or StatusOr whose code is `code`, e.g.
//   EXPECT_THAT(store.Append(...), StatusIs(absl::StatusCode::kInvalidArgument));
MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = ::gcprune::testing::GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

// As StatusIs, and the message contains `substring`.
MATCHER_P2(StatusIsWithMessage, code, substring,
           "has status code " + absl::StatusCodeToString(code) + " and a message containing '" +
               std::string(substring) + "'") {
  const absl::Status& status = ::gcprune::testing::GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code && std::string(status.message()).find(substring) != std::string::npos;
}

}  // namespace gcprune::testing

#define GCPRUNE_TESTING_CONCAT_INNER_(a, b) a##b
#define GCPRUNE_TESTING_CONCAT_(a, b) GCPRUNE_TESTING_CONCAT_INNER_(a, b)

// The value is bound to a local first so a temporary StatusOr outlives the status read from it.
#define EXPECT_OK(expr)                                                          \
  do {                                                                           \
    auto&& gcprune_ok_value_ = (expr);                                           \
    const absl::Status& gcprune_ok_status_ =                                     \
        ::gcprune::testing::GetStatus(gcprune_ok_value_);                        \
    EXPECT_TRUE(gcprune_ok_status_.ok()) << gcprune_ok_status_.ToString();       \
  } while (0)
#define ASSERT_OK(expr)                                                          \
  do {                                                                           \
    auto&& gcprune_ok_value_ = (expr);                                           \
    const absl::Status& gcprune_ok_status_ =                                     \
        ::gcprune::testing::GetStatus(gcprune_ok_value_);                        \
    ASSERT_TRUE(gcprune_ok_status_.ok()) << gcprune_ok_status_.ToString();       \
  } while (0)

// `ASSERT_OK_AND_ASSIGN(auto x, MakeX());` fails the test unless the StatusOr is OK.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(GCPRUNE_TESTING_CONCAT_(gcprune_statusor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr)         \
  auto statusor = (expr);                                       \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString();   \
  lhs = std::move(statusor).value()

#endif  // GCPRUNE_TESTS_TESTING_STATUS_MATCHERS_H_
