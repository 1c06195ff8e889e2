// Data set loading and caching for runs (see run_data.h).
#include "trainer_service/service/run_data.h"

#include <sys/stat.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

// The data of synthetic sets does not depend on a run's seed: the same spec means the same data.
constexpr uint64_t kSyntheticSeed = 0x5EED5EED;
constexpr int64_t kSyntheticTrainSize = 4096;
constexpr int64_t kSyntheticTestSize = 1024;

bool FileExists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

// "<dir>/<name>.gz" if it exists, else "<dir>/<name>".
std::string IdxPath(const std::string& dir, const std::string& name) {
  const std::string gz = absl::StrCat(dir, "/", name, ".gz");
  return FileExists(gz) ? gz : absl::StrCat(dir, "/", name);
}

// A standard normal value from two uniform draws (Box-Muller).
double Gaussian(SplitMix64* rng) {
  const double u1 = (static_cast<double>(rng->Next() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng->Next() >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace

Dataset MakeSyntheticDataset(int64_t size, const std::vector<int64_t>& shape, int num_classes, uint64_t seed) {
  Dataset data;
  data.size = size;
  data.channels = static_cast<int>(shape.size() == 3 ? shape[0] : 1);
  data.height = static_cast<int>(shape.size() == 3 ? shape[1] : 1);
  data.width = static_cast<int>(shape.size() == 3 ? shape[2] : (shape.empty() ? 1 : shape[0]));
  data.num_classes = num_classes;
  const int64_t numel = data.image_numel();
  SplitMix64 prototypes_rng(kSyntheticSeed);
  std::vector<float> prototypes(static_cast<size_t>(numel * num_classes));
  for (float& v : prototypes) v = static_cast<float>(Gaussian(&prototypes_rng));
  SplitMix64 rng(seed);
  data.images.resize(static_cast<size_t>(numel * size));
  data.labels.resize(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    const int label = static_cast<int>(rng.Next() % static_cast<uint64_t>(num_classes));
    data.labels[i] = label;
    const float* prototype = &prototypes[static_cast<size_t>(label * numel)];
    float* image = &data.images[static_cast<size_t>(i * numel)];
    for (int64_t k = 0; k < numel; ++k) image[k] = prototype[k] + static_cast<float>(Gaussian(&rng));
  }
  return data;
}

absl::StatusOr<std::shared_ptr<const Dataset>> DatasetCache::Get(const DataPlan& plan, Split split) {
  const bool train = split == Split::kTrain;
  const int64_t subset = train ? plan.train_subset : plan.test_subset;
  const std::string key = absl::StrCat(plan.name, "|", plan.directory, "|", train ? "train" : "test", "|", subset, "|",
                                       absl::StrJoin(plan.input_shape, "x"), "|", plan.num_classes);
  {
    absl::MutexLock lock(&mu_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first != key) continue;
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front().second;
    }
  }
  // Loading takes a while; concurrent first loads of the same set may both read it, which is harmless.
  LoadOptions options;
  options.subset = subset;
  absl::StatusOr<Dataset> loaded;
  switch (plan.source) {
    case DataSource::kFashionMnist:
      loaded = LoadFashionMnist(plan.directory, split, options);
      break;
    case DataSource::kMnist:
      loaded = LoadIdx(IdxPath(plan.directory, train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte"),
                       IdxPath(plan.directory, train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte"),
                       kMnistMean, kMnistStd, options);
      break;
    case DataSource::kCifar10:
      loaded = LoadCifar10(plan.directory, split, options);
      break;
    case DataSource::kSynthetic: {
      const int64_t size = subset > 0 ? subset : (train ? kSyntheticTrainSize : kSyntheticTestSize);
      loaded = MakeSyntheticDataset(size, plan.input_shape, plan.num_classes, train ? 1 : 2);
      break;
    }
  }
  if (!loaded.ok()) return loaded.status();
  auto data = std::make_shared<const Dataset>(*std::move(loaded));
  absl::MutexLock lock(&mu_);
  entries_.emplace_front(key, data);
  while (entries_.size() > max_entries_) entries_.pop_back();
  return std::shared_ptr<const Dataset>(data);
}

absl::StatusOr<RunData> DatasetCache::Load(const DataPlan& plan) {
  RunData data;
  absl::StatusOr<std::shared_ptr<const Dataset>> train = Get(plan, Split::kTrain);
  if (!train.ok()) return train.status();
  absl::StatusOr<std::shared_ptr<const Dataset>> test = Get(plan, Split::kTest);
  if (!test.ok()) return test.status();
  data.train = *std::move(train);
  data.test = *std::move(test);
  return data;
}

}  // namespace gcprune::trainer
