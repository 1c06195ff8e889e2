// The `gcprune` dispatcher: the table of subcommands, top-level help and version.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "clients/cli/command.h"
#include "clients/cli/health_command.h"
#include "clients/cli/run_admin_commands.h"
#include "clients/cli/run_command.h"
#include "clients/cli/sessions_command.h"

#ifndef GCPRUNE_VERSION
#define GCPRUNE_VERSION "unknown"
#endif

namespace gcprune::cli {
namespace {

void PrintUsage(std::ostream& stream) {
  stream << "usage: gcprune COMMAND [ARGS] [FLAGS]\n\n"
            "Client of the gcprune Trainer and Pruner services.\n\ncommands:\n";
  for (const Command& command : AllCommands()) {
    stream << absl::StrFormat("  %-10s %s\n", command.name, command.summary);
  }
  stream << "\n`gcprune COMMAND --help` describes a command. Servers: --trainer (default $GCPRUNE_TRAINER or\n"
            "127.0.0.1:50051), --pruner (default $GCPRUNE_PRUNER or 127.0.0.1:50052); tokens may come from\n"
            "$GCPRUNE_AUTH_TOKEN. Exit codes: 0 ok, 1 run failed or cancelled (health: not serving), 2 bad command\n"
            "line, 3 server unreachable, 4 other server error, 130 interrupted.\n";
}

const Command* FindCommand(const std::string& name) {
  for (const Command& command : AllCommands()) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

}  // namespace

const std::vector<Command>& AllCommands() {
  // Add new subcommands here (one line each), keeping the list short and the summaries to one line.
  static const std::vector<Command> kCommands = {
      {"run", "start a training run with pruning, follow it and print its report", RunRunCommand},
      {"watch", "follow a run's progress until it ends", RunWatchCommand},
      {"report", "print a run's report (tables or JSON)", RunReportCommand},
      {"runs", "list the trainer's runs", RunRunsCommand},
      {"cancel", "cancel a run", RunCancelCommand},
      {"sessions", "list the pruner's sessions", RunSessionsCommand},
      {"health", "check that a server (or one of its services) is SERVING", RunHealthCommand},
  };
  return kCommands;
}

int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  if (argc < 2) {
    PrintUsage(err);
    return kExitUsage;
  }
  const std::string first = argv[1];
  if (first == "--version" || first == "version") {
    out << "gcprune " << GCPRUNE_VERSION << "\n";
    return kExitOk;
  }
  if (first == "help" || first == "--help" || first == "-h") {
    if (argc >= 3) {
      const Command* command = FindCommand(argv[2]);
      if (command != nullptr) return command->run({"--help"}, out, err);
      err << "gcprune: unknown command '" << argv[2] << "'\n";
      return kExitUsage;
    }
    PrintUsage(out);
    return kExitOk;
  }
  const Command* command = FindCommand(first);
  if (command == nullptr) {
    err << "gcprune: unknown command '" << first << "'\n\n";
    PrintUsage(err);
    return kExitUsage;
  }
  return command->run(std::vector<std::string>(argv + 2, argv + argc), out, err);
}

}  // namespace gcprune::cli
