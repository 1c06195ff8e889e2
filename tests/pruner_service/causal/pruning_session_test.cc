// Tests of the pruning session: end to end on planted data (the weights that drive ΔL survive), exact
// counts per iteration, determinism, baselines, state errors, and the serialised metadata.
#include "pruner_service/causal/pruning_session.h"

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pruner_service/causal/splitmix64.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

constexpr double kEta = 1e-3;

// conv.weight 5x2x2x2 (40), its bias (not prunable), fc.weight 10x21 (210): N = 250.
Layout TestLayout() {
  absl::StatusOr<Layout> layout = Layout::Create(
      {{"conv.weight", {5, 2, 2, 2}, true}, {"conv.bias", {5}, false}, {"fc.weight", {10, 21}, true}});
  EXPECT_TRUE(layout.ok()) << layout.status();
  return *std::move(layout);
}

// Uniform and standard normal numbers from splitmix64 (Box–Muller), the same on every platform.
class Random {
 public:
  explicit Random(uint64_t seed) : rng_(seed) {}
  double Uniform() { return (static_cast<double>(rng_.Next() >> 11) + 0.5) * 0x1.0p-53; }
  double Normal() { return std::sqrt(-2.0 * std::log(Uniform())) * std::cos(6.283185307179586 * Uniform()); }

 private:
  SplitMix64 rng_;
};

// Synthetic collection steps in which only the `causal` features drive the loss change. Gradients are
// sparse, as with ReLU networks: g_k = σ · N(0, 1) with probability `density` (0.1), else 0; Δθ = −η g, and
// ΔL = −η Σ_{k ∈ causal} g_k² + noise, the first-order loss change of those weights alone. σ keeps
// x = Δθ²/η² = g² small, the regime in which LassoSGD is stable (as with real gradients).
class PlantedSteps {
 public:
  PlantedSteps(const Layout& layout, std::set<int64_t> causal, uint64_t seed, double density = 0.1)
      : mask_(layout), causal_(std::move(causal)), random_(seed), density_(density) {}

  // Step `step`'s header and deltas (one vector per prunable tensor).
  void Make(int64_t step, StepHeader* header, std::vector<std::vector<float>>* deltas) {
    constexpr double kSigma = 0.1;
    deltas->clear();
    double dl = 0;
    for (int p = 0; p < mask_.num_tensors(); ++p) {
      std::vector<float> d(static_cast<size_t>(mask_.tensor(p).numel));
      for (size_t i = 0; i < d.size(); ++i) {
        const double g = random_.Uniform() < density_ ? kSigma * random_.Normal() : 0.0;
        d[i] = static_cast<float>(-kEta * g);
        if (causal_.count(mask_.tensor(p).offset + static_cast<int64_t>(i))) dl -= kEta * g * g;
      }
      deltas->push_back(std::move(d));
    }
    dl += 1e-3 * kEta * kSigma * kSigma * random_.Normal();
    loss_ += dl;
    *header = StepHeader{step, loss_ - dl, loss_, kEta};
  }

 private:
  MaskSet mask_;
  std::set<int64_t> causal_;
  Random random_;
  double density_;
  double loss_ = 2.3;
};

TensorWeights Spans(const std::vector<std::vector<float>>& v) {
  TensorWeights spans;
  for (const auto& x : v) spans.push_back(x);
  return spans;
}

// Feeds `steps` planted steps per iteration and ends every iteration; returns the results.
std::vector<IterationResult> RunPlanted(PruningSession* session, const std::set<int64_t>& causal,
                                        uint64_t data_seed, int steps, double density = 0.1) {
  PlantedSteps source(session->layout(), causal, data_seed, density);
  std::vector<IterationResult> results;
  int64_t step = 0;
  while (!session->finished()) {
    for (int s = 0; s < steps; ++s) {
      StepHeader header;
      std::vector<std::vector<float>> deltas;
      source.Make(step++, &header, &deltas);
      const absl::Status status = session->AddStep(header, Spans(deltas));
      EXPECT_TRUE(status.ok()) << status;
    }
    absl::StatusOr<IterationResult> result = session->EndIteration();
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) break;
    results.push_back(*std::move(result));
  }
  return results;
}

const std::set<int64_t> kCausal = {3, 17, 38, 40, 41, 77, 120, 160, 201, 249};

TEST(PruningSessionTest, CausalV2KeepsThePlantedWeightsAndHitsEveryTargetCount) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("schedule.iterations=3 seed=11"));
  // 10 planted of 250 weights, 25 kept at the end: keeping all 10 by chance has probability ~1e-12.
  for (uint64_t data_seed : {5, 6, 7}) {
    SCOPED_TRACE(data_seed);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
    EXPECT_TRUE(session->wants_steps());
    EXPECT_FALSE(session->wants_weights());
    EXPECT_EQ(session->total_iterations(), 3);
    const std::vector<IterationResult> results = RunPlanted(session.get(), kCausal, data_seed, 2000);
    ASSERT_EQ(results.size(), 3u);
    for (const IterationResult& r : results) {
      SCOPED_TRACE(r.iteration);
      const int64_t target = RoundHalfEven(session->schedule().TargetSparsity(r.iteration) * 250);
      EXPECT_EQ(r.masks.num_pruned(), target);
      EXPECT_EQ(r.report.pruned, target);
      EXPECT_EQ(r.report.num_samples, 2000);
      EXPECT_EQ(r.report.shortfall, 0);
      ASSERT_TRUE(r.report.fit.has_value());
      EXPECT_GE(r.report.fit->epochs, 1);
      EXPECT_EQ(r.report.coefficients.size(), 2u);
      EXPECT_EQ(r.report.tensors.size(), 2u);
      EXPECT_EQ(r.report.tensors[1].tensor_index, 2);
    }
    EXPECT_EQ(results.back().masks.num_pruned(), 225);  // P = 0.9 of 250
    EXPECT_TRUE(results.back().report.final_iteration);
    for (int64_t k : kCausal) EXPECT_TRUE(results.back().masks.is_kept(k)) << "planted weight " << k;
    EXPECT_EQ(session->num_samples(), 0);
  }
}

TEST(PruningSessionTest, MasksAreMonotoneAndTheHistoryRebuildsThem) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("schedule.iterations=4"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
  const std::vector<IterationResult> results = RunPlanted(session.get(), kCausal, 6, 100);
  ASSERT_EQ(results.size(), 4u);
  MaskSet previous(session->layout());
  for (const IterationResult& r : results) {
    SCOPED_TRACE(r.iteration);
    MaskSet copy = previous;
    EXPECT_OK(copy.Update(r.masks));  // fails if a weight came back
    ASSERT_OK_AND_ASSIGN(MaskSet rebuilt, session->MasksAfter(r.iteration));
    EXPECT_EQ(rebuilt, r.masks);
    previous = r.masks;
  }
  ASSERT_OK_AND_ASSIGN(MaskSet initial, session->MasksAfter(0));
  EXPECT_EQ(initial.num_pruned(), 0);
  EXPECT_THAT(session->MasksAfter(5), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(PruningSessionTest, SameSeedAndSamplesGiveIdenticalMasks) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("schedule.iterations=2 seed=99"));
  std::vector<std::vector<IterationResult>> runs;
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.solver_threads = threads;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session,
                         PruningSession::Create(TestLayout(), config, options));
    runs.push_back(RunPlanted(session.get(), kCausal, 8, 150));
  }
  ASSERT_EQ(runs[0].size(), 2u);
  ASSERT_EQ(runs[1].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(runs[0][i].masks, runs[1][i].masks);
    EXPECT_EQ(runs[0][i].report.fit->final_loss, runs[1][i].report.fit->final_loss);
  }
}

TEST(PruningSessionTest, SolverVariantsRunEndToEnd) {
  struct Case {
    const char* config;
    bool planted_survive;
  };
  const std::vector<Case> cases = {
      {"schedule.iterations=2 reference_ranking=true", true},
      {"schedule.iterations=2 sample_encoding=bfloat16", true},
      {"schedule.iterations=2 schedule.scope=per-layer", false},
      {"schedule.iterations=2 schedule.kind=geometric schedule.count_rule=reference", true},
      // The exact Lasso keeps at most T non-zeros; here T = 2000 > N = 250.
      {"schedule.iterations=2 solver=exact", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.config);
    ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig(c.config));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
    const std::vector<IterationResult> results = RunPlanted(session.get(), kCausal, 5, 2000);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results.back().masks.num_pruned(), 225);
    if (c.planted_survive) {
      for (int64_t k : kCausal) EXPECT_TRUE(results.back().masks.is_kept(k)) << "planted weight " << k;
    }
  }
}

TEST(PruningSessionTest, CausalV1PrunesZeroCoefficientsAndKeepsOnePerLayer) {
  struct Case {
    const char* config;
    int64_t pruned;
  };
  const std::vector<Case> cases = {
      {"method=causal-v1 schedule.iterations=1 lasso_sgd.l1=0", 0},      // nothing shrinks to 0
      {"method=causal-v1 schedule.iterations=1 lasso_sgd.l1=1e6", 248},  // all 0; one weight per layer stays
      {"method=causal-v1 schedule.iterations=1 lasso_sgd.l1=1e6 schedule.allow_layer_collapse=true", 250},
      {"method=causal-v1 schedule.iterations=1 lasso_sgd.l1=1e6 v1_momentum=true schedule.scope=global", 248},
      {"method=causal-v1 schedule.iterations=1 lasso_sgd.l1=1e6 v1_momentum=true", 248},
      {"method=causal-v1 schedule.iterations=1 lasso_sgd.l1=0 schedule.scope=global", 0},
      {"method=causal-v1 schedule.iterations=1 solver=exact exact.alpha=1e6", 248},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.config);
    ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig(c.config));
    // One update per sample makes threads pure overhead at this size.
    SessionOptions options;
    options.solver_threads = 1;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session,
                         PruningSession::Create(TestLayout(), config, options));
    const std::vector<IterationResult> results = RunPlanted(session.get(), kCausal, 3, 40, /*density=*/1.0);
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].masks.num_pruned(), c.pruned);
    EXPECT_TRUE(std::isnan(results[0].report.target_sparsity));
    EXPECT_GT(results[0].report.num_samples, 30);  // V1: S − 1 (or S − 2) samples
  }
}

TEST(PruningSessionTest, MagnitudeBaselineFollowsTheGeometricScheduleExactly) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config,
                       ParseMethodConfig("method=magnitude-global schedule.target_sparsity=0.8 "
                                         "schedule.iterations=4 schedule.allow_layer_collapse=true"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
  EXPECT_FALSE(session->wants_steps());
  EXPECT_TRUE(session->wants_weights());
  EXPECT_EQ(session->schedule().kind(), ScheduleKind::kGeometric);
  // |w_k| = k + 1 in feature order: the smallest indices go first.
  std::vector<float> conv(40), fc(210);
  for (int k = 0; k < 40; ++k) conv[k] = (k % 2 ? -1.0f : 1.0f) * static_cast<float>(k + 1);
  for (int k = 0; k < 210; ++k) fc[k] = static_cast<float>(k + 41);
  EXPECT_THAT(session->EndIteration(),
              StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "needs the current weights"));
  for (int j = 1; j <= 4; ++j) {
    SCOPED_TRACE(j);
    ASSERT_OK_AND_ASSIGN(IterationResult r, session->EndIteration({conv, fc}));
    const int64_t target = RoundHalfEven((1 - std::pow(0.2, j / 4.0)) * 250);
    EXPECT_EQ(r.masks.num_pruned(), target);
    for (int64_t k = 0; k < 250; ++k) ASSERT_EQ(r.masks.is_kept(k), k >= target) << k;
  }
  EXPECT_TRUE(session->finished());
}

TEST(PruningSessionTest, LayerMagnitudeAndRandomAndNone) {
  const std::vector<float> conv(40, 1.0f), fc(210, 1.0f);
  {
    ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("method=magnitude-layer schedule.kind=one-shot "
                                                                "schedule.target_sparsity=0.5"));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
    ASSERT_OK_AND_ASSIGN(IterationResult r, session->EndIteration({conv, fc}));
    EXPECT_EQ(r.masks.num_pruned(0), 20);
    EXPECT_EQ(r.masks.num_pruned(1), 105);
  }
  {
    ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("method=random seed=3 schedule.iterations=2"));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> a, PruningSession::Create(TestLayout(), config));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> b, PruningSession::Create(TestLayout(), config));
    for (int j = 1; j <= 2; ++j) {
      ASSERT_OK_AND_ASSIGN(IterationResult ra, a->EndIteration());
      ASSERT_OK_AND_ASSIGN(IterationResult rb, b->EndIteration());
      EXPECT_EQ(ra.masks, rb.masks);
    }
    EXPECT_EQ(a->masks().num_pruned(), 225);
  }
  {
    ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("method=none schedule.iterations=2"));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
    ASSERT_OK_AND_ASSIGN(IterationResult r, session->EndIteration());
    EXPECT_EQ(r.masks.num_pruned(), 0);
    EXPECT_EQ(r.report.target_sparsity, 0.0);
  }
}

TEST(PruningSessionTest, StateErrorsLeaveTheSessionUnchanged) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("schedule.iterations=1"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
  EXPECT_THAT(session->EndIteration(), StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "no samples"));

  PlantedSteps source(session->layout(), kCausal, 1);
  StepHeader header;
  std::vector<std::vector<float>> deltas;
  source.Make(0, &header, &deltas);
  EXPECT_THAT(session->AddStep(header, {deltas[0]}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "deltas of 1 tensors"));
  ASSERT_OK(session->BeginStep(header));
  ASSERT_OK(session->AddDeltas(0, 0, deltas[0]));
  EXPECT_THAT(session->EndIteration(), StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "still open"));
  EXPECT_THAT(session->EndStep(), StatusIs(absl::StatusCode::kInvalidArgument));  // fc.weight missing
  EXPECT_THAT(session->AddDeltas(1, 0, deltas[1]), StatusIs(absl::StatusCode::kInvalidArgument));  // the bias
  ASSERT_OK(session->AddDeltas(2, 0, deltas[1]));
  ASSERT_OK(session->EndStep());
  EXPECT_EQ(session->num_samples(), 1);
  ASSERT_OK_AND_ASSIGN(IterationResult r, session->EndIteration());
  EXPECT_EQ(r.iteration, 1);
  EXPECT_THAT(session->EndIteration(), StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "done"));
  EXPECT_THAT(session->BeginStep(header), StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_OK_AND_ASSIGN(MethodConfig magnitude, ParseMethodConfig("method=magnitude-global"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> m, PruningSession::Create(TestLayout(), magnitude));
  EXPECT_THAT(m->BeginStep(header), StatusIsWithMessage(absl::StatusCode::kFailedPrecondition, "takes no steps"));
  const std::vector<float> short_fc(209, 1.0f), conv(40, 1.0f), fc(210, 1.0f);
  EXPECT_THAT(m->EndIteration({conv, short_fc}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(m->completed_iterations(), 0);
  EXPECT_OK(m->EndIteration({conv, fc}));
  EXPECT_EQ(m->completed_iterations(), 1);
}

TEST(PruningSessionTest, CreateRejectsInvalidConfigAndOptions) {
  MethodConfig config;
  config.schedule.target_sparsity = 1.5;
  EXPECT_THAT(PruningSession::Create(TestLayout(), config),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "schedule.target_sparsity"));
  SessionOptions options;
  options.solver_threads = 0;
  EXPECT_THAT(PruningSession::Create(TestLayout(), MethodConfig{}, options),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "solver_threads"));
}

TEST(PruningSessionTest, SerializedSessionContinuesIdentically) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config,
                       ParseMethodConfig("schedule.iterations=3 seed=21 schedule.scope=global"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> original, PruningSession::Create(TestLayout(), config));
  PlantedSteps source(original->layout(), kCausal, 4);
  std::vector<std::pair<StepHeader, std::vector<std::vector<float>>>> steps(100);
  for (int s = 0; s < 100; ++s) source.Make(s, &steps[s].first, &steps[s].second);
  for (int s = 0; s < 50; ++s) ASSERT_OK(original->AddStep(steps[s].first, Spans(steps[s].second)));
  ASSERT_OK(original->EndIteration());

  const std::string blob = original->Serialize();
  EXPECT_LT(blob.size(), 2 * 250 + 2000u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> restored, PruningSession::Deserialize(blob));
  EXPECT_EQ(restored->completed_iterations(), 1);
  EXPECT_EQ(restored->masks(), original->masks());
  EXPECT_EQ(restored->config(), original->config());
  EXPECT_EQ(restored->layout().tensors().size(), 3u);
  EXPECT_FALSE(restored->layout().tensor(1).prunable);
  EXPECT_EQ(restored->Serialize(), blob);

  for (PruningSession* s : {original.get(), restored.get()}) {
    for (int k = 50; k < 100; ++k) ASSERT_OK(s->AddStep(steps[k].first, Spans(steps[k].second)));
  }
  ASSERT_OK_AND_ASSIGN(IterationResult a, original->EndIteration());
  ASSERT_OK_AND_ASSIGN(IterationResult b, restored->EndIteration());
  EXPECT_EQ(a.masks, b.masks);
  ASSERT_OK_AND_ASSIGN(MaskSet first_a, original->MasksAfter(1));
  ASSERT_OK_AND_ASSIGN(MaskSet first_b, restored->MasksAfter(1));
  EXPECT_EQ(first_a, first_b);
}

// Rewrites the trailing CRC so that a deliberate change passes the checksum.
std::string WithCrc(std::string blob) {
  blob.resize(blob.size() - 4);
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : blob) {
    crc ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  crc ^= 0xFFFFFFFFu;
  for (int i = 0; i < 4; ++i) blob.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  return blob;
}

TEST(PruningSessionTest, DeserializeRejectsDamagedBlobs) {
  ASSERT_OK_AND_ASSIGN(MethodConfig config, ParseMethodConfig("method=random schedule.iterations=3"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PruningSession> session, PruningSession::Create(TestLayout(), config));
  ASSERT_OK(session->EndIteration());
  const std::string blob = session->Serialize();

  std::string flipped = blob;
  flipped[blob.size() / 2] ^= 0x10;
  std::string version = blob;
  version[8] = 2;
  std::string completed = blob;
  // completed iterations sit just before N (i64) and the 2N history bytes and the CRC.
  completed[blob.size() - 4 - 500 - 8 - 4] = 0;
  std::string trailing = blob.substr(0, blob.size() - 4) + "x" + blob.substr(blob.size() - 4);

  struct Case {
    const char* what;
    std::string data;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"empty", "", absl::StatusCode::kDataLoss, "bad magic"},
      {"other data", std::string(100, 'x'), absl::StatusCode::kDataLoss, "bad magic"},
      {"flipped bit", flipped, absl::StatusCode::kDataLoss, "CRC-32 mismatch"},
      {"truncated", blob.substr(0, blob.size() - 7), absl::StatusCode::kDataLoss, "CRC-32"},
      {"truncated with valid CRC", WithCrc(blob.substr(0, 40) + "abcd"), absl::StatusCode::kDataLoss, "truncated"},
      {"newer version", WithCrc(version), absl::StatusCode::kFailedPrecondition, "version 2"},
      {"history beyond completed", WithCrc(completed), absl::StatusCode::kDataLoss,
       "pruned at iteration 1 after the 0 completed"},
      {"trailing bytes", WithCrc(trailing), absl::StatusCode::kDataLoss, "trailing bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(PruningSession::Deserialize(c.data), StatusIsWithMessage(c.code, c.message));
  }
  EXPECT_OK(PruningSession::Deserialize(blob));
}

}  // namespace
}  // namespace gcprune::pruner
