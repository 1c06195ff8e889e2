// Tests of RunSpec validation and resolution: defaults per method, a table of malformed specs each
// answered with INVALID_ARGUMENT naming its field, NOT_FOUND for a missing data directory, and the
// layer-text normalisation.
#include "trainer_service/service/run_plan.h"

#include <cmath>
#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;
using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

v1::RunSpec ValidSpec() {
  v1::RunSpec spec;
  spec.mutable_model()->set_preset("mlp");
  spec.mutable_data()->set_name("synthetic");
  spec.mutable_pretrain()->set_epochs(1);
  spec.mutable_pretrain()->set_batch_size(64);
  spec.mutable_pretrain()->mutable_optimizer()->set_learning_rate(0.05);
  spec.mutable_pruner()->set_address("127.0.0.1:1");
  spec.set_seed(42);
  return spec;
}

TEST(RunPlanTest, ResolvesTheCausalV2Defaults) {
  ASSERT_OK_AND_ASSIGN(RunPlan plan, ResolveRunSpec(ValidSpec(), {}));
  EXPECT_EQ(plan.method_kind, MethodKind::kCausalV2);
  EXPECT_EQ(plan.iterations, 10);
  ASSERT_EQ(plan.target_sparsity.size(), 10u);
  EXPECT_NEAR(plan.target_sparsity[0], 0.2439, 1e-4);
  EXPECT_NEAR(plan.target_sparsity[9], 0.9, 1e-12);
  EXPECT_EQ(plan.collection.epochs, 1);
  EXPECT_EQ(plan.collection.batch_size, 256);
  EXPECT_DOUBLE_EQ(plan.collection.learning_rate, 1e-3);
  EXPECT_FLOAT_EQ(plan.label_smoothing, 0.1f);
  EXPECT_TRUE(plan.wants_steps);
  EXPECT_FALSE(plan.wants_weights);
  EXPECT_FALSE(plan.rewind_to_pretrained);
  EXPECT_EQ(plan.method.seed(), 42u);  // the run seed seeds the pruner too
  EXPECT_TRUE(plan.pruner.enabled);
  EXPECT_TRUE(plan.pruner.fail_open);
  EXPECT_DOUBLE_EQ(plan.pruner.grace_seconds, 60.0);
  EXPECT_EQ(plan.data.test_batch_size, 1000);
  EXPECT_EQ(plan.model.input_shape, (std::vector<int64_t>{1, 28, 28}));
}

TEST(RunPlanTest, ResolvesTheCausalV1Defaults) {
  v1::RunSpec spec = ValidSpec();
  spec.mutable_method()->set_method(v1::METHOD_CAUSAL_V1);
  spec.mutable_method()->mutable_schedule()->set_iterations(3);
  spec.mutable_method()->set_seed(5);
  ASSERT_OK_AND_ASSIGN(RunPlan plan, ResolveRunSpec(spec, {}));
  EXPECT_EQ(plan.method_kind, MethodKind::kCausalV1);
  EXPECT_EQ(plan.collection.epochs, 10);
  EXPECT_EQ(plan.collection.batch_size, 512);
  EXPECT_FLOAT_EQ(plan.label_smoothing, 0.0f);
  EXPECT_TRUE(plan.rewind_to_pretrained);
  EXPECT_EQ(plan.iterations, 3);
  EXPECT_TRUE(std::isnan(plan.target_sparsity[0]));
  EXPECT_EQ(plan.method.seed(), 5u);  // a method seed is kept
}

TEST(RunPlanTest, BaselinesNeedNoStepsAndNoneNeedsNoPruner) {
  v1::RunSpec spec = ValidSpec();
  spec.mutable_method()->set_method(v1::METHOD_MAGNITUDE_GLOBAL);
  ASSERT_OK_AND_ASSIGN(RunPlan magnitude, ResolveRunSpec(spec, {}));
  EXPECT_FALSE(magnitude.wants_steps);
  EXPECT_TRUE(magnitude.wants_weights);
  spec.mutable_method()->set_method(v1::METHOD_NONE);
  spec.mutable_pruner()->clear_address();
  ASSERT_OK_AND_ASSIGN(RunPlan none, ResolveRunSpec(spec, {}));
  EXPECT_FALSE(none.pruner.enabled);
  RunSpecDefaults defaults;
  defaults.pruner_address = "127.0.0.1:2";
  spec.mutable_method()->set_method(v1::METHOD_CAUSAL_V2);
  ASSERT_OK_AND_ASSIGN(RunPlan with_default, ResolveRunSpec(spec, defaults));
  EXPECT_EQ(with_default.pruner.address, "127.0.0.1:2");
}

TEST(RunPlanTest, AcceptsTheProtoLayerGrammarAndSyntheticShapes) {
  v1::RunSpec spec = ValidSpec();
  spec.mutable_model()->set_layers("conv(4,3),relu,maxpool(2),flatten,fc(16),relu,fc(3)");
  spec.add_input_shape(1);
  spec.add_input_shape(10);
  spec.add_input_shape(10);
  spec.set_num_classes(3);
  ASSERT_OK_AND_ASSIGN(RunPlan plan, ResolveRunSpec(spec, {}));
  EXPECT_EQ(plan.data.num_classes, 3);
  EXPECT_EQ(plan.model.input_shape, (std::vector<int64_t>{1, 10, 10}));
  EXPECT_EQ(plan.model.layers.size(), 7u);
}

TEST(RunPlanTest, NormalizesLayerText) {
  EXPECT_EQ(NormalizeLayerText("conv(20,5),relu,maxpool(2),flatten,fc(500),relu,fc(10)"),
            "conv:20:5,relu,maxpool:2,flatten,linear:500,relu,linear:10");
  EXPECT_EQ(NormalizeLayerText("conv(8, 3, stride=2), fc(4, nobias)"), "conv:8:3:stride=2,linear:4:nobias");
  EXPECT_EQ(NormalizeLayerText("conv:20:5,relu"), "conv:20:5,relu");
}

TEST(RunPlanTest, MissingDataDirectoryIsNotFound) {
  v1::RunSpec spec = ValidSpec();
  spec.mutable_data()->set_name("fashion-mnist");
  spec.mutable_data()->set_directory("/nonexistent/gcprune-data");
  EXPECT_THAT(ResolveRunSpec(spec, {}), StatusIsWithMessage(absl::StatusCode::kNotFound, "/nonexistent/gcprune-data"));
  spec.mutable_data()->clear_directory();
  RunSpecDefaults defaults;
  defaults.data_root = "/nonexistent/root";
  EXPECT_THAT(ResolveRunSpec(spec, defaults), StatusIsWithMessage(absl::StatusCode::kNotFound, "/nonexistent/root"));
}

struct BadCase {
  const char* name;
  std::function<void(v1::RunSpec*)> mutate;
  const char* field;
};

TEST(RunPlanTest, MalformedSpecsNameTheField) {
  const BadCase cases[] = {
      {"no model", [](v1::RunSpec* s) { s->mutable_model()->clear_source(); }, "spec.model"},
      {"unknown preset", [](v1::RunSpec* s) { s->mutable_model()->set_preset("resnet9000"); }, "spec.model.preset"},
      {"bad layers", [](v1::RunSpec* s) { s->mutable_model()->set_layers("conv:x:5"); }, "spec.model.layers"},
      {"layers too big", [](v1::RunSpec* s) { s->mutable_model()->set_layers("conv:4:50,flatten,linear:10"); },
       "spec.model"},
      {"wrong class count", [](v1::RunSpec* s) { s->mutable_model()->set_layers("flatten,linear:5"); }, "10 classes"},
      {"data name", [](v1::RunSpec* s) { s->mutable_data()->set_name("imagenet"); }, "spec.data.name"},
      {"train subset", [](v1::RunSpec* s) { s->mutable_data()->set_train_subset(-1); }, "spec.data.train_subset"},
      {"test subset", [](v1::RunSpec* s) { s->mutable_data()->set_test_subset(-5); }, "spec.data.test_subset"},
      {"test batch", [](v1::RunSpec* s) { s->mutable_data()->set_test_batch_size(70000); },
       "spec.data.test_batch_size"},
      {"synthetic directory", [](v1::RunSpec* s) { s->mutable_data()->set_directory("/tmp"); }, "spec.data.directory"},
      {"input shape rank",
       [](v1::RunSpec* s) {
         s->add_input_shape(28);
         s->add_input_shape(28);
       },
       "spec.input_shape"},
      {"input shape value",
       [](v1::RunSpec* s) {
         s->add_input_shape(1);
         s->add_input_shape(0);
         s->add_input_shape(28);
       },
       "spec.input_shape[1]"},
      {"input shape vs data",
       [](v1::RunSpec* s) {
         s->mutable_data()->set_name("fashion-mnist");
         for (int d : {3, 32, 32}) s->add_input_shape(d);
       },
       "spec.input_shape"},
      {"num classes", [](v1::RunSpec* s) { s->set_num_classes(1); }, "spec.num_classes"},
      {"pretrain epochs", [](v1::RunSpec* s) { s->mutable_pretrain()->set_epochs(-1); }, "spec.pretrain.epochs"},
      {"pretrain batch", [](v1::RunSpec* s) { s->mutable_pretrain()->set_batch_size(0); }, "spec.pretrain.batch_size"},
      {"pretrain lr", [](v1::RunSpec* s) { s->mutable_pretrain()->mutable_optimizer()->set_learning_rate(0); },
       "spec.pretrain.optimizer.learning_rate"},
      {"optimizer kind", [](v1::RunSpec* s) { s->mutable_train()->mutable_optimizer()->set_kind(static_cast<v1::OptimizerKind>(9)); },
       "spec.train.optimizer.kind"},
      {"momentum", [](v1::RunSpec* s) { s->mutable_finetune()->mutable_optimizer()->set_momentum(1.0); },
       "spec.finetune.optimizer.momentum"},
      {"weight decay", [](v1::RunSpec* s) { s->mutable_finetune()->mutable_optimizer()->set_weight_decay(-1); },
       "spec.finetune.optimizer.weight_decay"},
      {"nesterov without momentum", [](v1::RunSpec* s) { s->mutable_train()->mutable_optimizer()->set_nesterov(true); },
       "spec.train.optimizer.nesterov"},
      {"adam momentum",
       [](v1::RunSpec* s) {
         s->mutable_train()->mutable_optimizer()->set_kind(v1::OPTIMIZER_KIND_ADAM);
         s->mutable_train()->mutable_optimizer()->set_momentum(0.9);
       },
       "spec.train.optimizer.momentum"},
      {"sgd beta", [](v1::RunSpec* s) { s->mutable_train()->mutable_optimizer()->set_beta1(0.5); },
       "spec.train.optimizer.beta1"},
      {"adam beta2",
       [](v1::RunSpec* s) {
         s->mutable_train()->mutable_optimizer()->set_kind(v1::OPTIMIZER_KIND_ADAM);
         s->mutable_train()->mutable_optimizer()->set_beta2(1.0);
       },
       "spec.train.optimizer.beta2"},
      {"step schedule", [](v1::RunSpec* s) { s->mutable_finetune()->mutable_lr_schedule()->set_kind(v1::LR_SCHEDULE_KIND_STEP); },
       "spec.finetune.lr_schedule.step_epochs"},
      {"cosine floor",
       [](v1::RunSpec* s) {
         s->mutable_finetune()->mutable_lr_schedule()->set_kind(v1::LR_SCHEDULE_KIND_COSINE);
         s->mutable_finetune()->mutable_lr_schedule()->set_min_learning_rate(-1);
       },
       "spec.finetune.lr_schedule.min_learning_rate"},
      {"early stop", [](v1::RunSpec* s) { s->mutable_finetune()->mutable_early_stop()->set_patience(-1); },
       "spec.finetune.early_stop.patience"},
      {"collection momentum v2", [](v1::RunSpec* s) { s->mutable_collection()->set_momentum(0.9); },
       "spec.collection.momentum"},
      {"collection batch", [](v1::RunSpec* s) { s->mutable_collection()->set_batch_size(-1); },
       "spec.collection.batch_size"},
      {"collection epochs", [](v1::RunSpec* s) { s->mutable_collection()->set_epochs(1001); }, "spec.collection.epochs"},
      {"collection lr", [](v1::RunSpec* s) { s->mutable_collection()->set_learning_rate(-0.1); },
       "spec.collection.learning_rate"},
      {"target sparsity", [](v1::RunSpec* s) { s->mutable_method()->mutable_schedule()->set_target_sparsity(1.5); },
       "spec.method.schedule.target_sparsity"},
      {"method enum", [](v1::RunSpec* s) { s->mutable_method()->set_method(static_cast<v1::Method>(99)); },
       "spec.method.method"},
      {"pruner address", [](v1::RunSpec* s) { s->mutable_pruner()->clear_address(); }, "spec.pruner.address"},
      {"grace", [](v1::RunSpec* s) { s->mutable_pruner()->set_grace_period_seconds(-1); },
       "spec.pruner.grace_period_seconds"},
      {"failure policy", [](v1::RunSpec* s) { s->mutable_pruner()->set_failure_policy(static_cast<v1::FailurePolicy>(7)); },
       "spec.pruner.failure_policy"},
      {"label smoothing", [](v1::RunSpec* s) { s->set_label_smoothing(1.0); }, "spec.label_smoothing"},
      {"label", [](v1::RunSpec* s) { s->set_label(std::string(300, 'x')); }, "spec.label"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::RunSpec spec = ValidSpec();
    c.mutate(&spec);
    EXPECT_THAT(ResolveRunSpec(spec, {}), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.field));
  }
}

}  // namespace
}  // namespace gcprune::trainer
