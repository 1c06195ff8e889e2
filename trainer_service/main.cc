// gcprune-trainer: the Trainer gRPC server. Runs training-and-pruning experiments as jobs, streams each
// collection step to a Pruner session and applies the masks that come back. docs/TRAINER.md has the flags.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/auth_token.h"
#include "common/logging.h"
#include "common/server_bootstrap.h"
#include "common/server_flags.h"
#include "protos/gcprune/v1/trainer.grpc.pb.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/service/run_manager.h"
#include "trainer_service/service/trainer_service.h"

ABSL_FLAG(std::string, data_dir, "/usr/share/datasets",
          "Directory with one folder per data set (fashion-mnist/, mnist/, cifar10/), used when a run's "
          "DataSpec.directory is empty.");
ABSL_FLAG(int, concurrent_runs, 1, "Runs executed at the same time, [1, 64]; the others wait QUEUED.");
ABSL_FLAG(int, max_active_runs, 64, "Queued plus running runs allowed; CreateRun beyond is RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_retained_runs, 1000, "Finished runs kept for GetRun, ListRuns and GetRunReport.");
ABSL_FLAG(int, event_log_capacity, 10000, "Events kept per run for WatchRun replay.");
ABSL_FLAG(std::string, default_pruner_address, "",
          "Pruner used by runs whose PrunerEndpoint.address is empty (host:port); empty = none.");
ABSL_FLAG(std::string, pruner_tls_ca_file, "", "PEM roots that sign the pruners' certificates (runs with use_tls).");
ABSL_FLAG(std::string, pruner_tls_server_name, "", "Name checked against the pruner's certificate instead of its host.");
ABSL_FLAG(std::string, pruner_tls_client_cert_file, "", "PEM client certificate for mutual TLS towards pruners.");
ABSL_FLAG(std::string, pruner_tls_client_key_file, "", "PEM key of --pruner_tls_client_cert_file.");
ABSL_FLAG(std::string, pruner_auth_token_file, "",
          "File with the bearer token sent to pruners; empty = the token this server requires, if any.");
ABSL_FLAG(int, pruner_buffer_mb, 256, "MiB of unacknowledged collection steps each run keeps for its pruner.");
ABSL_FLAG(int, threads_per_run, 0,
          "OpenMP threads of each run, [0, 1024]; 0 = the cores (OMP_NUM_THREADS, else all) divided by "
          "--concurrent_runs, at least 1, so that concurrent runs share the cores instead of stalling each other.");
ABSL_FLAG(int, pretrain_cache_mb, 1024,
          "MiB of pre-trained models kept so that runs with an identical pre-training (model, data, pre-training "
          "phase, seed, label smoothing) start from it instead of repeating it; 0 = always pre-train.");
ABSL_FLAG(double, progress_interval_seconds, 1.0, "Least time between two StepProgress events of a run, >= 0.05.");

namespace {

namespace trainer = ::gcprune::trainer;
namespace common = ::gcprune::common;

absl::StatusOr<trainer::RunManagerOptions> ManagerOptionsFromFlags(const common::ServerOptions& server) {
  trainer::RunManagerOptions options;
  options.concurrent_runs = absl::GetFlag(FLAGS_concurrent_runs);
  options.max_active_runs = absl::GetFlag(FLAGS_max_active_runs);
  options.max_retained_runs = absl::GetFlag(FLAGS_max_retained_runs);
  const int capacity = absl::GetFlag(FLAGS_event_log_capacity);
  if (capacity < 1) return absl::InvalidArgumentError(absl::StrCat("--event_log_capacity: must be >= 1, got ", capacity));
  options.event_log_capacity = static_cast<size_t>(capacity);
  options.spec_defaults.data_root = absl::GetFlag(FLAGS_data_dir);
  options.spec_defaults.pruner_address = absl::GetFlag(FLAGS_default_pruner_address);
  options.pruner_channel.tls_ca_file = absl::GetFlag(FLAGS_pruner_tls_ca_file);
  options.pruner_channel.tls_server_name = absl::GetFlag(FLAGS_pruner_tls_server_name);
  options.pruner_channel.tls_client_cert_file = absl::GetFlag(FLAGS_pruner_tls_client_cert_file);
  options.pruner_channel.tls_client_key_file = absl::GetFlag(FLAGS_pruner_tls_client_key_file);
  const std::string token_file = absl::GetFlag(FLAGS_pruner_auth_token_file);
  if (token_file.empty()) {
    options.pruner_channel.auth_token = server.security.auth_token;
  } else {
    absl::StatusOr<std::string> token = common::LoadAuthToken("", token_file, /*use_env=*/false);
    if (!token.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--pruner_auth_token_file: ", token.status().message()));
    }
    options.pruner_channel.auth_token = *token;
  }
  const int buffer_mb = absl::GetFlag(FLAGS_pruner_buffer_mb);
  if (buffer_mb < 1 || buffer_mb > 1 << 20) {
    return absl::InvalidArgumentError(absl::StrCat("--pruner_buffer_mb: must be in [1, 1048576], got ", buffer_mb));
  }
  options.pruner_buffer_bytes = int64_t{buffer_mb} << 20;
  const double interval = absl::GetFlag(FLAGS_progress_interval_seconds);
  if (!(interval >= 0.05 && interval <= 3600)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--progress_interval_seconds: must be in [0.05, 3600], got ", interval));
  }
  options.progress_interval = absl::Seconds(interval);
  const int threads = absl::GetFlag(FLAGS_threads_per_run);
  if (threads < 0 || threads > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--threads_per_run: must be in [0, 1024], got ", threads));
  }
  options.threads_per_run =
      threads > 0 ? threads : std::max(1, trainer::DefaultThreads() / std::max(1, options.concurrent_runs));
  const int cache_mb = absl::GetFlag(FLAGS_pretrain_cache_mb);
  if (cache_mb < 0 || cache_mb > 1 << 20) {
    return absl::InvalidArgumentError(absl::StrCat("--pretrain_cache_mb: must be in [0, 1048576], got ", cache_mb));
  }
  options.pretrain_cache_bytes = int64_t{cache_mb} << 20;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gcprune-trainer [flags]: the gcprune Trainer gRPC server (runs training with Granger-causal pruning "
      "as jobs). See docs/TRAINER.md.");
  absl::ParseCommandLine(argc, argv);

  absl::StatusOr<common::ServerOptions> server_options = common::ServerOptionsFromFlags(/*default_port=*/50051);
  if (!server_options.ok()) {
    std::cerr << "gcprune-trainer: " << server_options.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<trainer::RunManagerOptions> manager_options = ManagerOptionsFromFlags(*server_options);
  if (!manager_options.ok()) {
    std::cerr << "gcprune-trainer: " << manager_options.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<trainer::RunManager>> manager = trainer::RunManager::Create(*manager_options);
  if (!manager.ok()) {
    std::cerr << "gcprune-trainer: " << manager.status().message() << "\n";
    return 2;
  }
  trainer::TrainerService service(manager->get());
  absl::StatusOr<std::unique_ptr<common::GrpcServer>> server =
      common::GrpcServer::Start(*server_options, {{&service, gcprune::v1::Trainer::service_full_name()}});
  if (!server.ok()) {
    std::cerr << "gcprune-trainer: " << server.status().message() << "\n";
    return 1;
  }
  // On SIGTERM/SIGINT: stop accepting runs, cancel the running ones (they stop at their next batch) and
  // end the watch streams, before gRPC's grace period starts.
  (*server)->AddShutdownHook([&] {
    (*manager)->CancelAll("the trainer is shutting down");
    service.Shutdown();
  });
  std::cout << "listening on " << (*server)->listen_address() << std::endl;

  absl::StatusOr<int> signal = common::ServeUntilShutdownSignal(**server, server_options->shutdown_grace);
  (*manager)->Shutdown();
  if (!signal.ok()) {
    std::cerr << "gcprune-trainer: " << signal.status().message() << "\n";
    return 1;
  }
  GCPRUNE_LOG(INFO) << "gcprune-trainer stopped" << (*signal != 0 ? absl::StrCat(" (signal ", *signal, ")") : "");
  return 0;
}
