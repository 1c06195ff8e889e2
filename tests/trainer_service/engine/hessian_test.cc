// Tests of the Hessian eigenvalues: the tridiagonal QL solver and Lanczos on finite-difference products
// against explicitly formed Hessians (analytic for softmax regression, per-coordinate finite differences for
// a ReLU MLP) diagonalised by a Jacobi solver written here; subspaces, restoration and input validation.
#include "trainer_service/engine/hessian.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "trainer_service/engine/model_spec.h"
#include "trainer_service/engine/splitmix64.h"

namespace gcprune::trainer {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

using Matrix = std::vector<std::vector<double>>;

// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations, descending.
std::vector<double> JacobiEigenvalues(Matrix a) {
  const size_t n = a.size();
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) off += a[p][q] * a[p][q];
    }
    if (off < 1e-24) break;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) {
        if (a[p][q] == 0.0) continue;
        const double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (size_t k = 0; k < n; ++k) {  // columns p, q
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {  // rows p, q
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
      }
    }
  }
  std::vector<double> values(n);
  for (size_t i = 0; i < n; ++i) values[i] = a[i][i];
  std::sort(values.rbegin(), values.rend());
  return values;
}

double Uniform(SplitMix64* rng) { return static_cast<double>(rng->Next() >> 11) / 9007199254740992.0; }

// `size` examples of `features` values in [-1, 1] with labels 0..classes-1 from a linear rule plus noise.
Dataset MakeData(int64_t size, int features, int classes, uint64_t seed) {
  SplitMix64 rng(seed);
  Dataset data;
  data.size = size;
  data.channels = 1;
  data.height = 1;
  data.width = features;
  data.num_classes = classes;
  for (int64_t i = 0; i < size; ++i) {
    double score = 0.0;
    for (int f = 0; f < features; ++f) {
      const double x = 2.0 * Uniform(&rng) - 1.0;
      data.images.push_back(static_cast<float>(x));
      score += (f % 2 ? 1.0 : -0.5) * x;
    }
    score += 0.3 * (Uniform(&rng) - 0.5);
    data.labels.push_back(static_cast<int32_t>(std::min<double>(classes - 1, std::max(0.0, (score + 1.5) * classes / 3.0))));
  }
  return data;
}

std::unique_ptr<Model> MakeModel(const char* layers, const char* shape, uint64_t seed = 3) {
  absl::StatusOr<ModelSpec> spec = ParseModelSpec(layers, shape);
  EXPECT_OK(spec);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*spec, seed);
  EXPECT_OK(model);
  return *std::move(model);
}

// The exact Hessian of the mean softmax cross-entropy of z = W·x + b over `data` (any label smoothing gives
// the same one: the targets sum to 1), for parameters [W row-major, b].
Matrix SoftmaxRegressionHessian(const Model& model, const Dataset& data) {
  const std::vector<const Parameter*> params = model.parameters();
  const Parameter& weight = *params[0];
  const Parameter& bias = *params[1];
  const int classes = static_cast<int>(weight.shape[0]);
  const int features = static_cast<int>(weight.shape[1]);
  const int dim = classes * features + classes;
  Matrix h(dim, std::vector<double>(dim, 0.0));
  for (int64_t n = 0; n < data.size; ++n) {
    std::vector<double> x(features + 1, 1.0);  // x with a trailing 1 for the bias
    for (int f = 0; f < features; ++f) x[f] = data.images[n * features + f];
    std::vector<double> z(classes);
    double zmax = -1e300;
    for (int c = 0; c < classes; ++c) {
      z[c] = bias.data[c];
      for (int f = 0; f < features; ++f) z[c] += static_cast<double>(weight.data[c * features + f]) * x[f];
      zmax = std::max(zmax, z[c]);
    }
    double total = 0.0;
    for (double& v : z) total += (v = std::exp(v - zmax));
    for (double& v : z) v /= total;
    auto index = [&](int c, int f) { return f < features ? c * features + f : classes * features + c; };
    for (int c = 0; c < classes; ++c) {
      for (int d = 0; d < classes; ++d) {
        const double a = (c == d ? z[c] : 0.0) - z[c] * z[d];
        for (int f = 0; f <= features; ++f) {
          for (int g = 0; g <= features; ++g) h[index(c, f)][index(d, g)] += a * x[f] * x[g] / data.size;
        }
      }
    }
  }
  return h;
}

// Column-by-column finite-difference Hessian with steps of `h` along each coordinate, symmetrised.
Matrix FiniteDifferenceHessian(Model* model, const Dataset& data, double h) {
  std::vector<float*> coords;
  for (Parameter* param : model->parameters()) {
    for (int64_t i = 0; i < param->numel; ++i) coords.push_back(param->data + i);
  }
  const size_t dim = coords.size();
  Matrix m(dim, std::vector<double>(dim));
  std::vector<double> plus, minus;
  for (size_t j = 0; j < dim; ++j) {
    const float saved = *coords[j];
    *coords[j] = static_cast<float>(saved + h);
    const double up = static_cast<double>(*coords[j]) - saved;
    EXPECT_OK(DatasetLossAndGradient(model, data, 64, &plus));
    *coords[j] = static_cast<float>(saved - h);
    const double down = saved - static_cast<double>(*coords[j]);
    EXPECT_OK(DatasetLossAndGradient(model, data, 64, &minus));
    *coords[j] = saved;
    for (size_t i = 0; i < dim; ++i) m[i][j] = (plus[i] - minus[i]) / (up + down);
  }
  for (size_t i = 0; i < dim; ++i) {
    for (size_t j = 0; j < i; ++j) m[i][j] = m[j][i] = 0.5 * (m[i][j] + m[j][i]);
  }
  return m;
}

TEST(TridiagonalEigenvaluesTest, MatchesJacobiOnRandomMatrices) {
  SplitMix64 rng(7);
  for (int n : {1, 2, 3, 8, 30}) {
    SCOPED_TRACE(n);
    std::vector<double> diagonal(n), off(n - 1);
    Matrix dense(n, std::vector<double>(n, 0.0));
    for (int i = 0; i < n; ++i) dense[i][i] = diagonal[i] = 10.0 * Uniform(&rng) - 5.0;
    for (int i = 0; i + 1 < n; ++i) dense[i][i + 1] = dense[i + 1][i] = off[i] = 4.0 * Uniform(&rng) - 2.0;
    std::vector<double> last;
    ASSERT_OK_AND_ASSIGN(std::vector<double> values, TridiagonalEigenvalues(diagonal, off, &last));
    std::vector<double> expected = JacobiEigenvalues(dense);
    std::reverse(expected.begin(), expected.end());
    ASSERT_EQ(values.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_NEAR(values[i], expected[i], 1e-10);
    // The last components of an orthonormal eigenbasis form a unit vector.
    double norm2 = 0.0;
    for (double x : last) norm2 += x * x;
    EXPECT_NEAR(norm2, 1.0, 1e-10);
  }
}

TEST(TridiagonalEigenvaluesTest, LastComponentsOfKnownMatrix) {
  // [[2, 1], [1, 2]]: eigenvalues 1 and 3, eigenvectors (1, -1)/√2 and (1, 1)/√2.
  std::vector<double> last;
  ASSERT_OK_AND_ASSIGN(std::vector<double> values, TridiagonalEigenvalues({2.0, 2.0}, {1.0}, &last));
  EXPECT_NEAR(values[0], 1.0, 1e-14);
  EXPECT_NEAR(values[1], 3.0, 1e-14);
  EXPECT_NEAR(std::fabs(last[0]), std::sqrt(0.5), 1e-14);
  EXPECT_NEAR(std::fabs(last[1]), std::sqrt(0.5), 1e-14);
}

TEST(TridiagonalEigenvaluesTest, RejectsMalformedInput) {
  EXPECT_THAT(TridiagonalEigenvalues({}, {}), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "n >= 1"));
  EXPECT_THAT(TridiagonalEigenvalues({1.0, 2.0}, {}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(TridiagonalEigenvalues({1.0, NAN}, {0.5}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "diagonal entry nan"));
  EXPECT_THAT(TridiagonalEigenvalues({1.0, 2.0}, {INFINITY}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "off-diagonal entry inf"));
}

TEST(DatasetLossAndGradientTest, IndependentOfBatchSize) {
  std::unique_ptr<Model> model = MakeModel("linear:8,relu,linear:3", "5");
  const Dataset data = MakeData(100, 5, 3, 11);
  std::vector<double> g7, g64;
  ASSERT_OK_AND_ASSIGN(const double loss7, DatasetLossAndGradient(model.get(), data, 7, &g7));
  ASSERT_OK_AND_ASSIGN(const double loss64, DatasetLossAndGradient(model.get(), data, 64, &g64));
  EXPECT_NEAR(loss7, loss64, 1e-6);
  ASSERT_EQ(g7.size(), static_cast<size_t>(model->num_parameters()));
  for (size_t i = 0; i < g7.size(); ++i) EXPECT_NEAR(g7[i], g64[i], 1e-6) << i;
}

TEST(HessianTest, SoftmaxRegressionMatchesAnalyticHessian) {
  std::unique_ptr<Model> model = MakeModel("linear:3", "5");
  const Dataset data = MakeData(200, 5, 3, 5);
  const std::vector<double> expected = JacobiEigenvalues(SoftmaxRegressionHessian(*model, data));
  HessianOptions options;
  options.num_eigenvalues = 3;
  options.max_iterations = 18;  // the full space: every Ritz value is an eigenvalue
  options.tolerance = 1e-6;
  ASSERT_OK_AND_ASSIGN(HessianSpectrum spectrum, TopHessianEigenvalues(model.get(), data, options));
  EXPECT_TRUE(spectrum.converged);
  EXPECT_EQ(spectrum.dimension, 18);
  ASSERT_EQ(spectrum.eigenvalues.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(spectrum.eigenvalues[i], expected[i], 1e-4 * expected[0]) << i;
  EXPECT_GT(spectrum.gradient_norm, 0.0);
  EXPECT_GT(spectrum.loss, 0.0);
}

TEST(HessianTest, LanczosConvergesBeforeExhaustingTheSpace) {
  std::unique_ptr<Model> model = MakeModel("linear:4", "12");
  const Dataset data = MakeData(300, 12, 4, 9);
  const std::vector<double> expected = JacobiEigenvalues(SoftmaxRegressionHessian(*model, data));
  HessianOptions options;
  options.num_eigenvalues = 1;
  options.max_iterations = 52;
  options.tolerance = 1e-3;
  ASSERT_OK_AND_ASSIGN(HessianSpectrum spectrum, TopHessianEigenvalues(model.get(), data, options));
  EXPECT_TRUE(spectrum.converged);
  EXPECT_LT(spectrum.iterations, 52);
  EXPECT_NEAR(spectrum.eigenvalues[0], expected[0], 2e-3 * expected[0]);
  EXPECT_LE(spectrum.residuals[0], 1e-3 * spectrum.eigenvalues[0]);
}

TEST(HessianTest, ReluMlpMatchesPerCoordinateFiniteDifferences) {
  std::unique_ptr<Model> model = MakeModel("linear:6,relu,linear:3", "4", 21);
  const Dataset data = MakeData(150, 4, 3, 2);
  // Steps small enough that neither estimate crosses a ReLU kink of this small data set (900 hidden
  // activations): both then measure the same piecewise-smooth Hessian. With steps of 3e-3 and more, single
  // kinks crossed along different directions move the two estimates apart by up to 20%.
  constexpr double kStep = 1e-4;
  const std::vector<double> expected = JacobiEigenvalues(FiniteDifferenceHessian(model.get(), data, kStep));
  HessianOptions options;
  options.hvp.epsilon = kStep;
  options.num_eigenvalues = 2;
  options.max_iterations = static_cast<int>(model->num_parameters());
  options.tolerance = 1e-6;
  ASSERT_OK_AND_ASSIGN(HessianSpectrum spectrum, TopHessianEigenvalues(model.get(), data, options));
  ASSERT_EQ(spectrum.eigenvalues.size(), 2u);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(spectrum.eigenvalues[i], expected[i], 1e-3 * expected[0]) << i;
}

TEST(HessianTest, SubspacesOfPrunedModel) {
  std::unique_ptr<Model> model = MakeModel("linear:3", "5");
  const Dataset data = MakeData(200, 5, 3, 5);
  // Prune the first two inputs of every class: 6 of the 15 weights.
  std::vector<uint8_t> keep(15, 1);
  for (int c = 0; c < 3; ++c) keep[c * 5] = keep[c * 5 + 1] = 0;
  ASSERT_OK(model->SetMasks({keep}));
  const ModelSnapshot before = model->Snapshot();
  const Matrix full = SoftmaxRegressionHessian(*model, data);
  std::vector<int> free_index;
  for (int i = 0; i < 18; ++i) {
    if (i >= 15 || keep[i]) free_index.push_back(i);
  }
  Matrix sub(free_index.size(), std::vector<double>(free_index.size()));
  for (size_t i = 0; i < free_index.size(); ++i) {
    for (size_t j = 0; j < free_index.size(); ++j) sub[i][j] = full[free_index[i]][free_index[j]];
  }
  struct Case {
    HessianSubspace subspace;
    Matrix hessian;
    int64_t dimension;
  };
  for (const Case& c : {Case{HessianSubspace::kAllParameters, full, 18}, Case{HessianSubspace::kUnpruned, sub, 12}}) {
    SCOPED_TRACE(HessianSubspaceName(c.subspace));
    const std::vector<double> expected = JacobiEigenvalues(c.hessian);
    HessianOptions options;
    options.hvp.subspace = c.subspace;
    options.num_eigenvalues = 2;
    options.max_iterations = 18;
    ASSERT_OK_AND_ASSIGN(HessianSpectrum spectrum, TopHessianEigenvalues(model.get(), data, options));
    EXPECT_EQ(spectrum.dimension, c.dimension);
    EXPECT_EQ(spectrum.subspace, c.subspace);
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(spectrum.eigenvalues[i], expected[i], 1e-4 * expected[0]) << i;
    // The model comes back exactly: values, masks, and pruned weights at 0.
    const ModelSnapshot after = model->Snapshot();
    EXPECT_EQ(after.values, before.values);
    EXPECT_EQ(after.masks, before.masks);
    EXPECT_EQ(model->num_pruned_weights(), 6);
  }
}

TEST(HessianVectorProductTest, ProjectsAndScalesLinearly) {
  std::unique_ptr<Model> model = MakeModel("linear:3", "5");
  const Dataset data = MakeData(50, 5, 3, 4);
  std::vector<uint8_t> keep(15, 1);
  keep[0] = 0;
  ASSERT_OK(model->SetMasks({keep}));
  HessianVectorOptions options;
  options.subspace = HessianSubspace::kUnpruned;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<HessianVectorProduct> hvp,
                       HessianVectorProduct::Create(model.get(), &data, options));
  EXPECT_EQ(hvp->size(), 18);
  EXPECT_EQ(hvp->dimension(), 17);
  EXPECT_EQ(hvp->free()[0], 0);
  std::vector<double> v(18), hv(18), hv2(18), twice(18);
  for (int i = 0; i < 18; ++i) v[i] = std::sin(1.0 + i), twice[i] = 2.0 * v[i];
  ASSERT_OK(hvp->Apply(v, absl::MakeSpan(hv)));
  ASSERT_OK(hvp->Apply(twice, absl::MakeSpan(hv2)));
  EXPECT_EQ(hv[0], 0.0);
  // The same points are evaluated, so the scaling is exact up to rounding.
  for (int i = 0; i < 18; ++i) EXPECT_NEAR(hv2[i], 2.0 * hv[i], 1e-12) << i;
  EXPECT_EQ(hvp->products(), 2);
  std::vector<double> zero(18, 0.0);
  zero[0] = 1.0;  // outside the subspace: projected away
  ASSERT_OK(hvp->Apply(zero, absl::MakeSpan(hv)));
  for (double x : hv) EXPECT_EQ(x, 0.0);
  EXPECT_EQ(hvp->products(), 2);
}

TEST(HessianVectorProductTest, RejectsBadVectors) {
  std::unique_ptr<Model> model = MakeModel("linear:3", "5");
  const Dataset data = MakeData(20, 5, 3, 4);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<HessianVectorProduct> hvp,
                       HessianVectorProduct::Create(model.get(), &data, HessianVectorOptions{}));
  std::vector<double> v(18, 1.0), hv(18), short_hv(17);
  EXPECT_THAT(hvp->Apply(v, absl::MakeSpan(short_hv)),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "need 18 entries each"));
  v[3] = NAN;
  EXPECT_THAT(hvp->Apply(v, absl::MakeSpan(hv)), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "v[3]"));
}

TEST(HessianTest, RejectsBadOptionsAndData) {
  std::unique_ptr<Model> model = MakeModel("linear:3", "5");
  const Dataset data = MakeData(20, 5, 3, 4);
  struct Case {
    const char* what;
    HessianOptions options;
    const char* message;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, const char* message, auto change) {
    HessianOptions options;
    change(&options);
    cases.push_back({what, options, message});
  };
  add("zero epsilon", "hvp.epsilon", [](HessianOptions* o) { o->hvp.epsilon = 0.0; });
  add("NaN epsilon", "hvp.epsilon", [](HessianOptions* o) { o->hvp.epsilon = NAN; });
  add("zero batch", "hvp.batch_size", [](HessianOptions* o) { o->hvp.batch_size = 0; });
  add("huge batch", "hvp.batch_size", [](HessianOptions* o) { o->hvp.batch_size = 70000; });
  add("bad subspace", "hvp.subspace", [](HessianOptions* o) { o->hvp.subspace = static_cast<HessianSubspace>(7); });
  add("no iterations", "max_iterations", [](HessianOptions* o) { o->max_iterations = 0; });
  add("too many eigenvalues", "num_eigenvalues", [](HessianOptions* o) { o->num_eigenvalues = 41; });
  add("no eigenvalues", "num_eigenvalues", [](HessianOptions* o) { o->num_eigenvalues = 0; });
  add("negative tolerance", "tolerance", [](HessianOptions* o) { o->tolerance = -1.0; });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(TopHessianEigenvalues(model.get(), data, c.options),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  const Dataset wrong_shape = MakeData(20, 6, 3, 4);
  EXPECT_THAT(TopHessianEigenvalues(model.get(), wrong_shape, HessianOptions{}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "do not fit the model's input"));
  EXPECT_THAT(TopHessianEigenvalues(model.get(), Dataset{}, HessianOptions{}),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "empty data set"));
  std::vector<double> gradient;
  EXPECT_THAT(DatasetLossAndGradient(model.get(), data, 0, &gradient),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "batch_size"));
}

TEST(HessianTest, DeterministicForSeed) {
  std::unique_ptr<Model> model = MakeModel("linear:6,relu,linear:3", "4", 21);
  const Dataset data = MakeData(80, 4, 3, 2);
  HessianOptions options;
  options.max_iterations = 5;
  options.tolerance = 0.0;  // run every step
  ASSERT_OK_AND_ASSIGN(HessianSpectrum a, TopHessianEigenvalues(model.get(), data, options));
  ASSERT_OK_AND_ASSIGN(HessianSpectrum b, TopHessianEigenvalues(model.get(), data, options));
  EXPECT_EQ(a.eigenvalues, b.eigenvalues);
  EXPECT_EQ(a.iterations, 5);
  EXPECT_FALSE(a.converged);
}

}  // namespace
}  // namespace gcprune::trainer
