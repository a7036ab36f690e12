"""The UPF agent's MQTT telemetry: status, periodic metrics and usage (edge_sites/telemetry).

Theory of operation:

* :class:`AgentTelemetry` is created by :meth:`UpfAgent.start <user_plane.agent.UpfAgent.start>`
  when the configuration has an ``mqtt`` section, once N4 listens (its Recovery Time Stamp is
  known), and stopped first by ``stop()``. The agent calls only :meth:`AgentTelemetry.usage`,
  which builds the messages and enqueues them: the PFCP path never waits on the broker.
* Status (``.../status``, retained, QoS 1): "online" (reason ``started``) is published on every
  connection; the Last Will registered with each connection is "offline" with reason
  ``connection-lost``, so the broker itself tells everyone when the agent dies or its link
  does; a clean stop publishes "offline" with reason ``stopped`` and disconnects cleanly.
* Metrics (``.../metrics``, QoS 0, every ``mqtt.interval`` seconds; only the newest waits while
  the broker is away): the session count and the dataplane's counters (cumulative since the
  agent started), see :func:`dataplane`.
* Usage (``.../usage``, QoS 1, buffered): one message per usage report the agent sends to the
  CP, in a Session Report Request, a Modification or a Deletion Response, with the CP SEID,
  URR ID and UR-SEQN a consumer deduplicates by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal

import pfcp
from edge_sites.telemetry import MqttConfig, encode
from edge_sites.telemetry.payloads import Counters, metrics_payload, status_payload, usage_payload
from edge_sites.telemetry.publisher import Outgoing, Publisher
from edge_sites.telemetry.topics import upf_topic

from .driver import UsageReport
from .session import SessionState

if TYPE_CHECKING:
    from .agent import UpfAgent

__all__ = ["AgentTelemetry", "dataplane"]

log = logging.getLogger("user_plane.telemetry")

UsageMessage = Literal["session-report", "modification", "deletion"]
State = Literal["online", "offline"]
Reason = Literal["started", "stopped", "connection-lost"]

# Drop reasons of the software driver by direction: the forwarding engine's ul_*/dl_*
# (malformed, unknown TEID or UE, no PDR, buffer, and the rule drops again by direction:
# ul_drop_gate...), the eBPF fast path's ul_drop_*/dl_drop_*, and the I/O towards N6 (uplink)
# or N3 (downlink).
_UPLINK_DROPS: Final = ("forward.ul_", "drop.n6_", "ebpf.ul_drop_")
_DOWNLINK_DROPS: Final = ("forward.dl_", "drop.n3_send_", "drop.no_n3_address", "ebpf.dl_drop_")
#: Rule drops counted in total (``forward.drop_gate``) and again by direction (``forward.ul_drop_gate``).
_SPLIT_DROPS: Final = ("forward.drop_", "ebpf.drop_")
_DROP_PREFIXES: Final = ("drop.", *_SPLIT_DROPS, *_UPLINK_DROPS, *_DOWNLINK_DROPS)


def dataplane(
    counters: Mapping[str, int], instances: Iterable[str]
) -> tuple[Counters, Counters, dict[str, tuple[Counters, Counters]], dict[str, int]]:
    """(uplink, downlink, per Network Instance (uplink, downlink), drops by reason) from a driver's counters.

    * Per direction, what the UPF forwarded, on the Python path and the eBPF fast path: uplink
      packets and octets written to N6 (``n6.<ni>.tx``, ``ul_bytes``, ``ebpf.ul_*``), downlink
      G-PDUs sent on N3 (``n3.tx`` less GTP-U signalling ``n3.tx.<what>``, ``dl_bytes``,
      ``ebpf.dl_*``). Octets are null when the driver does not count them on its Python path.
    * Per Network Instance, on both paths: uplink packets and octets written to its N6
      (``n6.<ni>.tx``, ``.tx_bytes``) and drops once the session's instance is known (a PDR whose
      FAR forwards to it, then quota, gate or MBR, or the N6 write failed: ``.ul_drops``);
      downlink packets and octets read from its N6 and sent at once in G-PDUs (``.dl_packets``,
      ``.dl_bytes``; buffered packets released later count in the totals only) and those read
      and dropped (``.dl_drops``); plus what the eBPF fast path forwarded and its QERs dropped
      for the sessions it carries in that instance (``ebpf.ni.<ni>.*``, see FastPath.counters).
      Null when the driver does not count them.
    * Drops: every drop adds up in its direction, rule drops (FAR DROP, gate, MBR, quota) too;
      ``drops`` has every drop counter by its own name, see :func:`drops_by_reason`.
    """
    drops = drops_by_reason(counters)
    per_instance: dict[str, tuple[Counters, Counters]] = {}
    written = 0
    for name in instances:
        tx = counters.get(f"n6.{name}.tx", 0)
        written += tx
        per_instance[name] = (
            _per_instance(counters, name, "ul", tx),
            _per_instance(counters, name, "dl", counters.get(f"n6.{name}.dl_packets", 0)),
        )
    signalling = sum(v for k, v in counters.items() if k.startswith("n3.tx."))
    sent = counters.get("n3.tx", 0) - signalling

    def octets(key: str, python_packets: int) -> int | None:
        # Zero packets on the Python path are zero octets, counted or not.
        if key not in counters and python_packets:
            return None
        return counters.get(key, 0) + counters.get(f"ebpf.{key}", 0)

    uplink: Counters = (
        written + counters.get("ebpf.ul_packets", 0),
        octets("ul_bytes", written),
        sum(v for k, v in drops.items() if k.startswith(_UPLINK_DROPS)),
    )
    downlink: Counters = (
        sent + counters.get("ebpf.dl_packets", 0),
        octets("dl_bytes", sent),
        sum(v for k, v in drops.items() if k.startswith(_DOWNLINK_DROPS)),
    )
    return uplink, downlink, per_instance, drops


def drops_by_reason(counters: Mapping[str, int]) -> dict[str, int]:
    """Every drop counter that is not zero, by its name; a rule drop by direction only
    (``forward.ul_drop_gate``, ``ebpf.dl_drop_mbr``: their total, ``forward.drop_gate``, is
    there only for what no direction accounts for, which a software driver never has)."""
    drops = {key: value for key, value in counters.items() if value and key.startswith(_DROP_PREFIXES)}
    for key in [k for k in drops if k.startswith(_SPLIT_DROPS)]:
        path, reason = key.split(".", 1)
        rest = drops[key] - counters.get(f"{path}.ul_{reason}", 0) - counters.get(f"{path}.dl_{reason}", 0)
        if rest > 0:
            drops[key] = rest
        else:
            del drops[key]
    return drops


def _per_instance(counters: Mapping[str, int], name: str, direction: Literal["ul", "dl"], packets: int) -> Counters:
    """One instance's one direction: the Python path's ``packets`` (and its octets and drops), plus
    the eBPF fast path's (``ebpf.ni.<name>.<direction>_*``)."""
    fast = f"ebpf.ni.{name}.{direction}_"
    total = packets + counters.get(f"{fast}packets", 0)
    octets = f"n6.{name}.{'tx' if direction == 'ul' else 'dl'}_bytes"
    # As for the direction totals: packets without octets mean a driver that does not count
    # per instance; one that counts octets per instance counts its drops too (absent: none yet).
    if octets not in counters and packets:
        return total, None, None
    return (
        total,
        counters.get(octets, 0) + counters.get(f"{fast}bytes", 0),
        counters.get(f"n6.{name}.{direction}_drops", 0) + counters.get(f"{fast}drops", 0),
    )


class AgentTelemetry:
    """One agent's publisher and metrics timer."""

    def __init__(self, agent: UpfAgent, config: MqttConfig) -> None:
        assert config.site is not None  # the agent's configuration requires it
        assert agent.node is not None, "started after N4"
        self.agent = agent
        self.config = config
        self.node_id = str(agent.config.node_id)
        self.site = config.site
        self.recovery_time_stamp = agent.node.endpoint.config.recovery_time_stamp.to_unix()
        self.features = tuple(pfcp.flag_names(agent.features))
        self._usage_topic = upf_topic(self.site, self.node_id, "usage")
        self._metrics_topic = upf_topic(self.site, self.node_id, "metrics")
        self._status_topic = upf_topic(self.site, self.node_id, "status")
        self.publisher = Publisher(
            config,
            client_id=f"edgecups-upf-{self.node_id}",
            will=self._status("offline", "connection-lost"),
            birth=lambda: self._status("online", "started"),
        )
        self._metrics: asyncio.Task[None] | None = None

    def _status(self, state: State, reason: Reason) -> Outgoing:
        payload = status_payload(
            state=state,
            reason=reason,
            node_id=self.node_id,
            site=self.site,
            time=time.time(),
            recovery_time_stamp=self.recovery_time_stamp,
            features=self.features,
        )
        return Outgoing(self._status_topic, encode(payload), qos=1, retain=True)

    def start(self) -> None:
        self.publisher.start()
        self._metrics = asyncio.get_running_loop().create_task(self._publish_metrics(), name="mqtt-metrics")

    async def stop(self) -> None:
        if self._metrics is not None:
            self._metrics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._metrics
            self._metrics = None
        await self.publisher.stop(final=self._status("offline", "stopped"))

    def usage(self, state: SessionState, message: UsageMessage, reports: Iterable[UsageReport]) -> None:
        """Queue one usage message per report (called by the agent as it sends them to the CP)."""
        now = time.time()
        for report in reports:
            payload = usage_payload(
                node_id=self.node_id,
                site=self.site,
                time=now,
                message=message,
                cp_seid=state.cp_f_seid.seid,
                up_seid=state.up_seid,
                urr_id=report.urr_id,
                ur_seqn=report.ur_seqn,
                trigger=pfcp.flag_names(report.trigger),
                start_time=report.start_time,
                end_time=report.end_time,
                ul_bytes=report.ul_bytes,
                dl_bytes=report.dl_bytes,
                ul_packets=report.ul_packets,
                dl_packets=report.dl_packets,
                duration=report.duration,
            )
            self.publisher.publish(self._usage_topic, encode(payload), qos=1)

    def metrics(self) -> bytes:
        """The metrics message for now."""
        driver = self.agent.driver
        read = getattr(driver, "all_counters", None)
        counters: Mapping[str, int] = read() if callable(read) else getattr(driver, "counters", {})
        uplink, downlink, per_instance, drops = dataplane(counters, self.agent.config.n6)
        payload = metrics_payload(
            node_id=self.node_id,
            site=self.site,
            time=time.time(),
            recovery_time_stamp=self.recovery_time_stamp,
            interval=self.config.interval,
            sessions=self.agent.session_count,
            uplink=uplink,
            downlink=downlink,
            network_instances=per_instance,
            drops=drops,
        )
        return encode(payload)

    async def _publish_metrics(self) -> None:
        while True:
            try:
                self.publisher.publish(self._metrics_topic, self.metrics(), qos=0)
            except Exception:  # a driver that cannot be read now must not end the timer
                log.exception("metrics could not be read")
            await asyncio.sleep(self.config.interval)
