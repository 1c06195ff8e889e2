// Coefficient statistics with decade histograms, and the JSON form of an iteration report.
#include "pruner_service/causal/report.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gcprune::pruner {
namespace {

// Decades of finite non-zero floats lie in [-46, 38]; a fixed array avoids a second pass.
constexpr int kMinDecade = -50;
constexpr int kNumDecades = 100;

int Decade(double v) {
  int e = static_cast<int>(std::floor(std::log10(v)));
  // log10 may be off by one ulp at exact powers of ten.
  if (std::pow(10.0, e) > v)
    --e;
  else if (std::pow(10.0, e + 1) <= v)
    ++e;
  return std::clamp(e, kMinDecade, kMinDecade + kNumDecades - 1);
}

// Minimal streaming JSON writer: tracks whether a comma is needed at each nesting level.
class JsonWriter {
 public:
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  JsonWriter& Key(absl::string_view key) {
    Separate();
    String(key);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  void Value(double v) {
    Separate();
    if (!std::isfinite(v)) {
      out_ += "null";
      return;
    }
    for (int precision : {15, 16, 17}) {
      std::string text = absl::StrFormat("%.*g", precision, v);
      double back;
      if (precision == 17 || (absl::SimpleAtod(text, &back) && back == v)) {
        out_ += text;
        return;
      }
    }
  }
  void Value(int64_t v) {
    Separate();
    absl::StrAppend(&out_, v);
  }
  void Value(int v) { Value(static_cast<int64_t>(v)); }
  void Value(bool v) {
    Separate();
    out_ += v ? "true" : "false";
  }
  void Value(absl::string_view v) {
    Separate();
    String(v);
  }
  void Value(const char* v) { Value(absl::string_view(v)); }

  std::string Take() { return std::move(out_); }

 private:
  void Open(char c) {
    Separate();
    out_ += c;
    first_.push_back(true);
  }
  void Close(char c) {
    out_ += c;
    first_.pop_back();
  }
  // Writes the comma between elements (not after a key).
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
  void String(absl::string_view s) {
    out_ += '"';
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default:
          if (c < 0x20) {
            out_ += absl::StrFormat("\\u%04x", c);
          } else {
            out_ += ch;  // UTF-8 passes through
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

void WriteHistogram(const Histogram& h, JsonWriter* w) {
  w->BeginObject();
  w->Key("edges").BeginArray();
  for (double e : h.edges) w->Value(e);
  w->EndArray();
  w->Key("counts").BeginArray();
  for (int64_t c : h.counts) w->Value(c);
  w->EndArray();
  w->EndObject();
}

void WriteCoefficients(const CoefficientStats& c, JsonWriter* w) {
  w->BeginObject();
  w->Key("tensor_index").Value(c.tensor_index);
  w->Key("name").Value(c.name);
  w->Key("count").Value(c.count);
  w->Key("zero").Value(c.zero);
  w->Key("fraction_zero").Value(c.fraction_zero());
  w->Key("positive").Value(c.positive);
  w->Key("negative").Value(c.negative);
  w->Key("nonfinite").Value(c.nonfinite);
  w->Key("min").Value(c.min);
  w->Key("max").Value(c.max);
  w->Key("mean").Value(c.mean);
  w->Key("mean_abs").Value(c.mean_abs);
  w->Key("log10_abs_histogram");
  WriteHistogram(c.log10_abs_histogram, w);
  w->EndObject();
}

void WriteFit(const FitReport& f, JsonWriter* w) {
  w->BeginObject();
  w->Key("solver").Value(SolverName(f.solver));
  w->Key("num_fits").Value(f.num_fits);
  w->Key("epochs").Value(f.epochs);
  w->Key("best_epoch").Value(f.best_epoch);
  w->Key("early_stopped").Value(f.early_stopped);
  w->Key("final_loss").Value(f.final_loss);
  w->Key("best_loss").Value(f.best_loss);
  w->Key("fit_seconds").Value(f.fit_seconds);
  w->Key("converged").Value(f.converged);
  w->Key("duality_gap").Value(f.duality_gap);
  w->Key("nonzero_coefficients").Value(f.nonzero_coefficients);
  w->Key("negative_coefficients").Value(f.negative_coefficients);
  w->Key("updates").Value(f.updates);
  w->Key("epoch_losses").BeginArray();
  for (double l : f.epoch_losses) w->Value(l);
  w->EndArray();
  w->EndObject();
}

}  // namespace

absl::StatusOr<std::vector<CoefficientStats>> ComputeCoefficientStats(const MaskSet& before,
                                                                      absl::Span<const float> beta) {
  const int64_t n = before.num_features();
  if (beta.empty() || static_cast<int64_t>(beta.size()) % n != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("coefficients: ", beta.size(), " values is not a positive multiple of ", n, " features"));
  }
  const int64_t groups = static_cast<int64_t>(beta.size()) / n;
  std::vector<CoefficientStats> out;
  for (int p = 0; p < before.num_tensors(); ++p) {
    const MaskTensor& t = before.tensor(p);
    CoefficientStats s;
    s.tensor_index = t.layout_index;
    s.name = t.name;
    const absl::Span<const uint8_t> keep = before.tensor_keep(p);
    std::array<int64_t, kNumDecades> decades{};
    double sum = 0, sum_abs = 0;
    int64_t finite = 0;
    s.min = INFINITY;
    s.max = -INFINITY;
    for (int64_t g = 0; g < groups; ++g) {
      const float* b = beta.data() + g * n + t.offset;
      for (int64_t i = 0; i < t.numel; ++i) {
        if (!keep[i]) continue;
        ++s.count;
        const double v = b[i];
        if (!std::isfinite(v)) {
          ++s.nonfinite;
          continue;
        }
        ++finite;
        sum += v;
        sum_abs += std::fabs(v);
        s.min = std::min(s.min, v);
        s.max = std::max(s.max, v);
        if (v == 0) {
          ++s.zero;
          continue;
        }
        ++(v > 0 ? s.positive : s.negative);
        ++decades[static_cast<size_t>(Decade(std::fabs(v)) - kMinDecade)];
      }
    }
    if (finite == 0) {
      s.min = s.max = 0;
    } else {
      s.mean = sum / static_cast<double>(finite);
      s.mean_abs = sum_abs / static_cast<double>(finite);
    }
    int lo = kNumDecades, hi = -1;
    for (int d = 0; d < kNumDecades; ++d) {
      if (decades[d] == 0) continue;
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    for (int d = lo; d <= hi; ++d) {
      s.log10_abs_histogram.edges.push_back(d + kMinDecade);
      s.log10_abs_histogram.counts.push_back(decades[d]);
    }
    if (hi >= lo) s.log10_abs_histogram.edges.push_back(hi + 1 + kMinDecade);
    out.push_back(std::move(s));
  }
  return out;
}

std::string IterationReportToJson(const IterationReport& r) {
  JsonWriter w;
  w.BeginObject();
  w.Key("iteration").Value(r.iteration);
  w.Key("method").Value(MethodName(r.method));
  w.Key("num_samples").Value(r.num_samples);
  w.Key("num_features").Value(r.num_features);
  w.Key("target_sparsity").Value(r.target_sparsity);
  w.Key("achieved_sparsity").Value(r.achieved_sparsity);
  w.Key("kept").Value(r.kept);
  w.Key("pruned").Value(r.pruned);
  w.Key("requested").Value(r.requested);
  w.Key("pruned_this_iteration").Value(r.pruned_this_iteration);
  w.Key("shortfall").Value(r.shortfall);
  w.Key("unmet_floor").Value(r.unmet_floor);
  w.Key("tensors").BeginArray();
  for (const TensorSparsityReport& t : r.tensors) {
    w.BeginObject();
    w.Key("tensor_index").Value(t.tensor_index);
    w.Key("name").Value(t.name);
    w.Key("num_elements").Value(t.num_elements);
    w.Key("kept").Value(t.kept);
    w.Key("pruned").Value(t.pruned);
    w.Key("pruned_this_iteration").Value(t.pruned_this_iteration);
    w.Key("sparsity").Value(t.sparsity);
    w.Key("target_sparsity").Value(t.target_sparsity);
    w.EndObject();
  }
  w.EndArray();
  w.Key("coefficients").BeginArray();
  for (const CoefficientStats& c : r.coefficients) WriteCoefficients(c, &w);
  w.EndArray();
  w.Key("fit");
  if (r.fit) {
    WriteFit(*r.fit, &w);
  } else {
    w.Value(kNoValue);  // null
  }
  w.Key("target_nan").Value(r.target_nan);
  w.Key("target_inf").Value(r.target_inf);
  w.Key("feature_nonfinite").Value(r.feature_nonfinite);
  w.Key("target_mean").Value(r.target_mean);
  w.Key("select_seconds").Value(r.select_seconds);
  w.Key("total_seconds").Value(r.total_seconds);
  w.Key("final_iteration").Value(r.final_iteration);
  w.EndObject();
  return w.Take();
}

}  // namespace gcprune::pruner
