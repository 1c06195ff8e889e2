// Tests of the exact Lasso solver: optimality (KKT, duality gap), support recovery, agreement with
// scikit-learn on a committed fixture, frozen coordinates, alpha_max, limits and invalid inputs.
#include "pruner_service/causal/exact_lasso.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace gcprune::pruner {
namespace {

using ::gcprune::testing::StatusIs;
using ::gcprune::testing::StatusIsWithMessage;

// A dense row-major matrix; Row() points into storage.
class DenseRows : public RowSource {
 public:
  DenseRows(int64_t rows, int64_t cols, std::vector<float> data)
      : rows_(rows), cols_(cols), data_(std::move(data)) {}
  int64_t num_rows() const override { return rows_; }
  int64_t num_cols() const override { return cols_; }
  const float* Row(int64_t t, float* /*scratch*/) const override { return data_.data() + t * cols_; }
  float at(int64_t t, int64_t k) const { return data_[t * cols_ + k]; }
  const std::vector<float>& data() const { return data_; }

 private:
  int64_t rows_, cols_;
  std::vector<float> data_;
};

// Decodes each row into the caller's scratch, as a compressed sample store does.
class DecodingRows : public RowSource {
 public:
  explicit DecodingRows(const DenseRows& dense) : dense_(dense) {}
  int64_t num_rows() const override { return dense_.num_rows(); }
  int64_t num_cols() const override { return dense_.num_cols(); }
  const float* Row(int64_t t, float* scratch) const override {
    const float* row = dense_.Row(t, nullptr);
    std::copy(row, row + dense_.num_cols(), scratch);
    return scratch;
  }

 private:
  const DenseRows& dense_;
};

// Fails to produce row `bad_row`.
class BrokenRows : public DenseRows {
 public:
  BrokenRows(int64_t rows, int64_t cols, int64_t bad_row)
      : DenseRows(rows, cols, std::vector<float>(rows * cols, 1.0f)), bad_row_(bad_row) {}
  const float* Row(int64_t t, float* scratch) const override {
    return t == bad_row_ ? nullptr : DenseRows::Row(t, scratch);
  }

 private:
  int64_t bad_row_;
};

struct Problem {
  DenseRows x;
  std::vector<float> y;
  std::vector<uint8_t> active;
};

DenseRows GaussianRows(int64_t rows, int64_t cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<float> data(rows * cols);
  for (float& v : data) v = static_cast<float>(normal(rng));
  return DenseRows(rows, cols, std::move(data));
}

// Causal-regression-like data: x = g² with heavy-tailed g and per-column scales; y = −(x·γ) normalised to
// mean 1 (METHOD.md's V2 normalisation), with a few strong and many weak contributions.
Problem CausalLikeProblem(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::student_t_distribution<double> student(3.0);
  std::uniform_real_distribution<double> uniform;
  std::vector<double> scale(cols);
  for (double& s : scale) s = std::exp(normal(rng));
  std::vector<float> data(rows * cols);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t k = 0; k < cols; ++k) {
      const double g = student(rng) * scale[k];
      data[t * cols + k] = static_cast<float>(g * g);
    }
  }
  std::vector<double> gamma(cols);
  for (double& g : gamma) g = 0.01 * uniform(rng);
  for (int i = 0; i < 6; ++i) gamma[rng() % cols] += 0.5 + 1.5 * uniform(rng);
  std::vector<double> y(rows);
  double mean = 0;
  for (int64_t t = 0; t < rows; ++t) {
    double s = 0;
    for (int64_t k = 0; k < cols; ++k) s += data[t * cols + k] * gamma[k];
    y[t] = -s * (1 + 0.05 * normal(rng));
    mean += y[t] / rows;
  }
  std::vector<float> yf(rows);
  for (int64_t t = 0; t < rows; ++t) yf[t] = static_cast<float>(y[t] / mean);
  return {DenseRows(rows, cols, std::move(data)), std::move(yf), std::vector<uint8_t>(cols, 1)};
}

// X_kᵀ(y − Xβ)/T for every column, in double.
std::vector<double> Gradient(const DenseRows& x, const std::vector<float>& y, const std::vector<float>& beta) {
  const int64_t rows = x.num_rows(), cols = x.num_cols();
  std::vector<double> r(y.begin(), y.end());
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t k = 0; k < cols; ++k) r[t] -= static_cast<double>(x.at(t, k)) * beta[k];
  }
  std::vector<double> grad(cols, 0.0);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t k = 0; k < cols; ++k) grad[k] += x.at(t, k) * r[t] / rows;
  }
  return grad;
}

double Objective(const DenseRows& x, const std::vector<float>& y, const std::vector<float>& beta, double alpha) {
  double rr = 0, l1 = 0;
  for (int64_t t = 0; t < x.num_rows(); ++t) {
    double r = y[t];
    for (int64_t k = 0; k < x.num_cols(); ++k) r -= static_cast<double>(x.at(t, k)) * beta[k];
    rr += r * r;
  }
  for (float b : beta) l1 += std::abs(b);
  return rr / (2.0 * x.num_rows()) + alpha * l1;
}

// Bound on how much rounding β to float (relative error 2^-24) moves X_kᵀr/T:
// Σ_t |x_tk| Σ_j |x_tj| |β_j| 2^-24 / T.
std::vector<double> FloatRoundingBound(const DenseRows& x, const std::vector<float>& beta) {
  const int64_t rows = x.num_rows(), cols = x.num_cols();
  std::vector<double> bound(cols, 0.0);
  for (int64_t t = 0; t < rows; ++t) {
    double a = 0;
    for (int64_t j = 0; j < cols; ++j) a += std::abs(static_cast<double>(x.at(t, j)) * beta[j]);
    for (int64_t k = 0; k < cols; ++k) bound[k] += std::abs(x.at(t, k)) * a * std::ldexp(1.0, -24) / rows;
  }
  return bound;
}

// The Lasso's optimality conditions at `beta`: |X_kᵀr/T| <= α where β_k = 0, X_kᵀr/T = α·sign(β_k)
// elsewhere; up to rel_tol · α plus the effect of β's rounding to float.
void ExpectKkt(const DenseRows& x, const std::vector<float>& y, const std::vector<uint8_t>& active,
               const std::vector<float>& beta, double alpha, double rel_tol) {
  const std::vector<double> grad = Gradient(x, y, beta);
  const std::vector<double> rounding = FloatRoundingBound(x, beta);
  for (int64_t k = 0; k < x.num_cols(); ++k) {
    SCOPED_TRACE(::testing::Message() << "k = " << k << " beta = " << beta[k] << " grad = " << grad[k]);
    const double tol = alpha * rel_tol + rounding[k];
    if (!active[k]) {
      EXPECT_EQ(beta[k], 0.0f);
    } else if (beta[k] == 0) {
      EXPECT_LE(std::abs(grad[k]), alpha + tol);
    } else {
      EXPECT_NEAR(grad[k], beta[k] > 0 ? alpha : -alpha, tol);
    }
  }
}

int64_t CountNonZero(const std::vector<float>& beta) {
  return std::count_if(beta.begin(), beta.end(), [](float b) { return b != 0; });
}

TEST(ExactLassoTest, SatisfiesKktConditionsAndGapTolerance) {
  struct Case {
    const char* what;
    bool causal_like;
    double alpha_fraction;
  };
  const Case cases[] = {
      {"gaussian, large alpha", false, 0.5}, {"gaussian, small alpha", false, 0.05},
      {"causal-like, 0.01 alpha_max", true, 0.01}, {"causal-like, 1e-4 alpha_max", true, 1e-4}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    std::mt19937_64 rng(7);
    Problem p = c.causal_like ? CausalLikeProblem(60, 150, 11)
                              : Problem{GaussianRows(60, 150, rng), {}, std::vector<uint8_t>(150, 1)};
    if (!c.causal_like) {
      std::normal_distribution<double> normal;
      for (int t = 0; t < 60; ++t) p.y.push_back(static_cast<float>(normal(rng)));
    }
    ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&p.x, p.y, p.active));
    const double alpha = c.alpha_fraction * lasso->alpha_max();
    ExactLassoOptions options;
    options.tol = 1e-11;
    ASSERT_OK_AND_ASSIGN(ExactLassoResult result, lasso->Solve(alpha, options));
    EXPECT_TRUE(result.converged);
    EXPECT_LE(result.duality_gap, result.gap_tolerance);
    EXPECT_GE(result.duality_gap, 0);
    EXPECT_GT(result.num_nonzero, 0);
    EXPECT_EQ(result.num_nonzero, CountNonZero(result.beta));
    EXPECT_NEAR(result.objective, Objective(p.x, p.y, result.beta, alpha), 1e-6 * result.objective);
    ExpectKkt(p.x, p.y, p.active, result.beta, alpha, 1e-4);
  }
}

TEST(ExactLassoTest, RecoversPlantedSupport) {
  constexpr int64_t kRows = 100, kCols = 300;
  std::mt19937_64 rng(42);
  DenseRows x = GaussianRows(kRows, kCols, rng);
  const std::vector<int64_t> support = {3, 77, 150, 201, 299};
  const std::vector<double> coef = {1.5, -2.0, 1.0, -1.2, 1.8};
  std::normal_distribution<double> noise(0.0, 0.01);
  std::vector<float> y(kRows);
  for (int64_t t = 0; t < kRows; ++t) {
    double s = noise(rng);
    for (size_t i = 0; i < support.size(); ++i) s += coef[i] * x.at(t, support[i]);
    y[t] = static_cast<float>(s);
  }
  const std::vector<uint8_t> active(kCols, 1);
  ASSERT_OK_AND_ASSIGN(ExactLassoResult result, SolveExactLasso(x, y, active, 0.05));
  EXPECT_TRUE(result.converged);
  std::vector<int64_t> found;
  for (int64_t k = 0; k < kCols; ++k) {
    if (result.beta[k] != 0) found.push_back(k);
  }
  EXPECT_EQ(found, support);
  for (size_t i = 0; i < support.size(); ++i) {
    // The Lasso shrinks each coefficient by about α / (‖X_k‖²/T) ≈ 0.05.
    EXPECT_NEAR(result.beta[support[i]], coef[i], 0.15) << "k = " << support[i];
  }
}

struct Fixture {
  int64_t rows = 0, cols = 0;
  std::vector<float> x, y;
  std::vector<uint8_t> active;
  std::vector<double> alphas;
  std::vector<std::vector<double>> betas;
};

std::string FixturePath() {
  const char* root = std::getenv("GCPRUNE_SOURCE_DIR");
  if (root != nullptr) return std::string(root) + "/tests/pruner_service/causal/testdata/lasso_sklearn_fixture.txt";
  std::string here = __FILE__;
  return here.substr(0, here.find_last_of('/')) + "/testdata/lasso_sklearn_fixture.txt";
}

// Reads the generator's format: "T n", "N n", "x" + T lines, "y" + line, "active" + line, "cases n", then
// per case "alpha a" and "beta b_1 ... b_N". Lines starting with '#' are comments.
bool ReadFixture(const std::string& path, Fixture* f) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  auto next = [&](std::istringstream* s) {
    do {
      if (!std::getline(in, line)) return false;
    } while (!line.empty() && line[0] == '#');
    s->clear();
    s->str(line);
    return true;
  };
  std::istringstream s;
  std::string key;
  if (!next(&s) || !(s >> key >> f->rows) || key != "T") return false;
  if (!next(&s) || !(s >> key >> f->cols) || key != "N") return false;
  if (!next(&s) || !(s >> key) || key != "x") return false;
  for (int64_t t = 0; t < f->rows; ++t) {
    if (!next(&s)) return false;
    double v;
    while (s >> v) f->x.push_back(static_cast<float>(v));
  }
  if (!next(&s) || !(s >> key) || key != "y" || !next(&s)) return false;
  for (double v; s >> v;) f->y.push_back(static_cast<float>(v));
  if (!next(&s) || !(s >> key) || key != "active" || !next(&s)) return false;
  for (int v; s >> v;) f->active.push_back(static_cast<uint8_t>(v));
  int cases = 0;
  if (!next(&s) || !(s >> key >> cases) || key != "cases") return false;
  for (int i = 0; i < cases; ++i) {
    double alpha;
    if (!next(&s) || !(s >> key >> alpha) || key != "alpha") return false;
    f->alphas.push_back(alpha);
    if (!next(&s) || !(s >> key) || key != "beta") return false;
    f->betas.emplace_back();
    for (double v; s >> v;) f->betas.back().push_back(v);
    if (static_cast<int64_t>(f->betas.back().size()) != f->cols) return false;
  }
  return static_cast<int64_t>(f->x.size()) == f->rows * f->cols &&
         static_cast<int64_t>(f->y.size()) == f->rows && static_cast<int64_t>(f->active.size()) == f->cols;
}

// scikit-learn 1.2.1, Lasso(fit_intercept=False, tol=1e-12), on float32-rounded data; see
// testdata/make_lasso_fixture.py. Agreement: 1e-6 absolute on every coefficient (the largest is ~0.14).
TEST(ExactLassoTest, MatchesScikitLearnFixture) {
  Fixture f;
  ASSERT_TRUE(ReadFixture(FixturePath(), &f)) << "cannot read " << FixturePath();
  ASSERT_EQ(f.rows, 50);
  ASSERT_EQ(f.cols, 200);
  ASSERT_GE(f.alphas.size(), 3u);
  DenseRows x(f.rows, f.cols, f.x);
  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&x, f.y, f.active));
  for (size_t i = 0; i < f.alphas.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "alpha = " << f.alphas[i]);
    ExactLassoOptions options;
    options.tol = 1e-12;
    ASSERT_OK_AND_ASSIGN(ExactLassoResult result, lasso->Solve(f.alphas[i], options));
    EXPECT_TRUE(result.converged);
    for (int64_t k = 0; k < f.cols; ++k) {
      EXPECT_NEAR(result.beta[k], f.betas[i][k], 1e-6) << "k = " << k;
      EXPECT_EQ(result.beta[k] == 0, f.betas[i][k] == 0) << "k = " << k;
    }
  }
}

TEST(ExactLassoTest, FrozenCoordinatesStayZeroAndDropOut) {
  Problem p = CausalLikeProblem(50, 120, 5);
  ASSERT_OK_AND_ASSIGN(ExactLassoResult all, SolveExactLasso(p.x, p.y, p.active, 0.5));
  ASSERT_GT(all.num_nonzero, 2);
  // Freeze two selected coordinates and every third column.
  std::vector<uint8_t> active(120, 1);
  int frozen_selected = 0;
  for (int64_t k = 0; k < 120; ++k) {
    if (k % 3 == 0) active[k] = 0;
    if (all.beta[k] != 0 && frozen_selected < 2) {
      active[k] = 0;
      ++frozen_selected;
    }
  }
  ExactLassoOptions options;
  options.tol = 1e-12;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult frozen, SolveExactLasso(p.x, p.y, active, 0.5, options));
  ExpectKkt(p.x, p.y, active, frozen.beta, 0.5, 1e-4);

  // Same as the problem without those columns.
  std::vector<int64_t> kept;
  for (int64_t k = 0; k < 120; ++k) {
    if (active[k]) kept.push_back(k);
  }
  std::vector<float> reduced;
  for (int64_t t = 0; t < 50; ++t) {
    for (int64_t k : kept) reduced.push_back(p.x.at(t, k));
  }
  DenseRows x_reduced(50, static_cast<int64_t>(kept.size()), std::move(reduced));
  ASSERT_OK_AND_ASSIGN(ExactLassoResult direct,
                       SolveExactLasso(x_reduced, p.y, std::vector<uint8_t>(kept.size(), 1), 0.5, options));
  for (size_t j = 0; j < kept.size(); ++j) EXPECT_NEAR(frozen.beta[kept[j]], direct.beta[j], 1e-6);
}

TEST(ExactLassoTest, AlphaMaxIsTheSmallestAlphaWithZeroSolution) {
  Problem p = CausalLikeProblem(40, 80, 3);
  // Brute force over active columns; freezing the arg max lowers α_max.
  std::vector<double> xty(80, 0.0);
  for (int64_t t = 0; t < 40; ++t) {
    for (int64_t k = 0; k < 80; ++k) xty[k] += static_cast<double>(p.x.at(t, k)) * p.y[t] / 40;
  }
  const int64_t arg_max = std::max_element(xty.begin(), xty.end(), [](double a, double b) {
                            return std::abs(a) < std::abs(b);
                          }) - xty.begin();
  p.active[arg_max] = 0;
  double expected = 0;
  for (int64_t k = 0; k < 80; ++k) {
    if (p.active[k]) expected = std::max(expected, std::abs(xty[k]));
  }
  ASSERT_OK_AND_ASSIGN(double alpha_max, ComputeLassoAlphaMax(p.x, p.y, p.active));
  EXPECT_NEAR(alpha_max, expected, 1e-12 * expected);
  EXPECT_LT(alpha_max, std::abs(xty[arg_max]));

  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&p.x, p.y, p.active));
  EXPECT_EQ(lasso->alpha_max(), alpha_max);
  for (double factor : {1.0, 1.5}) {
    SCOPED_TRACE(factor);
    ASSERT_OK_AND_ASSIGN(ExactLassoResult r, lasso->Solve(factor * alpha_max));
    EXPECT_EQ(r.num_nonzero, 0);
    EXPECT_EQ(CountNonZero(r.beta), 0);
    EXPECT_TRUE(r.converged);
    EXPECT_EQ(r.iterations, 0);
    EXPECT_EQ(r.gradient_passes, 0);
    EXPECT_EQ(r.gather_passes, 0);
  }
  ASSERT_OK_AND_ASSIGN(ExactLassoResult below, lasso->Solve(0.99 * alpha_max));
  EXPECT_GE(below.num_nonzero, 1);
}

TEST(ExactLassoTest, ZeroAlphaSolvesLeastSquares) {
  constexpr int64_t kRows = 30, kCols = 4;
  std::mt19937_64 rng(9);
  DenseRows x = GaussianRows(kRows, kCols, rng);
  std::normal_distribution<double> normal;
  std::vector<float> y(kRows);
  for (float& v : y) v = static_cast<float>(normal(rng));
  // Normal equations XᵀX β = Xᵀy by Gaussian elimination.
  double a[kCols][kCols + 1] = {};
  for (int64_t t = 0; t < kRows; ++t) {
    for (int i = 0; i < kCols; ++i) {
      for (int j = 0; j < kCols; ++j) a[i][j] += static_cast<double>(x.at(t, i)) * x.at(t, j);
      a[i][kCols] += static_cast<double>(x.at(t, i)) * y[t];
    }
  }
  for (int i = 0; i < kCols; ++i) {
    for (int j = i + 1; j < kCols; ++j) {
      const double m = a[j][i] / a[i][i];
      for (int c = i; c <= kCols; ++c) a[j][c] -= m * a[i][c];
    }
  }
  double ls[kCols];
  for (int i = kCols - 1; i >= 0; --i) {
    double s = a[i][kCols];
    for (int c = i + 1; c < kCols; ++c) s -= a[i][c] * ls[c];
    ls[i] = s / a[i][i];
  }
  ExactLassoOptions options;
  options.tol = 1e-13;
  options.max_epochs = 2000;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult r, SolveExactLasso(x, y, std::vector<uint8_t>(kCols, 1), 0.0, options));
  for (int i = 0; i < kCols; ++i) EXPECT_NEAR(r.beta[i], ls[i], 1e-6) << i;
  // As documented: at α = 0 the gap certifies only interpolation, and T > N here.
  EXPECT_FALSE(r.converged);
  EXPECT_LE(r.epochs, 2000);
}

TEST(ExactLassoTest, ZeroAlphaConvergesWhenTheDataCanBeInterpolated) {
  std::mt19937_64 rng(10);
  DenseRows x = GaussianRows(20, 60, rng);
  std::normal_distribution<double> normal;
  std::vector<float> y(20);
  for (float& v : y) v = static_cast<float>(normal(rng));
  ExactLassoOptions options;
  options.tol = 1e-10;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult r, SolveExactLasso(x, y, std::vector<uint8_t>(60, 1), 0.0, options));
  EXPECT_TRUE(r.converged);
  EXPECT_LE(r.objective, r.gap_tolerance);
}

TEST(ExactLassoTest, ZeroTargetGivesZeroSolution) {
  std::mt19937_64 rng(1);
  DenseRows x = GaussianRows(10, 20, rng);
  const std::vector<float> y(10, 0.0f);
  ASSERT_OK_AND_ASSIGN(ExactLassoResult r, SolveExactLasso(x, y, std::vector<uint8_t>(20, 1), 0.0));
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(CountNonZero(r.beta), 0);
  EXPECT_EQ(r.objective, 0);
}

TEST(ExactLassoTest, ReportsNonConvergenceAtLimits) {
  Problem p = CausalLikeProblem(60, 1000, 11);
  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&p.x, p.y, p.active));
  const double alpha = 1e-3 * lasso->alpha_max();
  struct Case {
    const char* what;
    int max_iterations;
    int64_t max_epochs;
  };
  // One iteration over a working set of 4 columns cannot reach a solution with more non-zeros.
  for (const Case& c : {Case{"one iteration", 1, 1'000'000}, Case{"three epochs", 100, 3}}) {
    SCOPED_TRACE(c.what);
    ExactLassoOptions options;
    options.tol = 1e-10;
    options.initial_working_set = 4;
    options.max_iterations = c.max_iterations;
    options.max_epochs = c.max_epochs;
    ASSERT_OK_AND_ASSIGN(ExactLassoResult r, lasso->Solve(alpha, options));
    EXPECT_FALSE(r.converged);
    EXPECT_GT(r.duality_gap, r.gap_tolerance);
    EXPECT_LE(r.iterations, c.max_iterations);
    EXPECT_LE(r.epochs, c.max_epochs);
    EXPECT_EQ(static_cast<int64_t>(r.beta.size()), 1000);
    // The returned β is the one the gap was computed for.
    EXPECT_NEAR(r.objective, Objective(p.x, p.y, r.beta, alpha), 1e-6 * r.objective);
  }
}

TEST(ExactLassoTest, WarmStartReachesTheSameSolution) {
  Problem p = CausalLikeProblem(60, 400, 21);
  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&p.x, p.y, p.active));
  ExactLassoOptions options;
  options.tol = 1e-10;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult first, lasso->Solve(0.001 * lasso->alpha_max(), options));
  const double alpha = 0.0008 * lasso->alpha_max();
  ASSERT_OK_AND_ASSIGN(ExactLassoResult cold, lasso->Solve(alpha, options));
  options.warm_start = first.beta;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult warm, lasso->Solve(alpha, options));
  EXPECT_TRUE(cold.converged);
  EXPECT_TRUE(warm.converged);
  EXPECT_LE(warm.epochs, cold.epochs);
  for (int64_t k = 0; k < 400; ++k) EXPECT_NEAR(warm.beta[k], cold.beta[k], 1e-6) << k;

  // Started at its own (float-rounded) solution, a solve needs one subproblem and few epochs.
  options.warm_start = cold.beta;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult again, lasso->Solve(alpha, options));
  EXPECT_TRUE(again.converged);
  EXPECT_EQ(again.iterations, 1);
  EXPECT_LT(again.epochs, cold.epochs / 2);
  EXPECT_EQ(again.gradient_passes, 2);  // before and after the one subproblem
  for (int64_t k = 0; k < 400; ++k) EXPECT_NEAR(again.beta[k], cold.beta[k], 1e-6) << k;
}

TEST(ExactLassoTest, ManyColumnsUseSmallWorkingSetsAndFewPasses) {
  constexpr int64_t kCols = 20000;
  Problem p = CausalLikeProblem(40, kCols, 33);
  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&p.x, p.y, p.active));
  const double alpha = 0.002 * lasso->alpha_max();
  ExactLassoOptions options;
  options.tol = 1e-8;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult r, lasso->Solve(alpha, options));
  EXPECT_TRUE(r.converged);
  EXPECT_GT(r.num_nonzero, 3);
  EXPECT_LE(r.num_nonzero, 40);
  EXPECT_LT(r.working_set_size, kCols / 20);
  EXPECT_LE(r.gradient_passes, 10);
  EXPECT_LE(r.gather_passes, 10);
  EXPECT_GT(r.num_screened, 0);
  ExpectKkt(p.x, p.y, p.active, r.beta, alpha, 1e-3);
}

TEST(ExactLassoTest, WorkingSetCapBoundsTheGatheredColumns) {
  Problem p = CausalLikeProblem(40, 3000, 17);
  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&p.x, p.y, p.active));
  const double alpha = 0.001 * lasso->alpha_max();
  ExactLassoOptions options;
  options.tol = 1e-10;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult free_run, lasso->Solve(alpha, options));
  options.initial_working_set = 8;
  // Just above the support: the columns of successive working sets overflow the cap and get regathered.
  options.max_working_set = free_run.num_nonzero + 2;
  ASSERT_OK_AND_ASSIGN(ExactLassoResult capped, lasso->Solve(alpha, options));
  EXPECT_TRUE(capped.converged);
  EXPECT_LE(capped.working_set_size, options.max_working_set);
  EXPECT_GT(capped.iterations, free_run.iterations);
  ExpectKkt(p.x, p.y, p.active, capped.beta, alpha, 1e-4);
  for (int64_t k = 0; k < 3000; ++k) EXPECT_NEAR(capped.beta[k], free_run.beta[k], 1e-6) << k;
}

TEST(ExactLassoTest, DecodingSourceAndRepeatedSolvesGiveIdenticalResults) {
  Problem p = CausalLikeProblem(37, 90, 4);  // 37 rows: not a multiple of the 8-row blocks
  DecodingRows decoding(p.x);
  ASSERT_OK_AND_ASSIGN(ExactLassoResult a, SolveExactLasso(p.x, p.y, p.active, 0.2));
  ASSERT_OK_AND_ASSIGN(ExactLassoResult b, SolveExactLasso(decoding, p.y, p.active, 0.2));
  ASSERT_OK_AND_ASSIGN(ExactLassoResult c, SolveExactLasso(p.x, p.y, p.active, 0.2));
  EXPECT_EQ(a.beta, b.beta);
  EXPECT_EQ(a.beta, c.beta);
  EXPECT_EQ(a.epochs, c.epochs);
}

TEST(ExactLassoTest, StopsWhenAsked) {
  Problem p = CausalLikeProblem(30, 60, 8);
  ExactLassoOptions options;
  options.should_stop = [] { return true; };
  EXPECT_THAT(SolveExactLasso(p.x, p.y, p.active, 0.01, options),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST(ExactLassoTest, MissingRowIsInternalError) {
  BrokenRows x(12, 5, 9);
  EXPECT_THAT(ExactLasso::Create(&x, std::vector<float>(12, 1.0f), std::vector<uint8_t>(5, 1)),
              StatusIsWithMessage(absl::StatusCode::kInternal, "Row(9)"));
}

TEST(ExactLassoTest, RejectsInvalidInputs) {
  std::mt19937_64 rng(2);
  DenseRows x = GaussianRows(6, 4, rng);
  const std::vector<float> y(6, 1.0f);
  const std::vector<uint8_t> active = {1, 1, 0, 1};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();

  struct CreateCase {
    const char* what;
    std::vector<float> y;
    std::vector<uint8_t> active;
    const char* message;
  };
  const CreateCase create_cases[] = {
      {"short y", std::vector<float>(5, 1.0f), active, "y: 5 values, expected x.num_rows() = 6"},
      {"long active", y, std::vector<uint8_t>(5, 1), "active: 5 values, expected x.num_cols() = 4"},
      {"nan y", {1, 2, nan, 4, 5, 6}, active, "y[2]"},
      {"inf y", {1, 2, 3, 4, 5, -inf}, active, "y[5]"},
  };
  for (const CreateCase& c : create_cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(ExactLasso::Create(&x, c.y, c.active),
                StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
  EXPECT_THAT(ExactLasso::Create(nullptr, y, active), StatusIs(absl::StatusCode::kInvalidArgument));
  DenseRows no_rows(0, 4, {});
  EXPECT_THAT(ExactLasso::Create(&no_rows, {}, active),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "num_rows"));

  // A NaN in an active column is an error; in a frozen column it is ignored.
  std::vector<float> with_nan = x.data();
  with_nan[3 * 4 + 2] = nan;  // row 3, frozen column 2
  DenseRows nan_frozen(6, 4, with_nan);
  EXPECT_OK(ExactLasso::Create(&nan_frozen, y, active));
  with_nan[1 * 4 + 1] = nan;  // row 1, active column 1
  DenseRows nan_active(6, 4, with_nan);
  EXPECT_THAT(ExactLasso::Create(&nan_active, y, active),
              StatusIsWithMessage(absl::StatusCode::kInvalidArgument, "column 1"));

  ASSERT_OK_AND_ASSIGN(auto lasso, ExactLasso::Create(&x, y, active));
  const std::vector<float> warm_frozen = {0, 0, 0.5f, 0};
  const std::vector<float> warm_nan = {0, nan, 0, 0};
  const std::vector<float> warm_short = {0, 0, 0};
  struct SolveCase {
    const char* what;
    double alpha;
    ExactLassoOptions options;
    const char* message;
  };
  auto with = [](auto edit) {
    ExactLassoOptions o;
    edit(o);
    return o;
  };
  const SolveCase solve_cases[] = {
      {"negative alpha", -0.1, {}, "alpha: -0.1"},
      {"nan alpha", std::nan(""), {}, "alpha: nan"},
      {"infinite alpha", std::numeric_limits<double>::infinity(), {}, "alpha: inf"},
      {"negative tol", 0.1, with([](ExactLassoOptions& o) { o.tol = -1; }), "options.tol"},
      {"nan tol", 0.1, with([](ExactLassoOptions& o) { o.tol = std::nan(""); }), "options.tol"},
      {"zero iterations", 0.1, with([](ExactLassoOptions& o) { o.max_iterations = 0; }), "options.max_iterations"},
      {"zero epochs", 0.1, with([](ExactLassoOptions& o) { o.max_epochs = 0; }), "options.max_epochs"},
      {"zero working set", 0.1, with([](ExactLassoOptions& o) { o.initial_working_set = 0; }),
       "options.initial_working_set"},
      {"zero working set cap", 0.1, with([](ExactLassoOptions& o) { o.max_working_set = 0; }),
       "options.max_working_set"},
      {"short warm start", 0.1, with([&](ExactLassoOptions& o) { o.warm_start = warm_short; }),
       "options.warm_start: 3 values"},
      {"warm start on frozen", 0.1, with([&](ExactLassoOptions& o) { o.warm_start = warm_frozen; }),
       "options.warm_start[2]"},
      {"nan warm start", 0.1, with([&](ExactLassoOptions& o) { o.warm_start = warm_nan; }),
       "options.warm_start[1]"},
      {"warm start on frozen above alpha_max", 1e9,
       with([&](ExactLassoOptions& o) { o.warm_start = warm_frozen; }), "options.warm_start[2]"},
  };
  for (const SolveCase& c : solve_cases) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(lasso->Solve(c.alpha, c.options), StatusIsWithMessage(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST(ExactLassoTest, AlphaConversionMatchesLassoSgdObjectives) {
  Problem p = CausalLikeProblem(20, 30, 6);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal;
  std::vector<float> beta(30);
  for (float& b : beta) b = static_cast<float>(0.01 * normal(rng));
  const double l1 = 1e-3, n = 30;
  double rr = 0, half_sq = 0, norm1 = 0;
  for (int64_t t = 0; t < 20; ++t) {
    double r = p.y[t];
    for (int64_t k = 0; k < 30; ++k) r -= static_cast<double>(p.x.at(t, k)) * beta[k];
    rr += r * r / 20;            // V2: mean squared error, no ½
    half_sq += 0.5 * r * r / 20;  // V1: mean of ½ r²
  }
  for (float b : beta) norm1 += std::abs(b);
  const double v2_sgd = rr + (l1 / n) * norm1;
  const double v1_sgd = half_sq + l1 * norm1;
  EXPECT_NEAR(v2_sgd, 2 * Objective(p.x, p.y, beta, ExactAlphaFromLassoSgdV2(l1 / n)), 1e-9 * v2_sgd);
  EXPECT_NEAR(v1_sgd, Objective(p.x, p.y, beta, ExactAlphaFromLassoSgdV1(l1)), 1e-9 * v1_sgd);
}

}  // namespace
}  // namespace gcprune::pruner
