// The bounded, sequenced event log of one run: the training thread appends without ever blocking on
// readers, and any number of watchers read at their own pace, replaying from a sequence number.
#ifndef GCPRUNE_TRAINER_SERVICE_SERVICE_EVENT_LOG_H_
#define GCPRUNE_TRAINER_SERVICE_SERVICE_EVENT_LOG_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "protos/gcprune/v1/trainer.pb.h"

namespace gcprune::trainer {

// Sequences start at 1 and grow by 1 per appended event, without gaps. The log keeps the newest
// `capacity` events; older ones are dropped, so a reader that falls behind (or asks for old events)
// sees a jump in sequence numbers, which is how the protocol tells a watcher that events were lost.
// The log is closed by the run's RunFinished event; nothing can be appended after it.
//
// Thread-safe. Appends never wait for readers: subscribers are only notified, and a notification must
// not block (typically it schedules a write on a gRPC reactor).
class EventLog {
 public:
  // `capacity` >= 1 events are retained (values below 1 are taken as 1).
  EventLog(std::string run_id, size_t capacity);
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Stamps `event` with the next sequence number, the current time and the run id, stores it and
  // notifies the subscribers. An event with `finished` set closes the log. Returns the sequence, or 0 if
  // the log was already closed (the event is dropped).
  int64_t Append(gcprune::v1::RunEvent event);

  // The first retained event with sequence > `after`, or nullopt if there is none yet.
  std::optional<gcprune::v1::RunEvent> Next(int64_t after) const;
  // True once the RunFinished event was appended.
  bool closed() const;
  // Sequence of the last appended event, 0 if none.
  int64_t last_sequence() const;
  // Sequence of the oldest retained event, 0 if none.
  int64_t first_retained_sequence() const;

  // Registers `notify`, called after every Append (on the appending thread, with no lock of the log's
  // event store held). Returns an id for Unsubscribe.
  int64_t Subscribe(std::function<void()> notify);
  // Removes a subscriber. When it returns, no call of its callback is running or will start, so the
  // callback's captures may be destroyed. Must not be called from inside the callback.
  void Unsubscribe(int64_t id);

 private:
  const std::string run_id_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<gcprune::v1::RunEvent> events_ ABSL_GUARDED_BY(mu_);
  int64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  // Held while callbacks run, so Unsubscribe can wait for a running one.
  absl::Mutex subscribers_mu_;
  std::map<int64_t, std::function<void()>> subscribers_ ABSL_GUARDED_BY(subscribers_mu_);
  int64_t next_subscriber_id_ ABSL_GUARDED_BY(subscribers_mu_) = 1;
};

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_SERVICE_EVENT_LOG_H_
