"""Bearer tokens with roles for the northbound API: who may call which method.

Theory of operation:

* A caller presents ``authorization: Bearer <token>`` (RFC 6750 §2.1) on every call. The
  control plane keeps only the SHA-256 of each token (:class:`ApiToken`), so its token
  file grants nothing to whoever reads it.
* :class:`AuthInterceptor` runs before any handler, and before the request is even parsed:
  no token -> UNAUTHENTICATED "missing bearer token"; a token matching no hash ->
  UNAUTHENTICATED "invalid token"; a token none of whose roles the method needs ->
  PERMISSION_DENIED naming the roles needed and held.
* Which roles a method needs is a table of patterns (:data:`METHOD_ROLES`): an exact
  ``/pkg.Service/Method``, a method-name prefix ``/pkg.Service/Apply*``, or a service
  default ``/pkg.Service/*``; the longest matching pattern wins. A method that no pattern
  matches is refused to every token (fail closed): a new RPC stays closed until someone
  decides who may call it.
* Health checking and reflection (:data:`PUBLIC_SERVICES`) need no token: load balancers
  and ``grpcurl`` probe them without credentials, and they reveal nothing the .proto
  files do not.
* The handler sees the token's name through :func:`caller_name`, to log who did what.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import grpc
import grpc.aio

__all__ = [
    "METHOD_ROLES",
    "PUBLIC_SERVICES",
    "ROLES",
    "ApiToken",
    "AuthInterceptor",
    "caller_name",
    "required_roles",
    "set_caller_name",
    "token_sha256",
]

log = logging.getLogger("control_plane.api.auth")

#: operator provisions (and may do everything else), session manages sessions, viewer reads.
ROLES: Final = ("operator", "session", "viewer")

_OPERATOR: Final = frozenset({"operator"})
_SESSION: Final = frozenset({"session", "operator"})
_READ: Final = frozenset({"viewer", "session", "operator"})

#: Pattern -> roles any one of which lets a token call the method (see the module docstring).
METHOD_ROLES: Final[Mapping[str, frozenset[str]]] = {
    "/edgecups.v1.ProvisioningService/Apply*": _OPERATOR,
    "/edgecups.v1.ProvisioningService/Delete*": _OPERATOR,
    "/edgecups.v1.ProvisioningService/Drain*": _OPERATOR,
    "/edgecups.v1.ProvisioningService/Undrain*": _OPERATOR,
    "/edgecups.v1.ProvisioningService/Get*": _READ,
    "/edgecups.v1.ProvisioningService/List*": _READ,
    "/edgecups.v1.ProvisioningService/Describe*": _READ,
    "/edgecups.v1.SessionService/Create": _SESSION,
    "/edgecups.v1.SessionService/Modify": _SESSION,
    "/edgecups.v1.SessionService/Delete": _SESSION,
    "/edgecups.v1.SessionService/Get": _READ,
    "/edgecups.v1.SessionService/List": _READ,
    "/edgecups.v1.SessionService/Usage": _READ,
    # Status is read-only by design (UPF state, counts, the event Watch).
    "/edgecups.v1.StatusService/*": _READ,
}

#: Services any caller may use without a token.
PUBLIC_SERVICES: Final = frozenset(
    {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
)

_caller: ContextVar[str | None] = ContextVar("edgecups_api_caller", default=None)

if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:  # not subscriptable at run time
    _ServerInterceptor = grpc.aio.ServerInterceptor
    _Handler = grpc.RpcMethodHandler


def caller_name() -> str | None:
    """The name of the token the current API call presented (None outside an authenticated call)."""
    return _caller.get()


def set_caller_name(name: str | None) -> None:
    """Name the caller of the API call running in this task: for a call whose token a front-end
    worker checked (control_plane.api.frontend), so handlers see what they see in-process."""
    _caller.set(name)


def token_sha256(token: str) -> str:
    """The hex SHA-256 of a bearer token, as the token file stores it."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token the API accepts: its owner's name, its roles, and the SHA-256 of its secret."""

    name: str
    roles: frozenset[str]
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or not all(c in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"token {self.name!r}: sha256 must be 64 lowercase hex digits")
        if not self.roles or not self.roles <= set(ROLES):
            raise ValueError(f"token {self.name!r}: roles must be a non-empty subset of {', '.join(ROLES)}")

    def matches(self, digest: bytes) -> bool:
        """Whether ``digest`` (the SHA-256 of a presented token) is this token's, in constant time."""
        return hmac.compare_digest(bytes.fromhex(self.sha256), digest)


def _check_table(method_roles: Mapping[str, frozenset[str]]) -> list[tuple[str, frozenset[str]]]:
    rules: list[tuple[str, frozenset[str]]] = []
    for pattern, roles in method_roles.items():
        service, slash, method = pattern.removeprefix("/").partition("/")
        if not pattern.startswith("/") or not slash or not service or "*" in method[:-1]:
            raise ValueError(f"{pattern!r}: expected /pkg.Service/Method, /pkg.Service/Prefix* or /pkg.Service/*")
        # An empty set would read as "nobody" to some and "anybody" to others: public services are separate.
        unknown = roles - set(ROLES)
        if not roles or unknown:
            raise ValueError(f"{pattern!r}: roles must be a non-empty subset of {', '.join(ROLES)}")
        rules.append((pattern, roles))
    # Longest pattern first, so the first match is the most specific.
    rules.sort(key=lambda rule: len(rule[0].rstrip("*")), reverse=True)
    return rules


def required_roles(method: str, method_roles: Mapping[str, frozenset[str]] = METHOD_ROLES) -> frozenset[str] | None:
    """The roles that may call ``method`` ("/pkg.Service/Method"); None when no pattern names it."""
    return _lookup(method, _check_table(method_roles))


def _lookup(method: str, rules: Sequence[tuple[str, frozenset[str]]]) -> frozenset[str] | None:
    for pattern, roles in rules:
        if pattern == method or (pattern.endswith("*") and method.startswith(pattern[:-1])):
            return roles
    return None


def _bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    values = [value for key, value in metadata or () if key == "authorization"]
    if len(values) != 1:
        return None  # none, or several: which one would be meant?
    value = values[0].decode(errors="replace") if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.strip().partition(" ")
    # The auth-scheme is case-insensitive (RFC 7235 §2.1).
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


_FACTORIES: Final = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _kind(handler: _Handler | None) -> tuple[bool, bool]:
    if handler is None:
        return (False, False)
    return (handler.request_streaming, handler.response_streaming)


def _behavior(handler: _Handler) -> Callable[..., Any]:
    behavior = {
        (False, False): handler.unary_unary,
        (False, True): handler.unary_stream,
        (True, False): handler.stream_unary,
        (True, True): handler.stream_stream,
    }[_kind(handler)]
    if behavior is None:
        raise RuntimeError("a gRPC method handler without a behavior for its kind")
    return behavior


def _deny(handler: _Handler | None, method: str, code: grpc.StatusCode, details: str) -> _Handler:
    # Same streaming kind as the real handler, so the client sees a status rather than a protocol error;
    # no deserializer: an unauthenticated request is never parsed.
    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        log.warning("refused %s from %s: %s", method, context.peer(), details)
        await context.abort(code, details)

    return _FACTORIES[_kind(handler)](deny)


def _as_caller(behavior: Callable[..., Any], name: str) -> Callable[..., Any]:
    # gRPC picks how to run a handler by its function type (coroutine, async generator, plain
    # function in a thread, generator), so the wrapper must be of the same type.
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Any) -> Any:
            # No reset: each call runs in its own task (its own context), and an async generator may be
            # finalized in another context, where reset() would raise.
            _caller.set(name)
            async for response in behavior(request, context):
                yield response

        return stream
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: Any) -> Any:
            token = _caller.set(name)
            try:
                return await behavior(request, context)
            finally:
                _caller.reset(token)

        return call
    if inspect.isgeneratorfunction(behavior):

        def generate(request: Any, context: Any) -> Any:
            _caller.set(name)
            yield from behavior(request, context)

        return generate

    def run(request: Any, context: Any) -> Any:
        token = _caller.set(name)
        try:
            return behavior(request, context)
        finally:
            _caller.reset(token)

    return run


class AuthInterceptor(_ServerInterceptor):
    """grpc.aio server interceptor enforcing bearer tokens and roles (see the module docstring).

    ``method_roles`` maps patterns to roles (:data:`METHOD_ROLES` is the API's own table);
    ``public_services`` need no token. Raises ValueError for a malformed table.
    """

    def __init__(
        self,
        tokens: Iterable[ApiToken],
        method_roles: Mapping[str, frozenset[str]] = METHOD_ROLES,
        *,
        public_services: Iterable[str] = PUBLIC_SERVICES,
    ) -> None:
        self._tokens = tuple(tokens)
        self._rules = _check_table(method_roles)
        self._public = frozenset(public_services)

    def _authenticate(self, token: str) -> ApiToken | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        # Every entry is compared, so the time taken does not tell which entry (if any) matched.
        for entry in self._tokens:
            if entry.matches(digest):
                found = entry
        return found

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        method = handler_call_details.method
        if method.removeprefix("/").partition("/")[0] in self._public:
            return await continuation(handler_call_details)
        handler: _Handler | None = await continuation(handler_call_details)
        presented = _bearer(handler_call_details.invocation_metadata)
        if presented is None:
            return _deny(handler, method, grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        caller = self._authenticate(presented)
        if caller is None:
            return _deny(handler, method, grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        needed = _lookup(method, self._rules)
        if needed is None:
            details = f"{method} is not in the API's access table: no role may call it"
            return _deny(handler, method, grpc.StatusCode.PERMISSION_DENIED, details)
        if not needed & caller.roles:
            details = (
                f"{method} needs the role {' or '.join(sorted(needed))}; "
                f"token {caller.name!r} holds {', '.join(sorted(caller.roles))}"
            )
            return _deny(handler, method, grpc.StatusCode.PERMISSION_DENIED, details)
        if handler is None:
            return _deny(handler, method, grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served here")
        return _FACTORIES[_kind(handler)](
            _as_caller(_behavior(handler), caller.name),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
