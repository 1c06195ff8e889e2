// The fit thread pool (see fit_executor.h).
#include "pruner_service/service/fit_executor.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gcprune::pruner {

absl::StatusOr<std::unique_ptr<FitExecutor>> FitExecutor::Create(int threads) {
  if (threads < 1 || threads > 256) {
    return absl::InvalidArgumentError(absl::StrCat("fit threads: ", threads, ", expected 1 to 256"));
  }
  return std::unique_ptr<FitExecutor>(new FitExecutor(threads));
}

FitExecutor::FitExecutor(int threads) : idle_(threads) {
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

FitExecutor::~FitExecutor() { Shutdown(); }

absl::StatusOr<int> FitExecutor::Submit(std::function<void()> job) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) return absl::UnavailableError("the server is shutting down; no new fits start");
  const int queued = static_cast<int>(queue_.size());
  queue_.push_back(std::move(job));
  // Idle threads take the queued jobs in order; this one waits if they are all taken.
  return queued < idle_ ? 0 : queued - idle_ + 1;
}

void FitExecutor::Shutdown() {
  std::deque<std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    dropped.swap(queue_);
  }
  dropped.clear();  // outside the lock: closures may own sessions
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool FitExecutor::HasWorkOrStopping() const { return stopping_ || !queue_.empty(); }

void FitExecutor::Run() {
  absl::MutexLock lock(&mutex_);
  for (;;) {
    mutex_.Await(absl::Condition(this, &FitExecutor::HasWorkOrStopping));
    if (stopping_) return;
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    --idle_;
    mutex_.Unlock();
    job();
    job = nullptr;  // closures may own sessions: released outside the lock
    mutex_.Lock();
    ++idle_;
  }
}

}  // namespace gcprune::pruner
