// gcprune_replay_samples: the C++ reference of the Python client tests. Replays recorded collection steps
// straight into the causal core (PruningSession, no gRPC) and writes the masks after every iteration, so
// that a test can compare them with the masks a client received from the pruner server.
//
// Usage: gcprune_replay_samples LAYOUT CONFIG STEPS OUT
//   LAYOUT: one tensor per line, "name<TAB>d1,d2,...<TAB>prunable(0|1)", in layout order.
//   CONFIG: method configuration text (ParseMethodConfig's key=value form).
//   STEPS:  little-endian records: i32 kind; kind 1 = a step: i64 step, f64 loss_before, f64 loss_after,
//           f64 learning_rate, then N f32 deltas (the prunable tensors flattened in layout order);
//           kind 2 = end of the iteration.
//   OUT:    per iteration end, N bytes of keep flags (1 kept, 0 pruned) in feature order.
// Exit status: 0 on success, 1 on a data or session error (printed), 2 on wrong usage.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "common/status_macros.h"
#include "pruner_service/causal/layout.h"
#include "pruner_service/causal/method_config.h"
#include "pruner_service/causal/pruning_session.h"

namespace gcprune::pruner {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Parses the LAYOUT format above. INVALID_ARGUMENT naming the line for a malformed one.
absl::StatusOr<Layout> ParseLayout(const std::string& path, const std::string& text) {
  std::vector<TensorSpec> tensors;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line_number;
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    if (fields.size() != 3 || (fields[2] != "0" && fields[2] != "1")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": expected 'name<TAB>dims<TAB>0|1', got '", line, "'"));
    }
    TensorSpec spec;
    spec.name = fields[0];
    spec.prunable = fields[2] == "1";
    for (absl::string_view dim : absl::StrSplit(fields[1], ',')) {
      int64_t value = 0;
      if (!absl::SimpleAtoi(dim, &value)) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": bad dimension '", dim, "'"));
      }
      spec.shape.push_back(value);
    }
    tensors.push_back(std::move(spec));
  }
  return Layout::Create(std::move(tensors));
}

// Reads little-endian values from a byte buffer, failing (DATA_LOSS) past its end.
class Reader {
 public:
  explicit Reader(const std::string& data) : data_(data) {}
  bool done() const { return pos_ == data_.size(); }
  size_t pos() const { return pos_; }

  template <typename T>
  absl::Status Read(T* out, size_t count = 1) {
    const size_t bytes = sizeof(T) * count;
    if (data_.size() - pos_ < bytes) {
      return absl::DataLossError(absl::StrCat("truncated at byte ", pos_, ": ", bytes, " more bytes needed"));
    }
    std::memcpy(out, data_.data() + pos_, bytes);
    pos_ += bytes;
    return absl::OkStatus();
  }

 private:
  const std::string& data_;
  size_t pos_ = 0;
};

absl::Status Replay(const std::string& layout_path, const std::string& config_path, const std::string& steps_path,
                    const std::string& out_path) {
  GCPRUNE_ASSIGN_OR_RETURN(std::string layout_text, ReadFile(layout_path));
  GCPRUNE_ASSIGN_OR_RETURN(Layout layout, ParseLayout(layout_path, layout_text));
  GCPRUNE_ASSIGN_OR_RETURN(std::string config_text, ReadFile(config_path));
  GCPRUNE_ASSIGN_OR_RETURN(MethodConfig config, ParseMethodConfig(config_text));
  GCPRUNE_ASSIGN_OR_RETURN(std::unique_ptr<PruningSession> session, PruningSession::Create(layout, config));
  GCPRUNE_ASSIGN_OR_RETURN(std::string steps, ReadFile(steps_path));

  const int64_t n = layout.num_features();
  std::vector<float> deltas(static_cast<size_t>(n));
  std::string out;
  Reader reader(steps);
  while (!reader.done()) {
    int32_t kind = 0;
    GCPRUNE_RETURN_IF_ERROR(reader.Read(&kind));
    if (kind == 2) {
      GCPRUNE_ASSIGN_OR_RETURN(IterationResult result, session->EndIteration());
      absl::Span<const uint8_t> keep = result.masks.keep();
      out.append(reinterpret_cast<const char*>(keep.data()), keep.size());
      continue;
    }
    if (kind != 1) {
      return absl::InvalidArgumentError(absl::StrCat(steps_path, ": byte ", reader.pos() - 4, ": record kind ", kind));
    }
    StepHeader header;
    GCPRUNE_RETURN_IF_ERROR(reader.Read(&header.step));
    GCPRUNE_RETURN_IF_ERROR(reader.Read(&header.loss_before));
    GCPRUNE_RETURN_IF_ERROR(reader.Read(&header.loss_after));
    GCPRUNE_RETURN_IF_ERROR(reader.Read(&header.lr));
    GCPRUNE_RETURN_IF_ERROR(reader.Read(deltas.data(), deltas.size()));
    TensorWeights per_tensor;
    for (int i = 0; i < layout.num_tensors(); ++i) {
      if (layout.feature_offset(i) < 0) continue;
      per_tensor.emplace_back(deltas.data() + layout.feature_offset(i), static_cast<size_t>(layout.tensor(i).numel()));
    }
    GCPRUNE_RETURN_IF_ERROR(session->AddStep(header, per_tensor));
  }
  std::ofstream file(out_path, std::ios::binary | std::ios::trunc);
  file.write(out.data(), static_cast<std::streamsize>(out.size()));
  if (!file) return absl::InternalError(absl::StrCat(out_path, ": cannot write"));
  return absl::OkStatus();
}

}  // namespace
}  // namespace gcprune::pruner

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: gcprune_replay_samples LAYOUT CONFIG STEPS OUT\n");
    return 2;
  }
  absl::Status status = gcprune::pruner::Replay(argv[1], argv[2], argv[3], argv[4]);
  if (!status.ok()) {
    std::fprintf(stderr, "gcprune_replay_samples: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
