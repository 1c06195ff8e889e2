// Implementation of the stderr logger: threshold, line formatting and the test sink.
#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gcprune::common {
namespace {

constexpr int kUninitialised = -1;
std::atomic<int> g_threshold{kUninitialised};

absl::Mutex g_sink_mutex;
std::function<void(LogLevel, absl::string_view)>* g_sink ABSL_GUARDED_BY(g_sink_mutex) = nullptr;

int InitialThreshold() {
  const char* env = std::getenv("GCPRUNE_LOG_LEVEL");
  if (env != nullptr) {
    absl::StatusOr<LogLevel> level = ParseLogLevel(env);
    if (level.ok()) return static_cast<int>(*level);
  }
  return static_cast<int>(LogLevel::kInfo);
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
  }
  return '?';
}

}  // namespace

void SetLogThreshold(LogLevel level) { g_threshold.store(static_cast<int>(level), std::memory_order_relaxed); }

LogLevel GetLogThreshold() {
  int value = g_threshold.load(std::memory_order_relaxed);
  if (value == kUninitialised) {
    int initial = InitialThreshold();
    // Another thread may have set a level meanwhile; keep theirs.
    g_threshold.compare_exchange_strong(value, initial, std::memory_order_relaxed);
    value = g_threshold.load(std::memory_order_relaxed);
  }
  return static_cast<LogLevel>(value);
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("log level: '", text, "' is not one of debug, info, warning, error"));
}

void EmitLogLine(LogLevel level, const char* file, int line, absl::string_view message) {
  const char* slash = std::strrchr(file, '/');
  const char* base = slash == nullptr ? file : slash + 1;
  std::string text = absl::StrCat(
      std::string(1, LevelLetter(level)),
      absl::FormatTime("%Y%m%d %H:%M:%E6S", absl::Now(), absl::LocalTimeZone()), " ",
      static_cast<long long>(getpid()), " ", base, ":", line, "] ", message, "\n");
  absl::MutexLock lock(&g_sink_mutex);
  if (g_sink != nullptr) {
    (*g_sink)(level, text);
    return;
  }
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

void SetLogSinkForTesting(std::function<void(LogLevel, absl::string_view)> sink) {
  absl::MutexLock lock(&g_sink_mutex);
  delete g_sink;
  g_sink = sink ? new std::function<void(LogLevel, absl::string_view)>(std::move(sink)) : nullptr;
}

}  // namespace gcprune::common
