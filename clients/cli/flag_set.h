// A small per-subcommand flag parser for the `gcprune` command line: each subcommand declares its own
// flags, so `gcprune health --help` lists only what applies and unknown flags are rejected per command.
#ifndef GCPRUNE_CLIENTS_CLI_FLAG_SET_H_
#define GCPRUNE_CLIENTS_CLI_FLAG_SET_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gcprune::cli {

// Accepts "--name=value", "--name value", "-name" forms; booleans also "--name" and "--noname". "--" ends
// the flags; everything else is positional. "-h" and "--help" set help_requested().
class FlagSet {
 public:
  // `usage` is the synopsis line, e.g. "gcprune health ADDR [flags]"; `description` follows it in Help().
  FlagSet(std::string usage, std::string description);

  // Each registers a flag whose current value of *target is its default. `name` has no dashes.
  void AddString(const std::string& name, std::string* target, const std::string& help);
  void AddBool(const std::string& name, bool* target, const std::string& help);
  void AddInt(const std::string& name, int64_t* target, const std::string& help);
  void AddUint64(const std::string& name, uint64_t* target, const std::string& help);
  void AddDouble(const std::string& name, double* target, const std::string& help);
  // Values like "5s", "250ms", "1m30s", or a bare number of seconds.
  void AddDuration(const std::string& name, absl::Duration* target, const std::string& help);

  // Replaces the default shown by Help() for flag `name` (e.g. "the method's" for a flag whose unset state
  // leaves the choice to the server). No effect for an unknown name.
  void SetDefaultText(absl::string_view name, std::string text);

  // Parses `args` (the words after the subcommand) into the targets and returns the positional ones.
  // INVALID_ARGUMENT naming the flag for an unknown flag, a missing value or a malformed value.
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);

  bool help_requested() const { return help_requested_; }
  // True if a Parse call has set flag `name` (with or without a value), so that callers can tell an
  // explicit value from the default.
  bool IsSet(absl::string_view name) const;
  // The usage line, the description and one line per flag with its default.
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    std::function<absl::Status(absl::string_view)> set;
    bool was_set = false;
  };
  void Add(Flag flag);
  Flag* Find(absl::string_view name);

  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_FLAG_SET_H_
