"""The association manager: one PFCP association per UPF in the database, kept up.

Theory of operation:

* One task per UPF associates with it (TS 29.244 §6.2.6: the CP function sets
  up the association before any session request), retrying every
  ``reassociate_interval`` (jittered) while the UPF is down or refuses.
* The Association Setup Request carries PFCP Session Retention Information
  naming our N4 address (§6.2.6.2.2, Rel-16): our sessions live in the database,
  so a restart of this process must not make a UPF drop them. Our Recovery Time
  Stamp is the database's, for the same reason (TS 23.007 §19A).
* On association: the UPF's features and Recovery Time Stamp are recorded; a
  stamp different from the one on record means the UPF restarted and lost its
  sessions, so every one is restored; otherwise only half-done ones are settled
  (:func:`control_plane.services.reconcile.reconcile_upf`).
* Heartbeats (the endpoint's) detect a lost UPF (PeerLost) or a restarted one
  (PeerRestarted: a newer stamp in a heartbeat). Lost: health ``down``, sessions
  ``lost``, failover where policy allows, and the task starts associating again.
  Restarted: it associates again at once, and restores.
* Health is kept in memory for selection and written to the database on change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Any

from sqlalchemy import Connection

import pfcp
from pfcp.aio import AssociationFailed, PfcpNode
from pfcp.association import AssociationState
from pfcp.events import (
    AssociationEstablished,
    AssociationReleased,
    Event,
    PeerLost,
    PeerRestarted,
)

from .. import repo
from ..inventory import UpfRecord
from ..services import reconcile
from ..services.sessions import SessionManager

__all__ = ["AssociationManager", "feature_names"]

log = logging.getLogger("control_plane.peers")


def feature_names(features: pfcp.UPFunctionFeatures | None) -> frozenset[str]:
    if features is None:
        return frozenset()
    return frozenset(pfcp.flag_names(features.value))


class AssociationManager:
    """Keeps an association with every UPF and reacts to their restarts and losses."""

    def __init__(
        self,
        node: PfcpNode,
        sessions: SessionManager,
        *,
        cp_address: str,
        reassociate_interval: float,
    ) -> None:
        self.node = node
        self.sessions = sessions
        self.cp_address = cp_address
        self.reassociate_interval = reassociate_interval
        self._wake: dict[int, asyncio.Event] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._released: set[asyncio.Task[Any]] = set()
        #: Reconciliations in progress or done, for tests and the API: upf id -> task.
        self.reconciling: dict[int, asyncio.Task[object]] = {}
        self._retention = self._retention_ie()

    def _retention_ie(self) -> pfcp.PFCPSessionRetentionInformation:
        address = ip_address(self.cp_address)
        entity = (
            pfcp.CPPFCPEntityIPAddress(ipv4=address)
            if address.version == 4
            else pfcp.CPPFCPEntityIPAddress(ipv6=address)
        )
        return pfcp.PFCPSessionRetentionInformation(cp_pfcp_entity_ip_address=(entity,))

    def start(self) -> None:
        for upf in self.sessions.inventory.upfs.values():
            self.watch(upf)

    def watch(self, upf: UpfRecord) -> None:
        """Start keeping an association with ``upf`` (a UPF added at run time, too)."""
        if upf.id in self._tasks:
            return
        self._wake[upf.id] = asyncio.Event()
        self._tasks[upf.id] = asyncio.get_running_loop().create_task(self._keep(upf), name=f"n4-{upf.node_id}")

    def release(self, upf: UpfRecord, peer: tuple[str, int] | None = None) -> None:
        """Stop keeping the association with ``upf`` (deleted, or moved from ``peer`` to a new N4 address)."""
        peer = upf.peer if peer is None else peer
        self._wake.pop(upf.id, None)
        for task in (self._tasks.pop(upf.id, None), self.reconciling.pop(upf.id, None)):
            if task is not None:
                task.cancel()
                self._released.add(task)  # awaited by stop()
                task.add_done_callback(self._released.discard)
        assoc = self.node.endpoint.association(peer)
        if assoc is not None and assoc.state is AssociationState.ASSOCIATED:
            self.node.release(peer)  # the UPF may drop our sessions (it has none: deletion needs that)

    def association_state(self, upf: UpfRecord) -> str:
        """The PFCP association with ``upf``: "idle", "setup-sent", "associated" or "releasing"."""
        assoc = self.node.endpoint.association(upf.peer)
        return AssociationState.IDLE.value if assoc is None else assoc.state.value

    async def stop(self) -> None:
        for task in [*self._tasks.values(), *self.reconciling.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks.values(), *self.reconciling.values(), *self._released, return_exceptions=True)
        self._tasks.clear()

    def associated(self, upf: UpfRecord) -> bool:
        assoc = self.node.endpoint.association(upf.peer)
        return assoc is not None and assoc.associated

    # -- the per-UPF task ---------------------------------------------------

    async def _keep(self, upf: UpfRecord) -> None:
        wake = self._wake[upf.id]
        while True:
            wake.clear()
            try:
                established = await self.node.associate(upf.peer, session_retention=self._retention)
            except (AssociationFailed, ConnectionError) as exc:
                await self.set_health(upf, "down", f"association failed: {exc}")
                delay = self.reassociate_interval * random.uniform(0.8, 1.2)
                # Woken early (the UPF restarted) or the delay is over: both mean try again.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
                continue
            await self._associated(upf, established)
            await wake.wait()  # set on PeerLost / PeerRestarted / release

    async def _associated(self, upf: UpfRecord, event: AssociationEstablished) -> None:
        stamp = event.info.recovery_time_stamp.to_unix()
        restarted = upf.recovery_time_stamp is not None and upf.recovery_time_stamp != stamp
        upf.features = feature_names(event.info.up_function_features)
        upf.recovery_time_stamp = stamp
        values = {"features": sorted(upf.features), "recovery_time_stamp": stamp, "last_seen_at": datetime.now(UTC)}

        def record(conn: Connection) -> None:
            repo.record_upf_state(conn, upf.id, values)
            if restarted:
                repo.insert_event(conn, "upf.restarted", upf_node_id=upf.node_id, detail={"stamp": stamp})

        await self.sessions.store.run(record)
        await self.set_health(upf, "up", "restarted" if restarted else "associated")
        task = asyncio.get_running_loop().create_task(
            reconcile.reconcile_upf(self.sessions, upf, restarted=restarted), name=f"reconcile-{upf.node_id}"
        )
        self.reconciling[upf.id] = task

    async def set_health(self, upf: UpfRecord, health: str, why: str) -> None:
        """Mark ``upf`` up or down (selection sees it at once), then record it (nothing if unchanged)."""
        if upf.health == health:
            return
        upf.health = health
        log.warning("UPF %s is %s (%s)", upf.node_id, health, why)
        await self.record_health(upf, health, why)

    async def record_health(self, upf: UpfRecord, health: str, why: str) -> None:
        """Store a health ``upf`` already has: its row, and the event that says why."""

        def record(conn: Connection) -> None:
            repo.record_upf_state(conn, upf.id, {"health": health})
            repo.insert_event(conn, f"upf.{health}", upf_node_id=upf.node_id, detail={"why": why})

        await self.sessions.store.run(record)

    # -- endpoint events ------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The PFCP node's events (PfcpNode on_event)."""
        if isinstance(event, PeerLost | PeerRestarted | AssociationReleased):
            upf = self._upf_at(event.peer)
            if upf is None:
                return
            task = asyncio.get_running_loop().create_task(self._lost(upf, event), name=f"lost-{upf.node_id}")
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _lost(self, upf: UpfRecord, event: PeerLost | PeerRestarted | AssociationReleased) -> None:
        if isinstance(event, PeerRestarted):
            log.warning("UPF %s restarted (newer Recovery Time Stamp): associating again", upf.node_id)
        else:
            await self.set_health(upf, "down", type(event).__name__)
            marked = await reconcile.mark_lost(self.sessions, upf)
            log.warning("UPF %s lost: %d sessions marked lost", upf.node_id, marked)
            moved = await reconcile.fail_over(self.sessions, upf)
            if moved:
                log.warning("UPF %s: failover %s", upf.node_id, dict(moved))
        wake = self._wake.get(upf.id)
        if wake is not None:  # None: released meanwhile (deleted, or moved to another address)
            wake.set()

    def _upf_at(self, peer: tuple[str, int]) -> UpfRecord | None:
        for upf in self.sessions.inventory.upfs.values():
            if upf.peer == peer:
                return upf
        return None
