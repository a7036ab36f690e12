"""Forwarder: real G-PDUs and IP packets in, exact bytes out (TS 29.244 §5.2, TS 29.281)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6

import pfcp
from user_plane import gtpu
from user_plane.driver import Direction, DownlinkData, DriverError, SessionUsage
from user_plane.forward import DEFAULT_BUFFER_PACKETS, Forwarder, UnknownTeid
from user_plane.rules import Bar, Far, LocalFTeid, Pdr, Qer, Urr
from user_plane.session import SessionState

A = pfcp.ApplyActionFlags
SI = pfcp.SourceInterfaceValue
DI = pfcp.DestinationInterfaceValue
OHC = pfcp.OuterHeaderCreationDescription
OHR = pfcp.OuterHeaderRemovalDescription
MM = pfcp.MeasurementMethodFlags
RT = pfcp.ReportingTriggersFlags
UT = pfcp.UsageReportTriggerFlags

N3 = IPv4Address("198.18.1.1")
N3_V6 = IPv6Address("2001:db8:3::1")
GNB = "198.18.1.2"
GNB2 = "198.18.1.3"
GNB_V6 = "2001:db8:3::2"
DN = "198.18.2.2"
UE = "198.19.0.10"
UE2 = "198.19.0.11"
UE_V6 = "2001:db8:19:1::"  # the UE's /64
UE_V6_HOST = "2001:db8:19:1::abcd"
DN_V6 = "2001:db8:2::2"
SEID = 0x10
UL_TEID = 0x1000
DL_TEID = 0x2000
T0 = 1_800_000_000.0
CP = pfcp.FSEID(seid=0x99, ipv4=IPv4Address("198.18.0.1"))


def ue_ip(addr: str, *, dst: bool, **kw: Any) -> pfcp.UEIPAddress:
    if ":" in addr:
        return pfcp.UEIPAddress(ipv6=IPv6Address(addr), is_destination=dst, **kw)
    return pfcp.UEIPAddress(ipv4=IPv4Address(addr), is_destination=dst)


def ul_pdr(pdr_id: int = 1, *, teid: int = UL_TEID, ue: str | None = UE, **kw: Any) -> Pdr:
    fields: dict[str, Any] = {
        "precedence": 100,
        "source_interface": SI.ACCESS,
        "local_f_teid": LocalFTeid(teid, N3),
        "ue_ip_addresses": () if ue is None else (ue_ip(ue, dst=False),),
        "outer_header_removal": pfcp.OuterHeaderRemoval(OHR.GTPU_UDP_IPV4),
        "far_id": 1,
    }
    fields.update(kw)
    return Pdr(pdr_id, **fields)


def dl_pdr(pdr_id: int = 2, *, ue: str | None = UE, **kw: Any) -> Pdr:
    fields: dict[str, Any] = {
        "precedence": 100,
        "source_interface": SI.CORE,
        "ue_ip_addresses": () if ue is None else (ue_ip(ue, dst=True),),
        "far_id": 2,
    }
    fields.update(kw)
    return Pdr(pdr_id, **fields)


def forw_n6(far_id: int = 1, instance: str | None = "internet") -> Far:
    return Far(far_id, A.FORW, DI.CORE, network_instance=instance)


def forw_gtpu(far_id: int = 2, peer: str = GNB, teid: int = DL_TEID) -> Far:
    if ":" in peer:
        ohc = pfcp.OuterHeaderCreation(OHC.GTPU_UDP_IPV6, teid=teid, ipv6=IPv6Address(peer))
    else:
        ohc = pfcp.OuterHeaderCreation(OHC.GTPU_UDP_IPV4, teid=teid, ipv4=IPv4Address(peer))
    return Far(far_id, A.FORW, DI.ACCESS, outer_header_creation=ohc)


def state(
    *pdrs: Pdr,
    fars: tuple[Far, ...] = (),
    qers: tuple[Qer, ...] = (),
    urrs: tuple[Urr, ...] = (),
    bars: tuple[Bar, ...] = (),
    seid: int = SEID,
) -> SessionState:
    pdrs = pdrs or (ul_pdr(), dl_pdr())
    fars = fars or (forw_n6(), forw_gtpu())
    return SessionState(
        CP,
        seid,
        {p.pdr_id: p for p in pdrs},
        {f.far_id: f for f in fars},
        {q.qer_id: q for q in qers},
        {u.urr_id: u for u in urrs},
        {b.bar_id: b for b in bars},
    )


def fwd(*instances: str) -> Forwarder:
    return Forwarder(N3, N3_V6, instances or ("internet",))


def udp4(src: str = UE, dst: str = DN, dport: int = 2000, payload: bytes = b"hello world") -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=1000, dport=dport) / payload)


def udp6(src: str = UE_V6_HOST, dst: str = DN_V6, dport: int = 2000, payload: bytes = b"hello v6") -> bytes:
    return bytes(IPv6(src=src, dst=dst) / UDP(sport=1000, dport=dport) / payload)


def gpdu(inner: bytes, teid: int = UL_TEID, qfi: int | None = None) -> bytes:
    return gtpu.encode_gpdu_header(teid, len(inner), qfi, pdu_type_dl=False) + inner


def encap(inner: bytes, teid: int = DL_TEID, qfi: int | None = None) -> bytes:
    return gtpu.encode_gpdu_header(teid, len(inner), qfi) + inner


# -- uplink / downlink basics ------------------------------------------------------


def test_uplink_ipv4_decapsulated_to_the_far_network_instance() -> None:
    f = fwd()
    assert f.install(state(), T0) == []
    inner = udp4()
    assert f.uplink(gpdu(inner), T0) == ("internet", inner)
    assert f.uplink(gpdu(inner, qfi=9), T0) == ("internet", inner)


def test_uplink_scapy_built_gpdu_with_pdu_session_container() -> None:
    f = fwd()
    f.install(state(ul_pdr(qfis=(5,)), dl_pdr()), T0)
    inner = IP(src=UE, dst=DN) / UDP(sport=1, dport=2) / (b"x" * 30)
    pkt = bytes(GTP_U_Header(teid=UL_TEID) / GTPPDUSessionContainer(type=1, QFI=5) / inner)
    assert f.uplink(pkt, T0) == ("internet", bytes(inner))
    wrong_qfi = bytes(GTP_U_Header(teid=UL_TEID) / GTPPDUSessionContainer(type=1, QFI=6) / inner)
    assert f.uplink(wrong_qfi, T0) is None
    no_container = bytes(GTP_U_Header(teid=UL_TEID) / inner)
    assert f.uplink(no_container, T0) is None
    assert f.counters["ul_no_pdr"] == 2


def test_uplink_network_instance_falls_back_to_pdr_then_single_instance() -> None:
    f = fwd("internet", "ims")
    f.install(state(ul_pdr(network_instance="ims"), dl_pdr(), fars=(forw_n6(instance=None), forw_gtpu())), T0)
    assert f.uplink(gpdu(udp4()), T0) == ("ims", udp4())
    g = fwd("internet")
    g.install(state(fars=(forw_n6(instance=None), forw_gtpu())), T0)
    assert g.uplink(gpdu(udp4()), T0) == ("internet", udp4())


def test_downlink_ipv4_plain_header_exact_bytes_and_scapy_view() -> None:
    f = fwd()
    f.install(state(), T0)
    inner = udp4(src=DN, dst=UE)
    out = f.downlink("internet", inner, T0)
    assert out == (b"\x30\xff" + len(inner).to_bytes(2, "big") + DL_TEID.to_bytes(4, "big") + inner, (GNB, 2152))
    assert out is not None
    parsed = GTP_U_Header(out[0])
    assert (parsed.teid, parsed.gtp_type, parsed.E) == (DL_TEID, 255, 0)
    assert bytes(parsed.payload) == inner


def test_downlink_qfi_of_the_qer_goes_into_the_pdu_session_container() -> None:
    f = fwd()
    f.install(state(ul_pdr(), dl_pdr(qer_ids=(1,)), qers=(Qer(1, qfi=9, rqi=True),)), T0)
    inner = udp4(src=DN, dst=UE)
    out = f.downlink("internet", inner, T0)
    assert out is not None
    assert out[0] == encap(inner, qfi=9)[:14] + bytes([0x40 | 9, 0]) + inner  # RQI bit set
    psc = GTP_U_Header(out[0])[GTPPDUSessionContainer]
    assert (psc.type, psc.QFI, psc.RQI) == (0, 9, 1)


def test_downlink_unknown_ue_and_network_instance_mismatch() -> None:
    f = fwd("internet", "ims")
    f.install(state(ul_pdr(), dl_pdr(network_instance="ims")), T0)
    assert f.downlink("internet", udp4(src=DN, dst=UE), T0) is None
    assert f.counters["dl_no_pdr"] == 1
    assert f.downlink("ims", udp4(src=DN, dst=UE), T0) is not None
    assert f.downlink("ims", udp4(src=DN, dst=UE2), T0) is None
    assert f.counters["dl_unknown_ue"] == 1


def test_ipv6_inner_both_directions_by_64_prefix() -> None:
    f = fwd()
    f.install(state(ul_pdr(ue=UE_V6), dl_pdr(ue=UE_V6)), T0)
    up = udp6()
    assert f.uplink(gpdu(up), T0) == ("internet", up)
    spoofed = udp6(src="2001:db8:19:2::1")
    assert f.uplink(gpdu(spoofed), T0) is None
    down = udp6(src=DN_V6, dst="2001:db8:19:1:ffff::1")
    assert f.downlink("internet", down, T0) == (encap(down), (GNB, 2152))
    assert f.downlink("internet", udp6(src=DN_V6, dst="2001:db8:19:2::1"), T0) is None
    assert f.downlink("internet", udp4(src=DN, dst=UE), T0) is None  # no IPv4 for this UE


def test_ipv6_delegated_prefix_from_the_ue_ip_address_ie() -> None:
    f = fwd()
    v6 = pfcp.UEIPAddress(ipv6=IPv6Address("2001:db8:1900::"), is_destination=True, ipv6_prefix_delegation_bits=8)
    f.install(state(ul_pdr(ue=None), dl_pdr(ue=None, ue_ip_addresses=(v6,))), T0)
    inside = udp6(src=DN_V6, dst="2001:db8:1900:ff::1")  # in the /56, outside its first /64
    assert f.downlink("internet", inside, T0) == (encap(inside), (GNB, 2152))
    assert f.downlink("internet", udp6(src=DN_V6, dst="2001:db8:1901::1"), T0) is None
    clash = state(ul_pdr(teid=5, ue=None), dl_pdr(ue=None, ue_ip_addresses=(ue_ip("2001:db8:1900:42::", dst=True),)))
    with pytest.raises(DriverError, match="overlaps"):
        f.install(replace(clash, up_seid=8), T0)


def test_ipv6_outer_header_for_an_ipv6_gnb() -> None:
    f = fwd()
    f.install(state(fars=(forw_n6(), forw_gtpu(peer=GNB_V6))), T0)
    inner = udp4(src=DN, dst=UE)
    assert f.downlink("internet", inner, T0) == (encap(inner), (GNB_V6, 2152))
    v4_only = Forwarder(N3, None, ["internet"])
    with pytest.raises(DriverError, match="IP version"):
        v4_only.install(state(fars=(forw_n6(), forw_gtpu(peer=GNB_V6))), T0)


def test_both_ohc_families_prefer_ipv4_when_n3_has_it() -> None:
    ohc = pfcp.OuterHeaderCreation(
        OHC.GTPU_UDP_IPV4 | OHC.GTPU_UDP_IPV6, teid=7, ipv4=IPv4Address(GNB), ipv6=IPv6Address(GNB_V6)
    )
    far = Far(2, A.FORW, DI.ACCESS, outer_header_creation=ohc)
    inner = udp4(src=DN, dst=UE)
    f = fwd()
    f.install(state(fars=(forw_n6(), far)), T0)
    assert f.downlink("internet", inner, T0) == (encap(inner, teid=7), (GNB, 2152))
    g = Forwarder(None, N3_V6, ["internet"])
    g.install(state(fars=(forw_n6(), far)), T0)
    assert g.downlink("internet", inner, T0) == (encap(inner, teid=7), (GNB_V6, 2152))


# -- PDI matching ---------------------------------------------------------------------


def test_precedence_lower_value_wins_whatever_the_pdr_id() -> None:
    dns = (pfcp.SDFFilter(flow_description="permit out 17 from any 53 to assigned"),)
    drop = Far(3, A.DROP)
    for specific_id, default_id in ((1, 4), (4, 1)):
        f = fwd()
        specific = ul_pdr(specific_id, precedence=10, sdf_filters=dns, far_id=3)
        default = ul_pdr(default_id, precedence=200)
        f.install(state(specific, default, dl_pdr(), fars=(forw_n6(), forw_gtpu(), drop)), T0)
        assert f.uplink(gpdu(udp4(dport=53)), T0) is None
        assert f.counters["drop_far"] == 1
        assert f.uplink(gpdu(udp4(dport=80)), T0) == ("internet", udp4(dport=80))


def test_sdf_filters_any_filter_matches_downlink() -> None:
    filters = (
        pfcp.SDFFilter(flow_description="permit out 17 from 198.18.2.2 to assigned 5000"),
        pfcp.SDFFilter(flow_description="permit out 17 from 198.18.2.2 to assigned 6000"),
    )
    video = dl_pdr(3, precedence=10, sdf_filters=filters, qer_ids=(2,))
    default = dl_pdr(qer_ids=(1,))
    f = fwd()
    f.install(state(ul_pdr(), video, default, qers=(Qer(1, qfi=9), Qer(2, qfi=5))), T0)
    for dport, qfi in ((5000, 5), (6000, 5), (7000, 9)):
        inner = udp4(src=DN, dst=UE, dport=dport)
        assert f.downlink("internet", inner, T0) == (encap(inner, qfi=qfi), (GNB, 2152))


def test_anti_spoofing_inner_source_must_be_the_ue_ip() -> None:
    f = fwd()
    f.install(state(), T0)
    assert f.uplink(gpdu(udp4(src=UE2)), T0) is None
    assert f.counters["ul_no_pdr"] == 1
    no_ue_check = fwd()
    no_ue_check.install(state(ul_pdr(ue=None), dl_pdr()), T0)
    assert no_ue_check.uplink(gpdu(udp4(src=UE2)), T0) == ("internet", udp4(src=UE2))


def test_ue_ip_with_sd_destination_on_an_access_pdr_checks_the_destination() -> None:
    # §8.2.62: S/D = 1 in a PDI names the destination address, whatever the interface.
    pdr = ul_pdr(ue_ip_addresses=(ue_ip(DN, dst=True),))
    f = fwd()
    f.install(state(pdr, dl_pdr()), T0)
    assert f.uplink(gpdu(udp4(src=UE2, dst=DN)), T0) == ("internet", udp4(src=UE2, dst=DN))
    assert f.uplink(gpdu(udp4(dst="198.18.2.9")), T0) is None


# -- malformed and unknown ------------------------------------------------------------


def test_unknown_teid_is_reported_for_an_error_indication() -> None:
    f = fwd()
    f.install(state(), T0)
    assert f.uplink(gpdu(udp4(), teid=0xDEAD), T0) == UnknownTeid(0xDEAD)
    assert f.counters["ul_unknown_teid"] == 1


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\xff\x00",  # truncated header
        b"\x30\xff\x00\x05" + UL_TEID.to_bytes(4, "big") + b"abc",  # length disagrees
        b"\x50\xff\x00\x00" + UL_TEID.to_bytes(4, "big"),  # GTP version 2
        gtpu.encode(gtpu.echo_request(1)),  # not a G-PDU
    ],
)
def test_malformed_gtpu_dropped_and_counted(data: bytes) -> None:
    f = fwd()
    f.install(state(), T0)
    assert f.uplink(data, T0) is None
    assert f.counters["ul_malformed_gtpu"] == 1


@pytest.mark.parametrize(
    "inner",
    [
        b"",
        udp4()[:-1],  # shorter than its Total Length
        udp4() + b"\x00",  # trailing octet
        b"\x55" + udp4()[1:],  # version 5
        b"\x44" + udp4()[1:],  # IHL 4
        udp6()[:39],
        udp6() + b"\x00",
    ],
)
def test_malformed_inner_packet_dropped_and_counted(inner: bytes) -> None:
    f = fwd()
    f.install(state(ul_pdr(ue=None), dl_pdr()), T0)
    assert f.uplink(gpdu(inner), T0) is None
    assert f.counters["ul_malformed_ip"] == 1
    assert f.downlink("internet", inner, T0) is None
    assert f.counters["dl_malformed_ip"] == 1


# -- QER --------------------------------------------------------------------------------


def test_gate_closed_drops_only_its_direction() -> None:
    f = fwd()
    qer = Qer(1, gate_ul=pfcp.Gate.CLOSED)
    f.install(state(ul_pdr(qer_ids=(1,)), dl_pdr(qer_ids=(1,)), qers=(qer,)), T0)
    assert f.uplink(gpdu(udp4()), T0) is None
    assert f.counters["drop_gate"] == 1
    assert f.downlink("internet", udp4(src=DN, dst=UE), T0) is not None


def offered(f: Forwarder, *, uplink: bool, mbr_kbps: int, seconds: float, load: float, size: int) -> float:
    """Send ``load`` x the MBR of ``size``-octet packets, evenly spaced; returns the bit/s that got through."""
    if uplink:
        inner = udp4(payload=b"u" * (size - 28))
    else:
        inner = udp4(src=DN, dst=UE, payload=b"d" * (size - 28))
    assert len(inner) == size
    per_second = load * mbr_kbps * 1000 / (size * 8)
    count = int(per_second * seconds)
    passed = 0
    data = gpdu(inner)
    for i in range(count):
        now = T0 + i / per_second
        out = f.uplink(data, now) if uplink else f.downlink("internet", inner, now)
        passed += out is not None
    return passed * size * 8 / seconds


@pytest.mark.parametrize("uplink", [True, False])
def test_mbr_holds_within_5_percent_at_5x_offered_load(uplink: bool) -> None:
    f = fwd()
    qer = Qer(1, mbr_ul=8000, mbr_dl=4000)
    f.install(state(ul_pdr(qer_ids=(1,)), dl_pdr(qer_ids=(1,)), qers=(qer,)), T0)
    mbr = 8000 if uplink else 4000
    rate = offered(f, uplink=uplink, mbr_kbps=mbr, seconds=3.0, load=5.0, size=1000)
    assert mbr * 1000 * 0.95 <= rate <= mbr * 1000 * 1.05
    assert f.counters["drop_mbr"] > 0


def test_mbr_counts_the_inner_ip_packet_bits() -> None:
    f = fwd()
    # 200 kbit/s: depth 10 000 bits (50 ms); a 1250-octet packet is 10 000 bits.
    f.install(state(ul_pdr(qer_ids=(1,)), dl_pdr(), qers=(Qer(1, mbr_ul=200),)), T0)
    inner = udp4(payload=b"z" * (1250 - 28))
    assert len(inner) == 1250
    # The bucket floor is 24 000 bits: two packets pass back to back, the third does not.
    assert f.uplink(gpdu(inner), T0) is not None
    assert f.uplink(gpdu(inner), T0) is not None
    assert f.uplink(gpdu(inner), T0) is None
    assert f.uplink(gpdu(inner), T0 + 0.05) is not None  # 50 ms at 200 kbit/s = 10 000 bits


def test_several_qers_on_one_pdr_all_apply() -> None:
    f = fwd()
    qers = (Qer(1, mbr_ul=100_000), Qer(2, mbr_ul=200))  # the slower bucket decides
    f.install(state(ul_pdr(qer_ids=(1, 2)), dl_pdr(), qers=qers), T0)
    inner = udp4(payload=b"z" * (1250 - 28))
    assert [f.uplink(gpdu(inner), T0) is not None for _ in range(3)] == [True, True, False]
    g = fwd()
    g.install(state(ul_pdr(qer_ids=(1, 2)), dl_pdr(), qers=(Qer(1), Qer(2, gate_ul=pfcp.Gate.CLOSED))), T0)
    assert g.uplink(gpdu(udp4()), T0) is None
    assert g.counters["drop_gate"] == 1


def test_bucket_persists_across_an_install_that_keeps_the_qer() -> None:
    f = fwd()
    st = state(ul_pdr(qer_ids=(1,)), dl_pdr(), qers=(Qer(1, mbr_ul=200),))
    f.install(st, T0)
    inner = udp4(payload=b"z" * (1250 - 28))
    assert f.uplink(gpdu(inner), T0) and f.uplink(gpdu(inner), T0)
    f.install(replace(st, pdrs={**st.pdrs, 1: replace(st.pdrs[1], precedence=5)}), T0)
    assert f.uplink(gpdu(inner), T0) is None  # the emptied bucket was kept, not refilled


# -- buffering -----------------------------------------------------------------------


def buffering_state(action: pfcp.ApplyActionFlags = A.BUFF | A.NOCP, count: int | None = 3) -> SessionState:
    return state(
        ul_pdr(),
        dl_pdr(qer_ids=(1,)),
        fars=(forw_n6(), Far(2, action, bar_id=1)),
        qers=(Qer(1, qfi=5),),
        bars=(Bar(1, suggested_buffering_packets_count=count),),
    )


def test_buff_nocp_reports_once_buffers_bounded_and_releases_on_forw() -> None:
    f = fwd()
    f.install(buffering_state(), T0)
    packets = [udp4(src=DN, dst=UE, payload=bytes([i]) * 10) for i in range(5)]
    for p in packets:
        assert f.downlink("internet", p, T0) is None
    assert list(f.events) == [DownlinkData(SEID, 2, 5)]
    assert f.buffered(SEID) == 3
    assert f.counters["dl_buffer_overflow"] == 2
    f.events.clear()
    released = f.install(state(ul_pdr(), dl_pdr(qer_ids=(1,)), qers=(Qer(1, qfi=5),)), T0 + 1)
    assert released == [(encap(p, qfi=5), (GNB, 2152)) for p in packets[:3]]
    assert f.buffered(SEID) == 0
    assert not f.events
    # Buffering again is a new episode: one new report.
    f.install(buffering_state(), T0 + 2)
    f.downlink("internet", packets[0], T0 + 2)
    f.downlink("internet", packets[1], T0 + 2)
    assert list(f.events) == [DownlinkData(SEID, 2, 5)]


def test_buffer_released_after_a_ue_address_change_keeps_only_the_new_address() -> None:
    # Released packets are found again by address: one sent to the UE's old address is not
    # forwarded on the new path (the downlink rule of a one-address session relies on that).
    f = fwd()
    f.install(buffering_state(), T0)
    f.downlink("internet", udp4(src=DN, dst=UE, payload=b"old"), T0)
    new_ue = "10.45.0.9"
    moved = state(ul_pdr(ue=new_ue), dl_pdr(ue=new_ue, qer_ids=(1,)), qers=(Qer(1, qfi=5),))
    assert f.install(moved, T0 + 1) == []
    assert f.buffered(SEID) == 0 and f.counters["dl_unknown_ue"] == 1
    packet = udp4(src=DN, dst=new_ue, payload=b"new")
    assert f.downlink("internet", packet, T0 + 1) == (encap(packet, qfi=5), (GNB, 2152))


def test_buffer_released_as_drop_is_discarded() -> None:
    f = fwd()
    f.install(buffering_state(), T0)
    f.downlink("internet", udp4(src=DN, dst=UE), T0)
    f.downlink("internet", udp4(src=DN, dst=UE), T0)
    dropped = state(ul_pdr(), dl_pdr(qer_ids=(1,)), fars=(forw_n6(), Far(2, A.DROP)), qers=(Qer(1, qfi=5),))
    assert f.install(dropped, T0 + 1) == []
    assert f.buffered(SEID) == 0
    assert f.counters["drop_far"] == 2


def test_buff_without_nocp_raises_no_report_and_drop_buffered_rearms() -> None:
    f = fwd()
    f.install(buffering_state(A.BUFF, count=None), T0)
    for _ in range(DEFAULT_BUFFER_PACKETS + 1):
        f.downlink("internet", udp4(src=DN, dst=UE), T0)
    assert not f.events
    assert f.buffered(SEID) == DEFAULT_BUFFER_PACKETS
    assert f.counters["dl_buffer_overflow"] == 1
    assert f.drop_buffered(SEID) == DEFAULT_BUFFER_PACKETS
    g = fwd()
    g.install(buffering_state(), T0)
    g.downlink("internet", udp4(src=DN, dst=UE), T0)
    assert g.drop_buffered(SEID) == 1
    g.downlink("internet", udp4(src=DN, dst=UE), T0)
    assert list(g.events) == [DownlinkData(SEID, 2, 5)] * 2


def test_install_that_stays_buff_keeps_the_buffer_and_reports_no_more() -> None:
    f = fwd()
    f.install(buffering_state(), T0)
    p = udp4(src=DN, dst=UE)
    f.downlink("internet", p, T0)
    assert f.install(buffering_state(), T0 + 1) == []
    f.downlink("internet", p, T0 + 1)
    assert f.buffered(SEID) == 2
    assert len(f.events) == 1


# -- end markers ----------------------------------------------------------------------


def test_end_marker_on_the_old_path_then_released_packets_on_the_new() -> None:
    f = fwd()
    f.install(state(), T0)
    f.install(buffering_state(), T0)
    p = udp4(src=DN, dst=UE)
    f.downlink("internet", p, T0)
    new = state(ul_pdr(), dl_pdr(qer_ids=(1,)), fars=(forw_n6(), forw_gtpu(peer=GNB2, teid=0x3000)), qers=(Qer(1),))
    # The previous state (BUFF) has no GTP-U path: nothing to end.
    assert f.install(new, T0 + 1, end_marker_fars=(2,)) == [(encap(p, teid=0x3000), (GNB2, 2152))]
    moved = replace(new, fars={**new.fars, 2: forw_gtpu(peer=GNB, teid=0x4000)})
    out = f.install(moved, T0 + 2, end_marker_fars=(2,))
    assert out == [(b"\x30\xfe\x00\x00\x00\x00\x30\x00", (GNB2, 2152))]
    em = GTP_U_Header(out[0][0])
    assert (em.gtp_type, em.teid, em.length) == (254, 0x3000, 0)
    assert f.downlink("internet", p, T0 + 2) == (encap(p, teid=0x4000), (GNB, 2152))


# -- URRs ----------------------------------------------------------------------------------


def volume_urr(urr_id: int = 1, **kw: Any) -> Urr:
    return Urr(urr_id, MM.VOLUM, RT.VOLTH, volume_threshold=pfcp.VolumeThreshold(total=1000), **kw)


def test_volume_threshold_report_reaches_events() -> None:
    f = fwd()
    f.install(state(ul_pdr(urr_ids=(1,)), dl_pdr(urr_ids=(1,)), urrs=(volume_urr(),)), T0)
    up, down = udp4(payload=b"u" * 372), udp4(src=DN, dst=UE, payload=b"d" * 372)  # 400 octets each
    f.uplink(gpdu(up), T0)
    f.downlink("internet", down, T0 + 1)
    assert not f.events
    f.uplink(gpdu(up), T0 + 2)
    (event,) = f.events
    assert isinstance(event, SessionUsage) and event.up_seid == SEID
    (report,) = event.reports
    assert (report.urr_id, report.trigger) == (1, UT.VOLTH)
    assert (report.ul_bytes, report.dl_bytes, report.ul_packets, report.dl_packets) == (800, 400, 2, 1)


def test_mbqe_counts_before_qos_enforcement() -> None:
    mbqe = pfcp.MeasurementInformationFlags.MBQE
    urrs = (Urr(1, MM.VOLUM, RT(0), measurement_information=mbqe), Urr(2, MM.VOLUM, RT(0)))
    f = fwd()
    qer = Qer(1, gate_ul=pfcp.Gate.CLOSED)
    f.install(state(ul_pdr(urr_ids=(1, 2), qer_ids=(1,)), dl_pdr(), urrs=urrs, qers=(qer,)), T0)
    assert f.uplink(gpdu(udp4()), T0) is None
    before, after = f.query(SEID, None, T0 + 1)
    assert (before.urr_id, before.ul_packets, before.ul_bytes) == (1, 1, len(udp4()))
    assert (after.urr_id, after.ul_packets) == (2, 0)


def test_exhausted_quota_drops_or_applies_the_far_for_quota_action() -> None:
    quota = Urr(1, MM.VOLUM, RT.VOLQU, volume_quota=pfcp.VolumeQuota(total=100))
    up = udp4(payload=b"q" * 72)  # 100 octets: reaches the quota
    f = fwd()
    f.install(state(ul_pdr(urr_ids=(1,)), dl_pdr(), urrs=(quota,)), T0)
    assert f.uplink(gpdu(up), T0) == ("internet", up)
    (event,) = f.events
    assert isinstance(event, SessionUsage) and event.reports[0].trigger == UT.VOLQU
    assert f.uplink(gpdu(up), T0 + 1) is None
    assert f.counters["drop_quota"] == 1
    g = fwd("internet", "redirect")
    with_action = replace(quota, far_id_for_quota_action=3)
    fars = (forw_n6(), forw_gtpu(), forw_n6(3, instance="redirect"))
    g.install(state(ul_pdr(urr_ids=(1,)), dl_pdr(), urrs=(with_action,), fars=fars), T0)
    assert g.uplink(gpdu(up), T0) == ("internet", up)
    assert g.uplink(gpdu(up), T0 + 1) == ("redirect", up)


def test_remove_urr_final_report_and_session_removal() -> None:
    f = fwd()
    urrs = (Urr(1, MM.VOLUM, RT(0)), Urr(2, MM.VOLUM, RT(0)))
    st = state(ul_pdr(urr_ids=(1, 2)), dl_pdr(urr_ids=(1,)), urrs=urrs)
    f.install(st, T0)
    f.uplink(gpdu(udp4()), T0)
    without_2 = replace(st, pdrs={**st.pdrs, 1: replace(st.pdrs[1], urr_ids=(1,))}, urrs={1: urrs[0]})
    f.install(without_2, T0 + 5)
    (removed,) = f.take_removed_reports(SEID)
    assert (removed.urr_id, removed.trigger, removed.ul_bytes) == (2, UT.TERMR, len(udp4()))
    assert f.take_removed_reports(SEID) == []
    f.uplink(gpdu(udp4()), T0 + 6)
    (final,) = f.remove(SEID, T0 + 7)
    assert (final.urr_id, final.trigger, final.ul_packets) == (1, UT.TERMR, 2)
    assert f.installed() == {}
    assert f.uplink(gpdu(udp4()), T0 + 8) == UnknownTeid(UL_TEID)
    assert f.remove(SEID, T0 + 9) == []


def test_periodic_report_through_tick_and_next_deadline() -> None:
    f = fwd()
    assert f.next_deadline() is None
    f.install(state(ul_pdr(urr_ids=(1,)), dl_pdr(), urrs=(Urr(1, MM.VOLUM, RT.PERIO, measurement_period=10),)), T0)
    f.uplink(gpdu(udp4()), T0 + 1)
    assert f.next_deadline() == at(T0 + 10)
    f.tick(T0 + 9)
    assert not f.events
    f.tick(T0 + 10)
    (event,) = f.events
    assert isinstance(event, SessionUsage)
    assert event.reports[0].trigger == UT.PERIO and event.reports[0].ul_packets == 1


def test_query_and_meter_kept_across_install() -> None:
    f = fwd()
    st = state(ul_pdr(urr_ids=(1,)), dl_pdr(urr_ids=(1,)), urrs=(Urr(1, MM.VOLUM, RT(0)),))
    f.install(st, T0)
    f.uplink(gpdu(udp4()), T0)
    f.install(replace(st, pdrs={**st.pdrs, 2: replace(st.pdrs[2], precedence=7)}), T0 + 1)
    f.downlink("internet", udp4(src=DN, dst=UE), T0 + 2)
    (report,) = f.query(SEID, [1], T0 + 3, reference=42)
    assert (report.ul_packets, report.dl_packets, report.query_urr_reference) == (1, 1, 42)
    assert report.trigger == UT.IMMER
    with pytest.raises(DriverError):
        f.query(SEID, [9], T0)
    with pytest.raises(DriverError):
        f.query(SEID + 1, None, T0)


# -- refused states leave the previous one in force -----------------------------------------


_PDR, _FAR = pfcp.RuleIDType.PDR, pfcp.RuleIDType.FAR


def refusals() -> list[tuple[str, SessionState, pfcp.FailedRuleID]]:
    dupl = Far(2, A.FORW | A.DUPL, DI.ACCESS, outer_header_creation=forw_gtpu().outer_header_creation)
    n9 = Far(1, A.FORW, DI.CORE, outer_header_creation=forw_gtpu().outer_header_creation)
    sdf = pfcp.SDFFilter(flow_description="deny out ip from any to any")
    return [
        ("Application ID", state(ul_pdr(), dl_pdr(application_id="youtube")), pfcp.FailedRuleID(_PDR, 2)),
        ("DUPL", state(fars=(forw_n6(), dupl)), pfcp.FailedRuleID(_FAR, 2)),
        ("N9", state(fars=(n9, forw_gtpu())), pfcp.FailedRuleID(_FAR, 1)),
        ("buffering uplink", state(fars=(Far(1, A.BUFF), forw_gtpu())), pfcp.FailedRuleID(_FAR, 1)),
        ("no N6", state(fars=(forw_n6(instance="nowhere"), forw_gtpu())), pfcp.FailedRuleID(_FAR, 1)),
        ("Outer Header Removal", state(ul_pdr(outer_header_removal=None), dl_pdr()), pfcp.FailedRuleID(_PDR, 1)),
        (
            "ACCESS with Outer Header Creation",
            state(fars=(forw_n6(), Far(2, A.FORW, DI.ACCESS))),
            pfcp.FailedRuleID(_FAR, 2),
        ),
        ("source interface", state(ul_pdr(), dl_pdr(source_interface=SI.CP_FUNCTION)), pfcp.FailedRuleID(_PDR, 2)),
        ("SDF filter", state(ul_pdr(sdf_filters=(sdf,))), pfcp.FailedRuleID(_PDR, 1)),
    ]


@pytest.mark.parametrize(("reason", "bad", "failed_rule"), refusals(), ids=[r for r, _, _ in refusals()])
def test_refused_state_keeps_the_previous_one(reason: str, bad: SessionState, failed_rule: pfcp.FailedRuleID) -> None:
    f = fwd()
    good = state(ul_pdr(urr_ids=(1,)), dl_pdr(), urrs=(Urr(1, MM.VOLUM, RT(0)),))
    f.install(good, T0)
    f.uplink(gpdu(udp4()), T0)
    with pytest.raises(DriverError, match=reason) as refused:
        f.install(bad, T0 + 1)
    assert refused.value.failed_rule == failed_rule  # the agent answers 73 with it (§8.2.80)
    assert f.installed() == {SEID: good}
    assert f.uplink(gpdu(udp4()), T0 + 2) == ("internet", udp4())
    assert f.downlink("internet", udp4(src=DN, dst=UE), T0 + 2) == (encap(udp4(src=DN, dst=UE)), (GNB, 2152))
    assert f.query(SEID, None, T0 + 3)[0].ul_packets == 2  # the meter was not replaced


def test_teid_and_ue_ip_belong_to_one_session() -> None:
    f = fwd()
    first = state()
    f.install(first, T0)
    other = state(ul_pdr(teid=UL_TEID, ue=UE2), dl_pdr(ue=UE2), seid=SEID + 1)
    with pytest.raises(DriverError, match="TEID") as refused:
        f.install(other, T0)
    assert refused.value.failed_rule == pfcp.FailedRuleID(_PDR, 1)  # the PDR matching on that TEID
    same_ue = state(ul_pdr(teid=UL_TEID + 1), dl_pdr(), seid=SEID + 1)
    with pytest.raises(DriverError, match="UE IP") as refused:
        f.install(same_ue, T0)
    assert refused.value.failed_rule == pfcp.FailedRuleID(_PDR, 1)  # the lowest PDR with that UE IP Address
    assert f.installed() == {SEID: first}
    fine = state(ul_pdr(teid=UL_TEID + 1, ue=UE2), dl_pdr(ue=UE2), seid=SEID + 1)
    f.install(fine, T0)
    assert f.uplink(gpdu(udp4(src=UE2), teid=UL_TEID + 1), T0) == ("internet", udp4(src=UE2))
    assert f.downlink("internet", udp4(src=DN, dst=UE), T0) == (encap(udp4(src=DN, dst=UE)), (GNB, 2152))
    # A session moving its own TEID and UE IP is not a conflict with itself.
    f.install(state(ul_pdr(teid=0x77, ue="198.19.0.99"), dl_pdr(ue="198.19.0.99")), T0)
    assert f.uplink(gpdu(udp4(src="198.19.0.99"), teid=0x77), T0) is not None
    assert f.uplink(gpdu(udp4()), T0) == UnknownTeid(UL_TEID)
    assert f.downlink("internet", udp4(src=DN, dst=UE), T0) is None


def test_features_and_direction_values() -> None:
    f = fwd()
    assert f.features & pfcp.UPFeatures.EMPU and f.features & pfcp.UPFeatures.QUOAC
    assert int(Direction.UPLINK) == 0


def test_first_packet_starts_time_metering_and_flags_the_timers() -> None:
    f = fwd()
    urr = Urr(1, MM.DURAT, RT.TIMTH, time_threshold=5)
    f.install(state(ul_pdr(urr_ids=(1,)), dl_pdr(), urrs=(urr,)), T0)
    assert f.timers_changed
    f.timers_changed = False
    assert f.next_deadline() is None  # time is metered from the first packet (§5.2.2.2)
    f.uplink(gpdu(udp4()), T0 + 1)
    assert f.timers_changed
    assert f.next_deadline() == at(T0 + 6)
    f.tick(T0 + 6)
    (event,) = f.events
    assert isinstance(event, SessionUsage)
    assert (event.reports[0].trigger, event.reports[0].duration) == (UT.TIMTH, 5)


def at(t: float) -> Any:
    return pytest.approx(t, abs=1e-6)  # T0 is 1.8e9: the default relative tolerance would be 30 min


def periodic(seid: int, ue: str, teid: int, period: int) -> SessionState:
    urr = Urr(1, MM.VOLUM, RT.PERIO, measurement_period=period)
    return state(ul_pdr(teid=teid, ue=ue, urr_ids=(1,)), dl_pdr(ue=ue), urrs=(urr,), seid=seid)


def test_next_deadline_follows_installs_removals_and_replacements() -> None:
    f = fwd()
    f.install(periodic(1, "198.19.0.1", 0x101, 30), T0)
    f.install(periodic(2, "198.19.0.2", 0x102, 10), T0)
    f.install(periodic(3, "198.19.0.3", 0x103, 20), T0)
    assert f.next_deadline() == at(T0 + 10)
    f.remove(2, T0 + 1)  # its entry is stale now
    assert f.next_deadline() == at(T0 + 20)
    f.install(periodic(3, "198.19.0.3", 0x103, 40), T0 + 2)  # Update URR: the period moved later
    assert f.next_deadline() == at(T0 + 30)
    f.install(periodic(1, "198.19.0.1", 0x101, 5), T0 + 3)  # earlier now: a new grid from the update
    assert f.next_deadline() == at(T0 + 8)
    f.tick(T0 + 7)
    assert not f.events
    f.tick(T0 + 8)
    (event,) = f.events
    assert isinstance(event, SessionUsage) and event.up_seid == 1 and event.reports[0].trigger == UT.PERIO
    assert f.next_deadline() == at(T0 + 13)  # session 1's next period
    for seid in (1, 3):
        f.remove(seid, T0 + 6)
    assert f.next_deadline() is None


def test_tick_reports_every_due_session_once_and_keeps_the_stale_entries_bounded() -> None:
    f = fwd()
    for i in range(50):
        f.install(periodic(100 + i, f"198.19.1.{i}", 0x200 + i, 10), T0)
    for _ in range(3):  # re-installs with the same URR keep their meters and their entries
        for i in range(50):
            f.install(periodic(100 + i, f"198.19.1.{i}", 0x200 + i, 10), T0)
    f.tick(T0 + 10)
    assert sorted(e.up_seid for e in f.events) == list(range(100, 150))
    assert all(isinstance(e, SessionUsage) and len(e.reports) == 1 for e in f.events)
    f.events.clear()
    f.tick(T0 + 10)  # nothing is due twice
    assert not f.events
    assert f.next_deadline() == at(T0 + 20)
    for i in range(50):  # churn: every install of a new meter files an entry, removals leave them stale
        f.remove(100 + i, T0 + 11)
        f.install(periodic(100 + i, f"198.19.1.{i}", 0x200 + i, 10), T0 + 11)
    assert len(f._timers) <= 2 * 50 + 1024


def test_a_packet_that_starts_time_metering_files_its_deadline() -> None:
    f = fwd()
    urr = Urr(1, MM.DURAT, RT.TIMTH, time_threshold=6)
    f.install(state(ul_pdr(urr_ids=(1,)), dl_pdr(), urrs=(urr,)), T0)
    assert f.next_deadline() is None  # time is metered from the first packet (§5.2.2.2)
    f.uplink(gpdu(udp4()), T0 + 1)
    assert f.next_deadline() == at(T0 + 7)


def test_meters_are_the_live_meters_and_unknown_sessions_raise() -> None:
    f = fwd()
    f.install(periodic(SEID, UE, UL_TEID, 10), T0)
    meters = f.meters(SEID)
    assert list(meters) == [1] and meters[1].urr.measurement_period == 10
    f.uplink(gpdu(udp4()), T0 + 1)
    assert f.query(SEID, [1], T0 + 2)[0].ul_packets == 1
    assert f.meters(SEID)[1] is meters[1]  # the same object the forwarder counts into
    meters[1].count(Direction.UPLINK, 100, T0 + 3)  # counted elsewhere (an offloaded path)
    f.meters_changed(SEID)
    assert f.query(SEID, [1], T0 + 4)[0].ul_bytes == 100
    with pytest.raises(DriverError):
        f.meters(SEID + 1)
    f.meters_changed(SEID + 1)  # unknown: nothing to do
