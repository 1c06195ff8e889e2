// `gcprune sessions`: lists the pruner's sessions (Pruner.ListSessions).
#ifndef GCPRUNE_CLIENTS_CLI_SESSIONS_COMMAND_H_
#define GCPRUNE_CLIENTS_CLI_SESSIONS_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace gcprune::cli {

// Lists the sessions of the pruner at --pruner, newest first (a table, or JSON with --json), optionally
// of one --state, at most --limit. Exit codes: kExitOk, kExitUsage, kExitUnreachable, kExitRpcError.
int RunSessionsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_SESSIONS_COMMAND_H_
