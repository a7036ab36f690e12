"""Prometheus metrics of the control plane: ``/metrics`` over HTTP, read from live state at scrape time.

Theory of operation:

* What exists already is read when Prometheus scrapes, never counted again on a
  hot path: PFCP messages, causes, retransmissions, timeouts, duplicates, drops
  and round trips from the PFCP endpoint's plain counters (pfcp/endpoint.py),
  association states from the endpoint, UPF health and pool usage from the
  inventory, and sessions by state, site and UPF from the database (one
  ``GROUP BY`` through the store per scrape: the database is where states live).
* What exists nowhere else is measured here: the establishment latency, by
  :class:`MeasuredSessionManager` (``start`` uses it when ``metrics`` is configured),
  into plain bucket counts read at scrape time like the endpoint's.
* The HTTP server is prometheus_client's, on a thread of its own; a scrape asks the
  event loop for the families and waits (:class:`LoopCollector`): the state they
  read belongs to the loop. The server, the collector and the PFCP families are
  edge_sites/telemetry/prometheus.py's, shared with the UPF agent (user_plane/metrics.py):
  the two planes may not import each other. deploy/grafana/README.md lists every metric with its labels.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Connection, func, select

import pfcp
from db.models import Session, SessionState
from edge_sites.telemetry.prometheus import (
    LoopCollector,
    MetricsServer,
    cumulative,
    pfcp_families,
)
from pfcp.association import AssociationState
from pfcp.endpoint import PfcpEndpoint
from pfcp.events import Address

from .config import MetricsConfig
from .errors import CpError
from .inventory import Inventory
from .n4.peers import AssociationManager
from .services.sessions import SessionManager
from .services.views import SessionRequest, SessionView

__all__ = [
    "ESTABLISHMENT_BUCKETS",
    "LoopCollector",
    "MeasuredSessionManager",
    "MetricsServer",
    "cp_families",
    "serve_metrics",
]

log = logging.getLogger("control_plane.metrics")

#: Upper bounds (seconds) of the establishment latency buckets: a database commit and a PFCP
#: round trip at best, T1 x (N1 + 1) of an unanswered UPF at worst.
ESTABLISHMENT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_PFCP_PEER = ["remote", "upf", "site"]


class MeasuredSessionManager(SessionManager):
    """The session procedures, with the establishment latency measured (by result, site and UPF)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (result, site, UPF) -> establishments per bucket of ESTABLISHMENT_BUCKETS (the last: longer),
        #: then their sum in seconds. result: "success", or the error's class in snake case.
        self.establishments: dict[tuple[str, str, str], list[float]] = {}

    async def establish(self, request: SessionRequest) -> SessionView:
        started = time.perf_counter()
        result, site, upf = "error", "", ""
        try:
            view = await super().establish(request)
            result, site, upf = "success", view.site or "", view.upf or ""
            return view
        except CpError as exc:
            result = _snake(type(exc).__name__)
            raise
        except asyncio.CancelledError:
            result = "cancelled"
            raise
        finally:
            seconds = time.perf_counter() - started
            histogram = self.establishments.get((result, site, upf))
            if histogram is None:
                histogram = self.establishments[(result, site, upf)] = [0.0] * (len(ESTABLISHMENT_BUCKETS) + 2)
            histogram[bisect_left(ESTABLISHMENT_BUCKETS, seconds)] += 1
            histogram[-1] += seconds


def serve_metrics(
    config: MetricsConfig, *, node: pfcp.aio.PfcpNode, sessions: SessionManager, associations: AssociationManager
) -> MetricsServer:
    """Serve the control plane's metrics on ``config``'s address and port; raises OSError if it cannot bind."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)

    async def families() -> list[Metric]:
        return await cp_families(node.endpoint, sessions, associations)

    registry.register(LoopCollector(asyncio.get_running_loop(), families))
    server = MetricsServer(registry, str(config.address), config.port)
    log.info("metrics (Prometheus) on %s port %d", config.address, server.port)
    return server


async def cp_families(
    endpoint: PfcpEndpoint, sessions: SessionManager, associations: AssociationManager
) -> list[Metric]:
    """Every family of the control plane, read now (on the control plane's event loop)."""
    inventory = sessions.inventory
    counts = await sessions.store.run(_session_counts)
    out = [_sessions_family(inventory, counts), *_upf_families(inventory, associations), *_pool_families(inventory)]
    if isinstance(sessions, MeasuredSessionManager):
        out += _establishment_families(sessions.establishments)
    by_peer = {upf.peer: upf for upf in inventory.upfs.values()}

    def peer_labels(peer: Address) -> list[str]:
        upf = by_peer.get(peer)
        return [peer[0], upf.node_id if upf else "", upf.site if upf else ""]

    out += pfcp_families(endpoint, {"function": "cp"}, _PFCP_PEER, peer_labels)
    active = GaugeMetricFamily("pfcp_peers_active", "Associated PFCP peers", labels=["function"])
    active.add_metric(["cp"], sum(1 for a in endpoint.associations() if a.associated))
    out.append(active)
    return out


def _session_counts(conn: Connection) -> list[tuple[int | None, str, int]]:
    query = select(Session.upf_id, Session.state, func.count()).group_by(Session.upf_id, Session.state)
    return [(upf_id, str(state), int(count)) for upf_id, state, count in conn.execute(query)]


def _sessions_family(inventory: Inventory, counts: list[tuple[int | None, str, int]]) -> Metric:
    family = GaugeMetricFamily(
        "fivegs_smffunction_sm_sessionnbr", "PDU sessions by state, site and UPF", labels=["site", "upf", "state"]
    )
    # Every state of every UPF, so a series drops to 0 rather than vanishing.
    table: Counter[tuple[str, str, str]] = Counter(
        {(upf.site, upf.node_id, state.value): 0 for upf in inventory.upfs.values() for state in SessionState}
    )
    for upf_id, state, count in counts:
        upf = inventory.upfs.get(upf_id) if upf_id is not None else None
        table[(upf.site if upf else "", upf.node_id if upf else "", state)] += count
    for labels, count in sorted(table.items()):
        family.add_metric(list(labels), count)
    return family


def _upf_families(inventory: Inventory, associations: AssociationManager) -> list[Metric]:
    up = GaugeMetricFamily(
        "edgecups_cp_upf_up", "1 when the UPF is healthy (selectable), else 0", labels=["site", "upf"]
    )
    states = GaugeMetricFamily(
        "pfcp_associations",
        "PFCP association with each UPF: 1 for its state",
        labels=["function", "site", "upf", "state"],
    )
    for upf in sorted(inventory.upfs.values(), key=lambda u: u.node_id):
        up.add_metric([upf.site, upf.node_id], 1 if upf.health == "up" else 0)
        current = associations.association_state(upf)
        for state in AssociationState:
            states.add_metric(["cp", upf.site, upf.node_id, state.value], 1 if state.value == current else 0)
    return [up, states]


def _pool_families(inventory: Inventory) -> list[Metric]:
    labels = ["pool", "dnn", "site", "family"]
    used = GaugeMetricFamily("edgecups_cp_pool_used", "UE addresses (IPv6: prefixes) in use per pool", labels=labels)
    size = GaugeMetricFamily("edgecups_cp_pool_size", "UE addresses (IPv6: prefixes) a pool holds", labels=labels)
    for pool in sorted(inventory.pools.values(), key=lambda p: p.name):
        values = [pool.name, pool.dnn, pool.site or "", f"ipv{pool.family}"]
        used.add_metric(values, pool.allocator.used)
        size.add_metric(values, pool.allocator.size)
    return [used, size]


def _establishment_families(establishments: Mapping[tuple[str, str, str], list[float]]) -> list[Metric]:
    latency = HistogramMetricFamily(
        "edgecups_cp_session_establishment_seconds",
        "PDU session establishments, from request to answer (database and PFCP), by result",
        labels=["result", "site", "upf"],
    )
    requested = CounterMetricFamily("fivegs_smffunction_sm_pdusessioncreationreq", "PDU session establishments asked")
    succeeded = CounterMetricFamily("fivegs_smffunction_sm_pdusessioncreationsucc", "PDU sessions established")
    total = ok = 0.0
    for (result, site, upf), histogram in sorted(establishments.items()):
        latency.add_metric([result, site, upf], cumulative(histogram, ESTABLISHMENT_BUCKETS), histogram[-1])
        count = sum(histogram[:-1])
        total += count
        ok += count if result == "success" else 0
    requested.add_metric([], total)
    succeeded.add_metric([], ok)
    return [latency, requested, succeeded]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
