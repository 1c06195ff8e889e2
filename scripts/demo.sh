#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains LeNet-5 on Fashion-MNIST with the engine for one
# epoch, printing accuracy and images/s. Environment: BUILD_DIR (default build), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target gcprune-train-local
"$BUILD_DIR"/trainer_service/engine/gcprune-train-local --model=lenet5 --epochs=1 --batch=64 --lr=0.01 --momentum=0.9 "$@"
