"""The generated gcprune.v1 and vendored health modules, imported in one place with a helpful error."""

from gcprune.errors import StubsMissingError

try:
    from gcprune.v1 import common_pb2, pruner_pb2, pruner_pb2_grpc, trainer_pb2, trainer_pb2_grpc
    from gcprune.vendored.grpc.health.v1 import health_pb2
except ImportError as error:  # pragma: no cover - depends on the installation
    raise StubsMissingError(
        "the generated gcprune.v1 modules were not found (%s). Run clients/python/generate_stubs.sh [OUT_DIR] "
        "and put OUT_DIR on PYTHONPATH or in $GCPRUNE_PYTHON_STUBS" % error
    ) from error

__all__ = [
    "common_pb2",
    "health_pb2",
    "pruner_pb2",
    "pruner_pb2_grpc",
    "trainer_pb2",
    "trainer_pb2_grpc",
]
