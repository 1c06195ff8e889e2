// Flatness of a model (METHOD.md §7): the top eigenvalues of the Hessian of its mean loss over a data set,
// by Lanczos iteration on Hessian-vector products, each a central finite difference of two gradients
// accumulated in double over the whole data set.
#ifndef GCPRUNE_TRAINER_SERVICE_ENGINE_HESSIAN_H_
#define GCPRUNE_TRAINER_SERVICE_ENGINE_HESSIAN_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "trainer_service/engine/dataset.h"
#include "trainer_service/engine/model.h"

namespace gcprune::trainer {

// The parameter space whose Hessian is taken. Vectors always have one entry per parameter element
// (Model::parameters() order, each tensor flattened); coordinates outside the subspace are held at 0.
enum class HessianSubspace {
  // Every parameter, biases included, with the masks lifted: pruned weights are perturbed too (the
  // authors' measurement on pruned models).
  kAllParameters,
  // Only the parameters the model still trains: biases and unpruned weights; pruned weights stay 0.
  kUnpruned,
};

absl::string_view HessianSubspaceName(HessianSubspace subspace);  // "all" / "unpruned"

// Mean loss of `model` over `data` and its gradient, Σ_b (n_b / N) · ∇(batch mean loss), accumulated in
// double, flattened over Model::parameters(). Batches of `batch_size` in data order; masked gradient entries
// are 0 (as Model::ForwardBackward). `gradient` is resized to the parameter count. INVALID_ARGUMENT for
// batch_size < 1, an empty data set or one whose image shape differs from the model's; errors of
// Model::ForwardBackward.
absl::StatusOr<double> DatasetLossAndGradient(Model* model, const Dataset& data, int batch_size,
                                              std::vector<double>* gradient);

struct HessianVectorOptions {
  HessianSubspace subspace = HessianSubspace::kAllParameters;
  // Length of the finite-difference step in parameter space: the gradients are taken at θ ± ε·v/‖v‖. > 0
  // and finite. docs/RESULTS.md shows how the top eigenvalue of LeNet-5 depends on it.
  double epsilon = 1e-2;
  int batch_size = 1000;  // evaluation batch, in [1, 65536]
};

// H·v by (g(θ + h·v) − g(θ − h·v)) / (2h) with h = ε/‖Pv‖, where P zeroes the coordinates outside the
// subspace; the result is projected by P too. While it exists the model's masks are lifted
// (kAllParameters) and its parameters move; the destructor restores values and masks exactly.
// The model and the data set must outlive it. Thread-compatible.
class HessianVectorProduct {
 public:
  // Snapshots `model`. INVALID_ARGUMENT for options out of range or a data set that does not fit the model
  // (checked by one gradient evaluation, which also yields loss() and gradient_norm()).
  static absl::StatusOr<std::unique_ptr<HessianVectorProduct>> Create(Model* model, const Dataset* data,
                                                                      const HessianVectorOptions& options);
  ~HessianVectorProduct();
  HessianVectorProduct(const HessianVectorProduct&) = delete;
  HessianVectorProduct& operator=(const HessianVectorProduct&) = delete;

  // Entries per vector: every parameter element of the model.
  int64_t size() const { return static_cast<int64_t>(free_.size()); }
  // Coordinates in the subspace (1) or held at 0 (0), size() entries.
  const std::vector<uint8_t>& free() const { return free_; }
  int64_t dimension() const { return dimension_; }  // number of free coordinates
  double loss() const { return loss_; }              // mean loss at θ
  double gradient_norm() const { return gradient_norm_; }  // ‖P·g(θ)‖
  int64_t products() const { return products_; }     // Apply calls that evaluated gradients

  // hv ← P·H·P·v. INVALID_ARGUMENT if v or hv has the wrong size or v is not finite; a zero P·v gives 0.
  // Errors of the gradient evaluation otherwise (the model is back at θ in every case).
  absl::Status Apply(absl::Span<const double> v, absl::Span<double> hv);

 private:
  HessianVectorProduct(Model* model, const Dataset* data, const HessianVectorOptions& options);
  // Sets the parameters to θ + step·v (free coordinates only) and evaluates the gradient into `gradient`.
  absl::Status GradientAt(absl::Span<const double> v, double step, std::vector<double>* gradient);
  void ResetParameters();

  Model* model_;
  const Dataset* data_;
  HessianVectorOptions options_;
  ModelSnapshot snapshot_;
  std::vector<uint8_t> free_;
  int64_t dimension_ = 0;
  double loss_ = 0.0;
  double gradient_norm_ = 0.0;
  int64_t products_ = 0;
  std::vector<double> plus_, minus_;
};

struct HessianOptions {
  HessianVectorOptions hvp;
  int num_eigenvalues = 1;     // the k algebraically largest, in [1, max_iterations]
  int max_iterations = 40;     // Lanczos steps (one H·v each), in [1, 1000]; capped at the dimension
  // Stop once every wanted Ritz value θ_i has a residual bound |β_m·s_{m,i}| <= tolerance·|θ_i|; >= 0.
  double tolerance = 1e-3;
  uint64_t seed = 1;           // Gaussian start vector (splitmix64)
};

struct HessianSpectrum {
  HessianSubspace subspace = HessianSubspace::kAllParameters;
  std::vector<double> eigenvalues;  // the top Ritz values, descending (units: loss per parameter²)
  std::vector<double> residuals;    // their residual bounds ‖H·y − θ·y‖, same order
  bool converged = false;           // every wanted value met the tolerance (or the space was exhausted)
  int iterations = 0;               // Lanczos steps taken = Hessian-vector products
  int64_t dimension = 0;            // free coordinates
  double loss = 0.0;                // mean loss at θ
  double gradient_norm = 0.0;       // ‖P·g(θ)‖
  double seconds = 0.0;             // wall time
};

// Lanczos with full reorthogonalisation on HessianVectorProduct. The model is restored exactly before
// returning. INVALID_ARGUMENT for options out of range (naming the field) and as HessianVectorProduct;
// other errors of the gradient evaluation.
absl::StatusOr<HessianSpectrum> TopHessianEigenvalues(Model* model, const Dataset& data,
                                                      const HessianOptions& options);

// Eigen-decomposition of the symmetric tridiagonal matrix with diagonal `diagonal` (n) and off-diagonal
// `off_diagonal` (n − 1) by the implicit QL method. Returns the eigenvalues ascending; `last_components`,
// when not null, receives the last component of each unit eigenvector in the same order. INVALID_ARGUMENT
// for mismatched sizes, non-finite entries, or no convergence in 60 sweeps per eigenvalue.
absl::StatusOr<std::vector<double>> TridiagonalEigenvalues(std::vector<double> diagonal,
                                                           std::vector<double> off_diagonal,
                                                           std::vector<double>* last_components = nullptr);

}  // namespace gcprune::trainer

#endif  // GCPRUNE_TRAINER_SERVICE_ENGINE_HESSIAN_H_
