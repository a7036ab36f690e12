"""Session states for the VPP planning tests, built from PFCP requests as the agent builds them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

import pfcp
from tests.unit.user_plane.test_agent import N3, far, ser
from user_plane.session import Plan, SessionState, plan_establishment, plan_modification
from user_plane.vpp.plan import NodeContext

SEID = 0x77
GNB = IPv4Address("198.18.1.2")
CTX = NodeContext(N3, None, 0, {"internet": 100})


def _teids() -> Iterator[int]:
    return iter(range(0x1001, 0x2000))


def established(**kw: Any) -> SessionState:
    """ser(1) (uplink PDR 1 with CH, downlink PDR 2, FARs 1 and 2, QER 1, URR 1), accepted."""
    teids = _teids()
    plan = plan_establishment(ser(1, **kw), SEID, lambda chid: next(teids), local_addresses=lambda pdi: (N3, None))
    assert isinstance(plan, Plan), plan
    return plan.state


def modified(state: SessionState, **ies: Any) -> SessionState:
    teids = iter(range(0x3001, 0x4000))
    req = pfcp.SessionModificationRequest(seid=SEID, **ies)
    plan = plan_modification(state, req, lambda chid: next(teids), local_addresses=lambda pdi: (N3, None))
    assert isinstance(plan, Plan), plan
    return plan.state


def downlink_far(
    far_id: int = 2, *, gnb: IPv4Address = GNB, teid: int = 0x5000, forward: bool = False
) -> pfcp.UpdateFAR:
    """Update FAR: a new gNB F-TEID (``forward``: and FORW to the access, for a FAR that had none)."""
    ohc = pfcp.OuterHeaderCreation(pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=teid, ipv4=gnb)
    access = pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS) if forward else None
    return pfcp.UpdateFAR(
        far_id=pfcp.FARID(far_id),
        apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.FORW) if forward else None,
        update_forwarding_parameters=pfcp.UpdateForwardingParameters(
            destination_interface=access, outer_header_creation=ohc
        ),
    )


def action(far_id: int, flags: pfcp.ApplyActionFlags) -> pfcp.UpdateFAR:
    return pfcp.UpdateFAR(far_id=pfcp.FARID(far_id), apply_action=pfcp.ApplyAction(flags))


def qer(qer_id: int = 1, *, ul: int, dl: int) -> pfcp.CreateQER:
    """A QER with gates open and an MBR (kbit/s)."""
    return pfcp.CreateQER(qer_id=pfcp.QERID(qer_id), gate_status=pfcp.GateStatus(), mbr=pfcp.MBR(ul=ul, dl=dl))


def far_dl_without_ohc() -> pfcp.CreateFAR:
    """FAR 2 buffering, without Outer Header Creation (no gNB F-TEID yet)."""
    created = far(2, core=False)
    return replace(
        created,
        apply_action=pfcp.ApplyAction(pfcp.ApplyActionFlags.BUFF | pfcp.ApplyActionFlags.NOCP),
        forwarding_parameters=None,
    )
