"""The pcap/pcapng reader of ``edgecups pfcp decode``: formats, link types, IP, fragments."""

from __future__ import annotations

import io
import struct

import dpkt
import pytest

import pfcp
from control_plane.cli.capture import CaptureError, Datagram, is_capture, read_datagrams

from .frames import (
    ETH_IPV4,
    ETH_IPV6,
    UDP,
    Interface,
    ethernet,
    ip_udp,
    ipv4,
    ipv6,
    pcap,
    pcapng,
    sll,
    sll2,
    udp,
)

HEARTBEAT = pfcp.encode(pfcp.HeartbeatRequest(sequence=7, recovery_time_stamp=pfcp.RecoveryTimeStamp(3_900_000_000)))
T0 = 1_700_000_000.25


def read(data: bytes, port: int = pfcp.PFCP_PORT) -> tuple[list[Datagram], list[str]]:
    warnings: list[str] = []
    return list(read_datagrams(data, port=port, warn=warnings.append)), warnings


def test_pcap_ethernet_ipv4_keeps_only_pfcp_port_and_counts_every_frame(golden_ser_bytes: bytes) -> None:
    frames = [
        (T0, ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, golden_ser_bytes), ETH_IPV4)),
        (T0 + 1, ethernet(ip_udp("10.0.0.1", "10.0.0.53", 40000, 53, b"\x12\x34dns"), ETH_IPV4)),
        (T0 + 2, ethernet(ip_udp("10.0.0.2", "10.0.0.1", 33000, 8805, HEARTBEAT), ETH_IPV4)),
    ]
    datagrams, warnings = read(pcap(frames, 1))
    assert warnings == []
    assert datagrams == [
        Datagram(1, T0, "10.0.0.1:8805", "10.0.0.2:8805", golden_ser_bytes),
        Datagram(3, T0 + 2, "10.0.0.2:33000", "10.0.0.1:8805", HEARTBEAT),
    ]


def test_other_port_selects_other_datagrams() -> None:
    data = pcap([(T0, ethernet(ip_udp("10.0.0.1", "10.0.0.2", 1000, 9999, HEARTBEAT), ETH_IPV4))], 1)
    assert read(data)[0] == []
    assert [d.payload for d in read(data, port=9999)[0]] == [HEARTBEAT]


def test_ethernet_padding_is_not_payload() -> None:
    short = b"\x20\x01\x00\x04\x00\x00\x01\x00"  # an 8-octet header-only message
    frame = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, short), ETH_IPV4)
    assert len(frame) < 60
    padded = frame + bytes(60 - len(frame))
    assert [d.payload for d in read(pcap([(T0, padded)], 1))[0]] == [short]


def test_vlan_tags_are_skipped() -> None:
    frame = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4, vlans=(100, 200))
    assert [d.payload for d in read(pcap([(T0, frame)], 1))[0]] == [HEARTBEAT]


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        pytest.param(113, sll, id="linux-sll"),
        pytest.param(276, sll2, id="linux-sll2"),
        pytest.param(101, lambda packet: packet, id="raw"),
        pytest.param(228, lambda packet: packet, id="ipv4-linktype"),
        pytest.param(0, lambda packet: struct.pack("<I", 2) + packet, id="bsd-null"),
        pytest.param(1, lambda packet: ethernet(packet, ETH_IPV4 if packet[0] >> 4 == 4 else ETH_IPV6), id="ethernet"),
    ],
)
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_link_types_and_ip_versions(linktype: int, wrap: object, family: str) -> None:
    src, dst = ("192.0.2.1", "192.0.2.2") if family == "ipv4" else ("2001:db8::1", "2001:db8::2")
    if linktype == 228 and family == "ipv6":
        linktype = 229
    assert callable(wrap)
    frame = wrap(ip_udp(src, dst, 8805, 8805, HEARTBEAT))
    datagrams, warnings = read(pcap([(T0, frame)], linktype))
    assert warnings == []
    expected_src = f"{src}:8805" if family == "ipv4" else f"[{src}]:8805"
    assert [(d.src, d.payload) for d in datagrams] == [(expected_src, HEARTBEAT)]


def test_ipv6_extension_headers_are_walked() -> None:
    segment = udp(8805, 8805, HEARTBEAT)
    hop_by_hop = bytes((60, 0)) + bytes(6)  # next: destination options, 8 octets
    dest_opts = bytes((UDP, 1)) + bytes(14)  # next: UDP, 16 octets
    packet = ipv6("2001:db8::1", "2001:db8::2", hop_by_hop + dest_opts + segment, next_header=0)
    datagrams, _ = read(pcap([(T0, ethernet(packet, ETH_IPV6))], 1))
    assert [d.payload for d in datagrams] == [HEARTBEAT]


def test_pcap_big_endian_nanosecond_time_stamps() -> None:
    stamp = 1_700_000_000.123456789
    data = pcap(
        [(stamp, ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4))],
        1,
        big_endian=True,
        nano=True,
    )
    (datagram,), _ = read(data)
    assert datagram.time == pytest.approx(stamp, abs=1e-6)


def test_pcapng_interfaces_each_have_their_link_type_and_clock() -> None:
    heartbeat_v6 = sll2(ip_udp("2001:db8::1", "2001:db8::2", 8805, 8805, HEARTBEAT))
    data = pcapng(
        [Interface(1), Interface(276, tsresol=9, tsoffset=1_000)],
        [
            (0, 1_700_000_000_500_000, ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4)),
            (1, 1_700_000_000_000_000_007, heartbeat_v6),
            (0, None, ethernet(ip_udp("10.0.0.3", "10.0.0.4", 8805, 8805, HEARTBEAT), ETH_IPV4)),
        ],
    )
    datagrams, warnings = read(data)
    assert warnings == []
    assert [(d.frame, d.src) for d in datagrams] == [
        (1, "10.0.0.1:8805"),
        (2, "[2001:db8::1]:8805"),
        (3, "10.0.0.3:8805"),
    ]
    assert datagrams[0].time == pytest.approx(1_700_000_000.5, abs=1e-6)
    assert datagrams[1].time == pytest.approx(1_700_001_000.000000007, abs=1e-6)
    assert datagrams[2].time is None  # Simple Packet Blocks carry no time stamp
    assert all(d.payload == HEARTBEAT for d in datagrams)


def test_pcapng_big_endian_section_and_power_of_two_resolution() -> None:
    frame = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4)
    data = pcapng([Interface(1, tsresol=0x80 | 10)], [(0, 3 * 1024 + 512, frame)], big_endian=True)
    (datagram,), _ = read(data)
    assert datagram.time == 3.5
    assert datagram.payload == HEARTBEAT


def test_pcapng_new_section_resets_interfaces() -> None:
    v4 = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4)
    raw = ip_udp("10.0.0.5", "10.0.0.6", 8805, 8805, HEARTBEAT)
    data = pcapng([Interface(1)], [(0, 1, v4)]) + pcapng([Interface(101)], [(0, 2, raw)], big_endian=True)
    assert [(d.frame, d.src) for d in read(data)[0]] == [(1, "10.0.0.1:8805"), (2, "10.0.0.5:8805")]


def _fragments(golden: bytes, family: str) -> list[bytes]:
    segment = udp(8805, 8805, golden)
    cut = 200  # a multiple of 8, as fragment offsets must be
    if family == "ipv4":
        first = ipv4("10.0.0.1", "10.0.0.2", segment[:cut], ident=77, frag=0x2000)
        second = ipv4("10.0.0.1", "10.0.0.2", segment[cut:], ident=77, frag=cut // 8)
    else:
        first = ipv6("2001:db8::1", "2001:db8::2", struct.pack(">BBHI", UDP, 0, 1, 77) + segment[:cut], next_header=44)
        second = ipv6(
            "2001:db8::1", "2001:db8::2", struct.pack(">BBHI", UDP, 0, cut, 77) + segment[cut:], next_header=44
        )
    return [first, second]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_fragmented_datagrams_are_reassembled_in_any_order(golden_ser_bytes: bytes, family: str) -> None:
    first, second = _fragments(golden_ser_bytes, family)
    other = ip_udp("10.0.0.9", "10.0.0.8", 8805, 8805, HEARTBEAT)
    datagrams, warnings = read(pcap([(T0, second), (T0, other), (T0 + 1, first)], 101))
    assert warnings == []
    assert [(d.frame, d.payload) for d in datagrams] == [(2, HEARTBEAT), (3, golden_ser_bytes)]


def test_incomplete_fragments_are_reported(golden_ser_bytes: bytes) -> None:
    first, _ = _fragments(golden_ser_bytes, "ipv4")
    datagrams, warnings = read(pcap([(T0, first)], 101))
    assert datagrams == []
    assert warnings == ["1 fragmented IP datagram(s) never completed; skipped"]


def test_frame_cut_by_snaplen_is_reported_not_decoded(golden_ser_bytes: bytes) -> None:
    frame = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, golden_ser_bytes), ETH_IPV4)
    data = pcapng([Interface(1)], [(0, 1, frame[:100])])
    datagrams, warnings = read(data)
    assert datagrams == []
    assert warnings == ["frame 1: UDP payload cut by the capture (captured 58 of 370 octets); skipped"]


def test_unsupported_link_type_is_reported_once() -> None:
    data = pcap([(T0, b"\x00" * 40), (T0, b"\x00" * 40)], 127)
    assert read(data) == ([], ["frame 1: link type 127 is not supported; its frames are skipped"])


def test_file_ending_inside_a_frame_is_reported() -> None:
    data = pcap([(T0, ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, HEARTBEAT), ETH_IPV4))], 1)
    datagrams, warnings = read(data + struct.pack("<IIII", 0, 0, 100, 100) + b"\x00" * 10)
    assert [d.payload for d in datagrams] == [HEARTBEAT]
    assert warnings == ["capture ends inside frame 2"]


def test_not_a_capture_and_damaged_pcapng() -> None:
    assert not is_capture(HEARTBEAT)
    with pytest.raises(CaptureError, match="not a pcap or pcapng file"):
        read(HEARTBEAT)
    data = bytearray(pcapng([Interface(1)], []))
    data[4:8] = struct.pack("<I", 13)  # a block length that is not a multiple of 4
    with pytest.raises(CaptureError, match="invalid length 13"):
        read(bytes(data))


def test_dpkt_written_files_read_back(golden_ser_bytes: bytes) -> None:
    frame = ethernet(ip_udp("10.0.0.1", "10.0.0.2", 8805, 8805, golden_ser_bytes), ETH_IPV4)
    for writer_cls, kwargs in ((dpkt.pcap.Writer, {"nano": True}), (dpkt.pcapng.Writer, {})):
        buffer = io.BytesIO()
        writer = writer_cls(buffer, snaplen=65535, **kwargs)
        writer.writepkt(frame, ts=T0)
        data = buffer.getvalue()
        assert is_capture(data)
        (datagram,), warnings = read(data)
        assert warnings == []
        assert datagram.payload == golden_ser_bytes
        assert datagram.time == pytest.approx(T0, abs=1e-6)
