// Loaders for IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary files, raw or gzipped, and the batch
// iterator. Files are streamed through a small buffer and validated byte for byte; nothing is trusted
// from a header before the data behind it has been read.
#include "trainer_service/engine/dataset.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

constexpr size_t kBufferBytes = size_t{1} << 18;  // compressed input and raw read-ahead
constexpr size_t kChunkBytes = size_t{1} << 16;   // decoded bytes converted per pass
// Output is reserved up front from the header and the file's (or gzip trailer's) size, but never more
// than this many elements: beyond it, a possibly lying header must be backed by data as it arrives.
constexpr int64_t kReserveCap = int64_t{1} << 28;

absl::Status FileError(absl::StatusCode code, const std::string& path, const std::string& what) {
  return absl::Status(code, absl::StrCat(path, ": ", what));
}

// A file read sequentially as bytes, transparently gunzipped when it starts with the gzip magic
// 1f 8b. Concatenated gzip members are read as one stream, as gzip(1) does.
class ByteReader {
 public:
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;
  ~ByteReader() {
    if (gzip_) inflateEnd(&zs_);
    if (file_ != nullptr) std::fclose(file_);
  }

  // NOT_FOUND if missing, INVALID_ARGUMENT for a directory, PERMISSION_DENIED, DATA_LOSS on read errors.
  static absl::StatusOr<std::unique_ptr<ByteReader>> Open(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR) return FileError(absl::StatusCode::kNotFound, path, "no such file");
      return FileError(absl::ErrnoToStatusCode(err), path, absl::StrCat("cannot stat: ", std::strerror(err)));
    }
    if (S_ISDIR(st.st_mode)) return FileError(absl::StatusCode::kInvalidArgument, path, "is a directory");
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) {
      const int err = errno;
      return FileError(absl::ErrnoToStatusCode(err), path, absl::StrCat("cannot open: ", std::strerror(err)));
    }
    // Pipes and devices have no size to check against.
    const bool sized = S_ISREG(st.st_mode);
    std::unique_ptr<ByteReader> reader(new ByteReader(path, file, sized ? static_cast<uint64_t>(st.st_size) : 0, sized));
    GCPRUNE_RETURN_IF_ERROR(reader->Refill());
    if (reader->in_len_ >= 2 && reader->in_[0] == 0x1f && reader->in_[1] == 0x8b) {
      std::memset(&reader->zs_, 0, sizeof(reader->zs_));
      if (inflateInit2(&reader->zs_, 16 + MAX_WBITS) != Z_OK) {
        return FileError(absl::StatusCode::kResourceExhausted, path, "cannot initialise zlib");
      }
      reader->gzip_ = true;
      reader->zs_.next_in = reader->in_.get();
      reader->zs_.avail_in = static_cast<uInt>(reader->in_len_);
      reader->ReadGzipSizeTrailer();
    }
    return reader;
  }

  const std::string& path() const { return path_; }
  bool gzipped() const { return gzip_; }
  // Size of the file on disk (compressed size for gzip files), when it is a regular file.
  bool has_size() const { return sized_; }
  uint64_t file_size() const { return file_size_; }
  // What the decoded size probably is, for reserving memory: the file size, or for gzip the size its
  // trailer records (exact for one member below 4 GiB; never trusted for anything but reservations).
  uint64_t decoded_size_hint() const { return gzip_ ? gzip_size_hint_ : file_size_; }
  // Decoded bytes delivered so far.
  uint64_t offset() const { return offset_; }

  // Reads up to `n` decoded bytes into `dst`; fewer only at the end of the data. DATA_LOSS for a
  // corrupt or truncated gzip stream or a read error.
  absl::StatusOr<size_t> Read(uint8_t* dst, size_t n) {
    if (!gzip_) {
      GCPRUNE_ASSIGN_OR_RETURN(size_t got, ReadRaw(dst, n));
      offset_ += got;
      return got;
    }
    // zlib counts in 32 bits: inflate at most 1 GiB per call.
    size_t done = 0;
    while (done < n) {
      const size_t piece = std::min<size_t>(n - done, size_t{1} << 30);
      GCPRUNE_ASSIGN_OR_RETURN(size_t got, ReadGzip(dst + done, piece));
      offset_ += got;
      done += got;
      if (got < piece) break;
    }
    return done;
  }

  // Reads exactly `n` bytes of `what`; DATA_LOSS naming how much is missing if the data ends early.
  absl::Status ReadExact(uint8_t* dst, size_t n, const char* what) {
    GCPRUNE_ASSIGN_OR_RETURN(size_t got, Read(dst, n));
    if (got < n) {
      return FileError(absl::StatusCode::kDataLoss, path_,
                       absl::StrCat("truncated: ", what, " needs ", n, " bytes at offset ", offset_ - got,
                                    " but only ", got, " remain"));
    }
    return absl::OkStatus();
  }

  // DATA_LOSS unless the data ends here.
  absl::Status ExpectEnd(const std::string& after) {
    uint8_t extra[64];
    GCPRUNE_ASSIGN_OR_RETURN(size_t got, Read(extra, sizeof(extra)));
    if (got == 0) return absl::OkStatus();
    return FileError(absl::StatusCode::kDataLoss, path_,
                     absl::StrCat("unexpected bytes after ", after, " (offset ", offset_ - got, ")"));
  }

 private:
  ByteReader(std::string path, std::FILE* file, uint64_t file_size, bool sized)
      : path_(std::move(path)), file_(file), file_size_(file_size), sized_(sized), in_(new uint8_t[kBufferBytes]) {}

  // Reads ISIZE, the last 4 bytes of a gzip file (little-endian), then returns to where reading was.
  void ReadGzipSizeTrailer() {
    uint8_t isize[4];
    const long resume = std::ftell(file_);
    if (sized_ && file_size_ >= 18 && resume >= 0 && std::fseek(file_, -4, SEEK_END) == 0 &&
        std::fread(isize, 1, 4, file_) == 4) {
      gzip_size_hint_ = uint64_t{isize[0]} | uint64_t{isize[1]} << 8 | uint64_t{isize[2]} << 16 |
                        uint64_t{isize[3]} << 24;
    }
    if (resume >= 0) std::fseek(file_, resume, SEEK_SET);
    std::clearerr(file_);
  }

  absl::Status Refill() {
    in_pos_ = 0;
    in_len_ = std::fread(in_.get(), 1, kBufferBytes, file_);
    if (in_len_ < kBufferBytes && std::ferror(file_)) return ReadError();
    return absl::OkStatus();
  }

  absl::Status ReadError() const {
    return FileError(absl::StatusCode::kDataLoss, path_, absl::StrCat("read error: ", std::strerror(errno)));
  }

  absl::StatusOr<size_t> ReadRaw(uint8_t* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      if (in_pos_ < in_len_) {
        const size_t take = std::min(n - done, in_len_ - in_pos_);
        std::memcpy(dst + done, in_.get() + in_pos_, take);
        in_pos_ += take;
        done += take;
      } else if (n - done >= kBufferBytes) {
        const size_t got = std::fread(dst + done, 1, n - done, file_);
        done += got;
        if (std::ferror(file_)) return ReadError();
        if (got == 0) break;
      } else {
        GCPRUNE_RETURN_IF_ERROR(Refill());
        if (in_len_ == 0) break;
      }
    }
    return done;
  }

  // REQUIRES: n <= 2^30.
  absl::StatusOr<size_t> ReadGzip(uint8_t* dst, size_t n) {
    zs_.next_out = dst;
    zs_.avail_out = static_cast<uInt>(n);
    const size_t asked = n;
    while (zs_.avail_out > 0) {
      if (zs_.avail_in == 0) {
        GCPRUNE_RETURN_IF_ERROR(Refill());
        zs_.next_in = in_.get();
        zs_.avail_in = static_cast<uInt>(in_len_);
        if (in_len_ == 0) {
          if (member_ended_) break;
          return FileError(absl::StatusCode::kDataLoss, path_,
                           absl::StrCat("truncated gzip stream: the file ends after ", offset_ + asked -
                                                                                            zs_.avail_out,
                                        " decompressed bytes, before the end of the compressed data"));
        }
      }
      if (member_ended_) {
        // More input after a complete member: another member (anything else fails its header check).
        inflateReset(&zs_);
        member_ended_ = false;
      }
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret == Z_MEM_ERROR) {
        return FileError(absl::StatusCode::kResourceExhausted, path_, "out of memory in zlib");
      } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
        return FileError(absl::StatusCode::kDataLoss, path_,
                         absl::StrCat("corrupt gzip data (zlib: ", zs_.msg != nullptr ? zs_.msg : "error ",
                                      zs_.msg != nullptr ? "" : absl::StrCat(ret), ")"));
      }
    }
    return asked - zs_.avail_out;
  }

  std::string path_;
  std::FILE* file_;
  uint64_t file_size_;
  bool sized_;
  uint64_t gzip_size_hint_ = 0;
  std::unique_ptr<uint8_t[]> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool gzip_ = false;
  bool member_ended_ = false;
  z_stream zs_;
  uint64_t offset_ = 0;
};

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The float value of every byte after ToTensor (x / 255) and Normalize ((x - mean) / std), in float32
// and in that order, as torchvision computes it.
std::array<float, 256> NormalisationTable(float mean, float stddev) {
  std::array<float, 256> table;
  for (int v = 0; v < 256; ++v) table[v] = (static_cast<float>(v) / 255.0f - mean) / stddev;
  return table;
}

// Reserves min(n, hint, kReserveCap) elements of `v`, where `hint` is what the file's size suggests;
// RESOURCE_EXHAUSTED if the memory is not there.
template <typename T>
absl::Status ReserveSome(std::vector<T>* v, int64_t n, uint64_t hint, const std::string& path) {
  n = std::min<int64_t>({n, kReserveCap, static_cast<int64_t>(std::min<uint64_t>(hint, uint64_t{1} << 40))});
  try {
    v->reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  } catch (const std::bad_alloc&) {
    return FileError(absl::StatusCode::kResourceExhausted, path, absl::StrCat("cannot allocate ", n, " elements"));
  }
  return absl::OkStatus();
}

// An IDX file opened and its header read: magic 00 00 08 <ndims>, then ndims big-endian uint32 dims.
struct IdxFile {
  std::unique_ptr<ByteReader> reader;
  std::vector<int64_t> dims;
};

absl::StatusOr<IdxFile> OpenIdx(const std::string& path, int ndims) {
  IdxFile idx;
  GCPRUNE_ASSIGN_OR_RETURN(idx.reader, ByteReader::Open(path));
  uint8_t header[16];
  GCPRUNE_RETURN_IF_ERROR(idx.reader->ReadExact(header, 4, "the IDX magic"));
  const uint32_t magic = BigEndian32(header);
  const uint32_t expected = 0x0800u | static_cast<uint32_t>(ndims);
  if (magic != expected) {
    return FileError(absl::StatusCode::kDataLoss, path,
                     absl::StrFormat("bad IDX magic 0x%08x, expected 0x%08x (unsigned bytes, %d dimension%s)",
                                     magic, expected, ndims, ndims == 1 ? "" : "s"));
  }
  GCPRUNE_RETURN_IF_ERROR(idx.reader->ReadExact(header + 4, 4 * static_cast<size_t>(ndims), "the IDX dimensions"));
  for (int d = 0; d < ndims; ++d) {
    const int64_t dim = BigEndian32(header + 4 + 4 * d);
    const int64_t limit = d == 0 ? (int64_t{1} << 31) - 1 : 65536;
    if (dim < 1 || dim > limit) {
      return FileError(absl::StatusCode::kDataLoss, path,
                       absl::StrCat("bad IDX dimension ", d, ": ", dim, " is not in [1, ", limit, "]"));
    }
    idx.dims.push_back(dim);
  }
  if (!idx.reader->gzipped() && idx.reader->has_size()) {
    int64_t payload = 1;
    for (int64_t dim : idx.dims) payload *= dim;
    const uint64_t announced = 4 + 4 * static_cast<uint64_t>(ndims) + static_cast<uint64_t>(payload);
    if (idx.reader->file_size() < announced) {
      return FileError(absl::StatusCode::kDataLoss, path,
                       absl::StrCat("truncated: the header announces ", announced, " bytes, the file has ",
                                    idx.reader->file_size()));
    }
  }
  return idx;
}

// Streams `total` bytes from `reader`, mapping the first `keep` through `table` and appending them to
// `out`; the rest are read (and so checked) but dropped.
absl::Status ReadNormalised(ByteReader* reader, int64_t total, int64_t keep, const std::array<float, 256>& table,
                            const char* what, std::vector<float>* out) {
  std::vector<uint8_t> chunk(kChunkBytes);
  for (int64_t done = 0; done < total;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(total - done, kChunkBytes));
    GCPRUNE_RETURN_IF_ERROR(reader->ReadExact(chunk.data(), n, what));
    const int64_t kept = std::clamp<int64_t>(keep - done, 0, static_cast<int64_t>(n));
    if (kept > 0) {
      const size_t base = out->size();
      out->resize(base + static_cast<size_t>(kept));
      float* dst = out->data() + base;
      for (int64_t i = 0; i < kept; ++i) dst[i] = table[chunk[i]];
    }
    done += static_cast<int64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(const LoadOptions& options) {
  if (options.subset < 0) {
    return absl::InvalidArgumentError(absl::StrCat("LoadOptions.subset: ", options.subset, " is negative"));
  }
  return absl::OkStatus();
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// `<dir>/<name>.gz` if it exists, else `<dir>/<name>`.
std::string GzOrRaw(const std::string& dir, const std::string& name) {
  const std::string gz = JoinPath(dir, name + ".gz");
  return Exists(gz) ? gz : JoinPath(dir, name);
}

}  // namespace

absl::StatusOr<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path, float mean,
                                float stddev, const LoadOptions& options) {
  GCPRUNE_RETURN_IF_ERROR(CheckOptions(options));
  if (!std::isfinite(mean) || !std::isfinite(stddev) || !(stddev > 0.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadIdx(", images_path, "): mean ", mean, " and stddev ", stddev,
                     " must be finite with stddev > 0"));
  }
  if (options.num_classes < 1 || options.num_classes > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoadOptions.num_classes: ", options.num_classes, " is not in [1, 256]"));
  }
  GCPRUNE_ASSIGN_OR_RETURN(IdxFile images, OpenIdx(images_path, 3));
  GCPRUNE_ASSIGN_OR_RETURN(IdxFile labels, OpenIdx(labels_path, 1));
  const int64_t count = images.dims[0];
  if (labels.dims[0] != count) {
    return absl::InvalidArgumentError(absl::StrCat(images_path, " holds ", count, " images but ", labels_path,
                                                   " holds ", labels.dims[0], " labels"));
  }
  Dataset data;
  data.size = options.subset > 0 ? std::min(options.subset, count) : count;
  data.channels = 1;
  data.height = static_cast<int>(images.dims[1]);
  data.width = static_cast<int>(images.dims[2]);
  data.num_classes = options.num_classes;
  const int64_t numel = data.image_numel();
  GCPRUNE_RETURN_IF_ERROR(
      ReserveSome(&data.images, data.size * numel, images.reader->decoded_size_hint(), images_path));
  GCPRUNE_RETURN_IF_ERROR(ReadNormalised(images.reader.get(), count * numel, data.size * numel,
                                         NormalisationTable(mean, stddev), "pixel data", &data.images));
  GCPRUNE_RETURN_IF_ERROR(images.reader->ExpectEnd(absl::StrCat(count, " images")));

  GCPRUNE_RETURN_IF_ERROR(ReserveSome(&data.labels, data.size, labels.reader->decoded_size_hint(), labels_path));
  std::vector<uint8_t> chunk(kChunkBytes);
  for (int64_t done = 0; done < count;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(count - done, kChunkBytes));
    GCPRUNE_RETURN_IF_ERROR(labels.reader->ReadExact(chunk.data(), n, "label data"));
    for (size_t i = 0; i < n; ++i) {
      if (chunk[i] >= options.num_classes) {
        return FileError(absl::StatusCode::kDataLoss, labels_path,
                         absl::StrCat("label ", int{chunk[i]}, " of example ", done + static_cast<int64_t>(i),
                                      " is not in [0, ", options.num_classes, ")"));
      }
      if (done + static_cast<int64_t>(i) < data.size) data.labels.push_back(chunk[i]);
    }
    done += static_cast<int64_t>(n);
  }
  GCPRUNE_RETURN_IF_ERROR(labels.reader->ExpectEnd(absl::StrCat(count, " labels")));
  return data;
}

absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split, const LoadOptions& options) {
  const std::string root = dir.empty() ? std::string(kDefaultFashionMnistDir) : dir;
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string images_path = GzOrRaw(root, prefix + "-images-idx3-ubyte");
  const std::string labels_path = GzOrRaw(root, prefix + "-labels-idx1-ubyte");
  LoadOptions idx_options = options;
  idx_options.num_classes = 10;
  GCPRUNE_ASSIGN_OR_RETURN(Dataset data,
                           LoadIdx(images_path, labels_path, kFashionMnistMean, kFashionMnistStd, idx_options));
  if (data.height != 28 || data.width != 28) {
    return FileError(absl::StatusCode::kDataLoss, images_path,
                     absl::StrCat("images are ", data.height, "x", data.width, ", Fashion-MNIST's are 28x28"));
  }
  return data;
}

absl::StatusOr<Dataset> LoadCifar10(const std::string& dir, Split split, const LoadOptions& options) {
  GCPRUNE_RETURN_IF_ERROR(CheckOptions(options));
  constexpr int kSide = 32, kPlane = kSide * kSide, kNumel = 3 * kPlane, kRecord = 1 + kNumel;
  std::vector<std::string> paths;
  if (split == Split::kTrain) {
    for (int i = 1; i <= 5; ++i) paths.push_back(JoinPath(dir, absl::StrCat("data_batch_", i, ".bin")));
  } else {
    paths.push_back(JoinPath(dir, "test_batch.bin"));
  }
  // Open every file first, so a missing one is reported before seconds of reading.
  std::vector<std::unique_ptr<ByteReader>> readers;
  for (const std::string& path : paths) {
    GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<ByteReader> reader, ByteReader::Open(path));
    if (!reader->gzipped() && reader->has_size() && reader->file_size() % kRecord != 0) {
      return FileError(absl::StatusCode::kDataLoss, path,
                       absl::StrCat("size ", reader->file_size(), " is not a multiple of the ", kRecord,
                                    "-byte record (truncated?)"));
    }
    readers.push_back(std::move(reader));
  }
  std::array<std::array<float, 256>, 3> tables;
  for (int c = 0; c < 3; ++c) tables[c] = NormalisationTable(kCifar10Mean[c], kCifar10Std[c]);

  Dataset data;
  data.channels = 3;
  data.height = kSide;
  data.width = kSide;
  data.num_classes = 10;
  int64_t expected = 0;
  for (const auto& reader : readers) {
    expected += static_cast<int64_t>(reader->decoded_size_hint() / kRecord);
  }
  if (options.subset > 0) expected = std::min(expected, options.subset);
  GCPRUNE_RETURN_IF_ERROR(ReserveSome(&data.images, expected * kNumel, ~uint64_t{0}, paths[0]));
  GCPRUNE_RETURN_IF_ERROR(ReserveSome(&data.labels, expected, ~uint64_t{0}, paths[0]));

  std::vector<uint8_t> record(kRecord);
  int64_t total = 0;
  for (const auto& reader : readers) {
    int64_t in_file = 0;
    for (;;) {
      GCPRUNE_ASSIGN_OR_RETURN(size_t got, reader->Read(record.data(), kRecord));
      if (got == 0) break;
      if (got < static_cast<size_t>(kRecord)) {
        return FileError(absl::StatusCode::kDataLoss, reader->path(),
                         absl::StrCat("truncated: record ", in_file, " has ", got, " of ", kRecord, " bytes"));
      }
      if (record[0] > 9) {
        return FileError(absl::StatusCode::kDataLoss, reader->path(),
                         absl::StrCat("label ", int{record[0]}, " of record ", in_file, " is not in [0, 10)"));
      }
      if (options.subset == 0 || total < options.subset) {
        data.labels.push_back(record[0]);
        const size_t base = data.images.size();
        data.images.resize(base + kNumel);
        float* dst = data.images.data() + base;
        for (int c = 0; c < 3; ++c) {
          const std::array<float, 256>& table = tables[c];
          const uint8_t* src = record.data() + 1 + c * kPlane;
          for (int i = 0; i < kPlane; ++i) dst[c * kPlane + i] = table[src[i]];
        }
      }
      ++in_file;
      ++total;
    }
    if (in_file == 0) return FileError(absl::StatusCode::kDataLoss, reader->path(), "no records (empty file)");
  }
  data.size = static_cast<int64_t>(data.labels.size());
  return data;
}

absl::StatusOr<BatchIterator> BatchIterator::Create(const Dataset& data, int batch_size, bool shuffle,
                                                    uint64_t seed, int64_t epoch) {
  if (batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size: ", batch_size, " is not >= 1"));
  }
  if (epoch < 0) return absl::InvalidArgumentError(absl::StrCat("epoch: ", epoch, " is negative"));
  if (data.size < 0 || data.images.size() != static_cast<size_t>(data.size * data.image_numel()) ||
      data.labels.size() != static_cast<size_t>(data.size)) {
    return absl::InvalidArgumentError(absl::StrCat("dataset: size ", data.size, " with ", data.images.size(),
                                                   " image values of ", data.image_numel(), " per image and ",
                                                   data.labels.size(), " labels is inconsistent"));
  }
  return BatchIterator(data, batch_size, shuffle, seed, epoch);
}

BatchIterator::BatchIterator(const Dataset& data, int batch_size, bool shuffle, uint64_t seed, int64_t epoch)
    : data_(data), size_(0), batch_size_(std::max(batch_size, 1)) {
  // Never read past what the data set really holds, even if its fields disagree.
  const int64_t numel = data.image_numel();
  size_ = std::min<int64_t>(std::max<int64_t>(data.size, 0), static_cast<int64_t>(data.labels.size()));
  if (numel > 0) size_ = std::min<int64_t>(size_, static_cast<int64_t>(data.images.size()) / numel);
  if (shuffle) EpochPermutation(seed, std::max<int64_t>(epoch, 0), size_, &order_);
}

int64_t BatchIterator::num_batches() const { return (size_ + batch_size_ - 1) / batch_size_; }

int BatchIterator::Next(std::vector<float>* images, std::vector<int32_t>* labels) {
  const int64_t numel = data_.image_numel();
  const int n = static_cast<int>(std::clamp<int64_t>(size_ - pos_, 0, batch_size_));
  if (images != nullptr) images->resize(static_cast<size_t>(n * numel));
  if (labels != nullptr) labels->resize(static_cast<size_t>(n));
  for (int b = 0; b < n; ++b) {
    const int64_t index = order_.empty() ? pos_ + b : order_[static_cast<size_t>(pos_ + b)];
    if (images != nullptr && numel > 0) {
      std::memcpy(images->data() + b * numel, data_.images.data() + index * numel,
                  static_cast<size_t>(numel) * sizeof(float));
    }
    if (labels != nullptr) (*labels)[static_cast<size_t>(b)] = data_.labels[static_cast<size_t>(index)];
  }
  pos_ += n;
  return n;
}

std::vector<int64_t> BatchIterator::Order() const {
  if (!order_.empty()) return order_;
  std::vector<int64_t> identity(static_cast<size_t>(size_));
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int64_t>(i);
  return identity;
}

}  // namespace gcprune::trainer
