// The state directory's folders, metadata files and lock (see state_directory.h).
#include "pruner_service/service/state_directory.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace gcprune::pruner {
namespace {

constexpr char kMetadataFile[] = "metadata.pb";
constexpr char kJournalFile[] = "journal.bin";
constexpr uint32_t kMetadataFormatVersion = 1;

absl::Status FsError(const std::error_code& error, absl::string_view what, const std::string& path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", error.message());
  if (error == std::errc::permission_denied || error == std::errc::read_only_file_system) {
    return absl::PermissionDeniedError(message);
  }
  if (error == std::errc::no_such_file_or_directory) return absl::NotFoundError(message);
  if (error == std::errc::no_space_on_device) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

absl::Status MakeFolder(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return FsError(error, "cannot create folder", path);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSessionId(absl::string_view id, absl::string_view field) {
  if (id.empty() || id.size() > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": session id of ", id.size(), " characters, expected 1 to 64"));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": session id '", id, "' has a character outside [A-Za-z0-9_-]"));
    }
  }
  return absl::OkStatus();
}

StateDirectory::StateDirectory(std::string root, bool sync, int lock_fd)
    : root_(std::move(root)), sync_(sync), lock_fd_(lock_fd) {}

StateDirectory::~StateDirectory() {
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

absl::StatusOr<std::unique_ptr<StateDirectory>> StateDirectory::Open(const std::string& root, bool sync) {
  if (root.empty()) return absl::InvalidArgumentError("state directory: empty path");
  GCPRUNE_RETURN_IF_ERROR(MakeFolder(root + "/sessions"));
  GCPRUNE_RETURN_IF_ERROR(MakeFolder(root + "/trash"));
  const std::string lock_path = root + "/LOCK";
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return FsError(std::error_code(errno, std::generic_category()), "cannot open lock file", lock_path);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("state directory ", root, " is in use by another process (", lock_path, " is locked)"));
    }
    return FsError(std::error_code(error, std::generic_category()), "cannot lock", lock_path);
  }
  std::unique_ptr<StateDirectory> dir(new StateDirectory(root, sync, fd));
  // Leftovers of deletions interrupted by a crash.
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(root + "/trash", error)) {
    std::error_code ignored;
    std::filesystem::remove_all(entry.path(), ignored);
  }
  return dir;
}

std::string StateDirectory::SessionPath(absl::string_view id) const {
  return absl::StrCat(root_, "/sessions/", id);
}

absl::Status StateDirectory::SyncFolder(const std::string& path) const {
  if (!sync_) return absl::OkStatus();
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FsError(std::error_code(errno, std::generic_category()), "cannot open folder", path);
  const int result = fsync(fd);
  const int error = errno;
  close(fd);
  if (result != 0) return FsError(std::error_code(error, std::generic_category()), "cannot sync folder", path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> StateDirectory::ListSessions() const {
  std::vector<std::string> ids;
  std::error_code error;
  const std::string sessions = root_ + "/sessions";
  for (const auto& entry : std::filesystem::directory_iterator(sessions, error)) {
    const std::string id = entry.path().filename().string();
    if (!entry.is_directory() || !ValidateSessionId(id, "folder").ok()) {
      GCPRUNE_LOG(WARNING) << "state directory: ignoring " << entry.path().string();
      continue;
    }
    if (!std::filesystem::exists(entry.path() / kMetadataFile)) {
      GCPRUNE_LOG(WARNING) << "state directory: removing " << entry.path().string()
                           << ", a session folder without metadata (creation was interrupted)";
      std::error_code ignored;
      std::filesystem::remove_all(entry.path(), ignored);
      continue;
    }
    ids.push_back(id);
  }
  if (error) return FsError(error, "cannot list", sessions);
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::Status StateDirectory::CreateSession(const state::SessionMetadata& metadata) const {
  const std::string path = SessionPath(metadata.session_id());
  if (mkdir(path.c_str(), 0755) != 0) {
    const int error = errno;
    if (error == EEXIST) return absl::AlreadyExistsError(absl::StrCat("session folder ", path, " exists"));
    return FsError(std::error_code(error, std::generic_category()), "cannot create session folder", path);
  }
  absl::Status status = WriteMetadata(metadata);
  if (status.ok()) status = SyncFolder(root_ + "/sessions");
  if (!status.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  return status;
}

absl::Status StateDirectory::WriteMetadata(const state::SessionMetadata& metadata) const {
  state::SessionMetadata copy = metadata;
  copy.set_format_version(kMetadataFormatVersion);
  std::string bytes;
  if (!copy.SerializeToString(&bytes)) {
    return absl::InternalError(absl::StrCat("session ", metadata.session_id(), ": metadata does not serialise"));
  }
  const std::string folder = SessionPath(metadata.session_id());
  GCPRUNE_RETURN_IF_ERROR(common::WriteFileAtomically(absl::StrCat(folder, "/", kMetadataFile), bytes));
  return SyncFolder(folder);
}

absl::StatusOr<state::SessionMetadata> StateDirectory::ReadMetadata(absl::string_view id) const {
  const std::string path = absl::StrCat(SessionPath(id), "/", kMetadataFile);
  GCPRUNE_ASSIGN_OR_RETURN(std::string bytes, common::ReadFileToString(path, kMaxMetadataBytes));
  state::SessionMetadata metadata;
  if (!metadata.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(path, ": does not parse as session metadata"));
  }
  if (metadata.format_version() != kMetadataFormatVersion) {
    return absl::DataLossError(absl::StrCat(path, ": format version ", metadata.format_version(), ", expected ",
                                            kMetadataFormatVersion));
  }
  if (metadata.session_id() != id) {
    return absl::DataLossError(
        absl::StrCat(path, ": holds session '", metadata.session_id(), "', not '", id, "'"));
  }
  return metadata;
}

absl::StatusOr<std::unique_ptr<StepJournal>> StateDirectory::OpenJournal(
    absl::string_view id, const StepJournal::RecordVisitor& visitor) const {
  StepJournal::Options options;
  options.sync = sync_;
  return StepJournal::Open(absl::StrCat(SessionPath(id), "/", kJournalFile), options, visitor);
}

absl::Status StateDirectory::DeleteSession(absl::string_view id) const {
  static std::atomic<uint64_t> counter{0};
  const std::string path = SessionPath(id);
  const std::string trash = absl::StrCat(root_, "/trash/", id, ".", getpid(), ".", counter++);
  if (rename(path.c_str(), trash.c_str()) != 0) {
    return FsError(std::error_code(errno, std::generic_category()), "cannot delete session folder", path);
  }
  GCPRUNE_RETURN_IF_ERROR(SyncFolder(root_ + "/sessions"));
  std::error_code error;
  std::filesystem::remove_all(trash, error);
  if (error) {
    GCPRUNE_LOG(WARNING) << "cannot remove " << trash << ": " << error.message();
  }
  return absl::OkStatus();
}

}  // namespace gcprune::pruner
