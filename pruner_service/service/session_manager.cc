// Session admission, lookup, listing and deletion (see session_manager.h).
#include "pruner_service/service/session_manager.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "pruner_service/service/wire_format.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// 128 random bits as 32 lower-case hex digits.
std::string NewSessionId() {
  static absl::Mutex mutex(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mutex);
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(*gen), absl::Uniform<uint64_t>(*gen));
}

// Bytes one sample takes in the store (without the 64-byte row padding).
int64_t SampleBytes(const Layout& layout, const MethodConfig& config) {
  const int64_t groups = config.v1_momentum ? 3 : 1;
  const int64_t width = config.sample_encoding == SampleEncoding::kBfloat16 ? 2 : 4;
  return layout.num_features() * groups * width;
}

}  // namespace

SessionManager::SessionManager(StateDirectory* dir, FitExecutor* executor, const SessionManagerOptions& options)
    : dir_(dir), executor_(executor), options_(options) {}

absl::StatusOr<std::unique_ptr<SessionManager>> SessionManager::Create(StateDirectory* dir, FitExecutor* executor,
                                                                       const SessionManagerOptions& options) {
  if (options.max_sessions < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_sessions: ", options.max_sessions, ", expected >= 1"));
  }
  if (options.max_session_memory_bytes < 1 || options.total_memory_bytes < 1) {
    return absl::InvalidArgumentError(absl::StrCat("memory limits must be >= 1 byte, got per session ",
                                                   options.max_session_memory_bytes, ", total ",
                                                   options.total_memory_bytes));
  }
  if (options.session.mask_part_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("mask_part_bytes: ", options.session.mask_part_bytes, ", expected >= 1"));
  }
  std::unique_ptr<SessionManager> manager(new SessionManager(dir, executor, options));
  GCPRUNE_ASSIGN_OR_RETURN(std::vector<std::string> ids, dir->ListSessions());
  absl::MutexLock lock(&manager->mutex_);
  for (const std::string& id : ids) {
    absl::StatusOr<std::shared_ptr<ManagedSession>> session = ManagedSession::Load(id, dir, executor, options.session);
    if (!session.ok()) {
      GCPRUNE_LOG(ERROR) << "session " << id << " not loaded: " << session.status();
      continue;
    }
    manager->sessions_.emplace(id, std::move(*session));
  }
  GCPRUNE_LOG(INFO) << "loaded " << manager->sessions_.size() << " sessions from " << dir->root();
  return manager;
}

absl::StatusOr<std::shared_ptr<ManagedSession>> SessionManager::CreateSession(const v1::NewSession& request) {
  if (request.label().size() > kMaxLabelBytes) {
    return absl::InvalidArgumentError(absl::StrCat("open.create.label: ", request.label().size(),
                                                   " bytes, expected at most ", kMaxLabelBytes));
  }
  GCPRUNE_ASSIGN_OR_RETURN(Layout layout, LayoutFromProto(request.layout(), "open.create.layout"));
  GCPRUNE_ASSIGN_OR_RETURN(MethodConfig config, MethodConfigFromProto(request.method(), "open.create.method"));
  GCPRUNE_ASSIGN_OR_RETURN(config, ResolveMethodConfig(config));
  // The effective budget is stored with the session, so a restart with other flags does not change it.
  const bool causal = IsCausal(config.method);
  if (config.memory_budget_bytes == 0) config.memory_budget_bytes = options_.session.core.default_memory_budget_bytes;
  const int64_t budget = causal ? config.memory_budget_bytes : 0;
  if (causal && budget > options_.max_session_memory_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("open.create.method.memory_budget_bytes: ", budget,
                                                     " bytes is above the server's per-session limit of ",
                                                     options_.max_session_memory_bytes, " bytes"));
  }
  if (causal && budget < SampleBytes(layout, config)) {
    return absl::ResourceExhaustedError(absl::StrCat("open.create.method.memory_budget_bytes: ", budget,
                                                     " bytes cannot hold one sample of ", SampleBytes(layout, config),
                                                     " bytes"));
  }

  absl::MutexLock lock(&mutex_);
  if (shutting_down_) return absl::UnavailableError("the server is shutting down; reconnect later");
  int live = 0;
  int64_t reserved = 0;
  for (const auto& [id, session] : sessions_) {
    if (!session->live()) continue;
    ++live;
    reserved += session->reserved_bytes();
  }
  if (live >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat("open.create: the server holds ", live,
                                                     " live sessions, its limit is ", options_.max_sessions,
                                                     " (complete or delete sessions to make room)"));
  }
  if (budget > options_.total_memory_bytes - reserved) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "open.create.method.memory_budget_bytes: ", budget, " bytes do not fit: live sessions reserve ", reserved,
        " of the server's ", options_.total_memory_bytes, " bytes of sample memory"));
  }
  std::string id = NewSessionId();
  while (sessions_.count(id) > 0) id = NewSessionId();
  absl::StatusOr<std::shared_ptr<ManagedSession>> session =
      ManagedSession::Create(id, request.label(), std::move(layout), config, dir_, executor_, options_.session);
  if (!session.ok()) {
    if (session.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(absl::StrCat("open.create: ", session.status().message()));
    }
    return absl::UnavailableError(absl::StrCat("open.create: the session could not be stored: ",
                                               session.status().message()));
  }
  sessions_.emplace(id, *session);
  GCPRUNE_LOG(INFO) << "session " << id << " created: " << MethodName(config.method) << ", "
                    << (*session)->Info(false).num_features() << " prunable weights";
  return session;
}

absl::StatusOr<std::shared_ptr<ManagedSession>> SessionManager::FindSession(absl::string_view id,
                                                                            absl::string_view field) const {
  GCPRUNE_RETURN_IF_ERROR(ValidateSessionId(id, field));
  absl::MutexLock lock(&mutex_);
  auto it = sessions_.find(std::string(id));
  if (it == sessions_.end()) return absl::NotFoundError(absl::StrCat(field, ": no session '", id, "'"));
  return it->second;
}

absl::Status SessionManager::DeleteSession(absl::string_view id, bool force) {
  GCPRUNE_ASSIGN_OR_RETURN(std::shared_ptr<ManagedSession> session, FindSession(id, "session_id"));
  GCPRUNE_RETURN_IF_ERROR(session->MarkDeleted(force));
  {
    absl::MutexLock lock(&mutex_);
    sessions_.erase(std::string(id));
  }
  absl::Status removed = dir_->DeleteSession(id);
  if (!removed.ok()) {
    return absl::InternalError(absl::StrCat("session '", id, "' is deleted but its files remain: ", removed.message()));
  }
  GCPRUNE_LOG(INFO) << "session " << id << " deleted";
  return absl::OkStatus();
}

absl::StatusOr<v1::ListSessionsResponse> SessionManager::ListSessions(const v1::ListSessionsRequest& request) const {
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", request.page_size(), ", expected 0 to ", kMaxPageSize));
  }
  if (!v1::SessionState_IsValid(request.state())) {
    return absl::InvalidArgumentError(absl::StrCat("state: unknown value ", static_cast<int>(request.state())));
  }
  const int page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  // Token: "<created_unix_ms>.<id>" of the last session returned.
  int64_t after_created = 0;
  std::string after_id;
  if (!request.page_token().empty()) {
    const size_t dot = request.page_token().find('.');
    bool ok = dot != std::string::npos && absl::SimpleAtoi(request.page_token().substr(0, dot), &after_created);
    if (ok) {
      after_id = request.page_token().substr(dot + 1);
      ok = ValidateSessionId(after_id, "page_token").ok();
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token: '", request.page_token(), "' is not a token of ListSessions"));
    }
  }
  std::vector<v1::SessionInfo> infos;
  {
    absl::MutexLock lock(&mutex_);
    for (const auto& [id, session] : sessions_) {
      v1::SessionInfo info = session->Info(/*with_layout=*/false);
      if (request.state() != v1::SESSION_STATE_UNSPECIFIED && info.state() != request.state()) continue;
      infos.push_back(std::move(info));
    }
  }
  auto newer_first = [](const v1::SessionInfo& a, const v1::SessionInfo& b) {
    if (a.created_unix_ms() != b.created_unix_ms()) return a.created_unix_ms() > b.created_unix_ms();
    return a.session_id() < b.session_id();
  };
  std::sort(infos.begin(), infos.end(), newer_first);
  size_t start = 0;
  if (!request.page_token().empty()) {
    v1::SessionInfo last;
    last.set_created_unix_ms(after_created);
    last.set_session_id(after_id);
    start = static_cast<size_t>(std::upper_bound(infos.begin(), infos.end(), last, newer_first) - infos.begin());
  }
  v1::ListSessionsResponse response;
  const size_t end = std::min(infos.size(), start + static_cast<size_t>(page_size));
  for (size_t i = start; i < end; ++i) *response.add_sessions() = std::move(infos[i]);
  if (end < infos.size()) {
    const v1::SessionInfo& last = response.sessions(response.sessions_size() - 1);
    response.set_next_page_token(absl::StrCat(last.created_unix_ms(), ".", last.session_id()));
  }
  return response;
}

void SessionManager::Shutdown() {
  std::vector<std::shared_ptr<ManagedSession>> sessions;
  {
    absl::MutexLock lock(&mutex_);
    shutting_down_ = true;
    for (const auto& [id, session] : sessions_) sessions.push_back(session);
  }
  for (const auto& session : sessions) {
    session->EndStream(absl::UnavailableError("the server is shutting down; reconnect and resume the session"));
  }
}

bool SessionManager::shutting_down() const {
  absl::MutexLock lock(&mutex_);
  return shutting_down_;
}

int SessionManager::num_sessions() const {
  absl::MutexLock lock(&mutex_);
  return static_cast<int>(sessions_.size());
}

}  // namespace gcprune::pruner
