#!/usr/bin/env bash
# End-to-end test of docker/Dockerfile and docker/compose.yaml on this machine: starts a private Docker daemon,
# builds the images users get, brings the Compose stack up, runs short pruning jobs through it (one of them
# across a crash of the pruner container) and checks their reports; always tears everything down again.
#
# Usage: docker/test-compose.sh            (as root, from anywhere; installs docker.io, docker-compose and
#                                           debootstrap if missing)
# Environment:
#   BUILD_DIR                 build tree of the host build (default build); the daemon's data root lives in
#                             $BUILD_DIR/docker-test/ so that a second run reuses the image layers
#   GCPRUNE_DOCKER_STATE      overrides that folder
#   GCPRUNE_DOCKER_CACHE      where the debootstrap root file system tarball is kept between runs and clones
#                             (default ${XDG_CACHE_HOME:-$HOME/.cache}/gcprune-docker)
#   GCPRUNE_DOCKER_BUILD_ARGS extra `docker build` arguments, e.g. "--build-arg GCPRUNE_TESTS=0"
#   GCPRUNE_DOCKER_SKIP_BUILD 1 tests the gcprune-pruner and gcprune-trainer images already in the data root
#   GCPRUNE_DOCKER_KEEP_STATE 0 deletes the data root at the end (default 1: keep it as a build cache)
#   GCPRUNE_DEBIAN_MIRROR     mirror for debootstrap (default http://deb.debian.org/debian)
#   COMPOSE                   the Compose command (default `docker compose` if present, else docker-compose)
set -euo pipefail
cd "$(dirname "$0")/.."
readonly SRC_DIR=$PWD

BUILD_DIR=${BUILD_DIR:-build}
STATE_DIR=${GCPRUNE_DOCKER_STATE:-$BUILD_DIR/docker-test}
CACHE_DIR=${GCPRUNE_DOCKER_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/gcprune-docker}
KEEP_STATE=${GCPRUNE_DOCKER_KEEP_STATE:-1}
MIRROR=${GCPRUNE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
read -r -a EXTRA_BUILD_ARGS <<<"${GCPRUNE_DOCKER_BUILD_ARGS:-}"
readonly PROJECT=gcprune-test
readonly BASE_IMAGE=debian:bookworm-slim

mkdir -p "$STATE_DIR" "$CACHE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
# The exec root holds the daemon's and containerd's unix sockets, whose paths must stay short: use /tmp.
EXEC_ROOT=$(mktemp -d /tmp/gcprune-docker.XXXXXX)
export DOCKER_HOST=unix://$EXEC_ROOT/docker.sock
DOCKERD_PID=""
COMPOSE_UP=0
PASSED=0
T0=$SECONDS
declare -a TIMINGS=()

log() { printf '[test-compose %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
pass() { PASSED=$((PASSED + 1)); log "ok: $*"; }
timed() {  # timed LABEL COMMAND...: runs the command and records how long it took.
  local label=$1 start=$SECONDS
  shift
  "$@"
  TIMINGS+=("$(printf '%-34s %5ds' "$label" "$((SECONDS - start))")")
}

# ---------------------------------------------------------------------------------------------------------
# Packages and the private daemon.

install_packages() {
  local missing=() p
  for p in docker.io docker-compose debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

# Debian's client matches Debian's daemon; a newer client earlier on PATH would want BuildKit's buildx.
DOCKER=/usr/bin/docker
docker() { "$DOCKER" "$@"; }

compose() { "${COMPOSE_CMD[@]}" -p "$PROJECT" -f "$SRC_DIR/docker/compose.yaml" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [ "$COMPOSE_UP" = 1 ]; then
    if [ "$rc" != 0 ]; then
      log "logs of the stack:"
      compose logs --no-color --tail=60 >&2
    fi
    compose --profile demo down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1
  fi
  if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill -TERM "$DOCKERD_PID"
    for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
      log "dockerd $DOCKERD_PID did not stop in 30 s; killing it"
      kill -KILL "$DOCKERD_PID"
    fi
  fi
  if [ "$rc" != 0 ] && [ -f "$STATE_DIR/dockerd.log" ]; then
    log "last lines of $STATE_DIR/dockerd.log:"
    tail -n 20 "$STATE_DIR/dockerd.log" >&2
  fi
  # dockerd can leave its default network namespace (and, if it was killed, container mounts) mounted.
  awk -v root="$EXEC_ROOT/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r mount_point; do umount -l "$mount_point"; done
  rm -rf "$EXEC_ROOT"
  [ "$KEEP_STATE" != 0 ] || rm -rf "$STATE_DIR/data-root"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_daemon() {
  # No default bridge, no iptables rules and no forwarding: containers reach each other on the Compose
  # network and the host reaches them through 127.0.0.1-bound published ports (docker-proxy), nothing
  # else. Image builds use the host network to fetch Debian packages.
  dockerd --data-root "$STATE_DIR/data-root" --exec-root "$EXEC_ROOT" --pidfile "$EXEC_ROOT/docker.pid" \
    -H "$DOCKER_HOST" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --log-level=warn >"$STATE_DIR/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 120); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || fail "dockerd exited; see $STATE_DIR/dockerd.log"
    sleep 0.5
  done
  fail "dockerd did not answer on $DOCKER_HOST within 60 s"
}

pick_compose() {
  if [ -n "${COMPOSE:-}" ]; then
    read -r -a COMPOSE_CMD <<<"$COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=("$DOCKER" compose)
  elif command -v docker-compose >/dev/null; then
    COMPOSE_CMD=(docker-compose)
  else
    fail "neither 'docker compose' nor docker-compose is available"
  fi
  log "compose: ${COMPOSE_CMD[*]} ($("${COMPOSE_CMD[@]}" version --short 2>/dev/null || echo '?'))"
}

# ---------------------------------------------------------------------------------------------------------
# Images.

# There is no registry here, so `FROM debian:bookworm-slim` needs a local image of that name: a minbase
# debootstrap with the slim image's apt sources and dpkg exclusions, imported once and cached as a tarball.
make_base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "$BASE_IMAGE present"
    return 0
  fi
  local tarball=$CACHE_DIR/bookworm-minbase-rootfs.tar
  if [ ! -s "$tarball" ]; then
    local rootfs
    rootfs=$(mktemp -d "$STATE_DIR/rootfs.XXXXXX")
    log "debootstrap --variant=minbase bookworm (once; cached in $tarball)"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 ||
      fail "debootstrap failed; see $STATE_DIR/debootstrap.log"
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    # What the exclusions keep out of later packages, removed from the packages already there as well.
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian}/*
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  docker import --change 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE from $tarball"
}

build_image() {  # build_image TARGET
  log "docker build --target $1 (log: $STATE_DIR/build-$1.log)"
  if ! docker build --network host -f docker/Dockerfile --target "$1" -t "gcprune-$1:latest" \
      ${EXTRA_BUILD_ARGS[@]+"${EXTRA_BUILD_ARGS[@]}"} . >"$STATE_DIR/build-$1.log" 2>&1; then
    tail -n 60 "$STATE_DIR/build-$1.log" >&2
    fail "docker build --target $1"
  fi
}

check_images() {
  local image missing user
  for image in gcprune-pruner gcprune-trainer; do
    docker image inspect "$image" >/dev/null 2>&1 || fail "image $image is missing"
    missing=$(docker run --rm --entrypoint sh "$image" -c 'ldd /usr/local/bin/* | grep "not found" || true')
    [ -z "$missing" ] || fail "$image lacks runtime libraries: $missing"
    user=$(docker image inspect -f '{{.Config.User}}' "$image")
    [ "$user" = gcprune ] || fail "$image runs as '$user', expected gcprune"
    docker run --rm --entrypoint gcprune "$image" --version >/dev/null || fail "$image: gcprune --version"
  done
  docker run --rm --entrypoint sh gcprune-trainer -c \
    'test -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz' ||
    fail "gcprune-trainer lacks the Fashion-MNIST data set"
  log "image sizes: $(docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep gcprune | tr '\n' ' ')"
  pass "images: runtime libraries resolve, non-root user, CLI and data set present"
}

# ---------------------------------------------------------------------------------------------------------
# The stack.

container_of() { compose ps -q "$1" | head -n 1; }

wait_healthy() {  # wait_healthy SERVICE SECONDS
  local id status deadline=$((SECONDS + $2))
  while [ $SECONDS -lt $deadline ]; do
    id=$(container_of "$1")
    if [ -n "$id" ]; then
      status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || true)
      [ "$status" = healthy ] && return 0
    fi
    sleep 1
  done
  fail "$1 not healthy within $2 s (status '${status:-none}')"
}

# The CLI inside the trainer container talks to both servers over the Compose network.
cli() { compose exec -T trainer gcprune "$@"; }

up_stack() {
  # Empty ports: each published port is a free one on 127.0.0.1 (the test must not collide with servers
  # that already use 50051/50052 on this machine).
  export GCPRUNE_PRUNER_PORT="" GCPRUNE_TRAINER_PORT=""
  COMPOSE_UP=1
  compose up -d --no-build pruner trainer >&2
  wait_healthy pruner 180
  wait_healthy trainer 180
  pass "pruner and trainer healthy"

  local service port mapping
  for service in pruner:50052 trainer:50051; do
    mapping=$(compose port "${service%%:*}" "${service##*:}")
    case "$mapping" in
      127.0.0.1:*) ;;
      *) fail "${service%%:*} is published on '$mapping', expected 127.0.0.1 only" ;;
    esac
    port=${mapping##*:}
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "cannot connect to $mapping"
  done
  pass "ports published on 127.0.0.1 only, and reachable"
}

# A report's final global sparsity (pruned weights over prunable weights) must equal the target to within
# one weight, every iteration must have received masks, and the run must have succeeded.
check_report() {  # check_report JSON_FILE TARGET [MIN_RECONNECTS]
  python3 - "$@" <<'EOF'
import json, sys
path, target = sys.argv[1], float(sys.argv[2])
min_reconnects = int(sys.argv[3]) if len(sys.argv) > 3 else 0
r = json.load(open(path))
def fail(msg):
    sys.exit(f"{path}: {msg}")
if r.get("state") != "RUN_STATE_SUCCEEDED":
    fail(f"state {r.get('state')}, expected RUN_STATE_SUCCEEDED")
total = int(r.get("prunable_weights", 0))
pruned = sum(int(t.get("pruned", 0)) for t in r.get("tensors", []))
if total <= 0:
    fail("prunable_weights missing")
achieved = pruned / total
if abs(achieved - target) > 1.0 / total + 1e-12:
    fail(f"final sparsity {achieved:.6f} ({pruned}/{total}), target {target}")
its = r.get("iterations", [])
if not its or any(it.get("skipped") for it in its):
    fail(f"iterations missing or skipped: {its}")
last = its[-1]
if abs(float(last.get("achieved_sparsity", -1)) - target) > 1.0 / total + 1e-12:
    fail(f"last iteration achieved {last.get('achieved_sparsity')}, target {target}")
if int(r.get("pruner_reconnects", 0)) < min_reconnects:
    fail(f"pruner_reconnects {r.get('pruner_reconnects', 0)}, expected >= {min_reconnects}")
acc = r.get("finetune", {}).get("last_test_accuracy")
print(f"run {r.get('run_id')}: sparsity {achieved:.4f} ({pruned}/{total}), {len(its)} iterations, "
      f"final test accuracy {acc}, reconnects {r.get('pruner_reconnects', 0)}, "
      f"{float(r.get('total_seconds', 0)):.1f} s")
EOF
}

# The documented one-shot job: `compose --profile demo run --rm demo`.
run_demo() {
  local report=$STATE_DIR/demo-report.json
  compose --profile demo run --rm -T -e GCPRUNE_DEMO_ARGS="--progress=none --json" demo >"$report" ||
    fail "the demo job failed (report in $report)"
  local summary
  summary=$(check_report "$report" 0.8) || fail "demo report: $summary"
  pass "demo job: $summary"
}

run_state() {  # run_state RUN_ID -> "STATE PHASE ITERATION"
  cli runs --json | python3 -c '
import json, sys
run_id = sys.argv[1]
for run in json.load(sys.stdin).get("runs", []):
    if run.get("run_id") == run_id:
        print(run.get("state", "?"), run.get("phase", "?"), run.get("iteration", 0))
        break
else:
    print("? ? 0")
' "$1"
}

# A longer job, and a crash of the pruner container while the run is between its first and last prune
# iteration: the restart policy brings the pruner back with its sessions (named volume), the trainer
# reconnects and resends, and the run finishes with exactly the target sparsity.
run_with_pruner_crash() {
  local run_id state phase iteration deadline pid restarts
  # 512 collection steps of 128 KiB per iteration keep each collection busy for a while.
  run_id=$(cli run --detach --progress=none --label=compose-crash-test --model=mlp --train_subset=8192 \
    --test_subset=1000 --lr=0.05 --pretrain_epochs=1 --train_epochs=1 --finetune_epochs=1 --method=causal-v2 \
    --target_sparsity=0.75 --iterations=3 --collect_batch_size=16 | tail -n 1)
  [ -n "$run_id" ] || fail "gcprune run --detach printed no run id"
  log "run $run_id started; waiting for its first collection"

  deadline=$((SECONDS + 300))
  while :; do
    read -r state phase iteration <<<"$(run_state "$run_id")"
    case "$state" in
      RUN_STATE_SUCCEEDED | RUN_STATE_FAILED | RUN_STATE_CANCELLED)
        fail "run $run_id ended ($state) before the pruner could be stopped mid-run" ;;
    esac
    # Any phase with an open pruner session: a collection (steps in flight), a fit, or training between
    # two iterations.
    case "$phase" in PHASE_COLLECT | PHASE_PRUNE | PHASE_TRAIN) break ;; esac
    [ $SECONDS -lt $deadline ] || fail "run $run_id never reached a collection phase (state $state)"
    sleep 0.3
  done

  local pruner_id
  pruner_id=$(container_of pruner)
  restarts=$(docker inspect -f '{{.RestartCount}}' "$pruner_id")
  pid=$(docker inspect -f '{{.State.Pid}}' "$pruner_id")
  log "run $run_id in $phase of iteration $iteration: killing the pruner (host pid $pid) with SIGKILL"
  kill -KILL "$pid"
  deadline=$((SECONDS + 60))
  until [ "$(docker inspect -f '{{.RestartCount}}' "$pruner_id")" -gt "$restarts" ]; do
    [ $SECONDS -lt $deadline ] || fail "the restart policy did not restart the pruner within 60 s"
    sleep 0.5
  done
  wait_healthy pruner 120
  pass "pruner killed mid-run and restarted by its restart policy"

  local report=$STATE_DIR/crash-report.json
  cli watch "$run_id" --progress=none --report --json >"$report" ||
    fail "run $run_id did not succeed after the pruner restart (report in $report)"
  local summary
  summary=$(check_report "$report" 0.75 1) || fail "crash-test report: $summary"
  pass "run across a pruner crash: $summary"
  local session
  session=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pruner_session_id"])' "$report")
  cli sessions --json | grep -q "\"$session\"" || fail "the pruner does not list session $session after its restart"
  pass "the restarted pruner kept session $session (named volume)"
}

# ---------------------------------------------------------------------------------------------------------

main() {
  [ "$(id -u)" = 0 ] || fail "run as root (it starts a Docker daemon)"
  timed "packages" install_packages
  timed "start dockerd" start_daemon
  pick_compose
  timed "base image" make_base_image
  if [ "${GCPRUNE_DOCKER_SKIP_BUILD:-0}" = 0 ]; then
    timed "build pruner image (builder+ctest)" build_image pruner
    timed "build trainer image" build_image trainer
  else
    log "GCPRUNE_DOCKER_SKIP_BUILD: testing the images already built"
  fi
  timed "check images" check_images
  timed "compose up until healthy" up_stack
  timed "demo job" run_demo
  timed "job across a pruner crash" run_with_pruner_crash
  timed "compose down" compose --profile demo down --volumes --remove-orphans --timeout 20
  COMPOSE_UP=0
  log "timings:"
  printf '  %s\n' "${TIMINGS[@]}" >&2
  log "total $((SECONDS - T0)) s"
  echo "test-compose: $PASSED passed, 0 failed"
}

main "$@"
