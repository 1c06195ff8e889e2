// Tests of the server bootstrap over real servers on 127.0.0.1: ephemeral ports, health checking,
// reflection, bearer-token auth, TLS and mutual TLS, option validation and graceful shutdown.
#include "common/server_bootstrap.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <signal.h>
#include <stdlib.h>

#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/client_channel.h"
#include "common/file_util.h"
#include "common/grpc_status.h"
#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "gtest/gtest.h"
#include "protos/gcprune/v1/pruner.grpc.pb.h"
#include "protos/grpc/health/v1/health.grpc.pb.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::common {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::Contains;

constexpr char kToken[] = "t0ken-for-tests";

// Matches an OK StatusOr whose value equals `expected`.
MATCHER_P(HoldsValue, expected, "is OK and holds " + ::testing::PrintToString(expected)) {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  *result_listener << "holds " << ::testing::PrintToString(*arg);
  return *arg == expected;
}

std::string TestData(const std::string& name) {
  return std::string(GCPRUNE_SOURCE_DIR) + "/tests/common/testdata/" + name;
}

// Every method answers UNIMPLEMENTED: enough to see whether a call got past authentication.
class EmptyPruner final : public gcprune::v1::Pruner::CallbackService {};

ServerOptions LocalOptions() {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.shutdown_grace = absl::Milliseconds(300);
  return options;
}

std::vector<ServiceEntry> PrunerEntry(EmptyPruner* pruner) {
  return {{pruner, gcprune::v1::Pruner::service_full_name()}};
}

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
}

absl::StatusOr<HealthCheckResponse::ServingStatus> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                                               const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status();
}

absl::Status CallGetSession(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = gcprune::v1::Pruner::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  gcprune::v1::GetSessionRequest request;
  request.set_session_id("s1");
  gcprune::v1::SessionInfo info;
  return FromGrpcStatus(stub->GetSession(&context, request, &info));
}

std::shared_ptr<grpc::Channel> Dial(const GrpcServer& server, ClientChannelOptions options = {}) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeClientChannel(server.local_address(), options);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return channel.ok() ? *channel : nullptr;
}

// Waits for one completion-queue event and checks it is `tag` and succeeded.
bool Await(grpc::CompletionQueue* queue, intptr_t tag) {
  void* got = nullptr;
  bool ok = false;
  if (!queue->Next(&got, &ok)) return false;
  return ok && reinterpret_cast<intptr_t>(got) == tag;
}

// Lists services through grpc.reflection.v1alpha, with hand-encoded messages since the reflection
// types live inside grpc++_reflection: request {list_services: ""} is field 7 (tag 0x3a), empty.
absl::StatusOr<std::vector<std::string>> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  SetDeadline(&context);
  auto call = stub.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  // A failed step means the call ended; its status then says why.
  call->StartCall(reinterpret_cast<void*>(1));
  bool ok = Await(&queue, 1);
  const std::string request_bytes("\x3a\x00", 2);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  if (ok) {
    call->Write(request, reinterpret_cast<void*>(2));
    ok = Await(&queue, 2);
  }
  if (ok) {
    call->Read(&response, reinterpret_cast<void*>(3));
    ok = Await(&queue, 3);
  }
  if (ok) {
    call->WritesDone(reinterpret_cast<void*>(4));
    Await(&queue, 4);
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  Await(&queue, 5);
  if (!ok) return FromGrpcStatus(status.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "no reply") : status);

  grpc::Slice flat;
  if (!response.DumpToSingleSlice(&flat).ok()) return absl::InternalError("reflection: bad buffer");
  google::protobuf::UnknownFieldSet top;
  if (!top.ParseFromArray(flat.begin(), static_cast<int>(flat.size()))) return absl::InternalError("bad response");
  std::vector<std::string> names;
  for (int i = 0; i < top.field_count(); ++i) {
    if (top.field(i).number() != 6) continue;  // list_services_response
    google::protobuf::UnknownFieldSet list;
    list.ParseFromString(top.field(i).length_delimited());
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet service;
      service.ParseFromString(list.field(j).length_delimited());
      for (int k = 0; k < service.field_count(); ++k) names.push_back(service.field(k).length_delimited());
    }
  }
  return names;
}

TEST(GrpcServerTest, EphemeralPortServesHealth) {
  EmptyPruner pruner;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(LocalOptions(), PrunerEntry(&pruner)));
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->local_address(), "127.0.0.1:" + std::to_string(server->port()));
  auto channel = Dial(*server);
  EXPECT_THAT(CheckHealth(channel, ""), HoldsValue(HealthCheckResponse::SERVING));
  EXPECT_THAT(CheckHealth(channel, "gcprune.v1.Pruner"), HoldsValue(HealthCheckResponse::SERVING));
  EXPECT_THAT(CheckHealth(channel, "no.such.Service"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(CallGetSession(channel), StatusIs(absl::StatusCode::kUnimplemented));

  server->SetServingStatus("gcprune.v1.Pruner", false);
  EXPECT_THAT(CheckHealth(channel, "gcprune.v1.Pruner"), HoldsValue(HealthCheckResponse::NOT_SERVING));
}

TEST(GrpcServerTest, ReflectionListsServices) {
  EmptyPruner pruner;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(LocalOptions(), PrunerEntry(&pruner)));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, ListServicesByReflection(Dial(*server)));
  EXPECT_THAT(names, Contains("gcprune.v1.Pruner"));
  EXPECT_THAT(names, Contains("grpc.health.v1.Health"));
  EXPECT_THAT(names, Contains("grpc.reflection.v1alpha.ServerReflection"));
}

TEST(GrpcServerTest, ReflectionCanBeTurnedOff) {
  EmptyPruner pruner;
  ServerOptions options = LocalOptions();
  options.enable_reflection = false;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(options, PrunerEntry(&pruner)));
  EXPECT_THAT(ListServicesByReflection(Dial(*server)), StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(GrpcServerTest, TokenAuthRejectsMissingAndWrongTokens) {
  EmptyPruner pruner;
  ServerOptions options = LocalOptions();
  options.security.auth_token = kToken;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(options, PrunerEntry(&pruner)));

  auto anonymous = Dial(*server);
  EXPECT_THAT(CallGetSession(anonymous), StatusIsWithMessage(absl::StatusCode::kUnauthenticated, "Bearer"));
  EXPECT_THAT(ListServicesByReflection(anonymous), StatusIs(absl::StatusCode::kUnauthenticated));
  // Health stays open for probes by default.
  EXPECT_THAT(CheckHealth(anonymous, ""), HoldsValue(HealthCheckResponse::SERVING));

  ClientChannelOptions wrong;
  wrong.auth_token = "not-the-token";
  EXPECT_THAT(CallGetSession(Dial(*server, wrong)), StatusIs(absl::StatusCode::kPermissionDenied));

  ClientChannelOptions right;
  right.auth_token = kToken;
  auto authenticated = Dial(*server, right);
  EXPECT_THAT(CallGetSession(authenticated), StatusIs(absl::StatusCode::kUnimplemented));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, ListServicesByReflection(authenticated));
  EXPECT_THAT(names, Contains("gcprune.v1.Pruner"));
}

TEST(GrpcServerTest, TokenAuthCanCoverHealthToo) {
  EmptyPruner pruner;
  ServerOptions options = LocalOptions();
  options.security.auth_token = kToken;
  options.security.auth_exempt_prefixes.clear();
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(options, PrunerEntry(&pruner)));
  EXPECT_THAT(CheckHealth(Dial(*server), ""), StatusIs(absl::StatusCode::kUnauthenticated));
  ClientChannelOptions right;
  right.auth_token = kToken;
  EXPECT_THAT(CheckHealth(Dial(*server, right), ""), HoldsValue(HealthCheckResponse::SERVING));
}

TEST(GrpcServerTest, TlsWithTokenAuth) {
  EmptyPruner pruner;
  ServerOptions options = LocalOptions();
  options.security.tls_cert_file = TestData("server.pem");
  options.security.tls_key_file = TestData("server.key");
  options.security.auth_token = kToken;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(options, PrunerEntry(&pruner)));

  ClientChannelOptions tls;
  tls.tls_ca_file = TestData("ca.pem");
  EXPECT_THAT(CheckHealth(Dial(*server, tls), ""), HoldsValue(HealthCheckResponse::SERVING));
  EXPECT_THAT(CallGetSession(Dial(*server, tls)), StatusIs(absl::StatusCode::kUnauthenticated));
  tls.auth_token = "wrong";
  EXPECT_THAT(CallGetSession(Dial(*server, tls)), StatusIs(absl::StatusCode::kPermissionDenied));
  tls.auth_token = kToken;
  EXPECT_THAT(CallGetSession(Dial(*server, tls)), StatusIs(absl::StatusCode::kUnimplemented));

  // A plaintext client cannot talk to a TLS server.
  EXPECT_THAT(CheckHealth(Dial(*server), ""), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(GrpcServerTest, MutualTlsRequiresClientCertificate) {
  EmptyPruner pruner;
  ServerOptions options = LocalOptions();
  options.security.tls_cert_file = TestData("server.pem");
  options.security.tls_key_file = TestData("server.key");
  options.security.tls_client_ca_file = TestData("ca.pem");
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(options, PrunerEntry(&pruner)));

  ClientChannelOptions no_cert;
  no_cert.tls_ca_file = TestData("ca.pem");
  EXPECT_THAT(CheckHealth(Dial(*server, no_cert), ""), StatusIs(absl::StatusCode::kUnavailable));
  ClientChannelOptions with_cert = no_cert;
  with_cert.tls_client_cert_file = TestData("client.pem");
  with_cert.tls_client_key_file = TestData("client.key");
  EXPECT_THAT(CheckHealth(Dial(*server, with_cert), ""), HoldsValue(HealthCheckResponse::SERVING));
}

TEST(GrpcServerTest, RejectsInvalidOptions) {
  EmptyPruner pruner;
  struct Case {
    const char* what;
    void (*edit)(ServerOptions*);
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"negative port", [](ServerOptions* o) { o->port = -1; }, absl::StatusCode::kInvalidArgument, "port"},
      {"port too big", [](ServerOptions* o) { o->port = 70000; }, absl::StatusCode::kInvalidArgument, "70000"},
      {"empty host", [](ServerOptions* o) { o->host = ""; }, absl::StatusCode::kInvalidArgument, "host"},
      {"tiny messages", [](ServerOptions* o) { o->max_receive_message_bytes = 10; },
       absl::StatusCode::kInvalidArgument, "max_receive_message_bytes"},
      {"negative grace", [](ServerOptions* o) { o->shutdown_grace = absl::Seconds(-1); },
       absl::StatusCode::kInvalidArgument, "shutdown_grace"},
      {"cert without key", [](ServerOptions* o) { o->security.tls_cert_file = TestData("server.pem"); },
       absl::StatusCode::kInvalidArgument, "together"},
      {"client CA without cert", [](ServerOptions* o) { o->security.tls_client_ca_file = TestData("ca.pem"); },
       absl::StatusCode::kInvalidArgument, "client CA"},
      {"missing cert file",
       [](ServerOptions* o) {
         o->security.tls_cert_file = "/nonexistent/cert.pem";
         o->security.tls_key_file = TestData("server.key");
       },
       absl::StatusCode::kNotFound, "/nonexistent/cert.pem"},
      {"key given as cert",
       [](ServerOptions* o) {
         o->security.tls_cert_file = TestData("server.key");
         o->security.tls_key_file = TestData("server.key");
       },
       absl::StatusCode::kInvalidArgument, "CERTIFICATE"},
      {"token with space", [](ServerOptions* o) { o->security.auth_token = "a b"; },
       absl::StatusCode::kInvalidArgument, "auth token"},
      {"port file in missing directory", [](ServerOptions* o) { o->port_file = "/nonexistent/dir/port"; },
       absl::StatusCode::kNotFound, "/nonexistent/dir/port"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ServerOptions options = LocalOptions();
    c.edit(&options);
    EXPECT_THAT(GrpcServer::Start(options, PrunerEntry(&pruner)), StatusIsWithMessage(c.code, c.message));
  }
  EXPECT_THAT(GrpcServer::Start(LocalOptions(), {{nullptr, "x"}}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "null"));
  EXPECT_THAT(GrpcServer::Start(LocalOptions(), {{&pruner, ""}}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "name: empty"));
}

TEST(GrpcServerTest, BusyPortIsUnavailableAndPortFileIsWritten) {
  char pattern[] = "/tmp/gcprune_bootstrap_XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string port_file = std::string(pattern) + "/port";
  EmptyPruner first_pruner;
  ServerOptions options = LocalOptions();
  options.port_file = port_file;
  ASSERT_OK_AND_ASSIGN(auto first, GrpcServer::Start(options, PrunerEntry(&first_pruner)));
  ASSERT_OK_AND_ASSIGN(std::string written, ReadFileToString(port_file));
  EXPECT_EQ(written, std::to_string(first->port()) + "\n");

  EmptyPruner second_pruner;
  ServerOptions same_port = LocalOptions();
  same_port.port = first->port();
  EXPECT_THAT(GrpcServer::Start(same_port, PrunerEntry(&second_pruner)),
              StatusIsWithMessage(absl::StatusCode::kUnavailable, std::to_string(first->port())));
  ASSERT_EQ(system(("rm -rf '" + std::string(pattern) + "'").c_str()), 0);
}

TEST(GrpcServerTest, SigtermShutsDownGracefully) {
  EmptyPruner pruner;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(LocalOptions(), PrunerEntry(&pruner)));
  absl::Notification hook_ran;
  server->AddShutdownHook([&hook_ran] { hook_ran.Notify(); });
  // SIGTERM is ignored until the serving thread hooks it, so the raise below cannot kill the test.
  struct sigaction ignore;
  std::memset(&ignore, 0, sizeof(ignore));
  ignore.sa_handler = SIG_IGN;
  struct sigaction saved;
  ASSERT_EQ(sigaction(SIGTERM, &ignore, &saved), 0);
  absl::StatusOr<int> served = absl::UnknownError("not finished");
  std::thread serving([&] { served = ServeUntilShutdownSignal(*server, absl::Milliseconds(300)); });
  for (int i = 0; i < 1000; ++i) {
    struct sigaction current;
    ASSERT_EQ(sigaction(SIGTERM, nullptr, &current), 0);
    if (current.sa_handler != SIG_IGN) break;
    absl::SleepFor(absl::Milliseconds(5));
  }

  // A health watcher sees SERVING, then NOT_SERVING once shutdown starts, then its call ends.
  auto channel = Dial(*server);
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(&context);
  HealthCheckRequest request;
  auto watch = stub->Watch(&context, request);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  const absl::Time start = absl::Now();
  ASSERT_EQ(raise(SIGTERM), 0);
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  while (watch->Read(&update)) {
  }
  watch->Finish();
  serving.join();
  ASSERT_EQ(sigaction(SIGTERM, &saved, nullptr), 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(hook_ran.HasBeenNotified());
  ASSERT_OK_AND_ASSIGN(int signo, served);
  EXPECT_EQ(signo, SIGTERM);
  EXPECT_THAT(CheckHealth(Dial(*server), ""), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(GrpcServerTest, ShutdownByCallerEndsServing) {
  EmptyPruner pruner;
  ASSERT_OK_AND_ASSIGN(auto server, GrpcServer::Start(LocalOptions(), PrunerEntry(&pruner)));
  std::thread stopper([&server] {
    absl::SleepFor(absl::Milliseconds(50));
    server->Shutdown(absl::ZeroDuration());
  });
  ASSERT_OK_AND_ASSIGN(int signo, ServeUntilShutdownSignal(*server, absl::Seconds(1)));
  stopper.join();
  EXPECT_EQ(signo, 0);
  int hook_calls = 0;
  server->AddShutdownHook([&hook_calls] { ++hook_calls; });  // after shutdown: runs at once
  EXPECT_EQ(hook_calls, 1);
}

}  // namespace
}  // namespace gcprune::common
