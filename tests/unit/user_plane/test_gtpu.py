"""GTP-U v1 codec (TS 29.281): golden bytes, round trips, malformed input, scapy and tshark.

Golden bytes are written by hand from the layouts of TS 29.281 §5.1 (header),
§5.2 (extension headers), §8 (IEs) and TS 38.415 §5.5.2 (PDU Session
Container); every octet is commented.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from user_plane import gtpu
from user_plane.gtpu import (
    ExtensionHeader,
    ExtensionHeaderTypeList,
    GtpuError,
    GtpuMessage,
    GTPUPeerAddress,
    MessageType,
    PDUSessionContainer,
    PDUType,
    PrivateExtension,
    Recovery,
    TEIDDataI,
    UnknownIE,
)

DL = PDUType.DL_PDU_SESSION_INFORMATION
UL = PDUType.UL_PDU_SESSION_INFORMATION


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4_udp(src: str, dst: str, payload: bytes, sport: int = 40000, dport: int = 40001) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            1,
            0,
            64,
            17,
            0,
            IPv4Address(src).packed,
            IPv4Address(dst).packed,
        )
    )
    ip[10:12] = _checksum(bytes(ip)).to_bytes(2, "big")
    return bytes(ip) + udp


#: An inner IPv4/UDP packet, 32 octets (0x20).
INNER = _ipv4_udp("10.45.0.2", "198.51.100.1", b"ping")
assert len(INNER) == 32


def H(*parts: str) -> bytes:
    """Hex octets; one part per header or IE keeps the golden vectors readable."""
    return bytes.fromhex("".join(parts))


# name -> (wire bytes, structured message)
GOLDEN: dict[str, tuple[bytes, GtpuMessage]] = {
    "gpdu_plain": (
        # 0x30: version 1, PT 1, E=S=PN=0 | type 0xFF G-PDU | length 32 | TEID
        H("30 ff 0020 11223344") + INNER,
        GtpuMessage(MessageType.G_PDU, 0x11223344, payload=INNER),
    ),
    "gpdu_dl_qfi9": (
        # 0x34: E=1 | length 8+32 | TEID | seq 0, N-PDU 0 (ignored), next 0x85
        # PSC: length 1 (4 octets) | PDU type 0 (DL) | PPP=0 RQI=0 QFI=9 | next 0
        H("34 ff 0028 00000001 0000 00 85", "01 00 09 00") + INNER,
        GtpuMessage(MessageType.G_PDU, 1, extension_headers=(PDUSessionContainer(DL, 9),), payload=INNER),
    ),
    "gpdu_ul_qfi63": (
        # PSC: PDU type 1 (UL) in the high nibble | QFI 63
        H("34 ff 0028 fffffffe 0000 00 85", "01 10 3f 00") + INNER,
        GtpuMessage(MessageType.G_PDU, 0xFFFFFFFE, extension_headers=(PDUSessionContainer(UL, 63),), payload=INNER),
    ),
    "gpdu_dl_rqi_ppi": (
        # PSC: length 2 (8 octets) | DL | PPP=1 RQI=1 QFI=1 -> 0xC1 | PPI 5 -> 0xA0 | 3 padding | next 0
        H("34 ff 002c 0000abcd 0000 00 85", "02 00 c1 a0 000000 00") + INNER,
        GtpuMessage(
            MessageType.G_PDU, 0xABCD, extension_headers=(PDUSessionContainer(DL, 1, rqi=True, ppi=5),), payload=INNER
        ),
    ),
    "gpdu_seq_npdu": (
        # 0x33: S=1 PN=1 | length 4+32 | seq 0x0102 | N-PDU 0x03 | next 0 (E=0, ignored)
        H("33 ff 0024 00000007 0102 03 00") + INNER,
        GtpuMessage(MessageType.G_PDU, 7, sequence=0x0102, n_pdu_number=3, payload=INNER),
    ),
    "echo_request": (
        # 0x32: S=1 | type 1 | length 4 | TEID 0 | seq 7 | N-PDU 0 | next 0
        H("32 01 0004 00000000 0007 00 00"),
        gtpu.echo_request(7),
    ),
    "echo_response": (
        # type 2 | length 6 | seq copied | Recovery IE (TV): type 14, restart counter 0
        H("32 02 0006 00000000 0007 00 00", "0e 00"),
        gtpu.echo_response(gtpu.echo_request(7)),
    ),
    "error_indication_v4": (
        # type 26 | length 4+5+7 | TEID 0 | seq 0
        # TEID Data I (TV): 0x10 + 4 octets | GTP-U Peer Address (TLV): 0x85, length 4, 192.0.2.20
        H("32 1a 0010 00000000 0000 00 00", "10 deadbeef", "85 0004 c0000214"),
        gtpu.error_indication(0xDEADBEEF, IPv4Address("192.0.2.20")),
    ),
    "error_indication_v6_udp_port": (
        # 0x36: E=1 S=1 | length 4+4+5+19 | next 0x40 UDP Port
        # UDP Port ext header: length 1 | port 2152 (0x0868) | next 0
        H("36 1a 0020 00000000 0005 00 40", "01 0868 00", "10 00000001", "85 0010 20010db8000000000000000000000020"),
        gtpu.error_indication(1, IPv6Address("2001:db8::20"), sequence=5, udp_port=2152),
    ),
    "end_marker": (
        # type 254 | length 0 | TEID of the tunnel
        H("30 fe 0000 00001234"),
        gtpu.end_marker(0x1234),
    ),
    "supported_extension_headers_notification": (
        # type 31 | length 4+3 | Extension Header Type List: 0x8d, ONE-octet length 1, 0x85 (§8.5)
        H("32 1f 0007 00000000 0009 00 00", "8d 01 85"),
        gtpu.supported_extension_headers_notification((0x85,), sequence=9),
    ),
    "echo_response_private_extension_unknown_ie": (
        # length 4+2+5+7 | Recovery | unknown TLV IE 200 (kept verbatim)
        # | Private Extension: type 255, length 4, Extension Identifier 10415, value
        H("32 02 0012 00000000 0001 00 00", "0e 00", "c8 0002 abcd", "ff 0004 28af 0102"),
        GtpuMessage(
            MessageType.ECHO_RESPONSE,
            0,
            1,
            ies=(Recovery(0), UnknownIE(200, b"\xab\xcd"), PrivateExtension(10415, b"\x01\x02")),
        ),
    ),
}

GPDU_GOLDEN = {name: case for name, case in GOLDEN.items() if name.startswith("gpdu")}


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_decode(name: str) -> None:
    wire, msg = GOLDEN[name]
    assert gtpu.decode(wire) == msg


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_encode(name: str) -> None:
    wire, msg = GOLDEN[name]
    assert gtpu.encode(msg) == wire
    assert gtpu.encode(gtpu.decode(wire)) == wire


@pytest.mark.parametrize("name", GPDU_GOLDEN)
def test_fast_path_matches_slow_path(name: str) -> None:
    wire, msg = GPDU_GOLDEN[name]
    teid, qfi, offset = gtpu.decode_gpdu(wire)
    assert (teid, qfi) == (msg.teid, msg.qfi)
    assert wire[offset:] == INNER
    # memoryview and bytearray work too (the dataplane reads into a preallocated buffer).
    assert gtpu.decode_gpdu(memoryview(bytearray(wire))) == (teid, qfi, offset)


@pytest.mark.parametrize(
    ("qfi", "dl", "rqi", "name"),
    [(None, True, False, "gpdu_plain"), (9, True, False, "gpdu_dl_qfi9"), (63, False, False, "gpdu_ul_qfi63")],
)
def test_encode_gpdu_header_golden(qfi: int | None, dl: bool, rqi: bool, name: str) -> None:
    wire, msg = GOLDEN[name]
    header = gtpu.encode_gpdu_header(msg.teid, len(INNER), qfi, pdu_type_dl=dl, rqi=rqi)
    assert header + INNER == wire


@pytest.mark.parametrize("qfi", [0, 1, 5, 9, 32, 63])
@pytest.mark.parametrize("dl", [True, False])
def test_encode_gpdu_header_round_trip(qfi: int, dl: bool) -> None:
    rqi = dl and qfi % 2 == 1
    wire = gtpu.encode_gpdu_header(0x0A0B0C0D, len(INNER), qfi, pdu_type_dl=dl, rqi=rqi) + INNER
    assert gtpu.decode_gpdu(wire) == (0x0A0B0C0D, qfi, 16)
    msg = gtpu.decode(wire)
    assert msg.extension_headers == (PDUSessionContainer(DL if dl else UL, qfi, rqi=rqi),)
    assert msg.payload == INNER


ROUND_TRIP = [
    GtpuMessage(MessageType.G_PDU, 0, payload=b""),
    GtpuMessage(MessageType.G_PDU, 0xFFFFFFFF, sequence=0xFFFF, n_pdu_number=0xFF, payload=INNER),
    GtpuMessage(
        MessageType.G_PDU,
        9,
        extension_headers=(
            ExtensionHeader(gtpu.ExtensionHeaderType.SERVICE_CLASS_INDICATOR, b"\x07\x00"),
            PDUSessionContainer(UL, 3, flags=0b1001, ul_flags=0b10, extra=bytes(range(1, 13))),
            ExtensionHeader(gtpu.ExtensionHeaderType.UDP_PORT, b"\x08\x68"),
        ),
        payload=INNER,
    ),
    # DL with QMP: the 8-octet DL Sending Time Stamp is kept verbatim, then padding.
    GtpuMessage(
        MessageType.G_PDU,
        9,
        extension_headers=(PDUSessionContainer(DL, 2, ppi=7, flags=0b1000, extra=b"\x11" * 8),),
        payload=INNER,
    ),
    GtpuMessage(MessageType.ECHO_REQUEST, 0, 1, ies=(PrivateExtension(1, b""),)),
    GtpuMessage(MessageType.ECHO_RESPONSE, 0, 0xFFFF, ies=(Recovery(0), UnknownIE(230, b"\x00\x01\x02\x03"))),
    GtpuMessage(MessageType.SUPPORTED_EXTENSION_HEADERS_NOTIFICATION, 0, 0, ies=(ExtensionHeaderTypeList(()),)),
    GtpuMessage(MessageType.TUNNEL_STATUS, 5),
    GtpuMessage(MessageType.END_MARKER, 5, extension_headers=(PDUSessionContainer(DL, 4),)),
    # A message type we do not know keeps its body as opaque payload.
    GtpuMessage(100, 5, 3, payload=b"\x01\x02\x03"),
]


@pytest.mark.parametrize("msg", ROUND_TRIP, ids=lambda m: f"type{m.message_type}")
def test_round_trip(msg: GtpuMessage) -> None:
    wire = gtpu.encode(msg)
    assert gtpu.decode(wire) == msg
    assert gtpu.encode(gtpu.decode(wire)) == wire


def test_message_accessors() -> None:
    _, msg = GOLDEN["error_indication_v4"]
    teid_ie = msg.ie(TEIDDataI)
    peer_ie = msg.ie(GTPUPeerAddress)
    assert teid_ie is not None and teid_ie.teid == 0xDEADBEEF
    assert peer_ie is not None and peer_ie.address == IPv4Address("192.0.2.20")
    assert msg.ie(Recovery) is None
    assert msg.qfi is None
    assert GOLDEN["gpdu_dl_qfi9"][1].qfi == 9


def test_echo_response_copies_sequence() -> None:
    request = gtpu.decode(H("32 01 0004 00000000 beef 00 00"))
    response = gtpu.echo_response(request, recovery=0)
    assert response.sequence == 0xBEEF and response.teid == 0
    assert gtpu.encode(response) == H("32 02 0006 00000000 beef 00 00 0e 00")


def test_comprehension_bits() -> None:
    # TS 29.281 §5.2.1 Figure 5.2.1-2: the two most significant bits of the type.
    assert gtpu.comprehension(0x20) is gtpu.Comprehension.NOT_REQUIRED
    assert gtpu.comprehension(0x40) is gtpu.Comprehension.NOT_REQUIRED_DISCARD
    assert gtpu.comprehension(0x85) is gtpu.Comprehension.REQUIRED_BY_ENDPOINT
    assert gtpu.comprehension(0xC0) is gtpu.Comprehension.REQUIRED


def test_psc_optional_fields_ending_in_zero_round_trip() -> None:
    # UL with QMP (TS 38.415 §5.5.2.2): three 8-octet time stamps, kept verbatim. They
    # end in zero octets that read as padding, yet the bytes survive the round trip.
    stamps = bytes(range(1, 22)) + bytes(3)
    # length 4+28 | PSC length 7 (28 octets): UL + QMP -> 0x18 | QFI 5 | 24 octets | next 0
    wire = H("34 ff 0020 00000001 0000 00 85", "07 18 05") + stamps + H("00")
    msg = gtpu.decode(wire)
    (psc,) = msg.extension_headers
    assert isinstance(psc, PDUSessionContainer)
    assert (psc.pdu_type, psc.qfi, psc.flags, psc.extra) == (UL, 5, 0b1000, bytes(range(1, 22)))
    assert gtpu.encode(msg) == wire
    assert gtpu.decode_gpdu(wire) == (1, 5, 40)


# --------------------------------------------------------------------------
# Extension header chains


def test_chain_with_unknown_skippable_headers() -> None:
    # 0x20 (Service Class Indicator, "00") -> 0x85 PSC -> 0x7e (unassigned, "01": skip) -> end
    wire = (
        H("34 ff 0034 00000042 0000 00 20")
        + H("01 2a 00 85")  # Service Class Indicator: length 1, value 0x2a, spare, next 0x85
        + H("01 10 07 7e")  # PSC UL QFI 7, next 0x7e
        + H("02 aabbccddeeff 00")  # unknown, 8 octets, next 0
        + INNER
    )
    assert gtpu.decode_gpdu(wire) == (0x42, 7, 28)
    msg = gtpu.decode(wire)
    assert msg.extension_headers == (
        ExtensionHeader(0x20, b"\x2a\x00"),
        PDUSessionContainer(UL, 7),
        ExtensionHeader(0x7E, H("aabbccddeeff")),
    )
    assert msg.payload == INNER
    assert gtpu.encode(msg) == wire


@pytest.mark.parametrize("ext_type", [0x81, 0x84, 0xC0, 0xBF, 0xFE])
def test_comprehension_required_unknown_header_is_rejected(ext_type: int) -> None:
    wire = H(f"34 ff 0008 00000001 0000 00 {ext_type:02x}", "01 0000 00")
    for decoder in (gtpu.decode_gpdu, gtpu.decode):
        with pytest.raises(GtpuError) as info:
            decoder(wire)
        assert info.value.unsupported_extension_header == ext_type


def test_comprehension_required_after_psc_is_rejected() -> None:
    wire = H("34 ff 000c 00000001 0000 00 85", "01 00 01 c0", "01 0000 00")
    with pytest.raises(GtpuError) as info:
        gtpu.decode_gpdu(wire)
    assert info.value.unsupported_extension_header == 0xC0


# --------------------------------------------------------------------------
# Malformed input

MALFORMED: dict[str, bytes] = {
    "empty": b"",
    "truncated_header": H("30 ff 0000 0000"),
    "length_too_long": H("30 ff 0005 00000001 0102"),
    "length_too_short": H("30 ff 0001 00000001 0102"),
    "version_2": H("50 ff 0000 00000001"),
    "version_0": H("10 ff 0000 00000001"),
    "gtp_prime": H("20 ff 0000 00000001"),
    "optional_fields_missing": H("32 ff 0002 00000001 0000"),
    "ext_length_zero": H("34 ff 0008 00000001 0000 00 20", "00 000000"),
    "ext_runs_past_end": H("34 ff 0008 00000001 0000 00 85", "02 00 09 00"),
    "ext_announced_packet_ends": H("34 ff 0004 00000001 0000 00 85"),
    "ext_chain_next_missing": H("34 ff 0008 00000001 0000 00 85", "01 00 09 20"),
    "psc_ppp_without_ppi": H("34 ff 0008 00000001 0000 00 85", "01 00 89 00"),
    "psc_unknown_pdu_type": H("34 ff 0008 00000001 0000 00 85", "01 20 09 00"),
}

MALFORMED_SIGNALLING: dict[str, bytes] = {
    "unknown_tv_ie": H("32 02 0006 00000000 0000 00 00", "0f 00"),
    "truncated_tv_ie": H("32 1a 0007 00000000 0000 00 00", "10 dead"),
    "truncated_tlv_ie_header": H("32 02 0008 00000000 0000 00 00", "0e 00 85 00"),
    "tlv_ie_overruns": H("32 02 000b 00000000 0000 00 00", "0e 00 85 0004 c000"),
    "peer_address_5_octets": H("32 1a 0011 00000000 0000 00 00", "10 00000001", "85 0005 c000021400"),
    "private_extension_short": H("32 01 0008 00000000 0000 00 00", "ff 0001 28"),
    "echo_response_without_recovery": H("32 02 0004 00000000 0000 00 00"),
    "error_indication_without_peer": H("32 1a 0009 00000000 0000 00 00", "10 00000001"),
    "sehn_without_list": H("32 1f 0004 00000000 0000 00 00"),
    "ext_type_list_truncated": H("32 1f 0005 00000000 0000 00 00", "8d"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_rejected_by_both_paths(name: str) -> None:
    with pytest.raises(GtpuError) as fast:
        gtpu.decode_gpdu(MALFORMED[name])
    with pytest.raises(GtpuError) as slow:
        gtpu.decode(MALFORMED[name])
    assert fast.value.reason and slow.value.reason
    assert fast.value.unsupported_extension_header is None


@pytest.mark.parametrize("name", MALFORMED_SIGNALLING)
def test_malformed_signalling_rejected(name: str) -> None:
    with pytest.raises(GtpuError):
        gtpu.decode(MALFORMED_SIGNALLING[name])


def test_bad_version_reason() -> None:
    with pytest.raises(GtpuError, match="version 2"):
        gtpu.decode_gpdu(MALFORMED["version_2"])
    with pytest.raises(GtpuError, match="PT"):
        gtpu.decode(MALFORMED["gtp_prime"])
    with pytest.raises(GtpuError, match="Length"):
        gtpu.decode(MALFORMED["length_too_long"])


def test_decode_gpdu_rejects_signalling() -> None:
    with pytest.raises(GtpuError, match="not a G-PDU"):
        gtpu.decode_gpdu(GOLDEN["echo_request"][0])


@pytest.mark.parametrize(
    "call",
    [
        lambda: gtpu.encode_gpdu_header(1, 10, qfi=64),
        lambda: gtpu.encode_gpdu_header(1, 10, qfi=-1),
        lambda: gtpu.encode_gpdu_header(2**32, 10),
        lambda: gtpu.encode_gpdu_header(1, 65536),
        lambda: gtpu.encode_gpdu_header(1, 65528, qfi=1),
        lambda: gtpu.encode_gpdu_header(1, 10, qfi=1, pdu_type_dl=False, rqi=True),
        lambda: gtpu.encode(GtpuMessage(MessageType.G_PDU, 1, extension_headers=(PDUSessionContainer(DL, 64),))),
        lambda: gtpu.encode(GtpuMessage(MessageType.G_PDU, 1, extension_headers=(PDUSessionContainer(DL, 1, ppi=8),))),
        lambda: gtpu.encode(
            GtpuMessage(MessageType.G_PDU, 1, extension_headers=(PDUSessionContainer(UL, 1, rqi=True),))
        ),
        lambda: gtpu.encode(GtpuMessage(MessageType.G_PDU, 1, extension_headers=(ExtensionHeader(0x20, b"\x01"),))),
        lambda: gtpu.encode(GtpuMessage(MessageType.G_PDU, 2**32)),
        lambda: gtpu.encode(GtpuMessage(MessageType.ECHO_REQUEST, 0, 2**16)),
        lambda: gtpu.encode(GtpuMessage(MessageType.ECHO_RESPONSE, ies=(Recovery(0),), payload=b"x")),
        lambda: gtpu.encode(GtpuMessage(MessageType.G_PDU, payload=bytes(65536))),
        lambda: gtpu.error_indication(1, IPv4Address("192.0.2.1"), udp_port=70000),
    ],
)
def test_encode_rejects_what_does_not_fit(call: object) -> None:
    assert callable(call)
    with pytest.raises(GtpuError):
        call()


@pytest.mark.parametrize("name", GPDU_GOLDEN)
def test_single_bit_mutations_same_verdict(name: str) -> None:
    # Every header and extension-header octet, every bit flipped (and all of them):
    # the fast and the slow path accept and reject the same packets, and agree.
    wire = GPDU_GOLDEN[name][0]
    for position in range(min(len(wire), 24)):
        for mask in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF):
            mutated = bytearray(wire)
            mutated[position] ^= mask
            _assert_same_verdict(bytes(mutated))


def test_first_psc_wins() -> None:
    wire = H("34 ff 000c 00000001 0000 00 85", "01 00 03 85", "01 10 04 00")
    assert gtpu.decode_gpdu(wire) == (1, 3, 20)
    assert gtpu.decode(wire).qfi == 3


def _assert_same_verdict(data: bytes) -> None:
    try:
        fast: tuple[int, int | None, int] | None = gtpu.decode_gpdu(data)
    except GtpuError as exc:
        fast, fast_unsupported = None, exc.unsupported_extension_header
    try:
        msg: GtpuMessage | None = gtpu.decode(data)
    except GtpuError as exc:
        msg, slow_unsupported = None, exc.unsupported_extension_header
    if msg is not None and msg.message_type == MessageType.G_PDU:
        assert fast is not None, data.hex()
        assert fast[:2] == (msg.teid, msg.qfi), data.hex()
        assert data[fast[2] :] == msg.payload, data.hex()
    elif len(data) > 1 and data[1] == 0xFF:
        assert fast is None, data.hex()
        assert msg is None, data.hex()
        assert fast_unsupported == slow_unsupported, data.hex()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_only_gtpu_error(data: bytes) -> None:
    # Both paths raise nothing but GtpuError and agree on every G-PDU.
    _assert_same_verdict(data)
    _assert_same_verdict(H("30 ff") + len(data).to_bytes(2, "big") + H("00000001") + data)
    _assert_same_verdict(H("34 ff") + (len(data) + 4).to_bytes(2, "big") + H("00000001 0000 00 85") + data)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=16, max_size=16).map(lambda b: bytearray(H("34 ff 0010 00000001 0000 00 85") + b)),
    st.integers(0, 23),
)
def test_fuzz_extension_chain(wire: bytearray, index: int) -> None:
    # Random extension-header octets after a valid start: same verdict on both paths.
    wire[12 + index % 16] ^= 0xFF
    try:
        fast = gtpu.decode_gpdu(bytes(wire))
    except GtpuError as exc:
        with pytest.raises(GtpuError) as slow:
            gtpu.decode(bytes(wire))
        assert slow.value.unsupported_extension_header == exc.unsupported_extension_header
    else:
        msg = gtpu.decode(bytes(wire))
        assert (msg.teid, msg.qfi) == fast[:2]
        assert gtpu.encode(msg)[fast[2] :] == msg.payload


# --------------------------------------------------------------------------
# scapy as an independent oracle

try:
    import scapy.contrib.gtp as scapy_gtp
    import scapy.layers.inet as scapy_inet
except ImportError:  # pragma: no cover - scapy is in the test extra
    SCAPY = False
else:
    SCAPY = True

needs_scapy = pytest.mark.skipif(not SCAPY, reason="scapy (test extra) is not installed")


@pytest.mark.interop
@needs_scapy
@pytest.mark.parametrize(("pdu_type", "qfi"), [(0, 1), (0, 9), (1, 5), (1, 63)])
def test_scapy_built_gpdu_decodes(pdu_type: int, qfi: int) -> None:
    inner = scapy_inet.IP(src="10.45.0.2", dst="198.51.100.1") / scapy_inet.UDP(sport=40000, dport=40001) / b"ping"
    psc = scapy_gtp.GTPPDUSessionContainer(type=pdu_type, QFI=qfi)
    pkt = scapy_gtp.GTP_U_Header(teid=0x01020304, gtp_type=255, E=1, next_ex=0x85) / psc / inner
    wire = bytes(pkt)
    teid, got_qfi, offset = gtpu.decode_gpdu(wire)
    assert (teid, got_qfi) == (0x01020304, qfi)
    assert wire[offset:] == bytes(inner)
    assert gtpu.decode(wire).extension_headers == (PDUSessionContainer(PDUType(pdu_type), qfi),)
    # Our header for the same packet is byte-identical.
    assert gtpu.encode_gpdu_header(0x01020304, len(bytes(inner)), qfi, pdu_type_dl=pdu_type == 0) == wire[:offset]


@pytest.mark.interop
@needs_scapy
def test_scapy_built_plain_gpdu_and_ppi() -> None:
    inner = scapy_inet.IP(src="10.45.0.2", dst="198.51.100.1") / scapy_inet.UDP() / b"x"
    wire = bytes(scapy_gtp.GTP_U_Header(teid=77, gtp_type=255) / inner)
    assert gtpu.decode_gpdu(wire) == (77, None, 8)
    psc = scapy_gtp.GTPPDUSessionContainer(type=0, PPP=1, PPI=6, RQI=1, QFI=33)
    wire = bytes(scapy_gtp.GTP_U_Header(teid=78, gtp_type=255, E=1, next_ex=0x85) / psc / inner)
    assert gtpu.decode(wire).extension_headers == (PDUSessionContainer(DL, 33, rqi=True, ppi=6),)


@pytest.mark.interop
@needs_scapy
def test_scapy_built_signalling_decodes() -> None:
    echo = scapy_gtp.GTP_U_Header(gtp_type=1, S=1, seq=42) / scapy_gtp.GTPEchoRequest()
    assert gtpu.decode(bytes(echo)) == gtpu.echo_request(42)
    response = scapy_gtp.GTP_U_Header(gtp_type=2, S=1, seq=42) / scapy_gtp.GTPEchoResponse(
        IE_list=[scapy_gtp.IE_Recovery(restart_counter=0)]
    )
    assert gtpu.decode(bytes(response)) == gtpu.echo_response(gtpu.echo_request(42))
    error = scapy_gtp.GTP_U_Header(gtp_type=26, S=1, seq=0) / scapy_gtp.GTPErrorIndication(
        IE_list=[scapy_gtp.IE_TEIDI(TEIDI=0xDEADBEEF), scapy_gtp.IE_GSNAddress(length=4, ipv4_address="192.0.2.20")]
    )
    assert gtpu.decode(bytes(error)) == gtpu.error_indication(0xDEADBEEF, IPv4Address("192.0.2.20"))
    marker = scapy_gtp.GTP_U_Header(gtp_type=254, teid=0x1234)
    assert gtpu.decode(bytes(marker)) == gtpu.end_marker(0x1234)


@pytest.mark.interop
@needs_scapy
def test_scapy_reads_ours() -> None:
    wire, _ = GOLDEN["gpdu_dl_rqi_ppi"]
    pkt = scapy_gtp.GTP_U_Header(wire)
    psc = pkt[scapy_gtp.GTPPDUSessionContainer]
    assert (pkt.teid, pkt.E, pkt.next_ex) == (0xABCD, 1, 0x85)
    assert (psc.type, psc.PPP, psc.RQI, psc.QFI, psc.PPI, psc.NextExtHdr) == (0, 1, 1, 1, 5, 0)
    assert bytes(psc.payload) == INNER

    pkt = scapy_gtp.GTP_U_Header(gtpu.encode_gpdu_header(9, len(INNER), 17, pdu_type_dl=False) + INNER)
    psc = pkt[scapy_gtp.GTPPDUSessionContainer]
    assert (pkt.teid, pkt.length, psc.ExtHdrLen, psc.type, psc.QFI) == (9, 8 + len(INNER), 1, 1, 17)
    assert bytes(pkt[scapy_inet.IP]) == INNER

    pkt = scapy_gtp.GTP_U_Header(GOLDEN["error_indication_v4"][0])
    ies = pkt[scapy_gtp.GTPErrorIndication].IE_list
    assert (pkt.gtp_type, pkt.S, pkt.teid) == (26, 1, 0)
    assert [(ie.ietype, getattr(ie, "TEIDI", None) or ie.ipv4_address) for ie in ies] == [
        (16, 0xDEADBEEF),
        (133, "192.0.2.20"),
    ]

    pkt = scapy_gtp.GTP_U_Header(GOLDEN["echo_response"][0])
    assert (pkt.gtp_type, pkt.seq, pkt[scapy_gtp.IE_Recovery].restart_counter) == (2, 7, 0)


# --------------------------------------------------------------------------
# tshark as an independent oracle

TSHARK = shutil.which("tshark")


def _frame(payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", gtpu.GTPU_PORT, gtpu.GTPU_PORT, 8 + len(payload), 0) + payload
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, b"\xc0\x00\x02\x0a", b"\xc0\x00\x02\x14"
        )
    )
    ip[10:12] = _checksum(bytes(ip)).to_bytes(2, "big")
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + bytes(ip) + udp


def _pcap(payloads: list[bytes]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, payload in enumerate(payloads):
        frame = _frame(payload)
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)
    return b"".join(out)


@pytest.mark.interop
@pytest.mark.skipif(TSHARK is None, reason="tshark binary not found on PATH")
def test_tshark_dissects_ours(tmp_path: Path) -> None:
    names = list(GOLDEN)
    payloads = [GOLDEN[name][0] for name in names]
    extra = {
        "header_ul_qfi5": gtpu.encode_gpdu_header(0x55, len(INNER), 5, pdu_type_dl=False) + INNER,
        "header_dl_qfi9_rqi": gtpu.encode_gpdu_header(0x56, len(INNER), 9, rqi=True) + INNER,
    }
    names += list(extra)
    payloads += list(extra.values())
    pcap = tmp_path / "gtpu.pcap"
    pcap.write_bytes(_pcap(payloads))
    fields = [
        "gtp.message",
        "gtp.teid",
        "gtp.seq_number",
        "gtp.ext_hdr.pdu_ses_con.pdu_type",
        "gtp.ext_hdr.pdu_ses_con.qos_flow_id",
        "gtp.ext_hdr.pdu_ses_cont.rqi",
        "gtp.ext_hdr.pdu_ses_cont.ppi",
        "gtp.ext_hdr.udp_port",
        "gtp.teid_data",
        "gtp.recovery",
        "gtp.gsn_ipv4",
        "gtp.gsn_ipv6",
        "ip.dst",
        "_ws.expert",
        "_ws.malformed",
    ]
    args = [str(TSHARK), "-n", "-r", str(pcap), "-T", "json"]
    for f in fields:
        args += ["-e", f]
    result = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    frames = [packet["_source"]["layers"] for packet in json.loads(result.stdout)]
    assert len(frames) == len(names)

    def one(layers: dict[str, list[str]], field: str) -> str | None:
        values = layers.get(field)
        return None if values is None else values[-1]

    for name, layers in zip(names, frames, strict=True):
        assert "_ws.expert" not in layers and "_ws.malformed" not in layers, (name, layers)
        msg = gtpu.decode(GOLDEN[name][0] if name in GOLDEN else extra[name])
        assert int(one(layers, "gtp.message") or "-1", 0) == msg.message_type, name
        assert int(one(layers, "gtp.teid") or "-1", 0) == msg.teid, name
        if msg.sequence is not None:
            assert int(one(layers, "gtp.seq_number") or "-1", 0) == msg.sequence, name
        psc = next((h for h in msg.extension_headers if isinstance(h, PDUSessionContainer)), None)
        if psc is None:
            assert one(layers, "gtp.ext_hdr.pdu_ses_con.qos_flow_id") is None, name
        else:
            assert int(one(layers, "gtp.ext_hdr.pdu_ses_con.qos_flow_id") or "-1", 0) == psc.qfi, name
            assert int(one(layers, "gtp.ext_hdr.pdu_ses_con.pdu_type") or "-1", 0) == psc.pdu_type, name
            if psc.pdu_type == DL:
                assert one(layers, "gtp.ext_hdr.pdu_ses_cont.rqi") in (("1", "True") if psc.rqi else ("0", "False"))
            if psc.ppi is not None:
                assert int(one(layers, "gtp.ext_hdr.pdu_ses_cont.ppi") or "-1", 0) == psc.ppi, name
        if msg.message_type == MessageType.G_PDU:
            assert one(layers, "ip.dst") == "198.51.100.1", name  # the inner packet was found
        teid_ie, peer_ie, recovery = msg.ie(TEIDDataI), msg.ie(GTPUPeerAddress), msg.ie(Recovery)
        if teid_ie is not None:
            assert int(one(layers, "gtp.teid_data") or "-1", 0) == teid_ie.teid, name
        if peer_ie is not None:
            field = "gtp.gsn_ipv4" if peer_ie.address.version == 4 else "gtp.gsn_ipv6"
            assert one(layers, field) == str(peer_ie.address), name
        if recovery is not None:
            assert int(one(layers, "gtp.recovery") or "-1", 0) == recovery.restart_counter, name
        udp_port = [h for h in msg.extension_headers if h.type == gtpu.ExtensionHeaderType.UDP_PORT]
        if udp_port:
            assert one(layers, "gtp.ext_hdr.udp_port") == "2152", name
