// In-memory image classification data sets (Fashion-MNIST/MNIST IDX, CIFAR-10 binary) and batching.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_DATASET_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gcprune::trainer {

// Images normalised ((x/255 - mean_c) / std_c), stored NCHW float32; labels in [0, num_classes).
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
  int64_t subset = 0;  // > 0: keep only the first `subset` examples
};

// Reads an IDX image file and its label file (gzipped or raw, detected by magic bytes).
// NOT_FOUND if a file is missing; DATA_LOSS if truncated or corrupt (the message names the file and
// what is wrong); INVALID_ARGUMENT if the two files disagree on the count.
absl::StatusOr<Dataset> LoadIdx(const std::string& images_path, const std::string& labels_path,
                                float mean, float stddev, const LoadOptions& options = {});

// Fashion-MNIST from `dir` (default /usr/share/datasets/fashion-mnist), mean 0.2860, std 0.3530.
absl::StatusOr<Dataset> LoadFashionMnist(const std::string& dir, Split split, const LoadOptions& options = {});

// CIFAR-10 binary batches from `dir` (data_batch_1..5.bin / test_batch.bin), METHOD.md normalisation.
absl::StatusOr<Dataset> LoadCifar10(const std::string& dir, Split split, const LoadOptions& options = {});

// Iterates a data set in batches of `batch_size` (the last one may be smaller). With shuffle, the order
// of each epoch is a seeded permutation: same (seed, epoch) → same order on every machine.
class BatchIterator {
 public:
  BatchIterator(const Dataset& data, int batch_size, bool shuffle, uint64_t seed, int64_t epoch);
  int64_t num_batches() const;
  // Copies the next batch into `images` (batch * image_numel) and `labels`; returns its size, 0 at the end.
  int Next(std::vector<float>* images, std::vector<int32_t>* labels);

 private:
  const Dataset& data_;
  int batch_size_;
  std::vector<int64_t> order_;
  int64_t pos_ = 0;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_DATASET_H_
