"""The control plane process: database, N4 (PFCP), associations and the API, started in order.

:func:`serve` runs until ``shutdown`` is set (``edgecups cp`` sets it on SIGINT and
SIGTERM). Start-up order matters: the schema is checked before anything else (an
out-of-date database is refused with the command that fixes it); the inventory
and allocators are loaded before N4 listens; associations (and with them the
reconciliation of whatever a crash left half-done) start before the API takes
requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Final

import grpc

import pfcp
from db.engine import check_schema, make_engine
from edge_sites import gc_policy
from pfcp.aio import PfcpNode
from pfcp.endpoint import EndpointConfig
from pfcp.events import RequestReceived
from pfcp.transaction import RetransmitPolicy

from . import repo
from .api.provisioning import ProvisioningServicer
from .api.server import bound_port, start_api_server, stop_api_server
from .api.status_service import StatusServicer
from .config import CpConfig
from .inventory import Inventory
from .n4.peers import AssociationManager
from .provisioning import Provisioning
from .provisioning.feed import EventFeed
from .services.reports import handle_report
from .services.sessions import N4, SessionManager
from .store import Store

if TYPE_CHECKING:
    from .api.frontend.pool import WorkerPool
    from .api.security import ApiSecurity
    from .metrics import MetricsServer
    from .telemetry import CpTelemetry

__all__ = ["ControlPlane", "serve", "start"]

log = logging.getLogger("control_plane")


@dataclass
class ControlPlane:
    """A running control plane (what :func:`start` returns; tests and benchmarks drive it)."""

    config: CpConfig
    store: Store
    node: PfcpNode
    sessions: SessionManager
    associations: AssociationManager
    #: Provisioning changes (the API's, or a caller's own) keep ``sessions.inventory`` current.
    provisioning: Provisioning
    events: EventFeed
    api: grpc.aio.Server | None
    api_port: int | None
    #: Events out and UPF status in over MQTT (control_plane/telemetry.py); None without ``mqtt``.
    telemetry: CpTelemetry | None = None
    #: /metrics (control_plane/metrics.py); None without ``metrics``.
    metrics: MetricsServer | None = None
    #: The API's front-end processes (``api.workers``, control_plane/api/frontend); then ``api`` is None.
    api_workers: WorkerPool | None = None

    @property
    def inventory(self) -> Inventory:
        return self.sessions.inventory

    #: Whether :func:`start` acquired the process's GC policy (released by :meth:`stop`).
    manages_gc: bool = False

    async def stop(self) -> None:
        if self.manages_gc:
            self.manages_gc = False
            gc_policy.release()
        if self.metrics is not None:
            await self.metrics.close()
        if self.telemetry is not None:
            await self.telemetry.stop()  # sends what is buffered first (bounded)
        await self.events.close()  # ends Watch streams, so the API stops without waiting for them
        if self.api is not None:
            await stop_api_server(self.api, grace=1.0)
        if self.api_workers is not None:
            await self.api_workers.stop()
        await self.associations.stop()
        self.node.close()
        self.store.close()


#: Generation 0's GC threshold while the control plane runs (edge_sites.gc_policy): it
#: allocates many short-lived objects per establishment, most freed by reference counting.
#: bench/cp_sessions.py, 10,000 establishments: collections 2.2 s of the run at CPython's
#: default policy, well under 0.1 s with this.
YOUNG_GC_THRESHOLD: Final = 20_000


async def start(config: CpConfig, *, api: bool = True, manage_gc: bool = True) -> ControlPlane:
    """Start everything; raises SchemaOutOfDate, OSError (N4/API bind) and the like.

    ``manage_gc``: run :mod:`edge_sites.gc_policy` until :meth:`ControlPlane.stop` (what a
    server process wants; a test embedding several planes may leave the GC alone)."""
    engine = make_engine(config.database_url)
    try:
        check_schema(engine)
    except Exception:
        engine.dispose()
        raise
    store = Store(engine)
    try:
        # Block 0: read (or create) our identity without taking SEIDs.
        _, stamp = store.run_sync(lambda c: repo.reserve_seids(c, config.node_id, 0, int(time.time())))
        inventory = store.run_sync(Inventory.load)
    except BaseException:
        store.close()
        raise
    node_id = _node_id(config.node_id)
    endpoint = EndpointConfig(
        node_id=node_id,
        recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(stamp),
        cp_function_features=pfcp.CPFunctionFeatures(pfcp.CPFeatures(0)),
        retransmit=RetransmitPolicy(t1=config.timers.t1, n1=config.timers.n1),
        heartbeat_interval=config.timers.heartbeat_interval,
    )
    node = PfcpNode(endpoint)
    cp_address = str(config.n4_address)
    manager: type[SessionManager] = SessionManager
    if config.metrics is not None:
        from .metrics import MeasuredSessionManager  # prometheus_client is loaded only when configured

        manager = MeasuredSessionManager  # the same procedures, with the establishment latency measured
    sessions = manager(store, inventory, N4(node, config.node_id, cp_address), recovery_time_stamp=stamp)
    associations = AssociationManager(
        node, sessions, cp_address=cp_address, reassociate_interval=config.timers.reassociate_interval
    )
    sessions.associated = associations.associated
    node.on_event = associations.on_event

    def on_request(event: RequestReceived) -> Awaitable[pfcp.Message] | None:
        if isinstance(event.message, pfcp.SessionReportRequest):
            return handle_report(sessions, event)
        # Node Report, PFD management...: not served by this CP function.
        node.reject(event, pfcp.CauseValue.SERVICE_NOT_SUPPORTED)
        return None

    node.handler = on_request
    try:
        await node.start(cp_address, config.n4_port)
    except BaseException:
        store.close()
        raise
    log.info(
        "control plane %s: N4 on %s port %d, %d UPFs, %d pools, database %s",
        config.node_id,
        cp_address,
        config.n4_port,
        len(inventory.upfs),
        len(inventory.pools),
        engine.url.render_as_string(hide_password=True),
    )
    associations.start()
    provisioning = Provisioning(store, inventory, associations)
    events = EventFeed(store)
    telemetry = None
    if config.mqtt is not None:
        from .telemetry import CpTelemetry  # aiomqtt is loaded only when configured

        telemetry = CpTelemetry(
            config.mqtt,
            node_id=config.node_id,
            inventory=inventory,
            associations=associations,
            events=events,
            node=node,
            recovery_time_stamp=stamp,
            heartbeat_interval=config.timers.heartbeat_interval,
        )
        telemetry.start()
    cp = ControlPlane(config, store, node, sessions, associations, provisioning, events, None, None, telemetry)
    try:  # from here on, a failure stops what started (cp.stop) before it is raised
        if api and config.api_security is None:
            log.warning("no api section in the configuration: the northbound API is off")
        if api and config.api_security is not None:
            await _start_api(cp, config.api_security)
        if config.metrics is not None:
            from .metrics import serve_metrics

            cp.metrics = serve_metrics(config.metrics, node=node, sessions=sessions, associations=associations)
    except BaseException:
        await cp.stop()
        raise
    if manage_gc:
        # Last: the freeze at its start takes in everything start-up loaded (edge_sites.gc_policy).
        gc_policy.acquire(YOUNG_GC_THRESHOLD)
        cp.manages_gc = True
    return cp


async def _start_api(cp: ControlPlane, security: ApiSecurity) -> None:
    """The northbound API: gRPC in this process, or in ``api.workers`` front-end processes."""
    config = cp.config
    status = StatusServicer(cp.store, cp.inventory, cp.associations, cp.events)
    provisioning = ProvisioningServicer(cp.provisioning)
    if config.api_workers:
        from .api.frontend.pool import start_api_workers  # worker processes only when configured

        cp.api_workers = await start_api_workers(config, cp.sessions, provisioning, status)
        cp.api_port = cp.api_workers.port
        log.info(
            "API (gRPC) on %s port %d in %d front-end workers", config.api_address, cp.api_port, cp.api_workers.count
        )
        return
    cp.api = await start_api_server(
        cp.sessions,
        config.api_address,
        config.api_port,
        provisioning=provisioning,
        status=status,
        security=security,
    )
    cp.api_port = bound_port(cp.api)
    log.info("API (gRPC) on %s port %d", config.api_address, cp.api_port)


async def serve(config: CpConfig, shutdown: asyncio.Event) -> None:
    """Run the control plane until ``shutdown`` is set."""
    cp = await start(config)
    try:
        await shutdown.wait()
    finally:
        await cp.stop()


def _node_id(value: str) -> pfcp.NodeID:
    try:
        return pfcp.NodeID(ip_address(value))
    except ValueError:
        return pfcp.NodeID(value)
