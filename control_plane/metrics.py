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
  read belongs to the loop. The server, the collector and the PFCP families are the
  same as the UPF agent's (user_plane/metrics.py): the two planes may not import
  each other. deploy/grafana/README.md lists every metric with its labels.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import Connection, func, select

import pfcp
from db.models import Session, SessionState
from pfcp.association import AssociationState
from pfcp.endpoint import RTT_BUCKETS, PfcpEndpoint
from pfcp.events import Address
from pfcp.messages import MESSAGE_CLASSES

from .config import MetricsConfig
from .errors import CpError
from .inventory import Inventory
from .n4.peers import AssociationManager
from .services.sessions import SessionManager
from .services.views import SessionRequest, SessionView

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = [
    "ESTABLISHMENT_BUCKETS",
    "LoopCollector",
    "MeasuredSessionManager",
    "MetricsServer",
    "cp_families",
    "serve_metrics",
]

log = logging.getLogger("control_plane.metrics")

#: How long a scrape waits for the event loop before it fails (a stalled loop shows as a failed scrape).
SCRAPE_TIMEOUT = 10.0
#: Upper bounds (seconds) of the establishment latency buckets: a database commit and a PFCP
#: round trip at best, T1 x (N1 + 1) of an unanswered UPF at worst.
ESTABLISHMENT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ACCEPTED = int(pfcp.CauseValue.REQUEST_ACCEPTED)
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
        latency.add_metric([result, site, upf], _cumulative(histogram, ESTABLISHMENT_BUCKETS), histogram[-1])
        count = sum(histogram[:-1])
        total += count
        ok += count if result == "success" else 0
    requested.add_metric([], total)
    succeeded.add_metric([], ok)
    return [latency, requested, succeeded]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# -- the same as user_plane/metrics.py (the planes may not import each other) -------------------------


class LoopCollector:
    """A prometheus_client collector whose families are computed on ``loop``'s thread."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, families: Callable[[], Coroutine[Any, Any, list[Metric]]]
    ) -> None:
        self.loop = loop
        self.families = families

    def collect(self) -> Iterable[Metric]:
        if self.loop.is_closed():
            return []
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # the HTTP server's thread: no loop of its own
            running = None
        if running is self.loop:
            raise RuntimeError("collect() would wait for its own event loop: await families() there instead")
        future: concurrent.futures.Future[list[Metric]] = asyncio.run_coroutine_threadsafe(self.families(), self.loop)
        return future.result(SCRAPE_TIMEOUT)


class MetricsServer:
    """prometheus_client's HTTP server for one registry (``/metrics``; any path answers the same)."""

    def __init__(self, registry: CollectorRegistry, address: str, port: int) -> None:
        self.registry = registry
        self._httpd: WSGIServer
        self._httpd, self._thread = start_http_server(port, addr=address, registry=registry)

    @property
    def port(self) -> int:
        """The bound TCP port (the configured one, or the one the kernel chose for 0)."""
        return int(self._httpd.server_port)

    async def close(self) -> None:
        """Stop serving; ``shutdown`` waits for the server's poll loop, off the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def pfcp_families(
    endpoint: PfcpEndpoint,
    base: Mapping[str, str],
    peer_names: Sequence[str],
    peer_labels: Callable[[Address], Sequence[str]],
) -> list[Metric]:
    """The PFCP node's families from its endpoint's counters. ``base``: labels of every series;
    ``peer_names`` and ``peer_labels``: the labels naming a peer, and their values for one."""
    names, values = list(base), list(base.values())
    processed = CounterMetricFamily(
        "pfcp_messages_processed",
        "PFCP messages received (rx) and sent (tx), by type",
        labels=[*names, "direction", "type"],
    )
    replies = CounterMetricFamily(
        "pfcp_messages_replies",
        "PFCP responses received and sent, by type and Cause",
        labels=[*names, "direction", "type", "cause"],
    )
    for direction, counts, causes in (
        ("rx", endpoint.messages_received, endpoint.causes_received),
        ("tx", endpoint.messages_sent, endpoint.causes_sent),
    ):
        for t, count in enumerate(counts):
            if not count:
                continue
            processed.add_metric([*values, direction, _type_name(t)], count)
            if _has_cause(t):  # the endpoint counts the causes other than Request accepted
                rejected = {cause: n for (rt, cause), n in causes.items() if rt == t}
                by_cause = {_ACCEPTED: count - sum(rejected.values()), **rejected}
                for cause, n in sorted(by_cause.items()):
                    replies.add_metric([*values, direction, _type_name(t), _cause_name(cause)], n)
    out: list[Metric] = [processed, replies]
    seen: dict[Address, list[str]] = {}

    def labels(peer: Address) -> list[str]:
        if peer not in seen:
            seen[peer] = [*values, *peer_labels(peer)]
        return seen[peer]

    per_peer = [*names, *peer_names]
    for name, doc, counter in (
        ("pfcp_messages_retransmits", "Our PFCP requests sent again (T1 expired), by type", endpoint.retransmits),
        ("pfcp_messages_timeouts", "Our PFCP requests never answered (after N1 resends), by type", endpoint.timeouts),
        ("pfcp_messages_duplicates", "PFCP requests the peer sent again, by type", endpoint.duplicates),
    ):
        family = CounterMetricFamily(name, doc, labels=[*per_peer, "type"])
        for key, count in _summed(counter, lambda k: (*labels(k[0]), _type_name(k[1]))).items():
            family.add_metric(list(key), count)
        out.append(family)
    dropped = CounterMetricFamily(
        "pfcp_messages_dropped",
        "PFCP datagrams dropped or answered by the node alone, by reason",
        labels=[*per_peer, "reason"],
    )
    for key, count in _summed(endpoint.drops, lambda k: (*labels(k[0]), k[1])).items():
        dropped.add_metric(list(key), count)
    rtt = HistogramMetricFamily(
        "pfcp_peer_response_seconds", "Round trips of our PFCP requests sent once, by type", labels=[*per_peer, "type"]
    )
    timed: dict[tuple[str, ...], list[float]] = {}
    for peer, by_type in endpoint.round_trips.items():
        for t, histogram in enumerate(by_type):
            if histogram is not None:
                key = (*labels(peer), _type_name(t))
                timed[key] = [a + b for a, b in zip(timed[key], histogram, strict=True)] if key in timed else histogram
    for key, histogram in timed.items():
        rtt.add_metric(list(key), _cumulative(histogram, RTT_BUCKETS), histogram[-1])
    return [*out, dropped, rtt]


def _cumulative(histogram: list[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
    # Counted per bucket, then the sum; Prometheus wants cumulative counts up to each bound.
    out, total = [], 0.0
    for bound, count in zip((*bounds, float("inf")), histogram[:-1], strict=True):
        total += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), total))
    return out


def _summed(counter: Mapping[Any, int], key: Callable[[Any], tuple[str, ...]]) -> Counter[tuple[str, ...]]:
    # Two peers may map to the same labels (one address, two ports): Prometheus wants them summed.
    out: Counter[tuple[str, ...]] = Counter()
    for k, count in counter.items():
        out[key(k)] += count
    return out


def _type_name(t: int) -> str:
    try:
        return pfcp.MessageType(t).name.lower()
    except ValueError:
        return str(t)


def _cause_name(cause: int) -> str:
    try:
        return pfcp.CauseValue(cause).name.lower()
    except ValueError:
        return str(cause)


def _has_cause(t: int) -> bool:
    cls = MESSAGE_CLASSES.get(t)
    return cls is not None and not cls.REQUEST and any(spec.name == "cause" for spec in cls._SPECS)
