"""Hand-built link, IP and UDP frames and capture files for the capture tests.

Everything is packed with :mod:`struct` from the RFC layouts so that the tests
do not depend on the reader they check. The pcap/pcapng writers here cover what
dpkt's writers cannot (several interfaces, time resolutions, SPBs, big-endian
sections); the simple cases also go through dpkt's writers and editcap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
UDP = 17


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(src: str, dst: str, payload: bytes, *, proto: int = UDP, ident: int = 1, frag: int = 0) -> bytes:
    """An IPv4 packet; ``frag`` is the flags/fragment-offset field (0x2000 = MF)."""
    header = struct.pack(
        ">BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        frag,
        64,
        proto,
        0,
        IPv4Address(src).packed,
        IPv4Address(dst).packed,
    )
    header = header[:10] + struct.pack(">H", checksum(header)) + header[12:]
    return header + payload


def ipv6(src: str, dst: str, payload: bytes, *, next_header: int = UDP) -> bytes:
    return (
        struct.pack(">IHBB", 6 << 28, len(payload), next_header, 64)
        + IPv6Address(src).packed
        + IPv6Address(dst).packed
        + payload
    )


def ip_udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An IPv4 or IPv6 packet (by the address family of ``src``) carrying one UDP datagram."""
    segment = udp(sport, dport, payload)
    if ip_address(src).version == 4:
        return ipv4(src, dst, segment)
    return ipv6(src, dst, segment)


def ethernet(packet: bytes, ethertype: int, *, vlans: tuple[int, ...] = ()) -> bytes:
    header = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
    for vid in vlans:
        header += struct.pack(">HH", 0x8100, vid)
    return header + struct.pack(">H", ethertype) + packet


def ethertype_of(packet: bytes) -> int:
    return ETH_IPV4 if packet[0] >> 4 == 4 else ETH_IPV6


def sll(packet: bytes) -> bytes:
    """Linux cooked capture v1: packet type, ARPHRD, address length, 8-octet address, protocol."""
    return struct.pack(">HHH8sH", 0, 1, 6, bytes(8), ethertype_of(packet)) + packet


def sll2(packet: bytes) -> bytes:
    """Linux cooked capture v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address."""
    return struct.pack(">HHIHBB8s", ethertype_of(packet), 0, 2, 1, 4, 6, bytes(8)) + packet


def pcap(frames: list[tuple[float, bytes]], linktype: int, *, big_endian: bool = False, nano: bool = False) -> bytes:
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    units = 10**9 if nano else 10**6
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for stamp, frame in frames:
        seconds = int(stamp)
        fraction = round((stamp - seconds) * units)
        out += struct.pack(order + "IIII", seconds, fraction, len(frame), len(frame)) + frame
    return out


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


@dataclass(frozen=True)
class Interface:
    linktype: int
    #: if_tsresol option value (None: the 10^-6 default).
    tsresol: int | None = None
    #: if_tsoffset option value in seconds.
    tsoffset: int | None = None
    snaplen: int = 0


def pcapng(
    interfaces: list[Interface],
    packets: list[tuple[int, int | None, bytes]],
    *,
    big_endian: bool = False,
) -> bytes:
    """One pcapng section. Packets are (interface, time stamp in interface units, frame);
    a None time stamp writes a Simple Packet Block (interface 0)."""
    order = ">" if big_endian else "<"
    out = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    for iface in interfaces:
        options = b""
        if iface.tsresol is not None:
            options += _option(order, 9, bytes((iface.tsresol,)))
        if iface.tsoffset is not None:
            options += _option(order, 14, struct.pack(order + "q", iface.tsoffset))
        if options:
            options += _option(order, 0, b"")
        out += _block(order, 1, struct.pack(order + "HHI", iface.linktype, 0, iface.snaplen) + options)
    for index, stamp, frame in packets:
        if stamp is None:
            out += _block(order, 3, struct.pack(order + "I", len(frame)) + frame)
        else:
            body = struct.pack(order + "IIIII", index, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame))
            out += _block(order, 6, body + frame)
    return out
