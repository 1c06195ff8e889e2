// Tests of PretrainCache (eviction by bytes, recency, oversized entries) and PretrainKey (every setting
// that decides the pre-trained weights changes the key; the rest does not).
#include "trainer_service/service/pretrain_cache.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "trainer_service/service/run_plan.h"

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

std::shared_ptr<const PretrainedModel> Entry(int64_t floats, const std::string& source) {
  auto entry = std::make_shared<PretrainedModel>();
  entry->model.values.push_back(std::vector<float>(static_cast<size_t>(floats), 1.0f));
  entry->source_run = source;
  return entry;
}

TEST(PretrainCacheTest, FindsWhatWasInserted) {
  PretrainCache cache(1 << 20);
  EXPECT_EQ(cache.Find("a"), nullptr);
  cache.Insert("a", Entry(100, "run-a"));
  ASSERT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.Find("a")->source_run, "run-a");
  EXPECT_EQ(cache.bytes(), 400);
  cache.Insert("a", Entry(50, "run-b"));  // replaced
  EXPECT_EQ(cache.Find("a")->source_run, "run-b");
  EXPECT_EQ(cache.bytes(), 200);
  EXPECT_EQ(cache.size(), 1);
}

TEST(PretrainCacheTest, EvictsTheLeastRecentlyUsedBeyondTheBudget) {
  PretrainCache cache(1000);  // two entries of 400 bytes fit, three do not
  cache.Insert("a", Entry(100, "a"));
  cache.Insert("b", Entry(100, "b"));
  ASSERT_NE(cache.Find("a"), nullptr);  // "b" is now the least recently used
  cache.Insert("c", Entry(100, "c"));
  EXPECT_NE(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.Find("b"), nullptr);
  EXPECT_NE(cache.Find("c"), nullptr);
  EXPECT_EQ(cache.bytes(), 800);
  // An entry larger than the budget is not kept and evicts nothing.
  cache.Insert("huge", Entry(1000, "huge"));
  EXPECT_EQ(cache.Find("huge"), nullptr);
  EXPECT_EQ(cache.size(), 2);
}

TEST(PretrainCacheTest, AZeroBudgetKeepsNothing) {
  PretrainCache cache(0);
  cache.Insert("a", Entry(1, "a"));
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.bytes(), 0);
}

v1::RunSpec Spec() {
  v1::RunSpec spec;
  spec.mutable_model()->set_preset("mlp");
  spec.mutable_data()->set_name("synthetic");
  spec.mutable_data()->set_train_subset(256);
  spec.mutable_pretrain()->set_epochs(2);
  spec.mutable_pretrain()->set_batch_size(64);
  spec.mutable_pretrain()->mutable_optimizer()->set_learning_rate(0.05);
  spec.mutable_method()->set_method(v1::METHOD_CAUSAL_V2);
  spec.mutable_pruner()->set_address("127.0.0.1:1");
  spec.set_seed(11);
  return spec;
}

std::string KeyOf(const v1::RunSpec& spec, int threads = 2) {
  absl::StatusOr<RunPlan> plan = ResolveRunSpec(spec, {});
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? PretrainKey(*plan, threads) : "";
}

TEST(PretrainKeyTest, ChangesWithEverySettingOfThePretraining) {
  const std::string base = KeyOf(Spec());
  EXPECT_EQ(base, KeyOf(Spec()));
  EXPECT_NE(base, KeyOf(Spec(), 1));
  auto changed = [&](auto edit) {
    v1::RunSpec spec = Spec();
    edit(&spec);
    return KeyOf(spec);
  };
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->set_seed(12); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_model()->set_preset("lenet5"); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_data()->set_train_subset(128); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_pretrain()->set_epochs(3); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_pretrain()->set_batch_size(32); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_pretrain()->mutable_optimizer()->set_learning_rate(0.0500001); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_pretrain()->mutable_optimizer()->set_momentum(0.9); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->set_label_smoothing(0.05); }));
  EXPECT_NE(base, changed([](v1::RunSpec* s) { s->mutable_method()->set_method(v1::METHOD_CAUSAL_V1); }));  // ε = 0
  // Settings after pre-training do not change it.
  EXPECT_EQ(base, changed([](v1::RunSpec* s) { s->mutable_method()->set_method(v1::METHOD_MAGNITUDE_GLOBAL); }));
  EXPECT_EQ(base, changed([](v1::RunSpec* s) { s->mutable_finetune()->set_epochs(7);
    s->mutable_finetune()->set_batch_size(32);
    s->mutable_finetune()->mutable_optimizer()->set_learning_rate(0.01); }));
  EXPECT_EQ(base, changed([](v1::RunSpec* s) { s->mutable_method()->mutable_schedule()->set_target_sparsity(0.3); }));
  EXPECT_EQ(base, changed([](v1::RunSpec* s) { s->set_label("another"); }));
}

}  // namespace
}  // namespace gcprune::trainer
