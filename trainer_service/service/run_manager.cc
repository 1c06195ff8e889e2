// Run manager: job queue, workers and run bookkeeping (see run_manager.h).
#include "trainer_service/service/run_manager.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "trainer_service/service/pruner_client.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

constexpr size_t kMaxRequestIdBytes = 128;
constexpr size_t kMaxReasonBytes = 256;
constexpr int kMaxPageSize = 1000;
constexpr int kDefaultPageSize = 100;
constexpr char kPageTokenPrefix[] = "before-";

std::string StateName(v1::RunState state) {
  const std::string& name = v1::RunState_Name(state);
  return name.rfind("RUN_STATE_", 0) == 0 ? name.substr(10) : name;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunManager>> RunManager::Create(RunManagerOptions options) {
  if (options.concurrent_runs < 1 || options.concurrent_runs > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("concurrent_runs: must be in [1, 64], got ", options.concurrent_runs));
  }
  if (options.max_active_runs < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_active_runs: must be >= 1, got ", options.max_active_runs));
  }
  if (options.max_retained_runs < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_retained_runs: must be >= 0, got ", options.max_retained_runs));
  }
  if (options.event_log_capacity < 1) return absl::InvalidArgumentError("event_log_capacity: must be >= 1, got 0");
  if (options.pruner_buffer_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pruner_buffer_bytes: must be >= 1, got ", options.pruner_buffer_bytes));
  }
  if (options.threads_per_run < 0 || options.threads_per_run > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads_per_run: must be in [0, 1024], got ", options.threads_per_run));
  }
  if (options.pretrain_cache_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("pretrain_cache_bytes: must be >= 0, got ", options.pretrain_cache_bytes));
  }
  if (options.progress_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("progress_interval: must be > 0, got ",
                                                   absl::FormatDuration(options.progress_interval)));
  }
  if (options.pruner_initial_backoff <= absl::ZeroDuration() ||
      options.pruner_max_backoff < options.pruner_initial_backoff) {
    return absl::InvalidArgumentError("pruner backoff: need 0 < initial <= max");
  }
  std::unique_ptr<RunManager> manager(new RunManager(std::move(options)));
  for (int i = 0; i < manager->options_.concurrent_runs; ++i) {
    manager->workers_.emplace_back([m = manager.get()] { m->WorkerLoop(); });
  }
  return manager;
}

RunManager::RunManager(RunManagerOptions options)
    : options_(std::move(options)), datasets_(options_.dataset_cache_entries),
      pretrains_(options_.pretrain_cache_bytes) {}

RunManager::~RunManager() { Shutdown(); }

absl::StatusOr<v1::Run> RunManager::CreateRun(const v1::CreateRunRequest& request) {
  if (request.request_id().size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: must be at most ", kMaxRequestIdBytes,
                                                   " bytes, got ", request.request_id().size()));
  }
  if (!request.request_id().empty()) {
    absl::MutexLock lock(&mu_);
    auto known = by_request_id_.find(request.request_id());
    if (known != by_request_id_.end()) {
      auto entry = runs_.find(known->second);
      if (entry != runs_.end()) return entry->second.record->GetRun();
    }
  }
  // Validation builds the model once; done without the lock.
  absl::StatusOr<RunPlan> plan = ResolveRunSpec(request.spec(), options_.spec_defaults);
  if (!plan.ok()) return plan.status();
  auto shared_plan = std::make_shared<const RunPlan>(*std::move(plan));

  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("the trainer is shutting down; no new runs");
  if (!request.request_id().empty()) {
    auto known = by_request_id_.find(request.request_id());
    if (known != by_request_id_.end()) {
      auto entry = runs_.find(known->second);
      if (entry != runs_.end()) return entry->second.record->GetRun();
    }
  }
  int active = 0;
  for (const auto& [id, entry] : runs_) active += !IsTerminal(entry.record->state());
  if (active >= options_.max_active_runs) {
    return absl::ResourceExhaustedError(absl::StrCat(active, " runs are queued or running (limit ",
                                                     options_.max_active_runs, "); retry later"));
  }
  const int64_t ordinal = next_ordinal_++;
  const std::string run_id = absl::StrFormat("run-%06d-%08x", ordinal, absl::Uniform<uint32_t>(absl::BitGen()));
  auto record = std::make_shared<RunRecord>(run_id, ordinal, request.spec(), shared_plan->iterations,
                                            options_.event_log_capacity);
  runs_[run_id] = Entry{record, shared_plan};
  by_ordinal_[ordinal] = run_id;
  if (!request.request_id().empty()) by_request_id_[request.request_id()] = run_id;
  queue_.push_back(run_id);
  GCPRUNE_LOG(INFO) << "run " << run_id << " queued (" << MethodKindName(shared_plan->method_kind) << ", "
                    << shared_plan->iterations << " iterations, label '" << shared_plan->label << "')";
  return record->GetRun();
}

std::shared_ptr<RunRecord> RunManager::Find(const std::string& run_id, absl::Status* status) const {
  if (run_id.empty()) {
    *status = absl::InvalidArgumentError("run_id: empty");
    return nullptr;
  }
  absl::MutexLock lock(&mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) {
    *status = absl::NotFoundError(absl::StrCat("run '", run_id, "' not found"));
    return nullptr;
  }
  return it->second.record;
}

absl::StatusOr<v1::Run> RunManager::GetRun(const std::string& run_id) const {
  absl::Status status;
  std::shared_ptr<RunRecord> record = Find(run_id, &status);
  if (record == nullptr) return status;
  return record->GetRun();
}

absl::StatusOr<v1::RunReport> RunManager::GetRunReport(const std::string& run_id) const {
  absl::Status status;
  std::shared_ptr<RunRecord> record = Find(run_id, &status);
  if (record == nullptr) return status;
  return record->GetReport();
}

absl::StatusOr<std::shared_ptr<EventLog>> RunManager::GetEventLog(const std::string& run_id) const {
  absl::Status status;
  std::shared_ptr<RunRecord> record = Find(run_id, &status);
  if (record == nullptr) return status;
  return record->events();
}

absl::StatusOr<v1::ListRunsResponse> RunManager::ListRuns(const v1::ListRunsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, ", kMaxPageSize, "], got ", request.page_size()));
  }
  if (!v1::RunState_IsValid(request.state())) {
    return absl::InvalidArgumentError(absl::StrCat("state: unknown value ", static_cast<int>(request.state())));
  }
  const int page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  int64_t before = INT64_MAX;
  if (!request.page_token().empty()) {
    const std::string& token = request.page_token();
    if (token.rfind(kPageTokenPrefix, 0) != 0 ||
        !absl::SimpleAtoi(token.substr(sizeof(kPageTokenPrefix) - 1), &before) || before < 1) {
      return absl::InvalidArgumentError(absl::StrCat("page_token: malformed '", token, "'"));
    }
  }
  std::vector<std::shared_ptr<RunRecord>> candidates;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = by_ordinal_.lower_bound(before); it != by_ordinal_.begin();) {
      --it;
      auto entry = runs_.find(it->second);
      if (entry != runs_.end()) candidates.push_back(entry->second.record);
    }
  }
  v1::ListRunsResponse response;
  for (const std::shared_ptr<RunRecord>& record : candidates) {
    v1::Run run = record->GetRun();
    if (request.state() != v1::RUN_STATE_UNSPECIFIED && run.state() != request.state()) continue;
    if (response.runs_size() == page_size) {
      response.set_next_page_token(absl::StrCat(kPageTokenPrefix, record->ordinal() + 1));
      break;
    }
    *response.add_runs() = std::move(run);
  }
  return response;
}

absl::StatusOr<v1::Run> RunManager::CancelRun(const v1::CancelRunRequest& request) {
  if (request.reason().size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason: must be at most ", kMaxReasonBytes, " bytes, got ", request.reason().size()));
  }
  absl::Status status;
  std::shared_ptr<RunRecord> record = Find(request.run_id(), &status);
  if (record == nullptr) return status;
  const std::string reason = request.reason().empty() ? "cancelled by CancelRun" : request.reason();
  if (!record->RequestCancel(reason)) {
    const v1::RunState state = record->state();
    if (state == v1::RUN_STATE_CANCELLED) return record->GetRun();
    return absl::FailedPreconditionError(
        absl::StrCat("run '", request.run_id(), "' already ", StateName(state), "; only queued or running runs can be cancelled"));
  }
  // A run still waiting in the queue never starts: finish it here.
  bool queued = false;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (*it == request.run_id()) {
        queue_.erase(it);
        queued = true;
        break;
      }
    }
  }
  if (queued) {
    record->Finish(v1::RUN_STATE_CANCELLED, reason);
    Retire(request.run_id());
  }
  return record->GetRun();
}

void RunManager::CancelAll(const std::string& reason) {
  std::vector<std::shared_ptr<RunRecord>> queued;
  std::vector<std::shared_ptr<RunRecord>> all;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (const std::string& id : queue_) {
      auto it = runs_.find(id);
      if (it != runs_.end()) queued.push_back(it->second.record);
    }
    queue_.clear();
    for (const auto& [id, entry] : runs_) all.push_back(entry.record);
  }
  for (const std::shared_ptr<RunRecord>& record : all) record->RequestCancel(reason);
  for (const std::shared_ptr<RunRecord>& record : queued) record->Finish(v1::RUN_STATE_CANCELLED, reason);
}

void RunManager::Shutdown() {
  CancelAll("the trainer is shutting down");
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

int RunManager::active_runs() const {
  absl::MutexLock lock(&mu_);
  int active = 0;
  for (const auto& [id, entry] : runs_) active += !IsTerminal(entry.record->state());
  return active;
}

void RunManager::WorkerLoop() {
  while (true) {
    std::shared_ptr<RunRecord> record;
    std::shared_ptr<const RunPlan> plan;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutting_down_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // shutting down
      const std::string id = queue_.front();
      queue_.pop_front();
      auto it = runs_.find(id);
      if (it == runs_.end()) continue;
      record = it->second.record;
      plan = it->second.plan;
    }
    if (!record->MarkRunning()) continue;  // cancelled while queued
    Execute(record, plan);
    {
      absl::MutexLock lock(&mu_);
      auto it = runs_.find(record->id());
      if (it != runs_.end()) it->second.plan.reset();
    }
    Retire(record->id());
  }
}

void RunManager::Execute(const std::shared_ptr<RunRecord>& record, const std::shared_ptr<const RunPlan>& plan) {
  GCPRUNE_LOG(INFO) << "run " << record->id() << " started";
  absl::Status status;
  absl::StatusOr<RunData> data = datasets_.Load(plan->data);
  if (!data.ok()) {
    status = absl::Status(data.status().code(), absl::StrCat("loading ", plan->data.name, ": ", data.status().message()));
  } else if (record->cancel_requested()) {
    status = absl::CancelledError(record->cancel_reason());
  } else {
    ProtocolOptions protocol;
    protocol.progress_interval = options_.progress_interval;
    protocol.threads = options_.threads_per_run;
    protocol.pretrain_cache = options_.pretrain_cache_bytes > 0 ? &pretrains_ : nullptr;
    RunRecord* raw = record.get();
    status = RunProtocol(
        *plan, *data,
        [this, plan, raw](const v1::Layout& layout) { return MakeLink(*plan, raw, layout); }, raw, protocol);
  }
  if (status.ok()) {
    record->Finish(v1::RUN_STATE_SUCCEEDED, "");
    GCPRUNE_LOG(INFO) << "run " << record->id() << " succeeded";
  } else if (status.code() == absl::StatusCode::kCancelled) {
    record->Finish(v1::RUN_STATE_CANCELLED, std::string(status.message()));
    GCPRUNE_LOG(INFO) << "run " << record->id() << " cancelled: " << status.message();
  } else {
    record->Finish(v1::RUN_STATE_FAILED, status.ToString());
    GCPRUNE_LOG(WARNING) << "run " << record->id() << " failed: " << status;
  }
}

absl::StatusOr<std::unique_ptr<PruningLink>> RunManager::MakeLink(const RunPlan& plan, RunRecord* record,
                                                                  const v1::Layout& layout) const {
  if (!plan.pruner.enabled) {
    std::vector<int64_t> numels;
    std::vector<int> indices;
    for (int i = 0; i < layout.tensors_size(); ++i) {
      if (!layout.tensors(i).prunable()) continue;
      int64_t numel = 1;
      for (int64_t d : layout.tensors(i).shape()) numel *= d;
      numels.push_back(numel);
      indices.push_back(i);
    }
    return std::unique_ptr<PruningLink>(std::make_unique<NoPrunerLink>(std::move(numels), std::move(indices)));
  }
  PrunerClientOptions client;
  client.address = plan.pruner.address;
  client.channel = options_.pruner_channel;
  client.channel.use_tls = plan.pruner.use_tls;
  if (!plan.pruner.use_tls) {
    client.channel.tls_ca_file.clear();
    client.channel.tls_client_cert_file.clear();
    client.channel.tls_client_key_file.clear();
  }
  client.layout = layout;
  client.method = plan.method;
  client.label = record->id();
  client.wants_steps = plan.wants_steps;
  client.wants_weights = plan.wants_weights;
  client.fail_open = plan.pruner.fail_open;
  client.grace = absl::Seconds(plan.pruner.grace_seconds);
  client.max_buffer_bytes = options_.pruner_buffer_bytes;
  client.initial_backoff = options_.pruner_initial_backoff;
  client.max_backoff = options_.pruner_max_backoff;
  client.cancelled = [record] { return record->cancel_requested(); };
  client.on_event = [record](const v1::PrunerConnectionChanged& change, const std::string& session_id) {
    record->Update([&](v1::Run* run, v1::RunReport* report) {
      run->set_pruner_state(change.state());
      if (!session_id.empty()) {
        run->set_pruner_session_id(session_id);
        report->set_pruner_session_id(session_id);
      }
    });
    v1::RunEvent event;
    *event.mutable_pruner() = change;
    record->Emit(std::move(event));
    GCPRUNE_LOG(INFO) << "run " << record->id() << ": pruner " << v1::PrunerState_Name(change.state()) << ": "
                      << change.message();
  };
  absl::StatusOr<std::unique_ptr<PrunerClient>> made = PrunerClient::Create(std::move(client));
  if (!made.ok()) return made.status();
  return std::unique_ptr<PruningLink>(*std::move(made));
}

void RunManager::Retire(const std::string& run_id) {
  (void)run_id;
  absl::MutexLock lock(&mu_);
  int finished = 0;
  for (const auto& [id, entry] : runs_) finished += IsTerminal(entry.record->state());
  // Forget the oldest finished runs beyond the retention limit.
  for (auto it = by_ordinal_.begin(); finished > options_.max_retained_runs && it != by_ordinal_.end();) {
    auto entry = runs_.find(it->second);
    if (entry != runs_.end() && IsTerminal(entry->second.record->state())) {
      for (auto r = by_request_id_.begin(); r != by_request_id_.end();) {
        if (r->second == it->second) {
          by_request_id_.erase(r++);
        } else {
          ++r;
        }
      }
      runs_.erase(entry);
      it = by_ordinal_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

}  // namespace gcprune::trainer
