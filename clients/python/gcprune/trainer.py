"""Client of the gcprune.v1 Trainer service: create runs from a RunSpec (a message or its JSON-form
dict), watch their events with automatic resumption, and fetch runs and reports."""

import time
from typing import Callable, Iterator, Mapping, Optional, Union

import grpc
from google.protobuf import json_format

from gcprune._proto import trainer_pb2, trainer_pb2_grpc
from gcprune.channels import ServiceClient
from gcprune.errors import GcpruneError, UnavailableError

_TERMINAL = (trainer_pb2.RUN_STATE_SUCCEEDED, trainer_pb2.RUN_STATE_FAILED, trainer_pb2.RUN_STATE_CANCELLED)


def run_spec(spec: Union[Mapping, "trainer_pb2.RunSpec"]) -> "trainer_pb2.RunSpec":
    """A RunSpec from a message (copied) or a dict in the proto's JSON form, e.g.
    {"model": {"preset": "lenet5"}, "data": {"name": "fashion-mnist", "trainSubset": 2048},
    "pretrain": {"epochs": 1, "batchSize": 64, "optimizer": {"learningRate": 0.01}}}.
    Raises ValueError naming the unknown field or bad value."""
    if isinstance(spec, trainer_pb2.RunSpec):
        copy = trainer_pb2.RunSpec()
        copy.CopyFrom(spec)
        return copy
    try:
        return json_format.ParseDict(dict(spec), trainer_pb2.RunSpec())
    except json_format.ParseError as error:
        raise ValueError("run spec: %s" % error) from error


def is_terminal(state: int) -> bool:
    """True for SUCCEEDED, FAILED and CANCELLED."""
    return state in _TERMINAL


class TrainerClient(ServiceClient):
    """Calls of the gcprune.v1.Trainer service on one channel. Every call raises GcpruneError with the
    server's status code and message (UnavailableError for UNAVAILABLE). Thread-safe."""

    SERVICE = "gcprune.v1.Trainer"

    def __init__(self, address, *, timeout: float = 30.0, **channel_kwargs):
        """`address` is "host:port" or a ChannelConfig; further ChannelConfig fields as keywords. `timeout`
        is the deadline of unary calls in seconds."""
        super().__init__(address, trainer_pb2_grpc.TrainerStub, timeout=timeout, **channel_kwargs)

    def create_run(self, spec, request_id: str = ""):
        """Starts a run; returns the Run. INVALID_ARGUMENT names the bad field; NOT_FOUND for a missing
        data set; RESOURCE_EXHAUSTED for the run quota. A repeated `request_id` returns the first run."""
        request = trainer_pb2.CreateRunRequest(spec=run_spec(spec), request_id=request_id)
        return self._call("CreateRun", self._stub.CreateRun, request)

    def get_run(self, run_id: str):
        """The Run. NOT_FOUND for an unknown id."""
        return self._call("GetRun", self._stub.GetRun, trainer_pb2.GetRunRequest(run_id=run_id))

    def list_runs(self, state=None, page_size: int = 0) -> Iterator:
        """Every run, newest first, fetching pages as needed; `state` filters (a RunState number or a name
        such as "RUNNING")."""
        if isinstance(state, str):
            state = trainer_pb2.RunState.Value("RUN_STATE_" + state.upper())
        token = ""
        while True:
            page = self._call(
                "ListRuns",
                self._stub.ListRuns,
                trainer_pb2.ListRunsRequest(page_size=page_size, page_token=token, state=state or 0),
            )
            yield from page.runs
            token = page.next_page_token
            if not token:
                return

    def cancel_run(self, run_id: str, reason: str = ""):
        """Cancels a queued or running run; returns the Run. FAILED_PRECONDITION if it already finished
        (SUCCEEDED or FAILED); NOT_FOUND for an unknown id."""
        return self._call("CancelRun", self._stub.CancelRun, trainer_pb2.CancelRunRequest(run_id=run_id, reason=reason))

    def get_run_report(self, run_id: str):
        """The RunReport (complete once the run SUCCEEDED). NOT_FOUND for an unknown id."""
        return self._call(
            "GetRunReport", self._stub.GetRunReport, trainer_pb2.GetRunReportRequest(run_id=run_id)
        )

    def watch_run(
        self, run_id: str, after_sequence: int = 0, reconnect_seconds: float = 60.0
    ) -> Iterator["trainer_pb2.RunEvent"]:
        """The run's events after `after_sequence`, live, until RunFinished (the last one yielded).

        A dropped stream (UNAVAILABLE, e.g. a server restart) is resumed from the last sequence seen, for
        up to `reconnect_seconds` of failed attempts; then UnavailableError. Other errors (NOT_FOUND, ...)
        are raised as GcpruneError."""
        last = after_sequence
        give_up_at = None
        delay = 0.2
        while True:
            call = self._stub.WatchRun(
                trainer_pb2.WatchRunRequest(run_id=run_id, after_sequence=last), metadata=self._metadata
            )
            try:
                for event in call:
                    give_up_at, delay = None, 0.2
                    last = max(last, event.sequence)
                    yield event
                    if event.WhichOneof("event") == "finished":
                        call.cancel()
                        return
                return  # OK without RunFinished: the run had finished before `after_sequence`
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE:
                    raise GcpruneError.from_rpc_error(error, "WatchRun") from error
                now = time.monotonic()
                give_up_at = give_up_at or now + reconnect_seconds
                if now > give_up_at:
                    raise UnavailableError(
                        grpc.StatusCode.UNAVAILABLE, "WatchRun: %s (for %.0f s)" % (error.details(), reconnect_seconds)
                    ) from error
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                call.cancel()

    def wait_run(
        self, run_id: str, on_event: Optional[Callable] = None, timeout: Optional[float] = None
    ):
        """Watches `run_id` until it ends, calling `on_event(event)` for each event; returns the final Run.
        Raises GcpruneError(DEADLINE_EXCEEDED) after `timeout` seconds (checked at each event; the run
        keeps going)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in self.watch_run(run_id):
            if on_event is not None:
                on_event(event)
            if deadline is not None and time.monotonic() > deadline:
                raise GcpruneError(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "wait_run: %s still running after %.0f s" % (run_id, timeout)
                )
        return self.get_run(run_id)
