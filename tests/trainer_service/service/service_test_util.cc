// Integration test helpers (see service_test_util.h).
#include "tests/trainer_service/service/service_test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/mask_runs.h"
#include "common/status_macros.h"
#include "trainer_service/service/run_protocol.h"

namespace gcprune::trainer::testing {

namespace v1 = ::gcprune::v1;

TempDir::TempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr && *base != '\0' ? base : "/tmp", "/gcprune-trainer-XXXXXX");
  char* made = ::mkdtemp(pattern.data());
  path_ = made != nullptr ? made : "";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartPruner(const std::string& state_dir, int port) {
  const std::string binary = BinaryPath("pruner_service/gcprune-pruner");
  if (binary.empty()) return absl::FailedPreconditionError("GCPRUNE_BINARY_DIR is not set");
  return ChildProcess::Start({binary, "--host=127.0.0.1", absl::StrCat("--port=", port),
                              absl::StrCat("--state_dir=", state_dir), "--shutdown_grace_seconds=0"});
}

absl::StatusOr<std::unique_ptr<InProcessTrainer>> InProcessTrainer::Start(RunManagerOptions options) {
  std::unique_ptr<InProcessTrainer> trainer(new InProcessTrainer());
  GCPRUNE_ASSIGN_OR_RETURN(trainer->manager_, RunManager::Create(std::move(options)));
  trainer->service_ = std::make_unique<TrainerService>(trainer->manager_.get());
  common::ServerOptions server;
  server.host = "127.0.0.1";
  server.port = 0;
  server.shutdown_grace = absl::ZeroDuration();
  GCPRUNE_ASSIGN_OR_RETURN(trainer->server_,
                           common::GrpcServer::Start(server, {{trainer->service_.get(),
                                                               v1::Trainer::service_full_name()}}));
  RunManager* manager = trainer->manager_.get();
  TrainerService* service = trainer->service_.get();
  trainer->server_->AddShutdownHook([manager, service] {
    manager->CancelAll("the trainer is shutting down");
    service->Shutdown();
  });
  return trainer;
}

InProcessTrainer::~InProcessTrainer() {
  server_->Shutdown(absl::ZeroDuration());
  server_->Wait();
  manager_->Shutdown();
}

std::unique_ptr<v1::Trainer::Stub> InProcessTrainer::NewStub() const {
  return v1::Trainer::NewStub(grpc::CreateChannel(address(), grpc::InsecureChannelCredentials()));
}

RunManagerOptions TestManagerOptions(int concurrent_runs) {
  RunManagerOptions options;
  options.concurrent_runs = concurrent_runs;
  options.progress_interval = absl::Milliseconds(1);
  options.pruner_initial_backoff = absl::Milliseconds(50);
  options.pruner_max_backoff = absl::Milliseconds(500);
  return options;
}

v1::RunSpec SmallRunSpec(v1::Method method, const std::string& pruner_address, int iterations, double target,
                         int train_subset, uint64_t seed) {
  v1::RunSpec spec;
  spec.mutable_model()->set_preset("mlp");
  spec.mutable_data()->set_name("fashion-mnist");
  spec.mutable_data()->set_train_subset(train_subset);
  spec.mutable_data()->set_test_subset(1000);
  for (v1::PhaseSpec* phase : {spec.mutable_pretrain(), spec.mutable_train(), spec.mutable_finetune()}) {
    phase->set_epochs(1);
    phase->set_batch_size(128);
    phase->mutable_optimizer()->set_learning_rate(0.05);
    phase->mutable_optimizer()->set_momentum(0.9);
  }
  spec.mutable_method()->set_method(method);
  spec.mutable_method()->mutable_schedule()->set_iterations(iterations);
  if (method != v1::METHOD_CAUSAL_V1) spec.mutable_method()->mutable_schedule()->set_target_sparsity(target);
  spec.mutable_pruner()->set_address(pruner_address);
  spec.mutable_pruner()->set_grace_period_seconds(30);
  spec.set_seed(seed);
  spec.set_label(absl::StrCat("test ", v1::Method_Name(method)));
  return spec;
}

bool Watched::Has(const std::function<bool(const v1::RunEvent&)>& predicate) const {
  for (const v1::RunEvent& event : events) {
    if (predicate(event)) return true;
  }
  return false;
}

Watched WatchToEnd(v1::Trainer::Stub& stub, const std::string& run_id, int64_t after_sequence,
                   absl::Duration timeout, const std::function<void(const v1::RunEvent&)>& on_event) {
  Watched watched;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::WatchRunRequest request;
  request.set_run_id(run_id);
  request.set_after_sequence(after_sequence);
  std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader = stub.WatchRun(&context, request);
  v1::RunEvent event;
  while (reader->Read(&event)) {
    if (on_event) on_event(event);
    if (event.has_finished()) watched.finished = event.finished();
    watched.events.push_back(event);
  }
  watched.status = reader->Finish();
  return watched;
}

absl::StatusOr<v1::Run> WaitForRun(v1::Trainer::Stub& stub, const std::string& run_id, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    grpc::ClientContext context;
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::Run run;
    const grpc::Status status = stub.GetRun(&context, request, &run);
    if (!status.ok()) return common::FromGrpcStatus(status);
    if (run.state() == v1::RUN_STATE_SUCCEEDED || run.state() == v1::RUN_STATE_FAILED ||
        run.state() == v1::RUN_STATE_CANCELLED) {
      return run;
    }
    if (absl::Now() > deadline) return absl::DeadlineExceededError(absl::StrCat("run ", run_id, " still running"));
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> FetchMasks(const std::string& pruner_address,
                                                             const std::string& session_id, int iteration) {
  auto stub = v1::Pruner::NewStub(grpc::CreateChannel(pruner_address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext info_context;
  v1::GetSessionRequest info_request;
  info_request.set_session_id(session_id);
  v1::SessionInfo info;
  grpc::Status status = stub->GetSession(&info_context, info_request, &info);
  if (!status.ok()) return common::FromGrpcStatus(status);
  std::vector<int> prunable;  // layout indices
  std::vector<std::unique_ptr<common::PackedMaskAssembler>> assemblers;
  std::vector<int> position(info.layout().tensors_size(), -1);
  for (int i = 0; i < info.layout().tensors_size(); ++i) {
    const v1::TensorSpec& tensor = info.layout().tensors(i);
    if (!tensor.prunable()) continue;
    int64_t numel = 1;
    for (int64_t d : tensor.shape()) numel *= d;
    position[i] = static_cast<int>(prunable.size());
    prunable.push_back(i);
    assemblers.push_back(std::make_unique<common::PackedMaskAssembler>(numel));
  }
  std::string token;
  do {
    grpc::ClientContext context;
    v1::GetMasksRequest request;
    request.set_session_id(session_id);
    request.set_iteration(iteration);
    request.set_page_token(token);
    v1::GetMasksResponse response;
    status = stub->GetMasks(&context, request, &response);
    if (!status.ok()) return common::FromGrpcStatus(status);
    for (const v1::TensorMask& run : response.masks().masks()) {
      GCPRUNE_RETURN_IF_ERROR(assemblers[position[run.tensor_index()]]->Add(run));
    }
    token = response.next_page_token();
  } while (!token.empty());
  std::vector<std::vector<uint8_t>> keep;
  for (size_t p = 0; p < assemblers.size(); ++p) {
    GCPRUNE_ASSIGN_OR_RETURN(std::string packed, assemblers[p]->Finish());
    int64_t numel = 1;
    for (int64_t d : info.layout().tensors(prunable[p]).shape()) numel *= d;
    std::vector<uint8_t> bytes(static_cast<size_t>(numel));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = (static_cast<uint8_t>(packed[i / 8]) >> (i % 8)) & 1;
    keep.push_back(std::move(bytes));
  }
  return keep;
}

absl::StatusOr<ReferenceRun> RunInProcess(const v1::RunSpec& spec) {
  GCPRUNE_ASSIGN_OR_RETURN(RunPlan plan, ResolveRunSpec(spec, {}));
  DatasetCache cache;
  GCPRUNE_ASSIGN_OR_RETURN(RunData data, cache.Load(plan.data));
  auto record = std::make_shared<LocalPrunerRecord>();
  RunRecord run("reference", 1, spec, plan.iterations, 1000000);
  run.MarkRunning();
  const v1::MethodConfig method = plan.method;
  auto make = [record, method](const v1::Layout& layout) -> absl::StatusOr<std::unique_ptr<PruningLink>> {
    GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<LocalPrunerLink> link, LocalPrunerLink::Create(layout, method, record));
    return std::unique_ptr<PruningLink>(std::move(link));
  };
  GCPRUNE_RETURN_IF_ERROR(RunProtocol(plan, data, make, &run));
  ReferenceRun reference;
  for (const pruner::MaskSet& masks : record->masks) reference.masks.push_back(KeepBytes(masks));
  reference.report = run.GetReport();
  return reference;
}

}  // namespace gcprune::trainer::testing
