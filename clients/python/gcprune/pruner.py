"""Client of the gcprune.v1 Pruner service.

``PrunerClient`` makes the unary calls and opens ``PrunerSession`` streams (one attached stream of one
session: steps out, acks, progress and masks in). ``gcprune.sender.StepSender`` builds the resumable,
background delivery of training loops on top of them.
"""

import dataclasses
import queue
import threading
import time
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import grpc
import numpy as np

from gcprune import wire
from gcprune._proto import common_pb2, pruner_pb2, pruner_pb2_grpc
from gcprune.channels import ServiceClient
from gcprune.config import method_config, numel
from gcprune.errors import GcpruneError, UnavailableError


# Codes after which resending the same data cannot succeed (PROTOCOL.md §6).
_FATAL_CODES = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
)
_DEFAULT_CHUNK_ELEMENTS = 262144


@dataclasses.dataclass
class Step:
    """One optimizer step of a collection phase.

    Attributes:
        iteration: the prune iteration being collected, 1-based.
        loss_before: L(θ_t; B_t), before the update.
        loss_after: L(θ_{t+1}; B_t), after the update on the same batch (causal-v2; ignored by causal-v1).
        learning_rate: the collection optimizer's learning rate η, > 0.
        deltas: (tensor_index, values) per prunable tensor: θ_after − θ_before, signed, flattened row-major,
            numel values each. `values` are float32 numbers or already encoded arrays (see `encoding`).
        momentum: the collection optimizer's momentum μ in [0, 1).
        encoding: how `deltas` are held: None = float numbers (encoded at sending), else the ValueEncoding
            number whose `wire.encode` output they are.
        step: the step number; assigned by StepSender (leave -1), required by PrunerSession.send_step.
    """

    iteration: int
    loss_before: float
    loss_after: float
    learning_rate: float
    deltas: Sequence[Tuple[int, np.ndarray]]
    momentum: float = 0.0
    encoding: Optional[int] = None
    step: int = -1

    def decoded_deltas(self) -> List[Tuple[int, np.ndarray]]:
        """(tensor_index, float32 values) as the server reads them (bfloat16 rounding included)."""
        if self.encoding is None:
            return [(i, np.asarray(v, dtype=np.float32).reshape(-1)) for i, v in self.deltas]
        return [(i, wire.decode(v, self.encoding)) for i, v in self.deltas]

    def nbytes(self) -> int:
        """Bytes of the deltas as held."""
        return sum(np.asarray(v).nbytes for _, v in self.deltas)


class Masks:
    """A cumulative keep-mask after one iteration, assembled from MaskUpdate parts (or GetMasks pages).

    Attributes:
        iteration: the iteration that produced it (0: the initial all-kept mask).
        apply_at_step: the first step that must be produced with the mask applied.
        keep: tensor_index -> uint8 array of numel flags (1 = kept, 0 = pruned), flattened row-major.
        summary: the MaskUpdate part that had last_part = true (per-tensor TensorSparsity in `tensors`,
            global_sparsity, target_sparsity, kept, pruned, final_iteration).
    """

    def __init__(self, iteration: int, apply_at_step: int, keep: Dict[int, np.ndarray], summary):
        self.iteration = iteration
        self.apply_at_step = apply_at_step
        self.keep = keep
        self.summary = summary

    @property
    def global_sparsity(self) -> float:
        return self.summary.global_sparsity

    @property
    def target_sparsity(self) -> float:
        return self.summary.target_sparsity

    @property
    def pruned(self) -> int:
        return self.summary.pruned

    @property
    def kept(self) -> int:
        return self.summary.kept

    @property
    def final_iteration(self) -> bool:
        return self.summary.final_iteration

    def flat(self) -> np.ndarray:
        """All keep flags in feature order (prunable tensors in layout order), uint8."""
        return np.concatenate([self.keep[i] for i in sorted(self.keep)])

    def __repr__(self):
        return "Masks(iteration=%d, apply_at_step=%d, sparsity=%.4f, pruned=%d, kept=%d)" % (
            self.iteration,
            self.apply_at_step,
            self.global_sparsity,
            self.pruned,
            self.kept,
        )


class _MaskAssembler:
    """Collects the runs of MaskUpdate parts of one iteration and checks that they cover every prunable
    tensor exactly once."""

    def __init__(self, layout):
        self._sizes = {i: numel(t) for i, t in enumerate(layout.tensors) if t.prunable}
        self._keep: Dict[int, np.ndarray] = {}
        self._seen: Dict[int, np.ndarray] = {}
        self.iteration: Optional[int] = None

    def add(self, update) -> Optional[Masks]:
        """Adds one part; returns the Masks on the last part. Raises ValueError naming the run for a bad
        tensor index, an out-of-range or overlapping run, or missing elements at the last part."""
        if self.iteration is not None and update.iteration != self.iteration:
            # A new update started before the previous one ended: drop the partial one.
            self._keep.clear()
            self._seen.clear()
        self.iteration = update.iteration
        for run in update.masks:
            size = self._sizes.get(run.tensor_index)
            if size is None:
                raise ValueError("masks: tensor %d is not a prunable tensor of the layout" % run.tensor_index)
            end = run.offset + run.num_elements
            if run.offset < 0 or end > size:
                raise ValueError(
                    "masks: tensor %d run [%d, %d) is outside [0, %d)" % (run.tensor_index, run.offset, end, size)
                )
            flags = wire.unpack_mask(run.bits, run.num_elements)
            keep = self._keep.setdefault(run.tensor_index, np.zeros(size, np.uint8))
            seen = self._seen.setdefault(run.tensor_index, np.zeros(size, bool))
            if seen[run.offset : end].any():
                raise ValueError("masks: tensor %d run [%d, %d) overlaps another" % (run.tensor_index, run.offset, end))
            keep[run.offset : end] = flags
            seen[run.offset : end] = True
        if not update.last_part:
            return None
        for index, size in self._sizes.items():
            seen = self._seen.get(index)
            if seen is None or not seen.all():
                first = 0 if seen is None else int(np.argmin(seen))
                raise ValueError("masks: tensor %d has no mask bits from element %d" % (index, first))
        masks = Masks(update.iteration, update.apply_at_step, dict(self._keep), update)
        self._keep, self._seen, self.iteration = {}, {}, None
        return masks


def _encode_step_requests(step: Step, chunk_elements: int, encoding: int) -> List["pruner_pb2.SessionRequest"]:
    """The SessionRequest messages of one step: StepBegin, StepChunks of at most chunk_elements, StepCommit."""
    requests = [
        pruner_pb2.SessionRequest(
            step_begin=pruner_pb2.StepBegin(
                step=step.step,
                iteration=step.iteration,
                loss_before=float(step.loss_before),
                loss_after=float(step.loss_after),
                learning_rate=float(step.learning_rate),
                momentum=float(step.momentum),
            )
        )
    ]
    requests.extend(
        pruner_pb2.SessionRequest(step_chunk=pruner_pb2.StepChunk(step=step.step, deltas=chunks))
        for chunks in _encode_chunks(step.deltas, chunk_elements, encoding, step.encoding)
    )
    requests.append(pruner_pb2.SessionRequest(step_commit=pruner_pb2.StepCommit(step=step.step)))
    return requests


def _encode_chunks(tensors, chunk_elements, encoding, held_encoding=None):
    """TensorChunk lists, one per message, of (tensor_index, values) pairs."""
    arrays = {}
    for index, values in tensors:
        flat = np.asarray(values).reshape(-1)
        if held_encoding is None:
            flat = wire.encode(flat, encoding)
        elif held_encoding != encoding:
            flat = wire.encode(wire.decode(flat, held_encoding), encoding)
        arrays[index] = flat
    for runs in wire.plan_chunks([(i, a.size) for i, a in arrays.items()], chunk_elements):
        yield [
            common_pb2.TensorChunk(
                tensor_index=i, offset=offset, encoding=encoding, data=arrays[i][offset : offset + count].tobytes()
            )
            for i, offset, count in runs
        ]


class PrunerSession:
    """One attached Session stream.

    Created by PrunerClient.create_session / resume_session, which return once `opened` arrived. Sending
    methods must be called from one thread at a time; acks, masks, progress and errors are read by a
    background thread. When the stream ends, `done` is true and `error` holds its status (None for OK);
    waiting methods then raise that error.
    """

    def __init__(self, stub, open_request, metadata, open_timeout: float, on_event=None, queue_messages: int = 8):
        self._outbox: "queue.Queue" = queue.Queue(maxsize=max(1, queue_messages))
        self._cond = threading.Condition()
        self._done = False
        self._closing = False
        self.error: Optional[GcpruneError] = None
        self.opened = None
        self._acked = -1
        self._masks: Dict[int, Masks] = {}
        self._latest_masks: Optional[Masks] = None
        self._assembler: Optional[_MaskAssembler] = None
        self._on_event = on_event
        self.session_errors: List = []
        self._outbox.put(open_request)
        self._call = stub.Session(self._requests(), metadata=metadata)
        self._reader = threading.Thread(target=self._read, name="gcprune-session-reader", daemon=True)
        self._reader.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.opened is not None or self._done, timeout=open_timeout):
                self._call.cancel()
                raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "open: no answer within %.1f s" % open_timeout)
            if self.opened is None:
                raise self.error or GcpruneError(grpc.StatusCode.UNKNOWN, "open: the stream ended without Opened")

    # ----- what the server said at opening

    @property
    def session_id(self) -> str:
        return self.opened.session_id

    @property
    def layout(self):
        return self.opened.layout

    @property
    def next_step(self) -> int:
        """The next step number the server expected at opening."""
        return self.opened.next_step

    @property
    def chunk_elements(self) -> int:
        """Elements per StepChunk message: the server's recommendation (262144 if it gives none)."""
        return self.opened.recommended_chunk_elements or _DEFAULT_CHUNK_ELEMENTS

    # ----- state read by the background thread

    @property
    def done(self) -> bool:
        return self._done

    @property
    def acked_step(self) -> int:
        """Highest step s such that steps 0..s are durably stored (-1: none acknowledged on this stream
        and none stored before it)."""
        with self._cond:
            return self._acked

    @property
    def latest_masks(self) -> Optional[Masks]:
        with self._cond:
            return self._latest_masks

    # ----- sending

    def send(self, request, timeout: Optional[float] = None) -> None:
        """Queues one SessionRequest. Blocks while the outgoing queue is full (flow control). Raises the
        stream's error if it ended, UnavailableError if the queue stays full for `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._done:
                raise self.error or GcpruneError(grpc.StatusCode.CANCELLED, "the session stream has ended")
            try:
                self._outbox.put(request, timeout=0.1)
                return
            except queue.Full:
                if deadline is not None and time.monotonic() > deadline:
                    raise UnavailableError(
                        grpc.StatusCode.UNAVAILABLE, "send: the server took no message for %.1f s" % timeout
                    )

    def send_step(self, step: Step, encoding="float32", timeout: Optional[float] = None) -> None:
        """Sends one step (StepBegin, StepChunks, StepCommit). `step.step` must be set; deltas are split to
        `chunk_elements` per message and encoded as `encoding` ("float32", "bfloat16" or "float16")."""
        if step.step < 0:
            raise ValueError("step.step: expected a step number >= 0, got %d" % step.step)
        for request in _encode_step_requests(step, self.chunk_elements, wire.parse_encoding(encoding)):
            self.send(request, timeout)

    def send_weights(self, iteration: int, weights: Sequence[Tuple[int, np.ndarray]], encoding="float32") -> None:
        """Sends the current weights (IterationWeights) of the prunable tensors, for the magnitude methods."""
        for chunks in _encode_chunks(weights, self.chunk_elements, wire.parse_encoding(encoding)):
            self.send(
                pruner_pb2.SessionRequest(
                    iteration_weights=pruner_pb2.IterationWeights(iteration=iteration, weights=chunks)
                )
            )

    def end_iteration(self, iteration: int, last_step: int) -> None:
        """Sends IterationEnd: the server fits and answers with a MaskUpdate (wait_masks)."""
        self.send(pruner_pb2.SessionRequest(iteration_end=pruner_pb2.IterationEnd(iteration=iteration, last_step=last_step)))

    def close(self, complete: bool = False, timeout: float = 30.0) -> None:
        """Sends CloseSession and waits for the stream to end (pending steps are stored and acked first).
        With `complete` the session becomes COMPLETED. Raises the stream's error if it ended with one."""
        if not self._done:
            try:
                self.send(pruner_pb2.SessionRequest(close=pruner_pb2.CloseSession(complete=complete)), timeout)
            except GcpruneError:
                pass
            self._closing = True
        with self._cond:
            if not self._cond.wait_for(lambda: self._done, timeout=timeout):
                self._call.cancel()
                raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "close: the stream did not end in %.1f s" % timeout)
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        """Drops the stream at once (the session stays resumable; nothing acked is lost)."""
        self._closing = True
        self._call.cancel()

    # ----- waiting

    def wait_acked(self, step: int, timeout: Optional[float] = None) -> bool:
        """Waits until steps 0..`step` are acknowledged. Returns False on timeout; raises the stream's error
        if it ends first."""
        with self._cond:
            self._cond.wait_for(lambda: self._acked >= step or self._done, timeout=timeout)
            if self._acked >= step:
                return True
            if self._done:
                raise self.error or GcpruneError(grpc.StatusCode.CANCELLED, "the stream ended before step %d was acked" % step)
            return False

    def wait_masks(self, iteration: int, timeout: Optional[float] = None) -> Optional[Masks]:
        """Waits for the masks of `iteration` (or of a later one, which are cumulative). Returns None on
        timeout; raises the stream's error if it ends first."""
        with self._cond:
            self._cond.wait_for(
                lambda: (self._latest_masks is not None and self._latest_masks.iteration >= iteration) or self._done,
                timeout=timeout,
            )
            if self._latest_masks is not None and self._latest_masks.iteration >= iteration:
                return self._latest_masks
            if self._done:
                raise self.error or GcpruneError(
                    grpc.StatusCode.CANCELLED, "the stream ended before the masks of iteration %d" % iteration
                )
            return None

    # ----- background

    def _requests(self) -> Iterator:
        while True:
            try:
                item = self._outbox.get(timeout=0.2)
            except queue.Empty:
                if self._done:
                    return
                continue
            yield item
            if item.WhichOneof("kind") == "close":
                return

    def _read(self) -> None:
        error = None
        try:
            for response in self._call:
                self._handle(response)
        except grpc.RpcError as rpc_error:
            if not (self._closing and rpc_error.code() == grpc.StatusCode.CANCELLED):
                error = GcpruneError.from_rpc_error(rpc_error, "session")
            elif self.opened is None:
                error = GcpruneError.from_rpc_error(rpc_error, "session")
        except Exception as exc:  # a malformed response: end the stream, report it
            error = GcpruneError(grpc.StatusCode.INTERNAL, "session: %s" % exc)
            self._call.cancel()
        with self._cond:
            self.error = error
            self._done = True
            self._cond.notify_all()
        if self._on_event is not None:
            self._on_event("ended", error)

    def _handle(self, response) -> None:
        kind = response.WhichOneof("kind")
        if kind == "opened":
            with self._cond:
                self.opened = response.opened
                self._acked = response.opened.next_step - 1
                self._assembler = _MaskAssembler(response.opened.layout)
                self._cond.notify_all()
        elif kind == "ack":
            with self._cond:
                self._acked = max(self._acked, response.ack.step)
                self._cond.notify_all()
        elif kind == "mask_update":
            masks = self._assembler.add(response.mask_update)
            if masks is not None:
                with self._cond:
                    self._masks = {masks.iteration: masks}
                    if self._latest_masks is None or masks.iteration >= self._latest_masks.iteration:
                        self._latest_masks = masks
                    self._cond.notify_all()
                if self._on_event is not None:
                    self._on_event("masks", masks)
        elif kind == "progress":
            if self._on_event is not None:
                self._on_event("progress", response.progress)
        elif kind == "error":
            self.session_errors.append(response.error)
            del self.session_errors[:-100]
            if self._on_event is not None:
                self._on_event("error", response.error)


class PrunerClient(ServiceClient):
    """Calls of the gcprune.v1.Pruner service on one channel.

    Every unary call raises GcpruneError with the server's status code and message (UnavailableError for
    UNAVAILABLE). Thread-safe: the channel and stubs may be shared.
    """

    SERVICE = "gcprune.v1.Pruner"

    def __init__(self, address, *, timeout: float = 30.0, **channel_kwargs):
        """`address` is "host:port" or a ChannelConfig; further ChannelConfig fields (token, tls,
        root_certificates, private_key, certificate_chain, server_name_override) as keywords. `timeout` is
        the deadline of unary calls in seconds."""
        super().__init__(address, pruner_pb2_grpc.PrunerStub, timeout=timeout, **channel_kwargs)

    # ----- streams

    def create_session(
        self, layout, method=None, label: str = "", open_timeout: float = 30.0, on_event=None
    ) -> PrunerSession:
        """Opens a new session for `layout` (a Layout message) with `method` (a MethodConfig, a method name
        or None for the server's defaults). Returns once Opened arrived. Raises GcpruneError:
        INVALID_ARGUMENT for a bad layout or configuration (the message names the field), RESOURCE_EXHAUSTED
        for quotas; UnavailableError if the server cannot be reached within `open_timeout` seconds.

        `on_event(kind, payload)` is called from the reader thread for "masks" (Masks), "progress"
        (Progress), "error" (SessionError) and "ended" (GcpruneError or None)."""
        config = method if isinstance(method, common_pb2.MethodConfig) else method_config(method or "causal-v2")
        request = pruner_pb2.SessionRequest(
            open=pruner_pb2.OpenSession(create=pruner_pb2.NewSession(layout=layout, method=config, label=label))
        )
        return PrunerSession(self._stub, request, self._metadata, open_timeout, on_event)

    def resume_session(
        self,
        session_id: str,
        expected_layout=None,
        restart_iteration: bool = False,
        open_timeout: float = 30.0,
        on_event=None,
    ) -> PrunerSession:
        """Re-attaches to `session_id`. NOT_FOUND for an unknown id; FAILED_PRECONDITION if
        `expected_layout` differs from the stored one. The latest masks (if any) follow Opened and are
        available from `latest_masks` / `wait_masks`."""
        resume = pruner_pb2.ResumeSession(session_id=session_id, restart_iteration=restart_iteration)
        if expected_layout is not None:
            resume.expected_layout.CopyFrom(expected_layout)
        request = pruner_pb2.SessionRequest(open=pruner_pb2.OpenSession(resume=resume))
        return PrunerSession(self._stub, request, self._metadata, open_timeout, on_event)

    # ----- unary calls

    def get_session(self, session_id: str):
        """SessionInfo of `session_id`. NOT_FOUND / INVALID_ARGUMENT (empty id)."""
        return self._call("GetSession", self._stub.GetSession, pruner_pb2.GetSessionRequest(session_id=session_id))

    def list_sessions(self, state=None, page_size: int = 0) -> Iterator:
        """Every session (SessionInfo without layout), newest first, fetching pages as needed. `state` is a
        SessionState number or name ("COLLECTING", ...) to filter on."""
        if isinstance(state, str):
            state = pruner_pb2.SessionState.Value("SESSION_STATE_" + state.upper())
        token = ""
        while True:
            page = self._call(
                "ListSessions",
                self._stub.ListSessions,
                pruner_pb2.ListSessionsRequest(page_size=page_size, page_token=token, state=state or 0),
            )
            yield from page.sessions
            token = page.next_page_token
            if not token:
                return

    def delete_session(self, session_id: str, force: bool = False) -> None:
        """Deletes a session. NOT_FOUND; FAILED_PRECONDITION if a stream is attached and not `force`."""
        self._call(
            "DeleteSession",
            self._stub.DeleteSession,
            pruner_pb2.DeleteSessionRequest(session_id=session_id, force=force),
        )

    def get_masks(self, session_id: str, iteration: Optional[int] = None, layout=None) -> Masks:
        """The cumulative masks after `iteration` (None = the latest, 0 = all kept), assembled over pages.
        `layout` saves a GetSession call. NOT_FOUND for an iteration that has not completed."""
        if layout is None:
            layout = self.get_session(session_id).layout
        assembler = _MaskAssembler(layout)
        token = ""
        while True:
            request = pruner_pb2.GetMasksRequest(session_id=session_id, page_token=token)
            if iteration is not None:
                request.iteration = iteration
            page = self._call("GetMasks", self._stub.GetMasks, request)
            masks = assembler.add(page.masks)
            token = page.next_page_token
            if not token:
                if masks is None:
                    raise GcpruneError(grpc.StatusCode.INTERNAL, "GetMasks: the last page has no last_part")
                return masks

    def get_report(self, session_id: str):
        """SessionReport (per-iteration fits, sparsity, coefficient statistics). NOT_FOUND."""
        return self._call("GetReport", self._stub.GetReport, pruner_pb2.GetReportRequest(session_id=session_id))
