"""Inner IPv4/UDP packets and G-PDUs as bytes, for dataplane tests (RFC 791, RFC 768, TS 29.281)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from user_plane import gtpu

GTPU_PORT = 2152


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data`` (RFC 1071): 0 over data that carries a right one."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_udp(
    src: IPv4Address,
    dst: IPv4Address,
    sport: int,
    dport: int,
    payload: bytes,
    ttl: int = 64,
    *,
    udp_checksum: bool = True,
) -> bytes:
    """An IPv4/UDP packet with a valid header checksum and, unless ``udp_checksum`` is False
    (UDP checksum 0, as GTP-U senders may do), a valid UDP checksum."""
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    if udp_checksum:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, udp_len)
        udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, ttl, 17, 0, src.packed, dst.packed)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp


def gpdu(teid: int, inner: bytes, qfi: int | None = None) -> bytes:
    """An uplink G-PDU (UL PDU SESSION INFORMATION when ``qfi`` is given, TS 38.415 §5.5.2.2)."""
    return gtpu.encode_gpdu_header(teid, len(inner), qfi, pdu_type_dl=False) + inner


def udp_payload_of(ip_packet: bytes) -> tuple[IPv4Address, IPv4Address, int, int, bytes]:
    """(src, dst, sport, dport, payload) of an IPv4/UDP packet without options."""
    assert ip_packet[0] == 0x45 and ip_packet[9] == 17, ip_packet[:20].hex()
    src, dst = IPv4Address(ip_packet[12:16]), IPv4Address(ip_packet[16:20])
    sport, dport, length = struct.unpack_from("!HHH", ip_packet, 20)
    return src, dst, sport, dport, ip_packet[28 : 20 + length]
