"""Granger-causal pruning of an existing PyTorch training loop through a gcprune pruner server.

    pruner = gcprune.torch.CausalPruner(model, optimizer, address="127.0.0.1:50052",
                                        method="causal-v2", target=0.9, iterations=5, start_epoch=1)
    for epoch in range(epochs):
        train_one_epoch(model, optimizer, loader)      # unchanged
        pruner.epoch_end(epoch, loader)                # collects and prunes on the scheduled epochs
    pruner.close()

On a pruning epoch the pruner runs one collection epoch over the loader (METHOD.md §3.1): for each batch
it measures the loss, takes a plain SGD step (η = 1e-3, its own optimizer) over all parameters, measures
the loss again on the same batch, and streams ΔL and the Δθ of every Linear/Conv weight through a
background sender. Then it waits for the pruner's masks, restores the model to its state at the start of
the collection, and applies the masks to the weights, to their gradients (a hook) and to the optimizer's
state, and re-applies them after every optimizer step, so that pruned weights stay exactly 0.

Fail-open by default: if the pruner is unreachable, training goes on, a PrunerWarning is issued and
`status` / `last_error` say why; with strict=True the pruner raises instead.
"""

import dataclasses
import math
import time
import types
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import grpc
import numpy as np
import torch
from torch import nn

from gcprune.config import layout_from_shapes, method_config
from gcprune.errors import GcpruneError, UnavailableError
from gcprune.pruner import Masks, PrunerClient, Step
from gcprune.sender import StepSender

_PRUNABLE_MODULES = (nn.Linear, nn.modules.conv._ConvNd)


class PrunerWarning(RuntimeWarning):
    """Pruning could not proceed as planned (pruner unreachable, masks late); training continues."""


@dataclasses.dataclass
class IterationRecord:
    """What happened at one pruning epoch.

    Attributes:
        iteration: the pruner's iteration, 1-based (the one collected or attempted).
        skipped: True if no new masks were applied (fail-open); `reason` says why.
        target_sparsity: the schedule's cumulative target s(j) (NaN when unknown or causal-v1).
        sparsity: fraction of prunable weights pruned after this epoch, in [0, 1].
        pruned, kept: prunable weights pruned and kept after this epoch.
        steps: collection steps streamed.
        collect_seconds: wall time of the collection epoch.
        wait_seconds: wall time spent waiting for the masks after the collection.
        final: True if this was the last planned iteration.
    """

    iteration: int
    skipped: bool
    reason: str = ""
    target_sparsity: float = float("nan")
    sparsity: float = 0.0
    pruned: int = 0
    kept: int = 0
    steps: int = 0
    collect_seconds: float = 0.0
    wait_seconds: float = 0.0
    final: bool = False


def prunable_parameters(model: nn.Module) -> List[str]:
    """Names (as in model.named_parameters()) of the weights of Linear and Conv layers, in order."""
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, _PRUNABLE_MODULES) and getattr(module, "weight", None) is not None:
            names.append(module_name + ".weight" if module_name else "weight")
    return names


class CausalPruner:
    """Prunes `model` through a pruner server; see the module comment for the loop.

    Args:
        model: the network. Its parameters keep their identity (the optimizer's references stay valid).
        optimizer: the training optimizer whose state (momentum, Adam moments) is masked; None for none.
        address: "host:port" of the pruner; or pass `client` (a PrunerClient, not closed by this object).
        method, target, iterations, seed: the pruning method ("causal-v2" default), final sparsity P,
            number of iterations n and the solver's seed; `config` (a MethodConfig) replaces all four.
        start_epoch, every: epoch_end(epoch) prunes at epochs start_epoch, start_epoch + every, ... until
            the session's last iteration has its masks (an epoch that was skipped is made up later).
        loss_fn: loss(outputs, targets) of the collection; default cross-entropy with label smoothing 0.1.
        forward: optional forward(model, batch) -> loss for batches that are not (inputs, targets).
        collection_lr: η of the collection's plain SGD, > 0 (METHOD.md: 1e-3).
        encoding: "float32" (default) or "bfloat16" / "float16" for the deltas on the wire.
        strict: raise UnavailableError (GcpruneError) instead of continuing when the pruner is unreachable
            or its masks are late.
        connect_timeout: seconds a pruning epoch waits for a connection before skipping (or raising).
        mask_timeout: seconds to wait for the masks after a collection (the grace period).
        prunable: parameter names to prune instead of every Linear/Conv weight.
        session_id: resume this pruner session instead of creating one.
        label: free text stored with the session.
        token, tls, root_certificates, ...: ChannelConfig fields when `address` is given.
        on_step: callback(Step) for every step streamed (deltas as float32 numbers; the step number is
            assigned later by the sender thread).
        on_masks: callback(Masks) after masks were applied.
        max_unacked_bytes, queue_steps: bounds of the background sender (see gcprune.StepSender).
        reconnect_backoff: (first, longest) delay in seconds between reconnection attempts.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Optional[torch.optim.Optimizer] = None,
        *,
        address: Optional[str] = None,
        client: Optional[PrunerClient] = None,
        method: str = "causal-v2",
        target: Optional[float] = None,
        iterations: Optional[int] = None,
        seed: int = 0,
        config=None,
        start_epoch: int = 0,
        every: int = 1,
        loss_fn: Optional[Callable] = None,
        forward: Optional[Callable] = None,
        collection_lr: float = 1e-3,
        encoding: str = "float32",
        strict: bool = False,
        connect_timeout: float = 10.0,
        mask_timeout: float = 120.0,
        prunable: Optional[Sequence[str]] = None,
        session_id: Optional[str] = None,
        label: str = "",
        on_step: Optional[Callable[[Step], None]] = None,
        on_masks: Optional[Callable[[Masks], None]] = None,
        max_unacked_bytes: int = 512 << 20,
        queue_steps: int = 4,
        reconnect_backoff=(0.2, 5.0),
        **channel_kwargs,
    ):
        if (address is None) == (client is None):
            raise ValueError("CausalPruner: give exactly one of address and client")
        if not collection_lr > 0:
            raise ValueError("collection_lr: expected > 0, got %r" % collection_lr)
        if start_epoch < 0 or every < 1:
            raise ValueError("start_epoch >= 0 and every >= 1 expected, got %d and %d" % (start_epoch, every))
        self.model = model
        self.optimizer = optimizer
        self.strict = strict
        self.start_epoch = start_epoch
        self.every = every
        self.loss_fn = loss_fn or nn.CrossEntropyLoss(label_smoothing=0.1)
        self.forward = forward
        self.collection_lr = float(collection_lr)
        self.connect_timeout = connect_timeout
        self.mask_timeout = mask_timeout
        self.on_step = on_step
        self.on_masks = on_masks
        self.history: List[IterationRecord] = []

        named = dict(model.named_parameters())
        names = list(prunable) if prunable is not None else prunable_parameters(model)
        unknown = [n for n in names if n not in named]
        if unknown:
            raise ValueError("prunable: %s is not a parameter of the model" % unknown[0])
        if not names:
            raise ValueError("CausalPruner: the model has no Linear or Conv weight to prune")
        self._param_names = list(named)
        self._prunable = {n: named[n] for n in names}
        # Layout: every parameter, in named_parameters() order; tensor_index = position.
        self.layout = layout_from_shapes((n, tuple(p.shape), n in self._prunable) for n, p in named.items())
        self._index = {n: i for i, n in enumerate(self._param_names)}
        self.masks: Dict[str, torch.Tensor] = {}
        self._applied_iteration = 0
        self._hooks = []
        self._guarded = False

        config = config if config is not None else method_config(method, target=target, iterations=iterations, seed=seed)
        self._own_client = client is None
        self.client = client if client is not None else PrunerClient(address, **channel_kwargs)
        self._sender = StepSender(
            self.client,
            self.layout,
            config,
            label=label,
            session_id=session_id,
            encoding=encoding,
            queue_steps=queue_steps,
            max_unacked_bytes=max_unacked_bytes,
            backoff=reconnect_backoff,
        )
        self._install_step_guard()
        self._collecting = False
        self._collect_started = 0.0
        self._collect_steps = 0
        self._snapshot = None
        self._collect_optimizer = None
        self._iteration = 0
        self._nan_steps = 0

    # ----- state

    @property
    def status(self) -> str:
        """The pruner connection: "connecting", "connected", "disconnected", "failed" or "closed"."""
        return self._sender.status

    @property
    def last_error(self) -> Optional[str]:
        """Why the connection last failed or was skipped, or None."""
        return self._sender.last_error

    @property
    def session_id(self) -> Optional[str]:
        return self._sender.session_id

    @property
    def finished(self) -> bool:
        """True once the masks of the last planned iteration are applied."""
        total = self._sender.total_iterations
        return total > 0 and self._applied_iteration >= total

    @property
    def prunable(self) -> Dict[str, nn.Parameter]:
        """The pruned parameters by name, in layout order."""
        return dict(self._prunable)

    @property
    def collecting(self) -> bool:
        return self._collecting

    @property
    def sparsity(self) -> float:
        """Fraction of prunable weights currently pruned by the applied masks, in [0, 1]."""
        total = sum(p.numel() for p in self._prunable.values())
        pruned = sum(int((m == 0).sum()) for m in self.masks.values())
        return pruned / total if total else 0.0

    def is_prune_epoch(self, epoch: int) -> bool:
        """True if epoch_end(epoch) would run a pruning iteration."""
        return not self.finished and epoch >= self.start_epoch and (epoch - self.start_epoch) % self.every == 0

    # ----- the loop

    def epoch_end(self, epoch: int, loader) -> Optional[IterationRecord]:
        """Call after every training epoch (0-based `epoch`). Applies masks that arrived after their grace
        period, if any; on a pruning epoch then runs prune(loader). Returns the record of what was done
        (None if nothing)."""
        late = self._apply_late_masks()
        if self.is_prune_epoch(epoch):
            return self.prune(loader) or late
        return late

    def prune(self, loader) -> Optional[IterationRecord]:
        """One pruning iteration: a collection epoch over `loader` (batches of (inputs, targets), or
        whatever `forward` takes), then the masks. Returns the record (skipped=True when fail-open kept the
        previous masks), or None if the session had already finished. Raises UnavailableError /
        GcpruneError in strict mode."""
        self._apply_late_masks()
        if self.finished:
            return None
        if not self.begin_collection():
            return self.history[-1]
        try:
            if self._sender.wants_steps:  # the magnitude and random methods need no collection steps
                for batch in loader:
                    self.collect_step(batch)
        except BaseException:
            self._abort_collection()
            raise
        return self.end_collection()

    def begin_collection(self) -> bool:
        """Starts a collection epoch by hand (then collect_step per batch and end_collection). Returns False
        (and records a skipped iteration) when the pruner is unreachable in fail-open mode."""
        if self._collecting:
            raise RuntimeError("begin_collection: a collection is already running")
        self._apply_late_masks()
        if self.finished:
            return False
        if not self._sender.wait_connected(self.connect_timeout):
            reason = "pruner %s: %s (%s)" % (self.client.address, self.status, self.last_error or "no connection")
            self._skip(self._sender.current_iteration, reason)
            return False
        iteration = self._sender.current_iteration
        if self._sender.finished:
            self._skip(iteration - 1, "the pruning session has finished")
            return False
        self._iteration = iteration
        self._snapshot = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        params = [p for p in self.model.parameters() if p.requires_grad]
        self._collect_optimizer = torch.optim.SGD(params, lr=self.collection_lr)
        self._sender.begin_iteration(iteration)
        self._collecting = True
        self._collect_steps = 0
        self._collect_started = time.monotonic()
        return True

    def collect_step(self, batch, targets=None) -> float:
        """One collection step on `batch` (or on inputs `batch` and `targets`): L0, SGD step, L1 on the
        same batch, Δθ of the prunable weights, streamed. Returns L0. Outside a collection: RuntimeError."""
        if not self._collecting:
            raise RuntimeError("collect_step: call begin_collection() first (or use prune(loader))")
        if targets is not None:
            batch = (batch, targets)
        before = [p.detach().clone() for p in self._prunable.values()]
        self._collect_optimizer.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = self._loss(batch)
            loss.backward()
        self._collect_optimizer.step()
        self._enforce_masks()
        with torch.no_grad():
            loss_after = float(self._loss(batch))
        loss_before = float(loss.detach())
        deltas = [
            (self._index[name], (p.detach() - w0).reshape(-1).to("cpu", torch.float32).numpy())
            for (name, p), w0 in zip(self._prunable.items(), before)
        ]
        step = Step(
            iteration=self._iteration,
            loss_before=loss_before,
            loss_after=loss_after,
            learning_rate=self.collection_lr,
            deltas=deltas,
        )
        if math.isnan(loss_before) or math.isnan(loss_after):
            # The pruner rejects NaN losses (INVALID_ARGUMENT): such a step is no sample; leave it out.
            self._nan_steps += 1
            if self._nan_steps == 1:
                warnings.warn("gcprune: a collection step with a NaN loss is not sent", PrunerWarning, stacklevel=2)
            return loss_before
        if self.on_step is not None:
            self.on_step(step)
        if self._sender.wants_steps:
            self._sender.submit(step)
        self._collect_steps += 1
        return loss_before

    def end_collection(self) -> IterationRecord:
        """Ends the collection: waits for the masks (up to mask_timeout), restores the model to its state
        at begin_collection and applies them. Returns the record."""
        if not self._collecting:
            raise RuntimeError("end_collection: no collection is running")
        collect_seconds = time.monotonic() - self._collect_started
        weights = None
        if self._sender.wants_weights:  # the magnitude methods rank the weights as they were before collecting
            weights = [
                (self._index[n], self._snapshot[n].reshape(-1).to("cpu", torch.float32).numpy())
                for n in self._prunable
            ]
        self._sender.end_iteration(self._iteration, weights)
        started = time.monotonic()
        masks = self._sender.wait_masks(self._iteration, self.mask_timeout)
        wait_seconds = time.monotonic() - started
        self._restore()
        if masks is None:
            if self._sender.attempt_lost():
                reason = "the pruner was unreachable during the collection (%s)" % (self.last_error or "")
            elif self.status in ("failed", "closed"):
                reason = "pruner %s: %s" % (self.status, self.last_error or "")
            else:
                reason = "no masks for iteration %d within %.1f s" % (self._iteration, self.mask_timeout)
            record = self._skip(self._iteration, reason)
            record.steps, record.collect_seconds, record.wait_seconds = self._collect_steps, collect_seconds, wait_seconds
            return record
        self.apply_masks(masks)
        record = IterationRecord(
            iteration=masks.iteration,
            skipped=False,
            target_sparsity=masks.target_sparsity,
            sparsity=masks.global_sparsity,
            pruned=masks.pruned,
            kept=masks.kept,
            steps=self._collect_steps,
            collect_seconds=collect_seconds,
            wait_seconds=wait_seconds,
            final=masks.final_iteration,
        )
        self.history.append(record)
        return record

    def close(self, complete: Optional[bool] = None, timeout: float = 30.0) -> None:
        """Detaches from the session (completing it if `complete`, by default when finished) and closes
        the channel if this object created it. The masks stay enforced (gradient hooks, optimizer guard),
        so fine-tuning after close() keeps pruned weights at 0; remove_masks() lifts them. Idempotent."""
        if self._collecting:
            self._abort_collection()
        self._sender.close(complete=self.finished if complete is None else complete, timeout=timeout)
        if self._own_client:
            self.client.close()

    def remove_masks(self) -> None:
        """Stops enforcing the masks: removes the gradient hooks, and the optimizer guard does nothing any
        more (it stays installed, as LR schedulers may have wrapped it). Pruned weights stay 0 until
        training changes them."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self.masks = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----- masks

    def apply_masks(self, masks: Masks) -> None:
        """Applies cumulative masks now: weights, gradient hooks, optimizer state and the post-step guard."""
        with torch.no_grad():
            for name, param in self._prunable.items():
                keep = masks.keep.get(self._index[name])
                if keep is None:
                    continue
                mask = torch.from_numpy(np.ascontiguousarray(keep).reshape(tuple(param.shape)))
                mask = mask.to(device=param.device, dtype=param.dtype)
                if name not in self.masks:
                    self._hooks.append(param.register_hook(self._grad_hook(name)))
                self.masks[name] = mask
        self._enforce_masks()
        self._applied_iteration = max(self._applied_iteration, masks.iteration)
        if self.on_masks is not None:
            self.on_masks(masks)

    def _grad_hook(self, name):
        def hook(grad):
            return grad * self.masks[name]

        return hook

    def _enforce_masks(self) -> None:
        """Zeroes pruned weights, their gradients and their optimizer state."""
        if not self.masks:
            return
        with torch.no_grad():
            for name, mask in self.masks.items():
                param = self._prunable[name]
                param.mul_(mask)
                if param.grad is not None:
                    param.grad.mul_(mask)
                if self.optimizer is not None:
                    for value in self.optimizer.state.get(param, {}).values():
                        if torch.is_tensor(value) and value.shape == param.shape:
                            value.mul_(mask)

    def _install_step_guard(self) -> None:
        """Re-applies the masks after every optimizer.step(), whatever the optimizer does (weight decay
        variants, custom optimizers). Bound as a method so that LR schedulers can wrap it in turn."""
        if self._guarded or self.optimizer is None:
            return
        original = self.optimizer.step
        pruner = self

        def step(optimizer_self, *args, **kwargs):
            result = original(*args, **kwargs)
            pruner._enforce_masks()
            return result

        if getattr(original, "_with_counter", False):
            step._with_counter = True  # the wrapped step still counts for an LR scheduler made before
        self.optimizer.step = types.MethodType(step, self.optimizer)
        self._guarded = True

    def _apply_late_masks(self) -> Optional[IterationRecord]:
        """Applies masks newer than the applied ones (they arrived after their grace period) to the current
        weights, without restoring anything; returns their record, or None if there were none."""
        masks = self._sender.latest_masks
        if masks is None or masks.iteration <= self._applied_iteration:
            return None
        warnings.warn(
            "gcprune: applying the masks of iteration %d, which arrived after their grace period" % masks.iteration,
            PrunerWarning,
            stacklevel=3,
        )
        self.apply_masks(masks)
        record = IterationRecord(
            iteration=masks.iteration,
            skipped=False,
            reason="applied late, to the current weights",
            target_sparsity=masks.target_sparsity,
            sparsity=masks.global_sparsity,
            pruned=masks.pruned,
            kept=masks.kept,
            final=masks.final_iteration,
        )
        self.history.append(record)
        return record

    # ----- internals

    def _loss(self, batch):
        if self.forward is not None:
            return self.forward(self.model, batch)
        inputs, targets = batch
        device = next(iter(self._prunable.values())).device
        return self.loss_fn(self.model(inputs.to(device)), targets.to(device))

    def _restore(self) -> None:
        self.model.load_state_dict(self._snapshot)
        for param in self.model.parameters():
            param.grad = None
        self._snapshot = None
        self._collect_optimizer = None
        self._collecting = False
        self._enforce_masks()

    def _abort_collection(self) -> None:
        self._sender.abandon_iteration()
        self._restore()

    def _skip(self, iteration: int, reason: str) -> IterationRecord:
        """Records (and warns about) an iteration that applied no new masks; raises in strict mode."""
        if self.strict:
            if self.status == "failed":
                raise GcpruneError(grpc.StatusCode.FAILED_PRECONDITION, "gcprune: " + reason)
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "gcprune: " + reason)
        warnings.warn(
            "gcprune: pruning iteration %d skipped, training goes on: %s" % (iteration, reason), PrunerWarning, stacklevel=3
        )
        total = sum(p.numel() for p in self._prunable.values())
        pruned = sum(int((m == 0).sum()) for m in self.masks.values())
        record = IterationRecord(
            iteration=iteration, skipped=True, reason=reason, sparsity=pruned / total, pruned=pruned, kept=total - pruned
        )
        self.history.append(record)
        return record
