// Tests of the flags of `gcprune run` that build a RunSpec: defaults, every name table, phase overrides,
// schedules, and the errors that name the flag.
#include "clients/cli/run_spec_flags.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "clients/cli/flag_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::cli {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;
using ::testing::ElementsAre;

absl::StatusOr<v1::RunSpec> BuildFrom(const std::vector<std::string>& args) {
  FlagSet flags("gcprune run", "");
  RunSpecFlags spec_flags;
  spec_flags.Register(&flags);
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) return positional.status();
  return spec_flags.Build();
}

class RunSpecFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("GCPRUNE_PRUNER"); }
};

TEST_F(RunSpecFlagsTest, DefaultsAreTheShortProtocol) {
  ASSERT_OK_AND_ASSIGN(v1::RunSpec spec, BuildFrom({}));
  EXPECT_EQ(spec.model().preset(), "lenet5");
  EXPECT_EQ(spec.data().name(), "fashion-mnist");
  EXPECT_EQ(spec.pretrain().epochs(), 2);
  EXPECT_EQ(spec.train().epochs(), 1);
  EXPECT_EQ(spec.finetune().epochs(), 3);
  for (const v1::PhaseSpec* phase : {&spec.pretrain(), &spec.train(), &spec.finetune()}) {
    EXPECT_EQ(phase->batch_size(), 256);
    EXPECT_EQ(phase->optimizer().kind(), v1::OPTIMIZER_KIND_SGD);
    EXPECT_EQ(phase->optimizer().learning_rate(), 0.01);
    EXPECT_EQ(phase->optimizer().momentum(), 0.9);
    EXPECT_EQ(phase->lr_schedule().kind(), v1::LR_SCHEDULE_KIND_CONSTANT);
  }
  EXPECT_EQ(spec.collection().epochs(), 0);
  EXPECT_EQ(spec.method().method(), v1::METHOD_CAUSAL_V2);
  ASSERT_TRUE(spec.method().schedule().has_target_sparsity());
  EXPECT_EQ(spec.method().schedule().target_sparsity(), 0.9);
  EXPECT_EQ(spec.method().schedule().iterations(), 5);
  EXPECT_EQ(spec.method().schedule().kind(), v1::SCHEDULE_KIND_UNSPECIFIED);
  EXPECT_FALSE(spec.method().lasso_sgd().has_l1());
  EXPECT_EQ(spec.seed(), 314159u);
  EXPECT_EQ(spec.method().seed(), 314159u);
  EXPECT_EQ(spec.pruner().address(), "");  // the trainer's default
  EXPECT_EQ(spec.pruner().failure_policy(), v1::FAILURE_POLICY_FAIL_OPEN);
  EXPECT_FALSE(spec.has_label_smoothing());
}

TEST_F(RunSpecFlagsTest, EveryFlagReachesItsField) {
  ASSERT_OK_AND_ASSIGN(
      v1::RunSpec spec,
      BuildFrom({"--layers=linear:40,relu,linear:10", "--input_shape=1x28x28", "--num_classes=10", "--data=MNIST",
                 "--data_dir=/d", "--train_subset=512", "--test_subset=256", "--test_batch_size=128",
                 "--pretrain_epochs=1", "--train_epochs=0", "--finetune_epochs=4", "--batch_size=64",
                 "--optimizer=adam", "--lr=0.0005", "--weight_decay=1e-4", "--lr_schedule=cosine", "--min_lr=1e-5",
                 "--collect_epochs=2", "--collect_batch_size=128", "--collect_lr=0.002", "--method=magnitude_global",
                 "--target_sparsity=0.75", "--iterations=3", "--schedule=geometric", "--scope=per-layer",
                 "--count_rule=reference", "--solver=exact", "--l1=0.01", "--lasso_epochs=7", "--alpha=0.5",
                 "--min_layer_sparsity=0.1", "--max_layer_sparsity=0.95", "--sample_encoding=bfloat16",
                 "--memory_budget_mb=64", "--reference_ranking", "--method_seed=9", "--seed=7",
                 "--pruner=10.0.0.2:50052", "--failure_policy=strict", "--grace_period=90s", "--pruner_tls",
                 "--rewind", "--label_smoothing=0", "--label=sweep"}));
  EXPECT_EQ(spec.model().layers(), "linear:40,relu,linear:10");
  EXPECT_THAT(spec.input_shape(), ElementsAre(1, 28, 28));
  EXPECT_EQ(spec.num_classes(), 10);
  EXPECT_EQ(spec.data().name(), "mnist");
  EXPECT_EQ(spec.data().directory(), "/d");
  EXPECT_EQ(spec.data().train_subset(), 512);
  EXPECT_EQ(spec.data().test_subset(), 256);
  EXPECT_EQ(spec.data().test_batch_size(), 128);
  EXPECT_EQ(spec.pretrain().epochs(), 1);
  EXPECT_EQ(spec.train().epochs(), 0);
  EXPECT_EQ(spec.finetune().epochs(), 4);
  EXPECT_EQ(spec.finetune().batch_size(), 64);
  EXPECT_EQ(spec.finetune().optimizer().kind(), v1::OPTIMIZER_KIND_ADAM);
  EXPECT_EQ(spec.finetune().optimizer().learning_rate(), 0.0005);
  EXPECT_EQ(spec.finetune().optimizer().momentum(), 0);  // Adam has none
  EXPECT_EQ(spec.finetune().optimizer().weight_decay(), 1e-4);
  EXPECT_EQ(spec.finetune().lr_schedule().kind(), v1::LR_SCHEDULE_KIND_COSINE);
  EXPECT_EQ(spec.finetune().lr_schedule().min_learning_rate(), 1e-5);
  EXPECT_EQ(spec.collection().epochs(), 2);
  EXPECT_EQ(spec.collection().batch_size(), 128);
  EXPECT_EQ(spec.collection().learning_rate(), 0.002);
  const v1::MethodConfig& method = spec.method();
  EXPECT_EQ(method.method(), v1::METHOD_MAGNITUDE_GLOBAL);
  EXPECT_EQ(method.schedule().target_sparsity(), 0.75);
  EXPECT_EQ(method.schedule().iterations(), 3);
  EXPECT_EQ(method.schedule().kind(), v1::SCHEDULE_KIND_GEOMETRIC);
  EXPECT_EQ(method.schedule().scope(), v1::PRUNING_SCOPE_PER_LAYER);
  EXPECT_EQ(method.schedule().count_rule(), v1::COUNT_RULE_REFERENCE_INCREMENTAL);
  EXPECT_EQ(method.schedule().min_layer_sparsity(), 0.1);
  EXPECT_EQ(method.schedule().max_layer_sparsity(), 0.95);
  EXPECT_EQ(method.solver(), v1::SOLVER_EXACT);
  EXPECT_EQ(method.lasso_sgd().l1(), 0.01);
  EXPECT_EQ(method.lasso_sgd().max_epochs(), 7);
  EXPECT_EQ(method.exact().alpha(), 0.5);
  EXPECT_EQ(method.sample_encoding(), v1::VALUE_ENCODING_BFLOAT16);
  EXPECT_EQ(method.memory_budget_bytes(), 64 << 20);
  EXPECT_TRUE(method.reference_ranking());
  EXPECT_EQ(method.seed(), 9u);
  EXPECT_EQ(spec.seed(), 7u);
  EXPECT_EQ(spec.pruner().address(), "10.0.0.2:50052");
  EXPECT_EQ(spec.pruner().failure_policy(), v1::FAILURE_POLICY_STRICT);
  EXPECT_EQ(spec.pruner().grace_period_seconds(), 90);
  EXPECT_TRUE(spec.pruner().use_tls());
  EXPECT_TRUE(spec.rewind().rewind_to_pretrained());
  ASSERT_TRUE(spec.has_label_smoothing());
  EXPECT_EQ(spec.label_smoothing(), 0);
  EXPECT_EQ(spec.label(), "sweep");
}

TEST_F(RunSpecFlagsTest, PhaseOverridesApplyToOnePhase) {
  ASSERT_OK_AND_ASSIGN(v1::RunSpec spec,
                       BuildFrom({"--finetune=epochs=6,optimizer=sgd,lr=0.05,weight_decay=5e-4,schedule=cosine,"
                                  "min_lr=0.001,nesterov=true,patience=2,min_delta=1e-3",
                                  "--pretrain", "optimizer=adam,lr=5e-4,beta1=0.8,beta2=0.99,eps=1e-7",
                                  "--train=batch=32,schedule=step,step_epochs=2,gamma=0.5"}));
  EXPECT_EQ(spec.finetune().epochs(), 6);
  EXPECT_EQ(spec.finetune().optimizer().learning_rate(), 0.05);
  EXPECT_EQ(spec.finetune().optimizer().weight_decay(), 5e-4);
  EXPECT_TRUE(spec.finetune().optimizer().nesterov());
  EXPECT_EQ(spec.finetune().lr_schedule().kind(), v1::LR_SCHEDULE_KIND_COSINE);
  EXPECT_EQ(spec.finetune().lr_schedule().min_learning_rate(), 0.001);
  EXPECT_EQ(spec.finetune().early_stop().patience(), 2);
  EXPECT_EQ(spec.finetune().early_stop().min_delta(), 1e-3);
  EXPECT_EQ(spec.pretrain().optimizer().kind(), v1::OPTIMIZER_KIND_ADAM);
  EXPECT_EQ(spec.pretrain().optimizer().momentum(), 0);
  EXPECT_EQ(spec.pretrain().optimizer().beta1(), 0.8);
  EXPECT_EQ(spec.pretrain().optimizer().beta2(), 0.99);
  EXPECT_EQ(spec.pretrain().optimizer().epsilon(), 1e-7);
  EXPECT_EQ(spec.pretrain().epochs(), 2);  // untouched by the override
  EXPECT_EQ(spec.train().batch_size(), 32);
  EXPECT_EQ(spec.train().lr_schedule().kind(), v1::LR_SCHEDULE_KIND_STEP);
  EXPECT_EQ(spec.train().lr_schedule().step_epochs(), 2);
  EXPECT_EQ(spec.train().lr_schedule().gamma(), 0.5);
  // The other phases keep the shared flags.
  EXPECT_EQ(spec.train().optimizer().learning_rate(), 0.01);
  EXPECT_EQ(spec.finetune().batch_size(), 256);
}

TEST_F(RunSpecFlagsTest, SchedulesAndMethodSpecificFields) {
  ASSERT_OK_AND_ASSIGN(v1::RunSpec custom, BuildFrom({"--schedule=custom:0.5,0.8,0.9"}));
  EXPECT_EQ(custom.method().schedule().kind(), v1::SCHEDULE_KIND_CUSTOM);
  EXPECT_THAT(custom.method().schedule().custom_sparsity(), ElementsAre(0.5, 0.8, 0.9));
  EXPECT_FALSE(custom.method().schedule().has_iterations());
  EXPECT_FALSE(custom.method().schedule().has_target_sparsity());

  ASSERT_OK_AND_ASSIGN(v1::RunSpec one_shot, BuildFrom({"--schedule=one-shot", "--target_sparsity=0.5"}));
  EXPECT_FALSE(one_shot.method().schedule().has_iterations());
  EXPECT_EQ(one_shot.method().schedule().target_sparsity(), 0.5);

  ASSERT_OK_AND_ASSIGN(v1::RunSpec v1_spec, BuildFrom({"--method=causal-v1", "--v1_momentum", "--collect_momentum=0.9"}));
  EXPECT_EQ(v1_spec.method().method(), v1::METHOD_CAUSAL_V1);
  EXPECT_FALSE(v1_spec.method().schedule().has_target_sparsity());
  EXPECT_TRUE(v1_spec.method().v1_momentum());
  EXPECT_EQ(v1_spec.collection().momentum(), 0.9);

  setenv("GCPRUNE_PRUNER", "10.1.1.1:9", 1);
  ASSERT_OK_AND_ASSIGN(v1::RunSpec none, BuildFrom({"--method=none"}));
  EXPECT_EQ(none.pruner().address(), "");  // no pruner needed
  ASSERT_OK_AND_ASSIGN(v1::RunSpec from_env, BuildFrom({}));
  EXPECT_EQ(from_env.pruner().address(), "10.1.1.1:9");
  unsetenv("GCPRUNE_PRUNER");
}

TEST_F(RunSpecFlagsTest, BadValuesNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const Case cases[] = {
      {{"--method=causal-v3"}, "--method: unknown value 'causal-v3' (known: causal-v2, causal-v1"},
      {{"--model=mlp", "--layers=linear:10"}, "--model and --layers exclude each other"},
      {{"--input_shape=1x0x28"}, "--input_shape: '1x0x28'"},
      {{"--input_shape=1x2x3x4"}, "--input_shape"},
      {{"--schedule=linear"}, "--schedule: unknown value 'linear'"},
      {{"--schedule=custom"}, "--schedule: custom needs its cumulative sparsities"},
      {{"--schedule=custom:0.5,1.0"}, "--schedule: 1 is outside [0, 1)"},
      {{"--schedule=cubic:0.5"}, "only the custom schedule takes values"},
      {{"--target_sparsity=1"}, "--target_sparsity: 1 is outside [0, 1)"},
      {{"--target_sparsity=-0.1"}, "--target_sparsity"},
      {{"--iterations=0"}, "--iterations: 0 is outside [1, 1000]"},
      {{"--pretrain_epochs=-1"}, "--pretrain_epochs: -1 is outside [0, 100000]"},
      {{"--batch_size=0"}, "--batch_size: 0 is outside [1, 65536]"},
      {{"--optimizer=rmsprop"}, "--optimizer: unknown value 'rmsprop' (known: sgd, adam)"},
      {{"--lr=0"}, "--lr: 0 is not > 0"},
      {{"--optimizer=adam", "--momentum=0.9"}, "--momentum and --nesterov apply to --optimizer=sgd only"},
      {{"--lr_schedule=linear"}, "--lr_schedule: unknown value"},
      {{"--finetune=epochs"}, "--finetune: 'epochs' is not key=value"},
      {{"--finetune=colour=red"}, "--finetune: unknown key 'colour'"},
      {{"--finetune=lr=fast"}, "--finetune lr: 'fast' is not a number"},
      {{"--pretrain=epochs=1.5"}, "--pretrain epochs: '1.5' is not a 32-bit integer"},
      {{"--train=nesterov=maybe"}, "--train nesterov: 'maybe'"},
      {{"--train=optimizer=lbfgs"}, "--train optimizer: unknown value 'lbfgs'"},
      {{"--scope=everywhere"}, "--scope: unknown value"},
      {{"--solver=cd"}, "--solver: unknown value 'cd' (known: lasso-sgd, exact)"},
      {{"--sample_encoding=float16"}, "--sample_encoding: unknown value 'float16'"},
      {{"--failure_policy=retry"}, "--failure_policy: unknown value 'retry' (known: fail-open, strict)"},
      {{"--grace_period=-5s"}, "--grace_period: -5s is negative"},
      {{"--label_smoothing=1"}, "--label_smoothing: 1 is outside [0, 1)"},
      {{"--memory_budget_mb=-1"}, "--memory_budget_mb: -1 is out of range"},
      {{"--num_classes=-2"}, "--num_classes"},
      {{"--train_subset=-5"}, "--train_subset: -5 is outside"},
      {{"--lasso_epochs=0"}, "--lasso_epochs: 0 is outside [1, 10000]"},
      {{"--max_layer_sparsity=1.5"}, "--max_layer_sparsity: 1.5 is outside [0, 1]"},
      {{"--label=" + std::string(300, 'x')}, "--label: 300 bytes, at most 256"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(BuildFrom(c.args), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(ParseInputShapeTest, AcceptsBothSeparators) {
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> x_shape, ParseInputShape("--s", "3x32x32"));
  EXPECT_THAT(x_shape, ElementsAre(3, 32, 32));
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> comma_shape, ParseInputShape("--s", "784"));
  EXPECT_THAT(comma_shape, ElementsAre(784));
  EXPECT_THAT(ParseInputShape("--s", ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseInputShape("--s", "a,b"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::cli
