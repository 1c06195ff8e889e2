// The data sets of runs: loads Fashion-MNIST, MNIST, CIFAR-10 or a synthetic set as a RunPlan says, and
// shares loaded sets between runs (many runs of a server use the same data).
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_DATA_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_DATA_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/service/run_plan.h"

namespace gcprune::trainer {

// The training and test sets of a run; immutable and shared.
struct RunData {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
};

// MNIST's normalisation (torchvision's customary constants).
inline constexpr float kMnistMean = 0.1307f;
inline constexpr float kMnistStd = 0.3081f;

// A synthetic classification set: each class has a fixed random prototype image and every example is
// its class's prototype plus Gaussian noise, so a small model learns it quickly. Deterministic in
// `seed`; `shape` is {C, H, W}.
Dataset MakeSyntheticDataset(int64_t size, const std::vector<int64_t>& shape, int num_classes, uint64_t seed);

// Loads data sets and keeps the most recently used ones in memory. Thread-safe.
class DatasetCache {
 public:
  // Keeps up to `max_entries` (>= 0) data sets (one per split, directory and subset) after use.
  explicit DatasetCache(size_t max_entries = 4) : max_entries_(max_entries) {}

  // The plan's training and test sets (subsets applied). Errors are the loaders' (dataset.h): NOT_FOUND
  // for a missing file, DATA_LOSS for a corrupt one, ...; each message names the file.
  absl::StatusOr<RunData> Load(const DataPlan& plan);

 private:
  absl::StatusOr<std::shared_ptr<const Dataset>> Get(const DataPlan& plan, Split split);

  const size_t max_entries_;
  absl::Mutex mu_;
  // Most recently used first.
  std::list<std::pair<std::string, std::shared_ptr<const Dataset>>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_RUN_DATA_H_
