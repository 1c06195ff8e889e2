// Test helper: runs the `gcprune` command in process (RunCli) with captured output.
#ifndef GCPRUNE_TESTS_CLIENTS_CLI_CLI_RUNNER_H_
#define GCPRUNE_TESTS_CLIENTS_CLI_CLI_RUNNER_H_

#include <sstream>
#include <string>
#include <vector>

#include "clients/cli/command.h"

namespace gcprune::cli::test_util {

// The exit code and what the command printed.
struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

// `gcprune ARGS...`, in this process.
inline Outcome Cli(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"gcprune"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  std::ostringstream out;
  std::ostringstream err;
  Outcome outcome;
  outcome.code = RunCli(static_cast<int>(argv.size()), argv.data(), out, err);
  outcome.out = out.str();
  outcome.err = err.str();
  return outcome;
}

}  // namespace gcprune::cli::test_util

#endif  // GCPRUNE_TESTS_CLIENTS_CLI_CLI_RUNNER_H_
