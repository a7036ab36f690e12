"""The control plane's MQTT side: its events out, the UPFs' status in (edge_sites/telemetry).

Theory of operation:

* Events: every row of the events table (what ``edgecups events`` and Watch show: session and
  UPF lifecycle, provisioning) is published under ``edgecups/v1/events/<kind as levels>`` (QoS 1,
  buffered while the broker is away), read with the same :class:`EventFeed` the API's Watch
  uses: rows are written in the transactions that made them happen, so nothing is published that
  did not commit, and the feed's id order means nothing is skipped.
* UPF status, a second health signal beside PFCP heartbeats. The control plane subscribes to
  ``edgecups/v1/sites/+/upfs/+/status``. The rule:

  - an "offline" status (the Last Will the broker publishes when an agent dies or loses its
    link, or a clean stop) marks the UPF ``down`` at once, so selection skips it without
    waiting for heartbeats to time out (an event ``upf.down`` says why). Its sessions are not
    touched: that stays PFCP's decision (a lost association marks them lost, fails them over);
  - it is ignored when it comes from another branch than the UPF's provisioned site (a site may
    only speak for its own UPFs), or from another run of the agent (its Recovery Time Stamp is
    not the one of the current association: a stale retained message);
  - only PFCP makes such a UPF healthy again: a new association (the association manager), or
    a Heartbeat Request the control plane sends it, right away and then every heartbeat
    interval while the association lasts, answered with the same Recovery Time Stamp (the
    agent is alive: only its MQTT link went away). An "online" status triggers that heartbeat
    at once; it never marks a UPF up by itself. A heartbeat answered with a newer stamp is a
    restarted UPF: PFCP's restart handling re-associates and restores it. For the same reason an
    "online" status of a new run of a UPF still associated here triggers a heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

import pfcp
from edge_sites.telemetry import MqttConfig, PayloadError, decode, encode
from edge_sites.telemetry.payloads import event_payload
from edge_sites.telemetry.publisher import Publisher
from edge_sites.telemetry.topics import STATUS_FILTER, event_topic, parse_upf_topic
from pfcp.aio import PfcpNode, RequestTimeout

from .errors import ResourceExhausted
from .inventory import Inventory, UpfRecord
from .n4.peers import AssociationManager
from .provisioning.feed import EventFeed, EventView

__all__ = ["CpTelemetry"]

log = logging.getLogger("control_plane.telemetry")


class CpTelemetry:
    """Publishes the control plane's events; takes the UPFs' MQTT status as a health signal."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        node_id: str,
        inventory: Inventory,
        associations: AssociationManager,
        events: EventFeed,
        node: PfcpNode,
        recovery_time_stamp: int,
        heartbeat_interval: float,
    ) -> None:
        self.inventory = inventory
        self.associations = associations
        self.events = events
        self.node = node
        self.heartbeat_interval = heartbeat_interval
        stamp = pfcp.RecoveryTimeStamp.from_unix(recovery_time_stamp)
        self._heartbeat = pfcp.HeartbeatRequest(recovery_time_stamp=stamp)
        self.publisher = Publisher(
            config, client_id=f"edgecups-cp-{node_id}", subscriptions=(STATUS_FILTER,), on_message=self._on_message
        )
        #: UPFs marked down by an MQTT status and probed with heartbeats: upf id -> wake-up.
        self._probing: dict[int, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self.publisher.start()
        self._spawn(self._forward_events(), "mqtt-events")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.publisher.stop()

    def _spawn(self, work: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- events out ---------------------------------------------------------------------------

    async def _forward_events(self) -> None:
        since: int | None = None  # None: from what is recorded next
        while True:
            try:
                # watch() is an async generator: closed here, its watcher leaves the feed at once.
                stream = cast(AsyncGenerator[EventView, None], self.events.watch((), since))
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        since = event.id
                        self.publish_event(event)
                return  # the feed closed: the control plane is stopping
            except ResourceExhausted:
                log.warning("MQTT: events fell behind; resuming after event %s", since)
            except Exception:
                log.exception("MQTT: reading events failed; resuming after event %s", since)
                await asyncio.sleep(1.0)

    def publish_event(self, event: EventView) -> None:
        try:
            topic = event_topic(event.kind)
        except ValueError as exc:
            log.warning("MQTT: event %d not published: %s", event.id, exc)
            return
        payload = event_payload(
            id=event.id,
            at=event.at.isoformat(),
            kind=event.kind,
            supi=event.supi,
            upf=event.upf,
            session_id=event.session_id,
            detail=event.detail,
        )
        self.publisher.publish(topic, encode(payload), qos=1)

    # -- UPF status in -------------------------------------------------------------------------

    def _on_message(self, topic: str, data: bytes) -> None:
        parsed = parse_upf_topic(topic)
        if parsed is None or parsed.leaf != "status":
            return
        try:
            status = decode("status", data)
        except PayloadError as exc:
            log.warning("MQTT: status on %s ignored: %s", topic, exc)
            return
        upf = self.inventory.upf_by_node.get(parsed.node_id)
        if upf is None:
            return  # not provisioned (yet): association will decide when it is
        if upf.site != parsed.site or status["node_id"] != upf.node_id or status["site"] != upf.site:
            log.warning("MQTT: status on %s ignored: UPF %s belongs to site %s", topic, upf.node_id, upf.site)
            return
        same_run = upf.recovery_time_stamp is None or status["recovery_time_stamp"] == upf.recovery_time_stamp
        if status["state"] == "offline":
            if same_run:  # else another run than the one associated: stale (retained, or late)
                self._offline(upf, status["reason"])
        elif (wake := self._probing.get(upf.id)) is not None:
            wake.set()  # "online" (this run or a restarted one): ask PFCP now
        elif not same_run and self.associations.associated(upf):
            # Restarted while still associated here: a heartbeat now lets PFCP see the new
            # Recovery Time Stamp (PeerRestarted: re-association, sessions restored) at once.
            self._spawn(self._heartbeat_now(upf), f"mqtt-heartbeat-{upf.node_id}")

    def _offline(self, upf: UpfRecord, reason: str) -> None:
        if upf.health != "up" or upf.id in self._probing:
            return  # already down or unknown: PFCP already keeps it out of selection
        upf.health = "down"  # at once: the next selection skips it
        self._probing[upf.id] = asyncio.Event()
        log.warning("UPF %s is down (MQTT status offline: %s)", upf.node_id, reason)
        self._spawn(self._probe(upf, f"MQTT status offline ({reason})"), f"mqtt-probe-{upf.node_id}")

    async def _probe(self, upf: UpfRecord, why: str) -> None:
        wake = self._probing[upf.id]
        try:
            await self.associations.record_health(upf, "down", why)  # marked down by _offline
            while upf.health == "down" and self.associations.associated(upf):
                wake.clear()
                try:
                    response = await self.node.request(upf.peer, self._heartbeat)
                except (RequestTimeout, ConnectionError):
                    response = None
                if isinstance(response, pfcp.HeartbeatResponse):
                    if upf.health == "down" and self.associations.associated(upf):
                        if response.recovery_time_stamp.to_unix() == upf.recovery_time_stamp:
                            answered = "PFCP heartbeat answered after the MQTT status offline"
                            await self.associations.set_health(upf, "up", answered)
                    return  # else a restart (newer stamp): PFCP re-associates and marks it up
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.heartbeat_interval)
        finally:
            self._probing.pop(upf.id, None)

    async def _heartbeat_now(self, upf: UpfRecord) -> None:
        with contextlib.suppress(RequestTimeout, ConnectionError):
            await self.node.request(upf.peer, self._heartbeat)
