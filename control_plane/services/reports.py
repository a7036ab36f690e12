"""PFCP Session Report Requests from UPFs (TS 29.244 §7.5.8): usage and downlink data.

The answer goes out only after the reports are committed: a UPF that hears
nothing retransmits (§6.4), and UR-SEQN deduplication (the ``usage_records``
unique key) makes the second copy harmless. So a crash never loses a report and
never stores one twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pfcp
from pfcp.events import RequestReceived

from .. import repo
from ..n4 import build, handle
from .changes import usage_rows

if TYPE_CHECKING:
    from .sessions import SessionManager

__all__ = ["handle_report"]


async def handle_report(manager: SessionManager, event: RequestReceived) -> pfcp.Message:
    msg = event.message
    assert isinstance(msg, pfcp.SessionReportRequest)
    cp_seid = msg.seid or 0
    row = await manager.store.run(lambda c: repo.session_by_cp_seid(c, cp_seid))
    if row is None:
        # §7.5.9.1 / Table 8.2.1-1: the session is unknown here.
        return build.session_report_response(up_seid=0, cause=pfcp.CauseValue.SESSION_CONTEXT_NOT_FOUND)
    upf = manager.inventory.upfs.get(row["upf_id"]) if row["upf_id"] is not None else None
    node = upf.node_id if upf is not None else (str(event.node_id.value) if event.node_id else "")
    records = usage_rows(row, node, handle.usage_facts(msg.usage_report), final=False)
    types = pfcp.flag_names(msg.report_type.value)
    downlink = "DLDR" in types
    detail: dict[str, Any] = {"report_type": sorted(types)}

    def store(conn: Any) -> None:
        if records:
            repo.insert_usage(conn, records)
        if downlink:
            # The UE is idle and data waits at the UPF: paging is the AMF's (TS 23.502 §4.2.3.3).
            repo.insert_event(conn, "session.downlink_data", session_id=row["id"], supi=row["supi"], detail=detail)

    await manager.store.run(store)
    return build.session_report_response(up_seid=row["up_seid"] or 0)
