#!/usr/bin/env bash
# Sets up (Debian packages), builds and runs the whole test suite. Usage: scripts/test.sh [ctest args]
# Environment: BUILD_DIR (default build), JOBS (default nproc), GCPRUNE_DOCKER_TESTS (1: afterwards build the
# Docker images and test the Compose stack with docker/test-compose.sh, 10 to 14 minutes cold; default 0; .ci/run sets 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

scripts/install-deps.sh --torch --sklearn
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j "$JOBS"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
if [ "${GCPRUNE_DOCKER_TESTS:-0}" != 0 ]; then
  BUILD_DIR="$BUILD_DIR" docker/test-compose.sh
fi
