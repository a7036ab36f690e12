"""Dialing the edgecups.v1 API: TLS or loopback plaintext, a bearer token on every call, and its failures.

* :func:`open_channel`: TLS (mutual TLS with a client certificate) through
  :func:`control_plane.api.security.secure_channel`, or plaintext to loopback addresses
  and unix sockets only, where :class:`BearerToken` puts the token in each call's metadata
  (gRPC attaches call credentials to TLS channels only).
* :class:`BaseClient`: a channel and the mapping of a failed call to the
  :mod:`control_plane.errors` class the control plane raised; ``code`` keeps the status code
  that came over the wire (also UNAUTHENTICATED and the like, which no class stands for). A
  call that never got an answer raises :class:`Unreachable` instead, so "the server said no"
  and "no server" stay apart.

The service clients are in :mod:`control_plane.api.client`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf.message import Message

from control_plane.api.security import is_loopback, secure_channel
from control_plane.api.status import error_from_rpc
from control_plane.errors import CpError, InvalidArgument

__all__ = [
    "ApiCredentials",
    "BaseClient",
    "BearerToken",
    "Unreachable",
    "open_channel",
    "request_message",
    "target_host",
]

_M = TypeVar("_M", bound=Message)
_T = TypeVar("_T")

if TYPE_CHECKING:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
else:  # not subscriptable at run time
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor


class Unreachable(CpError):
    """The call never got an answer from the API: nothing listens, TLS failed, or the deadline passed."""

    code = "UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class ApiCredentials:
    """How to reach the API: TLS trusting ``ca`` (None: the system's roots), with ``cert``/``key``
    for mutual TLS, or ``plaintext`` (loopback and unix sockets only); ``token`` on every call.
    ``server_name`` is the name the server certificate must carry when the target uses another."""

    plaintext: bool = False
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None
    server_name: str | None = None


def target_host(target: str) -> str:
    """The host part of a gRPC target ("[::1]:50051" -> "::1"); a unix:PATH target as it is."""
    if target.startswith("unix:"):
        return target
    rest = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    if rest.startswith("["):
        return rest[1:].partition("]")[0]
    if rest.count(":") == 1:  # host:port; more colons is a bare IPv6 address
        return rest.partition(":")[0]
    return rest


class BearerToken(_UnaryUnary, _UnaryStream):
    """Adds ``authorization: Bearer <token>`` to every call, for plaintext channels.

    gRPC attaches call credentials only to TLS channels, so on loopback the token goes as metadata.
    """

    def __init__(self, token: str) -> None:
        self._pair = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._pair)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


def open_channel(target: str, credentials: ApiCredentials | None = None) -> grpc.aio.Channel:
    """A channel to the API at ``target``; plaintext without credentials. ValueError for plaintext
    to a host others can reach (the server refuses to serve it there, and a token would travel in clear)."""
    creds = credentials if credentials is not None else ApiCredentials(plaintext=True)
    if not creds.plaintext:
        return secure_channel(
            target, ca=creds.ca, cert=creds.cert, key=creds.key, token=creds.token, server_name=creds.server_name
        )
    if not is_loopback(target_host(target)):
        raise ValueError(
            f"plaintext to {target} refused: only loopback addresses and unix sockets are reached without TLS"
        )
    interceptors = [BearerToken(creds.token)] if creds.token is not None else []
    # grpc-stubs leave ClientInterceptor a placeholder type that must be cast.
    return grpc.aio.insecure_channel(target, interceptors=cast("list[Any]", interceptors))


def request_message(cls: type[_M], **fields: Any) -> _M:
    """A ``cls`` message with ``fields`` set (None ones left unset); InvalidArgument names a value that does not fit."""
    # protobuf refuses values its field type cannot hold (a TEID of 2**32) with a bare ValueError;
    # set fields one by one so the error names the field, as the server's would.
    message = cls()
    for name, value in fields.items():
        if value is None:
            continue
        try:
            setattr(message, name, value)
        except (TypeError, ValueError) as error:
            raise InvalidArgument(f"{value!r} does not fit the field: {error}", field=name) from None
    return message


class BaseClient:
    """A channel (its own, or one shared through ``channel=``, which the caller closes) and the error mapping."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        credentials: ApiCredentials | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._owned = channel is None
        self._channel = channel if channel is not None else open_channel(target, credentials)
        self._target = target
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owned:
            await self._channel.close(grace=None)

    def _error(self, error: grpc.aio.AioRpcError) -> CpError:
        code = error.code()
        # A server that answers leaves the channel READY; one never reached leaves it connecting or failed.
        never_answered = code == grpc.StatusCode.UNAVAILABLE and (
            self._channel.get_state() != grpc.ChannelConnectivity.READY
        )
        if never_answered or code == grpc.StatusCode.DEADLINE_EXCEEDED:
            failure: CpError = Unreachable(f"{self._target}: {error.details() or code.name}")
        else:
            failure = error_from_rpc(error)
        failure.code = code.name  # also for codes no class stands for (UNAUTHENTICATED...)
        return failure

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            raise self._error(error) from None
