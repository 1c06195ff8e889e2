// Tests of the wire conversions: layouts (limits and errors), method configurations (round trip, enum
// and range errors), mask updates split into parts and pages, and reports.
#include "pruner_service/service/wire_format.h"

#include <cmath>
#include <string>
#include <vector>

#include "common/mask_runs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

namespace v1 = ::gcprune::v1;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

v1::Layout SmallLayout() {
  v1::Layout layout;
  v1::TensorSpec* a = layout.add_tensors();
  a->set_name("fc1.weight");
  a->add_shape(5);
  a->add_shape(7);
  a->set_prunable(true);
  v1::TensorSpec* b = layout.add_tensors();
  b->set_name("fc1.bias");
  b->add_shape(5);
  v1::TensorSpec* c = layout.add_tensors();
  c->set_name("fc2.weight");
  c->add_shape(3);
  c->add_shape(5);
  c->set_prunable(true);
  return layout;
}

TEST(WireFormatTest, LayoutRoundTrip) {
  ASSERT_OK_AND_ASSIGN(Layout layout, LayoutFromProto(SmallLayout(), "layout"));
  EXPECT_EQ(layout.num_tensors(), 3);
  EXPECT_EQ(layout.num_features(), 35 + 15);
  EXPECT_EQ(layout.feature_offset(2), 35);
  const v1::Layout back = LayoutToProto(layout);
  EXPECT_EQ(back.SerializeAsString(), SmallLayout().SerializeAsString());
  EXPECT_OK(CheckLayoutMatches(layout, SmallLayout(), "expected_layout"));
}

TEST(WireFormatTest, LayoutErrorsNameTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::Layout*)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no tensors", [](v1::Layout* l) { l->clear_tensors(); }, "open.create.layout.tensors: 0 tensors"},
      {"empty name", [](v1::Layout* l) { l->mutable_tensors(1)->set_name(""); }, "tensors[1].name"},
      {"long name", [](v1::Layout* l) { l->mutable_tensors(0)->set_name(std::string(257, 'x')); },
       "tensors[0].name: length 257"},
      {"no shape", [](v1::Layout* l) { l->mutable_tensors(2)->clear_shape(); }, "tensors[2].shape"},
      {"rank 9", [](v1::Layout* l) { for (int i = 0; i < 7; ++i) l->mutable_tensors(0)->add_shape(1); },
       "9 dimensions"},
      {"zero dim", [](v1::Layout* l) { l->mutable_tensors(2)->set_shape(1, 0); }, "tensors[2].shape[1]: 0"},
      {"huge", [](v1::Layout* l) { l->mutable_tensors(0)->set_shape(0, int64_t{1} << 40); }, "more than 2^40"},
      {"duplicate", [](v1::Layout* l) { l->mutable_tensors(2)->set_name("fc1.weight"); }, "fc1.weight"},
      {"nothing prunable",
       [](v1::Layout* l) {
         l->mutable_tensors(0)->set_prunable(false);
         l->mutable_tensors(2)->set_prunable(false);
       },
       "prunable"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::Layout layout = SmallLayout();
    c.mutate(&layout);
    EXPECT_THAT(LayoutFromProto(layout, "open.create.layout"),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(WireFormatTest, LayoutMismatchNamesTheFirstDifferingTensor) {
  ASSERT_OK_AND_ASSIGN(Layout layout, LayoutFromProto(SmallLayout(), "layout"));
  v1::Layout other = SmallLayout();
  other.mutable_tensors(2)->set_shape(0, 4);
  EXPECT_THAT(CheckLayoutMatches(layout, other, "open.resume.expected_layout"),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "expected_layout.tensors[2]"));
  other = SmallLayout();
  other.mutable_tensors()->RemoveLast();
  EXPECT_THAT(CheckLayoutMatches(layout, other, "x"),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "2 tensors, the session has 3"));
}

TEST(WireFormatTest, MethodConfigDefaultsAndRoundTrip) {
  ASSERT_OK_AND_ASSIGN(MethodConfig defaults, MethodConfigFromProto(v1::MethodConfig(), "method"));
  EXPECT_EQ(defaults.method, Method::kCausalV2);
  EXPECT_EQ(defaults.solver, Solver::kLassoSgd);
  ASSERT_OK_AND_ASSIGN(MethodConfig resolved, ResolveMethodConfig(defaults));

  v1::MethodConfig proto;
  proto.set_method(v1::METHOD_CAUSAL_V1);
  proto.set_solver(v1::SOLVER_EXACT);
  proto.mutable_schedule()->set_iterations(4);
  proto.mutable_schedule()->set_max_layer_sparsity(0.95);
  proto.mutable_schedule()->set_allow_layer_collapse(true);
  proto.mutable_schedule()->set_count_rule(v1::COUNT_RULE_REFERENCE_INCREMENTAL);
  proto.mutable_lasso_sgd()->set_l1(2e-14);
  proto.mutable_exact()->set_alpha(0.5);
  proto.set_seed(314159);
  proto.set_sample_encoding(v1::VALUE_ENCODING_BFLOAT16);
  proto.set_memory_budget_bytes(1 << 20);
  proto.set_v1_momentum(true);
  ASSERT_OK_AND_ASSIGN(MethodConfig config, MethodConfigFromProto(proto, "method"));
  EXPECT_EQ(config.method, Method::kCausalV1);
  EXPECT_EQ(config.schedule.count_rule, CountRule::kReferenceIncremental);
  EXPECT_TRUE(config.schedule.allow_layer_collapse);
  ASSERT_OK_AND_ASSIGN(config, ResolveMethodConfig(config));
  // What Opened.method echoes reads back as the same configuration.
  ASSERT_OK_AND_ASSIGN(MethodConfig back, MethodConfigFromProto(MethodConfigToProto(config), "method"));
  EXPECT_EQ(back, config);
  ASSERT_OK_AND_ASSIGN(back, MethodConfigFromProto(MethodConfigToProto(resolved), "method"));
  EXPECT_EQ(back, resolved);
}

TEST(WireFormatTest, MethodConfigErrorsNameTheField) {
  struct Case {
    std::string name;
    std::function<void(v1::MethodConfig*)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"unknown method", [](v1::MethodConfig* m) { m->set_method(static_cast<v1::Method>(99)); },
       "open.create.method.method: unknown value 99"},
      {"unknown solver", [](v1::MethodConfig* m) { m->set_solver(static_cast<v1::Solver>(7)); }, ".solver"},
      {"unknown kind", [](v1::MethodConfig* m) { m->mutable_schedule()->set_kind(static_cast<v1::ScheduleKind>(9)); },
       ".schedule.kind"},
      {"unknown scope",
       [](v1::MethodConfig* m) { m->mutable_schedule()->set_scope(static_cast<v1::PruningScope>(9)); },
       ".schedule.scope"},
      {"unknown count rule",
       [](v1::MethodConfig* m) { m->mutable_schedule()->set_count_rule(static_cast<v1::CountRule>(9)); },
       ".schedule.count_rule"},
      {"float16 samples", [](v1::MethodConfig* m) { m->set_sample_encoding(v1::VALUE_ENCODING_FLOAT16); },
       ".sample_encoding"},
      {"target 1.2", [](v1::MethodConfig* m) { m->mutable_schedule()->set_target_sparsity(1.2); },
       "open.create.method.schedule.target_sparsity"},
      {"iterations 0", [](v1::MethodConfig* m) { m->mutable_schedule()->set_iterations(0); },
       "schedule.iterations"},
      {"negative lr0", [](v1::MethodConfig* m) { m->mutable_lasso_sgd()->set_lr0(-1); }, "lasso_sgd.lr0"},
      {"negative budget", [](v1::MethodConfig* m) { m->set_memory_budget_bytes(-5); }, "memory_budget_bytes"},
      {"momentum for v2", [](v1::MethodConfig* m) { m->set_v1_momentum(true); }, "v1_momentum"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::MethodConfig proto;
    c.mutate(&proto);
    EXPECT_THAT(MethodConfigFromProto(proto, "open.create.method"),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

// A mask with a known pattern: every third weight of fc1.weight and the first of fc2.weight pruned.
MaskSet PatternMask(const Layout& layout) {
  MaskSet mask(layout);
  std::vector<int64_t> pruned;
  for (int64_t k = 0; k < 35; k += 3) pruned.push_back(k);
  pruned.push_back(35);
  EXPECT_OK(mask.Prune(pruned));
  return mask;
}

// Reassembles the runs of `updates` per tensor and compares them with the mask.
void ExpectCoversMask(const MaskSet& mask, const std::vector<v1::TensorMask>& runs) {
  for (int p = 0; p < mask.num_tensors(); ++p) {
    common::PackedMaskAssembler assembler(mask.tensor(p).numel);
    for (const v1::TensorMask& run : runs) {
      if (run.tensor_index() == static_cast<uint32_t>(mask.tensor(p).layout_index)) ASSERT_OK(assembler.Add(run));
    }
    ASSERT_OK_AND_ASSIGN(std::string packed, assembler.Finish());
    EXPECT_EQ(packed, mask.PackTensor(p)) << mask.tensor(p).name;
  }
}

TEST(WireFormatTest, MaskUpdatesSplitIntoPartsWithTheSummaryLast) {
  ASSERT_OK_AND_ASSIGN(Layout layout, LayoutFromProto(SmallLayout(), "layout"));
  const MaskSet mask = PatternMask(layout);
  for (int64_t part_bytes : {1, 2, 3, 1000}) {
    SCOPED_TRACE(part_bytes);
    const std::vector<v1::MaskUpdate> parts = MakeMaskUpdates(mask, 2, 40, 0.25, false, part_bytes);
    std::vector<v1::TensorMask> runs;
    for (size_t i = 0; i < parts.size(); ++i) {
      EXPECT_EQ(parts[i].iteration(), 2);
      EXPECT_EQ(parts[i].apply_at_step(), 40);
      EXPECT_EQ(parts[i].last_part(), i + 1 == parts.size());
      int64_t bytes = 0;
      for (const v1::TensorMask& run : parts[i].masks()) {
        bytes += static_cast<int64_t>(run.bits().size());
        EXPECT_EQ(run.offset() % 8, 0);
        runs.push_back(run);
      }
      EXPECT_LE(bytes, part_bytes);
    }
    ExpectCoversMask(mask, runs);
    const v1::MaskUpdate& last = parts.back();
    EXPECT_EQ(last.pruned(), 13);
    EXPECT_EQ(last.kept(), 50 - 13);
    EXPECT_DOUBLE_EQ(last.global_sparsity(), 13.0 / 50);
    EXPECT_EQ(last.target_sparsity(), 0.25);
    ASSERT_EQ(last.tensors_size(), 2);
    EXPECT_EQ(last.tensors(0).name(), "fc1.weight");
    EXPECT_EQ(last.tensors(0).pruned(), 12);
    EXPECT_EQ(last.tensors(1).tensor_index(), 2u);
    EXPECT_EQ(last.tensors(1).pruned(), 1);
  }
  EXPECT_EQ(MakeMaskUpdates(mask, 1, 0, 0.1, true, 1 << 20).size(), 1u);
}

TEST(WireFormatTest, MaskRunsPageThroughASubsetOfTensors) {
  ASSERT_OK_AND_ASSIGN(Layout layout, LayoutFromProto(SmallLayout(), "layout"));
  const MaskSet mask = PatternMask(layout);
  const std::vector<int> only_second = {1};
  MaskCursor cursor;
  std::vector<v1::TensorMask> runs;
  int pages = 0;
  while (cursor.list_index < 1) {
    v1::MaskUpdate page;
    cursor = AppendMaskRuns(mask, only_second, cursor, 1, &page);
    for (const v1::TensorMask& run : page.masks()) runs.push_back(run);
    ++pages;
  }
  EXPECT_EQ(pages, 2);  // 15 bits = 2 bytes, one byte per page
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].tensor_index(), 2u);
  EXPECT_EQ(runs[1].offset(), 8);
  EXPECT_EQ(runs[1].num_elements(), 7);
}

TEST(WireFormatTest, IterationReportToProtoCarriesCountsAndFit) {
  IterationReport report;
  report.iteration = 3;
  report.num_samples = 17;
  report.num_features = 50;
  report.target_sparsity = 0.5;
  report.achieved_sparsity = 0.5;
  report.target_nan = 1;
  report.target_inf = 2;
  report.feature_nonfinite = 4;
  report.target_mean = -0.25;
  report.tensors.push_back({0, "fc1.weight", 35, 20, 15, 3, 15.0 / 35, 0.5});
  FitReport fit;
  fit.epochs = 4;
  fit.best_epoch = 2;
  fit.early_stopped = true;
  fit.nonzero_coefficients = 33;
  report.fit = fit;
  const v1::IterationReport proto = IterationReportToProto(report, 100, 116, 999);
  EXPECT_EQ(proto.iteration(), 3);
  EXPECT_EQ(proto.first_step(), 100);
  EXPECT_EQ(proto.last_step(), 116);
  EXPECT_EQ(proto.num_samples(), 17);
  EXPECT_EQ(proto.nan_count(), 5);
  EXPECT_EQ(proto.inf_count(), 2);
  EXPECT_EQ(proto.target_mean(), -0.25);
  EXPECT_EQ(proto.finished_unix_ms(), 999);
  ASSERT_EQ(proto.tensors_size(), 1);
  EXPECT_EQ(proto.tensors(0).pruned(), 15);
  EXPECT_EQ(proto.fit().epochs(), 4);
  EXPECT_EQ(proto.fit().best_epoch(), 2);
  EXPECT_TRUE(proto.fit().early_stopped());
  EXPECT_EQ(proto.fit().nonzero_coefficients(), 33);
  EXPECT_EQ(SessionStateName(v1::SESSION_STATE_FITTING), "FITTING");
}

}  // namespace
}  // namespace gcprune::pruner
