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
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

import pfcp
from edge_sites.telemetry.prometheus import (
    LoopCollector,
    MetricsServer,
    association_counts,
    pfcp_families,
)

from .config import MetricsConfig

if TYPE_CHECKING:
    from .agent import UpfAgent

__all__ = ["LoopCollector", "MetricsServer", "agent_families", "pfcp_families", "serve_metrics"]

log = logging.getLogger("user_plane.metrics")


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
#: The engine's rule drops, counted by reason (``forward.drop_gate``) and by direction too
#: (``forward.ul_drop_gate``, ``forward.dl_drop_gate``).
_RULE_DROPS = ("drop_far", "drop_gate", "drop_mbr", "drop_quota")
_DIRECTIONS = (("uplink", "ul_"), ("downlink", "dl_"))


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
        "edgecups_upf_dropped_packets", "Packets dropped, by direction, path and reason", labels=[*labels, "reason"]
    )
    directed = {f"{prefix}{reason}" for reason in _RULE_DROPS for _, prefix in _DIRECTIONS}
    for key, value in sorted(c.items()):
        if key.startswith("forward."):
            reason = key.removeprefix("forward.")
            if reason in _RULE_DROPS or reason in directed:
                continue  # below: by direction
            direction = "uplink" if reason.startswith("ul_") else "downlink" if reason.startswith("dl_") else "unknown"
            direction = "downlink" if reason.startswith("end_marker") else direction
            drops.add_metric([upf, direction, "python", reason], value)
        elif key.startswith("drop.") and key.removeprefix("drop.") in _DRIVER_DROPS:
            reason = key.removeprefix("drop.")
            drops.add_metric([upf, _DRIVER_DROPS[reason], "python", reason], value)
    for path, prefix, reasons in (("python", "forward.", _RULE_DROPS), ("ebpf", "ebpf.", _FASTPATH_DROPS)):
        for reason in reasons:
            keys = [f"{prefix}{reason}", *(f"{prefix}{d}{reason}" for _, d in _DIRECTIONS)]
            if any(key in counters for key in keys):  # counted once at least, or the fast path is there
                _directed_drops(drops, upf, path, reason, c[keys[0]], [c[key] for key in keys[1:]])
    fastpath = GaugeMetricFamily(
        "edgecups_upf_fastpath_sessions", "Sessions the eBPF fast path carries", labels=["upf"]
    )
    fastpath.add_metric([upf], c["ebpf.sessions"])
    return [n3_in, n3_out, packets, octets, drops, fastpath]


def _directed_drops(
    family: CounterMetricFamily, upf: str, path: str, reason: str, total: int, by_direction: list[int]
) -> None:
    """A rule drop's series per direction; what no direction accounts for (a driver that counts
    the reason alone; the software driver never has any) as direction ``unknown``."""
    for (direction, _), value in zip(_DIRECTIONS, by_direction, strict=True):
        family.add_metric([upf, direction, path, reason], value)
    if total > sum(by_direction):
        family.add_metric([upf, "unknown", path, reason], total - sum(by_direction))
