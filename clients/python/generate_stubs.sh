#!/usr/bin/env bash
# Generates the Python message and gRPC modules of the gcprune.v1 protos (and the vendored health and
# reflection protos) with the system protoc and /usr/bin/grpc_python_plugin. Generated code is never
# committed: the build generates it into <build>/clients/python/stubs, users run this script.
#
# Usage: clients/python/generate_stubs.sh [OUT_DIR]
#   OUT_DIR defaults to clients/python (next to the package, ignored by git). The modules land in
#   OUT_DIR/gcprune/v1/ and OUT_DIR/gcprune/vendored/grpc/{health/v1,reflection/v1alpha}/; put OUT_DIR on
#   PYTHONPATH together with clients/python and `import gcprune` finds them.
# Environment: PROTOC (default protoc), GRPC_PYTHON_PLUGIN (default /usr/bin/grpc_python_plugin).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
protos="$(cd "$here/../../protos" && pwd)"
out="${1:-$here}"
protoc="${PROTOC:-protoc}"
plugin="${GRPC_PYTHON_PLUGIN:-/usr/bin/grpc_python_plugin}"

if ! command -v "$protoc" >/dev/null 2>&1; then
  echo "generate_stubs.sh: '$protoc' not found (Debian: apt-get install protobuf-compiler)" >&2
  exit 1
fi
if [ ! -x "$plugin" ]; then
  echo "generate_stubs.sh: gRPC Python plugin '$plugin' not found (Debian: apt-get install protobuf-compiler-grpc)" >&2
  exit 1
fi

mkdir -p "$out/gcprune/v1" "$out/gcprune/vendored"
# Write into a temporary directory first, so that a reader never sees half-generated modules.
tmp="$(mktemp -d "$out/.stubs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

"$protoc" -I "$protos" --python_out="$tmp" --grpc_python_out="$tmp" \
  --plugin=protoc-gen-grpc_python="$plugin" \
  gcprune/v1/common.proto gcprune/v1/pruner.proto gcprune/v1/trainer.proto
# The vendored protos live in package grpc.*, which would shadow grpcio's own `grpc` package: generate
# their messages only, one level down, and call the services through generic channel methods.
mkdir -p "$tmp/gcprune/vendored"
"$protoc" -I "$protos" --python_out="$tmp/gcprune/vendored" \
  grpc/health/v1/health.proto grpc/reflection/v1alpha/reflection.proto

for f in "$tmp"/gcprune/v1/*.py; do
  mv -f "$f" "$out/gcprune/v1/"
done
rm -rf "$out/gcprune/vendored/grpc"
mv "$tmp/gcprune/vendored/grpc" "$out/gcprune/vendored/grpc"
echo "generate_stubs.sh: Python modules of $(ls "$out"/gcprune/v1/*_pb2*.py | wc -l) gcprune files and 2 vendored files in $out/gcprune"
