"""Prometheus exposition shared by the control plane and the UPF agent: the PFCP node's families,
read from its endpoint's plain counters, and the HTTP server that asks the event loop for them.

Both planes are PFCP nodes, and neither may import the other: what they expose alike lives here.
Nothing is counted for Prometheus on a hot path; values are read when Prometheus scrapes, on the
event loop that owns them (:class:`LoopCollector`). deploy/grafana/README.md lists the metrics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

import pfcp
from pfcp.association import AssociationState
from pfcp.endpoint import RTT_BUCKETS, PfcpEndpoint
from pfcp.events import Address
from pfcp.messages import MESSAGE_CLASSES

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["SCRAPE_TIMEOUT", "LoopCollector", "MetricsServer", "association_counts", "cumulative", "pfcp_families"]

#: How long a scrape waits for the event loop before it fails (a stalled loop shows as a failed scrape).
SCRAPE_TIMEOUT = 10.0
_ACCEPTED = int(pfcp.CauseValue.REQUEST_ACCEPTED)


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
        rtt.add_metric(list(key), cumulative(histogram, RTT_BUCKETS), histogram[-1])
    return [*out, dropped, rtt]


def association_counts(endpoint: PfcpEndpoint) -> dict[str, int]:
    """How many of the endpoint's associations are in each state (every state listed)."""
    counts = {state.value: 0 for state in AssociationState}
    for association in endpoint.associations():
        counts[association.state.value] += 1
    return counts


def cumulative(histogram: list[float], bounds: Sequence[float]) -> list[tuple[str, float]]:
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
