// The subcommands of the `gcprune` command line and their shared exit codes. A subcommand is a function
// from its arguments (the words after its name) to an exit code; it writes results to `out` and
// diagnostics to `err`.
#ifndef GCPRUNE_CLIENTS_CLI_COMMAND_H_
#define GCPRUNE_CLIENTS_CLI_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace gcprune::cli {

// Exit codes of every subcommand (docs/CLI.md lists them too).
inline constexpr int kExitOk = 0;
// The command ran but the answer is negative: a run that ended FAILED or CANCELLED, a service that is not
// SERVING.
inline constexpr int kExitNegative = 1;
// Bad command line or local configuration (unreadable TLS or token file), or a run spec the trainer
// rejected as INVALID_ARGUMENT.
inline constexpr int kExitUsage = 2;
// The server could not be reached in time (connection refused, DNS, TLS handshake, deadline).
inline constexpr int kExitUnreachable = 3;
// The server answered with an error (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, ...).
inline constexpr int kExitRpcError = 4;
// Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
inline constexpr int kExitInterrupted = 130;

using CommandFunction = int (*)(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

struct Command {
  const char* name;     // e.g. "health"
  const char* summary;  // one line for `gcprune help`
  CommandFunction run;  // `--help` among args prints the command's help to `out` and returns kExitOk
};

// Every subcommand, in the order `gcprune help` lists them.
const std::vector<Command>& AllCommands();

// The whole command line: dispatches argv[1] to a subcommand; handles "help", "--help" and "--version".
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_COMMAND_H_
