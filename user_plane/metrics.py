"""Prometheus metrics of the UPF agent: ``/metrics`` over HTTP, read from live counters at scrape time.

Theory of operation:

* Nothing is counted for Prometheus on a hot path. Every value exists already and
  is read when Prometheus scrapes: PFCP messages, causes, retransmissions,
  timeouts, duplicates, drops and round trips from the PFCP endpoint's plain
  counters (pfcp/endpoint.py), associations from the endpoint, sessions from the
  agent's desired state, packets, octets and drops from the dataplane driver's
  counters (``SoftwareDriver.all_counters``: the Python path's and the eBPF fast
  path's), and the agent's own event counters.
* The HTTP server is prometheus_client's, on a thread of its own; a scrape asks the
  event loop for the families and waits for them (:class:`LoopCollector`): what the
  families read belongs to the loop, and reading it from another thread would race
  with the loop changing it (the fast path's session table, for one).
* Every series carries ``upf`` (this agent's Node ID), so one dashboard filters
  the control plane's view of a UPF and the UPF's own series with one variable.
  Metric names follow the field where they fit: open5gs' ``fivegs_*`` (with the
  ``_total`` suffix OpenMetrics requires of counters) and erGW's ``pfcp_*``.
  deploy/grafana/README.md lists every metric with its labels.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

import pfcp
from pfcp.association import AssociationState
from pfcp.endpoint import RTT_BUCKETS, PfcpEndpoint
from pfcp.events import Address
from pfcp.messages import MESSAGE_CLASSES

from .config import MetricsConfig

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from .agent import UpfAgent

__all__ = ["LoopCollector", "MetricsServer", "agent_families", "pfcp_families", "serve_metrics"]

log = logging.getLogger("user_plane.metrics")

#: How long a scrape waits for the event loop before it fails (a stalled loop shows as a failed scrape).
SCRAPE_TIMEOUT = 10.0

#: Driver drop counters (``drop.<reason>``) that count data packets, and their direction; the others
#: count signalling or events (``drop.unknown_teid`` is also the engine's ``ul_unknown_teid``).
_DRIVER_DROPS = {
    "n6_write_would_block": "uplink",
    "n6_write_error": "uplink",
    "n3_send_would_block": "downlink",
    "n3_send_error": "downlink",
    "no_n3_address_of_family": "downlink",
    "not_started": "downlink",
}
_ACCEPTED = int(pfcp.CauseValue.REQUEST_ACCEPTED)
#: The eBPF program's reason counters that are drops (the others are punts to the Python path).
_FASTPATH_DROPS = ("drop_gate", "drop_mbr", "drop_adjust")


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


def serve_metrics(agent: UpfAgent, config: MetricsConfig) -> MetricsServer:
    """Serve ``agent``'s metrics on ``config``'s address and port; raises OSError if it cannot bind."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    loop = asyncio.get_running_loop()

    async def families() -> list[Metric]:
        return agent_families(agent)

    registry.register(LoopCollector(loop, families))
    server = MetricsServer(registry, str(config.address), config.port)
    log.info("metrics (Prometheus) on %s port %d", config.address, server.port)
    return server


def agent_families(agent: UpfAgent) -> list[Metric]:
    """Every family of the agent, read now (call on the agent's event loop)."""
    upf = str(agent.config.node_id)
    out: list[Metric] = []
    sessions = GaugeMetricFamily("fivegs_upffunction_upf_sessionnbr", "PFCP sessions the UPF holds", labels=["upf"])
    sessions.add_metric([upf], agent.session_count)
    out.append(sessions)
    events = CounterMetricFamily(
        "edgecups_upf_agent_events", "What the agent did and refused, by event", labels=["upf", "event"]
    )
    for event, count in sorted(agent.counters.items()):
        events.add_metric([upf, event], count)
    out.append(events)
    all_counters = getattr(agent.driver, "all_counters", None)
    if callable(all_counters):
        out += dataplane_families(upf, all_counters())
    if agent.node is not None:
        endpoint = agent.node.endpoint
        base = {"function": "up", "upf": upf}
        out += pfcp_families(endpoint, base, ["remote"], lambda peer: [peer[0]])
        associations = GaugeMetricFamily("pfcp_associations", "PFCP associations by state", labels=[*base, "state"])
        for state, count in association_counts(endpoint).items():
            associations.add_metric([*base.values(), state], count)
        active = GaugeMetricFamily("pfcp_peers_active", "Associated PFCP peers", labels=list(base))
        active.add_metric(list(base.values()), sum(1 for a in endpoint.associations() if a.associated))
        out += [associations, active]
    return out


def dataplane_families(upf: str, counters: Mapping[str, int]) -> list[Metric]:
    """Packets, octets and drops from a software driver's merged counters (``all_counters``)."""
    c = Counter(counters)
    signalling_in = sum(v for k, v in c.items() if k.startswith("n3.rx."))
    signalling_out = sum(v for k, v in c.items() if k.startswith("n3.tx."))
    gpdu_in, gpdu_out = c["n3.rx"] - signalling_in, c["n3.tx"] - signalling_out
    n6_out = sum(v for k, v in c.items() if k.startswith("n6.") and k.endswith(".tx"))
    n3_in = CounterMetricFamily(
        "fivegs_ep_n3_gtp_indatapktn3upf", "GTP-U data packets received on N3 (both paths)", labels=["upf"]
    )
    n3_in.add_metric([upf], gpdu_in + c["ebpf.ul_packets"])
    n3_out = CounterMetricFamily(
        "fivegs_ep_n3_gtp_outdatapktn3upf", "GTP-U data packets sent on N3 (both paths)", labels=["upf"]
    )
    n3_out.add_metric([upf], gpdu_out + c["ebpf.dl_packets"])
    labels = ["upf", "direction", "path"]
    packets = CounterMetricFamily(
        "edgecups_upf_forwarded_packets", "Packets forwarded, by direction and path", labels=labels
    )
    octets = CounterMetricFamily(
        "edgecups_upf_forwarded_bytes", "Octets of the IP packets forwarded, by direction and path", labels=labels
    )
    for direction, (python_packets, python_bytes, ebpf) in {
        "uplink": (n6_out, c["ul_bytes"], "ul"),
        "downlink": (gpdu_out, c["dl_bytes"], "dl"),
    }.items():
        packets.add_metric([upf, direction, "python"], python_packets)
        packets.add_metric([upf, direction, "ebpf"], c[f"ebpf.{ebpf}_packets"])
        octets.add_metric([upf, direction, "python"], python_bytes)
        octets.add_metric([upf, direction, "ebpf"], c[f"ebpf.{ebpf}_bytes"])
    drops = CounterMetricFamily(
        "edgecups_upf_dropped_packets",
        "Packets dropped, by direction (unknown: a rule's drop the engine counts for both), path and reason",
        labels=[*labels, "reason"],
    )
    for key, value in sorted(c.items()):
        if key.startswith("forward."):
            reason = key.removeprefix("forward.")
            direction = "uplink" if reason.startswith("ul_") else "downlink" if reason.startswith("dl_") else "unknown"
            direction = "downlink" if reason.startswith("end_marker") else direction
            drops.add_metric([upf, direction, "python", reason], value)
        elif key.startswith("drop.") and key.removeprefix("drop.") in _DRIVER_DROPS:
            reason = key.removeprefix("drop.")
            drops.add_metric([upf, _DRIVER_DROPS[reason], "python", reason], value)
    for reason in _FASTPATH_DROPS:
        if f"ebpf.{reason}" in c:
            drops.add_metric([upf, "unknown", "ebpf", reason], c[f"ebpf.{reason}"])
    fastpath = GaugeMetricFamily(
        "edgecups_upf_fastpath_sessions", "Sessions the eBPF fast path carries", labels=["upf"]
    )
    fastpath.add_metric([upf], c["ebpf.sessions"])
    return [n3_in, n3_out, packets, octets, drops, fastpath]


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


def association_counts(endpoint: PfcpEndpoint) -> dict[str, int]:
    """How many of the endpoint's associations are in each state (every state listed)."""
    counts = {state.value: 0 for state in AssociationState}
    for association in endpoint.associations():
        counts[association.state.value] += 1
    return counts


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
