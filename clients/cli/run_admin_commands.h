// `gcprune report RUN` (and `report --sweep`), `gcprune runs` and `gcprune cancel RUN`: the trainer's unary
// calls on runs.
#ifndef GCPRUNE_CLIENTS_CLI_RUN_ADMIN_COMMANDS_H_
#define GCPRUNE_CLIENTS_CLI_RUN_ADMIN_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

namespace gcprune::cli {

// Prints RUN's report (tables, or JSON with --json), whatever the run's state. With --sweep [RUN ...], the
// phase shift of a sweep of runs instead (sweep_report.h): of the given runs, else of every SUCCEEDED run.
// Exit codes: kExitOk once printed; kExitUsage; kExitUnreachable; kExitRpcError (e.g. NOT_FOUND for an
// unknown run, or no runs to analyse).
int RunReportCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Lists the trainer's runs, newest first (a table, or JSON with --json), optionally of one --state, at most
// --limit. Exit codes: kExitOk, kExitUsage, kExitUnreachable, kExitRpcError.
int RunRunsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// Cancels RUN and prints its state; with --wait, waits until it has stopped. Exit codes: kExitOk;
// kExitUsage; kExitUnreachable; kExitRpcError (NOT_FOUND, or FAILED_PRECONDITION for a run that already
// SUCCEEDED or FAILED).
int RunCancelCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_RUN_ADMIN_COMMANDS_H_
