// `gcprune run` (start a run on the trainer from flags, follow its progress, print its report) and
// `gcprune watch RUN` (follow an existing run).
#ifndef GCPRUNE_CLIENTS_CLI_RUN_COMMAND_H_
#define GCPRUNE_CLIENTS_CLI_RUN_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace gcprune::cli {

// Builds a RunSpec from the flags, calls CreateRun, follows the run's events (progress on `err`), then
// prints the report to `out` (a table, or JSON with --json). Exit codes: kExitOk if the run SUCCEEDED (or
// with --detach / --dry_run once the run is created / the spec printed); kExitNegative if it ended FAILED
// or CANCELLED; kExitUsage for a bad command line or a spec the trainer rejects as INVALID_ARGUMENT;
// kExitUnreachable if the trainer cannot be reached; kExitRpcError for other errors; kExitInterrupted
// after Ctrl-C (the run is cancelled unless --keep_on_interrupt).
int RunRunCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Follows RUN's events from the start (or --after N) to its end; with --report prints the report too.
// Exit codes as RunRunCommand; Ctrl-C stops watching only (kExitInterrupted), the run goes on.
int RunWatchCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_RUN_COMMAND_H_
