// Tests of LassoSGD: hand-checked updates against an independent Python implementation
// (testdata/lasso_sgd_reference.py), early stopping and best-epoch restore, frozen coefficients,
// determinism, encodings, and option validation.
#include "pruner_service/causal/lasso_sgd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "pruner_service/causal/sample_store.h"
#include "pruner_service/causal/splitmix64.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

// A dense row-major matrix: the simplest RowSource.
class DenseRows : public RowSource {
 public:
  explicit DenseRows(std::vector<std::vector<float>> rows) : rows_(std::move(rows)) {}
  int64_t num_rows() const override { return static_cast<int64_t>(rows_.size()); }
  int64_t num_cols() const override { return rows_.empty() ? 0 : static_cast<int64_t>(rows_[0].size()); }
  const float* Row(int64_t t, float*) const override { return rows_[static_cast<size_t>(t)].data(); }

 private:
  std::vector<std::vector<float>> rows_;
};

// A source that always decodes into the caller's scratch buffer.
class CopyingRows : public RowSource {
 public:
  explicit CopyingRows(const DenseRows* inner) : inner_(inner) {}
  int64_t num_rows() const override { return inner_->num_rows(); }
  int64_t num_cols() const override { return inner_->num_cols(); }
  const float* Row(int64_t t, float* scratch) const override {
    const float* row = inner_->Row(t, nullptr);
    std::copy(row, row + num_cols(), scratch);
    return scratch;
  }

 private:
  const DenseRows* inner_;
};

// The example of testdata/lasso_sgd_reference.py: T = 3, N = 6, feature 3 frozen.
const DenseRows& Example() {
  static const DenseRows* rows = new DenseRows({{1.0f, 0.5f, 2.0f, 3.0f, 0.01f, 0.0f},
                                                {0.2f, 1.5f, 1.0f, 1.0f, 0.0f, 0.03f},
                                                {2.0f, 0.1f, 0.5f, 0.7f, 0.01f, 0.0f}});
  return *rows;
}
const std::vector<double> kExampleY = {-0.03, 0.01, -0.04};
const std::vector<uint8_t> kExampleActive = {1, 1, 1, 0, 1, 1};

void ExpectClose(const std::vector<float>& actual, const std::vector<double>& expected, double rel) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    EXPECT_NEAR(actual[k], expected[k], rel * std::max(1e-6, std::fabs(expected[k]))) << "k = " << k;
  }
}

LassoSgdV2Options ExampleV2Options() {
  LassoSgdV2Options options;
  options.minibatch = 2;
  options.l1 = 0.3;  // α = 0.3 / 6 = 0.05: large enough to clip features 4 (z > 0) and 5 (z < 0) to 0
  options.max_epochs = 1;
  options.seed = 42;
  return options;
}

TEST(LassoSgdTest, NormalizesTargetsByTheirMean) {
  const std::vector<double> y = {-0.03, 0.01, -0.04};
  EXPECT_EQ(NormalizeTargetsV2(y), (std::vector<double>{1.5, -0.5, 2.0}));
  EXPECT_EQ(NormalizeTargetsV2(std::vector<double>{1.0, -1.0}), (std::vector<double>{0.0, 0.0}));  // mean 0
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(NormalizeTargetsV2(std::vector<double>{1.0, inf}), (std::vector<double>{0.0, 0.0}));
}

TEST(LassoSgdTest, MatchesHandComputedMinibatchUpdates) {
  // Epoch 1 order (seed 42, T = 3): {0, 2, 1}; updates on rows {0, 2} then {1}. After the first update
  // u = 0.005 and feature 4 (z = 0.0035 > 0) is clipped to 0 with q_4 = −0.0035; in the second
  // feature 5 (z = −0.00638 < 0) is clipped to 0 and feature 1 changes sign through the z < 0 branch.
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result result,
                       FitLassoSgdV2(Example(), kExampleY, kExampleActive, ExampleV2Options()));
  ExpectClose(result.beta, {0.497825891, -0.214152232, 0.177789912, 0, 0, 0}, 2e-6);
  ExpectClose(result.reference_beta, {0.545000017, 0.0899999961, 0.395000011, 0, 0, 0}, 2e-6);
  ASSERT_EQ(result.report.epoch_losses.size(), 1u);
  EXPECT_NEAR(result.report.epoch_losses[0], 2.21116051125, 1e-6);
  EXPECT_EQ(result.report.updates, 2);
  EXPECT_EQ(result.report.best_epoch, 1);
  EXPECT_FALSE(result.report.stopped_early);
  EXPECT_EQ(result.report.nonzero, 3);
  EXPECT_EQ(result.report.negative, 1);
  EXPECT_EQ(result.beta[4], 0.0f);
  EXPECT_EQ(result.beta[5], 0.0f);
}

TEST(LassoSgdTest, V1MatchesHandComputedPerSampleUpdates) {
  LassoSgdV1Options options;
  options.l1 = 1e-4;
  options.max_epochs = 3;
  options.seed = 7;
  ASSERT_OK_AND_ASSIGN(LassoSgdV1Result result,
                       FitLassoSgdV1(Example(), kExampleY, std::vector<uint8_t>(6, 1), {{{0, 6}}}, options));
  ExpectClose(result.beta,
              {-0.0020781043, 4.22818412e-05, -0.00117385178, -0.00185290433, -6.86477233e-06, 1.36194103e-06}, 1e-5);
  ASSERT_EQ(result.reports.size(), 1u);
  const LassoSgdReport& report = result.reports[0];
  ASSERT_EQ(report.epoch_losses.size(), 3u);
  EXPECT_NEAR(report.epoch_losses[0], 0.000424496393894, 1e-11);
  EXPECT_NEAR(report.epoch_losses[1], 0.000360432814289, 1e-11);
  EXPECT_NEAR(report.epoch_losses[2], 0.000318339080511, 1e-11);
  EXPECT_EQ(report.updates, 9);
  EXPECT_EQ(report.best_epoch, 3);
}

TEST(LassoSgdTest, StopsEarlyAndRestoresTheBestEpoch) {
  // With tol = 1e9 no epoch after the first counts as an improvement: stop after 1 + patience epochs,
  // restore epoch 1's β (bit-identical to a one-epoch fit); the reference vector is from epoch 3.
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result one_epoch,
                       FitLassoSgdV2(Example(), kExampleY, kExampleActive, ExampleV2Options()));
  LassoSgdV2Options options = ExampleV2Options();
  options.max_epochs = 30;
  options.tol = 1e9;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result result, FitLassoSgdV2(Example(), kExampleY, kExampleActive, options));
  EXPECT_EQ(result.report.epochs_run, 3);
  EXPECT_TRUE(result.report.stopped_early);
  EXPECT_EQ(result.report.best_epoch, 1);
  EXPECT_EQ(result.report.updates, 6);
  EXPECT_EQ(0, std::memcmp(result.beta.data(), one_epoch.beta.data(), 6 * sizeof(float)));
  ExpectClose(result.reference_beta, {0.812198877, -0.193778932, 0.409198195, 0, 0, 0}, 2e-6);
  EXPECT_NEAR(result.report.epoch_losses[1], 0.469523384151, 1e-6);
  EXPECT_NEAR(result.report.epoch_losses[2], 0.329905862376, 1e-6);
  EXPECT_EQ(result.report.final_loss, result.report.epoch_losses[2]);
  EXPECT_EQ(result.report.best_loss, result.report.epoch_losses[0]);
}

TEST(LassoSgdTest, RestoresALaterBestEpochAfterTheLossRises) {
  // Reference defaults except the data: losses fall until epoch 9, rise in 10 and 11, so the fit stops
  // after 11 epochs and returns epoch 9's β.
  LassoSgdV2Options options = ExampleV2Options();
  options.l1 = 1e-3;
  options.max_epochs = 30;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result result, FitLassoSgdV2(Example(), kExampleY, kExampleActive, options));
  EXPECT_EQ(result.report.epochs_run, 11);
  EXPECT_EQ(result.report.best_epoch, 9);
  EXPECT_TRUE(result.report.stopped_early);
  const std::vector<double> losses = {2.22657627551,  0.44187582944,  0.301803949927, 0.146314606924,
                                      0.0787042449037, 0.0251728725955, 0.0156355189058, 0.0132484274432,
                                      0.011547823279, 0.019329961739, 0.0138609777248};
  ASSERT_EQ(result.report.epoch_losses.size(), losses.size());
  for (size_t e = 0; e < losses.size(); ++e) EXPECT_NEAR(result.report.epoch_losses[e], losses[e], 1e-5 * losses[e]) << e;
  ExpectClose(result.beta, {0.945008993, -0.603601038, 0.361614376, 0, 0.00687677134, -0.0162120126}, 1e-5);
  ExpectClose(result.reference_beta, {0.952858984, -0.628021717, 0.384077847, 0, 0.00702763908, -0.0169005822}, 1e-5);
}

// A random problem shaped like the causal regression: x = squared changes (Student-t(3) when `heavy`,
// else normal), y = a negative loss change driven by `planted` features whose changes are
// `planted_scale` times larger. Every x is multiplied by `x_scale`, which keeps SGD with lr 0.1 stable.
struct Problem {
  DenseRows rows;
  std::vector<double> y;
  std::vector<int64_t> planted;
};

Problem MakeProblem(int t_rows, int n, int planted, uint32_t seed, bool heavy = true, float planted_scale = 1.0f) {
  std::mt19937 gen(seed);
  std::student_t_distribution<float> student(3.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), gen);
  idx.resize(static_cast<size_t>(planted));
  std::vector<float> scale(static_cast<size_t>(n), 1.0f);
  for (int64_t k : idx) scale[static_cast<size_t>(k)] = planted_scale;
  const float x_scale = 1.0f / (3.0f * static_cast<float>(n));
  std::vector<std::vector<float>> x(static_cast<size_t>(t_rows), std::vector<float>(static_cast<size_t>(n)));
  std::vector<double> y(static_cast<size_t>(t_rows));
  for (int t = 0; t < t_rows; ++t) {
    for (int k = 0; k < n; ++k) {
      const float g = (heavy ? student(gen) : normal(gen)) * scale[static_cast<size_t>(k)];
      x[t][k] = g * g * x_scale;
    }
    double s = -0.01;
    for (size_t j = 0; j < idx.size(); ++j) s -= 0.5 * (1.0 + 0.1 * static_cast<double>(j)) * x[t][idx[j]];
    y[t] = s + 1e-4 * noise(gen);
  }
  return Problem{DenseRows(std::move(x)), std::move(y), std::move(idx)};
}

std::unique_ptr<SampleStore> StoreOf(const DenseRows& rows, const std::vector<double>& y, SampleEncoding encoding) {
  const int n = static_cast<int>(rows.num_cols());
  absl::StatusOr<Layout> layout = Layout::Create({{"w", {n}, true}});
  EXPECT_TRUE(layout.ok());
  auto store = SampleStore::Create(*layout, SampleStoreOptions{encoding, int64_t{1} << 30, 1});
  EXPECT_TRUE(store.ok());
  for (int64_t t = 0; t < rows.num_rows(); ++t) {
    EXPECT_OK((*store)->BeginSample());
    EXPECT_OK((*store)->AppendFeatures(0, 0, absl::MakeConstSpan(rows.Row(t, nullptr), static_cast<size_t>(n))));
    EXPECT_OK((*store)->CommitSample(y[static_cast<size_t>(t)]).status());
  }
  return std::move(store).value();
}

TEST(LassoSgdTest, FrozenCoefficientsStayExactlyZero) {
  const Problem p = MakeProblem(40, 9000, 10, 1);
  std::vector<uint8_t> active(9000, 1);
  for (size_t k = 0; k < active.size(); k += 3) active[k] = 0;
  for (int64_t k : p.planted) active[static_cast<size_t>(k)] = 0;  // even the most causal ones
  LassoSgdV2Options options;
  options.max_epochs = 4;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result result, FitLassoSgdV2(p.rows, p.y, active, options));
  int64_t nonzero_active = 0;
  for (size_t k = 0; k < active.size(); ++k) {
    if (active[k] == 0) {
      ASSERT_EQ(result.beta[k], 0.0f) << k;
      ASSERT_EQ(result.reference_beta[k], 0.0f) << k;
    } else {
      nonzero_active += result.beta[k] != 0.0f ? 1 : 0;
    }
  }
  EXPECT_GT(nonzero_active, 1000);
}

TEST(LassoSgdTest, SameSeedIsBitIdenticalForAnyThreadCountAndSource) {
  const Problem p = MakeProblem(37, 40000, 5, 2);  // three column chunks, the last of 7232 columns
  const std::vector<uint8_t> active(40000, 1);
  LassoSgdV2Options options;
  options.seed = 314159;
  options.max_epochs = 3;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result a, FitLassoSgdV2(p.rows, p.y, active, options));
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result b, FitLassoSgdV2(p.rows, p.y, active, options));
  options.num_threads = 1;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result serial, FitLassoSgdV2(p.rows, p.y, active, options));
  options.num_threads = 3;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result three, FitLassoSgdV2(p.rows, p.y, active, options));
  const CopyingRows copying(&p.rows);
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result copied, FitLassoSgdV2(copying, p.y, active, options));
  auto store = StoreOf(p.rows, p.y, SampleEncoding::kFloat32);
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result stored, FitLassoSgdV2(*store, store->targets(), active, options));
  // Minibatches read one row or three rows at a time (the gradient sums carried between them).
  options.num_threads = 2;
  options.sub_batch_bytes = 0;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result one_row, FitLassoSgdV2(p.rows, p.y, active, options));
  options.sub_batch_bytes = 3 * 40000 * 4;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result three_rows, FitLassoSgdV2(*store, store->targets(), active, options));
  options.sub_batch_bytes = LassoSgdV2Options().sub_batch_bytes;
  const size_t bytes = 40000 * sizeof(float);
  for (const LassoSgdV2Result* other : {&b, &serial, &three, &copied, &stored, &one_row, &three_rows}) {
    EXPECT_EQ(0, std::memcmp(a.beta.data(), other->beta.data(), bytes));
    EXPECT_EQ(0, std::memcmp(a.reference_beta.data(), other->reference_beta.data(), bytes));
    EXPECT_EQ(a.report.epoch_losses, other->report.epoch_losses);
  }
  options.seed = 314160;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result other_seed, FitLassoSgdV2(p.rows, p.y, active, options));
  EXPECT_NE(0, std::memcmp(a.beta.data(), other_seed.beta.data(), bytes));
}

TEST(LassoSgdTest, Bfloat16KernelsEqualFloat32OnTheRoundedValues) {
  // The bfloat16 kernels decode the store's interleaved layout to the same float32 values, in the same
  // order, as the float32 kernels read the decoded rows: the fits must be bit-identical. Two chunks,
  // a partial group at the end and V1 fits starting at unaligned columns exercise the edges.
  const int n = 20010;
  const Problem p = MakeProblem(29, n, 4, 5);
  auto bf16 = StoreOf(p.rows, p.y, SampleEncoding::kBfloat16);
  std::vector<std::vector<float>> decoded(29, std::vector<float>(n));
  for (int t = 0; t < 29; ++t) {
    const float* row = bf16->Row(t, decoded[static_cast<size_t>(t)].data());
    ASSERT_EQ(row, decoded[static_cast<size_t>(t)].data());
  }
  const DenseRows dense(std::move(decoded));
  std::vector<uint8_t> active(n, 1);
  active[4100] = 0;
  LassoSgdV2Options options;
  options.max_epochs = 3;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result a, FitLassoSgdV2(*bf16, p.y, active, options));
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result b, FitLassoSgdV2(dense, p.y, active, options));
  EXPECT_EQ(0, std::memcmp(a.beta.data(), b.beta.data(), n * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.reference_beta.data(), b.reference_beta.data(), n * sizeof(float)));
  options.sub_batch_bytes = 0;
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result rowwise, FitLassoSgdV2(*bf16, p.y, active, options));
  EXPECT_EQ(0, std::memcmp(a.beta.data(), rowwise.beta.data(), n * sizeof(float)));
  LassoSgdV1Options v1;
  v1.max_epochs = 2;
  const std::vector<std::vector<ColumnRange>> fits = {{{0, 37}}, {{37, 5000}}, {{5000, n}}};
  ASSERT_OK_AND_ASSIGN(LassoSgdV1Result c, FitLassoSgdV1(*bf16, p.y, active, fits, v1));
  ASSERT_OK_AND_ASSIGN(LassoSgdV1Result d, FitLassoSgdV1(dense, p.y, active, fits, v1));
  EXPECT_EQ(0, std::memcmp(c.beta.data(), d.beta.data(), n * sizeof(float)));
  EXPECT_GT(c.reports[1].nonzero, 0);
}

// The same fit written as plainly as possible in double precision (one epoch, no early stop).
std::vector<double> PlainOneEpoch(const DenseRows& rows, const std::vector<double>& y_raw, const LassoSgdV2Options& o) {
  const int64_t t_rows = rows.num_rows();
  const int64_t n = rows.num_cols();
  const std::vector<double> y = NormalizeTargetsV2(y_raw);
  std::vector<double> beta(static_cast<size_t>(n), 0.0), q(static_cast<size_t>(n), 0.0);
  SplitMix64 rng(o.seed);
  std::vector<int64_t> perm;
  ShufflePermutation(t_rows, &rng, &perm);
  double u = 0.0;
  int64_t tau = 0;
  for (int64_t first = 0; first < t_rows; first += o.minibatch) {
    const int64_t m = std::min<int64_t>(o.minibatch, t_rows - first);
    std::vector<double> r(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      const float* x = rows.Row(perm[first + i], nullptr);
      double p = 0.0;
      for (int64_t k = 0; k < n; ++k) p += x[k] * beta[k];
      r[i] = p - y[perm[first + i]];
    }
    ++tau;
    const double lr = o.lr0 / std::pow(static_cast<double>(tau), o.lr_power);
    u += lr * o.l1 / static_cast<double>(n);
    for (int64_t k = 0; k < n; ++k) {
      double g = 0.0;
      for (int64_t i = 0; i < m; ++i) g += 2.0 / m * r[i] * rows.Row(perm[first + i], nullptr)[k];
      const double z = beta[k] - lr * g;
      double nb = z;
      if (z > 0) nb = std::max(0.0, z - (u + q[k]));
      if (z < 0) nb = std::min(0.0, z + (u - q[k]));
      q[k] += nb - z;
      beta[k] = nb;
    }
  }
  return beta;
}

TEST(LassoSgdTest, ChunkedKernelsAgreeWithAPlainImplementation) {
  for (int n : {5, 37, 4096, 4113, 40000}) {
    SCOPED_TRACE(n);
    const Problem p = MakeProblem(21, n, 3, 10 + static_cast<uint32_t>(n));
    LassoSgdV2Options options;
    options.max_epochs = 1;
    options.minibatch = 4;  // 5 full minibatches and one of 1
    options.l1 = 1.0 * n;   // α = 1, so the truncation matters
    ASSERT_OK_AND_ASSIGN(LassoSgdV2Result result, FitLassoSgdV2(p.rows, p.y, std::vector<uint8_t>(n, 1), options));
    const std::vector<double> plain = PlainOneEpoch(p.rows, p.y, options);
    double scale = 0.0;
    for (double v : plain) scale = std::max(scale, std::fabs(v));
    for (int k = 0; k < n; ++k) ASSERT_NEAR(result.beta[k], plain[k], 1e-4 * scale) << k;
  }
}

TEST(LassoSgdTest, Bfloat16AndFloat32RankAPlantedProblemAlike) {
  const int n = 3000;
  const int k_top = 12;
  const Problem p = MakeProblem(96, n, k_top, 3, /*heavy=*/false, /*planted_scale=*/3.0f);
  auto f32 = StoreOf(p.rows, p.y, SampleEncoding::kFloat32);
  auto bf16 = StoreOf(p.rows, p.y, SampleEncoding::kBfloat16);
  const std::vector<uint8_t> active(n, 1);
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result a, FitLassoSgdV2(*f32, f32->targets(), active, {}));
  ASSERT_OK_AND_ASSIGN(LassoSgdV2Result b, FitLassoSgdV2(*bf16, bf16->targets(), active, {}));
  auto top = [&](const std::vector<float>& beta) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t i, int64_t j) { return std::fabs(beta[i]) > std::fabs(beta[j]); });
    order.resize(k_top);
    std::sort(order.begin(), order.end());
    return order;
  };
  std::vector<int64_t> planted = p.planted;
  std::sort(planted.begin(), planted.end());
  EXPECT_EQ(top(a.beta), planted);
  EXPECT_EQ(top(b.beta), planted);
}

TEST(LassoSgdTest, V1FitsEachLayerIndependently) {
  // Two "layers" of the example's columns: a fit per layer equals a fit of that layer alone.
  ASSERT_OK_AND_ASSIGN(Layout layout, Layout::Create({{"a", {2}, true}, {"bias", {1}, false}, {"b", {4}, true}}));
  const std::vector<std::vector<ColumnRange>> fits = PerLayerFits(layout);
  ASSERT_EQ(fits.size(), 2u);
  EXPECT_EQ(fits[1][0].begin, 2);
  EXPECT_EQ(fits[1][0].end, 6);
  LassoSgdV1Options options;
  options.l1 = 1e-4;
  options.max_epochs = 2;
  const std::vector<uint8_t> active(6, 1);
  ASSERT_OK_AND_ASSIGN(LassoSgdV1Result both, FitLassoSgdV1(Example(), kExampleY, active, fits, options));
  ASSERT_OK_AND_ASSIGN(LassoSgdV1Result only_b, FitLassoSgdV1(Example(), kExampleY, active, {fits[1]}, options));
  ASSERT_EQ(both.reports.size(), 2u);
  EXPECT_EQ(both.reports[1].updates, 6);  // τ restarts per fit: 3 samples × 2 epochs
  for (int k = 2; k < 6; ++k) EXPECT_EQ(both.beta[k], only_b.beta[k]) << k;
  EXPECT_EQ(only_b.beta[0], 0.0f);
  EXPECT_NE(both.beta[0], 0.0f);

  const auto groups = PerLayerFits(layout, 3);
  ASSERT_EQ(groups[0].size(), 3u);
  EXPECT_EQ(groups[0][1].begin, 6);
  EXPECT_EQ(groups[1][2].begin, 14);
  EXPECT_EQ(groups[1][2].end, 18);
}

TEST(LassoSgdTest, NonzeroWeightsKeepsAnyNonzeroGroup) {
  const std::vector<float> beta = {0, 1, 0, 0, /**/ 0, 0, 0, 0, /**/ 0, 0, -2, 0};
  EXPECT_EQ(NonzeroWeights(beta, 4), (std::vector<uint8_t>{0, 1, 1, 0}));
  EXPECT_EQ(NonzeroWeights(beta, 12)[10], 1);
}

TEST(LassoSgdTest, RejectsBadInputsNamingTheField) {
  const std::vector<uint8_t> active(6, 1);
  struct Case {
    LassoSgdV2Options options;
    const char* message;
  };
  auto with = [](auto change) {
    LassoSgdV2Options o;
    change(o);
    return o;
  };
  const Case cases[] = {
      {with([](LassoSgdV2Options& o) { o.minibatch = 0; }), "minibatch: 0"},
      {with([](LassoSgdV2Options& o) { o.lr0 = 0; }), "lr0: 0"},
      {with([](LassoSgdV2Options& o) { o.lr_power = -1; }), "lr_power: -1"},
      {with([](LassoSgdV2Options& o) { o.l1 = -1e-3; }), "l1: -0.001"},
      {with([](LassoSgdV2Options& o) { o.grad_clamp = 0; }), "grad_clamp: 0"},
      {with([](LassoSgdV2Options& o) { o.max_epochs = 0; }), "max_epochs: 0"},
      {with([](LassoSgdV2Options& o) { o.patience = 0; }), "patience: 0"},
      {with([](LassoSgdV2Options& o) { o.tol = -1; }), "tol: -1"},
      {with([](LassoSgdV2Options& o) { o.num_threads = 0; }), "num_threads: 0"},
      {with([](LassoSgdV2Options& o) { o.sub_batch_bytes = -1; }), "sub_batch_bytes: -1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    EXPECT_THAT(FitLassoSgdV2(Example(), kExampleY, active, c.options),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  EXPECT_THAT(FitLassoSgdV2(Example(), {1.0, 2.0}, active, {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "y: 2 targets for 3 samples"));
  EXPECT_THAT(FitLassoSgdV2(Example(), kExampleY, std::vector<uint8_t>(4, 1), {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "active: length 4"));
  EXPECT_THAT(FitLassoSgdV2(DenseRows({}), {}, active, {}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "T = 0"));
  const LassoSgdV1Options v1;
  EXPECT_THAT(FitLassoSgdV1(Example(), kExampleY, active, {{{0, 7}}}, v1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "[0, 7) is empty or outside [0, 6)"));
  EXPECT_THAT(FitLassoSgdV1(Example(), kExampleY, active, {{{0, 3}}, {{2, 4}}}, v1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "overlap"));
  EXPECT_THAT(FitLassoSgdV1(Example(), kExampleY, active, {{}}, v1),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "fits[0]: no columns"));
  EXPECT_THAT(FitLassoSgdV1(Example(), kExampleY, active, {{{3, 3}}}, v1), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace gcprune::pruner
