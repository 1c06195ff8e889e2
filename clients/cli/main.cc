// Entry point of the `gcprune` command-line client.
#include <cstdlib>
#include <iostream>

#include "clients/cli/command.h"
#include "common/logging.h"

int main(int argc, char** argv) {
  // The command speaks for itself on stderr; library log lines (e.g. "received SIGINT") only add noise
  // unless asked for with GCPRUNE_LOG_LEVEL.
  if (std::getenv("GCPRUNE_LOG_LEVEL") == nullptr) {
    gcprune::common::SetLogThreshold(gcprune::common::LogLevel::kWarning);
  }
  return gcprune::cli::RunCli(argc, argv, std::cout, std::cerr);
}
