"""Start the northbound gRPC server (plaintext on loopback only, until TLS arrives).

Issue 6 adds the provisioning and status services, TLS and bearer tokens: they
come in as more servicers registered in :func:`_add_services` and as
credentials in :func:`start_api_server`, not as a second server.
"""

from __future__ import annotations

import ipaddress
import weakref

import grpc.aio

from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.sessions import SessionServicer
from control_plane.services.views import SessionApi

__all__ = ["PlaintextRefused", "bound_port", "start_api_server"]

_ports: weakref.WeakKeyDictionary[grpc.aio.Server, int] = weakref.WeakKeyDictionary()


class PlaintextRefused(ValueError):
    """The API was asked to listen in plaintext on an address other hosts can reach."""


def _is_loopback(address: str) -> bool:
    # A unix socket (unix:/path) is reachable only on this host, through its file permissions.
    if address == "localhost" or address.startswith("unix:"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _add_services(server: grpc.aio.Server, api: SessionApi) -> None:
    pb_grpc.add_SessionServiceServicer_to_server(SessionServicer(api), server)


async def start_api_server(api: SessionApi, address: str, port: int) -> grpc.aio.Server:
    """Serve edgecups.v1 on ``address``:``port`` (0 picks a free port: see :func:`bound_port`).

    Raises :class:`PlaintextRefused` unless ``address`` is loopback (sessions and,
    later, provisioning must not cross a network in clear text), and OSError when
    the address cannot be bound. The caller stops the server (``await server.stop(grace)``).
    """
    if not _is_loopback(address):
        raise PlaintextRefused(
            f"the API would listen on {address} without TLS; plaintext is served on loopback only "
            "(127.0.0.1, ::1, localhost). TLS arrives with the security configuration (issue 6)."
        )
    if not 0 <= port <= 65535:
        raise ValueError(f"API port {port} is outside 0..65535")
    # SO_REUSEPORT (gRPC's default) would let a second control plane bind the same port silently.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    _add_services(server, api)
    host = f"[{address}]" if ":" in address and not address.startswith("unix:") else address
    try:
        bound = server.add_insecure_port(address if address.startswith("unix:") else f"{host}:{port}")
    except RuntimeError as error:
        raise OSError(f"cannot listen on {host}:{port}: {error}") from error
    await server.start()
    _ports[server] = bound
    return server


def bound_port(server: grpc.aio.Server) -> int:
    """The TCP port a server from :func:`start_api_server` listens on (the free port when 0 was asked)."""
    try:
        return _ports[server]
    except KeyError:
        raise ValueError("this server was not started by start_api_server") from None
