// In-memory image classification data sets (Fashion-MNIST/MNIST IDX, CIFAR-10 binary) and batching.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_DATASET_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gcprune::trainer {

// Images normalised ((x/255 - mean_c) / std_c), stored NCHW float32; labels in [0, num_classes).
// The normalisation is computed in float32 as torchvision's ToTensor + Normalize do, so the values
// are bit-identical to a PyTorch data loader's.
struct Dataset {
  int64_t size = 0;
  int channels = 0, height = 0, width = 0;
  int num_classes = 0;
  std::vector<float> images;    // size * channels * height * width
  std::vector<int32_t> labels;  // size
  int64_t image_numel() const { return int64_t{channels} * height * width; }
};

enum class Split { kTrain, kTest };

struct LoadOptions {
  int64_t subset = 0;    // > 0: keep only the first min(subset, size) examples; 0: all; < 0 is invalid
  int num_classes = 10;  // LoadIdx only: labels must lie in [0, num_classes); 1..256
};

// Where Debian's dataset-fashion-mnist package installs the four gzipped IDX files.
inline constexpr char kDefaultFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";
// METHOD.md §6 normalisation constants.
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStd = 0.3530f;
inline constexpr float kCifar10Mean[3] = {0.4914f, 0.4822f, 0.4465f};
inline constexpr float kCifar10Std[3] = {0.2023f, 0.1994f, 0.2010f};

// Reads an IDX image file (magic 0x00000803: unsigned bytes, dims N×H×W) and its label file (magic
// 0x00000801, dim N), each gzipped or raw (gzip is detected by its magic bytes 1f 8b). Every byte of
// both files is read and checked, also when only a subset is kept. Result: channels = 1, H×W as in
// the file, num_classes = options.num_classes.
// Errors, each message naming the file and what is wrong:
//   NOT_FOUND         a file does not exist;
//   DATA_LOSS         truncated or corrupt: bad magic, zero or absurd dimensions (> 2^31 items or
//                     > 65536 pixels a side), fewer or more bytes than the header announces, a corrupt
//                     or truncated gzip stream, a label outside [0, num_classes), a read error;
//   INVALID_ARGUMENT  the two files disagree on the number of examples; the path is a directory;
//                     mean or stddev not finite or stddev <= 0; subset < 0; num_classes outside 1..256.
//   PERMISSION_DENIED a file cannot be opened for lack of permission.
absl::StatusOr<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path,
                                float mean, float stddev, const LoadOptions& options = {});

// Fashion-MNIST from `dir` (empty: kDefaultFashionMnistDir): train-images-idx3-ubyte /
// train-labels-idx1-ubyte (kTrain, 60,000 examples) or t10k-* (kTest, 10,000), each as `<name>.gz` or,
// if that does not exist, `<name>`. Normalised with mean 0.2860, std 0.3530; 1×28×28, 10 classes.
// Errors as LoadIdx; also DATA_LOSS if the images are not 28×28.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split, const LoadOptions& options = {});

// CIFAR-10 binary batches from `dir`: data_batch_1.bin .. data_batch_5.bin (kTrain, concatenated in that
// order) or test_batch.bin (kTest). Each file is a sequence of records of 1 label byte (0..9) and 3072
// pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32×32), raw or gzipped. Result: 3×32×32,
// 10 classes, normalised per channel with kCifar10Mean / kCifar10Std.
// Errors: NOT_FOUND for a missing file; DATA_LOSS for an empty file, a partial last record, a label
// above 9, a corrupt gzip stream or a read error; INVALID_ARGUMENT for subset < 0.
absl::StatusOr<Dataset> LoadCifar10(const std::string& dir, Split split, const LoadOptions& options = {});

// Iterates a data set in batches of `batch_size` (the last one may be smaller). With shuffle, the order
// of each epoch is a seeded permutation: same (seed, epoch) → same order on every machine.
// The permutation is EpochPermutation(seed, epoch, data.size) of splitmix64.h: the one a single
// splitmix64 generator seeded with `seed` draws for epoch `epoch` when it draws one Fisher–Yates
// permutation per epoch, starting at epoch 0 (METHOD.md "Shuffling"). Without shuffle the order is
// 0..size-1. The data set must outlive the iterator and not change while it is in use.
class BatchIterator {
 public:
  // INVALID_ARGUMENT if batch_size < 1 or epoch < 0.
  static absl::StatusOr<BatchIterator> Create(const Dataset& data, int batch_size, bool shuffle, uint64_t seed,
                                              int64_t epoch);
  // As Create, for arguments known to be valid: a batch_size below 1 is taken as 1 and a negative
  // epoch as 0.
  BatchIterator(const Dataset& data, int batch_size, bool shuffle, uint64_t seed, int64_t epoch);
  // ceil(size / batch_size).
  int64_t num_batches() const;
  int batch_size() const { return batch_size_; }
  // Copies the next batch into `images` (batch * image_numel, NCHW) and `labels` (batch), resizing them
  // (capacity is reused, so steady-state iteration does not allocate); returns the batch size, 0 at the
  // end. A null pointer skips that output.
  int Next(std::vector<float>* images, std::vector<int32_t>* labels);
  // Restarts the same epoch from its first batch.
  void Rewind() { pos_ = 0; }
  // The sample order of this epoch (size entries).
  std::vector<int64_t> Order() const;

 private:
  const Dataset& data_;
  int64_t size_;  // examples really present (data_.size unless its fields disagree)
  int batch_size_;
  std::vector<int64_t> order_;  // empty when not shuffled (the order is then the identity)
  int64_t pos_ = 0;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_DATASET_H_
