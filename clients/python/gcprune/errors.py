"""Exceptions of the gcprune Python clients: one base class carrying the gRPC status code."""

import grpc


class GcpruneError(Exception):
    """A failed gcprune call or stream.

    Attributes:
        code: the ``grpc.StatusCode`` (``grpc.StatusCode.UNKNOWN`` when there is none).
        message: the server's (or the client's) message, naming the field and the value.
    """

    def __init__(self, code, message):
        self.code = code if code is not None else grpc.StatusCode.UNKNOWN
        self.message = message or ""
        super().__init__("%s: %s" % (self.code.name, self.message))

    @classmethod
    def from_rpc_error(cls, error, context=""):
        """Wraps a ``grpc.RpcError`` (or any exception) raised by a call named ``context``."""
        code = error.code() if hasattr(error, "code") and callable(error.code) else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") and callable(error.details) else str(error)
        message = "%s: %s" % (context, details) if context else details
        if code == grpc.StatusCode.UNAVAILABLE:
            return UnavailableError(code, message)
        return cls(code, message)


class UnavailableError(GcpruneError):
    """A server could not be reached: UNAVAILABLE, or no connection within the deadline."""


class StubsMissingError(ImportError):
    """The generated gcprune.v1 modules are not importable: run clients/python/generate_stubs.sh."""
