"""The UPF agent: the PFCP UP function between the CP functions and a dataplane driver.

Theory of operation:

* One :class:`pfcp.aio.PfcpNode` answers N4. Associations, heartbeats and
  retransmissions are the endpoint's; session requests from a peer without an
  association get cause 72 there, before reaching the agent. Every session
  request reaches the node's default handler (no per-session handlers: one dict
  lookup by SEID here costs less memory than one closure per session).
* The agent's session table is the **desired state**: UP SEID -> the
  :class:`~user_plane.session.SessionState` and the CP Node ID that owns it.
  A request is validated completely by :mod:`user_plane.session` (all or
  nothing), then handed to the driver as a whole new state; the table changes
  only once the driver accepted it. :meth:`UpfAgent.resync` makes the driver's
  actual state (``driver.installed()``) equal to the table again, e.g. after a
  dataplane restart.
* Causes (TS 29.244 Table 8.2.1-1) decided here rather than in session.py:
  75 No resources available beyond ``capacity.max_sessions`` (the issue text
  says 73 for this; 73 is Rule creation/modification Failure in the spec, 75 is
  the spec's "No resources available"); 65 Session context not found for an
  unknown SEID, SEID 0, or a session another CP owns (§7.5.4, §7.5.6; header
  SEID 0 as §7.2.2.4.2 says when the peer's SEID is unknown); when the driver
  refuses a validated state (:class:`~user_plane.driver.DriverError`), 73 Rule
  creation/modification failure with the Failed Rule ID (§7.5.3.1, §8.2.80) if
  the error names the rule it cannot apply (a TEID or UE address another session
  owns, an unsupported form), else 77 System failure (the dataplane failed).
* Peer restarts (TS 23.007 §19A, TS 29.244 §6.2.6.2.2): a newer Recovery Time
  Stamp from a CP, a repeated Association Setup Request from an associated Node
  ID without PFCP Session Retention Information, or an Association Release from
  the CP (§6.2.8): its sessions are purged (removed from the driver, IDs
  released). A CP lost to unanswered heartbeats keeps its sessions forwarding
  for ``timers.cp_lost_grace`` (an edge site's backhaul may just be down); if it
  associates again with the same Recovery Time Stamp it did not restart and
  keeps them, else they are purged.
* Session retention (§6.2.6.2.2, Rel-16): an Association Setup Request with PFCP
  Session Retention Information from a CP with a live or lost association
  replaces the association whatever its Recovery Time Stamp, keeps the CP's
  sessions whose CP F-SEID address is among the CP PFCP Entity IP Addresses
  (all of them when the IE lists none) and deletes the others.
* A Session Establishment Request whose CP F-SEID SEID is already held by a
  session of the same CP replaces that session: the CP persisted the session,
  crashed before the answer and re-sends it with a new sequence number (so the
  §6.4 duplicate detection does not see it); two sessions with one CP SEID would
  make the CP's reports ambiguous. The new rules are validated first (a
  rejection keeps the old session), then the old session leaves the driver and
  the new one is installed; if the driver refuses it, the old one is installed
  again (or, if that fails too, forgotten: both are logged).
* Dataplane events become Session Report Requests (§7.5.8) to the address of
  the owning CP's association, header SEID = the CP's F-SEID. A response with
  cause 65 means the CP has no such session: no CP can ever modify or delete
  it, so the agent removes it locally and logs it (TS 29.244 leaves the UP's
  reaction open; this choice trades a possible lost report for no leak).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING, Any

import pfcp
from edge_sites import gc_policy
from pfcp.aio import PfcpNode, RequestTimeout
from pfcp.endpoint import EndpointConfig
from pfcp.events import (
    Address,
    AssociationEstablished,
    AssociationReleased,
    Event,
    PeerLost,
    PeerRestarted,
    RequestReceived,
)
from pfcp.messages import Message

from . import alloc
from .config import UpfConfig
from .driver import Driver, DriverError, DriverEvent, SessionUsage, UsageReport
from .reports import rejection_ies, session_report
from .session import Plan, Rejection, ResourcesExhausted, SessionState, plan_establishment, plan_modification

if TYPE_CHECKING:
    from .metrics import MetricsServer
    from .telemetry import AgentTelemetry

__all__ = ["AGENT_FEATURES", "ResyncResult", "UpfAgent", "advertised_features"]

log = logging.getLogger("user_plane.agent")

Cause = pfcp.CauseValue
_SMREQ = pfcp.PFCPSMReqFlagsValue

#: UP Function Features the agent implements itself, whatever the driver:
#: FTUP (§8.2.25, F-TEID allocation by the UP function: CH/CHID, §5.5.3).
AGENT_FEATURES = pfcp.UPFeatures.FTUP


def advertised_features(configured: pfcp.UPFeatures, driver_features: pfcp.UPFeatures) -> pfcp.UPFeatures:
    """The configured features this build implements (the agent's plus the driver's);
    a feature is never advertised unless implemented (§8.2.25)."""
    return configured & (AGENT_FEATURES | driver_features)


@dataclasses.dataclass(frozen=True, slots=True)
class ResyncResult:
    """What :meth:`UpfAgent.resync` did."""

    reinstalled: int = 0
    removed: int = 0
    failed: int = 0


class UpfAgent:
    """The PFCP UP function over one dataplane :class:`~user_plane.driver.Driver`."""

    def __init__(
        self, config: UpfConfig, driver: Driver, *, clock: Callable[[], float] = time.time, manage_gc: bool = True
    ) -> None:
        self.config = config
        #: Run :mod:`edge_sites.gc_policy` while started (a server holding many sessions).
        self.manage_gc = manage_gc
        self._gc_held = False
        self.driver = driver
        self.clock = clock
        self.node: PfcpNode | None = None
        self.counters: Counter[str] = Counter()
        self.features = advertised_features(config.features, driver.features)
        # Desired state: UP SEID -> (state, owning CP Node ID).
        self._sessions: dict[int, tuple[SessionState, pfcp.NodeID]] = {}
        self._seids = alloc.SeidAllocator()
        self._teids = alloc.TeidAllocator()
        # (owner, CP SEID) -> UP SEID, one inner dict per CP: no per-session tuple key.
        self._by_cp_seid: dict[pfcp.NodeID, dict[int, int]] = {}
        self._peers: dict[pfcp.NodeID, Address] = {}  # associated CPs
        # Session Retention Information of an accepted Association Setup Request, until its
        # AssociationEstablished event: the CP PFCP Entity IP Addresses listed (empty: all).
        self._retention: dict[pfcp.NodeID, frozenset[IPv4Address | IPv6Address]] = {}
        self._stamps: dict[pfcp.NodeID, pfcp.RecoveryTimeStamp] = {}  # their Recovery Time Stamps
        # CPs lost to unanswered heartbeats: the stamp they had, and the purge waiting for them
        self._lost: dict[pfcp.NodeID, tuple[pfcp.RecoveryTimeStamp | None, asyncio.TimerHandle]] = {}
        self._reports: set[asyncio.Task[None]] = set()
        #: MQTT status, metrics and usage (user_plane/telemetry.py), while started with ``config.mqtt``.
        self.telemetry: AgentTelemetry | None = None
        #: /metrics (user_plane/metrics.py), while started with ``config.metrics``.
        self.metrics: MetricsServer | None = None
        n4 = config.n4.address
        self._node_id = config.node_id_ie
        self._f_seid_v4 = n4 if isinstance(n4, IPv4Address) else None
        self._f_seid_v6 = n4 if isinstance(n4, IPv6Address) else None
        self._n3_v4 = next((a for a in config.n3 if isinstance(a, IPv4Address)), None)
        self._n3_v6 = next((a for a in config.n3 if isinstance(a, IPv6Address)), None)

    # -- lifecycle --------------------------------------------------------------

    async def start(self, *, host: str | None = None, port: int | None = None) -> Address:
        """Start the driver, then listen on N4 (``host``/``port`` override the
        configuration; port 0 picks a free one). Returns the bound address."""
        dropped = self.config.features & ~self.features
        if dropped:
            names = ", ".join(f.name or str(int(f)) for f in pfcp.UPFeatures if f in dropped)
            log.warning("configured UP Function Features not implemented by this build, not advertised: %s", names)
        endpoint = EndpointConfig(
            node_id=self._node_id,
            recovery_time_stamp=pfcp.RecoveryTimeStamp.from_unix(self.clock()),  # §8.2.65: when we started
            up_function_features=pfcp.UPFunctionFeatures(self.features),
            retransmit=self.config.timers.retransmit,
            heartbeat_interval=self.config.timers.heartbeat_interval,
            accept_association=self._accept_association,
        )
        self.driver.set_event_handler(self._on_driver_event)
        await self.driver.start()
        self.node = PfcpNode(endpoint, handler=self._on_request, on_event=self._on_event)
        try:
            bound = await self.node.start(
                str(self.config.n4.address) if host is None else host, self.config.n4.port if port is None else port
            )
        except OSError:
            self.node = None
            await self.driver.stop()
            raise
        if self.config.metrics is not None:
            from .metrics import serve_metrics  # prometheus_client is loaded only when configured

            try:
                self.metrics = serve_metrics(self, self.config.metrics)
            except OSError:
                self.node.close()
                self.node = None
                await self.driver.stop()
                raise
        if self.manage_gc and not self._gc_held:
            gc_policy.acquire()
            self._gc_held = True
        if self.config.mqtt is not None:
            from .telemetry import AgentTelemetry  # aiomqtt is loaded only when configured

            self.telemetry = AgentTelemetry(self, self.config.mqtt)
            self.telemetry.start()
        log.info(
            "UPF agent %s listening on %s port %s (driver %s, features %s)",
            self.config.node_id,
            bound[0],
            bound[1],
            self.driver.name,
            ", ".join(pfcp.flag_names(self.features)) or "none",
        )
        return bound

    async def stop(self) -> None:
        """Stop answering, drop every session and stop the driver.

        No Association Release is sent: a UP function asks the CP to release
        (Association Update with SARR, §6.2.8.3) and waits, which an exiting
        process cannot do; the CPs see the new Recovery Time Stamp when it
        comes back and purge their side (TS 23.007 §19A)."""
        metrics, self.metrics = self.metrics, None
        if metrics is not None:
            await metrics.close()
        telemetry, self.telemetry = self.telemetry, None
        if telemetry is not None:
            await telemetry.stop()  # the retained status says "offline" (stopped), not the Last Will
        for task in list(self._reports):
            task.cancel()
        for _, handle in self._lost.values():
            handle.cancel()
        self._lost.clear()
        if self.node is not None:
            self.node.close()
            self.node = None
        count = len(self._sessions)
        for seid, (state, _) in list(self._sessions.items()):
            self._forget(seid, state)
        await self.driver.stop()
        if self._gc_held:
            self._gc_held = False
            gc_policy.release()
        log.info("UPF agent stopped; %d sessions dropped", count)

    async def restart_driver(self) -> ResyncResult:
        """Stop and start the driver, then install the desired state again."""
        await self.driver.stop()
        await self.driver.start()
        return self.resync()

    # -- desired state ------------------------------------------------------------

    @property
    def sessions(self) -> Mapping[int, SessionState]:
        """The desired state: every session's rules by UP SEID (a copy)."""
        return {seid: state for seid, (state, _) in self._sessions.items()}

    @property
    def session_count(self) -> int:
        """How many sessions the desired state holds (no copy)."""
        return len(self._sessions)

    def owner(self, up_seid: int) -> pfcp.NodeID | None:
        """The Node ID of the CP that owns a session."""
        entry = self._sessions.get(up_seid)
        return None if entry is None else entry[1]

    def resync(self) -> ResyncResult:
        """Make the driver hold exactly the desired state: install what differs or
        is missing, remove what the agent does not know."""
        actual = self.driver.installed()
        reinstalled = removed = failed = 0
        for seid, (state, _) in self._sessions.items():
            held = actual.get(seid)
            if held is state or held == state:
                continue
            try:
                self.driver.install(state)
                reinstalled += 1
            except DriverError as exc:
                failed += 1
                log.error("resync: session %#x could not be installed again: %s", seid, exc)
        for seid in [s for s in actual if s not in self._sessions]:
            self.driver.remove(seid)
            removed += 1
        result = ResyncResult(reinstalled, removed, failed)
        log.info("resync with driver %s: %s", self.driver.name, result)
        return result

    def purge(self, node_id: pfcp.NodeID, why: str) -> int:
        """Remove every session of a CP (TS 23.007 §19A); returns how many."""
        owned = self._owned(node_id)
        self._remove(owned)
        log.warning("purged %d sessions of CP %s: %s", len(owned), node_id.value, why)
        return len(owned)

    def retain(self, node_id: pfcp.NodeID, addresses: frozenset[IPv4Address | IPv6Address]) -> tuple[int, int]:
        """Keep the sessions of a CP whose CP F-SEID has one of ``addresses`` (every
        session when empty), remove the others (§6.2.6.2.2); returns (kept, deleted)."""
        owned = self._owned(node_id)
        doomed = [
            (seid, state)
            for seid, state in owned
            if addresses and state.cp_f_seid.ipv4 not in addresses and state.cp_f_seid.ipv6 not in addresses
        ]
        self._remove(doomed)
        kept = len(owned) - len(doomed)
        self.counters["sessions retained"] += kept
        log.warning(
            "CP %s associated again with PFCP Session Retention Information (§6.2.6.2.2): %d sessions kept, %d deleted",
            node_id.value,
            kept,
            len(doomed),
        )
        return kept, len(doomed)

    def _remove(self, sessions: list[tuple[int, SessionState]]) -> None:
        for seid, state in sessions:
            try:
                self.driver.remove(seid)
            except DriverError as exc:
                log.error("purge: driver could not remove session %#x: %s", seid, exc)
            self._forget(seid, state)
        self.counters["sessions purged"] += len(sessions)

    def _owned(self, node_id: pfcp.NodeID) -> list[tuple[int, SessionState]]:
        return [(seid, state) for seid, (state, owner) in self._sessions.items() if owner == node_id]

    def _store(self, seid: int, state: SessionState, owner: pfcp.NodeID, old: SessionState | None = None) -> None:
        # The session table and its (owner, CP SEID) index change together: here and in _forget only.
        self._sessions[seid] = (state, owner)
        cp_seid = state.cp_f_seid.seid
        if old is not None and old.cp_f_seid.seid == cp_seid:
            return
        index = self._by_cp_seid.get(owner)
        if index is None:
            index = self._by_cp_seid[owner] = {}
        elif old is not None and index.get(old.cp_f_seid.seid) == seid:  # Table 7.5.4.1-1: the CP moved its F-SEID
            del index[old.cp_f_seid.seid]
        index[cp_seid] = seid

    def _forget(self, seid: int, state: SessionState) -> None:
        owner = self._sessions.pop(seid)[1]
        index = self._by_cp_seid.get(owner)
        if index is not None and index.get(state.cp_f_seid.seid) == seid:
            del index[state.cp_f_seid.seid]
            if not index:
                del self._by_cp_seid[owner]
        self._seids.release(seid)
        for teid in state.allocated_teids():
            self._teids.release(teid)

    # -- associations ----------------------------------------------------------------

    def _accept_association(self, request: pfcp.AssociationSetupRequest, peer: Address) -> pfcp.CauseValue:
        # §6.2.6.2.2 leaves acceptance to the UP function: only configured CPs.
        try:
            source = ip_address(peer[0].split("%", 1)[0])
        except ValueError:
            source = None
        if source is not None and self.config.cp_allowed(request.node_id.value, source):
            # The endpoint raises AssociationEstablished for every accepted request, after this.
            retention = request.pfcp_session_retention_information
            if retention is None:
                self._retention.pop(request.node_id, None)
            else:
                self._retention[request.node_id] = frozenset(
                    address
                    for entity in retention.cp_pfcp_entity_ip_address
                    for address in (entity.ipv4, entity.ipv6)
                    if address is not None
                )
            return Cause.REQUEST_ACCEPTED
        self.counters["associations rejected"] += 1
        log.warning(
            "Association Setup Request from %s port %s (Node ID %s) rejected with cause 64: not in allowed_cps",
            peer[0],
            peer[1],
            request.node_id.value,
        )
        return Cause.REQUEST_REJECTED

    def _on_event(self, event: Event) -> None:
        if isinstance(event, AssociationEstablished):
            node_id = event.info.node_id
            retention = self._retention.pop(node_id, None)
            lost = self._lost.pop(node_id, None)
            if lost is not None:
                lost[1].cancel()
            if retention is not None and (lost is not None or node_id in self._peers):
                # §6.2.6.2.2 (Rel-16): overwrite the association regardless of the Recovery Time
                # Stamp; keep the sessions requested to be retained, delete the others. The CP
                # PFCP Entity IP Addresses are optional in Table 7.4.4.1-2 and only narrow the
                # request: an IE without any asks to retain every session of the association.
                self.retain(node_id, retention)
            elif lost is not None:
                if lost[0] == event.info.recovery_time_stamp:
                    kept = len(self._owned(node_id))
                    log.warning(
                        "CP %s is back with the same Recovery Time Stamp: %d sessions kept", node_id.value, kept
                    )
                else:
                    self.purge(node_id, "CP came back with a new Recovery Time Stamp: it restarted (TS 23.007 §19A)")
            elif node_id in self._peers:
                self.purge(node_id, "repeated Association Setup Request replaces the association (§6.2.6.2.2)")
            for other, address in list(self._peers.items()):
                if address == event.peer and other != node_id:  # that association is gone with its address
                    del self._peers[other]
                    self.purge(other, f"Node ID {node_id.value} associated from its address")
            self._peers[node_id] = event.peer
            self._stamps[node_id] = event.info.recovery_time_stamp
            log.info("associated with CP %s at %s port %s", node_id.value, event.peer[0], event.peer[1])
        elif isinstance(event, PeerRestarted):
            self._stamps[event.node_id] = event.current
            if event.node_id not in self._retention:  # else an Association Setup asking for retention: see above
                self.purge(event.node_id, "CP restarted: newer Recovery Time Stamp (TS 23.007 §19A)")
        elif isinstance(event, AssociationReleased):
            self._peers.pop(event.node_id, None)
            self.purge(event.node_id, "association released (§6.2.8)")
        elif isinstance(event, PeerLost):
            self._cp_lost(event.node_id)

    def _cp_lost(self, node_id: pfcp.NodeID) -> None:
        # An unreachable CP (a backhaul outage at an edge site) has not necessarily lost its
        # sessions: they keep forwarding for timers.cp_lost_grace. A CP that associates again
        # with the same Recovery Time Stamp did not restart and keeps them; §6.2.6.2.2 would
        # delete them on a repeated Association Setup, which here follows a lost association,
        # not a live one. Otherwise they are purged when the grace ends.
        self._peers.pop(node_id, None)
        grace = self.config.timers.cp_lost_grace
        handle = asyncio.get_running_loop().call_later(grace, self._purge_lost, node_id)
        previous = self._lost.pop(node_id, None)
        if previous is not None:
            previous[1].cancel()
        self._lost[node_id] = (self._stamps.get(node_id), handle)
        log.warning(
            "CP %s unreachable (heartbeats unanswered, §6.2.2): its %d sessions keep forwarding for %g s",
            node_id.value,
            len(self._owned(node_id)),
            grace,
        )

    def _purge_lost(self, node_id: pfcp.NodeID) -> None:
        if self._lost.pop(node_id, None) is not None:
            self.purge(node_id, "CP unreachable for longer than timers.cp_lost_grace")

    # -- session requests -----------------------------------------------------------

    def _on_request(self, event: RequestReceived) -> Message | None:
        msg = event.message
        if isinstance(msg, pfcp.SessionEstablishmentRequest):
            return self._establish(event, msg)
        if isinstance(msg, pfcp.SessionModificationRequest):
            return self._modify(event, msg)
        if isinstance(msg, pfcp.SessionDeletionRequest):
            return self._delete(event, msg)
        assert self.node is not None
        self.node.reject(event, Cause.SERVICE_NOT_SUPPORTED)  # PFD management, session sets: not advertised
        return None

    def _allocate_teid(self, chid: int | None) -> int:
        # session.py calls this once per CHID (§8.2.3: same CHID, same F-TEID) and
        # once per CH PDR without one.
        try:
            return self._teids.allocate()
        except alloc.Exhausted:
            raise ResourcesExhausted from None

    def _local_addresses(self, pdi: pfcp.PDI) -> tuple[IPv4Address | None, IPv6Address | None]:
        return self._n3_v4, self._n3_v6

    def _plan(self, plan: Plan | Rejection, apply: Callable[[Plan], None]) -> Plan | Rejection:
        """Hand an accepted plan to ``apply``; take its new TEIDs back if that fails."""
        if isinstance(plan, Rejection):
            return plan
        try:
            apply(plan)
        except BaseException:
            for teid in plan.new_teids:
                self._teids.release(teid)
            raise
        return plan

    def _establish(self, event: RequestReceived, req: pfcp.SessionEstablishmentRequest) -> Message:
        cp_seid = req.cp_f_seid.seid
        sequence = req.sequence

        def answer(cause: pfcp.CauseValue, **ies: Any) -> Message:
            # The request's sequence number (§7.2.2.1) set here: the node would copy the message to set it.
            return pfcp.SessionEstablishmentResponse(
                sequence=sequence, seid=cp_seid, node_id=self._node_id, cause=_cause(cause), **ies
            )

        owner = event.node_id
        if owner is None:  # the endpoint answers 72 before this; kept for a node without that check
            return answer(Cause.NO_ESTABLISHED_PFCP_ASSOCIATION)
        index = self._by_cp_seid.get(owner)
        old_seid = None if index is None else index.get(cp_seid)  # a re-sent establishment: replaces it
        if old_seid is None and len(self._sessions) >= self.config.capacity.max_sessions:
            self.counters["rejected: capacity"] += 1
            return answer(Cause.NO_RESOURCES_AVAILABLE)
        try:
            up_seid = self._seids.allocate()
        except alloc.Exhausted:
            return answer(Cause.NO_RESOURCES_AVAILABLE)
        try:
            plan = plan_establishment(
                req,
                up_seid,
                self._allocate_teid,
                local_addresses=self._local_addresses,
                release_teid=self._teids.release,
            )
            if isinstance(plan, Rejection):
                self._seids.release(up_seid)
                self.counters[f"establishment rejected: cause {int(plan.cause)}"] += 1
                return answer(plan.cause, **rejection_ies(plan))
            try:
                if old_seid is None:
                    self.driver.install(plan.state)
                else:
                    self._replace(old_seid, plan.state)
            except BaseException:  # as _plan does, inlined: every establishment comes here
                for teid in plan.new_teids:
                    self._teids.release(teid)
                raise
        except DriverError as exc:
            self._seids.release(up_seid)
            return self._driver_failed(answer, exc, "establishment", cp_seid)
        except BaseException:
            self._seids.release(up_seid)
            raise
        self._store(up_seid, plan.state, owner)
        self.counters["sessions established"] += 1
        return pfcp.SessionEstablishmentResponse(
            sequence=sequence,
            seid=cp_seid,
            node_id=self._node_id,
            cause=_ACCEPTED,
            up_f_seid=pfcp.FSEID(up_seid, ipv4=self._f_seid_v4, ipv6=self._f_seid_v6),
            created_pdr=plan.created_pdrs,
        )

    def _replace(self, old_seid: int, state: SessionState) -> None:
        """Swap, in the driver, a session for the re-sent establishment of the same CP
        F-SEID (validated already); forget the old one once the new one is installed.
        If the driver refuses the new one, install the old one again (or forget it)
        and raise the driver's error."""
        old, owner = self._sessions[old_seid]
        try:
            self.driver.remove(old_seid)  # its usage is dropped: the CP never learnt of this session
        except DriverError as exc:
            log.error("driver could not remove session %#x replaced by a re-sent establishment: %s", old_seid, exc)
        try:
            self.driver.install(state)
        except BaseException:
            try:
                self.driver.install(old)
            except DriverError as exc:
                self._forget(old_seid, old)
                log.error("re-sent establishment failed and session %#x it replaced is gone: %s", old_seid, exc)
            else:
                log.warning("re-sent establishment failed: session %#x it would replace is kept", old_seid)
            raise
        self._forget(old_seid, old)
        self.counters["sessions replaced"] += 1
        log.warning(
            "Session Establishment Request for CP SEID %#x of CP %s (already held by session %#x) replaces it",
            state.cp_f_seid.seid,
            owner.value,
            old_seid,
        )

    def _session(self, event: RequestReceived) -> tuple[int, SessionState] | None:
        """The session a request addresses, if it exists and the requesting CP owns it."""
        seid = event.message.seid or 0
        entry = self._sessions.get(seid)
        if entry is None or entry[1] != event.node_id:
            self.counters["session context not found"] += 1
            return None
        return seid, entry[0]

    def _modify(self, event: RequestReceived, req: pfcp.SessionModificationRequest) -> Message:
        found = self._session(event)
        if found is None:
            return pfcp.SessionModificationResponse(seid=0, cause=_cause(Cause.SESSION_CONTEXT_NOT_FOUND))
        seid, old = found
        flags = _SMREQ(0) if req.pfcpsmreq_flags is None else req.pfcpsmreq_flags.value
        reports: list[UsageReport] = []

        def apply(plan: Plan) -> None:
            if flags & _SMREQ.DROBU:  # §8.2.31: drop what is buffered, before a FAR leaves BUFF
                self.driver.drop_buffered(seid)
            self.driver.install(plan.state, plan.end_marker_fars)
            # The final usage of URRs this install removed goes in the response (Table 7.5.5.1-1).
            reports.extend(self.driver.take_removed_reports(seid))

        def answer(cause: pfcp.CauseValue, **ies: Any) -> Message:
            return pfcp.SessionModificationResponse(seid=old.cp_f_seid.seid, cause=_cause(cause), **ies)

        try:
            planned = plan_modification(
                old, req, self._allocate_teid, local_addresses=self._local_addresses, release_teid=self._teids.release
            )
            plan = self._plan(planned, apply)
        except DriverError as exc:
            return self._driver_failed(answer, exc, "modification", seid)
        if isinstance(plan, Rejection):
            self.counters[f"modification rejected: cause {int(plan.cause)}"] += 1
            return answer(plan.cause, **rejection_ies(plan))
        self._store(seid, plan.state, self._sessions[seid][1], old)
        for teid in old.allocated_teids() - plan.state.allocated_teids():
            self._teids.release(teid)
        reference = None if req.query_urr_reference is None else req.query_urr_reference.value
        if flags & _SMREQ.QAURR:  # §8.2.31: immediate reports of every URR of the session
            reports.extend(self.driver.query(seid, None, reference))
        elif req.query_urr:  # §7.5.4.10: of the URRs named
            reports.extend(self.driver.query(seid, [q.urr_id.value for q in req.query_urr], reference))
        if reports and self.telemetry is not None:
            self.telemetry.usage(plan.state, "modification", reports)
        self.counters["sessions modified"] += 1
        return answer(
            Cause.REQUEST_ACCEPTED,
            created_pdr=plan.created_pdrs,
            usage_report=tuple(r.to_ie(pfcp.UsageReportSMR) for r in reports),
        )

    def _delete(self, event: RequestReceived, req: pfcp.SessionDeletionRequest) -> Message:
        found = self._session(event)
        if found is None:
            return pfcp.SessionDeletionResponse(seid=0, cause=_cause(Cause.SESSION_CONTEXT_NOT_FOUND))
        seid, state = found
        try:
            reports = self.driver.remove(seid)  # final reports (TERMR, §7.5.7)
        except DriverError as exc:
            log.error("driver could not remove session %#x: %s; forgotten anyway", seid, exc)
            reports = []
        self._forget(seid, state)
        if reports and self.telemetry is not None:
            self.telemetry.usage(state, "deletion", reports)
        self.counters["sessions deleted"] += 1
        return pfcp.SessionDeletionResponse(
            seid=state.cp_f_seid.seid,
            cause=_cause(Cause.REQUEST_ACCEPTED),
            usage_report=tuple(r.to_ie(pfcp.UsageReportSDR) for r in reports),
        )

    def _driver_failed(self, answer: Callable[..., Message], exc: DriverError, what: str, seid: int) -> Message:
        self.counters["driver failures"] += 1
        if exc.failed_rule is not None:  # a rule the dataplane cannot apply (§7.5.3.1, §8.2.80)
            log.warning("driver %s refused the %s of session %#x: %s (cause 73)", self.driver.name, what, seid, exc)
            return answer(Cause.RULE_CREATION_MODIFICATION_FAILURE, failed_rule_id=exc.failed_rule)
        log.error("driver %s refused the %s of session %#x: %s (cause 77)", self.driver.name, what, seid, exc)
        return answer(Cause.SYSTEM_FAILURE)

    # -- Session Report Requests -------------------------------------------------------

    def _on_driver_event(self, event: DriverEvent) -> None:
        entry = self._sessions.get(event.up_seid)
        node = self.node
        if entry is None or node is None:
            self.counters["driver events for no session"] += 1
            return
        state, owner = entry
        peer = self._peers.get(owner)
        if peer is None:
            self.counters["reports without association"] += 1
            return
        message = session_report(state.cp_f_seid.seid, event)
        if self.telemetry is not None and isinstance(event, SessionUsage):
            self.telemetry.usage(state, "session-report", event.reports)
        task = asyncio.get_running_loop().create_task(self._send_report(node, peer, event.up_seid, state, message))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _send_report(
        self, node: PfcpNode, peer: Address, seid: int, state: SessionState, message: pfcp.SessionReportRequest
    ) -> None:
        try:
            response = await node.request(peer, message)
        except (RequestTimeout, ConnectionAbortedError) as exc:
            self.counters["reports unanswered"] += 1
            log.warning("Session Report Request for session %#x to %s got no answer: %s", seid, peer[0], exc)
            return
        if not isinstance(response, pfcp.SessionReportResponse):
            return
        self.counters["reports sent"] += 1
        cause = response.cause.value
        current = self._sessions.get(seid)
        if cause == Cause.SESSION_CONTEXT_NOT_FOUND:
            log.warning("CP %s has no context for session %#x (cause 65): removed locally", peer[0], seid)
            if current is not None and current[0].cp_f_seid == state.cp_f_seid:
                self.driver.remove(seid)
                self._forget(seid, current[0])
                self.counters["sessions removed: CP lost them"] += 1
        elif not 1 <= cause <= 63:
            log.warning("CP %s rejected the Session Report Request for %#x with cause %s", peer[0], seid, cause)
        elif current is not None and response.pfcpsrrsp_flags is not None:
            if response.pfcpsrrsp_flags.value & pfcp.PFCPSRRspFlagsValue.DROBU:  # §8.2.32
                self.driver.drop_buffered(seid)


_CAUSES: dict[pfcp.CauseValue, pfcp.Cause] = {}


def _cause(value: pfcp.CauseValue) -> pfcp.Cause:
    """One Cause IE per value (IEs are immutable; every response carries one)."""
    ie = _CAUSES.get(value)
    if ie is None:
        ie = _CAUSES[value] = pfcp.Cause(value)
    return ie


_ACCEPTED = _cause(Cause.REQUEST_ACCEPTED)
