// The pruner's state directory: one folder per session holding its metadata (written atomically) and
// the journal of the steps of the iteration being collected, plus a lock file that keeps a second
// server off the same directory.
//
//   <root>/LOCK                              flock()ed by the running server
//   <root>/sessions/<id>/metadata.pb         SessionMetadata (pruner_session_state.proto)
//   <root>/sessions/<id>/journal.bin         StepJournal
//   <root>/trash/                            folders of deleted sessions, removed right away
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_STATE_DIRECTORY_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_STATE_DIRECTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "pruner_service/service/pruner_session_state.pb.h"
#include "pruner_service/service/step_journal.h"

namespace gcprune::pruner {

// Largest metadata file read back, in bytes (about 2 bytes per prunable weight plus the reports).
inline constexpr size_t kMaxMetadataBytes = size_t{1} << 30;

// OK if `id` can name a session: 1 to 64 characters of [A-Za-z0-9_-]. INVALID_ARGUMENT naming `field`.
absl::Status ValidateSessionId(absl::string_view id, absl::string_view field);

// Thread-safe: every method works on its session's own files; callers serialise calls per session.
class StateDirectory {
 public:
  // Creates `root` and its sub-folders if needed and takes the lock. `sync`: fsync metadata, journal
  // records and folder entries (power-loss durability); without it data survives a crash of the process
  // but not of the machine. INVALID_ARGUMENT for an empty root; FAILED_PRECONDITION if another process
  // holds the lock; PERMISSION_DENIED / INTERNAL for file-system errors, naming the path.
  static absl::StatusOr<std::unique_ptr<StateDirectory>> Open(const std::string& root, bool sync);
  ~StateDirectory();
  StateDirectory(const StateDirectory&) = delete;
  StateDirectory& operator=(const StateDirectory&) = delete;

  const std::string& root() const { return root_; }
  bool sync() const { return sync_; }
  std::string SessionPath(absl::string_view id) const;

  // Ids of the session folders, sorted. Folders without metadata (a crash during creation) are removed.
  // INTERNAL if the folder cannot be read.
  absl::StatusOr<std::vector<std::string>> ListSessions() const;

  // Creates the session's folder and writes its first metadata. ALREADY_EXISTS if the folder exists;
  // file-system errors as WriteMetadata.
  absl::Status CreateSession(const state::SessionMetadata& metadata) const;
  // Replaces the session's metadata atomically (temporary file, fsync, rename; the folder is synced too
  // when `sync`). NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED (disk full) or INTERNAL, naming the path.
  absl::Status WriteMetadata(const state::SessionMetadata& metadata) const;
  // Reads the session's metadata. NOT_FOUND if absent; DATA_LOSS if it does not parse or names another
  // session or format version.
  absl::StatusOr<state::SessionMetadata> ReadMetadata(absl::string_view id) const;
  // Opens the session's journal (see StepJournal::Open).
  absl::StatusOr<std::unique_ptr<StepJournal>> OpenJournal(absl::string_view id,
                                                           const StepJournal::RecordVisitor& visitor) const;
  // Removes the session's folder: renamed into trash/ first (atomic), then deleted. NOT_FOUND if absent.
  absl::Status DeleteSession(absl::string_view id) const;

 private:
  StateDirectory(std::string root, bool sync, int lock_fd);
  // fsyncs a folder so that renames and new entries in it are durable (only when sync_).
  absl::Status SyncFolder(const std::string& path) const;

  std::string root_;
  bool sync_;
  int lock_fd_;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_STATE_DIRECTORY_H_
