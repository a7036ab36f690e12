"""Per-IE cases in the go-pfcp testutil style: (description, structured IE,
serialized octets), run as parse, encode, length and header checks.

Every expected octet string is written out from the layout figures of TS 29.244
§8.2 (cross-read with pycrate_mobile.TS29244_PFCP and Wireshark), not produced
by this codec. Flag octets are numbered from octet 5: the first payload octet.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

import pfcp
from pfcp import (
    FQCSID,
    FSEID,
    FTEID,
    GBR,
    MBR,
    QFI,
    ApplyAction,
    ApplyActionFlags,
    DLBufferingDuration,
    DLBufferingSuggestedPacketCount,
    DownlinkDataServiceInformation,
    FailedRuleID,
    ForwardingPolicy,
    Gate,
    GateStatus,
    GracefulReleasePeriod,
    HeaderEnrichment,
    NetworkInstance,
    NodeID,
    OuterHeaderCreation,
    OuterHeaderCreationDescription,
    OuterHeaderRemoval,
    OuterHeaderRemovalDescription,
    RecoveryTimeStamp,
    RedirectAddressType,
    RedirectInformation,
    RemoteGTPUPeer,
    ReportingTriggers,
    ReportingTriggersFlags,
    RuleIDType,
    SDFFilter,
    Timer,
    TimerUnit,
    TraceInformation,
    UEIPAddress,
    UPFeatures,
    UPFunctionFeatures,
    UserID,
    UserPlaneIPResourceInformation,
    VolumeMeasurement,
    VolumeThreshold,
)

OHC = OuterHeaderCreationDescription
V4 = IPv4Address("192.0.2.1")
V4_HEX = "c0000201"
V6 = IPv6Address("2001:db8::1")
V6_HEX = "20010db8000000000000000000000001"
SEID_HEX = "0102030405060708"


def tlv(ie_type: int, *payload_hex: str) -> bytes:
    """Type and Length (§8.1.1) around a payload written as hex pieces."""
    payload = bytes.fromhex("".join(payload_hex))
    return struct.pack(">HH", ie_type, len(payload)) + payload


def text(value: str) -> str:
    return value.encode().hex()


@dataclass(frozen=True)
class Case:
    description: str
    ie: pfcp.IE
    wire: bytes
    #: Attributes that are not part of equality but must survive decoding.
    attrs: dict[str, Any] = field(default_factory=dict)


CASES = [
    # F-TEID, §8.2.3: V4 bit 1, V6 bit 2, CH bit 3, CHID bit 4
    Case("F-TEID IPv4", FTEID(0x11223344, V4), tlv(21, "01", "11223344", V4_HEX)),
    Case("F-TEID IPv6", FTEID(1, ipv6=V6), tlv(21, "02", "00000001", V6_HEX)),
    Case("F-TEID IPv4+IPv6", FTEID(0xFFFFFFFF, V4, V6), tlv(21, "03", "ffffffff", V4_HEX, V6_HEX)),
    Case("F-TEID CH, IPv4", FTEID(choose_v4=True), tlv(21, "05")),
    Case("F-TEID CH, IPv6", FTEID(choose_v6=True), tlv(21, "06")),
    Case("F-TEID CH+CHID, both", FTEID(choose_v4=True, choose_v6=True, choose_id=7), tlv(21, "0f", "07")),
    # UE IP Address, §8.2.62: V6 1, V4 2, S/D 3, IPv6D 4, CHV4 5, CHV6 6, IP6PL 7
    Case("UE IP v4 source", UEIPAddress(ipv4=IPv4Address("10.45.0.2")), tlv(93, "02", "0a2d0002")),
    Case("UE IP v4 destination", UEIPAddress(ipv4=V4, is_destination=True), tlv(93, "06", V4_HEX)),
    Case(
        "UE IP v6 prefix delegation",
        UEIPAddress(ipv6=V6, ipv6_prefix_delegation_bits=8),
        tlv(93, "09", V6_HEX, "08"),
    ),
    Case("UE IP v6 prefix length", UEIPAddress(ipv6=V6, ipv6_prefix_length=64), tlv(93, "41", V6_HEX, "40")),
    Case(
        "UE IP v4+v6, delegation and length, destination",
        UEIPAddress(V4, V6, True, ipv6_prefix_delegation_bits=4, ipv6_prefix_length=56),
        tlv(93, "4f", V4_HEX, V6_HEX, "04", "38"),
    ),
    Case("UE IP CHV4", UEIPAddress(choose_v4=True), tlv(93, "10")),
    Case("UE IP CHV6 destination", UEIPAddress(is_destination=True, choose_v6=True), tlv(93, "24")),
    # Node ID, §8.2.38
    Case("Node ID IPv4", NodeID(IPv4Address("127.0.0.10")), tlv(60, "00", "7f00000a")),
    Case("Node ID IPv6", NodeID(V6), tlv(60, "01", V6_HEX)),
    Case(
        "Node ID FQDN (labels)",
        NodeID("smf1.edge.example"),
        tlv(60, "02", "04", text("smf1"), "04", text("edge"), "07", text("example")),
        {"label_encoded": True},
    ),
    Case(
        "Node ID FQDN plain text",
        NodeID("upf.local", False),
        tlv(60, "02", text("upf.local")),
        {"label_encoded": False},
    ),
    # F-SEID, §8.2.37: V6 bit 1, V4 bit 2
    Case("F-SEID IPv4", FSEID(0x0102030405060708, V4), tlv(57, "02", SEID_HEX, V4_HEX)),
    Case("F-SEID IPv6", FSEID(0x0102030405060708, ipv6=V6), tlv(57, "01", SEID_HEX, V6_HEX)),
    Case("F-SEID both", FSEID(2**64 - 1, V4, V6), tlv(57, "03", "ffffffffffffffff", V4_HEX, V6_HEX)),
    # SDF Filter, §8.2.5: FD 1, TTC 2, SPI 3, FL 4, BID 5; octet 6 spare
    Case(
        "SDF Filter, every field",
        SDFFilter("permit out ip from any to assigned", 0x2CFC, 0x1000, 0x0ABCDE, 7),
        tlv(
            23, "1f", "00", "0022", text("permit out ip from any to assigned"), "2cfc", "00001000", "0abcde", "00000007"
        ),
    ),
    Case(
        "SDF Filter, flow description",
        SDFFilter("permit out 17 from any to assigned"),
        tlv(23, "01", "00", "0022", text("permit out 17 from any to assigned")),
    ),
    Case("SDF Filter, filter ID only", SDFFilter(sdf_filter_id=3), tlv(23, "10", "00", "00000003")),
    # Outer Header Creation, §8.2.56: description octets 5 (low) and 6
    Case(
        "OHC GTP-U/UDP/IPv4",
        OuterHeaderCreation(OHC.GTPU_UDP_IPV4, teid=0x55667788, ipv4=IPv4Address("10.0.0.1")),
        tlv(84, "0100", "55667788", "0a000001"),
    ),
    Case(
        "OHC GTP-U/UDP/IPv6",
        OuterHeaderCreation(OHC.GTPU_UDP_IPV6, teid=1, ipv6=V6),
        tlv(84, "0200", "00000001", V6_HEX),
    ),
    Case(
        "OHC UDP/IPv4 with port", OuterHeaderCreation(OHC.UDP_IPV4, ipv4=V4, port=2152), tlv(84, "0400", V4_HEX, "0868")
    ),
    Case(
        "OHC UDP/IPv6 with port", OuterHeaderCreation(OHC.UDP_IPV6, ipv6=V6, port=5000), tlv(84, "0800", V6_HEX, "1388")
    ),
    Case(
        "OHC IPv4 with C-TAG and S-TAG",
        OuterHeaderCreation(OHC.IPV4 | OHC.C_TAG | OHC.S_TAG, ipv4=V4, c_tag=b"\x07\x00\x64", s_tag=b"\x07\x00\xc8"),
        tlv(84, "d000", V4_HEX, "070064", "0700c8"),
    ),
    Case(
        "OHC GTP-U/UDP/IPv4 with N6 indication (octet 6)",
        OuterHeaderCreation(OHC.GTPU_UDP_IPV4 | OHC.N6_INDICATION, teid=9, ipv4=V4),
        tlv(84, "0102", "00000009", V4_HEX),
    ),
    # Outer Header Removal, §8.2.64
    Case("OHR GTP-U/UDP/IPv4", OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IPV4), tlv(95, "00")),
    Case(
        "OHR GTP-U/UDP/IP, delete PDU Session Container",
        OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IP, True),
        tlv(95, "06", "01"),
    ),
    Case(
        "OHR GTP-U/UDP/IPv6, extension octet without deletion",
        OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IPV6, False),
        tlv(95, "01", "00"),
    ),
    # Apply Action, §8.2.26: one octet (Rel-15) or two
    Case("Apply Action FORW, 1 octet", ApplyAction(ApplyActionFlags.FORW, 1), tlv(44, "02"), {"octets": 1}),
    Case("Apply Action FORW, 2 octets", ApplyAction(ApplyActionFlags.FORW), tlv(44, "0200"), {"octets": 2}),
    Case(
        "Apply Action FORW+DUPL+BDPN (octet 6)",
        ApplyAction(ApplyActionFlags.FORW | ApplyActionFlags.DUPL | ApplyActionFlags.BDPN),
        tlv(44, "1202"),
    ),
    Case("Apply Action BUFF+NOCP", ApplyAction(ApplyActionFlags.BUFF | ApplyActionFlags.NOCP), tlv(44, "0c00")),
    # Reporting Triggers, §8.2.19: three octets
    Case(
        "Reporting Triggers VOLTH+TIMTH",
        ReportingTriggers(ReportingTriggersFlags.VOLTH | ReportingTriggersFlags.TIMTH),
        tlv(37, "060000"),
        {"octets": 3},
    ),
    Case(
        "Reporting Triggers PERIO+VOLQU+REEMR, one per octet",
        ReportingTriggers(ReportingTriggersFlags.PERIO | ReportingTriggersFlags.VOLQU | ReportingTriggersFlags.REEMR),
        tlv(37, "010101"),
    ),
    Case(
        "Reporting Triggers, Rel-15 two octets",
        ReportingTriggers(ReportingTriggersFlags.VOLTH, 2),
        tlv(37, "0200"),
        {"octets": 2},
    ),
    # UP Function Features, §8.2.25
    Case(
        "UP features FTUP+EMPU", UPFunctionFeatures(UPFeatures.FTUP | UPFeatures.EMPU), tlv(43, "1001"), {"octets": 2}
    ),
    Case(
        "UP features over six octets",
        UPFunctionFeatures(
            UPFeatures.BUCP
            | UPFeatures.TRACE
            | UPFeatures.UEIP
            | UPFeatures.MPTCP
            | UPFeatures.ETHAR
            | UPFeatures.NSPOC
        ),
        tlv(43, "011004802004"),
        {"octets": 6},
    ),
    # Volume Threshold §8.2.13, Volume Measurement §8.2.44
    Case("Volume Threshold TOVOL", VolumeThreshold(total=1_000_000_000), tlv(31, "01", "000000003b9aca00")),
    Case(
        "Volume Threshold ULVOL+DLVOL",
        VolumeThreshold(uplink=1, downlink=2**64 - 1),
        tlv(31, "06", "0000000000000001", "ffffffffffffffff"),
    ),
    Case(
        "Volume Measurement, volumes and packets",
        VolumeMeasurement(1, 2, 3, 4, 5, 6),
        tlv(66, "3f", *(f"{i:016x}" for i in range(1, 7))),
    ),
    Case("Volume Measurement TONOP only", VolumeMeasurement(total_packets=100), tlv(66, "08", "0000000000000064")),
    # MBR §8.2.8, GBR §8.2.9: 40-bit UL then DL
    Case("MBR", MBR(100_000, 200_000), tlv(26, "00000186a0", "0000030d40")),
    Case("GBR at 40 bits", GBR(2**40 - 1, 0), tlv(27, "ffffffffff", "0000000000")),
    Case("QFI", QFI(63), tlv(124, "3f")),
    # Gate Status, §8.2.7: UL bits 4-3, DL bits 2-1
    Case("Gate Status open/open", GateStatus(), tlv(25, "00")),
    Case("Gate Status UL closed", GateStatus(Gate.CLOSED, Gate.OPEN), tlv(25, "04")),
    Case("Gate Status DL closed", GateStatus(Gate.OPEN, Gate.CLOSED), tlv(25, "01")),
    # Network Instance, §8.2.4
    Case(
        "Network Instance label", NetworkInstance("internet"), tlv(22, "08", text("internet")), {"label_encoded": True}
    ),
    Case(
        "Network Instance two labels",
        NetworkInstance("access.edge"),
        tlv(22, "06", text("access"), "04", text("edge")),
    ),
    Case(
        "Network Instance plain text",
        NetworkInstance("internet", False),
        tlv(22, text("internet")),
        {"label_encoded": False},
    ),
    # Redirect Information, §8.2.20
    Case(
        "Redirect URL",
        RedirectInformation(RedirectAddressType.URL, "http://portal.example/"),
        tlv(38, "02", "0016", text("http://portal.example/")),
    ),
    Case(
        "Redirect IPv4 and IPv6",
        RedirectInformation(RedirectAddressType.IPV4_AND_IPV6, "192.0.2.1", "2001:db8::1"),
        tlv(38, "04", "0009", text("192.0.2.1"), "000b", text("2001:db8::1")),
    ),
    # Header Enrichment, §8.2.67: type, name length, name, value length, value
    Case(
        "Header Enrichment HTTP",
        HeaderEnrichment(b"X-MSISDN", b"8613912345678"),
        tlv(98, "00", "08", text("X-MSISDN"), "0d", text("8613912345678")),
    ),
    # Forwarding Policy, §8.2.23
    Case("Forwarding Policy", ForwardingPolicy(b"policy-1"), tlv(41, "08", text("policy-1"))),
    # User ID, §8.2.101: IMSIF 1, IMEIF 2, MSISDNF 3, NAIF 4; TBCD with filler F
    Case(
        "User ID IMSI (odd digits)",
        UserID(imsi="001010123456789"),
        tlv(141, "01", "08", "00010121436587f9"),
    ),
    Case("User ID IMEI (even digits)", UserID(imei="3563640912345678"), tlv(141, "02", "08", "5336469021436587")),
    Case(
        "User ID, all four",
        UserID("001010123456789", "3563640912345678", "8613912345678", "ue@example.org"),
        tlv(
            141,
            "0f",
            "08",
            "00010121436587f9",
            "08",
            "5336469021436587",
            "07",
            "683119325476f8",
            "0e",
            text("ue@example.org"),
        ),
    ),
    # FQ-CSID, §8.2.43: node type (4 bits) and CSID count (4 bits), node, CSIDs
    Case("FQ-CSID IPv4, two CSIDs", FQCSID(V4, (1, 2)), tlv(65, "02", V4_HEX, "0001", "0002")),
    Case("FQ-CSID IPv6, one CSID", FQCSID(V6, (0x100,)), tlv(65, "11", V6_HEX, "0100")),
    Case("FQ-CSID MCC/MNC-based node", FQCSID(0x00F1100A, (7,)), tlv(65, "21", "00f1100a", "0007")),
    Case("FQ-CSID with Rel-17 node type (SGW-C)", FQCSID(V4, (5,), node_type=1), tlv(65, "01", V4_HEX, "0005", "01")),
    # Trace Information, §8.2.108: MCC/MNC TBCD, Trace ID, events, depth, interfaces, address
    Case(
        "Trace Information, 2-digit MNC, IPv4 collector",
        TraceInformation("001", "01", 0x123456, b"\x01\x00", 1, b"\x03\x00", IPv4Address("192.0.2.50")),
        tlv(152, "00f110", "123456", "02", "0100", "01", "02", "0300", "04", "c0000232"),
    ),
    Case(
        "Trace Information, 3-digit MNC, IPv6 collector",
        TraceInformation("310", "410", 1, b"", 0, b"", V6),
        tlv(152, "130014", "000001", "00", "00", "00", "10", V6_HEX),
    ),
    # Failed Rule ID, §8.2.80: type in bits 5-1, then the rule ID of its size
    Case("Failed Rule ID PDR", FailedRuleID(RuleIDType.PDR, 5), tlv(114, "00", "0005")),
    Case("Failed Rule ID FAR", FailedRuleID(RuleIDType.FAR, 0x10), tlv(114, "01", "00000010")),
    Case("Failed Rule ID BAR", FailedRuleID(RuleIDType.BAR, 3), tlv(114, "04", "03")),
    # Timer, §8.2.35: unit bits 8-6, value bits 5-1
    Case("Timer 5 minutes", Timer(TimerUnit.MINUTES_1, 5), tlv(55, "25")),
    Case("Timer infinite", Timer(TimerUnit.INFINITE, 0), tlv(55, "e0")),
    Case("Graceful Release Period 30 x 2 s", GracefulReleasePeriod(TimerUnit.SECONDS_2, 30), tlv(112, "1e")),
    # DL Buffering Duration §8.2.29, DL Buffering Suggested Packet Count §8.2.30
    Case("DL Buffering Duration 10 minutes", DLBufferingDuration(1, 10), tlv(47, "2a")),
    Case(
        "DL Buffering Suggested Packet Count, 1 octet",
        DLBufferingSuggestedPacketCount(10),
        tlv(48, "0a"),
        {"octets": 1},
    ),
    Case(
        "DL Buffering Suggested Packet Count, 2 octets",
        DLBufferingSuggestedPacketCount(300, 2),
        tlv(48, "012c"),
        {"octets": 2},
    ),
    # Downlink Data Service Information, §8.2.27: PPI bit 1, QFII bit 2
    Case("DDSI PPI and QFI", DownlinkDataServiceInformation(3, 5), tlv(45, "03", "03", "05")),
    Case("DDSI QFI only", DownlinkDataServiceInformation(qfi=9), tlv(45, "02", "09")),
    Case("DDSI PPI only", DownlinkDataServiceInformation(paging_policy_indication=1), tlv(45, "01", "01")),
    # Recovery Time Stamp, §8.2.65: NTP seconds; 2023-11-14T22:13:20Z
    Case("Recovery Time Stamp", RecoveryTimeStamp.from_unix(1_700_000_000), tlv(96, "e8fe6f80")),
    # User Plane IP Resource Information (Rel-15 §8.2.82): V4 1, V6 2, TEIDRI 5-3, ASSONI 6, ASSOSI 7
    Case(
        "UP IP Resource, TEID range + IPv4 + NI + SI",
        UserPlaneIPResourceInformation(
            IPv4Address("198.51.100.2"), teid_range_bits=2, teid_range=1, network_instance="access", source_interface=0
        ),
        tlv(116, "69", "01", "c6336402", "06", text("access"), "00"),
    ),
    Case("UP IP Resource, IPv6 only", UserPlaneIPResourceInformation(ipv6=V6), tlv(116, "02", V6_HEX)),
    Case(
        "UP IP Resource, v4+v6 and NI",
        UserPlaneIPResourceInformation(V4, V6, network_instance="core.edge"),
        tlv(116, "23", V4_HEX, V6_HEX, "04", text("core"), "04", text("edge")),
    ),
    Case(
        "UP IP Resource, plain-text NI kept as sent",
        UserPlaneIPResourceInformation(V4, network_instance="internet", network_instance_label_encoded=False),
        tlv(116, "21", V4_HEX, text("internet")),
        {"network_instance_label_encoded": False},
    ),
    # Remote GTP-U Peer, §8.2.70: V6 1, V4 2, DI 3, NI 4; DI and NI length-prefixed
    Case(
        "Remote GTP-U Peer IPv6 with DI and NI",
        RemoteGTPUPeer(ipv6=V6, destination_interface=0, network_instance="access"),
        tlv(103, "0d", V6_HEX, "0001", "00", "0007", "06", text("access")),
    ),
    Case("Remote GTP-U Peer IPv4", RemoteGTPUPeer(V4), tlv(103, "02", V4_HEX)),
]


@pytest.fixture(params=CASES, ids=[c.description for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    value: Case = request.param
    return value


def test_descriptions_are_unique() -> None:
    assert len({c.description for c in CASES}) == len(CASES)


def test_header(case: Case) -> None:
    ie_type, length = struct.unpack_from(">HH", case.wire)
    assert ie_type == case.ie.TYPE == case.ie.ie_type
    assert length == len(case.wire) - 4


def test_encode(case: Case) -> None:
    assert case.ie.encode() == case.wire
    assert case.ie.encode_payload() == case.wire[4:]


def test_decode_payload(case: Case) -> None:
    decoded = type(case.ie).decode_payload(case.wire, 4, len(case.wire))
    assert type(decoded) is type(case.ie)
    assert decoded == case.ie
    for name, value in case.attrs.items():
        assert getattr(decoded, name) == value, name


def test_decode_inside_a_larger_buffer(case: Case) -> None:
    # decode_payload honours pos/end: surrounding octets are not read.
    data = b"\xff" * 3 + case.wire + b"\xee" * 5
    decoded = pfcp.decode_ie(case.ie.TYPE, data, 7, 3 + len(case.wire))
    assert decoded == case.ie


def test_reencode_of_decoded(case: Case) -> None:
    decoded = type(case.ie).decode_payload(case.wire, 4, len(case.wire))
    assert decoded.encode() == case.wire


def test_equality_sees_every_compared_field() -> None:
    assert FTEID(1, V4) != FTEID(2, V4)
    assert FTEID(1, V4) != FTEID(1, V4, V6)
    assert UEIPAddress(ipv4=V4) != UEIPAddress(ipv4=V4, is_destination=True)
    assert OuterHeaderRemoval(OuterHeaderRemovalDescription.GTPU_UDP_IP) != OuterHeaderRemoval(
        OuterHeaderRemovalDescription.GTPU_UDP_IP, False
    )
    # octets and label_encoded describe the encoding, not the value
    assert ApplyAction(ApplyActionFlags.FORW, 1) == ApplyAction(ApplyActionFlags.FORW, 2)
    assert NetworkInstance("internet", False) == NetworkInstance("internet")
    assert ApplyAction(ApplyActionFlags.FORW, 1).encode() != ApplyAction(ApplyActionFlags.FORW, 2).encode()


def test_recovery_time_stamp_unix_conversions() -> None:
    stamp = RecoveryTimeStamp.from_unix(1_700_000_000)
    assert stamp.value == 1_700_000_000 + 2_208_988_800  # NTP era 0 starts 1900-01-01
    assert stamp.to_unix() == 1_700_000_000
    assert RecoveryTimeStamp.from_unix(0).value == 2_208_988_800
    assert RecoveryTimeStamp.from_unix(1_700_000_000.9).to_unix() == 1_700_000_000
    assert RecoveryTimeStamp(0xE8FE6F80).to_unix() == 1_700_000_000


def test_flags_unknown_to_this_release_survive() -> None:
    # A later release's bit (octet 8 bit 8 of Apply Action does not exist yet).
    wire = tlv(44, "020080")
    decoded = ApplyAction.decode_payload(wire, 4, len(wire))
    assert decoded.value & ApplyActionFlags.FORW
    assert int(decoded.value) == 0x800002
    assert decoded.encode() == wire


def test_one_octet_apply_action_reads_the_same_flag_as_two() -> None:
    one, two = tlv(44, "04"), tlv(44, "0400")
    assert (
        ApplyAction.decode_payload(one, 4, 5).value
        == ApplyAction.decode_payload(two, 4, 6).value
        == ApplyActionFlags.BUFF
    )


@pytest.mark.parametrize(
    ("description", "cls", "payload_hex"),
    [
        ("F-TEID without TEID", FTEID, "01"),
        ("F-TEID IPv4 cut short", FTEID, "0100000001c00002"),
        ("F-TEID trailing octet", FTEID, "0100000001c000020100"),
        ("F-SEID of 3 octets", FSEID, "020102"),
        ("Node ID of unknown type", NodeID, "03c0000201"),
        ("Node ID IPv4 of 3 octets", NodeID, "00c00002"),
        ("UE IP V4 flag without address", UEIPAddress, "02"),
        ("OHC GTP-U without TEID", OuterHeaderCreation, "0100"),
        ("OHR with 3 octets", OuterHeaderRemoval, "000100"),
        ("MBR of 9 octets", MBR, "000000000000000000"),
        ("FQ-CSID with missing CSID", FQCSID, "02c00002010001"),
        ("User ID IMSI length past the end", UserID, "0109000101"),
        ("Trace Information with a hex MCC digit", TraceInformation, "0af110123456000000" + "00"),
        ("Timer of 2 octets", Timer, "2500"),
        ("Failed Rule ID with a FAR ID of 2 octets", FailedRuleID, "010001"),
        ("DDSI flag without value", DownlinkDataServiceInformation, "02"),
        ("Header Enrichment name past the end", HeaderEnrichment, "0010" + text("X")),
    ],
)
def test_malformed_payloads_raise_decode_error(description: str, cls: type[pfcp.IE], payload_hex: str) -> None:
    payload = bytes.fromhex(payload_hex)
    with pytest.raises(pfcp.DecodeError):
        pfcp.decode_ie(cls.TYPE, payload, 0, len(payload))


@pytest.mark.parametrize(
    "raw",
    [
        b"\x40" + b"a" * 64,  # a 64-octet "label" is not a label (1..63, TS 23.003 §9.1)
        b"\x00",  # an empty label
        b"a..b",  # plain text that cannot be written as labels
        b"\x03abc\x00",
    ],
)
def test_names_that_are_not_labels_round_trip_as_text(raw: bytes) -> None:
    ni = NetworkInstance.decode_payload(raw, 0, len(raw))
    assert ni.label_encoded is False
    assert ni.encode_payload() == raw
    node = NodeID.decode_payload(b"\x02" + raw, 0, len(raw) + 1)
    assert node.encode_payload() == b"\x02" + raw
    upiri = b"\x21" + bytes.fromhex(V4_HEX) + raw
    resource = UserPlaneIPResourceInformation.decode_payload(upiri, 0, len(upiri))
    assert resource.network_instance == raw.decode("utf-8", "surrogateescape")
    assert resource.encode_payload() == upiri


def test_encoder_refuses_values_the_layout_cannot_hold() -> None:
    with pytest.raises(pfcp.LocalProtocolError):
        FTEID(None, V4).encode()  # CH carries no address
    with pytest.raises(pfcp.LocalProtocolError):
        FTEID(1, choose_v4=True).encode()
    with pytest.raises(pfcp.LocalProtocolError):
        OuterHeaderCreation(OHC.GTPU_UDP_IPV4, ipv4=V4).encode()  # TEID missing
    with pytest.raises(pfcp.LocalProtocolError):
        OuterHeaderCreation(OHC.IPV4, teid=1, ipv4=V4).encode()  # TEID not asked for
    with pytest.raises(pfcp.LocalProtocolError):
        QFI(64).encode()
    with pytest.raises(pfcp.LocalProtocolError):
        FQCSID(V4, tuple(range(16))).encode()
    with pytest.raises(pfcp.LocalProtocolError):
        NetworkInstance("a..b").encode()
    with pytest.raises(pfcp.LocalProtocolError):
        NetworkInstance("x" * 64).encode()
    with pytest.raises(pfcp.LocalProtocolError):
        Timer(TimerUnit.MINUTES_1, 32).encode()
    with pytest.raises(pfcp.LocalProtocolError):
        UserPlaneIPResourceInformation(V4, teid_range_bits=2).encode()  # range bits without a range
    with pytest.raises(pfcp.LocalProtocolError):
        TraceInformation("01", "01", 1).encode()
