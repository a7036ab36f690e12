"""Modification and deletion of a session (the lock is held by the caller).

Modification (TS 23.502 §4.3.3): the new desired rules are committed in state
``modifying`` before the PFCP Session Modification Request goes out; the UPF's
acceptance makes the session ``active`` again, a rejection restores the previous
rules. A TAI outside the serving site's area relocates the session: when selection
picks another site, the session is released on its UPF and established again on
the new one with an address from that site's pool (an edge session follows the UE,
as SSC mode 2 allows; break before make).

Deletion (TS 23.502 §4.3.4): ``deleting`` is committed first; the UPF's answer
(or "Session context not found": it is gone already) ends it, and the final usage
reports of the Deletion Response are stored before the row goes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pfcp
from pfcp.aio import RequestTimeout

from .. import repo
from ..domain.rules import SessionRules
from ..domain.selection import NoUpfAvailable, select_upf
from ..errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable, UpfRejected
from ..n4 import build, handle
from .desired import desired_rules, peer_profile
from .views import ModifyRequest, SessionRequest, SessionView, usage_view

if TYPE_CHECKING:
    from .sessions import SessionManager

__all__ = ["delete", "modify", "usage_rows"]

_ACCEPTED = int(pfcp.CauseValue.REQUEST_ACCEPTED)
_GONE = int(pfcp.CauseValue.SESSION_CONTEXT_NOT_FOUND)


def usage_rows(row: Any, upf_node_id: str, facts: list[handle.UsageFacts], *, final: bool) -> list[dict[str, Any]]:
    return [
        {
            "session_id": row["id"],
            "cp_seid": row["cp_seid"],
            "epoch": row["epoch"],
            "supi": row["supi"],
            "upf_node_id": upf_node_id,
            "urr_id": f.urr_id,
            "ur_seqn": f.ur_seqn,
            "triggers": list(f.triggers),
            "start_time": f.start_time,
            "end_time": f.end_time,
            "volume_ul": f.volume_ul,
            "volume_dl": f.volume_dl,
            "volume_total": f.volume_total,
            "packets_ul": f.packets_ul,
            "packets_dl": f.packets_dl,
            "duration_s": f.duration_s,
            "final": final,
        }
        for f in facts
    ]


async def modify(manager: SessionManager, supi: str, pdu_session_id: int, request: ModifyRequest) -> SessionView:
    inv = manager.inventory
    row = dict(await manager._row(supi, pdu_session_id))
    if row["state"] != "active":
        raise FailedPrecondition(f"the session is {row['state']}, not active", field="pdu_session_id")
    if (request.gnb_teid is None) != (request.gnb_address is None):
        raise InvalidArgument("a new gNB F-TEID needs both its TEID and its address", field="gnb_teid")
    upf = inv.upfs[row["upf_id"]]
    policy = inv.policies.get(row["policy_id"]) if row["policy_id"] is not None else None
    if request.policy is not None:
        policy = inv.policy_by_name.get(request.policy)
        if policy is None:
            raise NotFound(f"no policy named {request.policy!r}", field="policy")
        if policy.dnn != row["dnn"]:
            raise FailedPrecondition(f"policy {policy.name!r} is for DNN {policy.dnn!r}", field="policy")
    if policy is None:
        raise FailedPrecondition("the session has no policy", field="policy")
    changes: dict[str, Any] = {"policy_id": policy.id}
    if request.gnb_teid is not None:
        changes["gnb_teid"], changes["gnb_address"] = request.gnb_teid, request.gnb_address
    if request.tai is not None and request.tai != row["tai"]:
        changes["tai"] = request.tai
        try:
            best = select_upf(inv.candidates(), dnn=row["dnn"], snssai=row["snssai"], tai=request.tai)
        except NoUpfAvailable:
            best = None  # nowhere better: the session stays where it is
        if best is not None and best.site != upf.site:
            return await _relocate(manager, row, {**changes})
    if not manager.associated(upf):
        raise Unavailable(f"UPF {upf.node_id} is not associated")
    old = SessionRules.from_rows(await manager.store.run(lambda c: repo.session_rules(c, row["id"])))
    new = desired_rules(inv, upf, policy, {**row, **changes})
    n3 = (row["n3_teid"], row["n3_address"]) if row["n3_teid"] is not None else None
    msg = build.modification_request(up_seid=row["up_seid"], old=old, new=new, peer=peer_profile(upf), n3_fteid=n3)
    if msg is None:
        await manager._update(row, changes)
        return manager.view(row)
    before = {key: row[key] for key in changes}
    await manager._update(row, {**changes, "state": "modifying"}, rules=new)
    try:
        response = await manager.n4.request(upf, msg)
    except (RequestTimeout, ConnectionError) as exc:
        raise Unavailable(f"UPF {upf.node_id} did not answer; the change is applied when it does: {exc}") from None
    cause = handle.cause_of(response)
    assert isinstance(response, pfcp.SessionModificationResponse)
    facts = handle.usage_facts(response.usage_report)
    if facts:
        records = usage_rows(row, upf.node_id, facts, final=False)
        await manager.store.run(lambda c: repo.insert_usage(c, records))
    if cause != _ACCEPTED:
        await manager._update(row, {**before, "state": "active", "last_cause": cause}, rules=old)
        raise UpfRejected(
            f"UPF {upf.node_id} rejected the modification: {handle.rejection_text(response)}", cause=cause
        )
    await manager._update(row, {"state": "active", "last_cause": cause}, event="session.modified")
    return manager.view(row)


async def _relocate(manager: SessionManager, row: dict[str, Any], changes: dict[str, Any]) -> SessionView:
    """Release the session on its UPF, then establish it again through selection."""
    await _release_on_upf(manager, row)
    manager.release_row(row)
    await manager.store.run(lambda c: repo.delete_session(c, row["id"]))
    request = SessionRequest(
        supi=row["supi"],
        dnn=row["dnn"],
        snssai=row["snssai"],
        tai=changes.get("tai", row["tai"]),
        pdu_session_id=row["pdu_session_id"],
        gnb_teid=changes.get("gnb_teid", row["gnb_teid"]),
        gnb_address=changes.get("gnb_address", row["gnb_address"]),
    )
    view = await manager._establish(request)
    await manager.store.run(
        lambda c: repo.insert_event(
            c, "session.relocated", supi=row["supi"], detail={"from_cp_seid": row["cp_seid"], "to": view.upf}
        )
    )
    return view


async def _release_on_upf(manager: SessionManager, row: dict[str, Any]) -> None:
    """Delete the session on its UPF and store the final usage; raises Unavailable/UpfRejected."""
    upf = manager.inventory.upfs.get(row["upf_id"]) if row["upf_id"] is not None else None
    if row["state"] != "deleting":
        await manager._update(row, {"state": "deleting"})
    if upf is None or row["up_seid"] is None:
        return  # never confirmed by a UPF: nothing to delete there
    try:
        response = await manager.n4.request(upf, build.deletion_request(up_seid=row["up_seid"]))
    except (RequestTimeout, ConnectionError) as exc:
        raise Unavailable(
            f"UPF {upf.node_id} did not answer the deletion; it completes when the UPF answers: {exc}"
        ) from None
    cause = handle.cause_of(response)
    if cause not in (_ACCEPTED, _GONE):
        raise UpfRejected(f"UPF {upf.node_id} rejected the deletion: {handle.rejection_text(response)}", cause=cause)
    assert isinstance(response, pfcp.SessionDeletionResponse)
    records = usage_rows(row, upf.node_id, handle.usage_facts(response.usage_report), final=True)
    if records:
        await manager.store.run(lambda c: repo.insert_usage(c, records))


async def delete(manager: SessionManager, supi: str, pdu_session_id: int) -> SessionView:
    row = dict(await manager._row(supi, pdu_session_id))
    await _release_on_upf(manager, row)

    def finish(conn: Any) -> list[Any]:
        # Read before the row goes: the stored final reports (deduplicated, a retransmitted
        # Deletion Response stores nothing twice) are what the caller gets back.
        final = [r for r in repo.usage_of(conn, row["id"], [row["cp_seid"]]) if r["final"]]
        repo.delete_session(conn, row["id"])
        repo.insert_event(conn, "session.deleted", session_id=row["id"], supi=supi, detail={"cp_seid": row["cp_seid"]})
        return final

    final = await manager.store.run(finish)
    manager.release_row(row)
    return replace(manager.view(row), final_usage=tuple(usage_view(r) for r in final))
