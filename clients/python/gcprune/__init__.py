"""Python clients of the gcprune services: Granger-causal pruning over gRPC.

``gcprune.PrunerClient`` and ``gcprune.TrainerClient`` speak the gcprune.v1 protocol; ``gcprune.torch``
prunes an existing PyTorch training loop through a pruner server. The message modules are generated from
protos/ by ``clients/python/generate_stubs.sh`` and may live in any directory on ``sys.path`` (or in
``$GCPRUNE_PYTHON_STUBS``) that holds ``gcprune/v1/*_pb2.py``. ``gcprune.wire`` needs no generated code.
"""

import importlib as _importlib
import os as _os
import pkgutil as _pkgutil

# The generated modules (gcprune.v1, gcprune.vendored) sit in a separate output directory: let this
# package span every `gcprune` directory on sys.path, plus the one named by $GCPRUNE_PYTHON_STUBS.
__path__ = _pkgutil.extend_path(__path__, __name__)
_stubs = _os.environ.get("GCPRUNE_PYTHON_STUBS")
if _stubs:
    _extra = _os.path.join(_stubs, "gcprune")
    if _os.path.isdir(_extra) and _extra not in __path__:
        __path__.append(_extra)

__version__ = "0.1.0"

# Public names and the submodule defining each; imported on first use so that `gcprune.wire` works
# without the generated modules and `import gcprune` stays cheap (no torch unless gcprune.torch is used).
_EXPORTS = {
    "ChannelConfig": "gcprune.channels",
    "health_check": "gcprune.channels",
    "GcpruneError": "gcprune.errors",
    "UnavailableError": "gcprune.errors",
    "StubsMissingError": "gcprune.errors",
    "Masks": "gcprune.pruner",
    "PrunerClient": "gcprune.pruner",
    "PrunerSession": "gcprune.pruner",
    "Step": "gcprune.pruner",
    "StepSender": "gcprune.sender",
    "TrainerClient": "gcprune.trainer",
    "layout_from_shapes": "gcprune.config",
    "method_config": "gcprune.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError("module 'gcprune' has no attribute %r" % name)
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value
