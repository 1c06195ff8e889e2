// Implementation of the per-subcommand flag parser.
#include "clients/cli/flag_set.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gcprune::cli {
namespace {

absl::Status BadValue(absl::string_view name, absl::string_view value, absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", value, "' is not ", expected));
}

absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds)) return absl::Seconds(seconds);
  absl::Duration duration;
  if (absl::ParseDuration(text, &duration) && duration != absl::InfiniteDuration() &&
      duration != -absl::InfiniteDuration()) {
    return duration;
  }
  return absl::InvalidArgumentError("not a duration");
}

}  // namespace

FlagSet::FlagSet(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::Add(Flag flag) { flags_.push_back(std::move(flag)); }

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

void FlagSet::SetDefaultText(absl::string_view name, std::string text) {
  if (Flag* flag = Find(name); flag != nullptr) flag->default_text = std::move(text);
}

bool FlagSet::IsSet(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return flag.was_set;
  }
  return false;
}

void FlagSet::AddString(const std::string& name, std::string* target, const std::string& help) {
  Add({name, help, target->empty() ? "" : absl::StrCat("\"", *target, "\""), false,
       [target](absl::string_view value) {
         *target = std::string(value);
         return absl::OkStatus();
       }});
}

void FlagSet::AddBool(const std::string& name, bool* target, const std::string& help) {
  Add({name, help, *target ? "true" : "", true, [name, target](absl::string_view value) {
         const std::string lower = absl::AsciiStrToLower(value);
         if (lower == "true" || lower == "1" || lower == "yes") {
           *target = true;
         } else if (lower == "false" || lower == "0" || lower == "no") {
           *target = false;
         } else {
           return BadValue(name, value, "a boolean (true/false)");
         }
         return absl::OkStatus();
       }});
}

void FlagSet::AddInt(const std::string& name, int64_t* target, const std::string& help) {
  Add({name, help, absl::StrCat(*target), false, [name, target](absl::string_view value) {
         if (!absl::SimpleAtoi(value, target)) return BadValue(name, value, "an integer");
         return absl::OkStatus();
       }});
}

void FlagSet::AddUint64(const std::string& name, uint64_t* target, const std::string& help) {
  Add({name, help, absl::StrCat(*target), false, [name, target](absl::string_view value) {
         if (!absl::SimpleAtoi(value, target)) return BadValue(name, value, "an unsigned 64-bit integer");
         return absl::OkStatus();
       }});
}

void FlagSet::AddDouble(const std::string& name, double* target, const std::string& help) {
  Add({name, help, absl::StrCat(*target), false, [name, target](absl::string_view value) {
         double parsed = 0;
         if (!absl::SimpleAtod(value, &parsed) || !std::isfinite(parsed)) return BadValue(name, value, "a number");
         *target = parsed;
         return absl::OkStatus();
       }});
}

void FlagSet::AddDuration(const std::string& name, absl::Duration* target, const std::string& help) {
  Add({name, help, absl::FormatDuration(*target), false, [name, target](absl::string_view value) {
         absl::StatusOr<absl::Duration> parsed = ParseDurationText(value);
         if (!parsed.ok()) return BadValue(name, value, "a duration such as 5s, 250ms or 1.5");
         *target = *parsed;
         return absl::OkStatus();
       }});
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    absl::string_view body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
      Flag* negated = Find(name.substr(2));
      if (negated != nullptr && negated->is_bool) {
        absl::Status status = negated->set("false");
        if (!status.ok()) return status;
        negated->was_set = true;
        continue;
      }
    }
    if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
      }
    }
    absl::Status status = flag->set(value);
    if (!status.ok()) return status;
    flag->was_set = true;
  }
  return positional;
}

std::string FlagSet::Help() const {
  std::string text = absl::StrCat("usage: ", usage_, "\n");
  if (!description_.empty()) absl::StrAppend(&text, "\n", description_, "\n");
  if (!flags_.empty()) absl::StrAppend(&text, "\nflags:\n");
  for (const Flag& flag : flags_) {
    std::string left = absl::StrCat("  --", flag.name, flag.is_bool ? "" : " VALUE");
    absl::StrAppend(&text, absl::StrFormat("%-32s %s", left, flag.help));
    if (!flag.default_text.empty()) absl::StrAppend(&text, " (default ", flag.default_text, ")");
    absl::StrAppend(&text, "\n");
  }
  return text;
}

}  // namespace gcprune::cli
