// A tiny leveled logger that writes one line per message to stderr (this Abseil has no absl::log).
// Usage: GCPRUNE_LOG(INFO) << "listening on " << address;
#ifndef GCPRUNE_COMMON_LOGGING_H_
#define GCPRUNE_COMMON_LOGGING_H_

#include <functional>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gcprune::common {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below the threshold are dropped without being formatted. Default: kInfo, or the value of the
// environment variable GCPRUNE_LOG_LEVEL at the first use. Thread-safe.
void SetLogThreshold(LogLevel level);
LogLevel GetLogThreshold();
inline bool LogEnabled(LogLevel level) { return level >= GetLogThreshold(); }

// Parses "debug", "info", "warning" (or "warn") and "error", case-insensitively.
// INVALID_ARGUMENT naming the value otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);

// Formats and emits one line: "I20250101 12:00:00.123456 12345 file.cc:42] message". `file` is shortened
// to its base name. Thread-safe; lines of concurrent callers never interleave.
void EmitLogLine(LogLevel level, const char* file, int line, absl::string_view message);

// Replaces stderr as the destination of formatted lines (including the trailing newline) until called
// again with an empty function. For tests.
void SetLogSinkForTesting(std::function<void(LogLevel, absl::string_view)> sink);

// Collects one message and emits it when destroyed.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line) : level_(level), file_(file), line_(line) {}
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage() { EmitLogLine(level_, file_, line_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

}  // namespace gcprune::common

#define GCPRUNE_LOG_LEVEL_DEBUG ::gcprune::common::LogLevel::kDebug
#define GCPRUNE_LOG_LEVEL_INFO ::gcprune::common::LogLevel::kInfo
#define GCPRUNE_LOG_LEVEL_WARNING ::gcprune::common::LogLevel::kWarning
#define GCPRUNE_LOG_LEVEL_ERROR ::gcprune::common::LogLevel::kError

// GCPRUNE_LOG(DEBUG|INFO|WARNING|ERROR) << ...; the stream expression is not evaluated below the threshold.
#define GCPRUNE_LOG(severity)                                               \
  if (!::gcprune::common::LogEnabled(GCPRUNE_LOG_LEVEL_##severity)) {       \
  } else                                                                    \
    ::gcprune::common::LogMessage(GCPRUNE_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()

#endif  // GCPRUNE_COMMON_LOGGING_H_
