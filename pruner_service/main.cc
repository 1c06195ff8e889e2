// gcprune-pruner: the Granger-causal pruning server. Loads the sessions of its state directory, serves
// gcprune.v1.Pruner (with health checking and reflection) and shuts down gracefully on SIGTERM/SIGINT.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/server_bootstrap.h"
#include "common/server_flags.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "pruner_service/service/fit_executor.h"
#include "pruner_service/service/pruner_service.h"
#include "pruner_service/service/session_manager.h"
#include "pruner_service/service/state_directory.h"

ABSL_FLAG(std::string, state_dir, "gcprune-pruner-state",
          "Folder holding every session (metadata and step journals); created if absent, locked while serving.");
ABSL_FLAG(bool, fsync, false,
          "fsync every journalled step and metadata change: acknowledged steps survive power loss, not only a "
          "crash of the server.");
ABSL_FLAG(int, max_sessions, 64, "Live (collecting or fitting) sessions at once.");
ABSL_FLAG(int64_t, default_session_memory_bytes, int64_t{1} << 30,
          "Sample memory budget of a session whose MethodConfig.memory_budget_bytes is 0, in bytes.");
ABSL_FLAG(int64_t, max_session_memory_bytes, int64_t{4} << 30,
          "Largest sample memory budget a session may ask for, in bytes.");
ABSL_FLAG(int64_t, total_memory_bytes, int64_t{8} << 30,
          "Sample memory reserved by all live sessions together, in bytes.");
ABSL_FLAG(int, fit_threads, 1, "Fits that run at once (others queue); each uses --solver_threads.");
ABSL_FLAG(int, solver_threads, 2, "OpenMP threads of one LassoSGD fit (results do not depend on it).");
ABSL_FLAG(int64_t, mask_part_bytes, int64_t{1} << 20,
          "Bytes of mask bits per MaskUpdate part and GetMasks page (keep well under 4 MiB).");

namespace gcprune::pruner {
namespace {

constexpr int kDefaultPort = 50052;

absl::Status CheckFlags() {
  if (absl::GetFlag(FLAGS_default_session_memory_bytes) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--default_session_memory_bytes: ",
                                                   absl::GetFlag(FLAGS_default_session_memory_bytes),
                                                   ", expected >= 0"));
  }
  if (absl::GetFlag(FLAGS_solver_threads) < 1 || absl::GetFlag(FLAGS_solver_threads) > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("--solver_threads: ", absl::GetFlag(FLAGS_solver_threads), ", expected 1 to 256"));
  }
  const int64_t part = absl::GetFlag(FLAGS_mask_part_bytes);
  if (part < 1 || part > (int64_t{3} << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("--mask_part_bytes: ", part, ", expected 1 to 3145728"));
  }
  return absl::OkStatus();
}

int Run() {
  absl::StatusOr<common::ServerOptions> server_options = common::ServerOptionsFromFlags(kDefaultPort);
  absl::Status flags = server_options.ok() ? CheckFlags() : server_options.status();
  if (!flags.ok()) {
    std::fprintf(stderr, "gcprune-pruner: %s\n", std::string(flags.message()).c_str());
    return 2;
  }

  absl::StatusOr<std::unique_ptr<StateDirectory>> dir =
      StateDirectory::Open(absl::GetFlag(FLAGS_state_dir), absl::GetFlag(FLAGS_fsync));
  if (!dir.ok()) {
    GCPRUNE_LOG(ERROR) << "--state_dir: " << dir.status();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<FitExecutor>> executor = FitExecutor::Create(absl::GetFlag(FLAGS_fit_threads));
  if (!executor.ok()) {
    GCPRUNE_LOG(ERROR) << "--fit_threads: " << executor.status();
    return 2;
  }
  SessionManagerOptions options;
  options.session.core.default_memory_budget_bytes = absl::GetFlag(FLAGS_default_session_memory_bytes);
  options.session.core.solver_threads = absl::GetFlag(FLAGS_solver_threads);
  options.session.max_message_bytes = server_options->max_receive_message_bytes;
  options.session.mask_part_bytes = absl::GetFlag(FLAGS_mask_part_bytes);
  options.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.max_session_memory_bytes = absl::GetFlag(FLAGS_max_session_memory_bytes);
  options.total_memory_bytes = absl::GetFlag(FLAGS_total_memory_bytes);
  // Health turns SERVING only once the server starts, i.e. after every stored session is loaded.
  absl::StatusOr<std::unique_ptr<SessionManager>> manager =
      SessionManager::Create(dir->get(), executor->get(), options);
  if (!manager.ok()) {
    GCPRUNE_LOG(ERROR) << "cannot load the sessions: " << manager.status();
    return 1;
  }

  PrunerService service(manager->get());
  absl::StatusOr<std::unique_ptr<common::GrpcServer>> server =
      common::GrpcServer::Start(*server_options, {{&service, gcprune::v1::Pruner::service_full_name()}});
  if (!server.ok()) {
    GCPRUNE_LOG(ERROR) << "cannot start: " << server.status();
    return 1;
  }
  SessionManager* sessions = manager->get();
  (*server)->AddShutdownHook([sessions] { sessions->Shutdown(); });
  std::printf("listening on %s\n", (*server)->listen_address().c_str());
  std::fflush(stdout);
  GCPRUNE_LOG(INFO) << "gcprune-pruner listening on " << (*server)->listen_address() << ", state in "
                    << (*dir)->root() << ", " << sessions->num_sessions() << " sessions";

  absl::StatusOr<int> signal = common::ServeUntilShutdownSignal(**server, server_options->shutdown_grace);
  // Fits still running finish and store their masks; queued ones are redone after a restart.
  (*executor)->Shutdown();
  if (!signal.ok()) {
    GCPRUNE_LOG(ERROR) << "serving failed: " << signal.status();
    return 1;
  }
  GCPRUNE_LOG(INFO) << "gcprune-pruner stopped" << (*signal != 0 ? absl::StrCat(" on signal ", *signal) : "");
  return 0;
}

}  // namespace
}  // namespace gcprune::pruner

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gcprune-pruner: Granger-causal pruning sessions over gRPC (gcprune.v1.Pruner).\n"
      "Usage: gcprune-pruner [--port=50052] [--state_dir=DIR] [--fsync] ...; docs/PRUNER.md has every flag.");
  absl::ParseCommandLine(argc, argv);
  return gcprune::pruner::Run();
}
