// Pre-trained models kept by the trainer server, so that runs whose pre-training is the same (network,
// data, pre-training phase, seed, loss) start from one saved pre-trained model instead of repeating it.
// The engine is bit-identical for a given seed and thread count, so a run that reuses a pre-training ends
// exactly as if it had repeated it; a sweep of many targets pays for pre-training once.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_PRETRAIN_CACHE_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_PRETRAIN_CACHE_H_

#include <cstdint>
#include <limits>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/service/run_plan.h"

namespace gcprune::trainer {

// Results of a training phase (pre-training, training between iterations, fine-tuning).
struct PhaseOutcome {
  int epochs = 0;  // epochs run (fewer than planned after an early stop)
  double last_accuracy = std::numeric_limits<double>::quiet_NaN();
  double last_loss = std::numeric_limits<double>::quiet_NaN();
  double best_accuracy = std::numeric_limits<double>::quiet_NaN();
  int best_epoch = 0;
};

// What a pre-training left behind, enough to continue the run as if it had just pre-trained.
struct PretrainedModel {
  ModelSnapshot model;
  int64_t epochs_drawn = 0;  // shuffled epochs the pre-training drew (the run's epoch counter after it)
  PhaseOutcome outcome;
  double seconds = 0.0;     // wall time the pre-training took
  std::string source_run;  // id of the run that pre-trained

  // Bytes held by the snapshot.
  int64_t bytes() const;
};

// The identity of a plan's pre-training: every resolved setting that decides the pre-trained weights
// (model, data and subsets, pre-training phase, seed, label smoothing) and the OpenMP thread count.
std::string PretrainKey(const RunPlan& plan, int threads);

// Thread-safe. Least recently used entries are evicted beyond `max_bytes`; 0 disables the cache.
class PretrainCache {
 public:
  explicit PretrainCache(int64_t max_bytes) : max_bytes_(max_bytes) {}

  // The entry of `key`, or null.
  std::shared_ptr<const PretrainedModel> Find(const std::string& key);
  // Stores (or replaces) the entry of `key`; an entry larger than the whole budget is not kept.
  void Insert(const std::string& key, std::shared_ptr<const PretrainedModel> entry);

  int64_t bytes() const;
  int64_t size() const;
  int64_t max_bytes() const { return max_bytes_; }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const PretrainedModel>>;

  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);  // most recently used first
  absl::flat_hash_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_PRETRAIN_CACHE_H_
