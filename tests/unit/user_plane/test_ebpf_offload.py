"""Which sessions the eBPF fast path carries (user_plane.ebpf.offload.decide): pure, no BPF."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Any

import pfcp
from user_plane.ebpf.offload import MAX_MBR_KBPS, DownlinkOffload, UplinkOffload, decide
from user_plane.rules import Far, LocalFTeid, Pdr, Qer, Urr
from user_plane.session import SessionState
from user_plane.usage import UrrMeter

SI = pfcp.SourceInterfaceValue
DI = pfcp.DestinationInterfaceValue
A = pfcp.ApplyActionFlags
N3 = IPv4Address("198.18.1.1")
GNB = IPv4Address("198.18.1.2")
UE = IPv4Address("198.19.0.7")
UE_POOL = IPv4Network("198.19.0.0/16")
INSTANCE = "internet"
UL_TEID = 0x00A1B2C3
DL_TEID = 0x00D4E5F6
QFI = 9
POOLS = {INSTANCE: (UE_POOL,)}
T0 = 1_700_000_000.0


def make_state(
    *,
    up_seid: int = 0x77,
    ue: IPv4Address = UE,
    ul_teid: int = UL_TEID,
    dl_teid: int = DL_TEID,
    gnb: IPv4Address = GNB,
    ul_qfi: int | None = QFI,
    qer: Qer | None = None,
    urrs: tuple[Urr, ...] = (),
    ul_pdr: dict[str, Any] | None = None,
    dl_pdr: dict[str, Any] | None = None,
    ul_far: dict[str, Any] | None = None,
    dl_far: dict[str, Any] | None = None,
    extra_pdrs: tuple[Pdr, ...] = (),
) -> SessionState:
    """One session as the SMF sets up a PDU session: uplink PDR on a TEID with Outer Header
    Removal -> FAR to the core; downlink PDR on the UE address -> FAR with GTP-U/UDP/IPv4 Outer
    Header Creation; a QER with the QFI (unless ``qer`` replaces it); ``urrs`` on both PDRs."""
    qer = qer if qer is not None else Qer(qer_id=1, qfi=QFI)
    urr_ids = tuple(u.urr_id for u in urrs)
    ul = Pdr(
        pdr_id=1,
        precedence=100,
        source_interface=SI.ACCESS,
        local_f_teid=LocalFTeid(ul_teid, N3),
        network_instance=INSTANCE,
        ue_ip_addresses=(pfcp.UEIPAddress(ipv4=ue),),
        qfis=() if ul_qfi is None else (ul_qfi,),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=1,
        qer_ids=(qer.qer_id,),
        urr_ids=urr_ids,
    )
    dl = Pdr(
        pdr_id=2,
        precedence=100,
        source_interface=SI.CORE,
        network_instance=INSTANCE,
        ue_ip_addresses=(pfcp.UEIPAddress(ipv4=ue, is_destination=True),),
        far_id=2,
        qer_ids=(qer.qer_id,),
        urr_ids=urr_ids,
    )
    ohc = pfcp.OuterHeaderCreation(pfcp.OuterHeaderCreationDescription.GTPU_UDP_IPV4, teid=dl_teid, ipv4=gnb)
    far1 = Far(far_id=1, apply_action=A.FORW, destination_interface=DI.CORE, network_instance=INSTANCE)
    far2 = Far(far_id=2, apply_action=A.FORW, destination_interface=DI.ACCESS, outer_header_creation=ohc)
    ul = dataclasses.replace(ul, **(ul_pdr or {}))
    dl = dataclasses.replace(dl, **(dl_pdr or {}))
    far1 = dataclasses.replace(far1, **(ul_far or {}))
    far2 = dataclasses.replace(far2, **(dl_far or {}))
    pdrs = {p.pdr_id: p for p in (ul, dl, *extra_pdrs)}
    return SessionState(
        cp_f_seid=pfcp.FSEID(seid=up_seid, ipv4=IPv4Address("198.18.0.10")),
        up_seid=up_seid,
        pdrs=pdrs,
        fars={1: far1, 2: far2},
        qers={qer.qer_id: qer},
        urrs={u.urr_id: u for u in urrs},
    )


def volume_urr(urr_id: int = 1, total: int = 1_000_000) -> Urr:
    return Urr(
        urr_id=urr_id,
        measurement_method=pfcp.MeasurementMethodFlags.VOLUM,
        reporting_triggers=pfcp.ReportingTriggersFlags.VOLTH,
        volume_threshold=pfcp.VolumeThreshold(total=total),
        measurement_information=pfcp.MeasurementInformationFlags.MNOP,
    )


def meters_of(state: SessionState) -> dict[int, UrrMeter]:
    return {urr_id: UrrMeter(urr, T0) for urr_id, urr in state.urrs.items()}


def offload(state: SessionState, n3: IPv4Address | None = N3) -> Any:
    return decide(state, meters_of(state), n3_ipv4=n3, pools=POOLS)


def test_the_usual_pdu_session_is_offloaded_both_ways() -> None:
    got = offload(make_state(urrs=(volume_urr(),), qer=Qer(qer_id=1, qfi=QFI, mbr_ul=10_000, mbr_dl=20_000)))
    assert got.uplink == UplinkOffload(1, UL_TEID, UE, QFI, False, 10_000, (1,))
    assert got.downlink == DownlinkOffload(2, UE, DL_TEID, GNB, QFI, False, False, 20_000, (1,))
    assert got.why_not == ()


def test_the_uplink_of_an_instance_with_a_gateway_stays_in_python() -> None:
    # the program's FIB lookup uses N3 as input device, so the gateway's "iif <tun>" rule
    # would never apply to offloaded uplink
    state = make_state()
    (instance,) = POOLS
    got = decide(state, meters_of(state), n3_ipv4=N3, pools=POOLS, gatewayed=[instance])
    assert got.uplink is None and got.downlink is not None
    assert any("gateway" in why for why in got.why_not)


def test_closed_gates_are_offloaded_as_drops() -> None:
    got = offload(make_state(qer=Qer(qer_id=1, gate_ul=pfcp.Gate.CLOSED, gate_dl=pfcp.Gate.CLOSED)))
    assert got.uplink is not None and got.uplink.gate_closed and got.uplink.qfi == QFI
    assert got.downlink is not None and got.downlink.gate_closed and got.downlink.qfi is None


def test_buffering_keeps_the_downlink_on_python_and_the_uplink_offloaded() -> None:
    got = offload(make_state(dl_far={"apply_action": A.BUFF | A.NOCP, "outer_header_creation": None}))
    assert got.uplink is not None and got.downlink is None
    assert "Apply Action" in got.why_not[0]


def test_a_volume_urr_shared_with_a_python_direction_offloads_nothing() -> None:
    state = make_state(urrs=(volume_urr(),), dl_far={"apply_action": A.DROP, "outer_header_creation": None})
    got = offload(state)
    assert got.uplink is None and got.downlink is None
    assert any("volume" in why for why in got.why_not)


def test_sdf_filters_and_several_access_pdrs_are_not_offloaded() -> None:
    sdf = pfcp.SDFFilter(flow_description="permit out ip from any to assigned")
    got = offload(make_state(ul_pdr={"sdf_filters": (sdf,)}, dl_pdr={"sdf_filters": (sdf,)}))
    assert got.uplink is None and got.downlink is None
    second = Pdr(
        pdr_id=3,
        precedence=200,
        source_interface=SI.ACCESS,
        local_f_teid=LocalFTeid(UL_TEID + 1, N3),
        outer_header_removal=pfcp.OuterHeaderRemoval(pfcp.OuterHeaderRemovalDescription.GTPU_UDP_IPV4),
        far_id=1,
    )
    got = offload(make_state(extra_pdrs=(second,)))
    assert got.uplink is None and got.downlink is not None


def test_ipv6_ue_addresses_a_ue_outside_the_pools_and_no_ipv4_n3_are_not_offloaded() -> None:
    v6 = pfcp.UEIPAddress(ipv6=IPv6Address("2001:db8::1"), is_destination=True)
    assert offload(make_state(dl_pdr={"ue_ip_addresses": (v6,)})).downlink is None
    assert offload(make_state(ue=IPv4Address("198.18.7.7"))).downlink is None
    assert offload(make_state(), n3=None).downlink is None


def test_blocked_quota_mbqe_and_too_fast_mbr_are_not_offloaded() -> None:
    state = make_state(urrs=(volume_urr(),))
    meters = meters_of(state)
    meters[1].blocked = True
    got = decide(state, meters, n3_ipv4=N3, pools=POOLS)
    assert got.uplink is None and got.downlink is None
    mbqe = dataclasses.replace(volume_urr(), measurement_information=pfcp.MeasurementInformationFlags.MBQE)
    assert offload(make_state(urrs=(mbqe,))).uplink is None
    fast = Qer(qer_id=1, mbr_ul=MAX_MBR_KBPS + 1, mbr_dl=MAX_MBR_KBPS)
    got = offload(make_state(qer=fast))
    assert got.uplink is None and got.downlink is not None and got.downlink.mbr_kbps == MAX_MBR_KBPS


def test_uplink_without_ue_address_or_qfi_has_no_such_checks() -> None:
    got = offload(make_state(ul_qfi=None, ul_pdr={"ue_ip_addresses": ()}))
    assert got.uplink is not None and (got.uplink.ue_ip, got.uplink.qfi) == (None, None)
