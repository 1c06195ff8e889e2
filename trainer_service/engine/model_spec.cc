// Parser, formatter and presets of model specs.
#include "trainer_service/engine/model_spec.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gcprune::trainer {
namespace {

// Sizes beyond this are typos, not networks (and keep products far from overflow).
constexpr int64_t kMaxSize = 1 << 20;

absl::Status TokenError(int position, absl::string_view token, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("layer ", position, " '", token, "': ", what));
}

// Parses a decimal in [min, kMaxSize].
bool ParseSize(absl::string_view text, int64_t min, int64_t* value) {
  return absl::SimpleAtoi(text, value) && *value >= min && *value <= kMaxSize;
}

absl::StatusOr<LayerSpec> ParseLayer(int position, absl::string_view token) {
  const std::vector<absl::string_view> parts = absl::StrSplit(token, ':');
  const absl::string_view kind = parts[0];
  LayerSpec spec;
  auto require_size = [&](size_t index, const char* what, int64_t* value) -> absl::Status {
    if (parts.size() <= index) return TokenError(position, token, absl::StrCat("missing ", what));
    if (!ParseSize(parts[index], 1, value)) {
      return TokenError(position, token,
                        absl::StrCat(what, " must be an integer in [1, ", kMaxSize, "], got '", parts[index], "'"));
    }
    return absl::OkStatus();
  };
  // Options from parts[first] on; `allow_bias` permits "nobias".
  auto parse_options = [&](size_t first, bool allow_stride_pad, bool allow_bias) -> absl::Status {
    for (size_t i = first; i < parts.size(); ++i) {
      const absl::string_view opt = parts[i];
      absl::string_view value = opt;
      if (allow_stride_pad && absl::ConsumePrefix(&value, "stride=")) {
        if (!ParseSize(value, 1, &spec.stride)) {
          return TokenError(position, token, absl::StrCat("stride must be an integer >= 1, got '", value, "'"));
        }
      } else if (allow_stride_pad && absl::ConsumePrefix(&value, "pad=")) {
        if (!ParseSize(value, 0, &spec.padding)) {
          return TokenError(position, token, absl::StrCat("pad must be an integer >= 0, got '", value, "'"));
        }
      } else if (allow_bias && opt == "nobias") {
        spec.bias = false;
      } else {
        return TokenError(position, token, absl::StrCat("unknown option '", opt, "'"));
      }
    }
    return absl::OkStatus();
  };

  if (kind == "conv") {
    spec.kind = LayerKind::kConv2d;
    spec.stride = 1;
    if (absl::Status s = require_size(1, "output channels", &spec.out); !s.ok()) return s;
    if (absl::Status s = require_size(2, "kernel size", &spec.kernel); !s.ok()) return s;
    if (absl::Status s = parse_options(3, true, true); !s.ok()) return s;
  } else if (kind == "linear") {
    spec.kind = LayerKind::kLinear;
    if (absl::Status s = require_size(1, "output features", &spec.out); !s.ok()) return s;
    if (absl::Status s = parse_options(2, false, true); !s.ok()) return s;
  } else if (kind == "maxpool") {
    spec.kind = LayerKind::kMaxPool2d;
    if (absl::Status s = require_size(1, "kernel size", &spec.kernel); !s.ok()) return s;
    if (absl::Status s = parse_options(2, true, false); !s.ok()) return s;
  } else if (kind == "relu" || kind == "flatten") {
    spec.kind = kind == "relu" ? LayerKind::kRelu : LayerKind::kFlatten;
    if (parts.size() > 1) return TokenError(position, token, absl::StrCat("'", kind, "' takes no arguments"));
  } else if (kind.empty()) {
    return TokenError(position, token, "empty layer");
  } else {
    return TokenError(position, token,
                      absl::StrCat("unknown layer kind '", kind, "' (expected conv, linear, maxpool, relu, flatten)"));
  }
  return spec;
}

}  // namespace

bool LayerSpec::operator==(const LayerSpec& o) const {
  return kind == o.kind && out == o.out && kernel == o.kernel && stride == o.stride && padding == o.padding &&
         bias == o.bias;
}

absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty()) return absl::InvalidArgumentError("input shape: empty");
  std::vector<int64_t> shape;
  for (absl::string_view part : absl::StrSplit(trimmed, 'x')) {
    int64_t d = 0;
    if (!ParseSize(absl::StripAsciiWhitespace(part), 1, &d)) {
      return absl::InvalidArgumentError(absl::StrCat("input shape '", text, "': dimension '", part,
                                                     "' is not an integer in [1, ", kMaxSize, "]"));
    }
    shape.push_back(d);
  }
  if (shape.size() != 1 && shape.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("input shape '", text, "': expected CxHxW or F, got ", shape.size(), " dimensions"));
  }
  return shape;
}

absl::StatusOr<std::vector<LayerSpec>> ParseLayers(absl::string_view text) {
  std::vector<LayerSpec> layers;
  int position = 0;
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    ++position;
    // Spaces around the ':' separators are allowed too.
    std::vector<absl::string_view> parts = absl::StrSplit(raw, ':');
    for (absl::string_view& part : parts) part = absl::StripAsciiWhitespace(part);
    const std::string token = absl::StrJoin(parts, ":");
    absl::StatusOr<LayerSpec> layer = ParseLayer(position, token);
    if (!layer.ok()) return layer.status();
    layers.push_back(*layer);
  }
  return layers;
}

absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view layers, absl::string_view input_shape) {
  ModelSpec spec;
  absl::StatusOr<std::vector<int64_t>> shape = ParseShape(input_shape);
  if (!shape.ok()) return shape.status();
  absl::StatusOr<std::vector<LayerSpec>> list = ParseLayers(layers);
  if (!list.ok()) return list.status();
  spec.input_shape = *std::move(shape);
  spec.layers = *std::move(list);
  return spec;
}

std::string FormatLayers(const std::vector<LayerSpec>& layers) {
  std::vector<std::string> tokens;
  for (const LayerSpec& l : layers) {
    switch (l.kind) {
      case LayerKind::kConv2d: {
        std::string t = absl::StrCat("conv:", l.out, ":", l.kernel);
        if (l.stride != 1) absl::StrAppend(&t, ":stride=", l.stride);
        if (l.padding != 0) absl::StrAppend(&t, ":pad=", l.padding);
        if (!l.bias) absl::StrAppend(&t, ":nobias");
        tokens.push_back(t);
        break;
      }
      case LayerKind::kLinear:
        tokens.push_back(absl::StrCat("linear:", l.out, l.bias ? "" : ":nobias"));
        break;
      case LayerKind::kMaxPool2d: {
        std::string t = absl::StrCat("maxpool:", l.kernel);
        if (l.stride != 0 && l.stride != l.kernel) absl::StrAppend(&t, ":stride=", l.stride);
        if (l.padding != 0) absl::StrAppend(&t, ":pad=", l.padding);
        tokens.push_back(t);
        break;
      }
      case LayerKind::kRelu:
        tokens.push_back("relu");
        break;
      case LayerKind::kFlatten:
        tokens.push_back("flatten");
        break;
    }
  }
  return absl::StrJoin(tokens, ",");
}

std::vector<std::string> PresetNames() { return {"mlp", "lenet5"}; }

absl::StatusOr<ModelSpec> PresetModelSpec(absl::string_view name) {
  absl::string_view layers;
  if (name == "mlp") {
    layers = "flatten,linear:40:nobias,relu,linear:20:nobias,relu,linear:10:nobias";
  } else if (name == "lenet5") {
    layers = "conv:20:5,relu,maxpool:2,conv:50:5,relu,maxpool:2,flatten,linear:500,relu,linear:10";
  } else {
    return absl::NotFoundError(
        absl::StrCat("unknown model preset '", name, "' (known: ", absl::StrJoin(PresetNames(), ", "), ")"));
  }
  absl::StatusOr<ModelSpec> spec = ParseModelSpec(layers, "1x28x28");
  if (spec.ok()) spec->name = std::string(name);
  return spec;
}

absl::StatusOr<ModelSpec> ModelSpecFromFlag(absl::string_view model, absl::string_view input_shape) {
  for (const std::string& preset : PresetNames()) {
    if (model == preset) return PresetModelSpec(model);
  }
  absl::StatusOr<ModelSpec> spec = ParseModelSpec(model, input_shape);
  if (!spec.ok() && !absl::StrContains(model, ',') && !absl::StrContains(model, ':')) {
    // A single word that is no layer list either: most likely a mistyped preset.
    return absl::InvalidArgumentError(absl::StrCat("model '", model, "' is neither a preset (",
                                                   absl::StrJoin(PresetNames(), ", "), ") nor a layer list: ",
                                                   spec.status().message()));
  }
  return spec;
}

}  // namespace gcprune::trainer
