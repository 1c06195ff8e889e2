// The append-only journal of a session's committed steps in the iteration being collected: one
// length-prefixed, CRC-checked record per step, so a restarted server replays exactly the acknowledged
// steps. A torn record at the tail (a crash in the middle of a write) is detected and dropped.
#ifndef GCPRUNE_PRUNER_SERVICE_SERVICE_STEP_JOURNAL_H_
#define GCPRUNE_PRUNER_SERVICE_SERVICE_STEP_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace gcprune::pruner {

// The scalar part of a journalled step (StepCommit's fields).
struct StepRecord {
  int64_t step = 0;
  int32_t iteration = 0;  // 1-based prune iteration the step belongs to
  double loss_before = 0.0;
  double loss_after = 0.0;
  double learning_rate = 0.0;
  double momentum = 0.0;
};

// File format (little-endian):
//   header:  "GCPJRNL1" (8 bytes), u32 version = 1, u32 CRC-32 of the 12 preceding bytes
//   records: u32 payload length L, u32 CRC-32 (zlib's crc32) of the payload, L payload bytes
//   payload: i64 step, i32 iteration, u32 reserved = 0, f64 loss_before, f64 loss_after,
//            f64 learning_rate, f64 momentum, i64 count, count × f32 deltas (0 for methods without steps)
// A record is written with a single write(2) (after it returns, the data survives kill -9 of the process;
// with `sync` it is also fdatasync'ed, surviving power loss).
//
// Thread safety: none; the owner serialises calls.
class StepJournal {
 public:
  struct Options {
    bool sync = false;           // fdatasync after every append and reset
    int64_t max_record_bytes = int64_t{1} << 36;  // a length above this is treated as corruption
  };

  // Called for each intact record while opening, in file order. `deltas` is valid during the call only.
  // A non-OK status stops the scan and is returned by Open.
  using RecordVisitor = std::function<absl::Status(const StepRecord& record, absl::Span<const float> deltas)>;

  // Opens (creating if absent) the journal at `path`, calls `visitor` for every intact record and prepares
  // for appending. A torn tail — a record cut short, or a last record whose CRC does not match — is
  // truncated away (torn_tail_bytes() tells how much). A missing or short header makes an empty journal.
  // DATA_LOSS naming the path and offset for a bad header magic or version, or a corrupt record followed
  // by more data; INTERNAL (or PERMISSION_DENIED, NOT_FOUND for a missing directory) for I/O errors.
  static absl::StatusOr<std::unique_ptr<StepJournal>> Open(const std::string& path, Options options,
                                                           const RecordVisitor& visitor);

  ~StepJournal();
  StepJournal(const StepJournal&) = delete;
  StepJournal& operator=(const StepJournal&) = delete;

  // Appends one record. On error the file is truncated back to its previous size, so the journal
  // stays valid. RESOURCE_EXHAUSTED when the disk is full (ENOSPC, EDQUOT); INTERNAL for other I/O errors.
  absl::Status Append(const StepRecord& record, absl::Span<const float> deltas);

  // Removes the last appended record (undoes the previous successful Append). FAILED_PRECONDITION if
  // there is none to undo; INTERNAL on I/O errors.
  absl::Status UndoLastAppend();

  // Drops every record (truncate to the header). INTERNAL on I/O errors.
  absl::Status Reset();

  const std::string& path() const { return path_; }
  // Bytes of the file, header included.
  int64_t size_bytes() const { return size_; }
  int64_t num_records() const { return num_records_; }
  // Bytes dropped as a torn tail while opening.
  int64_t torn_tail_bytes() const { return torn_tail_bytes_; }

 private:
  StepJournal(std::string path, int fd, Options options);
  absl::Status TruncateTo(int64_t size);

  std::string path_;
  int fd_;
  Options options_;
  int64_t size_ = 0;
  int64_t num_records_ = 0;
  int64_t last_record_start_ = -1;  // offset of the last appended record, -1 if none to undo
  int64_t torn_tail_bytes_ = 0;
};

}  // namespace gcprune::pruner

#endif  // GCPRUNE_PRUNER_SERVICE_SERVICE_STEP_JOURNAL_H_
