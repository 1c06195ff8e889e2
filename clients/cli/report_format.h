// Human-readable and JSON renderings of the Trainer's and Pruner's answers for the `gcprune` command line:
// run reports, run and session listings, and the short names of the protocol's enums. Human output shows
// fractions as percentages; JSON keeps the proto's fractions.
#ifndef GCPRUNE_CLIENTS_CLI_REPORT_FORMAT_H_
#define GCPRUNE_CLIENTS_CLI_REPORT_FORMAT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "protos/gcprune/v1/pruner.pb.h"
#include "protos/gcprune/v1/trainer.pb.h"

namespace gcprune::cli {

// Short names: "SUCCEEDED", "collect", "causal-v2", "connected", ...
std::string RunStateName(v1::RunState state);
std::string PhaseName(v1::Phase phase);
std::string MethodName(v1::Method method);
std::string PrunerStateName(v1::PrunerState state);
std::string SessionStateName(v1::SessionState state);

// "43.92%" for 0.43921; "-" for NaN or a negative value (not measured).
std::string FormatPercent(double fraction);
// "0.4123" with four decimals; "-" for NaN.
std::string FormatLoss(double value);
// "12.3 s", "4 min 05 s", "1 h 02 min".
std::string FormatSeconds(double seconds);
// "430,500".
std::string FormatCount(int64_t count);
// "405.3 MiB", "1.0 GiB", "512 B".
std::string FormatBytes(int64_t bytes);
// "2025-01-31 12:00:03" in local time; "-" for 0.
std::string FormatUnixMs(int64_t unix_ms);

// The JSON form of a message: proto field names (snake_case), every field including zeros, enums by name,
// 64-bit integers as strings and NaN as "NaN" (protobuf's JSON mapping), indented, with a
// trailing newline. INTERNAL if protobuf refuses (it does not for gcprune's messages).
absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message);

// A run's report as text: a header (state, model, data, method; from `run` if it is not null), the
// pre-training accuracy, one table row per prune iteration (target and achieved sparsity, test accuracy
// and loss right after pruning, steps, seconds), the fine-tuning result, the final per-tensor sparsity with
// a total row, and the time per phase.
std::string FormatRunReport(const v1::RunReport& report, const v1::Run* run);

// One table row per run: id, state, phase, iteration, sparsity, test accuracy, method, model, created, label.
std::string FormatRunsTable(const v1::ListRunsResponse& runs);

// One table row per session: id, state, attached, iterations, sparsity, samples, memory, method, updated,
// label.
std::string FormatSessionsTable(const v1::ListSessionsResponse& sessions);

// One line for a run's state, e.g. "r-1: RUNNING (collect, iteration 2/5, sparsity 24.39%)".
std::string FormatRunLine(const v1::Run& run);

}  // namespace gcprune::cli

#endif  // GCPRUNE_CLIENTS_CLI_REPORT_FORMAT_H_
