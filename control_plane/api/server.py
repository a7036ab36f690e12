"""Start the northbound gRPC server: sessions, provisioning and status, with TLS and tokens.

One server carries every edgecups.v1 service plus gRPC health checking and
reflection. Security comes from the ``api`` section of the configuration
(:class:`~control_plane.api.security.ApiSecurity`): TLS (mutual when a client CA
is set) with bearer tokens checked by :class:`~control_plane.api.auth.AuthInterceptor`,
or plaintext, which only a loopback address or a unix socket may serve.
"""

from __future__ import annotations

import weakref

import grpc.aio

from control_plane.api.auth import AuthInterceptor
from control_plane.api.generated.edgecups.v1 import provisioning_pb2, provisioning_pb2_grpc, status_pb2, status_pb2_grpc
from control_plane.api.generated.edgecups.v1 import sessions_pb2 as pb
from control_plane.api.generated.edgecups.v1 import sessions_pb2_grpc as pb_grpc
from control_plane.api.provisioning import ProvisioningServicer
from control_plane.api.security import (
    ApiSecurity,
    HealthServicer,
    add_api_port,
    add_standard_services,
    is_loopback,
)
from control_plane.api.sessions import SessionServicer
from control_plane.api.status_service import StatusServicer
from control_plane.services.views import SessionApi

__all__ = ["PlaintextRefused", "add_services", "bound_port", "start_api_server", "stop_api_server"]

_ports: weakref.WeakKeyDictionary[grpc.aio.Server, int] = weakref.WeakKeyDictionary()
_health: weakref.WeakKeyDictionary[grpc.aio.Server, HealthServicer] = weakref.WeakKeyDictionary()


class PlaintextRefused(ValueError):
    """The API was asked to listen in plaintext on an address other hosts can reach."""


def add_services(
    server: grpc.aio.Server,
    api: SessionApi,
    provisioning: ProvisioningServicer | None,
    status: StatusServicer | None,
) -> list[str]:
    """Register the edgecups.v1 servicers; the full names of the services added.

    The API front-end's core (control_plane.api.frontend.core) registers them through this too.
    """
    pb_grpc.add_SessionServiceServicer_to_server(SessionServicer(api), server)
    names = [pb.DESCRIPTOR.services_by_name["SessionService"].full_name]
    # Provisioning and status need a whole control plane (control_plane.app wires them);
    # a server over a SessionApi alone serves sessions only.
    if provisioning is not None:
        provisioning_pb2_grpc.add_ProvisioningServiceServicer_to_server(provisioning, server)
        names.append(provisioning_pb2.DESCRIPTOR.services_by_name["ProvisioningService"].full_name)
    if status is not None:
        status_pb2_grpc.add_StatusServiceServicer_to_server(status, server)
        names.append(status_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name)
    return names


async def start_api_server(
    api: SessionApi,
    address: str,
    port: int,
    *,
    provisioning: ProvisioningServicer | None = None,
    status: StatusServicer | None = None,
    security: ApiSecurity | None = None,
) -> grpc.aio.Server:
    """Serve edgecups.v1 on ``address``:``port`` (0 picks a free port: see :func:`bound_port`).

    ``security`` None means plaintext without tokens (tests, tools). Raises
    :class:`PlaintextRefused` for plaintext on an address other hosts can reach
    (sessions and provisioning must not cross a network in clear text), and OSError
    when the address cannot be bound. The caller stops the server (``await server.stop(grace)``).
    """
    security = security if security is not None else ApiSecurity(tls=None)
    if security.plaintext and not is_loopback(address):
        raise PlaintextRefused(
            f"the API would listen on {address} without TLS; plaintext is served on loopback only "
            "(127.0.0.1, ::1, localhost, unix:PATH): configure api.tls"
        )
    if not 0 <= port <= 65535:
        raise ValueError(f"API port {port} is outside 0..65535")
    # Tokens, when configured, are checked in plaintext too (loopback): a role is a role.
    interceptors = [AuthInterceptor(security.tokens)] if security.tokens else []
    # SO_REUSEPORT (gRPC's default) would let a second control plane bind the same port silently.
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
    names = add_services(server, api, provisioning, status)
    _health[server] = await add_standard_services(server, names)
    bound = add_api_port(server, address, port, security)
    await server.start()
    _ports[server] = bound
    return server


async def stop_api_server(server: grpc.aio.Server, grace: float = 1.0) -> None:
    """Say NOT_SERVING on health checks (load balancers stop sending), then stop."""
    health = _health.pop(server, None)
    if health is not None:
        await health.enter_graceful_shutdown()
    await server.stop(grace)


def bound_port(server: grpc.aio.Server) -> int:
    """The TCP port a server from :func:`start_api_server` listens on (the free port when 0 was asked)."""
    try:
        return _ports[server]
    except KeyError:
        raise ValueError("this server was not started by start_api_server") from None
