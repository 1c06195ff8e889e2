// The pre-training cache (see pretrain_cache.h).
#include "trainer_service/service/pretrain_cache.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace gcprune::trainer {
namespace {

// Doubles as exact hexadecimal floating point, so that two keys are equal only for equal values.
std::string Exact(double value) { return absl::StrFormat("%a", value); }

void AppendPhase(const PhasePlan& phase, std::string* key) {
  const OptimizerPlan& o = phase.optimizer;
  absl::StrAppend(key, "|pretrain:epochs=", phase.epochs, ",batch=", phase.batch_size,
                  ",optimizer=", static_cast<int>(o.type), ",lr=", Exact(o.learning_rate),
                  ",momentum=", Exact(o.momentum), ",wd=", Exact(o.weight_decay), ",nesterov=", o.nesterov,
                  ",betas=", Exact(o.beta1), "/", Exact(o.beta2), ",eps=", Exact(o.epsilon),
                  ",schedule=", static_cast<int>(phase.lr.type), ",min_lr=", Exact(phase.lr.min_learning_rate),
                  ",step=", phase.lr.step_epochs, ",gamma=", Exact(phase.lr.gamma),
                  ",patience=", phase.early_stop_patience, ",min_delta=", Exact(phase.early_stop_min_delta));
}

}  // namespace

int64_t PretrainedModel::bytes() const {
  int64_t total = 0;
  for (const auto& v : model.values) total += static_cast<int64_t>(v.size() * sizeof(float));
  for (const auto& m : model.masks) total += static_cast<int64_t>(m.size());
  return total;
}

std::string PretrainKey(const RunPlan& plan, int threads) {
  std::string key = absl::StrCat("model=", FormatLayers(plan.model.layers), ",input=",
                                 absl::StrJoin(plan.model.input_shape, "x"));
  const DataPlan& d = plan.data;
  absl::StrAppend(&key, "|data=", d.name, ",dir=", d.directory, ",train=", d.train_subset, ",test=", d.test_subset,
                  ",classes=", d.num_classes);
  AppendPhase(plan.pretrain, &key);
  absl::StrAppend(&key, "|seed=", plan.seed, "|smoothing=", Exact(plan.label_smoothing), "|threads=", threads);
  return key;
}

std::shared_ptr<const PretrainedModel> PretrainCache::Find(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void PretrainCache::Insert(const std::string& key, std::shared_ptr<const PretrainedModel> entry) {
  if (entry == nullptr) return;
  const int64_t size = entry->bytes();
  absl::MutexLock lock(&mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= it->second->second->bytes();
    lru_.erase(it->second);
    index_.erase(it);
  }
  if (size > max_bytes_) return;
  while (!lru_.empty() && bytes_ + size > max_bytes_) {
    bytes_ -= lru_.back().second->bytes();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(key, std::move(entry));
  index_[key] = lru_.begin();
  bytes_ += size;
}

int64_t PretrainCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

int64_t PretrainCache::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(lru_.size());
}

}  // namespace gcprune::trainer
