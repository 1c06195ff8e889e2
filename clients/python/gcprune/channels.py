"""gRPC channels to the gcprune servers: plaintext or TLS (optionally mutual), bearer token metadata,
keepalive settings that the servers accept, and the standard health check."""

import dataclasses
from typing import Optional, Sequence, Tuple

import grpc

from gcprune.errors import GcpruneError, UnavailableError

# The servers accept client pings at most every 10 s (PROTOCOL.md §3); 30 s keeps long streams alive.
_KEEPALIVE_MS = 30000
# Responses (MaskUpdate parts, reports) stay under gRPC's 4 MiB default; leave room for larger servers.
_MAX_RECEIVE_BYTES = 64 << 20


@dataclasses.dataclass
class ChannelConfig:
    """How to reach a gcprune server.

    Attributes:
        address: "host:port", e.g. "127.0.0.1:50052".
        token: bearer token sent as "authorization: Bearer <token>" on every call; None for none.
        tls: use TLS. With root_certificates None the system's roots verify the server.
        root_certificates: PEM bytes of the CA that signed the server's certificate.
        private_key, certificate_chain: PEM bytes of the client's key and certificate (mutual TLS).
        server_name_override: TLS host name to verify instead of the address's host (tests, IP addresses).
        max_reconnect_backoff_ms: cap on gRPC's reconnect backoff after connection failures (gRPC's own
            default is 120 s, far too long for a training loop waiting for a restarted server).
    """

    address: str
    token: Optional[str] = None
    tls: bool = False
    root_certificates: Optional[bytes] = None
    private_key: Optional[bytes] = None
    certificate_chain: Optional[bytes] = None
    server_name_override: Optional[str] = None
    max_reconnect_backoff_ms: int = 5000

    def metadata(self) -> Sequence[Tuple[str, str]]:
        """The call metadata: the authorization header when a token is set, else empty."""
        return (("authorization", "Bearer " + self.token),) if self.token else ()

    def channel(self) -> grpc.Channel:
        """Creates a new channel (not yet connected). The caller closes it."""
        options = [
            ("grpc.keepalive_time_ms", _KEEPALIVE_MS),
            ("grpc.keepalive_timeout_ms", 20000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),
            ("grpc.initial_reconnect_backoff_ms", min(1000, self.max_reconnect_backoff_ms)),
            ("grpc.max_reconnect_backoff_ms", self.max_reconnect_backoff_ms),
            # A server that restarts on the same address is found again only after a re-resolution, which
            # gRPC otherwise spaces by 30 s even for IP literals.
            ("grpc.dns_min_time_between_resolutions_ms", min(1000, self.max_reconnect_backoff_ms)),
        ]
        if not self.tls:
            return grpc.insecure_channel(self.address, options=options)
        if self.server_name_override:
            options.append(("grpc.ssl_target_name_override", self.server_name_override))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )
        return grpc.secure_channel(self.address, credentials, options=options)


def as_config(address_or_config, **kwargs) -> ChannelConfig:
    """A ChannelConfig from an address string (plus ChannelConfig keyword arguments) or a ChannelConfig."""
    if isinstance(address_or_config, ChannelConfig):
        if kwargs:
            return dataclasses.replace(address_or_config, **kwargs)
        return address_or_config
    if not isinstance(address_or_config, str) or not address_or_config:
        raise ValueError("address: expected 'host:port', got %r" % (address_or_config,))
    return ChannelConfig(address=address_or_config, **kwargs)


def wait_ready(channel: grpc.Channel, timeout: float, address: str = "") -> None:
    """Blocks until `channel` is connected. Raises UnavailableError after `timeout` seconds."""
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError as error:
        raise UnavailableError(
            grpc.StatusCode.UNAVAILABLE, "%s: no connection within %.1f s" % (address or "server", timeout)
        ) from error


def health_check(channel: grpc.Channel, service: str = "", timeout: float = 5.0, metadata=()) -> str:
    """Calls grpc.health.v1.Health/Check for `service` ("" = the whole server).

    Returns the serving status name: "SERVING", "NOT_SERVING" or "SERVICE_UNKNOWN" (a NOT_FOUND answer,
    i.e. the server does not know `service`). Raises UnavailableError if the server cannot be reached
    within `timeout` seconds, GcpruneError for any other failure (e.g. UNAUTHENTICATED).
    """
    from gcprune._proto import health_pb2  # generated; imported late so that this module loads without it

    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    try:
        response = check(health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return "SERVICE_UNKNOWN"
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise UnavailableError(grpc.StatusCode.UNAVAILABLE, "health check: no answer within %.1f s" % timeout)
        raise GcpruneError.from_rpc_error(error, "health check") from error
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


class ServiceClient:
    """What the clients of both services share: one channel from a ChannelConfig, the call metadata (bearer
    token), a default deadline for unary calls, health checking, and errors as GcpruneError."""

    #: The gRPC service whose health `health()` asks for by default.
    SERVICE = ""

    def __init__(self, address, stub_class, *, timeout: float = 30.0, **channel_kwargs):
        self.config: ChannelConfig = as_config(address, **channel_kwargs)
        self.timeout = timeout
        self._channel = self.config.channel()
        self._stub = stub_class(self._channel)
        self._metadata = self.config.metadata()

    def close(self) -> None:
        """Closes the channel; open streams end with CANCELLED."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def address(self) -> str:
        return self.config.address

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel is connected; UnavailableError after `timeout` seconds."""
        wait_ready(self._channel, timeout, self.address)

    def health(self, service: Optional[str] = None, timeout: float = 5.0) -> str:
        """The serving status of `service` (default: this client's service): "SERVING", "NOT_SERVING" or
        "SERVICE_UNKNOWN"."""
        return health_check(self._channel, self.SERVICE if service is None else service, timeout, self._metadata)

    def _call(self, name, method, request):
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise GcpruneError.from_rpc_error(error, name) from error

