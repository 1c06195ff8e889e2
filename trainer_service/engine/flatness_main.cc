// gcprune-flatness: runs a RunSpec's whole protocol in process — the trainer's own RunProtocol, with an
// in-process PruningSession in place of the pruner service, same seeds, so it reproduces the service's run —
// then measures the top Hessian eigenvalues of the test loss of the pruned model (after the last prune
// iteration) and of the final (fine-tuned) model, over all parameters and over the unpruned ones.
//
//   gcprune-flatness --run_spec=spec.json --output=flatness.json
//   gcprune-flatness --run_spec=spec.json --stages=final --subspaces=all --epsilon_scan=1e-3,1e-2,1e-1
// spec.json holds a gcprune.v1.RunSpec in the protobuf JSON form (what scripts/sweep.py sends); the pruner
// address is ignored.
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "protos/gcprune/v1/trainer.pb.h"
#include "pruner_service/causal/pruning_session.h"
#include "pruner_service/service/wire_format.h"
#include "trainer_service/engine/hessian.h"
#include "trainer_service/engine/model.h"
#include "trainer_service/engine/model_spec.h"
#include "trainer_service/service/pruning_link.h"
#include "trainer_service/service/run_data.h"
#include "trainer_service/service/run_plan.h"
#include "trainer_service/service/run_protocol.h"
#include "trainer_service/service/run_record.h"

ABSL_FLAG(std::string, run_spec, "", "File with a gcprune.v1.RunSpec in protobuf JSON form (required)");
ABSL_FLAG(std::string, output, "", "Write the JSON record here (default: standard output)");
ABSL_FLAG(std::string, data_root, "/usr/share/datasets",
          "Directory with one folder per data set (fashion-mnist/, mnist/, cifar10/), as the trainer's flag");
ABSL_FLAG(std::string, stages, "pruned,final",
          "Models to measure: 'pruned' (right after the last prune iteration) and/or 'final' (after fine-tuning)");
ABSL_FLAG(std::string, subspaces, "all,unpruned",
          "Hessians to take: 'all' (every parameter, pruned weights perturbed too) and/or 'unpruned'");
ABSL_FLAG(int, top_k, 1, "Eigenvalues per Hessian, the largest first (>= 1)");
ABSL_FLAG(int, max_iterations, 40, "Lanczos steps per Hessian, each one Hessian-vector product");
ABSL_FLAG(double, tolerance, 1e-3, "Relative residual bound at which a Ritz value counts as converged");
ABSL_FLAG(double, epsilon, 1e-2, "Finite-difference step length in parameter space");
ABSL_FLAG(std::string, epsilon_scan, "",
          "Comma-separated steps: measure the top eigenvalue once per step (overrides --epsilon)");
ABSL_FLAG(int64_t, hessian_examples, 0, "Use the first N test examples of the run for the Hessian (0: all)");
ABSL_FLAG(int, hessian_batch, 1000, "Evaluation batch of the gradients");
ABSL_FLAG(uint64_t, hessian_seed, 1, "Seed of the Lanczos start vector");
ABSL_FLAG(std::string, save_weights, "",
          "Also write each measured model's parameters to <prefix>.<stage>.bin (float32, little-endian, "
          "parameters in order, each flattened as torch's flatten()) with <prefix>.<stage>.json naming them");
ABSL_FLAG(double, loss_label_smoothing, -1.0,
          "Label smoothing of the loss whose Hessian is taken, in [0, 1); negative: the run's own loss");

namespace gcprune::trainer {
namespace {

namespace v1 = ::gcprune::v1;

// Feeds a run's steps straight into an in-process PruningSession: the pruner service's computation
// without the transport.
class InProcessPrunerLink final : public PruningLink {
 public:
  static absl::StatusOr<std::unique_ptr<PruningLink>> Create(const v1::Layout& layout,
                                                             const v1::MethodConfig& method) {
    GCPRUNE_ASSIGN_OR_RETURN(pruner::Layout core_layout, pruner::LayoutFromProto(layout, "layout"));
    GCPRUNE_ASSIGN_OR_RETURN(pruner::MethodConfig config, pruner::MethodConfigFromProto(method, "spec.method"));
    GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<pruner::PruningSession> session,
                             pruner::PruningSession::Create(std::move(core_layout), config));
    return std::unique_ptr<PruningLink>(new InProcessPrunerLink(std::move(session)));
  }

  absl::Status Start() override { return absl::OkStatus(); }
  absl::Status BeginIteration(int) override { return absl::OkStatus(); }
  absl::Status AddStep(const StepRecord& step) override {
    if (!session_->wants_steps()) return absl::OkStatus();
    pruner::StepHeader header;
    header.step = steps_++;
    header.loss_before = step.loss_before;
    header.loss_after = std::isnan(step.loss_after) ? 0.0 : step.loss_after;
    header.lr = step.learning_rate;
    pruner::TensorWeights deltas;
    for (const std::vector<float>& values : *step.deltas) deltas.emplace_back(values.data(), values.size());
    return session_->AddStep(header, deltas);
  }
  absl::StatusOr<IterationMasks> EndIteration(int, const std::vector<absl::Span<const float>>& weights) override {
    GCPRUNE_ASSIGN_OR_RETURN(pruner::IterationResult result, session_->EndIteration(weights));
    IterationMasks masks;
    masks.pruner_iteration = result.iteration;
    masks.apply_at_step = steps_;
    masks.target_sparsity = session_->config().method == pruner::Method::kCausalV1
                                ? std::nan("")
                                : session_->schedule().TargetSparsity(result.iteration);
    for (int p = 0; p < result.masks.num_tensors(); ++p) {
      absl::Span<const uint8_t> keep = result.masks.tensor_keep(p);
      masks.keep.emplace_back(keep.begin(), keep.end());
    }
    return masks;
  }
  void Close(bool) override {}
  LinkStats stats() const override {
    LinkStats stats;
    stats.session_id = "in-process";
    stats.state = v1::PRUNER_STATE_CONNECTED;
    stats.steps_sent = steps_;
    stats.acked_step = steps_ - 1;
    return stats;
  }

 private:
  explicit InProcessPrunerLink(std::unique_ptr<pruner::PruningSession> session) : session_(std::move(session)) {}

  std::unique_ptr<pruner::PruningSession> session_;
  int64_t steps_ = 0;
};

absl::StatusOr<std::unique_ptr<PruningLink>> MakeLink(const RunPlan& plan, const v1::Layout& layout) {
  if (plan.pruner.enabled) return InProcessPrunerLink::Create(layout, plan.method);
  std::vector<int64_t> numels;
  std::vector<int> indices;
  for (int i = 0; i < layout.tensors_size(); ++i) {
    if (!layout.tensors(i).prunable()) continue;
    int64_t numel = 1;
    for (int64_t d : layout.tensors(i).shape()) numel *= d;
    numels.push_back(numel);
    indices.push_back(i);
  }
  return std::unique_ptr<PruningLink>(std::make_unique<NoPrunerLink>(std::move(numels), std::move(indices)));
}

// JSON number, or null for NaN and infinities (which JSON cannot hold).
std::string Num(double value) { return std::isfinite(value) ? absl::StrFormat("%.10g", value) : "null"; }

std::string NumList(const std::vector<double>& values) {
  std::vector<std::string> parts;
  for (double v : values) parts.push_back(Num(v));
  return absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
}

struct Settings {
  std::vector<std::string> stages;
  std::vector<HessianSubspace> subspaces;
  std::vector<double> epsilons;
  HessianOptions hessian;
  int64_t examples = 0;
  double label_smoothing = -1.0;
};

absl::StatusOr<Settings> ParseSettings() {
  Settings settings;
  for (absl::string_view stage : absl::StrSplit(absl::GetFlag(FLAGS_stages), ',', absl::SkipEmpty())) {
    if (stage != "pruned" && stage != "final") {
      return absl::InvalidArgumentError(absl::StrCat("--stages: unknown stage '", stage, "' (pruned, final)"));
    }
    settings.stages.emplace_back(stage);
  }
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_subspaces), ',', absl::SkipEmpty())) {
    if (name == "all") {
      settings.subspaces.push_back(HessianSubspace::kAllParameters);
    } else if (name == "unpruned") {
      settings.subspaces.push_back(HessianSubspace::kUnpruned);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--subspaces: unknown subspace '", name, "' (all, unpruned)"));
    }
  }
  if (settings.stages.empty() || settings.subspaces.empty()) {
    return absl::InvalidArgumentError("--stages and --subspaces: each needs at least one entry");
  }
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_epsilon_scan), ',', absl::SkipEmpty())) {
    double epsilon = 0.0;
    if (!absl::SimpleAtod(text, &epsilon)) {
      return absl::InvalidArgumentError(absl::StrCat("--epsilon_scan: '", text, "' is not a number"));
    }
    settings.epsilons.push_back(epsilon);
  }
  if (settings.epsilons.empty()) settings.epsilons.push_back(absl::GetFlag(FLAGS_epsilon));
  settings.hessian.num_eigenvalues = absl::GetFlag(FLAGS_top_k);
  settings.hessian.max_iterations = absl::GetFlag(FLAGS_max_iterations);
  settings.hessian.tolerance = absl::GetFlag(FLAGS_tolerance);
  settings.hessian.seed = absl::GetFlag(FLAGS_hessian_seed);
  settings.hessian.hvp.batch_size = absl::GetFlag(FLAGS_hessian_batch);
  settings.examples = absl::GetFlag(FLAGS_hessian_examples);
  if (settings.examples < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--hessian_examples: must be >= 0, got ", settings.examples));
  }
  settings.label_smoothing = absl::GetFlag(FLAGS_loss_label_smoothing);
  if (!(settings.label_smoothing < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--loss_label_smoothing: must be < 1, got ", settings.label_smoothing));
  }
  return settings;
}

// The first `examples` examples of `data` (all when 0 or more than it has).
Dataset Head(const Dataset& data, int64_t examples) {
  if (examples <= 0 || examples >= data.size) return data;
  Dataset head = data;
  head.size = examples;
  head.images.resize(static_cast<size_t>(examples * data.image_numel()));
  head.labels.resize(static_cast<size_t>(examples));
  return head;
}

// Writes `model`'s parameters as <prefix>.<stage>.bin plus an index <prefix>.<stage>.json (names, shapes,
// float offsets, and the keep-masks' pruned counts) for tools outside the engine, e.g. an autograd check.
absl::Status SaveWeights(const std::string& prefix, const std::string& stage, const Model& model) {
  std::string values;
  std::vector<std::string> entries;
  int64_t offset = 0;
  for (const Parameter* param : model.parameters()) {
    values.append(reinterpret_cast<const char*>(param->data), static_cast<size_t>(param->numel) * sizeof(float));
    entries.push_back(absl::StrCat("{\"name\": \"", param->name, "\", \"shape\": [", absl::StrJoin(param->shape, ", "),
                                   "], \"offset\": ", offset, ", \"numel\": ", param->numel, "}"));
    offset += param->numel;
  }
  GCPRUNE_RETURN_IF_ERROR(common::WriteFileAtomically(absl::StrCat(prefix, ".", stage, ".bin"), values));
  return common::WriteFileAtomically(
      absl::StrCat(prefix, ".", stage, ".json"),
      absl::StrCat("{\"dtype\": \"float32-le\", \"model\": \"", FormatLayers(model.spec().layers), "\", \"input_shape\": [",
                   absl::StrJoin(model.spec().input_shape, ", "), "], \"label_smoothing\": ", Num(model.label_smoothing()),
                   ", \"parameters\": [\n  ", absl::StrJoin(entries, ",\n  "), "\n]}\n"));
}

// Measures one saved model under every requested subspace and step; returns JSON objects.
absl::StatusOr<std::vector<std::string>> Measure(const std::string& stage, const RunPlan& plan,
                                                 const ModelSnapshot& snapshot, const Dataset& data,
                                                 const Settings& settings) {
  ModelOptions model_options;
  model_options.label_smoothing =
      settings.label_smoothing >= 0.0 ? static_cast<float>(settings.label_smoothing) : plan.label_smoothing;
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Create(plan.model, plan.seed, model_options));
  GCPRUNE_RETURN_IF_ERROR(model->Restore(snapshot));
  if (const std::string prefix = absl::GetFlag(FLAGS_save_weights); !prefix.empty()) {
    GCPRUNE_RETURN_IF_ERROR(SaveWeights(prefix, stage, *model));
  }
  GCPRUNE_ASSIGN_OR_RETURN(EvalResult eval, model->Evaluate(data, settings.hessian.hvp.batch_size));
  const double sparsity = static_cast<double>(model->num_pruned_weights()) /
                          static_cast<double>(model->num_prunable_weights());
  std::vector<std::string> records;
  for (HessianSubspace subspace : settings.subspaces) {
    for (double epsilon : settings.epsilons) {
      HessianOptions options = settings.hessian;
      options.hvp.subspace = subspace;
      options.hvp.epsilon = epsilon;
      GCPRUNE_ASSIGN_OR_RETURN(HessianSpectrum spectrum, TopHessianEigenvalues(model.get(), data, options));
      std::fprintf(stderr,
                   "gcprune-flatness: %s model, %s parameters (%lld), epsilon %g: top eigenvalue %.6g "
                   "(residual %.2g, %d products, %.1f s)\n",
                   stage.c_str(), std::string(HessianSubspaceName(subspace)).c_str(),
                   static_cast<long long>(spectrum.dimension), epsilon, spectrum.eigenvalues.front(),
                   spectrum.residuals.front(), spectrum.iterations, spectrum.seconds);
      records.push_back(absl::StrCat(
          "{\"stage\": \"", stage, "\", \"subspace\": \"", HessianSubspaceName(subspace),
          "\", \"sparsity\": ", Num(sparsity), ", \"test_accuracy\": ", Num(eval.accuracy),
          ", \"test_loss\": ", Num(spectrum.loss), ", \"gradient_norm\": ", Num(spectrum.gradient_norm),
          ", \"label_smoothing\": ", Num(model->label_smoothing()), ", \"examples\": ", data.size,
          ", \"epsilon\": ", Num(epsilon), ", \"dimension\": ", spectrum.dimension,
          ", \"eigenvalues\": ", NumList(spectrum.eigenvalues), ", \"residuals\": ", NumList(spectrum.residuals),
          ", \"converged\": ", spectrum.converged ? "true" : "false", ", \"iterations\": ", spectrum.iterations,
          ", \"seconds\": ", Num(spectrum.seconds), "}"));
    }
  }
  return records;
}

absl::Status Run() {
  GCPRUNE_ASSIGN_OR_RETURN(const Settings settings, ParseSettings());
  const std::string spec_path = absl::GetFlag(FLAGS_run_spec);
  if (spec_path.empty()) return absl::InvalidArgumentError("--run_spec: required");
  GCPRUNE_ASSIGN_OR_RETURN(const std::string spec_text, common::ReadFileToString(spec_path));
  v1::RunSpec spec;
  if (const auto parsed = google::protobuf::util::JsonStringToMessage(spec_text, &spec); !parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec_path, ": not a gcprune.v1.RunSpec: ", std::string(parsed.message())));
  }
  RunSpecDefaults defaults;
  defaults.data_root = absl::GetFlag(FLAGS_data_root);
  defaults.pruner_address = "in-process";  // any address: the session runs in this process
  GCPRUNE_ASSIGN_OR_RETURN(const RunPlan plan, ResolveRunSpec(spec, defaults));
  DatasetCache cache(2);
  GCPRUNE_ASSIGN_OR_RETURN(const RunData data, cache.Load(plan.data));

  RunRecord record("flatness", 1, spec, plan.iterations, 1 << 16);
  std::optional<ModelSnapshot> pruned, final_model;
  ProtocolOptions options;
  options.progress_interval = absl::Seconds(3600);
  options.on_masks_applied = [&](int iteration, const Model& model) {
    std::fprintf(stderr, "gcprune-flatness: iteration %d/%d applied, %lld of %lld weights pruned\n", iteration,
                 plan.iterations, static_cast<long long>(model.num_pruned_weights()),
                 static_cast<long long>(model.num_prunable_weights()));
    if (iteration == plan.iterations) pruned = model.Snapshot();
  };
  options.on_finished = [&](const Model& model) { final_model = model.Snapshot(); };
  const absl::Status protocol = RunProtocol(
      plan, data, [&plan](const v1::Layout& layout) { return MakeLink(plan, layout); }, &record, options);
  if (!protocol.ok()) return absl::Status(protocol.code(), absl::StrCat("run protocol: ", protocol.message()));

  const Dataset hessian_data = Head(*data.test, settings.examples);
  std::vector<std::string> measurements;
  for (const std::string& stage : settings.stages) {
    const std::optional<ModelSnapshot>& snapshot = stage == "pruned" ? pruned : final_model;
    if (!snapshot.has_value()) {
      return absl::InternalError(absl::StrCat("the protocol ended without a ", stage, " model"));
    }
    GCPRUNE_ASSIGN_OR_RETURN(std::vector<std::string> records, Measure(stage, plan, *snapshot, hessian_data, settings));
    for (std::string& r : records) measurements.push_back(std::move(r));
  }

  std::string spec_json, report_json;
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(spec, &spec_json, print);
  (void)google::protobuf::util::MessageToJsonString(record.GetReport(), &report_json, print);
  const std::string json = absl::StrCat(
      "{\n\"tool\": \"gcprune-flatness\",\n\"hessian\": {\"method\": \"lanczos, central finite differences\", "
      "\"max_iterations\": ", settings.hessian.max_iterations, ", \"tolerance\": ", Num(settings.hessian.tolerance),
      ", \"top_k\": ", settings.hessian.num_eigenvalues, ", \"batch_size\": ", settings.hessian.hvp.batch_size,
      ", \"seed\": ", settings.hessian.seed, "},\n\"run_spec\": ", spec_json, ",\n\"report\": ", report_json,
      ",\n\"measurements\": [\n  ", absl::StrJoin(measurements, ",\n  "), "\n]\n}\n");
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output.empty()) {
    std::fputs(json.c_str(), stdout);
    return absl::OkStatus();
  }
  return common::WriteFileAtomically(output, json);
}

}  // namespace
}  // namespace gcprune::trainer

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Runs a RunSpec's protocol in process and measures the top Hessian eigenvalues of the test loss of the "
      "pruned and the fine-tuned model.\nUsage: gcprune-flatness --run_spec=spec.json [--output=out.json]");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = gcprune::trainer::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "gcprune-flatness: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
