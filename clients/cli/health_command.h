// `gcprune health ADDR`: asks a server's grpc.health.v1 service whether it (or one of its services) is
// SERVING; the exit code says so, for scripts and container health checks.
#ifndef GCPRUNE_CLIENTS_CLI_HEALTH_COMMAND_H_
#define GCPRUNE_CLIENTS_CLI_HEALTH_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace gcprune::cli {

// Exit codes: kExitOk if SERVING (prints "ADDR: SERVING"); kExitNegative if NOT_SERVING or UNKNOWN, or
// if the service name is unknown to the server; kExitUsage for a bad command line; kExitUnreachable if
// no answer came within --timeout; kExitRpcError for any other error status (e.g. UNAUTHENTICATED).
int RunHealthCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_HEALTH_COMMAND_H_
