// Tests of the method configuration: names, defaults per method, validation codes and the text form.
#include "pruner_service/causal/method_config.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

TEST(MethodConfigTest, NamesRoundTrip) {
  for (Method m : {Method::kCausalV2, Method::kCausalV1, Method::kMagnitudeGlobal, Method::kMagnitudeLayer,
                   Method::kRandom, Method::kNone}) {
    ASSERT_OK_AND_ASSIGN(Method parsed, ParseMethod(MethodName(m)));
    EXPECT_EQ(parsed, m);
  }
  EXPECT_EQ(*ParseSolver("lasso-sgd"), Solver::kLassoSgd);
  EXPECT_EQ(*ParseSolver("exact"), Solver::kExact);
  EXPECT_EQ(*ParseSampleEncoding("bfloat16"), SampleEncoding::kBfloat16);
  EXPECT_THAT(ParseMethod("causal-v3"), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "'causal-v3'"));
  EXPECT_THAT(ParseSolver("lars"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseSampleEncoding("float16"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MethodConfigTest, DefaultIsCausalV2WithReferenceParameters) {
  ASSERT_OK_AND_ASSIGN(MethodConfig c, ResolveMethodConfig(MethodConfig{}));
  EXPECT_EQ(c.method, Method::kCausalV2);
  EXPECT_EQ(c.solver, Solver::kLassoSgd);
  EXPECT_EQ(*c.schedule.kind, ScheduleKind::kCubic);
  EXPECT_EQ(c.schedule.target_sparsity, 0.9);
  EXPECT_EQ(*c.schedule.iterations, 10);
  EXPECT_EQ(*c.schedule.scope, RankScope::kGlobal);
  EXPECT_EQ(*c.lasso_sgd.lr0, 0.1);
  EXPECT_EQ(*c.lasso_sgd.lr_power, 0.1);
  EXPECT_EQ(*c.lasso_sgd.l1, 1e-3);
  EXPECT_EQ(*c.lasso_sgd.minibatch, 16);
  EXPECT_EQ(c.lasso_sgd.max_epochs, 30);
  EXPECT_EQ(c.lasso_sgd.patience, 2);
  EXPECT_EQ(c.lasso_sgd.tol, 1e-7);
  EXPECT_EQ(c.lasso_sgd.grad_clamp, 1e12);
  EXPECT_EQ(c.sample_encoding, SampleEncoding::kFloat32);
}

TEST(MethodConfigTest, DefaultsDependOnTheMethod) {
  struct Case {
    Method method;
    ScheduleKind kind;
    RankScope scope;
  };
  const std::vector<Case> cases = {
      {Method::kCausalV2, ScheduleKind::kCubic, RankScope::kGlobal},
      {Method::kCausalV1, ScheduleKind::kGeometric, RankScope::kPerLayer},
      {Method::kMagnitudeGlobal, ScheduleKind::kGeometric, RankScope::kGlobal},
      {Method::kMagnitudeLayer, ScheduleKind::kGeometric, RankScope::kPerLayer},
      {Method::kRandom, ScheduleKind::kGeometric, RankScope::kGlobal},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(MethodName(c.method));
    MethodConfig config;
    config.method = c.method;
    ASSERT_OK_AND_ASSIGN(MethodConfig resolved, ResolveMethodConfig(config));
    EXPECT_EQ(*resolved.schedule.kind, c.kind);
    EXPECT_EQ(*resolved.schedule.scope, c.scope);
  }
  MethodConfig v1;
  v1.method = Method::kCausalV1;
  ASSERT_OK_AND_ASSIGN(MethodConfig r1, ResolveMethodConfig(v1));
  EXPECT_EQ(*r1.lasso_sgd.lr0, 0.01);
  EXPECT_EQ(*r1.lasso_sgd.lr_power, 0.25);
  EXPECT_EQ(*r1.lasso_sgd.l1, 1e-14);
  EXPECT_EQ(*r1.lasso_sgd.minibatch, 1);
  // An explicit value wins over the method's default.
  v1.lasso_sgd.l1 = 1e-10;
  EXPECT_EQ(*ResolveMethodConfig(v1)->lasso_sgd.l1, 1e-10);
}

TEST(MethodConfigTest, IterationsDefaultPerScheduleKind) {
  ASSERT_OK_AND_ASSIGN(MethodConfig one_shot, ParseMethodConfig("schedule.kind=one-shot"));
  EXPECT_EQ(*ResolveMethodConfig(one_shot)->schedule.iterations, 1);
  ASSERT_OK_AND_ASSIGN(MethodConfig custom,
                       ParseMethodConfig("schedule.kind=custom schedule.custom_sparsity=0.5/0.7/0.8"));
  EXPECT_EQ(*ResolveMethodConfig(custom)->schedule.iterations, 3);
  ASSERT_OK_AND_ASSIGN(Schedule schedule, MakeSchedule(custom));
  EXPECT_EQ(schedule.TargetSparsity(2), 0.7);
}

TEST(MethodConfigTest, V1ScheduleSetsNoTarget) {
  ASSERT_OK_AND_ASSIGN(MethodConfig c, ParseMethodConfig("method=causal-v1 schedule.iterations=4"));
  ASSERT_OK_AND_ASSIGN(Schedule schedule, MakeSchedule(c));
  EXPECT_EQ(schedule.num_iterations(), 4);
  EXPECT_EQ(schedule.final_sparsity(), 0.0);
  // The schedule's shape is not V1's business: a custom list is accepted and ignored.
  ASSERT_OK_AND_ASSIGN(
      MethodConfig custom,
      ParseMethodConfig("method=causal-v1 schedule.kind=custom schedule.custom_sparsity=0.5/0.6"));
  EXPECT_EQ(*ResolveMethodConfig(custom)->schedule.iterations, 10);
}

TEST(MethodConfigTest, ValidationNamesTheFieldAndValue) {
  struct Case {
    const char* text;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"schedule.target_sparsity=1", "schedule.target_sparsity: 1 is not in [0, 1)"},
      {"schedule.target_sparsity=-0.5", "schedule.target_sparsity: -0.5"},
      {"schedule.target_sparsity=nan", "schedule.target_sparsity: nan"},
      {"schedule.iterations=0", "schedule.iterations: 0 is not in [1, 1000]"},
      {"schedule.iterations=1001", "schedule.iterations: 1001"},
      {"schedule.kind=one-shot schedule.iterations=3", "must be 1 (or unset) for 'one-shot'"},
      {"schedule.kind=custom", "schedule.custom_sparsity: 0 values"},
      {"schedule.kind=custom schedule.custom_sparsity=0.5/0.4",
       "schedule.custom_sparsity[1]: 0.4 is below the previous value 0.5"},
      {"schedule.kind=custom schedule.custom_sparsity=0.5/1", "schedule.custom_sparsity[1]: 1 is not in [0, 1)"},
      {"schedule.kind=custom schedule.custom_sparsity=0.5/0.6 schedule.iterations=3", "differs from the 2"},
      {"schedule.custom_sparsity=0.5", "only 'custom' takes them"},
      {"schedule.min_layer_sparsity=0.6 schedule.max_layer_sparsity=0.5", "schedule.min_layer_sparsity: 0.6"},
      {"schedule.max_layer_sparsity=1.5", "schedule.max_layer_sparsity: 1.5"},
      {"lasso_sgd.lr0=0", "lasso_sgd.lr0: 0 is not a finite number > 0"},
      {"lasso_sgd.lr_power=2", "lasso_sgd.lr_power: 2"},
      {"lasso_sgd.l1=-1", "lasso_sgd.l1: -1"},
      {"lasso_sgd.minibatch=0", "lasso_sgd.minibatch: 0"},
      {"lasso_sgd.max_epochs=0", "lasso_sgd.max_epochs: 0"},
      {"lasso_sgd.patience=0", "lasso_sgd.patience: 0"},
      {"lasso_sgd.tol=-1e-7", "lasso_sgd.tol"},
      {"lasso_sgd.grad_clamp=inf", "lasso_sgd.grad_clamp: inf"},
      {"exact.alpha=-1", "exact.alpha: -1"},
      {"exact.tolerance=-1", "exact.tolerance: -1"},
      {"exact.max_iterations=0", "exact.max_iterations: 0"},
      {"memory_budget_bytes=-5", "memory_budget_bytes: -5 is negative"},
      {"method=causal-v1 reference_ranking=true", "reference_ranking: true needs method causal-v2"},
      {"solver=exact reference_ranking=true", "solver lasso-sgd"},
      {"v1_momentum=true", "v1_momentum: true needs method causal-v1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(ParseMethodConfig(c.text), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(MethodConfigTest, ParserRejectsUnknownKeysAndMalformedValues) {
  struct Case {
    const char* text;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"colour=blue", "unknown key 'colour'"},
      {"method", "'method' is not of the form key=value"},
      {"=3", "'=3' is not of the form key=value"},
      {"method=causal", "method: unknown value 'causal'"},
      {"seed=-1", "seed: cannot parse '-1' as an integer"},
      {"seed=0xZZ", "seed: cannot parse '0xZZ'"},
      {"schedule.iterations=ten", "schedule.iterations: cannot parse 'ten'"},
      {"schedule.target_sparsity=0.9x", "schedule.target_sparsity: cannot parse '0.9x' as a number"},
      {"reference_ranking=yes", "reference_ranking: cannot parse 'yes' as a boolean"},
      {"schedule.scope=layer", "scope: unknown value 'layer'"},
      {"schedule.custom_sparsity=0.1//0.2", "schedule.custom_sparsity: cannot parse ''"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_THAT(ParseMethodConfig(c.text), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(MethodConfigTest, ParsesSeparatorsCommentsAndOverrides) {
  ASSERT_OK_AND_ASSIGN(MethodConfig c, ParseMethodConfig("method=magnitude-global, seed=0xFF;\n"
                                                         "# a comment line\n"
                                                         "schedule.scope=per-layer  lasso_sgd.l1=2e-3 # tail\n"
                                                         "seed=7"));
  EXPECT_EQ(c.method, Method::kMagnitudeGlobal);
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(*c.schedule.scope, RankScope::kPerLayer);
  EXPECT_EQ(*c.lasso_sgd.l1, 2e-3);
  // "default" clears an optional field; a base config is the starting point.
  ASSERT_OK_AND_ASSIGN(MethodConfig d, ParseMethodConfig("schedule.scope=default", c));
  EXPECT_FALSE(d.schedule.scope.has_value());
  EXPECT_EQ(d.method, Method::kMagnitudeGlobal);
  ASSERT_OK_AND_ASSIGN(MethodConfig big, ParseMethodConfig("seed=18446744073709551615"));
  EXPECT_EQ(big.seed, 18446744073709551615u);
}

TEST(MethodConfigTest, FormatParsesBackToTheSameConfig) {
  std::vector<MethodConfig> configs(3);
  configs[1].method = Method::kCausalV1;
  configs[1].v1_momentum = true;
  configs[1].solver = Solver::kExact;
  configs[1].exact.alpha = 1.0 / 3.0;
  configs[1].seed = 0xDEADBEEFCAFEF00DULL;
  configs[2].schedule.kind = ScheduleKind::kCustom;
  configs[2].schedule.custom_sparsity = {0.1, 0.2 / 3.0 + 0.2, 0.9};
  configs[2].schedule.scope = RankScope::kPerLayer;
  configs[2].schedule.min_layer_sparsity = 0.05;
  configs[2].schedule.allow_layer_collapse = true;
  configs[2].schedule.count_rule = CountRule::kReferenceIncremental;
  configs[2].lasso_sgd.lr0 = 0.123456789012345678;
  configs[2].lasso_sgd.minibatch = 32;
  configs[2].reference_ranking = true;
  configs[2].sample_encoding = SampleEncoding::kBfloat16;
  configs[2].memory_budget_bytes = int64_t{1} << 34;
  for (size_t i = 0; i < configs.size(); ++i) {
    SCOPED_TRACE(i);
    ASSERT_OK(ValidateMethodConfig(configs[i]));
    const std::string text = FormatMethodConfig(configs[i]);
    ASSERT_OK_AND_ASSIGN(MethodConfig parsed, ParseMethodConfig(text));
    EXPECT_EQ(parsed, configs[i]) << text;
  }
  EXPECT_NE(FormatMethodConfig(configs[0]).find("schedule.kind=default\n"), std::string::npos);
}

}  // namespace
}  // namespace gcprune::pruner
