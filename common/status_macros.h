// Early-return helpers for absl::Status and absl::StatusOr, which Abseil 20220623 does not ship.
#ifndef GCPRUNE_COMMON_STATUS_MACROS_H_
#define GCPRUNE_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GCPRUNE_STATUS_CONCAT_INNER_(a, b) a##b
#define GCPRUNE_STATUS_CONCAT_(a, b) GCPRUNE_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function unless it is OK.
#define GCPRUNE_RETURN_IF_ERROR(expr)                 \
  do {                                                \
    ::absl::Status gcprune_status_ = (expr);          \
    if (!gcprune_status_.ok()) return gcprune_status_; \
  } while (0)

// `GCPRUNE_ASSIGN_OR_RETURN(auto x, MakeX());` evaluates an absl::StatusOr<T>; on error returns its
// status, otherwise moves the value into the declared or existing left-hand side.
#define GCPRUNE_ASSIGN_OR_RETURN(lhs, expr) \
  GCPRUNE_ASSIGN_OR_RETURN_IMPL_(GCPRUNE_STATUS_CONCAT_(gcprune_statusor_, __LINE__), lhs, expr)

#define GCPRUNE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // GCPRUNE_COMMON_STATUS_MACROS_H_
