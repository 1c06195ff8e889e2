// The pruning session: steps into samples, fits or baselines at each iteration end, masks and their
// history, and the binary form of the session's metadata.
#include "pruner_service/causal/pruning_session.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "pruner_service/causal/exact_lasso.h"
#include "pruner_service/causal/lasso_sgd.h"
#include "pruner_service/causal/ranking.h"

namespace gcprune::pruner {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int FeatureGroups(const MethodConfig& c) { return c.v1_momentum ? 3 : 1; }

// Counts NaN and ±inf targets.
void CountTargets(const std::vector<double>& y, IterationReport* report) {
  for (double v : y) {
    if (std::isnan(v)) ++report->target_nan;
    if (std::isinf(v)) ++report->target_inf;
  }
}

// Solves the exact Lasso over `x` with the given active columns; fills `beta` and the fit report.
absl::Status SolveExact(const RowSource& x, absl::Span<const float> y, absl::Span<const uint8_t> active,
                        double alpha, const ExactParams& params, std::vector<float>* beta, FitReport* fit) {
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<ExactLasso> lasso, ExactLasso::Create(&x, y, active));
  ExactLassoOptions options;
  options.tol = params.tolerance;
  options.max_iterations = params.max_iterations;
  GCPRUNE_ASSIGN_OR_RETURN(ExactLassoResult result, lasso->Solve(alpha, options));
  for (size_t k = 0; k < beta->size(); ++k) {
    if (active[k]) (*beta)[k] = result.beta[k];
  }
  fit->epochs += static_cast<int>(result.epochs);
  fit->final_loss = std::isnan(fit->final_loss) ? result.objective : fit->final_loss + result.objective;
  fit->duality_gap =
      std::isnan(fit->duality_gap) ? result.duality_gap : std::max(fit->duality_gap, result.duality_gap);
  fit->converged = fit->converged && result.converged;
  return absl::OkStatus();
}

void CountCoefficients(const std::vector<float>& beta, FitReport* fit) {
  fit->nonzero_coefficients = 0;
  fit->negative_coefficients = 0;
  for (float b : beta) {
    fit->nonzero_coefficients += b != 0.0f;
    fit->negative_coefficients += b < 0.0f;
  }
}

}  // namespace

PruningSession::PruningSession(Layout layout, MethodConfig config, Schedule schedule, SessionOptions options)
    : layout_(std::move(layout)),
      config_(std::move(config)),
      schedule_(std::move(schedule)),
      options_(options),
      masks_(layout_),
      prune_iteration_(static_cast<size_t>(layout_.num_features()), 0) {
  memory_budget_ =
      config_.memory_budget_bytes > 0 ? config_.memory_budget_bytes : options_.default_memory_budget_bytes;
}

absl::StatusOr<std::unique_ptr<PruningSession>> PruningSession::Create(Layout layout, const MethodConfig& config,
                                                                       SessionOptions options) {
  if (options.default_memory_budget_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("session options: default_memory_budget_bytes ",
                                                   options.default_memory_budget_bytes, " is negative"));
  }
  if (options.solver_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("session options: solver_threads ", options.solver_threads, " is below 1"));
  }
  GCPRUNE_ASSIGN_OR_RETURN(MethodConfig resolved, ResolveMethodConfig(config));
  GCPRUNE_ASSIGN_OR_RETURN(Schedule schedule, MakeSchedule(resolved));
  std::unique_ptr<PruningSession> session(
      new PruningSession(std::move(layout), std::move(resolved), std::move(schedule), options));
  GCPRUNE_RETURN_IF_ERROR(session->InitSamples());
  return session;
}

absl::Status PruningSession::InitSamples() {
  if (!IsCausal(config_.method)) return absl::OkStatus();
  SampleStoreOptions store_options;
  store_options.encoding = config_.sample_encoding;
  store_options.memory_budget_bytes = memory_budget_;
  store_options.feature_groups = FeatureGroups(config_);
  GCPRUNE_ASSIGN_OR_RETURN(store_, SampleStore::Create(layout_, store_options));
  SampleBuilderOptions builder_options;
  builder_options.variant = config_.method == Method::kCausalV1 ? CausalVariant::kV1 : CausalVariant::kV2;
  builder_options.v1_momentum = config_.v1_momentum;
  GCPRUNE_ASSIGN_OR_RETURN(builder_, SampleBuilder::Create(store_.get(), builder_options));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Steps.

absl::Status PruningSession::CheckStepsAllowed() const {
  if (!builder_) {
    return absl::FailedPreconditionError(
        absl::StrCat("session: method ", MethodName(config_.method), " takes no steps"));
  }
  if (finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("session: all ", total_iterations(), " iterations are done; no more steps"));
  }
  return absl::OkStatus();
}

absl::Status PruningSession::BeginStep(const StepHeader& header) {
  GCPRUNE_RETURN_IF_ERROR(CheckStepsAllowed());
  return builder_->BeginStep(header);
}

absl::Status PruningSession::AddDeltas(int tensor, int64_t offset, absl::Span<const float> deltas) {
  GCPRUNE_RETURN_IF_ERROR(CheckStepsAllowed());
  return builder_->AddDeltas(tensor, offset, deltas);
}

absl::Status PruningSession::EndStep() {
  GCPRUNE_RETURN_IF_ERROR(CheckStepsAllowed());
  return builder_->EndStep();
}

void PruningSession::AbortStep() {
  if (builder_) builder_->AbortStep();
}

absl::Status PruningSession::AddStep(const StepHeader& header, const TensorWeights& deltas) {
  GCPRUNE_RETURN_IF_ERROR(CheckStepsAllowed());
  if (static_cast<int>(deltas.size()) != masks_.num_tensors()) {
    return absl::InvalidArgumentError(absl::StrCat("step ", header.step, ": deltas of ", deltas.size(),
                                                   " tensors, the layout has ", masks_.num_tensors(),
                                                   " prunable tensors"));
  }
  GCPRUNE_RETURN_IF_ERROR(builder_->BeginStep(header));
  absl::Status status;
  for (int p = 0; p < masks_.num_tensors() && status.ok(); ++p) {
    status = builder_->AddDeltas(masks_.tensor(p).layout_index, 0, deltas[p]);
  }
  if (status.ok()) status = builder_->EndStep();
  if (!status.ok()) builder_->AbortStep();
  return status;
}

// ---------------------------------------------------------------------------------------------------
// Fits.

absl::Status PruningSession::FitV2(std::vector<float>* beta, IterationReport* report) const {
  const std::vector<double>& y = store_->targets();
  CountTargets(y, report);
  double sum = 0;
  for (double v : y) sum += v;
  report->target_mean = sum / static_cast<double>(y.size());
  const int64_t n = layout_.num_features();
  FitReport fit;
  fit.solver = config_.solver;
  const Clock::time_point start = Clock::now();
  if (config_.solver == Solver::kLassoSgd) {
    LassoSgdV2Options o;
    o.minibatch = *config_.lasso_sgd.minibatch;
    o.lr0 = *config_.lasso_sgd.lr0;
    o.lr_power = *config_.lasso_sgd.lr_power;
    o.l1 = *config_.lasso_sgd.l1;
    o.grad_clamp = config_.lasso_sgd.grad_clamp;
    o.max_epochs = config_.lasso_sgd.max_epochs;
    o.patience = config_.lasso_sgd.patience;
    o.tol = config_.lasso_sgd.tol;
    o.seed = config_.seed;
    o.num_threads = options_.solver_threads;
    GCPRUNE_ASSIGN_OR_RETURN(LassoSgdV2Result result, FitLassoSgdV2(*store_, y, masks_.keep(), o));
    const LassoSgdReport& r = result.report;
    fit.epochs = r.epochs_run;
    fit.best_epoch = r.best_epoch;
    fit.early_stopped = r.stopped_early;
    fit.final_loss = r.final_loss;
    fit.best_loss = r.best_loss;
    fit.updates = r.updates;
    fit.epoch_losses = r.epoch_losses;
    *beta = config_.reference_ranking ? std::move(result.reference_beta) : std::move(result.beta);
  } else {
    const std::vector<double> normalized = NormalizeTargetsV2(y);
    const std::vector<float> yf(normalized.begin(), normalized.end());
    const double alpha =
        config_.exact.alpha.value_or(ExactAlphaFromLassoSgdV2(*config_.lasso_sgd.l1 / static_cast<double>(n)));
    beta->assign(static_cast<size_t>(n), 0.0f);
    fit.converged = true;
    GCPRUNE_RETURN_IF_ERROR(SolveExact(*store_, yf, masks_.keep(), alpha, config_.exact, beta, &fit));
  }
  fit.fit_seconds = SecondsSince(start);
  CountCoefficients(*beta, &fit);
  report->fit = std::move(fit);
  return absl::OkStatus();
}

absl::Status PruningSession::FitV1(std::vector<float>* beta, IterationReport* report) const {
  const std::vector<double>& y = store_->targets();
  CountTargets(y, report);
  const int groups = FeatureGroups(config_);
  const int64_t n = layout_.num_features();
  const int64_t cols = groups * n;
  std::vector<std::vector<ColumnRange>> fits;
  if (*config_.schedule.scope == RankScope::kPerLayer) {
    fits = PerLayerFits(layout_, groups);
  } else {
    fits.push_back({ColumnRange{0, cols}});
  }
  FitReport fit;
  fit.solver = config_.solver;
  fit.num_fits = static_cast<int>(fits.size());
  const Clock::time_point start = Clock::now();
  if (config_.solver == Solver::kLassoSgd) {
    LassoSgdV1Options o;
    o.minibatch = *config_.lasso_sgd.minibatch;
    o.lr0 = *config_.lasso_sgd.lr0;
    o.lr_power = *config_.lasso_sgd.lr_power;
    o.l1 = *config_.lasso_sgd.l1;
    o.grad_clamp = config_.lasso_sgd.grad_clamp;
    o.max_epochs = config_.lasso_sgd.max_epochs;
    o.patience = config_.lasso_sgd.patience;
    o.tol = config_.lasso_sgd.tol;
    o.seed = config_.seed;
    o.num_threads = options_.solver_threads;
    GCPRUNE_ASSIGN_OR_RETURN(LassoSgdV1Result result, FitLassoSgdV1(*store_, y, masks_.keep(), fits, o));
    double final_sum = 0, best_sum = 0;
    for (const LassoSgdReport& r : result.reports) {
      fit.epochs = std::max(fit.epochs, r.epochs_run);
      fit.early_stopped = fit.early_stopped || r.stopped_early;
      fit.updates += r.updates;
      final_sum += r.final_loss;
      best_sum += r.best_loss;
    }
    fit.final_loss = final_sum / static_cast<double>(result.reports.size());
    fit.best_loss = best_sum / static_cast<double>(result.reports.size());
    *beta = std::move(result.beta);
  } else {
    std::vector<float> yf(y.size());
    for (size_t t = 0; t < y.size(); ++t) yf[t] = std::isfinite(y[t]) ? static_cast<float>(y[t]) : 0.0f;
    const double alpha = config_.exact.alpha.value_or(ExactAlphaFromLassoSgdV1(*config_.lasso_sgd.l1));
    beta->assign(static_cast<size_t>(cols), 0.0f);
    fit.converged = true;
    const uint8_t* keep = masks_.keep().data();
    for (const std::vector<ColumnRange>& ranges : fits) {
      std::vector<uint8_t> active(static_cast<size_t>(cols), 0);
      for (const ColumnRange& r : ranges) {
        for (int64_t c = r.begin; c < r.end; ++c) active[c] = keep[c % n];
      }
      GCPRUNE_RETURN_IF_ERROR(SolveExact(*store_, yf, active, alpha, config_.exact, beta, &fit));
    }
    fit.final_loss /= static_cast<double>(fits.size());
  }
  fit.fit_seconds = SecondsSince(start);
  CountCoefficients(*beta, &fit);
  report->fit = std::move(fit);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------------
// Iterations.

absl::StatusOr<Selection> PruningSession::Select(int j, const TensorWeights& weights,
                                                 IterationReport* report) const {
  const LayerLimits limits = MakeLayerLimits(config_);
  const RankScope scope = *config_.schedule.scope;
  const int64_t n = layout_.num_features();
  GCPRUNE_ASSIGN_OR_RETURN(const int64_t count, schedule_.PruneCount(j, n, masks_.num_pruned()));
  switch (config_.method) {
    case Method::kCausalV2: {
      std::vector<float> beta;
      GCPRUNE_RETURN_IF_ERROR(FitV2(&beta, report));
      GCPRUNE_ASSIGN_OR_RETURN(report->coefficients, ComputeCoefficientStats(masks_, beta));
      const Clock::time_point start = Clock::now();
      GCPRUNE_ASSIGN_OR_RETURN(Selection s,
                               SelectToPrune(OrderKeys(beta, /*absolute=*/true), masks_, count, scope, limits));
      report->select_seconds = SecondsSince(start);
      return s;
    }
    case Method::kCausalV1: {
      std::vector<float> beta;
      GCPRUNE_RETURN_IF_ERROR(FitV1(&beta, report));
      GCPRUNE_ASSIGN_OR_RETURN(report->coefficients, ComputeCoefficientStats(masks_, beta));
      const Clock::time_point start = Clock::now();
      std::vector<uint8_t> flagged = NonzeroWeights(beta, n);
      for (uint8_t& f : flagged) f = !f;  // prune iff every coefficient of the weight is 0
      GCPRUNE_ASSIGN_OR_RETURN(Selection s, SelectFlagged(flagged, masks_, limits));
      report->select_seconds = SecondsSince(start);
      return s;
    }
    case Method::kMagnitudeGlobal:
    case Method::kMagnitudeLayer: {
      if (weights.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("iteration ", j, ": method ", MethodName(config_.method), " needs the current weights"));
      }
      const Clock::time_point start = Clock::now();
      GCPRUNE_ASSIGN_OR_RETURN(Selection s, SelectByMagnitude(masks_, weights, count, scope, limits));
      report->select_seconds = SecondsSince(start);
      return s;
    }
    case Method::kRandom: {
      const Clock::time_point start = Clock::now();
      GCPRUNE_ASSIGN_OR_RETURN(Selection s, SelectRandom(masks_, config_.seed, j, count, scope, limits));
      report->select_seconds = SecondsSince(start);
      return s;
    }
    case Method::kNone:
      break;
  }
  Selection none;
  none.per_tensor.assign(static_cast<size_t>(masks_.num_tensors()), 0);
  return none;
}

absl::StatusOr<IterationResult> PruningSession::EndIteration(const TensorWeights& weights) {
  const Clock::time_point start = Clock::now();
  if (finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("session: all ", total_iterations(), " iterations are done"));
  }
  const int j = current_iteration();
  if (builder_ && builder_->step_open()) {
    return absl::FailedPreconditionError(
        absl::StrCat("iteration ", j, ": a step is still open (end or abort it first)"));
  }
  if (IsCausal(config_.method) && store_->num_rows() == 0) {
    return absl::FailedPreconditionError(absl::StrCat("iteration ", j, ": no samples to fit"));
  }

  IterationReport report;
  report.iteration = j;
  report.method = config_.method;
  report.num_samples = num_samples();
  report.num_features = store_ ? store_->num_cols() : layout_.num_features();
  report.feature_nonfinite = store_ ? store_->total_nonfinite() : 0;
  if (config_.method != Method::kCausalV1) report.target_sparsity = schedule_.TargetSparsity(j);
  if (config_.method == Method::kNone) report.target_sparsity = 0.0;

  // Everything that can fail happens before the first change.
  GCPRUNE_ASSIGN_OR_RETURN(Selection selection, Select(j, weights, &report));
  GCPRUNE_RETURN_IF_ERROR(masks_.Prune(selection.features));
  for (int64_t f : selection.features) prune_iteration_[static_cast<size_t>(f)] = static_cast<uint16_t>(j);
  ++completed_;
  if (builder_) {
    builder_->EndIteration();
    if (finished()) {
      store_->ReleaseMemory();
    } else {
      store_->Clear();
    }
  }

  report.requested = selection.requested;
  report.pruned_this_iteration = static_cast<int64_t>(selection.features.size());
  report.shortfall = selection.shortfall;
  report.unmet_floor = selection.unmet_floor;
  report.achieved_sparsity = masks_.sparsity();
  report.kept = masks_.num_kept();
  report.pruned = masks_.num_pruned();
  for (int p = 0; p < masks_.num_tensors(); ++p) {
    const MaskTensor& t = masks_.tensor(p);
    report.tensors.push_back({t.layout_index, t.name, t.numel, t.numel - masks_.num_pruned(p),
                              masks_.num_pruned(p), selection.per_tensor[static_cast<size_t>(p)],
                              masks_.sparsity(p), report.target_sparsity});
  }
  report.final_iteration = finished();
  report.total_seconds = SecondsSince(start);
  return IterationResult{j, masks_, std::move(report)};
}

absl::StatusOr<MaskSet> PruningSession::MasksAfter(int iteration) const {
  if (iteration < 0 || iteration > completed_) {
    return absl::OutOfRangeError(
        absl::StrCat("masks: iteration ", iteration, " is not in [0, ", completed_, "] (completed iterations)"));
  }
  MaskSet masks(layout_);
  std::vector<int64_t> pruned;
  for (size_t k = 0; k < prune_iteration_.size(); ++k) {
    if (prune_iteration_[k] != 0 && prune_iteration_[k] <= iteration) pruned.push_back(static_cast<int64_t>(k));
  }
  GCPRUNE_RETURN_IF_ERROR(masks.Prune(pruned));
  return masks;
}

// ---------------------------------------------------------------------------------------------------
// Serialisation.

namespace {

constexpr char kMagic[8] = {'G', 'C', 'P', 'S', 'E', 'S', 'S', '1'};
constexpr uint32_t kFormatVersion = 1;

uint32_t Crc32(absl::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

template <typename T>
void Put(T v, std::string* out) {
  char bytes[sizeof(T)];
  for (size_t i = 0; i < sizeof(T); ++i)
    bytes[i] = static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF);
  out->append(bytes, sizeof(T));
}

void PutString(absl::string_view s, std::string* out) {
  Put<uint32_t>(static_cast<uint32_t>(s.size()), out);
  out->append(s.data(), s.size());
}

// Reads little-endian values from a blob; every read checks the remaining length.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}

  template <typename T>
  absl::StatusOr<T> Get(absl::string_view what) {
    if (data_.size() < sizeof(T)) return Truncated(what);
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[i])) << (8 * i);
    data_.remove_prefix(sizeof(T));
    return static_cast<T>(v);
  }
  absl::StatusOr<absl::string_view> GetBytes(uint64_t n, absl::string_view what) {
    if (data_.size() < n) return Truncated(what);
    absl::string_view out = data_.substr(0, n);
    data_.remove_prefix(n);
    return out;
  }
  absl::StatusOr<std::string> GetString(absl::string_view what) {
    GCPRUNE_ASSIGN_OR_RETURN(uint32_t n, Get<uint32_t>(what));
    GCPRUNE_ASSIGN_OR_RETURN(absl::string_view s, GetBytes(n, what));
    return std::string(s);
  }
  size_t remaining() const { return data_.size(); }

 private:
  static absl::Status Truncated(absl::string_view what) {
    return absl::DataLossError(absl::StrCat("session blob: truncated at ", what));
  }
  absl::string_view data_;
};

absl::Status DataLoss(absl::string_view what, const absl::Status& cause) {
  return absl::DataLossError(absl::StrCat("session blob: ", what, ": ", cause.message()));
}

}  // namespace

std::string PruningSession::Serialize() const {
  std::string out(kMagic, sizeof kMagic);
  Put<uint32_t>(kFormatVersion, &out);
  Put<uint32_t>(static_cast<uint32_t>(layout_.num_tensors()), &out);
  for (const TensorSpec& t : layout_.tensors()) {
    PutString(t.name, &out);
    Put<uint8_t>(t.prunable ? 1 : 0, &out);
    Put<uint32_t>(static_cast<uint32_t>(t.shape.size()), &out);
    for (int64_t d : t.shape) Put<int64_t>(d, &out);
  }
  PutString(FormatMethodConfig(config_), &out);
  Put<int32_t>(completed_, &out);
  Put<int64_t>(layout_.num_features(), &out);
  out.reserve(out.size() + 2 * prune_iteration_.size() + 4);
  for (uint16_t v : prune_iteration_) Put<uint16_t>(v, &out);
  Put<uint32_t>(Crc32(out), &out);
  return out;
}

absl::StatusOr<std::unique_ptr<PruningSession>> PruningSession::Deserialize(absl::string_view blob,
                                                                            SessionOptions options) {
  if (blob.size() < sizeof kMagic + 8 || std::memcmp(blob.data(), kMagic, sizeof kMagic) != 0) {
    return absl::DataLossError("session blob: not a session (bad magic or too short)");
  }
  const absl::string_view body = blob.substr(0, blob.size() - 4);
  Reader crc_reader(blob.substr(blob.size() - 4));
  GCPRUNE_ASSIGN_OR_RETURN(uint32_t crc, crc_reader.Get<uint32_t>("crc"));
  if (crc != Crc32(body)) return absl::DataLossError("session blob: CRC-32 mismatch (corrupt data)");

  Reader r(body.substr(sizeof kMagic));
  GCPRUNE_ASSIGN_OR_RETURN(uint32_t version, r.Get<uint32_t>("version"));
  if (version != kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("session blob: format version ", version,
                                                      " is not supported (expected ", kFormatVersion, ")"));
  }
  GCPRUNE_ASSIGN_OR_RETURN(uint32_t num_tensors, r.Get<uint32_t>("tensor count"));
  std::vector<TensorSpec> tensors;
  for (uint32_t i = 0; i < num_tensors; ++i) {
    TensorSpec t;
    GCPRUNE_ASSIGN_OR_RETURN(t.name, r.GetString("tensor name"));
    GCPRUNE_ASSIGN_OR_RETURN(uint8_t prunable, r.Get<uint8_t>("tensor flags"));
    t.prunable = prunable != 0;
    GCPRUNE_ASSIGN_OR_RETURN(uint32_t rank, r.Get<uint32_t>("tensor rank"));
    if (rank > r.remaining() / 8) return absl::DataLossError("session blob: truncated at tensor shape");
    for (uint32_t d = 0; d < rank; ++d) {
      GCPRUNE_ASSIGN_OR_RETURN(int64_t dim, r.Get<int64_t>("tensor shape"));
      t.shape.push_back(dim);
    }
    tensors.push_back(std::move(t));
  }
  absl::StatusOr<Layout> layout = Layout::Create(std::move(tensors));
  if (!layout.ok()) return DataLoss("layout", layout.status());
  GCPRUNE_ASSIGN_OR_RETURN(std::string config_text, r.GetString("config"));
  absl::StatusOr<MethodConfig> config = ParseMethodConfig(config_text);
  if (!config.ok()) return DataLoss("config", config.status());
  GCPRUNE_ASSIGN_OR_RETURN(int32_t completed, r.Get<int32_t>("completed iterations"));
  GCPRUNE_ASSIGN_OR_RETURN(int64_t n, r.Get<int64_t>("feature count"));
  if (n != layout->num_features()) {
    return absl::DataLossError(absl::StrCat("session blob: ", n, " prune iterations for a layout of ",
                                            layout->num_features(), " features"));
  }
  GCPRUNE_ASSIGN_OR_RETURN(absl::string_view history,
                           r.GetBytes(static_cast<uint64_t>(2 * n), "prune iterations"));
  if (r.remaining() != 0) return absl::DataLossError("session blob: trailing bytes after the prune iterations");

  absl::StatusOr<std::unique_ptr<PruningSession>> session = Create(*std::move(layout), *config, options);
  if (!session.ok()) {
    if (session.status().code() == absl::StatusCode::kInvalidArgument) return DataLoss("config", session.status());
    return session.status();
  }
  PruningSession& s = **session;
  if (completed < 0 || completed > s.total_iterations()) {
    return absl::DataLossError(absl::StrCat("session blob: completed iterations ", completed, " is not in [0, ",
                                            s.total_iterations(), "]"));
  }
  s.completed_ = completed;
  std::vector<int64_t> pruned;
  for (int64_t k = 0; k < n; ++k) {
    const uint16_t v = static_cast<uint16_t>(static_cast<uint8_t>(history[2 * k]) |
                                             (static_cast<uint8_t>(history[2 * k + 1]) << 8));
    if (v > completed) {
      return absl::DataLossError(absl::StrCat("session blob: feature ", k, " pruned at iteration ", v,
                                              " after the ", completed, " completed"));
    }
    s.prune_iteration_[static_cast<size_t>(k)] = v;
    if (v != 0) pruned.push_back(k);
  }
  GCPRUNE_RETURN_IF_ERROR(s.masks_.Prune(pruned));
  if (s.finished() && s.store_) s.store_->ReleaseMemory();
  return session;
}

}  // namespace gcprune::pruner
