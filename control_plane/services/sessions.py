"""Session procedures: establish, modify, delete, and the UPF's reports.

Theory of operation (the order is what makes a crash harmless):

* **Desired state first.** A procedure writes what the UPF should hold (the
  session row with its PDR/FAR/QER/URR set, in a transitional state:
  ``establishing``, ``modifying``, ``deleting``) and waits for the commit before
  anything goes out on N4. Only the UPF's acceptance makes a session ``active``.
* **The UPF's answer second.** Accepted: the row records what the UPF chose (UP
  F-SEID, F-TEIDs it allocated on CH) and becomes ``active``. Rejected: the
  establishment's allocations are released and its row deleted; a rejected
  modification restores the previous rules. No answer after N1 retransmissions:
  the row stays transitional and :mod:`control_plane.services.reconcile` finishes it
  when the UPF answers again.
* A crash between the two steps leaves a transitional row, which start-up
  reconciliation completes (re-sending the desired state) — never a session the
  UPF holds and the database does not know, because nothing is sent before the
  commit.
* One procedure at a time per session (an asyncio lock per SUPI and PDU Session
  ID); different sessions run concurrently, and the store commits their writes
  together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from sqlalchemy import Connection, RowMapping

import pfcp
from pfcp.aio import RequestTimeout

from .. import repo
from ..domain.alloc import AllocationError, PoolExhausted, SeidBlock, SeidBlockExhausted
from ..domain.rules import SessionRules
from ..domain.selection import NoUpfAvailable, select_upf
from ..errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
    UpfRejected,
)
from ..inventory import Inventory, PoolRecord, UpfRecord
from ..n4 import build, handle
from ..store import Store
from . import changes
from .desired import cp_allocates_teid, desired_rules, peer_profile
from .views import ModifyRequest, SessionRequest, SessionView, UsageView, usage_view

__all__ = ["N4", "SessionManager"]

log = logging.getLogger("control_plane.sessions")

#: CP SEIDs reserved in the database per round trip (never reused, TS 29.244 §5.2.1).
SEID_BLOCK = 4096
_ACCEPTED = pfcp.CauseValue.REQUEST_ACCEPTED
_SESSION_RESPONSES = (
    pfcp.SessionEstablishmentResponse,
    pfcp.SessionModificationResponse,
    pfcp.SessionDeletionResponse,
    pfcp.SessionReportResponse,
)


class N4:
    """How procedures reach UPFs: one PFCP node, addressed by UPF record."""

    def __init__(self, node: pfcp.aio.PfcpNode, node_id: str, address: str) -> None:
        self.node = node
        self.node_id = pfcp.NodeID(ip_address(node_id)) if _is_ip(node_id) else pfcp.NodeID(node_id)
        self.address = address

    async def request(self, upf: UpfRecord, msg: pfcp.Message) -> handle.SessionResponse:
        response = await self.node.request(upf.peer, msg)
        if not isinstance(response, _SESSION_RESPONSES):  # matched by sequence number only (§6.4)
            raise ConnectionError(f"UPF {upf.node_id} answered {type(response).__name__} to {type(msg).__name__}")
        return response


@dataclass(slots=True)
class _Allocation:
    """What an establishment took so far, in the shape of a session row (to give back)."""

    pool_v4: PoolRecord | None = None
    ue_ipv4: str | None = None
    pool_v6: PoolRecord | None = None
    ue_ipv6: str | None = None
    upf: UpfRecord | None = None
    n3_teid: int | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "pool_v4_id": self.pool_v4.id if self.pool_v4 else None,
            "ue_ipv4": self.ue_ipv4,
            "pool_v6_id": self.pool_v6.id if self.pool_v6 else None,
            "ue_ipv6": self.ue_ipv6,
            "upf_id": self.upf.id if self.upf else None,
            "n3_teid": self.n3_teid,
        }


class SessionManager:
    """The session procedures (control_plane.services.views.SessionApi)."""

    def __init__(self, store: Store, inventory: Inventory, n4: N4, *, recovery_time_stamp: int) -> None:
        self.store = store
        self.inventory = inventory
        self.n4 = n4
        self.recovery_time_stamp = recovery_time_stamp
        self._seids: SeidBlock | None = None
        self._seid_lock = asyncio.Lock()
        self._locks: dict[tuple[str, int], list[Any]] = {}
        #: Whether a UPF is associated now (the association manager sets this).
        self.associated: Callable[[UpfRecord], bool] = lambda upf: upf.health == "up"

    # -- helpers ---------------------------------------------------------------

    @contextmanager
    def _held(self, key: tuple[str, int]) -> Iterator[asyncio.Lock]:
        # One lock per session while anyone uses it; forgotten after (no growth with sessions).
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            yield entry[0]
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    async def _next_seid(self) -> int:
        if self._seids is not None:
            try:
                return self._seids.allocate()
            except SeidBlockExhausted:
                pass
        async with self._seid_lock:
            if self._seids is None or self._seids.remaining == 0:
                node_id = str(self.n4.node_id.value)
                first, _ = await self.store.run(
                    lambda c: repo.reserve_seids(c, node_id, SEID_BLOCK, self.recovery_time_stamp)
                )
                self._seids = SeidBlock(first, SEID_BLOCK)
        return self._seids.allocate()

    def view(self, row: Mapping[Any, Any]) -> SessionView:
        upf = self.inventory.upfs.get(row["upf_id"]) if row["upf_id"] is not None else None
        policy = self.inventory.policies.get(row["policy_id"]) if row["policy_id"] is not None else None
        return SessionView(
            supi=row["supi"],
            pdu_session_id=row["pdu_session_id"],
            dnn=row["dnn"],
            snssai=row["snssai"],
            tai=row["tai"],
            state=row["state"],
            ue_ipv4=row["ue_ipv4"],
            ue_ipv6=row["ue_ipv6"],
            upf=upf.node_id if upf else None,
            site=upf.site if upf else None,
            cp_seid=row["cp_seid"],
            up_seid=row["up_seid"],
            n3_teid=row["n3_teid"],
            n3_address=row["n3_address"],
            gnb_teid=row["gnb_teid"],
            gnb_address=row["gnb_address"],
            policy=policy.name if policy else None,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            last_cause=row["last_cause"],
        )

    # -- establish -------------------------------------------------------------

    async def establish(self, request: SessionRequest) -> SessionView:
        key = (request.supi, request.pdu_session_id)
        with self._held(key) as lock:
            async with lock:
                return await self._establish(request)

    async def _establish(self, request: SessionRequest) -> SessionView:
        subscriber, existing = await self.store.run_bulk(
            repo.establishment_lookups, (request.supi, request.pdu_session_id)
        )
        if subscriber is None:
            raise NotFound(f"subscriber {request.supi} is not provisioned", field="supi")
        if existing is not None:
            if existing["state"] == "active" and (existing["dnn"], existing["snssai"]) == (
                request.dnn,
                request.snssai,
            ):
                return self.view(existing)  # a client retrying a create whose answer it lost
            raise AlreadyExists(
                f"{request.supi} already has PDU session {request.pdu_session_id} ({existing['state']})",
                field="pdu_session_id",
            )
        if request.dnn not in (subscriber["allowed_dnns"] or ()):
            raise FailedPrecondition(f"DNN {request.dnn!r} is not allowed for {request.supi}", field="dnn")
        policy = self.inventory.policy_for(request.dnn, request.snssai, subscriber["policy_id"])
        if policy is None:
            raise FailedPrecondition(f"no policy for DNN {request.dnn!r} and slice {request.snssai}", field="dnn")
        try:
            candidate = select_upf(self.inventory.candidates(), dnn=request.dnn, snssai=request.snssai, tai=request.tai)
        except NoUpfAvailable as exc:
            raise Unavailable(exc.reason) from None
        upf = self.inventory.upfs[candidate.id]
        taken = _Allocation()
        try:
            self._allocate(taken, upf, request.dnn, subscriber)
            cp_seid = await self._next_seid()
            values: dict[str, Any] = {
                "supi": request.supi,
                "pdu_session_id": request.pdu_session_id,
                "dnn": request.dnn,
                "snssai": request.snssai,
                "tai": request.tai,
                **taken.as_row(),
                "policy_id": policy.id,
                "cp_seid": cp_seid,
                "gnb_teid": request.gnb_teid,
                "gnb_address": request.gnb_address,
                "n3_teid": taken.n3_teid,
                "n3_address": upf.n3_address() if taken.n3_teid is not None else None,
                "state": "establishing",
                "epoch": 0,
                "up_seid": None,
                "up_address": None,
                "last_cause": None,
                "created_at": repo.now(),
            }
            values["updated_at"] = values["created_at"]
            rules = desired_rules(self.inventory, upf, policy, values)
            session_id = await self.store.run_bulk(repo.insert_sessions, (values, rules.row_texts()))
        except BaseException:
            self.release_row(taken.as_row())
            raise
        row = {**values, "id": session_id, "version": 1}
        return await self._send_establishment(row, upf, rules)

    def _allocate(self, taken: _Allocation, upf: UpfRecord, dnn: str, subscriber: RowMapping) -> None:
        taken.upf = upf
        upf.load += 1
        inv = self.inventory
        for family, static in ((4, subscriber["static_ipv4"]), (6, subscriber["static_ipv6"])):
            pool = inv.pool_containing(dnn, static) if static else inv.pool_for(dnn, upf.site, family)
            if static and pool is None and family == 4 and inv.has_pool(dnn, upf.site, 4):
                raise FailedPrecondition(f"static IP {static} is in no pool of DNN {dnn!r}", field="supi")
            if pool is None:
                if family == 4 and not static and inv.has_pool(dnn, upf.site, 4):
                    raise ResourceExhausted(f"every IPv4 pool of DNN {dnn!r} at site {upf.site} is used up")
                continue
            try:
                if static:
                    pool.allocator.reserve(static)
                    value = static
                else:
                    value = pool.allocator.allocate()
            except PoolExhausted:
                raise ResourceExhausted(f"pool {pool.name} of DNN {dnn!r} is used up") from None
            except AllocationError as exc:
                raise FailedPrecondition(f"static IP {static}: {exc}", field="supi") from None
            if family == 4:
                taken.pool_v4, taken.ue_ipv4 = pool, value
            else:
                taken.pool_v6, taken.ue_ipv6 = pool, value
        if taken.ue_ipv4 is None and taken.ue_ipv6 is None:
            raise FailedPrecondition(f"DNN {dnn!r} has no IP pool at site {upf.site}", field="dnn")
        if cp_allocates_teid(upf):
            taken.n3_teid = upf.teids.allocate()

    async def _send_establishment(self, row: dict[str, Any], upf: UpfRecord, rules: SessionRules) -> SessionView:
        """Send a new session (committed as ``establishing``) to ``upf``; release it if refused."""
        try:
            response = await self.install(row, upf, rules)
        except (RequestTimeout, ConnectionError) as exc:
            # The UPF may or may not hold it: the reconciler settles it when the UPF answers
            # (its allocations stay with the row until then).
            await self._update(row, {"state": "deleting", "up_seid": None})
            raise Unavailable(f"UPF {upf.node_id} did not answer the establishment: {exc}") from None
        cause = handle.cause_of(response)
        if cause != _ACCEPTED:
            await self.store.run(lambda c: _drop(c, row["id"], "session.rejected", row, {"cause": cause}))
            self.release_row(row)
            raise UpfRejected(
                f"UPF {upf.node_id} rejected the establishment: {handle.rejection_text(response)}", cause=cause
            )
        return self.view(row)

    async def install(self, row: dict[str, Any], upf: UpfRecord, rules: SessionRules) -> handle.SessionResponse:
        """Send ``rules`` for ``row`` in a Session Establishment Request; on acceptance record
        what the UPF chose and mark the row ``active`` (a new epoch: the UPF counts usage afresh).

        The same request re-installs a session (restoration, reconciliation): a UPF that
        still holds the CP F-SEID replaces that session.
        """
        msg = build.establishment_request(
            node_id=self.n4.node_id, cp_seid=row["cp_seid"], cp_address=self.n4.address, rules=rules,
            peer=peer_profile(upf),
        )  # fmt: skip
        response = await self.n4.request(upf, msg)
        cause = handle.cause_of(response)
        if cause != _ACCEPTED:
            return response
        assert isinstance(response, pfcp.SessionEstablishmentResponse)
        changes: dict[str, Any] = {"state": "active", "epoch": row["epoch"] + 1, "last_cause": cause}
        if response.up_f_seid is not None:
            changes["up_seid"] = response.up_f_seid.seid
            address = response.up_f_seid.ipv4 or response.up_f_seid.ipv6
            changes["up_address"] = None if address is None else str(address)
        created = handle.created_fteids(response)
        if created:  # CH: the UPF chose the F-TEID (§5.5.3)
            changes["n3_teid"], changes["n3_address"] = created[min(created)]
        await self._update(row, changes, event="session.created" if row["epoch"] == 0 else "session.restored")
        return response

    async def _update(
        self,
        row: dict[str, Any],
        changes: Mapping[str, Any],
        *,
        rules: Any = None,
        event: str | None = None,
    ) -> None:
        update = repo.SessionUpdate(
            session_id=row["id"],
            version=row["version"],
            supi=row["supi"],
            values=changes,
            rules=None if rules is None else rules.row_texts(),
            event=None if event is None else (event, dict(changes)),
        )
        new_version = await self.store.run_bulk(repo.update_sessions, update)
        row.update(changes)
        row["version"] = new_version
        row["updated_at"] = repo.now()

    def release_row(self, row: Mapping[str, Any]) -> None:
        """Give back what a session row holds (it is gone from the database)."""
        inv = self.inventory
        for pool_id, value in (
            (row.get("pool_v4_id"), row.get("ue_ipv4")),
            (row.get("pool_v6_id"), row.get("ue_ipv6")),
        ):
            pool = inv.pools.get(pool_id) if pool_id is not None else None
            if pool is not None and value is not None and pool.allocator.is_allocated(value):
                pool.allocator.release(value)
        upf = inv.upfs.get(row["upf_id"]) if row.get("upf_id") is not None else None
        if upf is not None:
            upf.load -= 1
            teid = row.get("n3_teid")
            if teid is not None and upf.teids.is_allocated(teid):
                upf.teids.release(teid)

    # -- reads -----------------------------------------------------------------

    async def _row(self, supi: str, pdu_session_id: int) -> RowMapping:
        row = await self.store.run(lambda c: repo.session_by_key(c, supi, pdu_session_id))
        if row is None:
            raise NotFound(f"{supi} has no PDU session {pdu_session_id}", field="pdu_session_id")
        return row

    async def get(self, supi: str, pdu_session_id: int) -> SessionView:
        return self.view(await self._row(supi, pdu_session_id))

    async def list_sessions(
        self, *, upf: str | None = None, state: str | None = None, limit: int = 100, after: int = 0
    ) -> list[SessionView]:
        upf_id = None
        if upf is not None:
            record = self.inventory.upf_by_node.get(upf)
            if record is None:
                raise NotFound(f"no UPF with Node ID {upf}", field="upf")
            upf_id = record.id
        rows = await self.store.run(
            lambda c: repo.sessions_page(c, upf_id=upf_id, state=state, limit=limit, after=after)
        )
        return [self.view(row) for row in rows]

    async def usage(self, supi: str, pdu_session_id: int) -> list[UsageView]:
        row = await self._row(supi, pdu_session_id)
        records = await self.store.run(lambda c: repo.usage_of(c, row["id"], [row["cp_seid"]]))
        return [usage_view(record) for record in records]

    # -- modify / delete: control_plane.services.changes ---------------------------

    async def modify(self, supi: str, pdu_session_id: int, request: ModifyRequest) -> SessionView:
        with self._held((supi, pdu_session_id)) as lock:
            async with lock:
                return await changes.modify(self, supi, pdu_session_id, request)

    async def delete(self, supi: str, pdu_session_id: int) -> SessionView:
        with self._held((supi, pdu_session_id)) as lock:
            async with lock:
                return await changes.delete(self, supi, pdu_session_id)


def _drop(conn: Connection, session_id: int, event: str, row: Mapping[str, Any], detail: dict[str, Any]) -> None:
    repo.delete_session(conn, session_id)
    repo.insert_event(conn, event, session_id=session_id, supi=row["supi"], detail=detail)


def _is_ip(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True
