// The `gcprune` dispatcher: the table of subcommands, top-level help and version.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "clients/cli/command.h"
#include "clients/cli/health_command.h"

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
  stream << "\n`gcprune COMMAND --help` describes a command. Tokens may also come from $GCPRUNE_AUTH_TOKEN.\n";
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
