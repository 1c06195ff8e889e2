// Bounded sequenced event log (see event_log.h).
#include "trainer_service/service/event_log.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gcprune::trainer {

EventLog::EventLog(std::string run_id, size_t capacity)
    : run_id_(std::move(run_id)), capacity_(std::max<size_t>(capacity, 1)) {}

int64_t EventLog::Append(gcprune::v1::RunEvent event) {
  int64_t sequence = 0;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return 0;
    sequence = ++last_sequence_;
    event.set_sequence(sequence);
    event.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
    event.set_run_id(run_id_);
    if (event.has_finished()) closed_ = true;
    events_.push_back(std::move(event));
    while (events_.size() > capacity_) events_.pop_front();
  }
  absl::MutexLock lock(&subscribers_mu_);
  for (auto& [id, notify] : subscribers_) notify();
  return sequence;
}

std::optional<gcprune::v1::RunEvent> EventLog::Next(int64_t after) const {
  absl::MutexLock lock(&mu_);
  if (events_.empty() || events_.back().sequence() <= after) return std::nullopt;
  const int64_t first = events_.front().sequence();
  // Sequences in the deque are contiguous, so the position is arithmetic.
  const int64_t index = after < first ? 0 : after - first + 1;
  return events_[static_cast<size_t>(index)];
}

bool EventLog::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

int64_t EventLog::last_sequence() const {
  absl::MutexLock lock(&mu_);
  return last_sequence_;
}

int64_t EventLog::first_retained_sequence() const {
  absl::MutexLock lock(&mu_);
  return events_.empty() ? 0 : events_.front().sequence();
}

int64_t EventLog::Subscribe(std::function<void()> notify) {
  absl::MutexLock lock(&subscribers_mu_);
  const int64_t id = next_subscriber_id_++;
  subscribers_.emplace(id, std::move(notify));
  return id;
}

void EventLog::Unsubscribe(int64_t id) {
  absl::MutexLock lock(&subscribers_mu_);
  subscribers_.erase(id);
}

}  // namespace gcprune::trainer
