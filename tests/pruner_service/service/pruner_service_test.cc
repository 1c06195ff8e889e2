// Tests of the pruner server over a real gRPC server on 127.0.0.1: whole sessions for every method with
// masks equal to the in-process PruningSession's, a table of malformed requests and their status codes,
// the unary calls, stream take-over, deletion, shutdown, duplicates, and concurrent sessions.
#include "pruner_service/service/pruner_service.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/mask_runs.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/schedule.h"
#include "pruner_service/service/wire_format.h"
#include "tests/pruner_service/service/pruner_test_util.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;
using ::gcprune::pruner::testing::CausalV2Config;
using ::gcprune::pruner::testing::CompareMasks;
using ::gcprune::pruner::testing::InProcessPruner;
using ::gcprune::pruner::testing::InProcessPrunerOptions;
using ::gcprune::pruner::testing::IsServing;
using ::gcprune::pruner::testing::ReceivedMask;
using ::gcprune::pruner::testing::ReferenceMasks;
using ::gcprune::pruner::testing::SendOptions;
using ::gcprune::pruner::testing::SessionClient;
using ::gcprune::pruner::testing::SyntheticRun;
using ::gcprune::pruner::testing::TempDir;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

constexpr int64_t kStepsPerIteration = 12;

InProcessPrunerOptions TestOptions() {
  InProcessPrunerOptions options;
  options.manager.max_sessions = 1000;
  options.manager.total_memory_bytes = int64_t{1} << 40;
  options.manager.max_session_memory_bytes = int64_t{1} << 30;
  options.manager.session.core.default_memory_budget_bytes = 16 << 20;
  options.manager.session.core.solver_threads = 1;
  return options;
}

class PrunerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(TestOptions()); }

  void StartServer(const InProcessPrunerOptions& options) {
    server_.reset();
    ASSERT_OK_AND_ASSIGN(server_, InProcessPruner::Start(dir_.path() + "/state", options));
    stub_ = server_->NewStub();
  }

  grpc::ClientContext* Context() {
    contexts_.push_back(std::make_unique<grpc::ClientContext>());
    contexts_.back()->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return contexts_.back().get();
  }

  absl::StatusOr<v1::SessionInfo> GetSession(const std::string& id) {
    v1::GetSessionRequest request;
    request.set_session_id(id);
    v1::SessionInfo info;
    absl::Status status = common::FromGrpcStatus(stub_->GetSession(Context(), request, &info));
    if (!status.ok()) return status;
    return info;
  }

  // Streams the steps of iteration j of `run` (or its weights, for the magnitude methods) and ends it.
  absl::StatusOr<ReceivedMask> RunIteration(SessionClient& client, const SyntheticRun& run, const v1::Opened& opened,
                                            int j, const SendOptions& send = {}) {
    if (opened.wants_steps()) {
      for (int64_t step = run.FirstStep(j); step <= run.LastStep(j); ++step) {
        if (!client.SendStep(run, step, j, send)) return absl::InternalError("stream broken");
      }
      GCPRUNE_RETURN_IF_ERROR(client.WaitForAck(run.LastStep(j)));
    }
    if (opened.wants_weights() && !client.SendWeights(run, j, send)) return absl::InternalError("stream broken");
    return client.EndIteration(j, opened.wants_steps() ? run.LastStep(j) : -1);
  }

  TempDir dir_;
  std::unique_ptr<InProcessPruner> server_;
  std::unique_ptr<v1::Pruner::Stub> stub_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
};

// ---------------------------------------------------------------------------------------------------
// Whole sessions: the service adds no drift.

struct MethodCase {
  std::string name;
  v1::MethodConfig method;
  SendOptions send;
  bool scheduled = true;  // the achieved count must equal the schedule's exactly
};

v1::MethodConfig WithMethod(v1::Method method, int iterations, double target) {
  v1::MethodConfig config;
  config.set_method(method);
  config.mutable_schedule()->set_iterations(iterations);
  config.mutable_schedule()->set_target_sparsity(target);
  config.set_seed(11);
  return config;
}

std::vector<MethodCase> MethodCases() {
  SendOptions bf16;
  bf16.encoding = v1::VALUE_ENCODING_BFLOAT16;
  bf16.reverse_order = true;
  bf16.chunk_elements = 100;
  SendOptions f16;
  f16.encoding = v1::VALUE_ENCODING_FLOAT16;
  SendOptions bytes;
  bytes.as_bytes = true;
  bytes.chunk_elements = 5000;
  v1::MethodConfig v1_momentum = WithMethod(v1::METHOD_CAUSAL_V1, 3, 0);
  v1_momentum.set_v1_momentum(true);
  v1_momentum.mutable_lasso_sgd()->set_l1(1e-9);
  v1::MethodConfig v1_plain = WithMethod(v1::METHOD_CAUSAL_V1, 3, 0);
  v1_plain.mutable_lasso_sgd()->set_l1(1e-9);  // the LeNet-5 default 1e-14 prunes nothing at this scale
  v1::MethodConfig v2_exact = CausalV2Config(3, 0.6);
  v2_exact.set_solver(v1::SOLVER_EXACT);
  v1::MethodConfig v2_bf16_store = CausalV2Config(3, 0.6);
  v2_bf16_store.set_sample_encoding(v1::VALUE_ENCODING_BFLOAT16);
  v2_bf16_store.set_reference_ranking(true);
  return {
      {"causal_v2", CausalV2Config(3, 0.6), {}, true},
      {"causal_v2_bfloat16_reversed_chunks", CausalV2Config(3, 0.6), bf16, true},
      {"causal_v2_float16", CausalV2Config(3, 0.6), f16, true},
      {"causal_v2_float32_bytes_exact_solver", v2_exact, bytes, true},
      {"causal_v2_bfloat16_store_reference_ranking", v2_bf16_store, {}, true},
      {"causal_v1", v1_plain, {}, false},
      {"causal_v1_momentum", v1_momentum, {}, false},
      {"magnitude_global", WithMethod(v1::METHOD_MAGNITUDE_GLOBAL, 3, 0.6), {}, true},
      {"magnitude_layer", WithMethod(v1::METHOD_MAGNITUDE_LAYER, 3, 0.6), {}, false},
      {"random", WithMethod(v1::METHOD_RANDOM, 3, 0.6), {}, true},
  };
}

void PrintTo(const MethodCase& c, std::ostream* os) { *os << c.name; }

class MethodsTest : public PrunerServiceTest, public ::testing::WithParamInterface<MethodCase> {};

TEST_P(MethodsTest, MasksEqualTheInProcessSessionAndTheScheduledCount) {
  const MethodCase& c = GetParam();
  const SyntheticRun run(SyntheticRun::SmallLayout(), 5, kStepsPerIteration);
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), c.method, c.name));
  EXPECT_EQ(opened.next_step(), 0);
  EXPECT_EQ(opened.completed_iterations(), 0);
  EXPECT_EQ(opened.total_iterations(), 3);
  EXPECT_EQ(opened.state(), v1::SESSION_STATE_COLLECTING);
  EXPECT_EQ(opened.max_message_bytes(), 4 << 20);
  EXPECT_GE(opened.recommended_chunk_elements(), 1);
  EXPECT_EQ(opened.layout().SerializeAsString(), run.layout().SerializeAsString());
  ASSERT_OK_AND_ASSIGN(MethodConfig resolved, MethodConfigFromProto(opened.method(), "opened.method"));
  ASSERT_OK_AND_ASSIGN(Schedule schedule, MakeSchedule(resolved));

  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, opened.method(), 3, c.send.encoding));
  int64_t pruned_before = 0;
  for (int j = 1; j <= 3; ++j) {
    SCOPED_TRACE(absl::StrCat("iteration ", j));
    ASSERT_OK_AND_ASSIGN(ReceivedMask mask, RunIteration(client, run, opened, j, c.send));
    EXPECT_EQ(mask.iteration, j);
    EXPECT_EQ(mask.apply_at_step, opened.wants_steps() ? run.LastStep(j) + 1 : 0);
    EXPECT_OK(CompareMasks(expected[static_cast<size_t>(j - 1)], mask));
    EXPECT_EQ(mask.last.pruned(), expected[static_cast<size_t>(j - 1)].num_pruned());
    EXPECT_EQ(mask.last.kept() + mask.last.pruned(), run.num_features());
    EXPECT_EQ(mask.last.final_iteration(), j == 3);
    if (c.scheduled) {
      EXPECT_EQ(mask.last.pruned(), schedule.TargetPrunedCount(j, run.num_features(), pruned_before));
      EXPECT_DOUBLE_EQ(mask.last.target_sparsity(), schedule.TargetSparsity(j));
    }
    pruned_before = mask.last.pruned();
  }
  std::cout << c.name << ": " << pruned_before << " of " << run.num_features() << " pruned\n";
  EXPECT_GT(pruned_before, 0);  // the comparison above is not between two all-kept masks
  EXPECT_OK(client.Finish());

  ASSERT_OK_AND_ASSIGN(v1::SessionInfo info, GetSession(opened.session_id()));
  EXPECT_EQ(info.state(), v1::SESSION_STATE_COMPLETED);
  EXPECT_EQ(info.completed_iterations(), 3);
  EXPECT_DOUBLE_EQ(info.global_sparsity(), static_cast<double>(pruned_before) / run.num_features());
  v1::GetReportRequest report_request;
  report_request.set_session_id(opened.session_id());
  v1::SessionReport report;
  ASSERT_TRUE(stub_->GetReport(Context(), report_request, &report).ok());
  ASSERT_EQ(report.iterations_size(), 3);
  EXPECT_EQ(report.iterations(2).iteration(), 3);
  EXPECT_DOUBLE_EQ(report.iterations(2).achieved_sparsity(), info.global_sparsity());
  if (opened.wants_steps()) {
    EXPECT_EQ(report.iterations(1).first_step(), run.FirstStep(2));
    EXPECT_EQ(report.iterations(1).last_step(), run.LastStep(2));
    EXPECT_TRUE(report.iterations(0).has_fit());
  }
}

INSTANTIATE_TEST_SUITE_P(AllMethods, MethodsTest, ::testing::ValuesIn(MethodCases()),
                         [](const ::testing::TestParamInfo<MethodCase>& info) { return info.param.name; });

TEST_F(PrunerServiceTest, MaskUpdatesSplitIntoPartsAndGetMasksPages) {
  InProcessPrunerOptions options = TestOptions();
  options.manager.session.mask_part_bytes = 16;  // 150 bytes of masks: about ten parts
  StartServer(options);
  const SyntheticRun run(SyntheticRun::SmallLayout(), 9, kStepsPerIteration);
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, opened.method(), 1));
  ASSERT_OK_AND_ASSIGN(ReceivedMask mask, RunIteration(client, run, opened, 1));
  EXPECT_GE(mask.parts, 9);
  EXPECT_OK(CompareMasks(expected[0], mask));

  // GetMasks pages through the same mask with the same page size.
  std::map<uint32_t, std::vector<v1::TensorMask>> runs;
  v1::GetMasksRequest request;
  request.set_session_id(opened.session_id());
  int pages = 0;
  v1::MaskUpdate last;
  do {
    v1::GetMasksResponse page;
    ASSERT_TRUE(stub_->GetMasks(Context(), request, &page).ok());
    ++pages;
    EXPECT_EQ(page.masks().iteration(), 1);
    EXPECT_EQ(page.masks().apply_at_step(), run.LastStep(1) + 1);
    for (const v1::TensorMask& r : page.masks().masks()) runs[r.tensor_index()].push_back(r);
    if (page.next_page_token().empty()) {
      EXPECT_TRUE(page.masks().last_part());
      last = page.masks();
    } else {
      EXPECT_FALSE(page.masks().last_part());
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  EXPECT_EQ(pages, mask.parts);
  EXPECT_EQ(last.pruned(), mask.last.pruned());
  ReceivedMask paged;
  for (auto& [tensor, tensor_runs] : runs) {
    common::PackedMaskAssembler assembler(tensor == 0 ? 960 : 240);
    for (const v1::TensorMask& r : tensor_runs) ASSERT_OK(assembler.Add(r));
    ASSERT_OK_AND_ASSIGN(paged.packed[tensor], assembler.Finish());
  }
  EXPECT_OK(CompareMasks(expected[0], paged));

  // One tensor, and iteration 0 (all kept).
  v1::GetMasksRequest one;
  one.set_session_id(opened.session_id());
  one.set_iteration(0);
  one.add_tensor_indices(2);
  v1::GetMasksResponse page;
  ASSERT_TRUE(stub_->GetMasks(Context(), one, &page).ok());
  ASSERT_GT(page.masks().masks_size(), 0);
  EXPECT_EQ(page.masks().masks(0).tensor_index(), 2u);
  EXPECT_EQ(page.masks().masks(0).bits(), std::string(16, '\xff'));

  struct BadMasks {
    std::string name;
    std::function<void(v1::GetMasksRequest*)> mutate;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<BadMasks> bad = {
      {"empty id", [](v1::GetMasksRequest* r) { r->clear_session_id(); }, absl::StatusCode::kInvalidArgument,
       "session_id"},
      {"unknown id", [](v1::GetMasksRequest* r) { r->set_session_id("nope"); }, absl::StatusCode::kNotFound, "nope"},
      {"future iteration", [](v1::GetMasksRequest* r) { r->set_iteration(2); }, absl::StatusCode::kNotFound,
       "has not completed"},
      {"negative iteration", [](v1::GetMasksRequest* r) { r->set_iteration(-1); },
       absl::StatusCode::kInvalidArgument, "iteration: -1"},
      {"bias tensor", [](v1::GetMasksRequest* r) { r->add_tensor_indices(1); }, absl::StatusCode::kInvalidArgument,
       "tensor_indices[0]: 1 ('fc1.bias') is not prunable"},
      {"tensor out of range", [](v1::GetMasksRequest* r) { r->add_tensor_indices(3); },
       absl::StatusCode::kInvalidArgument, "out of range"},
      {"repeated tensor",
       [](v1::GetMasksRequest* r) {
         r->add_tensor_indices(0);
         r->add_tensor_indices(0);
       },
       absl::StatusCode::kInvalidArgument, "repeated"},
      {"bad token", [](v1::GetMasksRequest* r) { r->set_page_token("1.9.0"); }, absl::StatusCode::kInvalidArgument,
       "page_token"},
  };
  for (const BadMasks& b : bad) {
    SCOPED_TRACE(b.name);
    v1::GetMasksRequest r;
    r.set_session_id(opened.session_id());
    b.mutate(&r);
    v1::GetMasksResponse response;
    EXPECT_THAT(common::FromGrpcStatus(stub_->GetMasks(Context(), r, &response)),
                StatusIsWithMessage(b.code, b.message));
  }
}

// ---------------------------------------------------------------------------------------------------
// Malformed requests.

v1::SessionRequest Begin(int64_t step, int iteration, double lr = 0.01, double loss_before = 1.0,
                         double loss_after = 0.9, double momentum = 0) {
  v1::SessionRequest r;
  v1::StepBegin* b = r.mutable_step_begin();
  b->set_step(step);
  b->set_iteration(iteration);
  b->set_learning_rate(lr);
  b->set_loss_before(loss_before);
  b->set_loss_after(loss_after);
  b->set_momentum(momentum);
  return r;
}

v1::SessionRequest Chunk(int64_t step, uint32_t tensor, int64_t offset, int64_t count) {
  v1::SessionRequest r;
  r.mutable_step_chunk()->set_step(step);
  v1::TensorChunk* c = r.mutable_step_chunk()->add_deltas();
  c->set_tensor_index(tensor);
  c->set_offset(offset);
  for (int64_t i = 0; i < count; ++i) c->add_values(1e-3f);
  return r;
}

v1::SessionRequest Commit(int64_t step) {
  v1::SessionRequest r;
  r.mutable_step_commit()->set_step(step);
  return r;
}

v1::SessionRequest End(int iteration, int64_t last_step) {
  v1::SessionRequest r;
  r.mutable_iteration_end()->set_iteration(iteration);
  r.mutable_iteration_end()->set_last_step(last_step);
  return r;
}

// A whole step 0 of SmallLayout.
std::vector<v1::SessionRequest> FullStep(int64_t step, int iteration) {
  return {Begin(step, iteration), Chunk(step, 0, 0, 960), Chunk(step, 2, 0, 240), Commit(step)};
}

v1::SessionRequest Create(const v1::Layout& layout, const v1::MethodConfig& method) {
  v1::SessionRequest r;
  *r.mutable_open()->mutable_create()->mutable_layout() = layout;
  *r.mutable_open()->mutable_create()->mutable_method() = method;
  return r;
}

v1::SessionRequest ResumeRequest(const std::string& id) {
  v1::SessionRequest r;
  r.mutable_open()->mutable_resume()->set_session_id(id);
  return r;
}

struct BadCase {
  std::string name;
  bool open_first;  // a valid causal-v2 session is created before `requests`
  std::function<std::vector<v1::SessionRequest>(const std::string& completed_id)> requests;
  absl::StatusCode code;
  std::string message;
};

std::vector<BadCase> BadCases() {
  using R = std::vector<v1::SessionRequest>;
  const v1::Layout layout = SyntheticRun::SmallLayout();
  auto with_chunk = [](std::function<void(v1::TensorChunk*)> mutate) {
    v1::SessionRequest c = Chunk(0, 0, 0, 4);
    mutate(c.mutable_step_chunk()->mutable_deltas(0));
    return R{Begin(0, 1), c};
  };
  auto create_with = [layout](std::function<void(v1::NewSession*)> mutate) {
    v1::SessionRequest r = Create(layout, CausalV2Config(2, 0.5));
    mutate(r.mutable_open()->mutable_create());
    return R{r};
  };
  return {
      {"first_message_not_open", false, [](auto&) { return R{Commit(0)}; }, absl::StatusCode::kFailedPrecondition,
       "first message of a Session stream must be open"},
      {"empty_request", false, [](auto&) { return R{v1::SessionRequest()}; }, absl::StatusCode::kInvalidArgument,
       "empty SessionRequest"},
      {"open_without_target", false,
       [](auto&) {
         v1::SessionRequest r;
         r.mutable_open();
         return R{r};
       },
       absl::StatusCode::kInvalidArgument, "neither create nor resume"},
      {"empty_layout", false, [create_with](auto&) { return create_with([](v1::NewSession* s) { s->clear_layout(); }); },
       absl::StatusCode::kInvalidArgument, "open.create.layout.tensors: 0 tensors"},
      {"zero_dimension", false,
       [create_with](auto&) {
         return create_with([](v1::NewSession* s) { s->mutable_layout()->mutable_tensors(0)->set_shape(0, 0); });
       },
       absl::StatusCode::kInvalidArgument, "open.create.layout.tensors[0].shape[0]: 0"},
      {"bad_target_sparsity", false,
       [create_with](auto&) {
         return create_with([](v1::NewSession* s) { s->mutable_method()->mutable_schedule()->set_target_sparsity(1.5); });
       },
       absl::StatusCode::kInvalidArgument, "open.create.method.schedule.target_sparsity"},
      {"float16_samples", false,
       [create_with](auto&) {
         return create_with(
             [](v1::NewSession* s) { s->mutable_method()->set_sample_encoding(v1::VALUE_ENCODING_FLOAT16); });
       },
       absl::StatusCode::kInvalidArgument, "open.create.method.sample_encoding"},
      {"long_label", false,
       [create_with](auto&) { return create_with([](v1::NewSession* s) { s->set_label(std::string(300, 'x')); }); },
       absl::StatusCode::kInvalidArgument, "open.create.label: 300 bytes"},
      {"budget_above_limit", false,
       [create_with](auto&) {
         return create_with([](v1::NewSession* s) { s->mutable_method()->set_memory_budget_bytes(int64_t{1} << 40); });
       },
       absl::StatusCode::kResourceExhausted, "per-session limit of 1073741824 bytes"},
      {"budget_below_one_sample", false,
       [create_with](auto&) {
         return create_with([](v1::NewSession* s) { s->mutable_method()->set_memory_budget_bytes(1000); });
       },
       absl::StatusCode::kResourceExhausted, "cannot hold one sample of 4800 bytes"},
      {"resume_unknown", false, [](auto&) { return R{ResumeRequest("0123abcd")}; }, absl::StatusCode::kNotFound,
       "open.resume.session_id: no session '0123abcd'"},
      {"resume_malformed_id", false, [](auto&) { return R{ResumeRequest("../../etc")}; },
       absl::StatusCode::kInvalidArgument, "open.resume.session_id"},
      {"resume_other_layout", false,
       [](const std::string& id) {
         v1::SessionRequest r = ResumeRequest(id);
         *r.mutable_open()->mutable_resume()->mutable_expected_layout() = SyntheticRun::WideLayout(3, 3);
         return R{r};
       },
       absl::StatusCode::kFailedPrecondition, "open.resume.expected_layout.tensors[0]"},
      {"step_in_completed_session", false,
       [](const std::string& id) { return R{ResumeRequest(id), Begin(0, 1)}; }, absl::StatusCode::kFailedPrecondition,
       "is COMPLETED and read-only"},
      {"second_open", true, [](const std::string& id) { return R{ResumeRequest(id)}; },
       absl::StatusCode::kFailedPrecondition, "the stream is already open"},
      {"learning_rate_nan", true, [](auto&) { return R{Begin(0, 1, std::nan(""))}; },
       absl::StatusCode::kInvalidArgument, "step_begin.learning_rate: nan"},
      {"learning_rate_zero", true, [](auto&) { return R{Begin(0, 1, 0.0)}; }, absl::StatusCode::kInvalidArgument,
       "step_begin.learning_rate: 0"},
      {"loss_before_nan", true, [](auto&) { return R{Begin(0, 1, 0.01, std::nan(""))}; },
       absl::StatusCode::kInvalidArgument, "step_begin.loss_before: NaN in step 0"},
      {"loss_after_nan", true, [](auto&) { return R{Begin(0, 1, 0.01, 1.0, std::nan(""))}; },
       absl::StatusCode::kInvalidArgument, "step_begin.loss_after: NaN"},
      {"momentum_one", true, [](auto&) { return R{Begin(0, 1, 0.01, 1.0, 0.9, 1.0)}; },
       absl::StatusCode::kInvalidArgument, "step_begin.momentum: 1"},
      {"negative_step", true, [](auto&) { return R{Begin(-1, 1)}; }, absl::StatusCode::kInvalidArgument,
       "step_begin.step: -1"},
      {"step_gap", true, [](auto&) { return R{Begin(2, 1)}; }, absl::StatusCode::kOutOfRange,
       "step_begin.step: 2, but step 0 is the next expected"},
      {"gap_after_steps", true,
       [](auto&) {
         R r = FullStep(0, 1);
         r.push_back(Begin(5, 1));
         return r;
       },
       absl::StatusCode::kOutOfRange, "step 1 is the next expected"},
      {"wrong_iteration", true, [](auto&) { return R{Begin(0, 2)}; }, absl::StatusCode::kFailedPrecondition,
       "step_begin.iteration: 2 in step 0, but iteration 1 is being collected"},
      {"begin_while_open", true, [](auto&) { return R{Begin(0, 1), Begin(1, 1)}; },
       absl::StatusCode::kFailedPrecondition, "step 0 is open"},
      {"chunk_without_begin", true, [](auto&) { return R{Chunk(0, 0, 0, 4)}; }, absl::StatusCode::kFailedPrecondition,
       "no step is open"},
      {"chunk_of_other_step", true, [](auto&) { return R{Begin(0, 1), Chunk(1, 0, 0, 4)}; },
       absl::StatusCode::kFailedPrecondition, "step_chunk.step: 1, but the open step is 0"},
      {"chunk_without_runs", true,
       [](auto&) {
         v1::SessionRequest c;
         c.mutable_step_chunk()->set_step(0);
         return R{Begin(0, 1), c};
       },
       absl::StatusCode::kInvalidArgument, "step_chunk.deltas: no runs"},
      {"tensor_index_out_of_range", true, [](auto&) { return R{Begin(0, 1), Chunk(0, 7, 0, 4)}; },
       absl::StatusCode::kInvalidArgument, "step_chunk.deltas[0].tensor_index: 7 is out of range"},
      {"non_prunable_tensor", true, [](auto&) { return R{Begin(0, 1), Chunk(0, 1, 0, 4)}; },
       absl::StatusCode::kInvalidArgument, "'fc1.bias' (1) is not prunable"},
      {"chunk_past_the_end", true, [](auto&) { return R{Begin(0, 1), Chunk(0, 2, 230, 20)}; },
       absl::StatusCode::kInvalidArgument, "elements [230, 250) out of range, the tensor has 240 elements"},
      {"chunk_overlap", true, [](auto&) { return R{Begin(0, 1), Chunk(0, 0, 0, 10), Chunk(0, 0, 5, 10)}; },
       absl::StatusCode::kInvalidArgument, "overlap"},
      {"values_and_data", true,
       [with_chunk](auto&) { return with_chunk([](v1::TensorChunk* c) { c->set_data("abcd"); }); },
       absl::StatusCode::kInvalidArgument, "step_chunk.deltas[0]: tensor 0 offset 0: both values and data are set"},
      {"odd_bfloat16_bytes", true,
       [with_chunk](auto&) {
         return with_chunk([](v1::TensorChunk* c) {
           c->clear_values();
           c->set_encoding(v1::VALUE_ENCODING_BFLOAT16);
           c->set_data("abc");
         });
       },
       absl::StatusCode::kInvalidArgument, "3 bytes is not a multiple of 2"},
      {"values_with_bfloat16", true,
       [with_chunk](auto&) {
         return with_chunk([](v1::TensorChunk* c) { c->set_encoding(v1::VALUE_ENCODING_BFLOAT16); });
       },
       absl::StatusCode::kInvalidArgument, "values: only for FLOAT32"},
      {"unknown_encoding", true,
       [with_chunk](auto&) {
         return with_chunk([](v1::TensorChunk* c) { c->set_encoding(static_cast<v1::ValueEncoding>(9)); });
       },
       absl::StatusCode::kInvalidArgument, "encoding: unknown value 9"},
      {"commit_incomplete", true, [](auto&) { return R{Begin(0, 1), Chunk(0, 0, 0, 960), Commit(0)}; },
       absl::StatusCode::kInvalidArgument, "elements [0, 240) of 'fc2.weight' (tensor 2, group 0) missing"},
      {"commit_of_other_step", true, [](auto&) { return R{Begin(0, 1), Commit(1)}; },
       absl::StatusCode::kFailedPrecondition, "step_commit.step: 1, but the open step is 0"},
      {"iteration_end_last_step", true,
       [](auto&) {
         R r = FullStep(0, 1);
         r.push_back(End(1, 5));
         return r;
       },
       absl::StatusCode::kOutOfRange, "iteration_end.last_step: 5, but the highest committed step is 0"},
      {"iteration_end_wrong_iteration", true, [](auto&) { return R{End(2, -1)}; },
       absl::StatusCode::kFailedPrecondition, "iteration_end.iteration: 2, but iteration 1 is being collected"},
      {"iteration_end_without_samples", true, [](auto&) { return R{End(1, -1)}; },
       absl::StatusCode::kFailedPrecondition, "no sample to fit"},
      {"iteration_end_with_open_step", true,
       [](auto&) {
         R r = FullStep(0, 1);
         r.push_back(Begin(1, 1));
         r.push_back(End(1, 0));
         return r;
       },
       absl::StatusCode::kFailedPrecondition, "step 1 is open"},
      {"iteration_end_zero", true, [](auto&) { return R{End(0, -1)}; }, absl::StatusCode::kInvalidArgument,
       "iteration_end.iteration: 0"},
      {"weights_of_future_iteration", true,
       [](auto&) {
         v1::SessionRequest w;
         w.mutable_iteration_weights()->set_iteration(3);
         return R{w};
       },
       absl::StatusCode::kFailedPrecondition, "iteration_weights.iteration: 3, but iteration 1 is being collected"},
      {"magnitude_without_weights", false,
       [layout](auto&) {
         v1::MethodConfig m;
         m.set_method(v1::METHOD_MAGNITUDE_GLOBAL);
         return R{Create(layout, m), End(1, -1)};
       },
       absl::StatusCode::kInvalidArgument, "the iteration_weights of iteration 1 are missing"},
      {"magnitude_partial_weights", false,
       [layout](auto&) {
         v1::MethodConfig m;
         m.set_method(v1::METHOD_MAGNITUDE_GLOBAL);
         v1::SessionRequest w;
         w.mutable_iteration_weights()->set_iteration(1);
         v1::TensorChunk* c = w.mutable_iteration_weights()->add_weights();
         c->set_tensor_index(0);
         for (int i = 0; i < 960; ++i) c->add_values(0.5f);
         return R{Create(layout, m), w, End(1, -1)};
       },
       absl::StatusCode::kInvalidArgument, "elements [0, 240) of 'fc2.weight'"},
      {"oversized_message", true,
       [](auto&) {
         v1::SessionRequest c = Chunk(0, 0, 0, 1);
         c.mutable_step_chunk()->mutable_deltas(0)->clear_values();
         c.mutable_step_chunk()->mutable_deltas(0)->set_data(std::string(5 << 20, '\0'));
         return R{Begin(0, 1), c};
       },
       absl::StatusCode::kResourceExhausted, ""},
  };
}

TEST_F(PrunerServiceTest, MalformedRequestsGetTheirStatusAndTheServerKeepsServing) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 3, 2);
  std::string completed_id;
  {
    SessionClient client(stub_.get());
    ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
    completed_id = opened.session_id();
    ASSERT_OK(client.Close(/*complete=*/true));
  }
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    SessionClient client(stub_.get(), absl::Seconds(20));
    if (c.open_first) ASSERT_OK(client.Create(run.layout(), CausalV2Config(2, 0.5)).status());
    for (const v1::SessionRequest& request : c.requests(completed_id)) {
      if (!client.Write(request)) break;
    }
    EXPECT_THAT(client.Finish(), StatusIsWithMessage(c.code, c.message));
  }
  EXPECT_TRUE(IsServing(server_->address()));
  EXPECT_TRUE(IsServing(server_->address(), "gcprune.v1.Pruner"));
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
  ASSERT_TRUE(client.SendStep(run, 0, 1));
  EXPECT_OK(client.WaitForAck(0));
  EXPECT_OK(client.Close(false));
}

TEST_F(PrunerServiceTest, NonFiniteInputsAreAcceptedWithWarnings) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 3, 2);
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
  v1::SessionRequest chunk = Chunk(0, 0, 0, 960);
  chunk.mutable_step_chunk()->mutable_deltas(0)->set_values(3, std::numeric_limits<float>::infinity());
  chunk.mutable_step_chunk()->mutable_deltas(0)->set_values(4, std::nanf(""));
  for (const v1::SessionRequest& r : {Begin(0, 1, 0.01, std::numeric_limits<double>::infinity()), chunk,
                                      Chunk(0, 2, 0, 240), Commit(0)}) {
    ASSERT_TRUE(client.Write(r));
  }
  ASSERT_OK(client.WaitForAck(0));
  std::vector<std::string> warnings;
  for (const v1::SessionResponse& r : client.history()) {
    if (r.has_error()) {
      EXPECT_EQ(r.error().code(), 0);
      warnings.push_back(r.error().message());
    }
  }
  EXPECT_THAT(warnings, ::testing::ElementsAre(::testing::HasSubstr("2 non-finite deltas"),
                                               ::testing::HasSubstr("an infinite loss")));
  EXPECT_OK(client.Close(false));
}

// ---------------------------------------------------------------------------------------------------
// Stream semantics.

TEST_F(PrunerServiceTest, DuplicatesAreAckedAndIgnoredAndIterationEndIsIdempotent) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 21, kStepsPerIteration);
  std::string id;
  v1::Opened opened;
  {
    SessionClient client(stub_.get());
    ASSERT_OK_AND_ASSIGN(opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
    id = opened.session_id();
    for (int64_t step = 0; step < 6; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
    ASSERT_OK(client.WaitForAck(5));
    // A partly sent step is dropped with the stream.
    ASSERT_TRUE(client.Write(Begin(6, 1)));
    ASSERT_TRUE(client.Write(Chunk(6, 0, 0, 10)));
    client.Cancel();
  }
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened resumed, client.Resume(id));
  EXPECT_EQ(resumed.next_step(), 6);
  EXPECT_EQ(resumed.completed_iterations(), 0);
  // A client that resends more than it must: steps 3..5 are duplicates.
  for (int64_t step = 3; step < kStepsPerIteration; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
  ASSERT_OK(client.WaitForAck(kStepsPerIteration - 1));
  ASSERT_OK_AND_ASSIGN(v1::SessionInfo info, GetSession(id));
  EXPECT_EQ(info.stored_samples(), kStepsPerIteration);
  EXPECT_EQ(info.next_step(), kStepsPerIteration);
  EXPECT_TRUE(info.attached());

  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, opened.method(), 1));
  ASSERT_OK_AND_ASSIGN(ReceivedMask first, client.EndIteration(1, run.LastStep(1)));
  EXPECT_OK(CompareMasks(expected[0], first));
  ASSERT_OK_AND_ASSIGN(ReceivedMask again, client.EndIteration(1, run.LastStep(1)));
  EXPECT_OK(CompareMasks(expected[0], again));
  // Duplicates of the completed iteration are still acked.
  ASSERT_TRUE(client.SendStep(run, 4, 1));
  ASSERT_TRUE(client.Write(End(1, run.LastStep(1))));  // a marker: the mask comes after the ack
  ASSERT_OK(client.ReadMask().status());
  int acks_after = 0;
  for (const v1::SessionResponse& r : client.history()) acks_after += r.has_ack() ? 1 : 0;
  EXPECT_GT(acks_after, 0);
  EXPECT_OK(client.Close(false));

  // A resume after the iteration sends the latest mask right after Opened.
  SessionClient later(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened reopened, later.Resume(id));
  EXPECT_EQ(reopened.completed_iterations(), 1);
  EXPECT_EQ(reopened.next_step(), kStepsPerIteration);
  ASSERT_OK_AND_ASSIGN(ReceivedMask latest, later.ReadMask());
  EXPECT_EQ(latest.iteration, 1);
  EXPECT_OK(CompareMasks(expected[0], latest));
  EXPECT_OK(later.Close(false));
}

TEST_F(PrunerServiceTest, RestartIterationDiscardsTheStoredSamples) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 4, kStepsPerIteration);
  SessionClient first(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, first.Create(run.layout(), CausalV2Config(2, 0.5)));
  for (int64_t step = 0; step < 5; ++step) ASSERT_TRUE(first.SendStep(run, step, 1));
  ASSERT_OK(first.WaitForAck(4));
  EXPECT_OK(first.Close(false));

  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened resumed, client.Resume(opened.session_id(), /*restart_iteration=*/true));
  EXPECT_EQ(resumed.next_step(), 5);  // numbers are never reused
  ASSERT_OK_AND_ASSIGN(v1::SessionInfo info, GetSession(opened.session_id()));
  EXPECT_EQ(info.stored_samples(), 0);
  for (int64_t step = 5; step < 9; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
  ASSERT_OK(client.WaitForAck(8));
  ASSERT_OK_AND_ASSIGN(ReceivedMask mask, client.EndIteration(1, 8));
  EXPECT_EQ(mask.apply_at_step, 9);
  EXPECT_OK(client.Close(false));
  v1::GetReportRequest request;
  request.set_session_id(opened.session_id());
  v1::SessionReport report;
  ASSERT_TRUE(stub_->GetReport(Context(), request, &report).ok());
  ASSERT_EQ(report.iterations_size(), 1);
  EXPECT_EQ(report.iterations(0).first_step(), 5);
  EXPECT_EQ(report.iterations(0).num_samples(), 4);
}

TEST_F(PrunerServiceTest, ASecondOpenTakesTheSessionOver) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 4, kStepsPerIteration);
  SessionClient first(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, first.Create(run.layout(), CausalV2Config(2, 0.5)));
  ASSERT_TRUE(first.SendStep(run, 0, 1));
  ASSERT_OK(first.WaitForAck(0));
  SessionClient second(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened resumed, second.Resume(opened.session_id()));
  EXPECT_EQ(resumed.next_step(), 1);
  EXPECT_THAT(first.Finish(), StatusIsWithMessage(absl::StatusCode::kAborted, "opened by another stream"));
  ASSERT_TRUE(second.SendStep(run, 1, 1));
  EXPECT_OK(second.WaitForAck(1));
  EXPECT_OK(second.Close(false));
}

TEST_F(PrunerServiceTest, UnaryCalls) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 4, kStepsPerIteration);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    SessionClient client(stub_.get());
    ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5), absl::StrCat("run-", i)));
    ids.push_back(opened.session_id());
    ASSERT_OK(client.Close(/*complete=*/i % 2 == 0));
    absl::SleepFor(absl::Milliseconds(2));  // distinct creation times
  }
  EXPECT_THAT(GetSession(""), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "session_id"));
  EXPECT_THAT(GetSession("ffff"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(v1::SessionInfo info, GetSession(ids[1]));
  EXPECT_EQ(info.label(), "run-1");
  EXPECT_EQ(info.state(), v1::SESSION_STATE_COLLECTING);
  EXPECT_FALSE(info.attached());
  EXPECT_EQ(info.num_features(), 1200);
  EXPECT_EQ(info.total_iterations(), 2);
  EXPECT_EQ(info.memory_budget_bytes(), 16 << 20);
  EXPECT_EQ(info.layout().tensors_size(), 3);
  EXPECT_EQ(info.method().method(), v1::METHOD_CAUSAL_V2);

  // Pages of two, newest first, every session once.
  std::vector<std::string> listed;
  v1::ListSessionsRequest list;
  list.set_page_size(2);
  int pages = 0;
  do {
    v1::ListSessionsResponse page;
    ASSERT_TRUE(stub_->ListSessions(Context(), list, &page).ok());
    ++pages;
    for (const v1::SessionInfo& s : page.sessions()) {
      listed.push_back(s.session_id());
      EXPECT_EQ(s.layout().tensors_size(), 0);
    }
    list.set_page_token(page.next_page_token());
  } while (!list.page_token().empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, std::vector<std::string>(ids.rbegin(), ids.rend()));
  v1::ListSessionsRequest completed;
  completed.set_state(v1::SESSION_STATE_COMPLETED);
  v1::ListSessionsResponse page;
  ASSERT_TRUE(stub_->ListSessions(Context(), completed, &page).ok());
  EXPECT_EQ(page.sessions_size(), 3);
  for (auto [size, token] : std::vector<std::pair<int, std::string>>{{1001, ""}, {-1, ""}, {0, "garbage"}}) {
    v1::ListSessionsRequest bad;
    bad.set_page_size(size);
    bad.set_page_token(token);
    EXPECT_THAT(common::FromGrpcStatus(stub_->ListSessions(Context(), bad, &page)),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }

  // Delete: refused while attached unless forced; the forced stream ends with ABORTED.
  SessionClient attached(stub_.get());
  ASSERT_OK(attached.Resume(ids[1]).status());
  v1::DeleteSessionRequest del;
  del.set_session_id(ids[1]);
  v1::DeleteSessionResponse deleted;
  EXPECT_THAT(common::FromGrpcStatus(stub_->DeleteSession(Context(), del, &deleted)),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "attached stream"));
  del.set_force(true);
  ASSERT_TRUE(stub_->DeleteSession(Context(), del, &deleted).ok());
  EXPECT_THAT(attached.Finish(), StatusIsWithMessage(absl::StatusCode::kAborted, "deleted"));
  EXPECT_THAT(GetSession(ids[1]), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(common::FromGrpcStatus(stub_->DeleteSession(Context(), del, &deleted)),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/state/sessions/" + ids[1]));
  v1::GetReportRequest report;
  report.set_session_id(ids[1]);
  v1::SessionReport r;
  EXPECT_THAT(common::FromGrpcStatus(stub_->GetReport(Context(), report, &r)), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(PrunerServiceTest, SessionAndMemoryQuotas) {
  InProcessPrunerOptions options = TestOptions();
  options.manager.max_sessions = 2;
  options.manager.total_memory_bytes = 40 << 20;  // two default budgets of 16 MiB, not three
  StartServer(options);
  const v1::Layout layout = SyntheticRun::SmallLayout();
  SessionClient a(stub_.get());
  ASSERT_OK(a.Create(layout, CausalV2Config(2, 0.5)).status());
  SessionClient b(stub_.get());
  v1::MethodConfig big = CausalV2Config(2, 0.5);
  big.set_memory_budget_bytes(30 << 20);
  EXPECT_THAT(b.Create(layout, big), StatusIsWithMessage(absl::StatusCode::kResourceExhausted,
                                                         "live sessions reserve 16777216 of the server's 41943040"));
  SessionClient c(stub_.get());
  ASSERT_OK(c.Create(layout, CausalV2Config(2, 0.5)).status());
  SessionClient d(stub_.get());
  v1::MethodConfig random;
  random.set_method(v1::METHOD_RANDOM);
  EXPECT_THAT(d.Create(layout, random),
              StatusIsWithMessage(absl::StatusCode::kResourceExhausted, "2 live sessions, its limit is 2"));
  // Completing a session frees its place.
  ASSERT_OK(a.Close(/*complete=*/true));
  SessionClient e(stub_.get());
  EXPECT_OK(e.Create(layout, random).status());
}

TEST_F(PrunerServiceTest, ShutdownEndsStreamsWithUnavailableAfterTheirAcks) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 4, kStepsPerIteration);
  SessionClient client(stub_.get());
  ASSERT_OK(client.Create(run.layout(), CausalV2Config(2, 0.5)).status());
  for (int64_t step = 0; step < 4; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
  ASSERT_OK(client.WaitForAck(3));
  server_->Shutdown();
  EXPECT_THAT(client.Finish(), StatusIsWithMessage(absl::StatusCode::kUnavailable, "shutting down"));
  EXPECT_EQ(client.last_ack(), 3);
}

TEST_F(PrunerServiceTest, HalfCloseDuringAFitStillDeliversTheMask) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 4, kStepsPerIteration);
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
  for (int64_t step = 0; step < kStepsPerIteration; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
  ASSERT_TRUE(client.Write(End(1, run.LastStep(1))));
  EXPECT_OK(client.Finish());
  bool got_mask = false;
  std::vector<v1::FitEvent> events;
  for (const v1::SessionResponse& r : client.history()) {
    if (r.has_mask_update() && r.mask_update().last_part()) got_mask = true;
    if (r.has_progress()) events.push_back(r.progress().event());
  }
  EXPECT_TRUE(got_mask);
  EXPECT_THAT(events, ::testing::ElementsAre(v1::FIT_EVENT_STARTED, v1::FIT_EVENT_FINISHED));
}

// The masks of an iteration cannot be stored: the session goes back to collecting the same iteration
// with its samples, and a repeated IterationEnd gives the masks of an undisturbed run.
TEST_F(PrunerServiceTest, StorageFailureAtIterationEndIsRetryable) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 8, kStepsPerIteration);
  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
  for (int64_t step = 0; step < kStepsPerIteration; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
  ASSERT_OK(client.WaitForAck(kStepsPerIteration - 1));
  // A folder where the metadata file should be makes its atomic replacement (rename) fail.
  const std::string metadata = dir_.path() + "/state/sessions/" + opened.session_id() + "/metadata.pb";
  std::filesystem::remove(metadata);
  std::filesystem::create_directories(metadata + "/blocker");
  EXPECT_THAT(client.EndIteration(1, kStepsPerIteration - 1),
              StatusIsWithMessage(absl::StatusCode::kUnavailable, "the masks could not be stored"));
  ASSERT_OK_AND_ASSIGN(v1::SessionInfo info, GetSession(opened.session_id()));
  EXPECT_EQ(info.state(), v1::SESSION_STATE_COLLECTING);
  EXPECT_EQ(info.completed_iterations(), 0);
  EXPECT_EQ(info.stored_samples(), kStepsPerIteration);

  std::filesystem::remove_all(metadata);
  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, opened.method(), 1));
  ASSERT_OK_AND_ASSIGN(ReceivedMask mask, client.EndIteration(1, kStepsPerIteration - 1));
  EXPECT_OK(CompareMasks(expected[0], mask));
  EXPECT_OK(client.Close(false));
}

// A restart replays the journal: a torn tail (a crash in the middle of a write) is dropped silently, a
// corrupt record before the tail makes the session FAILED, still listed, readable and deletable.
TEST_F(PrunerServiceTest, RestartReplaysTheJournalDroppingATornTailAndFailingOnCorruption) {
  const SyntheticRun run(SyntheticRun::SmallLayout(), 8, kStepsPerIteration);
  std::string torn_id;
  std::string corrupt_id;
  v1::MethodConfig resolved;
  for (std::string* id : {&torn_id, &corrupt_id}) {
    SessionClient client(stub_.get());
    ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Create(run.layout(), CausalV2Config(2, 0.5)));
    *id = opened.session_id();
    resolved = opened.method();
    for (int64_t step = 0; step < 5; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
    ASSERT_OK(client.WaitForAck(4));
    ASSERT_OK(client.Close(false));
  }
  server_.reset();
  const std::string sessions = dir_.path() + "/state/sessions/";
  {
    std::ofstream torn(sessions + torn_id + "/journal.bin", std::ios::binary | std::ios::app);
    torn << std::string("\x40\x00\x00\x00\x12\x34", 6);  // the start of a record that never finished
  }
  {
    std::fstream corrupt(sessions + corrupt_id + "/journal.bin", std::ios::in | std::ios::out | std::ios::binary);
    corrupt.seekp(100);  // inside the deltas of step 0
    corrupt.put('\x5a');
  }
  StartServer(TestOptions());

  SessionClient client(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened, client.Resume(torn_id));
  EXPECT_EQ(opened.next_step(), 5);
  for (int64_t step = 5; step < kStepsPerIteration; ++step) ASSERT_TRUE(client.SendStep(run, step, 1));
  ASSERT_OK(client.WaitForAck(kStepsPerIteration - 1));
  ASSERT_OK_AND_ASSIGN(std::vector<MaskSet> expected, ReferenceMasks(run, resolved, 1));
  ASSERT_OK_AND_ASSIGN(ReceivedMask mask, client.EndIteration(1, kStepsPerIteration - 1));
  EXPECT_OK(CompareMasks(expected[0], mask));
  EXPECT_OK(client.Close(false));

  ASSERT_OK_AND_ASSIGN(v1::SessionInfo info, GetSession(corrupt_id));
  EXPECT_EQ(info.state(), v1::SESSION_STATE_FAILED);
  EXPECT_THAT(info.failure_message(), ::testing::HasSubstr("CRC mismatch"));
  EXPECT_EQ(info.layout().tensors_size(), 3);
  SessionClient failed(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened failed_opened, failed.Resume(corrupt_id));
  EXPECT_EQ(failed_opened.state(), v1::SESSION_STATE_FAILED);
  ASSERT_TRUE(failed.Write(Begin(5, 1)));
  EXPECT_THAT(failed.Finish(), StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "is FAILED"));
  v1::DeleteSessionRequest del;
  del.set_session_id(corrupt_id);
  v1::DeleteSessionResponse deleted;
  EXPECT_TRUE(stub_->DeleteSession(Context(), del, &deleted).ok());
}

// ---------------------------------------------------------------------------------------------------
// Concurrency.

TEST_F(PrunerServiceTest, ConcurrentSessionsDoNotInterfere) {
  constexpr int kSessions = 3;
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(kSessions);
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([this, i, &results] {
      results[static_cast<size_t>(i)] = [&]() -> absl::Status {
        const SyntheticRun run(SyntheticRun::SmallLayout(), 100 + static_cast<uint64_t>(i), kStepsPerIteration);
        SessionClient client(stub_.get());
        absl::StatusOr<v1::Opened> opened = client.Create(run.layout(), CausalV2Config(2, 0.5, 40 + i));
        if (!opened.ok()) return opened.status();
        absl::StatusOr<std::vector<MaskSet>> expected = ReferenceMasks(run, opened->method(), 2);
        if (!expected.ok()) return expected.status();
        for (int j = 1; j <= 2; ++j) {
          absl::StatusOr<ReceivedMask> mask = RunIteration(client, run, *opened, j);
          if (!mask.ok()) return mask.status();
          absl::Status same = CompareMasks((*expected)[static_cast<size_t>(j - 1)], *mask);
          if (!same.ok()) return same;
        }
        return client.Close(false);
      }();
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kSessions; ++i) {
    SCOPED_TRACE(absl::StrCat("session ", i));
    EXPECT_OK(results[static_cast<size_t>(i)]);
  }
}

// A long fit of one session runs on the fit executor while another session's steps are acked.
TEST_F(PrunerServiceTest, AFitDoesNotStallAcksOfAnotherSession) {
  // Session A: 100,000 weights and 48 steps; the fit runs up to 400 epochs (no early stop).
  const SyntheticRun big(SyntheticRun::WideLayout(250, 400), 77, 48);
  v1::MethodConfig slow = CausalV2Config(2, 0.5);
  slow.mutable_lasso_sgd()->set_max_epochs(400);
  slow.mutable_lasso_sgd()->set_patience(10000);
  slow.mutable_lasso_sgd()->set_minibatch(4);
  slow.set_memory_budget_bytes(64 << 20);
  SessionClient a(stub_.get());
  ASSERT_OK_AND_ASSIGN(v1::Opened opened_a, a.Create(big.layout(), slow));
  SendOptions large_chunks;
  large_chunks.chunk_elements = 100000;
  for (int64_t step = 0; step < 48; ++step) ASSERT_TRUE(a.SendStep(big, step, 1, large_chunks));
  ASSERT_OK(a.WaitForAck(47));

  const SyntheticRun small(SyntheticRun::SmallLayout(), 78, 1000);
  SessionClient b(stub_.get());
  ASSERT_OK(b.Create(small.layout(), CausalV2Config(2, 0.5)).status());

  v1::SessionRequest end = End(1, 47);
  ASSERT_TRUE(a.Write(end));
  // Wait until A's fit has started.
  absl::Time started;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(v1::SessionResponse r, a.Read());
    if (r.has_progress() && r.progress().event() == v1::FIT_EVENT_STARTED) {
      started = absl::Now();
      break;
    }
  }
  std::atomic<bool> fit_done{false};
  absl::Time finished;
  std::thread reader([&] {
    ASSERT_OK(a.ReadMask().status());
    finished = absl::Now();
    fit_done = true;
  });
  // B streams steps one at a time while A fits; each ack comes back quickly.
  absl::Duration worst;
  int64_t acked_during_fit = 0;
  int64_t last_b = -1;
  for (int64_t step = 0; step < 300 && !fit_done; ++step) {
    const absl::Time sent = absl::Now();
    ASSERT_TRUE(b.SendStep(small, step, 1));
    ASSERT_OK(b.WaitForAck(step));
    worst = std::max(worst, absl::Now() - sent);
    if (!fit_done) ++acked_during_fit;
    last_b = step;
  }
  // B's own fit waits for A's on the single fit thread, and says so.
  const bool a_still_fitting = !fit_done;
  ASSERT_OK(b.EndIteration(1, last_b).status());
  reader.join();
  std::vector<v1::FitEvent> b_events;
  for (const v1::SessionResponse& r : b.history()) {
    if (r.has_progress()) b_events.push_back(r.progress().event());
  }
  if (a_still_fitting) {
    EXPECT_THAT(b_events, ::testing::ElementsAre(v1::FIT_EVENT_QUEUED, v1::FIT_EVENT_STARTED, v1::FIT_EVENT_FINISHED));
  }
  const absl::Duration fit = finished - started;
  std::cout << "fit of A: " << absl::FormatDuration(fit) << "; B acked " << acked_during_fit
            << " steps meanwhile, worst step-to-ack " << absl::FormatDuration(worst) << "\n";
  EXPECT_GE(acked_during_fit, 10);
  EXPECT_LT(worst, absl::Milliseconds(250));
  EXPECT_LT(worst, fit / 4);
  EXPECT_OK(a.Close(false));
  EXPECT_OK(b.Close(false));
}

}  // namespace
}  // namespace gcprune::pruner
