"""Builders of the gcprune.v1 configuration messages from plain Python values: MethodConfig from method
names and keyword arguments (or a dict in the proto's JSON form), and Layout from (name, shape, prunable)."""

from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

from google.protobuf import json_format

from gcprune import wire
from gcprune._proto import common_pb2

METHODS = {
    "causal-v2": common_pb2.METHOD_CAUSAL_V2,
    "causal-v1": common_pb2.METHOD_CAUSAL_V1,
    "magnitude-global": common_pb2.METHOD_MAGNITUDE_GLOBAL,
    "magnitude-layer": common_pb2.METHOD_MAGNITUDE_LAYER,
    "random": common_pb2.METHOD_RANDOM,
    "none": common_pb2.METHOD_NONE,
}
SOLVERS = {"lasso-sgd": common_pb2.SOLVER_LASSO_SGD, "exact": common_pb2.SOLVER_EXACT}
SCHEDULES = {
    "cubic": common_pb2.SCHEDULE_KIND_CUBIC,
    "geometric": common_pb2.SCHEDULE_KIND_GEOMETRIC,
    "one-shot": common_pb2.SCHEDULE_KIND_ONE_SHOT,
    "custom": common_pb2.SCHEDULE_KIND_CUSTOM,
}
SCOPES = {"global": common_pb2.PRUNING_SCOPE_GLOBAL, "per-layer": common_pb2.PRUNING_SCOPE_PER_LAYER}


def _lookup(table: Mapping[str, int], field: str, value) -> int:
    if isinstance(value, int):
        return value
    key = str(value).strip().lower().replace("_", "-")
    if key not in table:
        raise ValueError("%s: unknown value %r (%s)" % (field, value, ", ".join(table)))
    return table[key]


def method_config(
    method: Union[str, int, Mapping, "common_pb2.MethodConfig", None] = "causal-v2",
    *,
    target: Optional[float] = None,
    iterations: Optional[int] = None,
    schedule: Union[str, int, None] = None,
    custom_sparsity: Optional[Sequence[float]] = None,
    scope: Union[str, int, None] = None,
    solver: Union[str, int, None] = None,
    seed: int = 0,
    sample_encoding: Union[str, int, None] = None,
    memory_budget_bytes: int = 0,
    reference_ranking: bool = False,
    v1_momentum: bool = False,
    max_layer_sparsity: Optional[float] = None,
) -> "common_pb2.MethodConfig":
    """A MethodConfig message.

    `method` is a name ("causal-v2", "causal-v1", "magnitude-global", "magnitude-layer", "random",
    "none"), a Method number, a MethodConfig (returned as a copy; keyword arguments then must be left at
    their defaults) or a dict in the proto's JSON form, e.g. {"method": "METHOD_CAUSAL_V2",
    "schedule": {"targetSparsity": 0.8}}. Unset keywords leave the server's defaults (PROTOCOL.md): target
    0.9, 10 iterations, cubic schedule for causal-v2. Ranges are validated by the server (INVALID_ARGUMENT
    naming the field); here only names are checked (ValueError naming the field and value).
    """
    if isinstance(method, common_pb2.MethodConfig):
        config = common_pb2.MethodConfig()
        config.CopyFrom(method)
        return config
    if isinstance(method, Mapping):
        return json_format.ParseDict(dict(method), common_pb2.MethodConfig())
    config = common_pb2.MethodConfig()
    if method is not None:
        config.method = _lookup(METHODS, "method", method)
    if solver is not None:
        config.solver = _lookup(SOLVERS, "solver", solver)
    if target is not None:
        config.schedule.target_sparsity = float(target)
    if iterations is not None:
        config.schedule.iterations = int(iterations)
    if schedule is not None:
        config.schedule.kind = _lookup(SCHEDULES, "schedule", schedule)
    if custom_sparsity is not None:
        config.schedule.custom_sparsity.extend(float(s) for s in custom_sparsity)
    if scope is not None:
        config.schedule.scope = _lookup(SCOPES, "scope", scope)
    if max_layer_sparsity is not None:
        config.schedule.max_layer_sparsity = float(max_layer_sparsity)
    config.seed = int(seed) & ((1 << 64) - 1)
    if sample_encoding is not None:
        config.sample_encoding = wire.parse_encoding(sample_encoding)
    config.memory_budget_bytes = int(memory_budget_bytes)
    config.reference_ranking = bool(reference_ranking)
    config.v1_momentum = bool(v1_momentum)
    return config


def layout_from_shapes(tensors: Iterable[Tuple[str, Sequence[int], bool]]) -> "common_pb2.Layout":
    """A Layout from (name, shape, prunable) triples, in order; the server validates names and shapes."""
    layout = common_pb2.Layout()
    for name, shape, prunable in tensors:
        layout.tensors.add(name=name, shape=[int(d) for d in shape], prunable=bool(prunable))
    return layout


def numel(spec: "common_pb2.TensorSpec") -> int:
    """Number of elements of a TensorSpec (the product of its shape)."""
    count = 1
    for d in spec.shape:
        count *= int(d)
    return count
