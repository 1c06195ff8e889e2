"""Resumable background delivery of collection steps to a pruner session (PROTOCOL.md §4.3): a bounded
queue filled by the training thread, a sender thread that numbers, sends and keeps steps until they are
acknowledged, and reconnection with backoff and resumption after a dropped connection."""

import collections
import dataclasses
import logging
import queue
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import grpc
import numpy as np

from gcprune import wire
from gcprune._proto import pruner_pb2
from gcprune.errors import GcpruneError
from gcprune.pruner import (
    _DEFAULT_CHUNK_ELEMENTS,
    _FATAL_CODES,
    Masks,
    PrunerClient,
    PrunerSession,
    Step,
    _encode_chunks,
    _encode_step_requests,
)

_log = logging.getLogger("gcprune")


@dataclasses.dataclass
class _Pending:
    """A sent, not yet acknowledged step, kept for resending."""

    step: int
    attempt: int
    requests: List
    nbytes: int


@dataclasses.dataclass
class _StepItem:
    step: Step
    attempt: int


@dataclasses.dataclass
class _EndItem:
    iteration: int
    attempt: int
    weights: Optional[Sequence[Tuple[int, np.ndarray]]]


@dataclasses.dataclass
class _CloseItem:
    complete: bool


@dataclasses.dataclass
class _AbandonItem:
    attempt: int


class StepSender:
    """Streams the steps of one pruner session from a background thread, for training loops.

    Per collection: `begin_iteration(j)`, `submit(step)` per step (returns at once unless the bounded queue
    is full), `end_iteration(j)`, then `wait_masks(j, timeout)`. The sender thread creates the session (or
    resumes `session_id`), numbers the steps, sends them, keeps them until acknowledged and, when the stream
    drops, reconnects with exponential backoff, resumes and resends from Opened.next_step (PROTOCOL.md
    §4.3). If the server stays unreachable until the kept steps exceed `max_unacked_bytes`, or rejects them
    (FAILED_PRECONDITION / OUT_OF_RANGE), the collection attempt is given up: wait_masks returns None at
    once and the next connection restarts the iteration (ResumeSession.restart_iteration), so that the
    next attempt collects it afresh.

    `status` is "connecting", "connected", "disconnected" (retrying), "failed" (fatal error such as
    INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED or RESOURCE_EXHAUSTED: `last_error` says which, nothing
    more is sent) or "closed". Thread-safety: one training thread calls the public methods.
    """

    def __init__(
        self,
        client: PrunerClient,
        layout,
        method=None,
        *,
        label: str = "",
        session_id: Optional[str] = None,
        encoding="float32",
        queue_steps: int = 4,
        max_unacked_bytes: int = 512 << 20,
        backoff: Tuple[float, float] = (0.2, 5.0),
        open_timeout: float = 10.0,
        on_event: Optional[Callable] = None,
    ):
        """`client` is shared and not closed by the sender; `layout` a Layout message; `method` a
        MethodConfig, method name or None (causal-v2 defaults); `encoding` of the deltas on the wire;
        `on_event(kind, payload)` gets "status" (str), "masks" (Masks), "progress", "error" and "ended"
        from background threads."""
        self._client = client
        self._layout = layout
        self._method = method
        self._label = label
        self._encoding = wire.parse_encoding(encoding)
        self._max_unacked = max_unacked_bytes
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._on_event = on_event
        self._inbox: "queue.Queue" = queue.Queue(maxsize=max(1, queue_steps))
        self._cond = threading.Condition()
        self._session: Optional[PrunerSession] = None
        self._pending: "collections.deque[_Pending]" = collections.deque()
        self._pending_bytes = 0
        self._next_step = 0
        self._attempt = 0  # training thread: current collection attempt
        self._lost: set = set()  # attempts given up
        self._numbered_attempts: set = set()  # attempts with at least one numbered step
        self._restart = False
        self._ended: Optional[Tuple[int, int, List]] = None  # (iteration, last_step, weight requests)
        self._masks: Optional[Masks] = None
        self._stop = False
        self.session_id = session_id
        self.status = "connecting"
        self.last_error: Optional[str] = None
        self.completed_iterations = 0
        self.total_iterations = 0
        self.wants_steps = True
        self.wants_weights = False
        self.steps_sent = 0
        self.reconnects = 0
        self._thread = threading.Thread(target=self._run, name="gcprune-step-sender", daemon=True)
        self._thread.start()

    # ----- training thread

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    @property
    def current_iteration(self) -> int:
        """The iteration the server collects next (completed_iterations + 1)."""
        return self.completed_iterations + 1

    @property
    def finished(self) -> bool:
        """True once the session's last iteration has its masks."""
        return self.total_iterations > 0 and self.completed_iterations >= self.total_iterations

    @property
    def unacked_steps(self) -> int:
        with self._cond:
            return len(self._pending)

    @property
    def latest_masks(self) -> Optional[Masks]:
        with self._cond:
            return self._masks

    def wait_connected(self, timeout: float) -> bool:
        """Waits until a session stream is open. Returns False after `timeout` seconds or on failure."""
        with self._cond:
            self._cond.wait_for(lambda: self.status in ("connected", "failed", "closed"), timeout=timeout)
            return self.status == "connected"

    def begin_iteration(self, iteration: int) -> None:
        """Starts a collection attempt of `iteration` (the server's current_iteration)."""
        with self._cond:
            self._attempt += 1

    def submit(self, step: Step, timeout: Optional[float] = None) -> bool:
        """Queues a step of the current attempt; its `step` number is assigned by the sender thread. Blocks
        while the queue is full, i.e. while a connected server is slower than training. Returns False if
        the sender failed or closed, the attempt was given up, or the queue stayed full for `timeout` s."""
        with self._cond:
            attempt = self._attempt
            if attempt in self._lost:
                return False
        return self._put(_StepItem(step, attempt), timeout)

    def end_iteration(self, iteration: int, weights: Optional[Sequence[Tuple[int, np.ndarray]]] = None) -> None:
        """Queues IterationEnd for `iteration` after the attempt's steps; `weights` ((tensor_index, values)
        of the prunable tensors) are sent before it when the method wants them (magnitude)."""
        with self._cond:
            attempt = self._attempt
        self._put(_EndItem(iteration, attempt, weights), None)

    def abandon_iteration(self) -> None:
        """Gives up the current collection attempt (e.g. the training loop raised mid-epoch): its queued
        steps are dropped and, if some reached the server, the iteration is restarted at a reconnection,
        so that the next attempt starts from a clean iteration."""
        with self._cond:
            attempt = self._attempt
            self._lost.add(attempt)
            self._cond.notify_all()
        self._put(_AbandonItem(attempt), None)

    def attempt_lost(self) -> bool:
        """True if the current collection attempt was given up."""
        with self._cond:
            return self._attempt in self._lost

    def wait_masks(self, iteration: int, timeout: Optional[float]) -> Optional[Masks]:
        """The masks of `iteration` (or later), or None after `timeout` seconds, or at once if the current
        attempt was given up or the sender failed or closed."""
        with self._cond:
            self._cond.wait_for(
                lambda: (self._masks is not None and self._masks.iteration >= iteration)
                or self._attempt in self._lost
                or self.status in ("failed", "closed"),
                timeout=timeout,
            )
            if self._masks is not None and self._masks.iteration >= iteration:
                return self._masks
            return None

    def close(self, complete: bool = False, timeout: float = 30.0) -> None:
        """Waits (up to `timeout` seconds) for queued steps to be acknowledged, sends CloseSession(complete)
        if connected and stops the thread. The session stays resumable unless `complete`."""
        if self._thread.is_alive() and self._put(_CloseItem(complete), timeout):
            self._thread.join(timeout)
        with self._cond:
            self._stop = True
            session = self._session
            if self.status != "failed":
                self.status = "closed"
            self._cond.notify_all()
        if session is not None and not session.done:
            session.cancel()
        self._thread.join(1.0)

    def _put(self, item, timeout) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.status in ("failed", "closed") or self._stop:
                return False
            try:
                self._inbox.put(item, timeout=0.1)
                return True
            except queue.Full:
                if deadline is not None and time.monotonic() > deadline:
                    return False

    # ----- sender thread

    def _set_status(self, status: str, error: Optional[str] = None) -> None:
        with self._cond:
            changed = status != self.status
            self.status = status
            if error is not None:
                self.last_error = error
            self._cond.notify_all()
        if changed and self._on_event is not None:
            self._on_event("status", status)

    def _run(self) -> None:
        delay = self._backoff[0]
        next_attempt = 0.0
        while not self._stop:
            if self._session is None or self._session.done:
                if self._session is not None:
                    self._session_ended()
                if self.status == "failed":
                    break
                if time.monotonic() >= next_attempt:
                    if self._connect():
                        delay = self._backoff[0]
                    elif self.status == "failed":
                        break
                    else:
                        next_attempt = time.monotonic() + delay
                        delay = min(delay * 2, self._backoff[1])
            try:
                item = self._inbox.get(timeout=0.05)
            except queue.Empty:
                self._trim_acked()
                continue
            if isinstance(item, _CloseItem):
                self._finish(item.complete)
                break
            try:
                if isinstance(item, _StepItem):
                    self._handle_step(item)
                elif isinstance(item, _AbandonItem):
                    self._handle_abandon(item.attempt)
                else:
                    self._handle_end(item)
            except GcpruneError:
                pass  # the stream broke while sending: the next turn reconnects and resends
            self._trim_acked()
        with self._cond:
            self._cond.notify_all()

    def _connect(self) -> bool:
        try:
            if self.session_id is None:
                session = self._client.create_session(
                    self._layout, self._method, self._label, self._open_timeout, self._session_event
                )
            else:
                session = self._client.resume_session(
                    self.session_id,
                    expected_layout=self._layout,
                    restart_iteration=self._restart,
                    open_timeout=self._open_timeout,
                    on_event=self._session_event,
                )
        except GcpruneError as error:
            fatal = error.code in _FATAL_CODES
            if fatal:
                _log.warning("gcprune: cannot open the pruner session: %s", error)
            self._set_status("failed" if fatal else "disconnected", error.message)
            return False
        opened = session.opened
        with self._cond:
            if self.session_id is not None:
                self.reconnects += 1
            self._session = session
            self.session_id = opened.session_id
            self.completed_iterations = max(self.completed_iterations, opened.completed_iterations)
            self.total_iterations = opened.total_iterations
            self.wants_steps = opened.wants_steps
            self.wants_weights = opened.wants_weights
            self._restart = False
            while self._pending and self._pending[0].step < opened.next_step:
                self._drop_front()
            if not self._pending:
                # The server is the authority on numbering (after a restart it continues from here).
                self._next_step = opened.next_step
            resend = list(self._pending)
            ended = self._ended
        self._set_status("connected")
        try:
            for pending in resend:
                for request in pending.requests:
                    session.send(request)
            if ended is not None and ended[0] > self.completed_iterations:
                for request in ended[2]:
                    session.send(request)
                session.end_iteration(ended[0], ended[1])
        except GcpruneError:
            pass  # broken again: handled at the next turn
        return True

    def _session_event(self, kind, payload) -> None:
        if kind == "masks":
            with self._cond:
                if self._masks is None or payload.iteration >= self._masks.iteration:
                    self._masks = payload
                self.completed_iterations = max(self.completed_iterations, payload.iteration)
                self._cond.notify_all()
        if self._on_event is not None:
            self._on_event(kind, payload)

    def _session_ended(self) -> None:
        session, self._session = self._session, None
        error = session.error
        if error is None:
            self._set_status("disconnected", "the server ended the stream")
            return
        if error.code in _FATAL_CODES or error.code == grpc.StatusCode.ABORTED:
            _log.warning("gcprune: pruner session failed: %s", error)
            self._set_status("failed", error.message)
            return
        if error.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE):
            # The steps do not fit the session's state (e.g. sent while it was fitting, or a gap the
            # server cannot fill): give up their attempt and restart the iteration at the next connection.
            with self._cond:
                self._lost.update(p.attempt for p in self._pending)
                self._lost.add(self._attempt)
                self._pending.clear()
                self._pending_bytes = 0
                self._ended = None
                self._restart = True
                self._cond.notify_all()
        self._set_status("disconnected", error.message)

    def _drop_front(self) -> None:
        pending = self._pending.popleft()
        self._pending_bytes -= pending.nbytes

    def _trim_acked(self) -> None:
        session = self._session
        if session is None:
            return
        acked = session.acked_step
        with self._cond:
            while self._pending and self._pending[0].step <= acked:
                self._drop_front()

    def _connected_session(self) -> Optional[PrunerSession]:
        session = self._session
        return session if session is not None and not session.done else None

    def _handle_step(self, item: _StepItem) -> None:
        with self._cond:
            if item.attempt in self._lost:
                return
            item.step.step = self._next_step
            self._next_step += 1
        session = self._connected_session()
        chunk = session.chunk_elements if session is not None else _DEFAULT_CHUNK_ELEMENTS
        requests = _encode_step_requests(item.step, chunk, self._encoding)
        nbytes = sum(r.ByteSize() for r in requests)
        while self._pending and self._pending_bytes + nbytes > self._max_unacked:
            if self._connected_session() is None:
                self._give_up(item.attempt)
                return
            # Connected but behind: wait for acks (flow control) rather than drop.
            time.sleep(0.01)
            self._trim_acked()
        with self._cond:
            self._pending.append(_Pending(item.step.step, item.attempt, requests, nbytes))
            self._pending_bytes += nbytes
            self._numbered_attempts.add(item.attempt)
        self.steps_sent += 1
        session = self._connected_session()
        if session is not None:
            for request in requests:
                session.send(request)

    def _give_up(self, attempt: int, warn: bool = True) -> None:
        if warn:
            _log.warning(
                "gcprune: pruner unreachable with %d bytes of steps unacknowledged: this collection is "
                "dropped, the iteration will be collected again",
                self._pending_bytes,
            )
        with self._cond:
            self._lost.add(attempt)
            self._pending = collections.deque(p for p in self._pending if p.attempt != attempt)
            self._pending_bytes = sum(p.nbytes for p in self._pending)
            self._restart = True
            self._cond.notify_all()

    def _handle_abandon(self, attempt: int) -> None:
        self._give_up(attempt, warn=False)
        session = self._connected_session()
        if attempt in self._numbered_attempts and session is not None:
            # The server holds some of the attempt's steps: reconnect with restart_iteration.
            session.cancel()

    def _handle_end(self, item: _EndItem) -> None:
        with self._cond:
            if item.attempt in self._lost:
                self._cond.notify_all()
                return
        session = self._connected_session()
        weight_requests = []
        if item.weights:
            chunk = session.chunk_elements if session is not None else _DEFAULT_CHUNK_ELEMENTS
            weight_requests = [
                pruner_pb2.SessionRequest(
                    iteration_weights=pruner_pb2.IterationWeights(iteration=item.iteration, weights=chunks)
                )
                for chunks in _encode_chunks(item.weights, chunk, wire.FLOAT32)
            ]
        with self._cond:
            last_step = self._next_step - 1 if self.wants_steps else -1
            self._ended = (item.iteration, last_step, weight_requests)
        if session is not None:
            for request in weight_requests:
                session.send(request)
            session.end_iteration(item.iteration, last_step)

    def _finish(self, complete: bool) -> None:
        session = self._connected_session()
        if session is not None:
            try:
                if self._pending:
                    session.wait_acked(self._pending[-1].step, timeout=30.0)
                session.close(complete=complete)
            except GcpruneError as error:
                self.last_error = error.message
        self._set_status("closed")
