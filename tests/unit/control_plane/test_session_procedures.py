"""Session procedures (SessionManager) on a real database with a fake UPF at the N4 boundary.

The fake records every PFCP request the procedures send and answers from a script (default:
accepted). The tests assert the rows the procedures leave in the database and what went out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, cast

import pytest
from sqlalchemy import Connection, RowMapping, select, update

import pfcp
from control_plane.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    ResourceExhausted,
    Unavailable,
    UpfRejected,
)
from control_plane.inventory import Inventory, UpfRecord
from control_plane.n4.handle import SessionResponse
from control_plane.services import reconcile, reports
from control_plane.services.sessions import N4, SEID_BLOCK, SessionManager
from control_plane.services.views import ModifyRequest, SessionRequest, SessionView
from control_plane.store import Store
from db.engine import make_engine
from db.models import Event, IpPool, Session, SessionRule, UsageRecord
from pfcp.aio import RequestTimeout
from pfcp.events import RequestReceived
from tests.harness.control_plane import DNN, SNSSAI, provision, supi, tai, ue_pool

CP_ADDRESS = "198.18.10.1"
UP_ADDRESS = IPv4Address("198.18.10.2")
GNB = "198.18.20.2"
ACCEPTED = pfcp.CauseValue.REQUEST_ACCEPTED
RULE_FAILURE = pfcp.CauseValue.RULE_CREATION_MODIFICATION_FAILURE  # 73
Answer = Callable[[pfcp.Message], SessionResponse] | BaseException


def accept(msg: pfcp.Message, *, cause: pfcp.CauseValue = ACCEPTED) -> SessionResponse:
    """What a UPF answers to ``msg`` (the UP SEID is the CP SEID plus a constant, to tell them apart)."""
    if isinstance(msg, pfcp.SessionEstablishmentRequest):
        seid = msg.cp_f_seid.seid
        return pfcp.SessionEstablishmentResponse(
            seid=seid,
            node_id=pfcp.NodeID(UP_ADDRESS),
            cause=pfcp.Cause(cause),
            up_f_seid=pfcp.FSEID(seid=seid + 0x1000_0000, ipv4=UP_ADDRESS) if cause == ACCEPTED else None,
        )
    if isinstance(msg, pfcp.SessionModificationRequest):
        return pfcp.SessionModificationResponse(seid=1, cause=pfcp.Cause(cause))
    assert isinstance(msg, pfcp.SessionDeletionRequest), msg
    return pfcp.SessionDeletionResponse(seid=1, cause=pfcp.Cause(cause))


def reject(cause: pfcp.CauseValue) -> Answer:
    return lambda msg: accept(msg, cause=cause)


class FakeN4:
    """The N4 boundary of SessionManager: records requests, answers from ``script`` or accepts."""

    def __init__(self) -> None:
        self.node_id = pfcp.NodeID(IPv4Address(CP_ADDRESS))
        self.address = CP_ADDRESS
        self.sent: list[pfcp.Message] = []
        self.script: list[Answer] = []

    async def request(self, upf: UpfRecord, msg: pfcp.Message) -> SessionResponse:
        self.sent.append(msg)
        answer = self.script.pop(0) if self.script else accept
        if isinstance(answer, BaseException):
            raise answer
        return answer(msg)


@dataclass
class Cp:
    store: Store
    n4: FakeN4
    manager: SessionManager
    upf: UpfRecord

    def rows(self, query: Any) -> list[RowMapping]:
        return list(self.store.run_sync(lambda c: c.execute(query).mappings().all()))

    def session(self, supi: str, pdu_session_id: int = 1) -> RowMapping | None:
        found = self.rows(
            select(Session.__table__).where(Session.supi == supi, Session.pdu_session_id == pdu_session_id)
        )
        return found[0] if found else None


CpFactory = Callable[..., Cp]


@pytest.fixture
def make_cp(database_url: str) -> Iterator[CpFactory]:
    """SessionManagers on one provisioned database (1 UPF, 5 subscribers); closed afterwards."""
    provision(database_url, 1, subscribers=5)
    stores: list[Store] = []

    def make(cidr: str | None = None) -> Cp:
        store = Store(make_engine(database_url))
        stores.append(store)
        if cidr is not None:

            def shrink(conn: Connection) -> None:
                conn.execute(update(IpPool).values(cidr=cidr))

            store.run_sync(shrink)
        inventory = store.run_sync(Inventory.load)
        (upf,) = inventory.upfs.values()
        upf.health = "up"
        fake = FakeN4()
        # SessionManager's N4 is the concrete class; FakeN4 has the same attributes it uses.
        # Unix seconds, as control_plane.app passes it.
        manager = SessionManager(store, inventory, cast(N4, fake), recovery_time_stamp=1_750_000_000)
        return Cp(store, fake, manager, upf)

    try:
        yield make
    finally:
        for store in stores:
            store.close()


@pytest.fixture
def cp(make_cp: CpFactory) -> Cp:
    return make_cp()


def request(n: int = 0, *, snssai: str = SNSSAI, dnn: str = DNN, gnb_teid: int | None = 0x100) -> SessionRequest:
    return SessionRequest(
        supi=supi(n), dnn=dnn, snssai=snssai, tai=tai(0), gnb_teid=gnb_teid, gnb_address=GNB if gnb_teid else None
    )


def establish(cp: Cp, n: int = 0, **kwargs: Any) -> SessionView:
    return asyncio.run(cp.manager.establish(request(n, **kwargs)))


def ue_ip_sent(msg: pfcp.Message) -> IPv4Address | None:
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    return msg.create_pdr[0].pdi.ue_ip_address[0].ipv4


# -- establish -------------------------------------------------------------------


def test_establish_accepted(cp: Cp) -> None:
    view = establish(cp)

    row = cp.session(supi(0))
    assert row is not None
    assert (row["state"], row["epoch"], row["up_seid"]) == ("active", 1, row["cp_seid"] + 0x1000_0000)
    assert view.cp_seid == row["cp_seid"] and view.state == "active"
    kinds = {r["kind"] for r in cp.rows(select(SessionRule.__table__).where(SessionRule.session_id == row["id"]))}
    assert kinds == {"pdr", "far", "qer", "urr"}
    (msg,) = cp.n4.sent
    assert isinstance(msg, pfcp.SessionEstablishmentRequest)
    assert msg.create_pdr and msg.create_far and msg.create_qer and msg.create_urr
    assert (msg.cp_f_seid.seid, msg.cp_f_seid.ipv4) == (row["cp_seid"], IPv4Address(CP_ADDRESS))
    assert ue_ip_sent(msg) == IPv4Address(row["ue_ipv4"])
    assert IPv4Address(row["ue_ipv4"]) in ue_pool(0)


def test_rejected_establishment_leaves_nothing(cp: Cp) -> None:
    cp.n4.script.append(reject(RULE_FAILURE))
    with pytest.raises(UpfRejected) as caught:
        establish(cp)

    assert caught.value.cause == 73
    assert cp.session(supi(0)) is None
    events = cp.rows(select(Event.__table__).where(Event.kind == "session.rejected"))
    assert [(e["supi"], e["detail"]["cause"]) for e in events] == [(supi(0), 73)]
    rejected_ip = ue_ip_sent(cp.n4.sent[0])
    assert establish(cp, 1).ue_ipv4 == str(rejected_ip)  # the address was given back


def test_unanswered_establishment_is_settled_by_the_reconciler(cp: Cp) -> None:
    cp.n4.script.append(RequestTimeout("no answer after N1 retransmissions"))
    with pytest.raises(Unavailable):
        establish(cp)
    row = cp.session(supi(0))
    assert row is not None
    assert (row["state"], row["up_seid"]) == ("deleting", None)
    held_ip = row["ue_ipv4"]

    cp.n4.sent.clear()
    done = asyncio.run(reconcile.reconcile_upf(cp.manager, cp.upf, restarted=False))

    assert done == {"deleted": 1}
    establishment, deletion = cp.n4.sent  # learn the UP SEID, then delete under it
    assert isinstance(establishment, pfcp.SessionEstablishmentRequest)
    assert establishment.cp_f_seid.seid == row["cp_seid"]
    assert isinstance(deletion, pfcp.SessionDeletionRequest)
    assert deletion.seid == row["cp_seid"] + 0x1000_0000
    assert cp.session(supi(0)) is None
    assert establish(cp, 1).ue_ipv4 == held_ip


def test_unknown_subscriber(cp: Cp) -> None:
    with pytest.raises(NotFound) as caught:
        asyncio.run(
            cp.manager.establish(SessionRequest(supi="imsi-999990000000001", dnn=DNN, snssai=SNSSAI, tai=tai(0)))
        )
    assert caught.value.field == "supi"
    assert cp.n4.sent == []


def test_dnn_not_allowed(cp: Cp) -> None:
    with pytest.raises(FailedPrecondition):
        establish(cp, dnn="ims")
    assert cp.n4.sent == []
    assert cp.rows(select(Session.id)) == []


def test_pool_exhausted(make_cp: CpFactory) -> None:
    cp = make_cp(cidr="198.19.0.0/30")  # two UE addresses: .1 and .2
    assert {establish(cp, 0).ue_ipv4, establish(cp, 1).ue_ipv4} == {"198.19.0.1", "198.19.0.2"}

    with pytest.raises(ResourceExhausted):
        establish(cp, 2)

    assert cp.session(supi(2)) is None
    assert len(cp.rows(select(Session.id))) == 2
    assert len(cp.n4.sent) == 2


def test_create_again_is_idempotent_for_the_same_session(cp: Cp) -> None:
    first = establish(cp)
    again = establish(cp)
    assert (again.cp_seid, again.ue_ipv4, again.state) == (first.cp_seid, first.ue_ipv4, "active")
    assert len(cp.n4.sent) == 1

    with pytest.raises(AlreadyExists):
        establish(cp, snssai="1-000002")
    assert len(cp.rows(select(Session.id))) == 1


# -- modify ----------------------------------------------------------------------


def rules_of(cp: Cp, session_id: int) -> list[tuple[str, int, Any]]:
    rows = cp.rows(select(SessionRule.__table__).where(SessionRule.session_id == session_id))
    return sorted((r["kind"], r["rule_id"], r["body"]) for r in rows)


def test_handover_updates_far_2_only(cp: Cp) -> None:
    establish(cp)
    cp.n4.sent.clear()
    change = ModifyRequest(gnb_teid=0x200, gnb_address="198.18.20.3")

    view = asyncio.run(cp.manager.modify(supi(0), 1, change))

    (msg,) = cp.n4.sent
    assert isinstance(msg, pfcp.SessionModificationRequest)
    assert [far.far_id.value for far in msg.update_far] == [2]
    others = ("create_pdr", "create_far", "create_qer", "create_urr", "remove_pdr", "remove_far")
    assert not any(getattr(msg, name) for name in (*others, "update_pdr", "update_qer", "update_urr"))
    row = cp.session(supi(0))
    assert row is not None
    assert msg.seid == row["up_seid"]
    assert (row["state"], row["gnb_teid"], row["gnb_address"]) == ("active", 0x200, "198.18.20.3")
    assert view.gnb_teid == 0x200


def test_rejected_modification_restores_the_rules(cp: Cp) -> None:
    establish(cp)
    before = cp.session(supi(0))
    assert before is not None
    old_rules = rules_of(cp, before["id"])
    cp.n4.script.append(reject(RULE_FAILURE))

    with pytest.raises(UpfRejected) as caught:
        asyncio.run(cp.manager.modify(supi(0), 1, ModifyRequest(gnb_teid=0x200, gnb_address="198.18.20.3")))

    assert caught.value.cause == 73
    row = cp.session(supi(0))
    assert row is not None
    assert (row["state"], row["gnb_teid"], row["gnb_address"]) == ("active", before["gnb_teid"], GNB)
    assert rules_of(cp, row["id"]) == old_rules


# -- delete ----------------------------------------------------------------------


def test_delete_keeps_the_final_usage(cp: Cp) -> None:
    created = establish(cp)
    report = pfcp.UsageReportSDR(
        urr_id=pfcp.URRID(1),
        ur_seqn=pfcp.URSEQN(0),
        usage_report_trigger=pfcp.UsageReportTrigger(pfcp.UsageReportTriggerFlags.TERMR),
        volume_measurement=pfcp.VolumeMeasurement(total_volume=3000, uplink_volume=1000, downlink_volume=2000),
    )
    cp.n4.script.append(
        lambda msg: pfcp.SessionDeletionResponse(seid=1, cause=pfcp.Cause(ACCEPTED), usage_report=(report,))
    )

    deleted = asyncio.run(cp.manager.delete(supi(0), 1))

    ((urr_id, seqn, total, final),) = [(u.urr_id, u.ur_seqn, u.volume_total, u.final) for u in deleted.final_usage]
    assert (urr_id, seqn, total, final) == (1, 0, 3000, True)
    deletion = cp.n4.sent[-1]
    assert isinstance(deletion, pfcp.SessionDeletionRequest) and deletion.seid == created.up_seid
    assert cp.session(supi(0)) is None
    (usage,) = cp.rows(select(UsageRecord.__table__))
    assert usage["final"] is True and usage["session_id"] is None
    assert (usage["cp_seid"], usage["urr_id"], usage["ur_seqn"]) == (created.cp_seid, 1, 0)
    assert (usage["volume_total"], usage["triggers"]) == (3000, ["TERMR"])
    assert establish(cp, 1).ue_ipv4 == created.ue_ipv4


# -- reports ---------------------------------------------------------------------


def test_session_report_is_stored_once(cp: Cp) -> None:
    created = establish(cp)

    def report(seid: int) -> RequestReceived:
        usage = pfcp.UsageReportSRR(
            urr_id=pfcp.URRID(1),
            ur_seqn=pfcp.URSEQN(5),
            usage_report_trigger=pfcp.UsageReportTrigger(pfcp.UsageReportTriggerFlags.VOLTH),
            volume_measurement=pfcp.VolumeMeasurement(total_volume=500, uplink_volume=200, downlink_volume=300),
        )
        msg = pfcp.SessionReportRequest(
            seid=seid, report_type=pfcp.ReportType(pfcp.ReportTypeFlags.USAR), usage_report=(usage,)
        )
        return RequestReceived(("198.18.10.2", 8805), msg, pfcp.NodeID(UP_ADDRESS))

    first = asyncio.run(reports.handle_report(cp.manager, report(created.cp_seid)))
    again = asyncio.run(reports.handle_report(cp.manager, report(created.cp_seid)))
    unknown = asyncio.run(reports.handle_report(cp.manager, report(created.cp_seid + 999)))

    for answer in (first, again):
        assert isinstance(answer, pfcp.SessionReportResponse)
        assert (answer.cause.value, answer.seid) == (ACCEPTED, created.up_seid)
    (usage,) = cp.rows(select(UsageRecord.__table__))
    assert (usage["ur_seqn"], usage["final"], usage["volume_total"]) == (5, False, 500)
    assert isinstance(unknown, pfcp.SessionReportResponse)
    assert int(unknown.cause.value) == 65  # Session context not found (Table 8.2.1-1)


# -- SEIDs -----------------------------------------------------------------------


def test_cp_seids_are_never_reused(make_cp: CpFactory) -> None:
    cp = make_cp()
    first = establish(cp, 0)
    asyncio.run(cp.manager.delete(supi(0), 1))
    second = establish(cp, 1)
    assert second.cp_seid > first.cp_seid

    restarted = make_cp()  # another manager on the same database: a control plane restart
    third = establish(restarted, 2)
    assert third.cp_seid >= first.cp_seid + SEID_BLOCK
