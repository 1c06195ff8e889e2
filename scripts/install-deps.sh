#!/usr/bin/env bash
# Installs every Debian package gcprune needs to build, test, benchmark and run its clients.
# Idempotent: packages already present are skipped, so running it twice costs a few seconds.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libdnnl-dev ocl-icd-opencl-dev libabsl-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  dataset-fashion-mnist
  python3 python3-grpcio python3-protobuf python3-numpy
  openssl
)
# Optional groups: --torch (PyTorch comparisons and integration), --sklearn (fixture generators),
# --node (Node.js and npm for clients/node, unless a `node` and `npm` are on PATH already).
for arg in "$@"; do
  case "$arg" in
    --torch) packages+=(python3-torch libopenblas0-openmp) ;;
    --sklearn) packages+=(python3-sklearn) ;;
    --plot) packages+=(python3-matplotlib) ;;
    --node) if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi ;;
    *) echo "install-deps.sh: unknown option '$arg' (known: --torch --sklearn --plot --node)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
  --no-install-recommends "${missing[@]}"
