// Tests of `gcprune health` against real servers: in-process through RunCli, and the built binary
// against a live server and a closed port.
#include "clients/cli/health_command.h"

#include <stdio.h>
#include <sys/wait.h>

#include <array>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "clients/cli/command.h"
#include "common/server_bootstrap.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "tests/testing/status_matchers.h"
#include "tests/clients/cli/cli_runner.h"

namespace gcprune::cli {
namespace {

using ::testing::HasSubstr;

class EmptyPruner final : public gcprune::v1::Pruner::CallbackService {};

using test_util::Cli;
using test_util::Outcome;

// Runs the built binary through the shell; returns its exit code and combined output.
Outcome RunBinary(const std::string& args) {
  const std::string command = std::string(GCPRUNE_CLI_PATH) + " " + args + " 2>&1";
  Outcome outcome;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) outcome.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

// A port nothing listens on: bound by a server that is then shut down.
int ClosedPort() {
  EmptyPruner pruner;
  common::ServerOptions options;
  options.host = "127.0.0.1";
  auto server = common::GrpcServer::Start(options, {{&pruner, "gcprune.v1.Pruner"}});
  if (!server.ok()) return 1;
  return (*server)->port();
}

class HealthCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    common::ServerOptions options;
    options.host = "127.0.0.1";
    options.security.auth_token = "health-test-token";
    options.security.auth_exempt_prefixes.clear();
    ASSERT_OK_AND_ASSIGN(server_, common::GrpcServer::Start(
                                      options, {{&pruner_, gcprune::v1::Pruner::service_full_name()}}));
    open_options_.host = "127.0.0.1";
    ASSERT_OK_AND_ASSIGN(open_server_, common::GrpcServer::Start(
                                           open_options_, {{&open_pruner_, gcprune::v1::Pruner::service_full_name()}}));
  }

  EmptyPruner pruner_;
  std::unique_ptr<common::GrpcServer> server_;  // requires a token, even for health
  EmptyPruner open_pruner_;
  common::ServerOptions open_options_;
  std::unique_ptr<common::GrpcServer> open_server_;
};

TEST_F(HealthCommandTest, ServingExitsZero) {
  const Outcome whole = Cli({"health", open_server_->local_address()});
  EXPECT_EQ(whole.code, kExitOk) << whole.err;
  EXPECT_EQ(whole.out, open_server_->local_address() + ": SERVING\n");
  const Outcome pruner = Cli({"health", open_server_->local_address(), "--service", "gcprune.v1.Pruner"});
  EXPECT_EQ(pruner.code, kExitOk) << pruner.err;
  EXPECT_THAT(pruner.out, HasSubstr("gcprune.v1.Pruner: SERVING"));
}

TEST_F(HealthCommandTest, NotServingAndUnknownServiceExitOne) {
  open_server_->SetServingStatus("gcprune.v1.Pruner", false);
  const Outcome not_serving = Cli({"health", open_server_->local_address(), "--service=gcprune.v1.Pruner"});
  EXPECT_EQ(not_serving.code, kExitNegative);
  EXPECT_THAT(not_serving.out, HasSubstr("NOT_SERVING"));
  const Outcome unknown = Cli({"health", open_server_->local_address(), "--service", "x.Nope"});
  EXPECT_EQ(unknown.code, kExitNegative);
  EXPECT_THAT(unknown.err, HasSubstr("does not know the service 'x.Nope'"));
}

TEST_F(HealthCommandTest, TokenIsRequiredAndChecked) {
  const Outcome anonymous = Cli({"health", server_->local_address()});
  EXPECT_EQ(anonymous.code, kExitRpcError);
  EXPECT_THAT(anonymous.err, HasSubstr("UNAUTHENTICATED"));
  const Outcome wrong = Cli({"health", server_->local_address(), "--token", "wrong"});
  EXPECT_EQ(wrong.code, kExitRpcError);
  EXPECT_THAT(wrong.err, HasSubstr("PERMISSION_DENIED"));
  const Outcome right = Cli({"health", server_->local_address(), "--token", "health-test-token"});
  EXPECT_EQ(right.code, kExitOk) << right.err;
}

TEST_F(HealthCommandTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Cli({}).code, kExitUsage);
  EXPECT_EQ(Cli({"nonsense"}).code, kExitUsage);
  EXPECT_EQ(Cli({"health"}).code, kExitUsage);
  EXPECT_EQ(Cli({"health", "a:1", "b:2"}).code, kExitUsage);
  EXPECT_EQ(Cli({"health", "a:1", "--timeout", "0s"}).code, kExitUsage);
  const Outcome bad_file = Cli({"health", "a:1", "--tls_ca_file", "/nonexistent/ca.pem"});
  EXPECT_EQ(bad_file.code, kExitUsage);
  EXPECT_THAT(bad_file.err, HasSubstr("/nonexistent/ca.pem"));
  const Outcome help = Cli({"health", "--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("usage: gcprune health ADDR"));
  EXPECT_EQ(Cli({"help"}).code, kExitOk);
  EXPECT_EQ(Cli({"help", "health"}).code, kExitOk);
}

TEST_F(HealthCommandTest, BinaryAgainstLiveServerExitsZero) {
  const Outcome outcome = RunBinary("health " + open_server_->local_address() + " --timeout 10s");
  EXPECT_EQ(outcome.code, kExitOk) << outcome.out;
  EXPECT_THAT(outcome.out, HasSubstr("SERVING"));
}

TEST_F(HealthCommandTest, BinaryAgainstClosedPortFailsClearly) {
  const std::string address = "127.0.0.1:" + std::to_string(ClosedPort());
  const Outcome outcome = RunBinary("health " + address + " --timeout 10s");
  EXPECT_EQ(outcome.code, kExitUnreachable) << outcome.out;
  EXPECT_THAT(outcome.out, HasSubstr("gcprune health: cannot reach " + address));
  EXPECT_THAT(outcome.out, HasSubstr("Connection refused"));
}

TEST_F(HealthCommandTest, BinaryWaitingForAbsentServerTimesOut) {
  const std::string address = "127.0.0.1:" + std::to_string(ClosedPort());
  const Outcome outcome = RunBinary("health " + address + " --wait --timeout 300ms");
  EXPECT_EQ(outcome.code, kExitUnreachable) << outcome.out;
  EXPECT_THAT(outcome.out, HasSubstr("no answer from " + address + " within 300ms"));
}

}  // namespace
}  // namespace gcprune::cli
