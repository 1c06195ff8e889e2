// Whole-file reads and atomic whole-file writes with absl::Status errors that name the path.
#ifndef GCPRUNE_COMMON_FILE_UTIL_H_
#define GCPRUNE_COMMON_FILE_UTIL_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gcprune::common {

// Returns the contents of `path`. NOT_FOUND if it does not exist, PERMISSION_DENIED if it cannot be
// opened for reading, FAILED_PRECONDITION if it is a directory, RESOURCE_EXHAUSTED if it is larger than
// `max_bytes`, INTERNAL for other I/O errors. Every message names the path.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 64 << 20);

// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, then rename, so
// readers see either the old or the whole new file. NOT_FOUND if the directory does not exist,
// PERMISSION_DENIED if it is not writable, INTERNAL for other I/O errors.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

}  // namespace gcprune::common

#endif  // GCPRUNE_COMMON_FILE_UTIL_H_
