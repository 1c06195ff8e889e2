#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts gcprune-pruner and gcprune-trainer on 127.0.0.1
# (ephemeral ports, a temporary state directory), waits for both health checks, prunes LeNet-5 on
# Fashion-MNIST with causal-v2 to 90% sparsity through both services, prints the report and stops the
# servers (also on failure or Ctrl-C).
#
# Usage: scripts/demo.sh [--engine-only] [--compare] [-- extra `gcprune run` flags]
#   --engine-only  train LeNet-5 for one epoch on the trainer alone (method none, no pruner)
#   --compare      afterwards run global magnitude pruning with the same settings and compare
# Environment: BUILD_DIR (default build), JOBS (default nproc), KEEP_STATE=1 keeps the temporary directory
# (server logs, pruner state) for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

engine_only=0
compare=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --engine-only) engine_only=1 ;;
    --compare) compare=1 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (see scripts/demo.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=(gcprune gcprune-trainer)
[ "$engine_only" -eq 1 ] || targets+=(gcprune-pruner)
echo "demo: building ${targets[*]} in $BUILD_DIR"
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"

GCPRUNE="$BUILD_DIR/clients/cli/gcprune"
STATE_DIR=$(mktemp -d /tmp/gcprune-demo.XXXXXX)
server_pids=()

stop_servers() {
  local status=$?
  for pid in "${server_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${server_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    for log in "$STATE_DIR"/*.log; do
      [ -f "$log" ] || continue
      echo "demo: last lines of $log:" >&2
      tail -n 15 "$log" >&2
    done
  fi
  if [ "${KEEP_STATE:-0}" = 1 ]; then
    echo "demo: logs and state kept in $STATE_DIR" >&2
  else
    rm -rf "$STATE_DIR"
  fi
  exit "$status"
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server NAME BINARY ARGS...: starts a server on an ephemeral port and prints its address.
start_server() {
  local name=$1 binary=$2
  shift 2
  local port_file="$STATE_DIR/$name.port"
  "$binary" --host=127.0.0.1 --port=0 --port_file="$port_file" "$@" >"$STATE_DIR/$name.log" 2>&1 &
  local pid=$!
  server_pids+=("$pid")
  for _ in $(seq 1 600); do
    if [ -s "$port_file" ]; then
      echo "127.0.0.1:$(tr -d '[:space:]' <"$port_file")"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $name exited during start-up" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "demo: $name did not report its port within 60 s" >&2
  return 1
}

# Started in the parent shell (not in $(...)) so that the EXIT trap knows the PIDs.
start_server trainer "$BUILD_DIR/trainer_service/gcprune-trainer" >"$STATE_DIR/trainer.address"
TRAINER=$(cat "$STATE_DIR/trainer.address")
"$GCPRUNE" health "$TRAINER" --service=gcprune.v1.Trainer --wait --timeout=30s

if [ "$engine_only" -eq 1 ]; then
  echo "demo: LeNet-5 on Fashion-MNIST, one epoch of SGD on the trainer's engine (no pruning)"
  "$GCPRUNE" run --trainer="$TRAINER" --method=none --model=lenet5 --pretrain_epochs=1 --train_epochs=0 \
    --finetune_epochs=0 --iterations=1 --batch_size=64 --lr=0.01 --momentum=0.9 --label=demo-engine \
    "${extra[@]}"
  exit 0
fi

start_server pruner "$BUILD_DIR/pruner_service/gcprune-pruner" --state_dir="$STATE_DIR/pruner-state" \
  >"$STATE_DIR/pruner.address"
PRUNER=$(cat "$STATE_DIR/pruner.address")
"$GCPRUNE" health "$PRUNER" --service=gcprune.v1.Pruner --wait --timeout=30s

# The protocol of docs/METHOD.md §3 at a size that takes minutes on two cores, on the full data set:
# pre-train one epoch (SGD lr 0.01, momentum 0.9, batch 256); then 4 prune iterations to P = 0.9 on the
# cubic schedule (52.0%, 78.8%, 88.6%, 90.0%), each with one collection epoch (235 causal steps of plain
# SGD, lr 1e-3, streamed to the pruner) and no training in between, so the accuracy right after each
# prune shows what pruning alone costs; then two fine-tuning epochs.
run_flags=(--trainer="$TRAINER" --pruner="$PRUNER" --model=lenet5 --data=fashion-mnist
  --pretrain_epochs=1 --train_epochs=0 --iterations=4 --target_sparsity=0.9 --finetune_epochs=2
  --batch_size=256 --lr=0.01 --momentum=0.9 --seed=314159)

# run_and_report METHOD LABEL: creates the run, follows it to its end and prints its report; the run id
# goes to $STATE_DIR/LABEL.id.
run_and_report() {
  local method=$1 label=$2 id
  id=$("$GCPRUNE" run "${run_flags[@]}" --method="$method" --label="$label" --detach "${extra[@]}")
  echo "$id" >"$STATE_DIR/$label.id"
  echo "demo: run $id ($method) created; following it"
  "$GCPRUNE" watch "$id" --trainer="$TRAINER" --report
}

echo "demo: causal-v2 pruning of LeNet-5 on Fashion-MNIST to 90% sparsity (trainer $TRAINER, pruner $PRUNER)"
run_and_report causal-v2 demo-causal-v2

if [ "$compare" -eq 1 ]; then
  echo
  echo "demo: the same protocol with global magnitude pruning"
  run_and_report magnitude-global demo-magnitude
  for label in demo-causal-v2 demo-magnitude; do
    "$GCPRUNE" report "$(cat "$STATE_DIR/$label.id")" --trainer="$TRAINER" --json >"$STATE_DIR/$label.json"
  done
  echo
  /usr/bin/python3 - "$STATE_DIR/demo-causal-v2.json" "$STATE_DIR/demo-magnitude.json" <<'PY'
import json
import sys

def pct(value):
    value = float(value)  # NaN arrives as the string "NaN"
    return "-" if value != value else f"{100 * value:.2f}%"

print(f"{'method':<18}{'sparsity':>10}{'acc after pruning':>19}{'fine-tuned':>12}{'best':>9}")
for path, name in zip(sys.argv[1:], ["causal-v2", "magnitude-global"]):
    with open(path) as f:
        report = json.load(f)
    last = report["iterations"][-1] if report["iterations"] else {}
    finetune = report["finetune"]
    print(f"{name:<18}{pct(last.get('achieved_sparsity', 'NaN')):>10}"
          f"{pct(last.get('test_accuracy_after_prune', 'NaN')):>19}"
          f"{pct(finetune['last_test_accuracy']):>12}{pct(finetune['best_test_accuracy']):>9}")
PY
fi

echo
echo "demo: pruner sessions"
"$GCPRUNE" sessions --pruner="$PRUNER"
