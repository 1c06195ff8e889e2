// The step journal's file format and I/O (see step_journal.h).
#include "pruner_service/service/step_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace gcprune::pruner {
namespace {

constexpr char kMagic[8] = {'G', 'C', 'P', 'J', 'R', 'N', 'L', '1'};
constexpr uint32_t kVersion = 1;
constexpr int64_t kHeaderBytes = 16;        // magic, version, CRC
constexpr int64_t kRecordPrefixBytes = 8;   // length, CRC
constexpr int64_t kFixedPayloadBytes = 56;  // step .. count

uint32_t Crc(uint32_t crc, const void* data, size_t size) {
  // zlib's crc32 takes a uInt length: feed large buffers in pieces.
  const unsigned char* p = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const size_t n = std::min<size_t>(size, size_t{1} << 30);
    crc = static_cast<uint32_t>(crc32(crc, p, static_cast<uInt>(n)));
    p += n;
    size -= n;
  }
  return crc;
}

template <typename T>
void Put(char* out, size_t* pos, T value) {
  std::memcpy(out + *pos, &value, sizeof value);
  *pos += sizeof value;
}

template <typename T>
T Get(const char* in, size_t* pos) {
  T value;
  std::memcpy(&value, in + *pos, sizeof value);
  *pos += sizeof value;
  return value;
}

absl::Status ErrnoError(int error, absl::string_view what, const std::string& path) {
  const std::string message = absl::StrCat(what, " ", path, ": ", std::strerror(error));
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Reads exactly `size` bytes at `offset`; returns the number read (short only at end of file).
absl::StatusOr<int64_t> ReadAt(int fd, void* buffer, int64_t size, int64_t offset, const std::string& path) {
  int64_t done = 0;
  char* out = static_cast<char*>(buffer);
  while (done < size) {
    const ssize_t n = pread(fd, out + done, static_cast<size_t>(size - done), static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot read journal", path);
    }
    if (n == 0) break;
    done += n;
  }
  return done;
}

absl::Status WriteAt(int fd, struct iovec* iov, int iovcnt, int64_t offset, const std::string& path) {
  while (iovcnt > 0) {
    const ssize_t n = pwritev(fd, iov, iovcnt, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot write journal", path);
    }
    offset += n;
    size_t left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return absl::OkStatus();
}

std::string HeaderBytes() {
  char header[kHeaderBytes];
  size_t pos = 0;
  std::memcpy(header, kMagic, sizeof kMagic);
  pos += sizeof kMagic;
  Put<uint32_t>(header, &pos, kVersion);
  Put<uint32_t>(header, &pos, Crc(0, header, pos));
  return std::string(header, sizeof header);
}

}  // namespace

StepJournal::StepJournal(std::string path, int fd, Options options)
    : path_(std::move(path)), fd_(fd), options_(options) {}

StepJournal::~StepJournal() { close(fd_); }

absl::StatusOr<std::unique_ptr<StepJournal>> StepJournal::Open(const std::string& path, Options options,
                                                               const RecordVisitor& visitor) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot open journal", path);
  std::unique_ptr<StepJournal> journal(new StepJournal(path, fd, options));
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoError(errno, "cannot stat journal", path);
  const int64_t file_size = st.st_size;

  char header[kHeaderBytes];
  GCPRUNE_ASSIGN_OR_RETURN(int64_t got, ReadAt(fd, header, kHeaderBytes, 0, path));
  if (got < kHeaderBytes) {
    // A new file, or a crash before the header was complete: start afresh.
    journal->torn_tail_bytes_ = got;
    GCPRUNE_RETURN_IF_ERROR(journal->Reset());
    return journal;
  }
  if (std::string(header, kHeaderBytes) != HeaderBytes()) {
    return absl::DataLossError(absl::StrCat("journal ", path, ": bad header (not a step journal of version ",
                                            kVersion, ")"));
  }

  int64_t offset = kHeaderBytes;
  std::vector<float> payload;  // float-aligned buffer for the payload
  while (offset < file_size) {
    char prefix[kRecordPrefixBytes];
    GCPRUNE_ASSIGN_OR_RETURN(got, ReadAt(fd, prefix, kRecordPrefixBytes, offset, path));
    if (got < kRecordPrefixBytes) break;  // torn length prefix
    size_t pos = 0;
    const uint32_t length = Get<uint32_t>(prefix, &pos);
    const uint32_t crc = Get<uint32_t>(prefix, &pos);
    const int64_t end = offset + kRecordPrefixBytes + length;
    if (end > file_size) break;  // torn payload
    if (length < kFixedPayloadBytes || length > options.max_record_bytes || length % 4 != 0) {
      return absl::DataLossError(
          absl::StrCat("journal ", path, ": record at offset ", offset, " has an invalid length ", length));
    }
    payload.resize(length / 4);
    GCPRUNE_ASSIGN_OR_RETURN(got, ReadAt(fd, payload.data(), length, offset + kRecordPrefixBytes, path));
    if (got < length) break;
    if (Crc(0, payload.data(), length) != crc) {
      if (end == file_size) break;  // the last record was torn
      return absl::DataLossError(absl::StrCat("journal ", path, ": CRC mismatch in the record at offset ", offset,
                                              " with ", file_size - end, " bytes after it"));
    }
    const char* p = reinterpret_cast<const char*>(payload.data());
    pos = 0;
    StepRecord record;
    record.step = Get<int64_t>(p, &pos);
    record.iteration = Get<int32_t>(p, &pos);
    Get<uint32_t>(p, &pos);
    record.loss_before = Get<double>(p, &pos);
    record.loss_after = Get<double>(p, &pos);
    record.learning_rate = Get<double>(p, &pos);
    record.momentum = Get<double>(p, &pos);
    const int64_t count = Get<int64_t>(p, &pos);
    if (count < 0 || kFixedPayloadBytes + 4 * count != length) {
      return absl::DataLossError(absl::StrCat("journal ", path, ": record at offset ", offset, " holds ", count,
                                              " values in ", length, " bytes"));
    }
    GCPRUNE_RETURN_IF_ERROR(
        visitor(record, absl::MakeConstSpan(payload.data() + kFixedPayloadBytes / 4, static_cast<size_t>(count))));
    ++journal->num_records_;
    offset = end;
  }
  journal->size_ = offset;
  if (offset < file_size) {
    journal->torn_tail_bytes_ = file_size - offset;
    GCPRUNE_RETURN_IF_ERROR(journal->TruncateTo(offset));
  }
  return journal;
}

absl::Status StepJournal::Append(const StepRecord& record, absl::Span<const float> deltas) {
  char head[kRecordPrefixBytes + kFixedPayloadBytes];
  size_t pos = kRecordPrefixBytes;
  Put<int64_t>(head, &pos, record.step);
  Put<int32_t>(head, &pos, record.iteration);
  Put<uint32_t>(head, &pos, 0);
  Put<double>(head, &pos, record.loss_before);
  Put<double>(head, &pos, record.loss_after);
  Put<double>(head, &pos, record.learning_rate);
  Put<double>(head, &pos, record.momentum);
  Put<int64_t>(head, &pos, static_cast<int64_t>(deltas.size()));
  const int64_t length = kFixedPayloadBytes + 4 * static_cast<int64_t>(deltas.size());
  if (length > options_.max_record_bytes || length > int64_t{0xFFFFFFFF}) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal ", path_, ": a record of ", length, " bytes is over the limit"));
  }
  uint32_t crc = Crc(0, head + kRecordPrefixBytes, kFixedPayloadBytes);
  crc = Crc(crc, deltas.data(), deltas.size() * sizeof(float));
  pos = 0;
  Put<uint32_t>(head, &pos, static_cast<uint32_t>(length));
  Put<uint32_t>(head, &pos, crc);

  struct iovec iov[2];
  iov[0].iov_base = head;
  iov[0].iov_len = sizeof head;
  iov[1].iov_base = const_cast<float*>(deltas.data());
  iov[1].iov_len = deltas.size() * sizeof(float);
  const int64_t start = size_;
  absl::Status status = WriteAt(fd_, iov, deltas.empty() ? 1 : 2, start, path_);
  if (status.ok() && options_.sync && fdatasync(fd_) != 0) status = ErrnoError(errno, "cannot sync journal", path_);
  if (!status.ok()) {
    // Leave no partial record behind; if even that fails, the torn tail is dropped at the next Open.
    TruncateTo(start).IgnoreError();
    return status;
  }
  size_ = start + kRecordPrefixBytes + length;
  last_record_start_ = start;
  ++num_records_;
  return absl::OkStatus();
}

absl::Status StepJournal::UndoLastAppend() {
  if (last_record_start_ < 0) {
    return absl::FailedPreconditionError(absl::StrCat("journal ", path_, ": no appended record to undo"));
  }
  GCPRUNE_RETURN_IF_ERROR(TruncateTo(last_record_start_));
  last_record_start_ = -1;
  --num_records_;
  return absl::OkStatus();
}

absl::Status StepJournal::Reset() {
  if (ftruncate(fd_, 0) != 0) return ErrnoError(errno, "cannot truncate journal", path_);
  const std::string header = HeaderBytes();
  struct iovec iov;
  iov.iov_base = const_cast<char*>(header.data());
  iov.iov_len = header.size();
  GCPRUNE_RETURN_IF_ERROR(WriteAt(fd_, &iov, 1, 0, path_));
  if (options_.sync && fdatasync(fd_) != 0) return ErrnoError(errno, "cannot sync journal", path_);
  size_ = kHeaderBytes;
  num_records_ = 0;
  last_record_start_ = -1;
  return absl::OkStatus();
}

absl::Status StepJournal::TruncateTo(int64_t size) {
  if (ftruncate(fd_, static_cast<off_t>(size)) != 0) return ErrnoError(errno, "cannot truncate journal", path_);
  if (options_.sync && fdatasync(fd_) != 0) return ErrnoError(errno, "cannot sync journal", path_);
  size_ = size;
  return absl::OkStatus();
}

}  // namespace gcprune::pruner
