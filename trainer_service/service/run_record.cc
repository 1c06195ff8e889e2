// Shared state of one run (see run_record.h).
#include "trainer_service/service/run_record.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gcprune::trainer {

namespace v1 = ::gcprune::v1;

bool IsTerminal(v1::RunState state) {
  return state == v1::RUN_STATE_SUCCEEDED || state == v1::RUN_STATE_FAILED || state == v1::RUN_STATE_CANCELLED;
}

RunRecord::RunRecord(std::string run_id, int64_t ordinal, v1::RunSpec spec, int total_iterations,
                     size_t event_capacity)
    : id_(std::move(run_id)), ordinal_(ordinal), events_(std::make_shared<EventLog>(id_, event_capacity)) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  run_.set_run_id(id_);
  *run_.mutable_spec() = std::move(spec);
  run_.set_state(v1::RUN_STATE_QUEUED);
  run_.set_phase(v1::PHASE_UNSPECIFIED);
  run_.set_total_iterations(total_iterations);
  run_.set_test_accuracy(nan);
  run_.set_created_unix_ms(absl::ToUnixMillis(absl::Now()));
  report_.set_run_id(id_);
  report_.set_state(v1::RUN_STATE_QUEUED);
  report_.set_pretrain_test_accuracy(nan);
}

v1::Run RunRecord::GetRun() const {
  absl::MutexLock lock(&mu_);
  return run_;
}

v1::RunReport RunRecord::GetReport() const {
  absl::MutexLock lock(&mu_);
  v1::RunReport report = report_;
  report.set_state(run_.state());
  return report;
}

v1::RunState RunRecord::state() const {
  absl::MutexLock lock(&mu_);
  return run_.state();
}

void RunRecord::Update(absl::FunctionRef<void(v1::Run*, v1::RunReport*)> update) {
  absl::MutexLock lock(&mu_);
  update(&run_, &report_);
}

bool RunRecord::RequestCancel(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (IsTerminal(run_.state())) return false;
  if (!cancel_requested_.load(std::memory_order_relaxed)) cancel_reason_ = reason;
  cancel_requested_.store(true, std::memory_order_release);
  return true;
}

std::string RunRecord::cancel_reason() const {
  absl::MutexLock lock(&mu_);
  return cancel_reason_;
}

bool RunRecord::MarkRunning() {
  absl::MutexLock lock(&mu_);
  if (run_.state() != v1::RUN_STATE_QUEUED) return false;
  run_.set_state(v1::RUN_STATE_RUNNING);
  run_.set_started_unix_ms(absl::ToUnixMillis(absl::Now()));
  report_.set_state(v1::RUN_STATE_RUNNING);
  return true;
}

void RunRecord::Finish(v1::RunState state, const std::string& message) {
  v1::RunEvent event;
  {
    absl::MutexLock lock(&mu_);
    if (IsTerminal(run_.state())) return;
    run_.set_state(state);
    run_.set_finished_unix_ms(absl::ToUnixMillis(absl::Now()));
    if (state != v1::RUN_STATE_SUCCEEDED) run_.set_error_message(message);
    if (state == v1::RUN_STATE_SUCCEEDED) run_.set_phase(v1::PHASE_DONE);
    report_.set_state(state);
    v1::RunFinished* finished = event.mutable_finished();
    finished->set_state(state);
    finished->set_message(state == v1::RUN_STATE_SUCCEEDED ? "" : message);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const bool tuned = report_.has_finetune() && report_.finetune().epochs() > 0;
    finished->set_final_test_accuracy(tuned ? report_.finetune().last_test_accuracy() : nan);
    finished->set_best_test_accuracy(tuned ? report_.finetune().best_test_accuracy() : nan);
    finished->set_sparsity(run_.sparsity());
  }
  events_->Append(std::move(event));
}

}  // namespace gcprune::trainer
