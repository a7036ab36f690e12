"""The session rule model and the all-or-nothing request plans (user_plane.rules / .session)."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

import pfcp
from user_plane.rules import Bar, Far, FSeid, LocalFTeid, OuterHeader, Pdr, Qer, UeIp, Urr
from user_plane.session import (
    Plan,
    Rejection,
    ResourcesExhausted,
    SessionState,
    plan_establishment,
    plan_modification,
)

A = pfcp.ApplyActionFlags
Cause = pfcp.CauseValue
RT = pfcp.RuleIDType
N3 = IPv4Address("192.0.2.1")
CP_SEID = pfcp.FSEID(seid=0x1122334455667788, ipv4=IPv4Address("127.0.0.10"))
NODE = pfcp.NodeID(IPv4Address("127.0.0.10"))
UE = IPv4Address("10.45.0.2")


class Allocator:
    """Hands out TEIDs from 0x1000 and records each call's CHID."""

    def __init__(self, limit: int = 100) -> None:
        self.calls: list[int | None] = []
        self.released: list[int] = []
        self.limit = limit

    def __call__(self, chid: int | None) -> int:
        if len(self.calls) >= self.limit:
            raise ResourcesExhausted
        self.calls.append(chid)
        return 0x1000 + len(self.calls)

    def release(self, teid: int) -> None:
        self.released.append(teid)


def no_allocation(chid: int | None) -> int:
    raise AssertionError("no TEID should be allocated")


def n3(pdi: pfcp.PDI) -> tuple[IPv4Address | None, IPv6Address | None]:
    return (N3, None)


# -- IE builders ------------------------------------------------------------


def pdi(
    *, access: bool = True, fteid: pfcp.FTEID | None = None, ue: IPv4Address = UE, sdf: str | None = None
) -> pfcp.PDI:
    src = pfcp.SourceInterfaceValue.ACCESS if access else pfcp.SourceInterfaceValue.CORE
    return pfcp.PDI(
        source_interface=pfcp.SourceInterface(src),
        local_f_teid=fteid,
        network_instance=pfcp.NetworkInstance("internet"),
        ue_ip_address=(pfcp.UEIPAddress(ipv4=ue, is_destination=not access),),
        sdf_filter=() if sdf is None else (pfcp.SDFFilter(flow_description=sdf),),
    )


def create_pdr(
    pdr_id: int,
    far_id: int | None = 1,
    *,
    precedence: int = 100,
    qer: int | None = None,
    urr: int | None = None,
    **kw: Any,
) -> pfcp.CreatePDR:
    return pfcp.CreatePDR(
        pdr_id=pfcp.PDRID(pdr_id),
        precedence=pfcp.Precedence(precedence),
        pdi=pdi(**kw),
        far_id=None if far_id is None else pfcp.FARID(far_id),
        qer_id=() if qer is None else (pfcp.QERID(qer),),
        urr_id=() if urr is None else (pfcp.URRID(urr),),
    )


def ch(chid: int | None = None, *, v4: bool = True, v6: bool = False) -> pfcp.FTEID:
    return pfcp.FTEID(choose_v4=v4, choose_v6=v6, choose_id=chid)


def ohc(teid: int = 0x55667788, addr: str = "10.0.0.1") -> pfcp.OuterHeaderCreation:
    return pfcp.OuterHeaderCreation(
        pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=teid, ipv4=IPv4Address(addr)
    )


def create_far(
    far_id: int,
    action: pfcp.ApplyActionFlags = A.FORW,
    *,
    core: bool = True,
    header: pfcp.OuterHeaderCreation | None = None,
    fwd: bool = True,
    bar: int | None = None,
) -> pfcp.CreateFAR:
    dst = pfcp.DestinationInterfaceValue.CORE if core else pfcp.DestinationInterfaceValue.ACCESS
    params = pfcp.ForwardingParameters(
        destination_interface=pfcp.DestinationInterface(dst),
        network_instance=pfcp.NetworkInstance("internet"),
        outer_header_creation=header,
    )
    return pfcp.CreateFAR(
        far_id=pfcp.FARID(far_id),
        apply_action=pfcp.ApplyAction(action),
        forwarding_parameters=params if fwd else None,
        bar_id=None if bar is None else pfcp.BARID(bar),
    )


def create_qer(qer_id: int) -> pfcp.CreateQER:
    return pfcp.CreateQER(qer_id=pfcp.QERID(qer_id), gate_status=pfcp.GateStatus(), mbr=pfcp.MBR(ul=10_000, dl=20_000))


def create_urr(urr_id: int, *, threshold: bool = True) -> pfcp.CreateURR:
    return pfcp.CreateURR(
        urr_id=pfcp.URRID(urr_id),
        measurement_method=pfcp.MeasurementMethod(pfcp.MeasurementMethodFlags.VOLUM),
        reporting_triggers=pfcp.ReportingTriggers(pfcp.ReportingTriggersFlags.VOLTH),
        volume_threshold=pfcp.VolumeThreshold(total=1_000_000) if threshold else None,
    )


def vars_of(ie: pfcp.CreateURR) -> dict[str, Any]:
    return {f.name: getattr(ie, f.name) for f in dataclasses.fields(ie) if f.name != "extra"}


def ser(
    pdrs: tuple[pfcp.CreatePDR, ...], fars: tuple[pfcp.CreateFAR, ...], **kw: Any
) -> pfcp.SessionEstablishmentRequest:
    return pfcp.SessionEstablishmentRequest(node_id=NODE, cp_f_seid=CP_SEID, create_pdr=pdrs, create_far=fars, **kw)


def smr(**kw: Any) -> pfcp.SessionModificationRequest:
    return pfcp.SessionModificationRequest(seid=7, **kw)


def planned(result: Plan | Rejection) -> Plan:
    assert isinstance(result, Plan), result
    return result


def rule_failure(kind: pfcp.RuleIDType, rule_id: int) -> Rejection:
    return Rejection(Cause.RULE_CREATION_MODIFICATION_FAILURE, None, pfcp.FailedRuleID(kind, rule_id))


@pytest.fixture
def base() -> SessionState:
    """UL PDR 1 -> FAR 1 (to core), DL PDR 2 -> FAR 2 (BUFF, BAR 1), QER 1, URR 1 on both."""
    req = ser(
        (
            create_pdr(1, 1, qer=1, urr=1, fteid=pfcp.FTEID(teid=0x100, ipv4=N3)),
            create_pdr(2, 2, qer=1, urr=1, access=False),
        ),
        (create_far(1), create_far(2, A.BUFF, fwd=False, bar=1)),
        create_qer=(create_qer(1),),
        create_urr=(create_urr(1),),
        create_bar=pfcp.CreateBAR(bar_id=pfcp.BARID(1)),
    )
    return planned(plan_establishment(req, 7, no_allocation)).state


# -- establishment ------------------------------------------------------------


def test_golden_establishment_request(golden_ser_bytes: bytes) -> None:
    req = pfcp.decode(golden_ser_bytes)
    assert isinstance(req, pfcp.SessionEstablishmentRequest)
    plan = planned(plan_establishment(req, 42, no_allocation))
    state = plan.state
    assert (state.up_seid, state.cp_f_seid.seid) == (42, 0x1122334455667788)
    assert plan.created_pdrs == () and plan.new_teids == ()
    assert state.pdrs[1] == Pdr(
        pdr_id=1,
        precedence=255,
        source_interface=pfcp.SourceInterfaceValue.ACCESS,
        local_f_teid=LocalFTeid(0x11223344, IPv4Address("10.0.0.2")),
        network_instance="internet",
        ue_ip_addresses=(UeIp(ipv4=UE),),
        qfis=(9,),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=1,
        qer_ids=(1,),
        urr_ids=(1,),
    )
    assert state.pdrs[2] == Pdr(
        pdr_id=2,
        precedence=255,
        source_interface=pfcp.SourceInterfaceValue.CORE,
        network_instance="internet",
        ue_ip_addresses=(UeIp(ipv4=UE, is_destination=True),),
        far_id=2,
        qer_ids=(1,),
        urr_ids=(1,),
    )
    assert state.fars == {
        1: Far(1, A.FORW, pfcp.DestinationInterfaceValue.CORE, "internet"),
        2: Far(2, A.FORW, pfcp.DestinationInterfaceValue.ACCESS, outer_header_creation=OuterHeader.from_ie(ohc())),
    }
    assert state.qers == {1: Qer(1, mbr_ul=100_000, mbr_dl=200_000, qfi=9)}
    VOLUM, DURAT = pfcp.MeasurementMethodFlags.VOLUM, pfcp.MeasurementMethodFlags.DURAT
    VOLTH, TIMTH = pfcp.ReportingTriggersFlags.VOLTH, pfcp.ReportingTriggersFlags.TIMTH
    assert state.urrs == {1: Urr(1, VOLUM | DURAT, VOLTH | TIMTH, volume_threshold=pfcp.VolumeThreshold(total=10**9))}
    assert state.bars == {}


def test_choose_id_shares_one_teid_and_created_pdrs_are_returned() -> None:
    alloc = Allocator()
    req = ser(
        (
            create_pdr(1, fteid=ch(5)),
            create_pdr(2, fteid=ch(5), sdf="permit out 17 from any to assigned"),
            create_pdr(3, fteid=ch()),
        ),
        (create_far(1),),
    )
    plan = planned(plan_establishment(req, 1, alloc, local_addresses=n3, release_teid=alloc.release))
    assert alloc.calls == [5, None]  # once per CHID, once per CH without CHID
    teids = {pid: p.local_f_teid.teid for pid, p in plan.state.pdrs.items() if p.local_f_teid}
    assert teids == {1: 0x1001, 2: 0x1001, 3: 0x1002}
    assert plan.new_teids == (0x1001, 0x1002)
    assert plan.created_pdrs == (
        pfcp.CreatedPDR(pdr_id=pfcp.PDRID(1), local_f_teid=pfcp.FTEID(teid=0x1001, ipv4=N3)),
        pfcp.CreatedPDR(pdr_id=pfcp.PDRID(2), local_f_teid=pfcp.FTEID(teid=0x1001, ipv4=N3)),
        pfcp.CreatedPDR(pdr_id=pfcp.PDRID(3), local_f_teid=pfcp.FTEID(teid=0x1002, ipv4=N3)),
    )
    assert plan.state.allocated_teids() == {0x1001, 0x1002}
    rsp = pfcp.SessionEstablishmentResponse(
        node_id=NODE, cause=pfcp.Cause(Cause.REQUEST_ACCEPTED), created_pdr=plan.created_pdrs
    )
    assert pfcp.decode(pfcp.encode(rsp)) == rsp


@pytest.mark.parametrize(
    ("fteid", "addresses"),
    [
        (ch(v4=False, v6=False), n3),  # CH without CHV4/CHV6
        (ch(v4=False, v6=True), n3),  # no IPv6 N3 address
        (ch(), None),  # no address at all
    ],
)
def test_invalid_f_teid_allocation_option(fteid: pfcp.FTEID, addresses: Any) -> None:
    kw = {} if addresses is None else {"local_addresses": addresses}
    result = plan_establishment(ser((create_pdr(1, fteid=fteid),), (create_far(1),)), 1, no_allocation, **kw)
    assert result == Rejection(Cause.INVALID_F_TEID_ALLOCATION_OPTION, pfcp.IEType.F_TEID)


def test_exhausted_allocator_gives_back_what_it_gave() -> None:
    alloc = Allocator(limit=1)
    req = ser((create_pdr(1, fteid=ch(1)), create_pdr(2, fteid=ch(2))), (create_far(1),))
    result = plan_establishment(req, 1, alloc, local_addresses=n3, release_teid=alloc.release)
    assert result == Rejection(Cause.NO_RESOURCES_AVAILABLE)
    assert alloc.released == [0x1001]


ESTABLISHMENT_REJECTIONS = {
    "duplicate PDR ID": (
        ser((create_pdr(1), create_pdr(1, sdf="permit out ip from any to assigned")), (create_far(1),)),
        rule_failure(RT.PDR, 1),
    ),
    "duplicate FAR ID": (ser((create_pdr(1),), (create_far(1), create_far(1))), rule_failure(RT.FAR, 1)),
    "unknown FAR": (ser((create_pdr(1), create_pdr(2, 9, access=False)), (create_far(1),)), rule_failure(RT.PDR, 2)),
    "unknown QER": (ser((create_pdr(3, qer=4),), (create_far(1),)), rule_failure(RT.PDR, 3)),
    "unknown URR": (ser((create_pdr(3, urr=4),), (create_far(1),)), rule_failure(RT.PDR, 3)),
    "unknown BAR": (ser((create_pdr(1),), (create_far(1, A.BUFF, bar=3),)), rule_failure(RT.FAR, 1)),
    "conflicting PDRs": (ser((create_pdr(1), create_pdr(2)), (create_far(1),)), rule_failure(RT.PDR, 2)),
    "FORW without Forwarding Parameters": (
        ser((create_pdr(1),), (create_far(1, fwd=False),)),
        Rejection(Cause.CONDITIONAL_IE_MISSING, pfcp.IEType.FORWARDING_PARAMETERS),
    ),
    "Outer Header Creation without a header": (
        ser(
            (create_pdr(1),), (create_far(1, header=pfcp.OuterHeaderCreation(pfcp.OuterHeaderCreationDescription(0))),)
        ),
        rule_failure(RT.FAR, 1),
    ),
    "GTP-U Outer Header Creation without TEID": (
        ser(
            (create_pdr(1),),
            (
                create_far(
                    1, header=pfcp.OuterHeaderCreation(pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, ipv4=N3)
                ),
            ),
        ),
        rule_failure(RT.FAR, 1),
    ),
    "unknown Linked URR": (
        ser(
            (create_pdr(1, urr=1),),
            (create_far(1),),
            create_urr=(pfcp.CreateURR(**{**vars_of(create_urr(1)), "linked_urr_id": (pfcp.LinkedURRID(9),)}),),
        ),
        rule_failure(RT.URR, 1),
    ),
    "unknown FAR for quota action": (
        ser(
            (create_pdr(1, urr=1),),
            (create_far(1),),
            create_urr=(pfcp.CreateURR(**{**vars_of(create_urr(1)), "far_id_for_quota_action": pfcp.FARID(4)}),),
        ),
        rule_failure(RT.URR, 1),
    ),
    "two exclusive actions": (
        ser((create_pdr(1),), (create_far(1, A.FORW | A.DROP),)),
        Rejection(Cause.MANDATORY_IE_INCORRECT, pfcp.IEType.APPLY_ACTION),
    ),
    "PDR without FAR ID": (
        ser((create_pdr(1, None),), (create_far(1),)),
        Rejection(Cause.CONDITIONAL_IE_MISSING, pfcp.IEType.FAR_ID),
    ),
}


@pytest.mark.parametrize("case", ESTABLISHMENT_REJECTIONS)
def test_establishment_rejections(case: str) -> None:
    req, expected = ESTABLISHMENT_REJECTIONS[case]
    assert plan_establishment(req, 1, no_allocation) == expected


def test_rejected_establishment_allocates_nothing() -> None:
    alloc = Allocator()
    req = ser((create_pdr(1, fteid=ch(1)), create_pdr(2, 9, access=False)), (create_far(1),))
    assert plan_establishment(req, 1, alloc, local_addresses=n3) == rule_failure(RT.PDR, 2)
    assert alloc.calls == []


def test_pdrs_differing_only_in_sdf_filter_or_precedence_do_not_conflict() -> None:
    req = ser(
        (create_pdr(1), create_pdr(2, sdf="permit out 17 from any to assigned 5000"), create_pdr(3, precedence=50)),
        (create_far(1),),
    )
    assert set(planned(plan_establishment(req, 1, no_allocation)).state.pdrs) == {1, 2, 3}


# -- modification: rejections leave the state untouched ---------------------

MODIFICATION_REJECTIONS = {
    "remove unknown PDR": (smr(remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(9)),)), rule_failure(RT.PDR, 9)),
    "remove unknown QER": (smr(remove_qer=(pfcp.RemoveQER(qer_id=pfcp.QERID(9)),)), rule_failure(RT.QER, 9)),
    "remove PDR twice": (smr(remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(1)),) * 2), rule_failure(RT.PDR, 1)),
    "update unknown FAR": (
        smr(update_far=(pfcp.UpdateFAR(far_id=pfcp.FARID(9), apply_action=pfcp.ApplyAction(A.DROP)),)),
        rule_failure(RT.FAR, 9),
    ),
    "update unknown URR": (smr(update_urr=(pfcp.UpdateURR(urr_id=pfcp.URRID(9)),)), rule_failure(RT.URR, 9)),
    "update FAR twice": (
        smr(update_far=(pfcp.UpdateFAR(far_id=pfcp.FARID(1), apply_action=pfcp.ApplyAction(A.DROP)),) * 2),
        rule_failure(RT.FAR, 1),
    ),
    "create an existing QER": (smr(create_qer=(create_qer(1),)), rule_failure(RT.QER, 1)),
    "remove a FAR a remaining PDR uses": (
        smr(remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(1)),)),
        rule_failure(RT.FAR, 1),
    ),
    "remove the BAR a FAR uses": (smr(remove_bar=pfcp.RemoveBAR(bar_id=pfcp.BARID(1))), rule_failure(RT.BAR, 1)),
    "remove a URR the PDRs use": (smr(remove_urr=(pfcp.RemoveURR(urr_id=pfcp.URRID(1)),)), rule_failure(RT.URR, 1)),
    "update PDR to an unknown FAR": (
        smr(update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(2), far_id=pfcp.FARID(7)),)),
        rule_failure(RT.PDR, 2),
    ),
    "update makes PDRs conflict": (
        smr(update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(2), pdi=pdi(fteid=pfcp.FTEID(teid=0x100, ipv4=N3))),)),
        rule_failure(RT.PDR, 2),
    ),
    "BUFF to FORW without Forwarding Parameters": (
        smr(update_far=(pfcp.UpdateFAR(far_id=pfcp.FARID(2), apply_action=pfcp.ApplyAction(A.FORW)),)),
        rule_failure(RT.FAR, 2),
    ),
    "query an unknown URR": (smr(query_urr=(pfcp.QueryURR(urr_id=pfcp.URRID(5)),)), rule_failure(RT.URR, 5)),
    "CH in Update PDR": (
        smr(update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), pdi=pdi(fteid=ch())),)),
        Rejection(Cause.INVALID_F_TEID_ALLOCATION_OPTION, pfcp.IEType.F_TEID),
    ),
    "Update Duplicating Parameters": (
        smr(
            update_far=(
                pfcp.UpdateFAR(
                    far_id=pfcp.FARID(1), update_duplicating_parameters=(pfcp.UpdateDuplicatingParameters(),)
                ),
            )
        ),
        Rejection(Cause.SERVICE_NOT_SUPPORTED, pfcp.IEType.UPDATE_DUPLICATING_PARAMETERS),
    ),
    # A valid part before the failing one must not survive either.
    "valid create then unknown update": (
        smr(create_qer=(create_qer(2),), update_qer=(pfcp.UpdateQER(qer_id=pfcp.QERID(3)),)),
        rule_failure(RT.QER, 3),
    ),
}


@pytest.mark.parametrize("case", MODIFICATION_REJECTIONS)
def test_modification_rejections_leave_state_unchanged(base: SessionState, case: str) -> None:
    req, expected = MODIFICATION_REJECTIONS[case]
    snapshot = copy.deepcopy(base)
    maps = (base.pdrs, base.fars, base.qers, base.urrs, base.bars)
    assert plan_modification(base, req, no_allocation, local_addresses=n3) == expected
    assert base == snapshot
    assert (base.pdrs, base.fars, base.qers, base.urrs, base.bars) == maps
    assert all(a is b for a, b in zip((base.pdrs, base.fars, base.qers, base.urrs, base.bars), maps, strict=True))


# -- modification: successes --------------------------------------------------


def test_remove_far_with_the_pdr_that_used_it(base: SessionState) -> None:
    req = smr(remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(1)),), remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(1)),))
    state = planned(plan_modification(base, req, no_allocation)).state
    assert set(state.pdrs) == {2} and set(state.fars) == {2}
    assert set(base.pdrs) == {1, 2}  # the old state is a different, unchanged object


def test_update_far_buff_to_forw_with_outer_header_creation(base: SessionState) -> None:
    ufp = pfcp.UpdateForwardingParameters(
        destination_interface=pfcp.DestinationInterface(pfcp.DestinationInterfaceValue.ACCESS),
        outer_header_creation=ohc(0xABC, "10.0.0.9"),
    )
    req = smr(
        update_far=(
            pfcp.UpdateFAR(
                far_id=pfcp.FARID(2), apply_action=pfcp.ApplyAction(A.FORW), update_forwarding_parameters=ufp
            ),
        )
    )
    plan = planned(plan_modification(base, req, no_allocation))
    assert plan.state.fars[2] == Far(
        2,
        A.FORW,
        pfcp.DestinationInterfaceValue.ACCESS,
        outer_header_creation=OuterHeader.from_ie(ohc(0xABC, "10.0.0.9")),
        bar_id=1,
    )
    assert plan.end_marker_fars == ()
    assert base.fars[2].apply_action == A.BUFF


def test_update_forwarding_parameters_keeps_what_it_does_not_carry(base: SessionState) -> None:
    ufp = pfcp.UpdateForwardingParameters(
        outer_header_creation=ohc(),
        pfcpsmreq_flags=pfcp.PFCPSMReqFlags(pfcp.PFCPSMReqFlagsValue.SNDEM),
    )
    req = smr(update_far=(pfcp.UpdateFAR(far_id=pfcp.FARID(1), update_forwarding_parameters=ufp),))
    plan = planned(plan_modification(base, req, no_allocation))
    far = plan.state.fars[1]
    assert (far.apply_action, far.destination_interface, far.network_instance) == (
        A.FORW,
        pfcp.DestinationInterfaceValue.CORE,
        "internet",
    )
    assert far.outer_header_creation == OuterHeader.from_ie(ohc())
    assert plan.end_marker_fars == (1,)


def test_create_update_remove_each_rule_kind(base: SessionState) -> None:
    req = smr(
        remove_qer=(),
        create_pdr=(create_pdr(3, 3, qer=2, urr=2, sdf="permit out 6 from any 80 to assigned"),),
        create_far=(create_far(3, A.DROP, fwd=False),),
        create_qer=(create_qer(2),),
        create_urr=(create_urr(2),),
        update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), precedence=pfcp.Precedence(10), urr_id=(pfcp.URRID(2),)),),
        update_qer=(pfcp.UpdateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(dl=pfcp.Gate.CLOSED)),),
        update_urr=(
            pfcp.UpdateURR(
                urr_id=pfcp.URRID(1),
                volume_threshold=pfcp.VolumeThreshold(total=5),
                measurement_period=pfcp.MeasurementPeriod(60),
            ),
        ),
        update_bar=pfcp.UpdateBAR(
            bar_id=pfcp.BARID(1), suggested_buffering_packets_count=pfcp.SuggestedBufferingPacketsCount(10)
        ),
    )
    state = planned(plan_modification(base, req, no_allocation)).state
    assert state.pdrs[3].sdf_filters == (pfcp.SDFFilter(flow_description="permit out 6 from any 80 to assigned"),)
    assert state.pdrs[1].precedence == 10 and state.pdrs[1].urr_ids == (2,) and state.pdrs[1].qer_ids == (1,)
    assert state.fars[3] == Far(3, A.DROP)
    assert state.qers[1] == Qer(1, gate_dl=pfcp.Gate.CLOSED, mbr_ul=10_000, mbr_dl=20_000)
    assert state.qers[2] == Qer(2, mbr_ul=10_000, mbr_dl=20_000)
    assert (state.urrs[1].volume_threshold, state.urrs[1].measurement_period) == (pfcp.VolumeThreshold(total=5), 60)
    assert state.bars[1] == Bar(1, suggested_buffering_packets_count=10)

    removal = smr(
        remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(3)),),
        remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(3)),),
        remove_qer=(pfcp.RemoveQER(qer_id=pfcp.QERID(2)),),
        remove_urr=(pfcp.RemoveURR(urr_id=pfcp.URRID(2)),),
        update_pdr=(pfcp.UpdatePDR(pdr_id=pfcp.PDRID(1), urr_id=(pfcp.URRID(1),)),),
        update_far=(pfcp.UpdateFAR(far_id=pfcp.FARID(2), apply_action=pfcp.ApplyAction(A.DROP), bar_id=None),),
    )
    after = planned(plan_modification(state, removal, no_allocation)).state
    assert (set(after.pdrs), set(after.fars), set(after.qers), set(after.urrs)) == ({1, 2}, {1, 2}, {1}, {1})
    # BAR 1 is still referenced by FAR 2, so removing it still fails; dropping the FAR's
    # reference is not expressible (no zero-length IE), removing FAR and BAR together is.
    both = smr(
        remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(2)),),
        remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(2)),),
        remove_bar=pfcp.RemoveBAR(bar_id=pfcp.BARID(1)),
    )
    assert planned(plan_modification(after, both, no_allocation)).state.bars == {}


def test_remove_and_recreate_the_same_id_in_one_request(base: SessionState) -> None:
    req = smr(remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(1)),), create_far=(create_far(1, A.DROP, fwd=False),))
    assert planned(plan_modification(base, req, no_allocation)).state.fars[1] == Far(1, A.DROP)


def test_create_then_update_in_one_request(base: SessionState) -> None:
    req = smr(
        create_qer=(create_qer(5),),
        update_qer=(pfcp.UpdateQER(qer_id=pfcp.QERID(5), mbr=pfcp.MBR(ul=1, dl=2)),),
    )
    assert planned(plan_modification(base, req, no_allocation)).state.qers[5].mbr_dl == 2


def test_chid_in_use_in_the_session_keeps_its_teid() -> None:
    alloc = Allocator()
    est = ser((create_pdr(1, fteid=ch(7)),), (create_far(1),))
    state = planned(plan_establishment(est, 1, alloc, local_addresses=n3)).state
    mod = smr(create_pdr=(create_pdr(2, fteid=ch(7), sdf="permit out ip from any to assigned"),))
    plan = planned(plan_modification(state, mod, alloc, local_addresses=n3))
    assert alloc.calls == [7] and plan.new_teids == ()
    assert plan.created_pdrs == (pfcp.CreatedPDR(pdr_id=pfcp.PDRID(2), local_f_teid=pfcp.FTEID(teid=0x1001, ipv4=N3)),)
    # Removing every PDR of the TEID frees it: the agent diffs allocated_teids().
    gone = smr(
        remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(1)), pfcp.RemovePDR(pdr_id=pfcp.PDRID(2))),
        create_pdr=(create_pdr(3),),
    )
    after = planned(plan_modification(plan.state, gone, alloc)).state
    assert plan.state.allocated_teids() - after.allocated_teids() == {0x1001}


def test_modification_moves_cp_f_seid(base: SessionState) -> None:
    new = pfcp.FSEID(seid=99, ipv4=IPv4Address("127.0.0.11"))
    state = planned(plan_modification(base, smr(cp_f_seid=new), no_allocation)).state
    assert state.cp_f_seid == FSeid.from_ie(new) and state.pdrs == base.pdrs and state.up_seid == base.up_seid


def test_rules_and_states_stay_frozen_dataclasses_with_their_defaults() -> None:
    # user_plane.frozen.fast_init replaced their __init__: same defaults, still immutable.
    far = Far(3, A.DROP)
    assert (far.destination_interface, far.duplicating_parameters) == (None, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        far.far_id = 4  # type: ignore[misc]
    assert dataclasses.replace(far, far_id=4) == Far(4, A.DROP) != far
    assert hash(Far(3, A.DROP)) == hash(far)
    fresh = SessionState(pfcp.FSEID(1, ipv4=IPv4Address("198.18.0.1")), 9)
    other = SessionState(pfcp.FSEID(1, ipv4=IPv4Address("198.18.0.1")), 9)
    assert fresh.pdrs == {} and fresh.pdrs is not other.pdrs  # default_factory: one dict each
    with pytest.raises(TypeError):
        Far()  # type: ignore[call-arg]


# -- compact desired state: what 100k sessions keep once each ------------------------------------


def two_pdr_request(ue: IPv4Address, cp_seid: int, gnb_teid: int) -> pfcp.SessionEstablishmentRequest:
    return pfcp.SessionEstablishmentRequest(
        node_id=NODE,
        cp_f_seid=pfcp.FSEID(seid=cp_seid, ipv4=IPv4Address("127.0.0.10")),
        create_pdr=(create_pdr(1, 1, qer=1, urr=1, ue=ue), create_pdr(2, 2, qer=1, urr=1, access=False, ue=ue)),
        create_far=(create_far(1), create_far(2, core=False, header=ohc(gnb_teid))),
        create_qer=(create_qer(1),),
        create_urr=(create_urr(1),),
    )


def test_state_keeps_compact_copies_of_the_ies_with_the_same_values() -> None:
    req = two_pdr_request(UE, 5, 0x100)
    state = planned(plan_establishment(req, 1, no_allocation)).state
    assert isinstance(state.cp_f_seid, FSeid) and state.cp_f_seid.to_ie() == req.cp_f_seid
    for pdr, pdr_ie in zip((state.pdrs[1], state.pdrs[2]), req.create_pdr, strict=True):
        assert all(isinstance(ue, UeIp) for ue in pdr.ue_ip_addresses)
        assert tuple(ue.to_ie() for ue in pdr.ue_ip_addresses if isinstance(ue, UeIp)) == pdr_ie.pdi.ue_ip_address
    header = state.fars[2].outer_header_creation
    assert isinstance(header, OuterHeader) and header.to_ie() == ohc(0x100)
    # The uplink and the downlink PDR name the UE's address: one object.
    assert state.pdrs[1].ue_ip_addresses[0].ipv4 is state.pdrs[2].ue_ip_addresses[0].ipv4


def test_sessions_share_equal_rule_tables_and_peer_addresses_but_nothing_of_their_own() -> None:
    one = planned(plan_establishment(two_pdr_request(UE, 5, 0x100), 1, no_allocation)).state
    two = planned(plan_establishment(two_pdr_request(IPv4Address("10.45.0.3"), 6, 0x200), 2, no_allocation)).state
    assert one.qers is two.qers and one.urrs is two.urrs  # equal QER / URR tables: one object
    assert one.fars[1] is two.fars[1]  # the FAR towards N6 is the same in both
    assert one.fars[2] != two.fars[2] and one.pdrs[1] != two.pdrs[1]  # their own TEIDs and UE addresses
    gnb_one, gnb_two = one.fars[2].outer_header_creation, two.fars[2].outer_header_creation
    assert gnb_one is not None and gnb_two is not None and gnb_one.ipv4 is gnb_two.ipv4
    assert one.cp_f_seid.ipv4 is two.cp_f_seid.ipv4
    assert one.bars == {} and two.bars == {} and not one.bars and len(one.bars) == 0


def test_a_modification_of_a_shared_table_leaves_the_other_sessions_alone() -> None:
    one = planned(plan_establishment(two_pdr_request(UE, 5, 0x100), 1, no_allocation)).state
    two = planned(plan_establishment(two_pdr_request(IPv4Address("10.45.0.3"), 6, 0x200), 2, no_allocation)).state
    closed = pfcp.UpdateQER(qer_id=pfcp.QERID(1), gate_status=pfcp.GateStatus(dl=pfcp.Gate.CLOSED))
    changed = planned(plan_modification(one, smr(update_qer=(closed,)), no_allocation)).state
    assert changed.qers[1].gate_dl == pfcp.Gate.CLOSED
    assert one.qers[1].gate_dl == two.qers[1].gate_dl == pfcp.Gate.OPEN and one.qers is two.qers
    bar = planned(plan_modification(one, smr(create_bar=pfcp.CreateBAR(bar_id=pfcp.BARID(1))), no_allocation)).state
    assert bar.bars == {1: Bar(1)} and one.bars == {} and two.bars == {}


def test_small_rule_tables_are_compact_and_read_as_the_dicts_they_replace() -> None:
    from user_plane.rule_values import RULE_TABLE_MAX, RuleTable, rule_table

    pdr1, pdr2 = Pdr(1, 10, 0, far_id=1), Pdr(2, 20, 1, far_id=2)
    source = {1: pdr1, 2: pdr2}
    table = rule_table(dict(source))
    assert isinstance(table, RuleTable)
    assert (table == source, source == table, table != source, table != {1: pdr1}) == (True, True, False, True)
    assert (table[2], table.get(2), table.get(3), table.get(3, "x")) == (pdr2, pdr2, None, "x")
    with pytest.raises(KeyError):
        table[3]
    assert (1 in table, 3 in table, pdr1 in table, len(table), list(table)) == (True, False, False, 2, [1, 2])
    assert list(table.values()) == [pdr1, pdr2] and list(table.items()) == [(1, pdr1), (2, pdr2)]
    assert table.keys() - {1} == {2} and dict(table) == source and repr(table) == repr(source)
    with pytest.raises(TypeError):
        hash(table)
    big = {i: Pdr(i, i, 0, far_id=1) for i in range(1, RULE_TABLE_MAX + 2)}
    assert rule_table(dict(big)) == big and type(rule_table(dict(big))) is dict
    # An establishment's own PDR and FAR tables take the compact form; a modification reads them.
    req = ser(
        (create_pdr(1, 1, fteid=pfcp.FTEID(teid=0x100, ipv4=N3)), create_pdr(2, 2, access=False)),
        (create_far(1), create_far(2)),
    )
    state = planned(plan_establishment(req, 7, no_allocation)).state
    assert isinstance(state.pdrs, RuleTable) and isinstance(state.fars, RuleTable)
    assert set(state.pdrs) == {1, 2} and state.fars[2].far_id == 2
    removed = smr(
        remove_far=(pfcp.RemoveFAR(far_id=pfcp.FARID(2)),), remove_pdr=(pfcp.RemovePDR(pdr_id=pfcp.PDRID(2)),)
    )
    assert set(planned(plan_modification(state, removed, no_allocation)).state.fars) == {1}
