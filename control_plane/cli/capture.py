"""PFCP datagrams out of pcap and pcapng captures.

:func:`read_datagrams` walks a capture held in memory and yields the payload of
every UDP datagram to or from the PFCP port, with its frame number (counted as
Wireshark counts them, from 1), time stamp and addresses. It reads:

* classic pcap (both byte orders, micro- and nanosecond time stamps) and
  pcapng (every section and interface, each with its own link type, time
  resolution and offset);
* link types Ethernet (with 802.1Q/802.1ad tags), Linux cooked capture v1
  (SLL) and v2 (SLL2), raw IP, and BSD loopback (NULL/LOOP);
* IPv4 and IPv6 (hop-by-hop, routing, destination-options and AH extension
  headers), reassembling fragmented datagrams (RFC 791, RFC 8200 §4.5).

Anything else is skipped; what is worth knowing (an unsupported link type, a
frame cut short by the snap length) is passed to ``warn``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from pfcp import PFCP_PORT

__all__ = ["CaptureError", "Datagram", "is_capture", "read_datagrams"]

# Link types, https://www.tcpdump.org/linktypes.html
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_DLT_RAW = (12, 14)  # DLT_RAW as some platforms wrote it into old files

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_ETH_VLAN = (0x8100, 0x88A8, 0x9100)
_IPPROTO_UDP = 17
_IPV6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44
_IPV6_AH = 51

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e6),
    b"\xa1\xb2\xc3\xd4": (">", 1e6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e9),
    b"\xa1\xb2\x3c\x4d": (">", 1e9),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_PCAPNG_IDB = 1
_PCAPNG_PB = 2
_PCAPNG_SPB = 3
_PCAPNG_EPB = 6
_OPT_END = 0
_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14


class CaptureError(Exception):
    """The file is not a capture this reader understands, or it is damaged."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP payload to or from the PFCP port."""

    #: Number of the capture record that completed the datagram (1-based).
    frame: int
    #: Capture time stamp in seconds since the Unix epoch; None when the
    #: record has none (pcapng Simple Packet Block).
    time: float | None
    #: Source and destination as ``address:port`` (``[address]:port`` for IPv6).
    src: str
    dst: str
    payload: bytes


def is_capture(data: bytes) -> bool:
    """True when ``data`` starts like a pcap or pcapng file."""
    return data[:4] in _PCAP_MAGIC or data[:4] == b"\x0a\x0d\x0d\x0a"


def read_datagrams(
    data: bytes, *, port: int = PFCP_PORT, warn: Callable[[str], None] | None = None
) -> Iterator[Datagram]:
    """Yield the UDP datagrams of a pcap or pcapng capture whose source or
    destination port is ``port``, in capture order.

    Raises :class:`CaptureError` when ``data`` is not a capture or its file
    structure is damaged; problems inside single frames go to ``warn``.
    """
    report = warn if warn is not None else _ignore
    reassembler = _Reassembler()
    unsupported: set[int] = set()
    for record in _records(data, report):
        ip = _network_layer(record.linktype, record.data)
        if ip is None:
            if record.linktype not in _SUPPORTED and record.linktype not in unsupported:
                unsupported.add(record.linktype)
                report(f"frame {record.frame}: link type {record.linktype} is not supported; its frames are skipped")
            continue
        packet = _ip_packet(ip, record.frame, report)
        if packet is None:
            continue
        if packet.protocol != _IPPROTO_UDP:
            continue
        if packet.fragment is not None:
            whole = reassembler.add(packet)
            if whole is None:
                continue
            packet = whole
        datagram = _udp(packet, record, port, report)
        if datagram is not None:
            yield datagram
    if reassembler.pending:
        report(f"{reassembler.pending} fragmented IP datagram(s) never completed; skipped")


def _ignore(_: str) -> None:
    return None


# --------------------------------------------------------------------------
# Capture file formats


@dataclass(frozen=True, slots=True)
class _Record:
    frame: int
    time: float | None
    linktype: int
    data: bytes
    original_length: int


def _records(data: bytes, warn: Callable[[str], None]) -> Iterator[_Record]:
    magic = data[:4]
    if magic in _PCAP_MAGIC:
        return _pcap_records(data, warn)
    if magic == b"\x0a\x0d\x0d\x0a":
        return _pcapng_records(data, warn)
    raise CaptureError("not a pcap or pcapng file")


def _pcap_records(data: bytes, warn: Callable[[str], None]) -> Iterator[_Record]:
    order, units = _PCAP_MAGIC[data[:4]]
    if len(data) < 24:
        raise CaptureError("pcap file header is truncated")
    # Link type in the low 16 bits; the upper bits may carry FCS information.
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
    record = struct.Struct(order + "IIII")
    pos = 24
    frame = 0
    while pos < len(data):
        if len(data) - pos < record.size:
            warn(f"capture ends inside the header of frame {frame + 1}")
            return
        seconds, fraction, captured, original = record.unpack_from(data, pos)
        pos += record.size
        frame += 1
        if len(data) - pos < captured:
            warn(f"capture ends inside frame {frame}")
            return
        yield _Record(frame, seconds + fraction / units, linktype, data[pos : pos + captured], original)
        pos += captured


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    units: float = 1e6
    offset: int = 0


@dataclass(slots=True)
class _Section:
    order: str = "<"
    interfaces: list[_Interface] = field(default_factory=list)


def _pcapng_records(data: bytes, warn: Callable[[str], None]) -> Iterator[_Record]:
    section = _Section()
    pos = 0
    frame = 0
    size = len(data)
    while pos < size:
        if size - pos < 12:
            warn(f"capture ends inside a pcapng block at offset {pos}")
            return
        if struct.unpack_from("<I", data, pos)[0] == _PCAPNG_SHB:
            # A new section: its byte-order magic says how to read everything in it.
            bom = data[pos + 8 : pos + 12]
            if bom == b"\x4d\x3c\x2b\x1a":
                section = _Section("<")
            elif bom == b"\x1a\x2b\x3c\x4d":
                section = _Section(">")
            else:
                raise CaptureError(f"pcapng section at offset {pos} has no valid byte-order magic")
        order = section.order
        block_type, length = struct.unpack_from(order + "II", data, pos)
        if length < 12 or length % 4:
            raise CaptureError(f"pcapng block at offset {pos} has invalid length {length}")
        if size - pos < length:
            warn(f"capture ends inside a pcapng block at offset {pos}")
            return
        body = data[pos + 8 : pos + length - 4]
        pos += length
        if block_type == _PCAPNG_IDB:
            section.interfaces.append(_interface(body, order))
        elif block_type in (_PCAPNG_EPB, _PCAPNG_PB, _PCAPNG_SPB):
            frame += 1
            record = _packet_block(block_type, body, order, section, frame)
            if record is None:
                warn(f"frame {frame}: malformed pcapng packet block; skipped")
            else:
                yield record


def _interface(body: bytes, order: str) -> _Interface:
    if len(body) < 8:
        raise CaptureError("pcapng interface description block is truncated")
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
    iface = _Interface(linktype, snaplen)
    pos = 8
    while len(body) - pos >= 4:
        code, length = struct.unpack_from(order + "HH", body, pos)
        value = body[pos + 4 : pos + 4 + length]
        pos += 4 + length + (-length % 4)
        if code == _OPT_END:
            break
        if code == _OPT_IF_TSRESOL and length == 1:
            # MSB clear: a negative power of ten; set: a negative power of two.
            exponent = value[0] & 0x7F
            iface.units = float(2**exponent if value[0] & 0x80 else 10**exponent)
        elif code == _OPT_IF_TSOFFSET and length == 8:
            iface.offset = struct.unpack(order + "q", value)[0]
    return iface


def _packet_block(block_type: int, body: bytes, order: str, section: _Section, frame: int) -> _Record | None:
    if block_type == _PCAPNG_SPB:
        if len(body) < 4 or not section.interfaces:
            return None
        iface = section.interfaces[0]
        original = struct.unpack_from(order + "I", body, 0)[0]
        captured = min(original, len(body) - 4)
        if iface.snaplen:
            captured = min(captured, iface.snaplen)
        return _Record(frame, None, iface.linktype, body[4 : 4 + captured], original)
    if block_type == _PCAPNG_EPB:
        if len(body) < 20:
            return None
        index, high, low, captured, original = struct.unpack_from(order + "IIIII", body, 0)
        start = 20
    else:  # obsolete Packet Block
        if len(body) < 20:
            return None
        index, _drops, high, low, captured, original = struct.unpack_from(order + "HHIIII", body, 0)
        start = 20
    if index >= len(section.interfaces) or len(body) - start < captured:
        return None
    iface = section.interfaces[index]
    stamp = iface.offset + ((high << 32) | low) / iface.units
    return _Record(frame, stamp, iface.linktype, body[start : start + captured], original)


# --------------------------------------------------------------------------
# Link layer

_SUPPORTED = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW,
        *_DLT_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)


def _network_layer(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet a link-layer frame carries, or None."""
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        return _by_ethertype(frame, 14, (frame[12] << 8) | frame[13])
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        return _by_ethertype(frame, 16, (frame[14] << 8) | frame[15])
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        return _by_ethertype(frame, 20, (frame[0] << 8) | frame[1])
    if linktype in (LINKTYPE_RAW, *_DLT_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return frame
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        # The 4-octet address family is host-order (NULL) or network-order
        # (LOOP) and its IPv6 value differs by OS: the IP version says enough.
        return frame[4:]
    return None


def _by_ethertype(frame: bytes, pos: int, ethertype: int) -> bytes | None:
    while ethertype in _ETH_VLAN:
        if len(frame) - pos < 4:
            return None
        ethertype = (frame[pos + 2] << 8) | frame[pos + 3]
        pos += 4
    if ethertype in (_ETH_IPV4, _ETH_IPV6):
        return frame[pos:]
    return None


# --------------------------------------------------------------------------
# IP and UDP


@dataclass(frozen=True, slots=True)
class _Fragment:
    ident: int
    offset: int
    more: bool


@dataclass(frozen=True, slots=True)
class _Packet:
    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    protocol: int
    payload: bytes
    #: Octets the IP header announced but the capture did not keep.
    missing: int
    fragment: _Fragment | None


def _ip_packet(ip: bytes, frame: int, warn: Callable[[str], None]) -> _Packet | None:
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4:
        return _ipv4(ip)
    if version == 6:
        return _ipv6(ip, frame, warn)
    return None


def _ipv4(ip: bytes) -> _Packet | None:
    if len(ip) < 20:
        return None
    header = (ip[0] & 0x0F) * 4
    total = (ip[2] << 8) | ip[3]
    if header < 20 or total < header or len(ip) < header:
        return None
    flags_offset = (ip[6] << 8) | ip[7]
    more = bool(flags_offset & 0x2000)
    offset = (flags_offset & 0x1FFF) * 8
    fragment = _Fragment((ip[4] << 8) | ip[5], offset, more) if more or offset else None
    payload = ip[header:total]  # drops link-layer padding after the datagram
    return _Packet(
        IPv4Address(ip[12:16]),
        IPv4Address(ip[16:20]),
        ip[9],
        payload,
        max(0, total - len(ip)),
        fragment,
    )


def _ipv6(ip: bytes, frame: int, warn: Callable[[str], None]) -> _Packet | None:
    if len(ip) < 40:
        return None
    end = 40 + ((ip[4] << 8) | ip[5])
    missing = max(0, end - len(ip))
    next_header = ip[6]
    pos = 40
    fragment = None
    while True:
        if next_header in _IPV6_EXT or next_header == _IPV6_AH:
            if len(ip) - pos < 2:
                return None
            length = (ip[pos + 1] + 2) * 4 if next_header == _IPV6_AH else (ip[pos + 1] + 1) * 8
            next_header = ip[pos]
            pos += length
        elif next_header == _IPV6_FRAGMENT:
            if len(ip) - pos < 8:
                return None
            field_ = (ip[pos + 2] << 8) | ip[pos + 3]
            ident = struct.unpack_from(">I", ip, pos + 4)[0]
            fragment = _Fragment(ident, field_ & 0xFFF8, bool(field_ & 1))
            next_header = ip[pos]
            pos += 8
            break  # what follows is the fragmentable part
        else:
            break
        if pos > len(ip):
            warn(f"frame {frame}: IPv6 extension headers run past the captured frame; skipped")
            return None
    return _Packet(IPv6Address(ip[8:24]), IPv6Address(ip[24:40]), next_header, ip[pos:end], missing, fragment)


class _Reassembler:
    """Reassembles fragmented IP datagrams (RFC 791 §3.2, RFC 8200 §4.5)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[object, ...], dict[int, bytes]] = {}
        self._total: dict[tuple[object, ...], int] = {}

    @property
    def pending(self) -> int:
        return len(self._parts)

    def add(self, packet: _Packet) -> _Packet | None:
        fragment = packet.fragment
        assert fragment is not None
        if packet.missing:
            return None  # a cut fragment can never complete its datagram
        key = (packet.src, packet.dst, packet.protocol, fragment.ident)
        parts = self._parts.setdefault(key, {})
        parts[fragment.offset] = packet.payload
        if not fragment.more:
            self._total[key] = fragment.offset + len(packet.payload)
        total = self._total.get(key)
        if total is None:
            return None
        whole = bytearray()
        for offset in sorted(parts):
            if offset > len(whole):
                return None  # a hole: wait for more fragments
            part = parts[offset]
            whole[offset : offset + len(part)] = part
        if len(whole) < total:
            return None
        del self._parts[key], self._total[key]
        return _Packet(packet.src, packet.dst, packet.protocol, bytes(whole[:total]), 0, None)


def _udp(packet: _Packet, record: _Record, port: int, warn: Callable[[str], None]) -> Datagram | None:
    segment = packet.payload
    if len(segment) < 8:
        return None
    source, destination, length = struct.unpack_from(">HHH", segment, 0)
    if port not in (source, destination):
        return None
    if length < 8:
        return None
    if packet.missing or len(segment) < length:
        have = max(0, len(segment) - 8)
        warn(f"frame {record.frame}: UDP payload cut by the capture (captured {have} of {length - 8} octets); skipped")
        return None
    return Datagram(
        record.frame,
        record.time,
        _endpoint(packet.src, source),
        _endpoint(packet.dst, destination),
        bytes(segment[8:length]),
    )


def _endpoint(address: IPv4Address | IPv6Address, port: int) -> str:
    if isinstance(address, IPv6Address):
        return f"[{address}]:{port}"
    return f"{address}:{port}"
